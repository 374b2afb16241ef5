"""Case results: the verdicts derived from a frozen result are computed once and never go stale,
and a report computes each summary and comparison once (issue 17)."""

from __future__ import annotations

import dataclasses
import re

import pytest

from pytest_llmgate import metrics
from pytest_llmgate.comparison import compare_quality
from pytest_llmgate.report import memo as memo_module
from pytest_llmgate.report.memo import Memo
from pytest_llmgate.report.routing import recommend_routing
from pytest_llmgate.results import CaseResult, ModelRun, Sample

from .results_factory import sample, two_candidate_report, upgrade_report, upgrade_suite

DERIVED = ("errored", "pass_rate", "passed", "score")


def _fresh(results: list[CaseResult]) -> list[CaseResult]:
    return [CaseResult.from_dict(result.to_dict()) for result in results]


def test_derived_verdicts_are_fields_no_one_passes_compares_or_serialises() -> None:
    run = upgrade_suite()[0].candidate
    assert run is not None
    derived = {field.name for field in dataclasses.fields(ModelRun) if not field.init}
    assert derived == set(DERIVED)
    assert all(
        not field.compare and not field.repr for field in dataclasses.fields(ModelRun) if not field.init
    )
    assert [field.name for field in dataclasses.fields(Sample) if not field.init] == ["passed"]
    assert (run.errored, run.pass_rate, run.passed, run.score) == (False, 1.0, True, 1.0)
    fresh = ModelRun.from_dict(run.to_dict())
    assert fresh == run
    assert hash(fresh) == hash(run)
    assert fresh.to_dict() == run.to_dict()
    assert not any(re.search(rf"\b{name}=", repr(ModelRun("m", ()))) for name in DERIVED)
    with pytest.raises(TypeError):
        ModelRun("m", (), passed=True)  # type: ignore[call-arg]


def test_a_replaced_result_computes_its_own_verdicts_never_the_originals() -> None:
    passing = sample(True, cost=(0.001, 0.002))
    assert passing.passed
    assert passing.cost_usd == pytest.approx(0.003)
    failing = dataclasses.replace(passing, error="HTTP 500", input_cost_usd=None)
    assert (failing.passed, failing.cost_usd) == (False, None)
    assert dataclasses.replace(passing, assertions=sample(False).assertions).passed is False
    run = ModelRun("m", (passing, passing))
    assert (run.pass_rate, run.passed, run.errored, run.score) == (1.0, True, False, 1.0)
    worse = dataclasses.replace(run, samples=(passing, failing))
    assert (worse.pass_rate, worse.passed, worse.errored, worse.cost_usd) == (0.5, False, True, None)
    assert (run.pass_rate, run.passed) == (1.0, True)
    assert dataclasses.replace(worse, required_pass_rate=0.5).passed is False  # still errored
    two_of_three = ModelRun("m", (passing, passing, sample(False)), required_pass_rate=2 / 3)
    assert two_of_three.passed  # 2/3 >= 2/3, within the epsilon
    assert dataclasses.replace(two_of_three, required_pass_rate=0.67).passed is False
    assert ModelRun("m", ()).pass_rate == 0.0
    assert ModelRun("m", ()).passed is False


def test_the_memo_gives_what_summarise_and_compare_quality_give() -> None:
    results = upgrade_suite()
    runs = [result.candidate for result in results if result.candidate is not None]
    memo = Memo()
    summary = memo.summarise("candidate", runs)
    assert summary == metrics.summarise("candidate", runs)
    assert memo.summarise("candidate", list(runs)) is summary  # the same runs: computed once
    relabelled = memo.summarise("all candidate", runs)
    assert relabelled == dataclasses.replace(summary, role="all candidate")
    assert memo.summarise("candidate", runs[:3]) == metrics.summarise("candidate", runs[:3])
    assert memo.compare(results) == compare_quality(results)
    assert memo.compare(results) is memo.compare(list(results))
    reordered = results[::-1]
    assert memo.compare(reordered) is not memo.compare(results)  # the order is part of the key
    assert memo.compare(reordered) == compare_quality(reordered)


def test_a_report_summarises_each_set_of_runs_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[int, ...]] = []
    compared: list[tuple[int, ...]] = []

    def summarise(role: str, runs: list[ModelRun]) -> metrics.ModelSummary:
        calls.append(tuple(map(id, runs)))
        return metrics.summarise(role, runs)

    def compare(results: list[CaseResult]) -> object:
        compared.append(tuple(map(id, results)))
        return compare_quality(results)

    monkeypatch.setattr(memo_module, "summarise", summarise)
    monkeypatch.setattr(memo_module, "compare_quality", compare)
    report = upgrade_report(_fresh(upgrade_suite()))
    assert len(calls) == len(set(calls))
    assert len(compared) == len(set(compared))
    # Both models on all cases and on each of the two tags, and the routed blend; the run, its
    # pair, the default route and the "all" blends reuse the first two, each tag's route its own.
    assert len(calls) == 7
    assert len(compared) == 3  # all cases, each tag
    assert report.pairs[0].summaries == report.summaries
    assert report.routing is not None
    assert report.routing.default.baseline == report.summaries[0]


def test_the_routing_is_the_same_with_or_without_a_report_memo() -> None:
    results = upgrade_suite()
    shared = Memo()
    assert recommend_routing(results, 0.05, shared) == recommend_routing(_fresh(results), 0.05)
    several = list(two_candidate_report().results)
    assert recommend_routing(several, 0.05, Memo()) == recommend_routing(_fresh(several), 0.05)


def test_a_sample_that_never_answered_has_no_cost_and_does_not_pass() -> None:
    errored = Sample(None, 0.0, False, error="timeout", error_kind="timeout")
    assert (errored.passed, errored.cost_usd) == (False, None)
    assert ModelRun("m", (errored,)).errored
