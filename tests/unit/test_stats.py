"""Statistics used by the comparison: checked against scipy and against hand-computed values."""

from __future__ import annotations

import random
import statistics

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats as scipy_stats

from pytest_llmgate import stats
from pytest_llmgate.stats import bootstrap_mean_ci, mcnemar_exact, mean, percentile, wilcoxon_signed_rank

SCIPY_REL = 1e-9
"""Relative tolerance against scipy: both sides are exact up to float rounding."""


def _sample(seed: int, n: int, *, shift: float = 0.3, digits: int | None = None) -> list[float]:
    rng = random.Random(seed)
    values = [rng.gauss(shift, 1.0) for _ in range(n)]
    return [round(value, digits) for value in values] if digits is not None else values


# --- percentile and mean -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        # numpy.percentile(..., method="linear") values, worked by hand.
        ([1, 2, 3, 4], 25, 1.75),
        ([1, 2, 3, 4], 50, 2.5),
        ([10, 20, 30, 40, 50], 90, 46.0),
        ([40, 10, 30, 20, 50], 95, 48.0),
        ([3.0], 99, 3.0),
        ([5, 1], 0, 1.0),
        ([5, 1], 100, 5.0),
    ],
)
def test_percentile_matches_numpy_linear(values: list[float], q: float, expected: float) -> None:
    assert percentile(values, q) == pytest.approx(expected)


def test_percentile_and_mean_of_nothing_are_none() -> None:
    assert percentile([], 50) is None
    assert mean([]) is None
    with pytest.raises(ValueError, match="percentile must be in"):
        percentile([1.0], 101)


# --- McNemar ---------------------------------------------------------------------------------


@pytest.mark.parametrize("b", [0, 1, 2, 3, 5, 8, 13, 20, 40])
@pytest.mark.parametrize("c", [0, 1, 2, 4, 7, 12, 25, 60])
def test_mcnemar_matches_scipy_binomtest(b: int, c: int) -> None:
    scipy_stats = pytest.importorskip("scipy.stats")
    if b + c == 0:
        assert mcnemar_exact(b, c) == 1.0
        return
    expected = scipy_stats.binomtest(b, b + c, 0.5).pvalue
    assert mcnemar_exact(b, c) == pytest.approx(expected, rel=SCIPY_REL, abs=1e-300)


def test_mcnemar_hand_values() -> None:
    assert mcnemar_exact(0, 5) == pytest.approx(2 / 32)
    assert mcnemar_exact(1, 4) == pytest.approx(2 * 6 / 32)
    assert mcnemar_exact(3, 3) == 1.0
    # Exact integer arithmetic until the final division: 2 / 2**1000 is still a normal float.
    assert mcnemar_exact(0, 1000) == pytest.approx(2.0**-999)


@pytest.mark.parametrize(("b", "c"), [(-1, 2), (2, -1)])
def test_mcnemar_rejects_negative_counts(b: int, c: int) -> None:
    with pytest.raises(ValueError, match="must be >= 0"):
        mcnemar_exact(b, c)


@given(st.integers(0, 400), st.integers(0, 400))
def test_mcnemar_is_a_symmetric_probability(b: int, c: int) -> None:
    p = mcnemar_exact(b, c)
    assert 0.0 <= p <= 1.0
    assert p == mcnemar_exact(c, b)


# --- Wilcoxon signed-rank --------------------------------------------------------------------

WILCOXON_SAMPLES = {
    "n=8 no ties (exact)": _sample(1, 8),
    "n=20 no ties (exact)": _sample(2, 20),
    "n=30 no ties (exact, scipy auto up to 50)": _sample(3, 30, shift=0.4),
    "n=50 no ties (exact)": _sample(4, 50, shift=0.1),
    "n=60 no ties (normal)": _sample(5, 60, shift=0.3),
    "n=10 ties (all sign flips)": [1.0, -1.0, 2.0, 2.0, 2.0, 3.5, -0.5, 0.5, 4.0, 1.0],
    "n=12 ties and zeros (all sign flips)": [0.0, 1.0, 1.0, -2.0, 3.0, 0.0, 2.0, 2.0, 5.0, -1.0, 4.0, 6.0],
    "n=9 zeros, no ties (all sign flips)": [0.0, 1.5, -0.2, 3.1, 2.2, 0.0, 4.4, 0.7, 1.1],
    "n=20 ties (normal)": _sample(6, 20, digits=0),
    "n=40 ties and zeros (normal)": _sample(7, 40, shift=0.2, digits=0),
    "n=100 ties (normal)": _sample(8, 100, shift=-0.15, digits=1),
    "n=30 scores in steps of 0.25 (normal)": [round(x * 4) / 4 for x in _sample(9, 30, shift=0.5)],
}


@pytest.mark.parametrize("differences", WILCOXON_SAMPLES.values(), ids=WILCOXON_SAMPLES.keys())
def test_wilcoxon_matches_scipy(differences: list[float]) -> None:
    scipy_stats = pytest.importorskip("scipy.stats")
    # Default: continuity correction on (scipy's correction=True); scipy's own default is False.
    expected = scipy_stats.wilcoxon(differences, correction=True).pvalue
    assert wilcoxon_signed_rank(differences) == pytest.approx(expected, rel=SCIPY_REL, abs=1e-15)
    expected_default = scipy_stats.wilcoxon(differences).pvalue
    assert wilcoxon_signed_rank(differences, correction=False) == pytest.approx(
        expected_default, rel=SCIPY_REL, abs=1e-15
    )


def test_wilcoxon_hand_values() -> None:
    # n=5, all positive: R+ = 15 is the largest of 32 equally likely sums, p = 2/32.
    assert wilcoxon_signed_rank([1, 2, 3, 4, 5]) == pytest.approx(2 / 32)
    assert wilcoxon_signed_rank([-1, -2, -3, -4, -5]) == pytest.approx(2 / 32)
    assert wilcoxon_signed_rank([0.0, 0.0]) == 1.0
    assert wilcoxon_signed_rank([]) == 1.0


def test_wilcoxon_rejects_nan() -> None:
    with pytest.raises(ValueError, match="NaN"):
        wilcoxon_signed_rank([1.0, float("nan")])


@given(st.lists(st.integers(-5, 5), max_size=40))
def test_wilcoxon_is_a_probability_symmetric_in_sign(differences: list[int]) -> None:
    p = wilcoxon_signed_rank(differences)
    assert 0.0 <= p <= 1.0
    assert p == pytest.approx(wilcoxon_signed_rank([-d for d in differences]), rel=1e-12)


# --- bootstrap -------------------------------------------------------------------------------


def test_bootstrap_is_deterministic_for_a_seed() -> None:
    values = _sample(10, 40)
    first = bootstrap_mean_ci(values, resamples=2000, seed=7)
    assert bootstrap_mean_ci(values, resamples=2000, seed=7) == first
    assert bootstrap_mean_ci(values, resamples=2000, seed=8) != first


def test_bootstrap_ci_contains_the_true_mean_and_the_sample_mean() -> None:
    # The 200 evenly spaced quantiles of Normal(0.3, 1): a sample whose mean is exactly 0.3.
    normal = statistics.NormalDist(0.3, 1.0)
    values = [normal.inv_cdf((i + 0.5) / 200) for i in range(200)]
    assert statistics.fmean(values) == pytest.approx(0.3)
    low, high = bootstrap_mean_ci(values)
    assert low < 0.3 < high
    # The width is close to the normal theory interval: 2 * 1.96 * s / sqrt(n).
    normal_width = 2 * 1.96 * statistics.stdev(values) / len(values) ** 0.5
    assert high - low == pytest.approx(normal_width, rel=0.1)


def test_bootstrap_narrower_at_lower_confidence() -> None:
    values = _sample(12, 50)
    low95, high95 = bootstrap_mean_ci(values, confidence=0.95, resamples=3000)
    low80, high80 = bootstrap_mean_ci(values, confidence=0.80, resamples=3000)
    assert low95 < low80 < high80 < high95


def test_bootstrap_of_a_constant_is_that_constant() -> None:
    assert bootstrap_mean_ci([0.25, 0.25, 0.25], resamples=50) == (0.25, 0.25)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"differences": []}, "at least one value"),
        ({"differences": [1.0], "confidence": 1.0}, "confidence must be in"),
        ({"differences": [1.0], "resamples": 0}, "resamples must be >= 1"),
    ],
)
def test_bootstrap_rejects_bad_arguments(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        bootstrap_mean_ci(**kwargs)  # type: ignore[arg-type]


def _skewed(seed: int, n: int) -> list[float]:
    """Quality differences as suites produce them: mostly ties, a few large moves either way."""
    rng = random.Random(seed)
    return [rng.choice([0.0, 0.0, 0.0, 0.0, 100.0, -100.0, 50.0, -33.3]) for _ in range(n)]


@pytest.mark.parametrize("n", [300, 2000])
def test_bootstrap_of_large_samples_matches_scipys_resampling(n: int) -> None:
    # Past the resampling budget the interval is computed in O(n); it must agree with scipy's
    # percentile bootstrap (10,000 resamples) within that bootstrap's own resampling noise.
    values = _skewed(n, n)
    assert n * 10000 > stats.RESAMPLING_BUDGET
    low, high = bootstrap_mean_ci(values)
    expected = scipy_stats.bootstrap(
        (values,), statistics.fmean, method="percentile", n_resamples=10000, random_state=1, vectorized=False
    ).confidence_interval
    width = expected.high - expected.low
    assert low == pytest.approx(expected.low, abs=0.05 * width)
    assert high == pytest.approx(expected.high, abs=0.05 * width)


def test_bootstrap_switches_method_at_the_budget_without_a_jump() -> None:
    values = _skewed(5, 150)
    resampled = bootstrap_mean_ci(values, resamples=stats.RESAMPLING_BUDGET // len(values))
    analytic = bootstrap_mean_ci(values, resamples=stats.RESAMPLING_BUDGET // len(values) + 1)
    width = resampled[1] - resampled[0]
    assert analytic != resampled  # the second call really took the other path
    assert analytic[0] == pytest.approx(resampled[0], abs=0.06 * width)
    assert analytic[1] == pytest.approx(resampled[1], abs=0.06 * width)


def test_bootstrap_of_a_large_constant_sample_is_that_constant() -> None:
    assert bootstrap_mean_ci([2.5] * 5000) == (2.5, 2.5)


def test_paired_sample_size_gives_the_power_it_promises() -> None:
    """Normal differences with sd 10 and mean -5: at the returned size the Wilcoxon test rejects
    about 80% of the time; at half of it, clearly less often."""
    from pytest_llmgate.stats import paired_sample_size

    needed = paired_sample_size(10.0, 5.0, 0.05)
    assert needed is not None
    rng = random.Random(7)

    def rejection_rate(n: int, trials: int = 400) -> float:
        hits = sum(
            wilcoxon_signed_rank([rng.gauss(-5.0, 10.0) for _ in range(n)]) < 0.05 for _ in range(trials)
        )
        return hits / trials

    assert 0.72 <= rejection_rate(needed) <= 0.9
    assert rejection_rate(needed // 2) < 0.65


def test_paired_sample_size_edges() -> None:
    from pytest_llmgate.stats import paired_sample_size

    assert paired_sample_size(0.0, 2.0, 0.05) is None  # no spread: nothing to estimate from
    assert paired_sample_size(10.0, 0.0, 0.05) is None  # no drop to detect
    # A huge drop still needs the smallest sample whose exact p-value can fall below alpha.
    assert paired_sample_size(1.0, 100.0, 0.05) == 6  # 2 / 2**6 < 0.05 <= 2 / 2**5
    assert paired_sample_size(1.0, 100.0, 0.01) == 8
    assert paired_sample_size(20.0, 2.0, 0.05) > paired_sample_size(10.0, 2.0, 0.05)  # type: ignore[operator]
    with pytest.raises(ValueError, match="alpha"):
        paired_sample_size(1.0, 1.0, 1.5)
