"""Funnels: an ordered list of 2-8 of a site's goals, and who goes through them in order.

A visit enters a funnel with the first event that converts to its first step; it reaches step
k with the first event after the one that reached step k-1 (in time, then arrival order) that
converts to step k. Events before the entry, steps out of order and repeats are not counted
twice; a step skipped ends the visit's way through the funnel there. Each step shows the visits
and the visitors (visitor-days, as everywhere) that reached it, the share of the entering ones
and of the previous step's, the drop-off, and the median time from the previous step.

"In order" is followed within one visit (a session) by default, or, with `across_visits`,
across the visits of one visitor-day: the cookieless visitor id is a hash salted per UTC day,
so the same person on another day is another visitor — no funnel can follow them from one
day to the next, and none pretends to. A visit counts in the period it started in, with its
events after the period's end included (sessions never outlive a UTC day).
"""

from __future__ import annotations

from dataclasses import dataclass

from flask_tracking.reports.goals import MAX_NAME, Goal, InvalidGoal, has_control_characters

MIN_STEPS, MAX_STEPS = 2, 8
MAX_FUNNELS = 50  # per site


class InvalidFunnel(InvalidGoal):
    """A funnel definition that cannot be kept; the message says why, `field` which field
    (name, steps)."""


@dataclass(frozen=True, slots=True)
class Funnel:
    """A funnel as reports apply it: its steps are goal definitions."""

    name: str
    steps: tuple[Goal, ...]


@dataclass(frozen=True, slots=True)
class Step:
    """What reached one step of a funnel."""

    goal: Goal
    visits: int
    visitors: int
    median_seconds: float | None  # from the previous step, over the visits that reached it


@dataclass(frozen=True, slots=True)
class FunnelResult:
    """A funnel's steps in a period, with the rates a person reads."""

    funnel: Funnel
    steps: tuple[Step, ...]
    across_visits: bool = False

    @property
    def entered(self) -> int:
        """Return the visits that entered (reached step 1)."""
        return self.steps[0].visits if self.steps else 0

    def of_entered(self, index: int) -> float:
        """Return the percentage of entering visits that reached step `index` (0-based)."""
        return 100.0 * self.steps[index].visits / self.entered if self.entered else 0.0

    def of_previous(self, index: int) -> float:
        """Return the percentage of the previous step's visits that reached this one."""
        if index == 0:
            return 100.0 if self.entered else 0.0
        before = self.steps[index - 1].visits
        return 100.0 * self.steps[index].visits / before if before else 0.0

    def dropped(self, index: int) -> int:
        """Return how many of the previous step's visits did not reach this one."""
        return 0 if index == 0 else self.steps[index - 1].visits - self.steps[index].visits

    @property
    def converted(self) -> float:
        """Return the percentage of entering visits that reached the last step."""
        return self.of_entered(len(self.steps) - 1) if self.steps else 0.0


def make_funnel(name: str | None, steps: list[Goal]) -> Funnel:
    """Return the funnel of these goals in order, or raise InvalidFunnel saying why."""
    name = (name or "").strip()
    if not name:
        raise InvalidFunnel("A funnel needs a name.", "name")
    if len(name) > MAX_NAME:
        raise InvalidFunnel(f"The name may be at most {MAX_NAME} characters.", "name")
    if has_control_characters(name):
        raise InvalidFunnel("The name may not contain control characters.", "name")
    if not steps:
        raise InvalidFunnel(
            f"A funnel needs {MIN_STEPS} to {MAX_STEPS} steps, each a goal.", "steps"
        )
    if len(steps) < MIN_STEPS:
        raise InvalidFunnel(
            f"A funnel of one step is a goal: give it {MIN_STEPS} to {MAX_STEPS} steps.", "steps"
        )
    if len(steps) > MAX_STEPS:
        raise InvalidFunnel(f"A funnel has at most {MAX_STEPS} steps.", "steps")
    return Funnel(name, tuple(steps))
