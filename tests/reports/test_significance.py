"""The experiment statistics (reports/significance.py): textbook values, GrowthBook's gbstats
as an independent implementation on the same counts, edge cases, and simulations that show
the sequential result stays valid however often a running A/A test is looked at (while the
naive fixed-sample p-value does not), and that the intervals cover a known uplift.

The simulations are seeded and vectorised where they can be; they take a few seconds.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from gbstats.bayesian.tests import EffectBayesianABTest, EffectBayesianConfig
from gbstats.frequentist.tests import (
    FrequentistConfig,
    SequentialConfig,
    SequentialTwoSidedTTest,
    TwoSidedTTest,
)
from gbstats.models.statistics import ProportionStatistic
from scipy import stats

from flask_tracking.reports.significance import (
    TUNING,
    Arm,
    compare,
    holm,
    minimum_detectable,
    sample_ratio_mismatch,
    sequential,
)

ALPHA = 0.05


def test_the_two_proportion_z_test_of_the_textbook() -> None:
    """100 of 1,000 against 130 of 1,000: pooled rate 0.115, z = 0.03 / sqrt(0.115 * 0.885 *
    (2 / 1000)) = 2.1027, two-sided p = 0.0355; the unpooled (Wald) 95 % interval of the
    difference is 0.03 +- 1.96 * sqrt(0.1 * 0.9 / 1000 + 0.13 * 0.87 / 1000)."""
    found = compare(Arm(1000, 100), Arm(1000, 130))
    pooled = 230 / 2000
    z = 0.03 / math.sqrt(pooled * (1 - pooled) * 2 / 1000)
    assert z == pytest.approx(2.1027, abs=1e-4)
    assert found.p_value == pytest.approx(2 * stats.norm.sf(z), rel=1e-9)
    assert found.p_value == pytest.approx(0.0355, abs=1e-4)
    half = 1.959964 * math.sqrt(0.1 * 0.9 / 1000 + 0.13 * 0.87 / 1000)
    assert found.difference_interval is not None
    assert found.difference_interval.low == pytest.approx(0.03 - half, abs=1e-6)
    assert found.difference_interval.high == pytest.approx(0.03 + half, abs=1e-6)
    assert found.uplift == pytest.approx(0.3)
    # 80 % power at alpha 0.05: (1.95996 + 0.84162) * sqrt(0.1 * 0.9 * 2 / 1000).
    assert found.minimum_detectable == pytest.approx(2.80164 * math.sqrt(0.09 * 0.002), rel=1e-4)


@pytest.mark.parametrize(
    ("control", "treatment"),
    [
        ((1000, 100), (1000, 130)),
        ((5000, 250), (5200, 240)),
        ((20_000, 1_900), (19_800, 2_050)),
        ((300, 12), (900, 45)),  # unequal weights
        ((120, 118), (130, 129)),  # near 100 %
    ],
)
def test_the_same_numbers_as_gbstats(control: tuple[int, int], treatment: tuple[int, int]) -> None:
    """GrowthBook's implementation on the same counts: the sequential result to the last
    digits (the same mSPRT and tuning), the fixed-sample interval within what its Welch t
    (against our z) moves, the Bayesian chance to beat within what its normal approximation
    (against our exact Beta integral) moves."""
    ours = compare(Arm(*control), Arm(*treatment))
    a = ProportionStatistic(n=control[0], sum=control[1])
    b = ProportionStatistic(n=treatment[0], sum=treatment[1])
    absolute = FrequentistConfig(difference_type="absolute")
    fixed = TwoSidedTTest(a, b, absolute).compute_result()
    assert ours.difference_interval is not None and ours.p_value is not None
    assert ours.difference == pytest.approx(fixed.expected, abs=1e-12)
    assert ours.difference_interval.low == pytest.approx(fixed.ci[0], abs=2e-3)
    assert ours.difference_interval.high == pytest.approx(fixed.ci[1], abs=2e-3)
    # Their p-value is the unpooled (Welch) one; ours pools the rates under the null, as the
    # textbook z-test does: the same where the arms are alike, apart by a few hundredths at
    # 300 against 900 visitors. The unpooled one, from our interval's standard error:
    error = (ours.difference_interval.high - ours.difference_interval.low) / (2 * 1.959964)
    unpooled = 2 * stats.norm.sf(abs(ours.difference) / error)
    assert unpooled == pytest.approx(fixed.p_value, abs=3e-3)
    assert ours.p_value == pytest.approx(fixed.p_value, abs=0.05)
    config = SequentialConfig(difference_type="absolute", sequential_tuning_parameter=TUNING)
    running = SequentialTwoSidedTTest(a, b, config).compute_result()
    assert ours.sequential_p_value == pytest.approx(running.p_value, rel=1e-9, abs=1e-12)
    assert ours.sequential_interval is not None
    assert ours.sequential_interval.low == pytest.approx(running.ci[0], rel=1e-9)
    assert ours.sequential_interval.high == pytest.approx(running.ci[1], rel=1e-9)
    relative = TwoSidedTTest(a, b, FrequentistConfig(difference_type="relative")).compute_result()
    assert ours.uplift == pytest.approx(relative.expected, rel=1e-9)
    assert ours.uplift_interval is not None
    assert ours.uplift_interval.low == pytest.approx(relative.ci[0], abs=2e-3)
    # The chance to beat: exact, so checked against two million posterior draws; gbstats'
    # normal approximation agrees within 0.01 once each arm has 100 conversions and 100
    # visitors who did not convert (at 12 conversions it is 0.04 off, near 100 % 0.02: a
    # reason to integrate the Beta posteriors).
    rng = np.random.default_rng(1)
    draws_a = rng.beta(1 + control[1], 1 + control[0] - control[1], 2_000_000)
    draws_b = rng.beta(1 + treatment[1], 1 + treatment[0] - treatment[1], 2_000_000)
    assert ours.chance_to_beat == pytest.approx(float((draws_b > draws_a).mean()), abs=2e-3)
    bayes = EffectBayesianABTest(a, b, EffectBayesianConfig(difference_type="absolute"))
    outcomes = (control[1], control[0] - control[1], treatment[1], treatment[0] - treatment[1])
    close = 0.01 if min(outcomes) >= 100 else 0.05
    assert ours.chance_to_beat == pytest.approx(bayes.compute_result().chance_to_win, abs=close)


def test_edge_cases_answer_without_nonsense() -> None:
    nothing = compare(Arm(1000, 0), Arm(1000, 0))  # zero conversions in both
    assert nothing.difference == 0 and nothing.p_value == 1.0
    assert nothing.sequential_p_value is None and nothing.uplift is None
    assert nothing.chance_to_beat == pytest.approx(0.5)
    everyone = compare(Arm(500, 500), Arm(400, 400))  # 100 % in both
    assert everyone.p_value == 1.0 and everyone.uplift == 0.0
    assert everyone.chance_to_beat is not None and 0.3 < everyone.chance_to_beat < 0.7
    one_side = compare(Arm(1000, 0), Arm(1000, 12))  # no conversion in the control
    assert one_side.p_value is not None and one_side.p_value < 0.001
    assert one_side.uplift is None  # relative to a rate of 0: undefined, not infinite
    assert one_side.chance_to_beat is not None and one_side.chance_to_beat > 0.999
    empty = compare(Arm(0, 0), Arm(800, 40))  # one variant without traffic
    assert empty.p_value is None and empty.chance_to_beat is None
    assert empty.sequential_p_value is None and empty.minimum_detectable is None
    assert sequential(Arm(0, 0), Arm(10, 1)) == (None, None)
    with pytest.raises(ValueError, match="impossible counts"):
        Arm(10, 11)
    for found in (nothing, everyone, one_side, empty):
        for value in (found.p_value, found.sequential_p_value, found.chance_to_beat):
            assert value is None or math.isfinite(value)


def test_sample_ratio_mismatch_against_unequal_weights() -> None:
    assert sample_ratio_mismatch([2_500, 7_500], [1, 3]) == pytest.approx(1.0)
    assert sample_ratio_mismatch([2_400, 7_600], [25, 75]) > 0.01  # noise
    assert sample_ratio_mismatch([5_000, 5_000], [1, 3]) < 1e-100  # broken assignment
    assert sample_ratio_mismatch([5_000, 5_300], [1, 1]) == pytest.approx(0.00312, abs=1e-5)
    assert sample_ratio_mismatch([0, 0, 0], [1, 1, 1]) is None


def test_holm_adjusts_for_several_comparisons() -> None:
    # Sorted 0.01, 0.03, 0.04 -> 3 * 0.01, 2 * 0.03, max(0.06, 1 * 0.04): 0.03, 0.06, 0.06.
    assert holm([0.01, None, 0.04, 0.03]) == pytest.approx([0.03, None, 0.06, 0.06])
    assert holm([None]) == [None]


def test_the_minimum_detectable_effect_shrinks_with_the_sample() -> None:
    small = minimum_detectable(Arm(1_000, 100), Arm(1_000, 100))
    large = minimum_detectable(Arm(100_000, 10_000), Arm(100_000, 10_000))
    assert small is not None and large is not None
    assert large == pytest.approx(small / 10, rel=1e-9)  # sqrt(100) times smaller


def test_peeking_at_an_aa_test_the_sequential_p_value_keeps_its_promise() -> None:
    """2,000 A/A experiments (both at 10 %), 250 visitors per arm between looks, 20 looks
    each; the owner calls the test as soon as a p-value is under alpha. The sequential
    p-value does that in at most alpha of them; the naive fixed-sample one far more often."""
    rng = np.random.default_rng(20261206)
    runs, looks, batch, rate = 2_000, 20, 250, 0.10
    control = rng.binomial(batch, rate, size=(runs, looks)).cumsum(axis=1)
    treatment = rng.binomial(batch, rate, size=(runs, looks)).cumsum(axis=1)
    exposed = batch * np.arange(1, looks + 1)
    naive_calls = sequential_calls = 0
    for run in range(runs):
        naive = sequential_called = False
        for look in range(looks):
            a, b = (
                Arm(int(exposed[look]), int(control[run, look])),
                Arm(int(exposed[look]), int(treatment[run, look])),
            )
            p_sequential, _interval = sequential(a, b)
            if p_sequential is not None and p_sequential < ALPHA:
                sequential_called = True
            if not naive:
                pooled = (a.converted + b.converted) / (2 * a.exposed)
                spread = math.sqrt(pooled * (1 - pooled) * 2 / a.exposed)
                naive = spread > 0 and 2 * stats.norm.sf(abs(b.rate - a.rate) / spread) < ALPHA
        naive_calls += naive
        sequential_calls += sequential_called
    print(
        f"A/A, {runs} runs x {looks} looks: false 'significant' calls "
        f"sequential {sequential_calls / runs:.3f}, naive fixed-sample {naive_calls / runs:.3f}"
    )
    assert sequential_calls / runs <= ALPHA
    assert naive_calls / runs > 2 * ALPHA  # peeking breaks the fixed-sample promise


@pytest.mark.slow
def test_the_intervals_cover_a_known_uplift_at_their_rate() -> None:
    """1,000 A/B experiments with a true difference of 2 points (10 % -> 12 %), 3,000 visitors
    per arm: the fixed-sample 95 % interval covers it about 95 % of the time, the confidence
    sequence (wider: valid at every look) at least that often."""
    rng = np.random.default_rng(7)
    runs, visitors, difference = 1_000, 3_000, 0.02
    fixed = running = 0
    for converted_a, converted_b in zip(
        rng.binomial(visitors, 0.10, runs), rng.binomial(visitors, 0.12, runs), strict=True
    ):
        a, b = Arm(visitors, int(converted_a)), Arm(visitors, int(converted_b))
        found = compare(a, b)
        assert found.difference_interval is not None and found.sequential_interval is not None
        fixed += found.difference_interval.covers(difference)
        running += found.sequential_interval.covers(difference)
    print(
        f"coverage of a 2-point uplift: fixed {fixed / runs:.3f}, sequential {running / runs:.3f}"
    )
    assert 0.93 <= fixed / runs <= 0.97
    assert running / runs >= 0.95
