"""The summaries and comparisons one report has already computed, so it computes each once.

A report asks for the same numbers from several places: the run's model table, its one
(baseline, candidate) pair, a tag that covers every case, the routing's default route and its
"all baseline" and "all candidate" blends all summarise the same runs. `metrics.summarise` and
`comparison.compare_quality` are pure functions of their runs and results, so a memo keyed by
which objects they were given returns the very numbers a second call would compute.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from pytest_llmgate.comparison import QualityComparison, compare_quality
from pytest_llmgate.metrics import ModelSummary, summarise
from pytest_llmgate.results import CaseResult, ModelRun


class Memo:
    """For one `build_report` (or one terminal summary): results and runs are frozen, and the memo
    keeps the objects it was given, so the identities it is keyed by cannot be reused meanwhile."""

    def __init__(self) -> None:
        self._summaries: dict[tuple[int, ...], tuple[Sequence[ModelRun], ModelSummary]] = {}
        self._comparisons: dict[tuple[int, ...], tuple[Sequence[CaseResult], QualityComparison | None]] = {}

    def summarise(self, role: str, runs: Sequence[ModelRun]) -> ModelSummary:
        """`metrics.summarise(role, runs)`; the role is only a label, so the runs decide."""
        key = tuple(map(id, runs))
        found = self._summaries.get(key)
        if found is None:
            found = self._summaries[key] = (list(runs), summarise(role, runs))
        summary = found[1]
        return summary if summary.role == role else dataclasses.replace(summary, role=role)

    def compare(self, results: Sequence[CaseResult]) -> QualityComparison | None:
        """`comparison.compare_quality(results)` (the order of `results` is part of the key: the
        bootstrap of a small run draws from them in order)."""
        key = tuple(map(id, results))
        found = self._comparisons.get(key)
        if found is None:
            found = self._comparisons[key] = (list(results), compare_quality(results))
        return found[1]
