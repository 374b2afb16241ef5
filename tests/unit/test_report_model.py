"""The RunReport every format renders: the verdict line, what blocks, a stable order, format by suffix."""

from __future__ import annotations

import dataclasses
import random

import pytest

from pytest_llmgate.config import GateSettings
from pytest_llmgate.gate import FAILED, PASSED, GateCheck
from pytest_llmgate.report.formats import render_report, report_format
from pytest_llmgate.report.model import build_report, gate_headline
from pytest_llmgate.results import CaseResult, Outcome

from .results_factory import (
    UPGRADE_CREATED,
    case,
    sample,
    two_candidate_report,
    upgrade_report,
    upgrade_suite,
)


def test_blocked_verdict_names_the_failed_gate_the_failing_cases_and_quality() -> None:
    report = upgrade_report()
    assert report.status == "BLOCKED"
    assert report.verdict == (
        "BLOCKED: gpt-5.5 vs gpt-4o, p95 latency 1320 ms (+65%), 1 case regressed, quality +18.2 (p = 0.36)"
    )
    assert report.failed_gates == ("llm_x.yaml::gate[latency]",)
    assert [result.case_id for result in report.failed_cases] == ["e5"]


def test_passed_verdict_gives_quality_and_cost_per_success() -> None:
    results = [result for result in upgrade_suite() if result.case_id != "e5"]
    report = upgrade_report(results, GateSettings(max_latency_increase=1.0))
    # quality 70 -> 100 (six +50 differences: p = 2/64); $0.03 / 4 -> $0.068 / 10 per success: -9%
    assert report.verdict == (
        "PASSED: gpt-5.5 vs gpt-4o, quality +30.0 (p = 0.031), cost per successful task -9%"
    )
    assert not report.blocked


def test_gate_headlines_give_the_number_each_gate_is_about() -> None:
    def check(name: str, **metrics: object) -> GateCheck:
        return GateCheck(name, FAILED, "summary", metrics=metrics)

    assert gate_headline(check("cost", cost_increase=0.42)) == "cost per successful task +42%"
    assert gate_headline(check("cost")) == "cost per successful task unbounded (the candidate passed no case)"
    assert gate_headline(check("quality", difference=-6.04, wilcoxon_p=0.031)) == "quality -6.0 (p = 0.031)"
    assert gate_headline(check("tokens", output_token_inflation=0.35)) == "output tokens +35%"
    assert gate_headline(check("drift", basis="observed", observed_ratio=1.2)) == "prompt-token drift +20.0%"
    assert gate_headline(GateCheck("drift", FAILED, "no basis")) == "gate[drift] failed: no basis"


def test_the_worst_of_several_files_is_named() -> None:
    results = upgrade_suite()
    gates = {
        "a.yaml::gate[cost]": GateCheck("cost", FAILED, "s", metrics={"cost_increase": 0.3}),
        "b.yaml::gate[cost]": GateCheck("cost", FAILED, "s", metrics={"cost_increase": 0.42}),
        "b.yaml::gate[quality]": GateCheck("quality", PASSED, "s", metrics={"difference": 1.0}),
    }
    report = build_report([r for r in results if r.case_id != "e5"], gates, created=UPGRADE_CREATED)
    assert report.verdict == (
        "BLOCKED: gpt-5.5 vs gpt-4o, cost per successful task +42% in b.yaml (worst of 2 files), "
        "quality +30.0 (p = 0.031)"
    )


def test_a_reported_regression_blocks_only_when_critical() -> None:
    regression = case("a", sample(True), sample(False))
    settings = GateSettings(per_case="report")
    assert build_report([regression], {}, settings=settings).status == "PASSED"
    critical = dataclasses.replace(regression, critical=True)
    assert build_report([critical], {}, settings=settings).status == "BLOCKED"
    assert build_report([regression], {}).status == "BLOCKED"


def test_already_failing_cases_do_not_block_the_upgrade() -> None:
    both_fail = case("a", sample(False), sample(False))
    assert both_fail.outcome == Outcome.ALREADY_FAILING
    report = build_report([both_fail], {})
    assert report.status == "PASSED"
    assert report.failed_cases == ()


def test_baseline_only_run() -> None:
    paired = case("a", sample(True), sample(True))
    failed = case("b", sample(False), sample(False))
    results = [
        CaseResult(paired.file, "a", (), paired.baseline, None, Outcome.PASSED),
        CaseResult(failed.file, "b", (), failed.baseline, None, Outcome.FAILED),
    ]
    report = build_report(results, {})
    assert report.candidate is None
    assert report.routing is None
    assert report.verdict == "BLOCKED: base, 1 case failed, 1/2 cases passed"


def test_order_is_stable_whatever_order_the_workers_finished_in() -> None:
    results = upgrade_suite()
    reference = upgrade_report(results)
    shuffled = results[:]
    random.Random(1).shuffle(shuffled)
    gates = dict(reversed(list(dict(reference.gates).items())))
    again = build_report(shuffled, gates, created=UPGRADE_CREATED)
    assert [result.case_id for result in again.results] == [
        "e1", "e2", "e3", "e4", "e5", "r1", "r2", "r3", "r4", "r5", "r6"
    ]  # fmt: skip
    assert [nodeid for nodeid, _ in again.gates] == [
        f"llm_x.yaml::gate[{name}]" for name in ("quality", "cost", "latency", "tokens", "drift")
    ]
    assert again == reference


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("report.md", "markdown"),
        ("out/REPORT.HTML", "html"),
        ("r.json", "json"),
        ("routing.yaml", "routing"),
    ],
)
def test_the_suffix_names_the_format(path: str, expected: str) -> None:
    assert report_format(path) == expected


def test_an_unknown_suffix_says_which_are_known() -> None:
    with pytest.raises(
        ValueError, match=r"suffix '\.txt'; use one of .*\.html.*e\.g\. --llm-report=report\.html"
    ):
        report_format("report.txt")


def test_render_report_dispatches_on_the_suffix() -> None:
    report = upgrade_report()
    assert render_report(report, "r.md").startswith("## ❌ BLOCKED: gpt-5.5 vs gpt-4o")
    assert render_report(report, "r.json").startswith('{\n  "baseline": "gpt-4o",')
    assert render_report(report, "r.html").startswith("<!DOCTYPE html>")
    assert "routes:\n  extraction: gpt-4o\n" in render_report(report, "routing.yml")
    only = case("a", sample(True), sample(True))
    baseline_only = build_report([CaseResult("f", "a", (), only.baseline, None, Outcome.PASSED)], {})
    assert render_report(baseline_only, "routing.yaml").startswith("# no routing recommendation")


# --- several candidates ----------------------------------------------------------------------


def test_several_candidates_get_a_verdict_each_and_the_run_is_blocked_by_either() -> None:
    report = two_candidate_report()
    assert report.status == "BLOCKED"
    assert [(pair.candidate, pair.status) for pair in report.pairs] == [
        ("gpt-5.5", "BLOCKED"),
        ("o4-mini", "PASSED"),
    ]
    assert report.verdict == (
        "BLOCKED: gpt-5.5: BLOCKED, p95 latency 1320 ms (+65%), 1 case regressed, quality +18.2 (p = 0.36); "
        "o4-mini: PASSED, quality +27.3 (p = 0.031), cost per successful task -85%"
    )
    assert report.pairs[0].failed_gates == ("llm_x.yaml::gate[latency][gpt-5.5]",)
    assert report.pairs[1].failed_gates == ()
    assert [nodeid for nodeid, _ in report.pairs[1].gates] == [
        f"llm_x.yaml::gate[{name}][o4-mini]" for name in ("quality", "cost", "latency", "tokens", "drift")
    ]
    # One baseline row (each case once), then a row per candidate; no run-wide mixed comparison.
    assert [(s.model, s.role, s.cases) for s in report.summaries] == [
        ("gpt-4o", "baseline", 11),
        ("gpt-5.5", "candidate", 11),
        ("o4-mini", "candidate", 11),
    ]
    assert report.comparison is None
    assert report.inflation is None
    assert report.title == "gpt-5.5, o4-mini vs gpt-4o"
    assert [tag.cases for tag in report.tags] == [5, 6]


def test_one_candidate_report_is_one_pair_with_the_run_wide_numbers() -> None:
    report = upgrade_report()
    [pair] = report.pairs
    assert (pair.baseline, pair.candidate, pair.status) == ("gpt-4o", "gpt-5.5", report.status)
    assert pair.comparison == report.comparison
    assert pair.inflation == report.inflation
    assert not report.several
