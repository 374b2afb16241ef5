"""The live progress line: calls, errors, retries and spend as cases finish."""

from __future__ import annotations

import dataclasses

from pytest_llmgate.progress import Progress
from pytest_llmgate.results import ModelRun

from .results_factory import case, sample


def test_a_baseline_run_shared_by_several_candidates_counts_once() -> None:
    progress = Progress(clock=lambda: 0.0)
    first = case(
        "a", sample(True, cost=(0.001, 0.001)), sample(True, cost=(0.002, 0.002)), cand_model="gpt-5.5"
    )
    second = dataclasses.replace(first, candidate=ModelRun("o4-mini", (sample(True, cost=(0.0005, 0.0005)),)))
    progress.add(first)
    progress.add(second)
    assert progress.calls == 3
    assert progress.line() == "llmgate: 3 calls, 0 errors, 0 retries, $0.0070 spent, 0 s"


def test_judge_calls_are_calls_and_spend_too() -> None:
    progress = Progress(clock=lambda: 0.0)
    graded = dataclasses.replace(sample(True, cost=(0.001, 0.001)), judge_calls=2, judge_cost_usd=0.01)
    unpriced = dataclasses.replace(sample(True, cost=(0.001, 0.001)), judge_calls=1)
    progress.add(case("a", graded, unpriced))
    assert progress.calls == 5
    assert progress.line() == (
        "llmgate: 5 calls, 0 errors, 0 retries, $0.0140 spent (+1 calls of unknown price), 0 s"
    )
