"""Descriptive statistics used by reports and gates (pure, no numpy)."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from statistics import NormalDist


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100) by linear interpolation between closest ranks (numpy's default).

    None for no values, so that a report says "n/a" instead of inventing a number.
    """
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be in [0, 100], got {q}")
    if not values:
        return None
    return _interpolated(sorted(values), q)


def _interpolated(ordered: Sequence[float], q: float) -> float:
    position = (len(ordered) - 1) * q / 100.0
    low = math.floor(position)
    high = math.ceil(position)
    if low == high:
        return float(ordered[low])
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def mean(values: Sequence[float]) -> float | None:
    return math.fsum(values) / len(values) if values else None  # fsum: independent of order


def weighted_mean(values: Sequence[float], weights: Sequence[float]) -> float | None:
    """sum(w x) / sum(w); None for no values (or no weight), like `mean`."""
    total = math.fsum(weights)
    if not values or total <= 0:
        return None
    return math.fsum(value * weight for value, weight in zip(values, weights, strict=True)) / total


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value from the discordant pair counts.

    `b` counts cases only the baseline passed and `c` cases only the candidate passed; under
    "no difference" each discordant pair goes either way with probability 1/2, so the p-value is
    min(1, 2 * P(X <= min(b, c))) with X ~ Binomial(b + c, 1/2). No discordant pairs is no
    evidence of a difference: 1.0. Exact integer arithmetic, so large counts do not underflow.
    """
    if isinstance(b, bool) or isinstance(c, bool) or not isinstance(b, int) or not isinstance(c, int):
        raise TypeError(f"discordant counts must be integers, got b={b!r}, c={c!r}")
    if b < 0 or c < 0:
        raise ValueError(f"discordant counts must be >= 0, got b={b}, c={c}")
    return _two_sided_binomial_half(b, c)


def sign_test(wins: int, losses: int) -> float:
    """Two-sided exact sign test: p-value of `wins` against `losses` when each is equally likely.

    Ties are left out before calling (they say nothing about the direction). Under "neither model
    is better" the number of wins among wins + losses is Binomial(n, 1/2); the p-value is
    min(1, 2 * P(X <= min(wins, losses))), exact in integers. No decided case: 1.0.
    """
    for name, count in (("wins", wins), ("losses", losses)):
        if isinstance(count, bool) or not isinstance(count, int):
            raise TypeError(f"{name} must be an integer, got {count!r}")
        if count < 0:
            raise ValueError(f"{name} must be >= 0, got {count}")
    return _two_sided_binomial_half(wins, losses)


def _two_sided_binomial_half(b: int, c: int) -> float:
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(b, c) + 1))
    return min(1.0, 2 * tail / (1 << n))


def paired_sample_size(sd: float, delta: float, alpha: float, power: float = 0.8) -> int | None:
    """About how many paired cases a two-sided test at `alpha` needs to detect a mean shift of
    `delta` with probability `power`, when the paired differences spread with standard deviation
    `sd`.

    The normal approximation n = ((z[1 - alpha/2] + z[power]) * sd / delta)^2, divided by the
    Wilcoxon signed-rank test's asymptotic relative efficiency to the t-test under normality
    (3/pi), since the gate decides with Wilcoxon. Never fewer cases than the smallest sample whose
    exact Wilcoxon p-value can fall below `alpha` at all (2 / 2^n < alpha: 6 cases at 0.05).
    None when there is nothing to detect (`delta` <= 0) or no spread to estimate it from.
    """
    if not 0 < alpha < 1 or not 0 < power < 1:
        raise ValueError(f"alpha and power must be in (0, 1), got {alpha} and {power}")
    if delta <= 0 or sd <= 0 or math.isnan(sd):
        return None
    normal = NormalDist()
    z = normal.inv_cdf(1 - alpha / 2) + normal.inv_cdf(power)
    needed = math.ceil((z * sd / delta) ** 2 / (3 / math.pi))
    smallest = 1
    while 2 / (1 << smallest) >= alpha:
        smallest += 1
    return max(needed, smallest)


WILCOXON_EXACT_MAX_N = 50
"""Largest sample without ties or zeros given the exact null distribution (scipy's `auto` limit)."""

WILCOXON_PERMUTATION_MAX_N = 13
"""Largest sample with ties or zeros given the exact conditional distribution (as scipy does)."""


def wilcoxon_signed_rank(differences: Sequence[float], *, correction: bool = True) -> float:
    """Two-sided p-value of the Wilcoxon signed-rank test on paired differences.

    Follows `scipy.stats.wilcoxon(d)` (zero_method="wilcox", method="auto"), so the numbers in a
    report can be checked with scipy:

    - zero differences are dropped (they say nothing about the direction);
    - no ties and no zeros, n <= 50: the exact null distribution;
    - ties or zeros and at most 13 differences (zeros included): the exact distribution of the
      statistic over all sign flips of the observed midranks (scipy's permutation test, which is
      exhaustive, hence deterministic, at this size);
    - otherwise the normal approximation with the tie correction of the variance.

    The one deliberate difference: the normal approximation applies the continuity correction
    by default (scipy's default is `correction=False`), which is the more conservative choice
    for a gate; pass `correction=False` for scipy's default number. With no non-zero differences
    there is no evidence of a difference, so the result is 1.0 (scipy gives NaN for an empty
    sample).
    """
    total = len(differences)
    nonzero = [float(d) for d in differences if d != 0]
    if any(math.isnan(d) for d in nonzero):
        raise ValueError("differences must not contain NaN")
    n = len(nonzero)
    if n == 0:
        return 1.0
    doubled_ranks = _doubled_midranks([abs(d) for d in nonzero])
    observed = sum(rank for rank, d in zip(doubled_ranks, nonzero, strict=True) if d > 0)  # 2 * R+
    has_ties = len(set(doubled_ranks)) < n
    exact = (not has_ties and total == n and n <= WILCOXON_EXACT_MAX_N) or total <= WILCOXON_PERMUTATION_MAX_N
    if exact:
        counts = _signed_rank_sum_counts(doubled_ranks)
        below = sum(counts[: observed + 1])
        above = sum(counts[observed:])
        return min(1.0, 2 * min(below, above) / (1 << n))
    mean_rank_sum = n * (n + 1) / 4
    tie_sizes: dict[int, int] = {}
    for rank in doubled_ranks:
        tie_sizes[rank] = tie_sizes.get(rank, 0) + 1
    tie_term = sum(t**3 - t for t in tie_sizes.values())
    sd = math.sqrt((n * (n + 1) * (2 * n + 1) - tie_term / 2) / 24)
    z = (observed / 2 - mean_rank_sum) / sd
    if correction and z != 0:
        z -= math.copysign(0.5, z) / sd
    return min(1.0, math.erfc(abs(z) / math.sqrt(2)))


def _doubled_midranks(values: Sequence[float]) -> list[int]:
    """Twice the average ranks (1-based), so that midranks of ties stay integers."""
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        doubled = start + end + 2  # (start + 1) + (end + 1): twice the midrank of the group
        for position in range(start, end + 1):
            ranks[order[position]] = doubled
        start = end + 1
    return ranks


def _signed_rank_sum_counts(weights: Sequence[int]) -> list[int]:
    """counts[s] = how many of the 2**n sign assignments give a positive-rank sum of s."""
    counts = [1]
    for weight in weights:
        grown = counts + [0] * weight
        for total, ways in enumerate(counts):
            if ways:
                grown[total + weight] += ways
        counts = grown
    return counts


RESAMPLING_BUDGET = 200_000
"""Most values drawn by the resampling bootstrap (cases x resamples); past it the interval comes from
the bootstrap distribution's Cornish-Fisher expansion, which costs O(cases)."""


def bootstrap_mean_ci(
    differences: Sequence[float],
    confidence: float = 0.95,
    resamples: int = 10000,
    seed: int = 0,
    weights: Sequence[float] | None = None,
) -> tuple[float, float]:
    """Percentile-bootstrap confidence interval of the mean, the same for the same seed.

    Small samples (cases x resamples up to `RESAMPLING_BUDGET`) are resampled with their own
    `random.Random(seed)`, so a report is reproducible and no global state moves. Resampling
    costs O(cases x resamples): 2,000 cases took 20 million draws, the largest single cost of a
    replay. Past the budget the same percentiles are read off the bootstrap distribution of the
    mean analytically: its mean is the sample mean, its variance the plug-in variance over n, and
    its skewness the sample skewness over sqrt(n), so the second-order Cornish-Fisher expansion
    gives the percentile interval to O(1/n), which is below the resampling noise at those sizes
    (`tests/unit/test_stats.py` checks both against scipy's bootstrap).

    `weights` (cases' `weight`, > 0) make the statistic the weighted mean: cases are resampled as
    units, each carrying its weight, so a case counted N times is not N independent pieces of
    evidence. Past the budget the weighted mean is linearised (values m + w_i/mean(w) * (x_i - m),
    whose plain mean has the weighted mean's first-order distribution). Equal weights give
    exactly the unweighted interval.
    """
    if not differences:
        raise ValueError("bootstrap_mean_ci needs at least one value")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples}")
    values = [float(d) for d in differences]
    n = len(values)
    alpha = (1 - confidence) / 2
    if weights is not None:
        if len(weights) != n:
            raise ValueError(f"{len(weights)} weights for {n} values")
        if any(not weight > 0 or math.isinf(weight) for weight in weights):
            raise ValueError("weights must be finite numbers > 0")
        if len(set(weights)) == 1:
            weights = None  # equal weights: the plain mean, and the same numbers as without
    if weights is not None and n * resamples > RESAMPLING_BUDGET:
        centre = math.fsum(v * w for v, w in zip(values, weights, strict=True)) / math.fsum(weights)
        scale = math.fsum(weights) / n
        linear = [
            centre + weight / scale * (value - centre) for value, weight in zip(values, weights, strict=True)
        ]
        return _cornish_fisher_interval(linear, alpha)
    if n * resamples > RESAMPLING_BUDGET:
        return _cornish_fisher_interval(values, alpha)
    rng = random.Random(seed)
    if weights is not None:
        pairs = list(zip(values, weights, strict=True))
        means = []
        for _ in range(resamples):
            drawn = rng.choices(pairs, k=n)
            means.append(math.fsum(v * w for v, w in drawn) / math.fsum(w for _, w in drawn))
        means.sort()
        return _interpolated(means, 100 * alpha), _interpolated(means, 100 * (1 - alpha))
    means = [math.fsum(rng.choices(values, k=n)) / n for _ in range(resamples)]
    means.sort()
    return _interpolated(means, 100 * alpha), _interpolated(means, 100 * (1 - alpha))


def _cornish_fisher_interval(values: Sequence[float], alpha: float) -> tuple[float, float]:
    """The alpha and 1 - alpha quantiles of the bootstrap distribution of the mean, in O(n)."""
    n = len(values)
    centre = math.fsum(values) / n
    variance = math.fsum((value - centre) ** 2 for value in values) / n
    if variance <= 0:
        return centre, centre
    spread = math.sqrt(variance / n)
    third_moment = math.fsum((value - centre) ** 3 for value in values) / n
    skewness = third_moment / math.pow(variance, 1.5) / math.sqrt(n)
    normal = NormalDist()

    def quantile(probability: float) -> float:
        z = normal.inv_cdf(probability)
        return centre + spread * (z + skewness * (z * z - 1) / 6)

    return quantile(alpha), quantile(1 - alpha)
