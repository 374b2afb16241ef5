"""Scores and metrics (issue 14, part B): weight-0 metrics, named metrics, case thresholds and
weights, the sign test of pairwise wins, and how the reports show them."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import jsonschema
import pytest

from pytest_llmgate.assertions import AssertionConfigError, AssertionResult, parse_assertion, sample_passes
from pytest_llmgate.cases import parse_case_file
from pytest_llmgate.comparison import compare_quality
from pytest_llmgate.errors import CaseFileError
from pytest_llmgate.metrics import (
    ALL_CASES,
    judge_summary,
    metric_summaries,
    model_summaries,
    pairwise_summaries,
)
from pytest_llmgate.reply import Reply
from pytest_llmgate.report.html import render_html
from pytest_llmgate.report.json_report import load_schema, report_dict
from pytest_llmgate.report.markdown import render_markdown
from pytest_llmgate.report.scores import terminal_lines
from pytest_llmgate.results import CaseResult, ModelRun, Pairwise, Sample
from pytest_llmgate.runner import decide, failure_message
from pytest_llmgate.stats import bootstrap_mean_ci, sign_test

from .results_factory import case, sample, upgrade_report


def result(passed: bool, score: float, weight: float = 1.0, metric: str | None = None) -> AssertionResult:
    return AssertionResult("contains", passed, score, "ok" if passed else "not found", weight, metric)


# --- weight 0, threshold ------------------------------------------------------------------------


def test_a_weight_0_assertion_is_a_metric_only() -> None:
    checks = (result(True, 1.0), result(False, 0.0, weight=0, metric="tone"))
    assert sample_passes(checks)
    sample_ = Sample(Reply(text="x"), 1.0, True, assertions=checks, score=1.0)
    assert sample_.passed
    spec = parse_assertion({"type": "contains", "value": "x", "weight": 0})
    assert spec.metric_only


def test_a_case_threshold_lets_the_weighted_score_decide() -> None:
    checks = (result(True, 1.0, weight=3), result(False, 0.0, weight=1))  # score 0.75
    assert not sample_passes(checks)
    assert sample_passes(checks, threshold=0.75)
    assert not sample_passes(checks, threshold=0.8)


def test_a_failure_below_the_threshold_says_the_score_and_leaves_metrics_out() -> None:
    checks = (
        result(True, 1.0),
        result(False, 0.0, weight=2),
        AssertionResult("icontains", False, 0.0, "metric missed", 0.0, "style"),
    )
    run = ModelRun("m", (Sample(Reply(text="hi"), 1.0, True, assertions=checks, score=1 / 3, threshold=0.5),))
    assert not run.passed
    message = failure_message(run, "m fails the case")
    assert "FAIL score 0.33 below the case threshold 0.5" in message
    assert "not found" in message
    assert "metric missed" not in message


def test_metric_name_is_validated() -> None:
    assert parse_assertion({"type": "contains", "value": "x", "metric": " tone "}).metric == "tone"
    with pytest.raises(AssertionConfigError, match="metric must be a name") as info:
        parse_assertion({"type": "contains", "value": "x", "metric": ""})
    assert info.value.field == "metric"


def test_case_file_threshold_weight_and_their_errors(tmp_path: Path) -> None:
    path = tmp_path / "llm_x.yaml"
    parsed = parse_case_file(
        "baseline: m\ndefaults: {weight: 2}\ncases:\n"
        "  - {id: a, prompt: hi, threshold: 0.5}\n"
        "  - {id: b, prompt: hi, weight: 40}\n",
        path,
    )
    first, second = parsed.cases
    assert (first.threshold, first.weight) == (0.5, 2.0)
    assert (second.threshold, second.weight) == (None, 40.0)
    for bad, field, expected in (
        ("threshold: 2", "threshold", "threshold must be a score in [0, 1]"),
        ("weight: 0", "weight", "weight must be a number > 0"),
        ("weight: true", "weight", "weight must be a number > 0"),
    ):
        with pytest.raises(CaseFileError) as info:
            parse_case_file(f"baseline: m\ncases:\n  - {{id: c, prompt: hi, {bad}}}\n", path)
        assert expected in str(info.value)
        assert info.value.field == field


def test_the_verdict_uses_the_threshold(tmp_path: Path) -> None:
    (case_,) = parse_case_file(
        "baseline: m\ncases:\n  - {id: a, prompt: hi, threshold: 0.6}\n", tmp_path / "llm_x.yaml"
    ).cases
    checks = (result(True, 1.0, weight=2), result(False, 0.0))
    good = ModelRun("m", (Sample(Reply(text="x"), 1.0, True, assertions=checks, score=2 / 3, threshold=0.6),))
    assert decide(case_, good, None) == ("passed", "")


# --- case weight --------------------------------------------------------------------------------


def weighted(result_: CaseResult, weight: float) -> CaseResult:
    assert result_.candidate is not None
    return dataclasses.replace(
        result_,
        baseline=dataclasses.replace(result_.baseline, weight=weight),
        candidate=dataclasses.replace(result_.candidate, weight=weight),
    )


def test_case_weight_scales_quality_and_the_compared_difference() -> None:
    heavy = weighted(case("heavy", sample(True), sample(False)), 3)
    light = case("light", sample(True), sample(True))
    summaries = {summary.role: summary for summary in model_summaries([heavy, light])}
    assert summaries["baseline"].quality == pytest.approx(100.0)
    assert summaries["candidate"].quality == pytest.approx(25.0)  # (0 * 3 + 100 * 1) / 4
    comparison = compare_quality([heavy, light])
    assert comparison is not None
    assert comparison.difference == pytest.approx(-75.0)
    unweighted = compare_quality([weighted(heavy, 1), light])
    assert unweighted is not None
    assert unweighted.difference == pytest.approx(-50.0)
    # The tests count distinct cases: a weight is not more evidence.
    assert comparison.wilcoxon_p == unweighted.wilcoxon_p
    assert comparison.mcnemar_p == unweighted.mcnemar_p


def test_weight_survives_the_result_round_trip() -> None:
    heavy = weighted(case("heavy", sample(True), sample(False)), 3)
    heavy = dataclasses.replace(heavy, pairwise=Pairwise("loss", (-1, -1), "worse"))
    again = CaseResult.from_dict(heavy.to_dict())
    assert again.weight == 3.0
    assert again.pairwise == heavy.pairwise


def test_weighted_bootstrap_equals_the_plain_one_for_equal_weights_and_moves_with_weight() -> None:
    values = [-10.0, 0.0, 5.0, 20.0, -3.0]
    assert bootstrap_mean_ci(values, weights=[2.0] * 5) == bootstrap_mean_ci(values)
    low, high = bootstrap_mean_ci(values, weights=[1, 1, 1, 50, 1])
    plain_low, plain_high = bootstrap_mean_ci(values)
    assert low >= plain_low
    assert high > plain_high  # the heavy +20 case pulls the weighted mean up
    # Past the resampling budget: the linearised interval centres on the weighted mean.
    many = [float(i % 7) for i in range(40_000)]
    weights = [1.0 + (i % 3) for i in range(40_000)]
    centre = math.fsum(v * w for v, w in zip(many, weights, strict=True)) / math.fsum(weights)
    low, high = bootstrap_mean_ci(many, weights=weights)
    assert low < centre < high
    assert high - low < 0.1
    with pytest.raises(ValueError, match="weights"):
        bootstrap_mean_ci(values, weights=[1, 1, 1, 0, 1])


# --- sign test ----------------------------------------------------------------------------------


def _binomial_two_sided(wins: int, losses: int) -> float:
    n = wins + losses
    tail = sum(math.comb(n, k) for k in range(min(wins, losses) + 1)) / 2**n
    return min(1.0, 2 * tail)


@pytest.mark.parametrize(("wins", "losses"), [(0, 0), (5, 0), (8, 2), (2, 8), (10, 10), (3, 1), (60, 40)])
def test_sign_test_is_the_exact_two_sided_binomial(wins: int, losses: int) -> None:
    expected = 1.0 if wins + losses == 0 else _binomial_two_sided(wins, losses)
    assert sign_test(wins, losses) == pytest.approx(expected)


def test_sign_test_known_values_and_bad_input() -> None:
    assert sign_test(5, 0) == pytest.approx(0.0625)  # 2 / 2**5
    assert sign_test(8, 2) == pytest.approx(2 * 56 / 1024)
    assert sign_test(0, 0) == 1.0
    with pytest.raises(ValueError, match="wins"):
        sign_test(-1, 2)
    with pytest.raises(TypeError, match="losses"):
        sign_test(1, True)


# --- metrics and pairwise in the reports --------------------------------------------------------


def metric_sample(main: bool, metric_score: float) -> Sample:
    checks = (result(main, 1.0 if main else 0.0), result(metric_score >= 0.5, metric_score, 0.0, "tone"))
    return Sample(Reply(text="x"), 1.0, True, assertions=checks, score=1.0 if main else 0.0)


def scored_results() -> list[CaseResult]:
    one = case("one", metric_sample(True, 1.0), metric_sample(True, 0.5), tags=("geo",))
    two = case("two", metric_sample(True, 0.5), metric_sample(True, 0.0), tags=("geo",))
    three = case("three", sample(True), sample(True), tags=("math",))  # no metric
    return [
        dataclasses.replace(one, pairwise=Pairwise("win", (1, 1))),
        dataclasses.replace(two, pairwise=Pairwise("loss", (-1, 0))),
        dataclasses.replace(three, pairwise=Pairwise("tie", (1, -1))),
    ]


def test_named_metric_means_and_paired_difference() -> None:
    (summary,) = metric_summaries(scored_results())
    assert summary.name == "tone"
    assert summary.baseline == pytest.approx(75.0)
    assert summary.candidate == pytest.approx(25.0)
    assert summary.difference == pytest.approx(-50.0)
    assert summary.cases == 2


def test_pairwise_counts_per_tag_with_the_sign_test() -> None:
    rows = {row.tag: row for row in pairwise_summaries(scored_results())}
    assert [rows[ALL_CASES].wins, rows[ALL_CASES].ties, rows[ALL_CASES].losses] == [1, 1, 1]
    assert [rows["geo"].wins, rows["geo"].ties, rows["geo"].losses] == [1, 0, 1]
    assert [rows["math"].wins, rows["math"].ties, rows["math"].losses] == [0, 1, 0]
    assert rows[ALL_CASES].p_value == sign_test(1, 1)


def test_reports_show_metrics_and_pairwise() -> None:
    results = scored_results()
    lines = list(terminal_lines(results))
    assert "  tone: base 75.0 -> cand 25.0 (-50.0 points over 2 paired cases)" in lines
    assert "pairwise, cand vs base (the judge compared both replies, in both orders):" in lines
    assert "  (all cases): 1 win, 1 tie, 1 loss; sign test p = 1" in lines
    report = upgrade_report(results)
    markdown = render_markdown(report)
    assert "| tone | base | 75.0 | cand | 25.0 | -50.0 | 2 |" in markdown
    assert "| cand vs base | geo | 1 | 0 | 1 | 0 | 1 |" in markdown
    page = render_html(report)
    assert "<h2>Pairwise (candidate vs baseline, judged in both orders)</h2>" in page
    assert "<td>tone</td>" in page
    data = report_dict(report)
    jsonschema.validate(data, load_schema(), cls=jsonschema.Draft202012Validator)
    assert data["metrics"][0]["difference"] == pytest.approx(-50.0)
    assert data["pairwise"][0] == {
        "tag": ALL_CASES,
        "baseline_model": "base",
        "candidate_model": "cand",
        "wins": 1,
        "ties": 1,
        "losses": 1,
        "not_judged": 0,
        "sign_test_p": 1.0,
    }
    outcomes = {case_["case_id"]: case_["pairwise"]["outcome"] for case_ in data["cases"]}
    assert outcomes == {"one": "win", "two": "loss", "three": "tie"}


def test_pairwise_judge_calls_count_in_the_judge_summary() -> None:
    graded = dataclasses.replace(
        case("a", sample(True), sample(True)),
        pairwise=Pairwise("tie", (0, 0), judge_calls=2, judge_cost_usd=0.5),
    )
    summary = judge_summary([graded])
    assert summary is not None
    assert (summary.calls, summary.cost_usd) == (2, 0.5)


def test_no_metrics_no_pairwise_no_lines() -> None:
    plain = [case("a", sample(True), sample(True))]
    assert list(terminal_lines(plain)) == []
    data = report_dict(upgrade_report(plain))
    assert data["metrics"] == []
    assert data["pairwise"] == []
