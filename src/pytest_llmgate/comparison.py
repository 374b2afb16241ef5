"""Paired comparison of the candidate's quality with the baseline's, over the same cases.

Two views of one question, both reported:

* pass/fail pairs: the exact McNemar test on the discordant cases (only the baseline passed vs
  only the candidate passed);
* case scores (0-100): the Wilcoxon signed-rank test on the per-case differences and a bootstrap
  confidence interval of their mean.

The gate decides on the scores, because the quality score it thresholds is their mean; McNemar is
shown beside it because "3 cases broke, 1 got fixed" is what a reviewer reads first.

A case's `weight` scales its part in the quality scores, their difference and its interval (a
production prompt seen 40 times matters 40 times as much), but not in the Wilcoxon and McNemar
tests: a case counted N times is still one piece of evidence, not N.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from pytest_llmgate.metrics import plural
from pytest_llmgate.results import CaseResult
from pytest_llmgate.stats import (
    bootstrap_mean_ci,
    mcnemar_exact,
    paired_sample_size,
    weighted_mean,
    wilcoxon_signed_rank,
)

CONFIDENCE = 0.95


@dataclass(frozen=True)
class QualityComparison:
    """Candidate minus baseline over the cases both models answered without errors."""

    cases: int
    baseline_quality: float  # 0-100
    candidate_quality: float
    only_baseline_passed: int  # McNemar's b: regressions
    only_candidate_passed: int  # McNemar's c: improvements
    mcnemar_p: float
    wilcoxon_p: float
    ci_low: float  # 95% bootstrap interval of the mean score difference, in points
    ci_high: float
    difference_sd: float = 0.0  # sample standard deviation of the per-case score differences

    @property
    def difference(self) -> float:
        """Candidate quality minus baseline quality, in points (negative: the candidate is worse)."""
        return self.candidate_quality - self.baseline_quality

    @property
    def drop(self) -> float:
        return -self.difference

    def numbers(self) -> dict[str, float | int]:
        """The comparison as plain numbers (gate metrics, JSON report)."""
        return {
            "cases": self.cases,
            "baseline_quality": self.baseline_quality,
            "candidate_quality": self.candidate_quality,
            "difference": self.difference,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "wilcoxon_p": self.wilcoxon_p,
            "mcnemar_p": self.mcnemar_p,
            "regressed": self.only_baseline_passed,
            "improved": self.only_candidate_passed,
        }

    def significant(self, alpha: float) -> bool:
        return self.wilcoxon_p < alpha

    def cases_needed(self, drop: float, alpha: float) -> int | None:
        """About how many cases would detect a `drop`-point fall at `alpha` (80% power), judged
        from the spread of this run's case differences; None when there is no spread to go by."""
        return paired_sample_size(self.difference_sd, drop, alpha)

    def power_note(self, drop: float, alpha: float) -> str | None:
        """E.g. "17 cases cannot detect a 2-point drop at alpha 0.05; about 60 are needed", when
        the run has fewer cases than that: its "no significant difference" then means little."""
        needed = self.cases_needed(drop, alpha)
        if needed is None or needed <= self.cases:
            return None
        return (
            f"{plural(self.cases, 'case')} cannot detect a {drop:g}-point drop at alpha {alpha:g}; "
            f"about {needed} are needed"
        )

    def describe(self, alpha: float) -> str:
        """E.g. "quality 91.0 -> 85.0 (-6.0 points, 95% CI -11.0..-1.0) over 20 cases; Wilcoxon ..."."""
        verdict = "significant" if self.significant(alpha) else "not significant"
        return (
            f"quality {self.baseline_quality:.1f} -> {self.candidate_quality:.1f} "
            f"({self.difference:+.1f} points, {CONFIDENCE:.0%} CI {self.ci_low:+.1f}..{self.ci_high:+.1f}) "
            f"over {plural(self.cases, 'case')}; Wilcoxon p = {self.wilcoxon_p:.2g} "
            f"({verdict} at alpha {alpha:g}); "
            f"pass/fail: {self.only_baseline_passed} regressed, {self.only_candidate_passed} improved, "
            f"McNemar p = {self.mcnemar_p:.2g}"
        )


def compare_quality(results: Sequence[CaseResult]) -> QualityComparison | None:
    """The paired comparison, or None when no case has an error-free answer from both models."""
    pairs = [
        (result.baseline, result.candidate)
        for result in results
        if result.candidate is not None and not result.baseline.errored and not result.candidate.errored
    ]
    if not pairs:
        return None
    baseline_scores = [100.0 * baseline.score for baseline, _ in pairs]
    candidate_scores = [100.0 * candidate.score for _, candidate in pairs]
    differences = [c - b for b, c in zip(baseline_scores, candidate_scores, strict=True)]
    only_baseline = sum(baseline.passed and not candidate.passed for baseline, candidate in pairs)
    only_candidate = sum(candidate.passed and not baseline.passed for baseline, candidate in pairs)
    weights = [baseline.weight for baseline, _ in pairs]
    low, high = bootstrap_mean_ci(differences, confidence=CONFIDENCE, weights=weights)
    return QualityComparison(
        cases=len(pairs),
        baseline_quality=weighted_mean(baseline_scores, weights) or 0.0,
        candidate_quality=weighted_mean(candidate_scores, weights) or 0.0,
        only_baseline_passed=only_baseline,
        only_candidate_passed=only_candidate,
        mcnemar_p=mcnemar_exact(only_baseline, only_candidate),
        wilcoxon_p=wilcoxon_signed_rank(differences),
        ci_low=low,
        ci_high=high,
        difference_sd=statistics.stdev(differences) if len(differences) > 1 else 0.0,
    )
