"""A/B experiments: variants with weights, the goals they are judged on, how a visitor is
assigned, and what the results page reports (the statistics are reports/significance.py's).

An experiment has a key (what pages and servers call it), a name, 2-5 variants with positive
weights (the first is the control), a primary goal and up to 5 secondary goals, a start, an
optional end and a status (draft, running, stopped).

Exposure: whoever shows a visitor a variant reports it as a custom event named `EXPOSURE` with
the properties `experiment` (the key) and `variant` (its name): the tracker's
`flaskTracking.experiment()` does it, and a server that assigns variants itself sends the same
event through the events API. Exposures flow through the collector like any event.

Assignment without cookies: a variant is picked by a hash of the experiment's key and a unit
id (`assign`). The tracker uses the id the page gives it (`data-user-id`, e.g. a hash of the
account id: it never leaves the browser) or, without one, a random id per page load: a
returning visitor may then see another variant on another page load. Results count visitors
(the cookieless visitor-day, as everywhere); a visitor exposed to more than one variant is
left out of the comparison and counted apart, so mixed exposure biases nothing but shows.

A conversion counts for a visitor when it happens at or after the visitor's first exposure,
within the experiment's window. The visitor id is salted per UTC day, so a conversion on a
later day than the exposure cannot be joined to it: experiments measure same-day conversion.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING

from flask_tracking.reports.goals import MAX_NAME, Goal, InvalidGoal, has_control_characters

if TYPE_CHECKING:  # at run time, imported by judge(): see there
    from flask_tracking.reports.significance import Arm, Comparison

EXPOSURE = "Experiment Exposure"  # the reserved event name of an exposure
KEY_PATTERN = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
MIN_VARIANTS, MAX_VARIANTS = 2, 5
MAX_SECONDARY = 5
MAX_VARIANT_NAME = 64
MAX_WEIGHT = 10_000
MAX_EXPERIMENTS = 50  # per site
STATUSES = ("draft", "running", "stopped")
ALPHA = 0.05  # the tests' level, before Holm's adjustment
SRM_ALPHA = 0.001  # a sample-ratio mismatch below this is reported as broken assignment

# FNV-1a, 32 bits: small enough to write identically in the tracker (static/tracker.js).
_FNV_OFFSET, _FNV_PRIME = 0x811C9DC5, 0x01000193


class InvalidExperiment(InvalidGoal):
    """An experiment definition that cannot be kept; the message says why, `field` which."""


@dataclass(frozen=True, slots=True)
class Variant:
    """One arm of an experiment and its share of the traffic (weight / sum of weights)."""

    name: str
    weight: int


@dataclass(frozen=True, slots=True)
class Experiment:
    """An experiment as reports apply it."""

    key: str
    name: str
    variants: tuple[Variant, ...]
    goals: tuple[Goal, ...]  # the primary goal first
    start: datetime | None = None
    end: datetime | None = None
    status: str = "draft"

    @property
    def primary(self) -> Goal:
        """Return the goal the experiment is decided on."""
        return self.goals[0]


def _check_text(value: str, what: str, field: str, longest: int) -> str:
    value = (value or "").strip()
    if not value:
        raise InvalidExperiment(f"{what} is required.", field)
    if len(value) > longest:
        raise InvalidExperiment(f"{what} may be at most {longest} characters.", field)
    if has_control_characters(value):
        raise InvalidExperiment(f"{what} may not contain control characters.", field)
    return value


def make_variants(pairs: list[tuple[str, int]]) -> tuple[Variant, ...]:
    """Return checked variants from (name, weight) pairs, the control first."""
    if not MIN_VARIANTS <= len(pairs) <= MAX_VARIANTS:
        raise InvalidExperiment(
            f"An experiment has {MIN_VARIANTS} to {MAX_VARIANTS} variants, the control first.",
            "variants",
        )
    variants = []
    for name, weight in pairs:
        clean = _check_text(name, "A variant's name", "variants", MAX_VARIANT_NAME)
        if isinstance(weight, bool) or not isinstance(weight, int):
            raise InvalidExperiment("A weight is a whole number.", "variants")
        if not 1 <= weight <= MAX_WEIGHT:
            raise InvalidExperiment(
                f"Variant {clean!r}: a weight is a whole number from 1 to {MAX_WEIGHT} "
                "(zero or negative would show it to nobody).",
                "variants",
            )
        variants.append(Variant(clean, weight))
    if len({v.name for v in variants}) != len(variants):
        raise InvalidExperiment("Two variants have the same name.", "variants")
    return tuple(variants)


def make_experiment(
    key: str,
    name: str,
    variants: list[tuple[str, int]],
    goals: list[Goal],
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    status: str = "draft",
) -> Experiment:
    """Return a checked experiment, or raise InvalidExperiment saying why."""
    key = (key or "").strip()
    if not KEY_PATTERN.fullmatch(key):
        raise InvalidExperiment(
            "The key is 1 to 64 characters: lower-case letters, digits, '-', '_' and '.', "
            "starting with a letter or digit.",
            "key",
        )
    clean = _check_text(name, "The name", "name", MAX_NAME)
    if not goals:
        raise InvalidExperiment("An experiment needs a primary goal.", "goals")
    if len(goals) > 1 + MAX_SECONDARY:
        raise InvalidExperiment(
            f"An experiment has one primary goal and at most {MAX_SECONDARY} secondary ones.",
            "goals",
        )
    if len({g.name for g in goals}) != len(goals):
        raise InvalidExperiment("A goal is listed twice.", "goals")
    if status not in STATUSES:
        raise InvalidExperiment(f"The status is one of {', '.join(STATUSES)}.", "status")
    if status != "draft" and start is None:
        raise InvalidExperiment("A running or stopped experiment has a start.", "start")
    if start is not None and end is not None and end <= start:
        raise InvalidExperiment("The end comes after the start.", "end")
    return Experiment(key, clean, make_variants(variants), tuple(goals), start, end, status)


def fnv1a(data: bytes) -> int:
    """Return the 32-bit FNV-1a hash of `data`."""
    value = _FNV_OFFSET
    for byte in data:
        value = ((value ^ byte) * _FNV_PRIME) & 0xFFFFFFFF
    return value


def bucket(key: str, unit: str) -> float:
    """Return where a unit falls for an experiment, uniformly in [0, 1): FNV-1a of
    "key:unit" (UTF-8) over 2**32. The tracker computes the same number."""
    return fnv1a(f"{key}:{unit}".encode()) / 2**32


def assign(key: str, unit: str, variants: tuple[Variant, ...] | list[Variant]) -> str:
    """Return the variant a unit sees: the one whose share of the weights covers its bucket.
    Deterministic, so a server and the tracker agree on the same (key, unit)."""
    point = bucket(key, unit) * sum(v.weight for v in variants)
    for variant in variants:
        point -= variant.weight
        if point < 0:
            return variant.name
    return variants[-1].name


@dataclass(frozen=True, slots=True)
class Counted:
    """A goal in one variant: converted visitors, conversions, revenue."""

    converted: int = 0
    conversions: int = 0
    revenue: float = 0.0


@dataclass(frozen=True, slots=True)
class GoalOutcome:
    """One goal in one treatment variant, against the control."""

    variant: str
    goal: Goal
    control: Arm
    treatment: Arm
    comparison: Comparison
    adjusted_p_value: float | None  # Holm, over every (treatment, goal) of the experiment
    conversions: int
    revenue: float


@dataclass(frozen=True, slots=True)
class ExperimentResult:
    """What the results page and the API report for an experiment over its window."""

    experiment: Experiment
    start: datetime | None
    end: datetime | None  # the window's end (now for a running experiment)
    exposed: dict[str, int]  # visitors per variant (only those who saw one variant)
    mixed: int  # visitors exposed to more than one variant: left out
    counted: dict[tuple[str, str], Counted]  # by (variant, goal name)
    outcomes: tuple[GoalOutcome, ...]
    sample_ratio_p: float | None

    @property
    def sample_ratio_mismatch(self) -> bool:
        """Tell whether the traffic split is off the weights beyond chance (p < 0.001)."""
        return self.sample_ratio_p is not None and self.sample_ratio_p < SRM_ALPHA

    def rate(self, variant: str, goal: Goal) -> float:
        """Return a goal's conversion rate in a variant, in percent."""
        exposed = self.exposed.get(variant, 0)
        found = self.counted.get((variant, goal.name), Counted())
        return 100.0 * found.converted / exposed if exposed else 0.0

    def outcome(self, variant: str, goal: Goal) -> GoalOutcome | None:
        """Return a treatment's outcome on a goal (None for the control)."""
        for found in self.outcomes:
            if found.variant == variant and found.goal.name == goal.name:
                return found
        return None


def judge(
    experiment: Experiment,
    exposed: dict[str, int],
    mixed: int,
    counted: dict[tuple[str, str], Counted],
    *,
    start: datetime | None,
    end: datetime | None,
    alpha: float = ALPHA,
) -> ExperimentResult:
    """Return the results of an experiment from its counts: every treatment against the
    control on every goal, the p-values Holm-adjusted over all those comparisons, and the
    sample-ratio test of the exposed visitors against the weights."""
    # SciPy and statsmodels take two seconds to import: every process that loads the app
    # (web workers, the writer, the CLI) would pay for it, and only this page needs them.
    from flask_tracking.reports.significance import (
        Arm,
        compare,
        holm,
        sample_ratio_mismatch,
    )

    control = experiment.variants[0]
    unadjusted = []
    for variant in experiment.variants[1:]:
        for goal in experiment.goals:
            base = counted.get((control.name, goal.name), Counted())
            found = counted.get((variant.name, goal.name), Counted())
            control_arm = Arm(exposed.get(control.name, 0), base.converted)
            treatment_arm = Arm(exposed.get(variant.name, 0), found.converted)
            comparison = compare(control_arm, treatment_arm, alpha=alpha)
            unadjusted.append(
                GoalOutcome(
                    variant.name, goal, control_arm, treatment_arm, comparison, None,
                    found.conversions, found.revenue,
                )
            )  # fmt: skip
    adjusted = holm([o.comparison.p_value for o in unadjusted], alpha=alpha)
    outcomes = tuple(
        replace(outcome, adjusted_p_value=p)
        for outcome, p in zip(unadjusted, adjusted, strict=True)
    )
    srm = sample_ratio_mismatch(
        [exposed.get(v.name, 0) for v in experiment.variants],
        [float(v.weight) for v in experiment.variants],
    )
    return ExperimentResult(experiment, start, end, exposed, mixed, counted, outcomes, srm)
