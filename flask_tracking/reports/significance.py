"""The statistics of an A/B experiment on conversion rates: what a results page reports.

For a treatment against the control (visitors exposed, visitors converted):

- **fixed-sample frequentist**: the difference of the two rates with its confidence interval
  (Wald, unpooled — statsmodels' `confint_proportions_2indep`) and the two-sided p-value of
  the two-proportion z-test (pooled under the null: statsmodels' `proportions_ztest`),
  and the relative uplift with a delta-method interval. Valid when the sample size was fixed
  in advance and the result read once;
- **sequential** (valid however often a running experiment is looked at): the mixture
  sequential probability ratio test (mSPRT) of Johari, Pekelis and Walsh, "Always valid
  inference: continuous monitoring of A/B tests", Operations Research 70(3), 2022, with a
  normal mixture over the difference, in the parametrisation of Howard, Ramdas, McAuliffe and
  Sekhon, "Time-uniform, nonparametric, nonasymptotic confidence sequences", Annals of
  Statistics 49(2), 2021 (the one GrowthBook uses): the mixture's width is tuned for an
  expected number of visitors N* (`tuning`). It gives an always-valid p-value and a confidence
  sequence for the difference: the chance that the p-value ever falls under alpha in an A/A
  test is at most alpha, whenever one looks;
- **Bayesian**: independent Beta(1 + converted, 1 + not converted) posteriors; the
  probability that the treatment's rate beats the control's (a numerical integral), and a
  credible interval for the relative uplift (quantiles of seeded posterior draws);
- **sample-ratio mismatch**: a chi-square test of the exposed visitors against the configured
  weights (scipy); a small p-value (under 0.001) means assignment or tracking is broken and
  no other number can be trusted;
- **minimum detectable effect**: the smallest absolute difference the current sample would
  detect with 80 % power at the chosen alpha;
- **several comparisons** (variants x goals): p-values adjusted with Holm's step-down method
  (statsmodels' `multipletests`), which controls the family-wise error rate without
  assuming independence.

Distributions come from SciPy and statsmodels; nothing is hand-rolled but the formulas.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import integrate, stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

from flask_tracking.reports.experiments import ALPHA

POWER = 0.8
TUNING = 5000  # N*: the number of visitors the sequential test is tuned for
DRAWS = 100_000  # posterior draws for the credible interval
SEED = 20_261_206  # the draws are the same for the same counts: a page does not flicker


@dataclass(frozen=True, slots=True)
class Arm:
    """One variant's visitors: exposed, and among them converted."""

    exposed: int
    converted: int

    @property
    def rate(self) -> float:
        """Return the conversion rate (0 without visitors)."""
        return self.converted / self.exposed if self.exposed else 0.0

    def __post_init__(self) -> None:
        if self.exposed < 0 or not 0 <= self.converted <= self.exposed:
            raise ValueError(f"impossible counts: {self.converted} of {self.exposed}")


@dataclass(frozen=True, slots=True)
class Interval:
    """A two-sided interval."""

    low: float
    high: float

    def covers(self, value: float) -> bool:
        """Tell whether `value` lies in the interval (its ends included)."""
        return self.low <= value <= self.high


@dataclass(frozen=True, slots=True)
class Comparison:
    """A treatment against the control; None where the counts say nothing (no visitors in
    an arm, or no variation at all)."""

    difference: float  # treatment rate - control rate
    difference_interval: Interval | None
    p_value: float | None  # fixed-sample, two-sided
    uplift: float | None  # relative: difference / control rate
    uplift_interval: Interval | None
    sequential_p_value: float | None  # always valid
    sequential_interval: Interval | None  # confidence sequence for the difference
    chance_to_beat: float | None  # Bayesian P(treatment rate > control rate)
    uplift_credible: Interval | None  # Bayesian, relative uplift
    minimum_detectable: float | None  # absolute difference, at POWER


def compare(
    control: Arm, treatment: Arm, *, alpha: float = ALPHA, tuning: float = TUNING
) -> Comparison:
    """Compare a treatment with the control (see the module's docstring)."""
    difference = treatment.rate - control.rate
    if not control.exposed or not treatment.exposed:
        return Comparison(difference, None, None, None, None, None, None, None, None, None)
    variance = _variance(control) + _variance(treatment)
    fixed = _fixed(control, treatment, alpha, variance)
    sequential = _sequential(control, treatment, alpha, tuning, variance)
    chance, credible = _bayesian(control, treatment, alpha)
    return Comparison(
        difference,
        *fixed,
        *sequential,
        chance,
        credible,
        minimum_detectable(control, treatment, alpha=alpha),
    )


def _variance(arm: Arm) -> float:
    return arm.rate * (1 - arm.rate) / arm.exposed


def _fixed(
    control: Arm, treatment: Arm, alpha: float, variance: float
) -> tuple[Interval | None, float | None, float | None, Interval | None]:
    counts = (treatment.converted, treatment.exposed, control.converted, control.exposed)
    if variance == 0:
        # Both rates 0 or 1 (or one 0 and the other 1): no variation to test against. Equal
        # rates are no evidence of a difference; unequal ones leave the z-test undefined.
        same = treatment.rate == control.rate
        if not same:
            return None, None, None, None
        return Interval(0.0, 0.0), 1.0, (0.0 if control.rate else None), None
    with np.errstate(divide="ignore", invalid="ignore"):  # a rate of 0 in one arm is fine here
        low, high = confint_proportions_2indep(*counts, method="wald", compare="diff", alpha=alpha)
    _z, pooled = proportions_ztest(
        [treatment.converted, control.converted], [treatment.exposed, control.exposed]
    )
    p_value = float(pooled) if math.isfinite(pooled) else None
    uplift = uplift_interval = None
    if control.rate > 0:
        # The delta method on the ratio r = treatment rate / control rate:
        # var(r) ~ var(t) / c^2 + t^2 var(c) / c^4.
        ratio = treatment.rate / control.rate
        spread = math.sqrt(
            _variance(treatment) / control.rate**2
            + treatment.rate**2 * _variance(control) / control.rate**4
        )
        z = float(stats.norm.ppf(1 - alpha / 2))
        uplift = ratio - 1
        uplift_interval = Interval(uplift - z * spread, uplift + z * spread)
    return Interval(float(low), float(high)), p_value, uplift, uplift_interval


def sequential(
    control: Arm, treatment: Arm, *, alpha: float = ALPHA, tuning: float = TUNING
) -> tuple[float | None, Interval | None]:
    """Return the mSPRT's always-valid p-value and confidence sequence for the difference
    (None without visitors in an arm, or without variation)."""
    if not control.exposed or not treatment.exposed:
        return None, None
    return _sequential(control, treatment, alpha, tuning, _variance(control) + _variance(treatment))


def _sequential(
    control: Arm, treatment: Arm, alpha: float, tuning: float, variance: float
) -> tuple[float | None, Interval | None]:
    if variance == 0:
        return None, None
    total = control.exposed + treatment.exposed
    log_alpha = -2 * math.log(alpha)
    rho2 = (log_alpha + math.log(log_alpha + 1)) / tuning  # Howard et al.'s tuning
    spread = total * rho2 + 1  # (V + tau^2) / V, the mixture variance tau^2 = rho^2 N V
    difference = treatment.rate - control.rate
    statistic = difference**2 / variance
    log_evidence = rho2 * total * statistic / (2 * spread) - 0.5 * math.log(spread)
    p_value = min(1.0, math.exp(-log_evidence))
    half = math.sqrt(
        variance * spread * (2 * math.log(1 / alpha) + math.log(spread)) / (total * rho2)
    )
    return p_value, Interval(difference - half, difference + half)


def _bayesian(control: Arm, treatment: Arm, alpha: float) -> tuple[float, Interval | None]:
    a = stats.beta(1 + control.converted, 1 + control.exposed - control.converted)
    b = stats.beta(1 + treatment.converted, 1 + treatment.exposed - treatment.converted)
    # P(B > A) = integral of f_A(x) * P(B > x), over where the control's posterior lies
    # (beyond, its density is under 1e-12: over [0, 1] a quadrature can miss a narrow peak
    # altogether, at tens of thousands of visitors). Gauss-Legendre with 512 nodes, evaluated
    # as arrays: within 1e-12 of adaptive quadrature (quad) on the tests' counts, and 20
    # times faster than its point-by-point calls.
    low, high = a.ppf(1e-12), a.isf(1e-12)
    chance, _none = integrate.fixed_quad(lambda x: a.pdf(x) * b.sf(x), low, high, n=512)
    rng = np.random.default_rng(SEED)
    draws_a = a.rvs(size=DRAWS, random_state=rng)
    draws_b = b.rvs(size=DRAWS, random_state=rng)
    uplift = draws_b / draws_a - 1
    first, last = np.quantile(uplift, [alpha / 2, 1 - alpha / 2])
    return min(1.0, max(0.0, float(chance))), Interval(float(first), float(last))


def minimum_detectable(
    control: Arm, treatment: Arm, *, alpha: float = ALPHA, power: float = POWER
) -> float | None:
    """Return the smallest absolute difference these sample sizes detect with `power` (at
    the control's rate; None without visitors or with a rate of 0 or 1)."""
    rate = control.rate
    if not control.exposed or not treatment.exposed or rate in (0.0, 1.0):
        return None
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    return float(z * math.sqrt(rate * (1 - rate) * (1 / control.exposed + 1 / treatment.exposed)))


def sample_ratio_mismatch(exposed: list[int], weights: list[float]) -> float | None:
    """Return the chi-square test's p-value of the exposed visitors per variant against the
    weights (None when nobody was exposed)."""
    total = sum(exposed)
    if not total:
        return None
    shares = np.asarray(weights, dtype=float) / sum(weights)
    return float(stats.chisquare(exposed, f_exp=shares * total).pvalue)


def holm(p_values: list[float | None], *, alpha: float = ALPHA) -> list[float | None]:
    """Return Holm-adjusted p-values (None stays None and takes no part)."""
    known = [p for p in p_values if p is not None]
    if not known:
        return list(p_values)
    adjusted = iter(multipletests(known, alpha=alpha, method="holm")[1])
    return [None if p is None else float(next(adjusted)) for p in p_values]
