"""The suite gates as pure functions: each verdict, its numbers and its reasons."""

from __future__ import annotations

import pytest

from pytest_llmgate.comparison import compare_quality
from pytest_llmgate.config import GateSettings
from pytest_llmgate.gate import FAILED, PASSED, SKIPPED, GateCheck, evaluate_gate
from pytest_llmgate.results import CaseResult

from .results_factory import case, sample


def suite(n: int, regressed: int, **candidate: object) -> list[CaseResult]:
    """`n` cases the baseline passes; the candidate fails the first `regressed` of them."""
    return [
        case(f"c{i}", sample(True), sample(i >= regressed, **candidate))  # type: ignore[arg-type]
        for i in range(n)
    ]


def test_a_few_regressions_by_chance_are_not_significant_and_pass() -> None:
    check = evaluate_gate("quality", suite(20, 2), GateSettings())
    assert check.status == PASSED
    assert check.metrics["difference"] == pytest.approx(-10.0)
    # scipy.stats.wilcoxon([-100] * 2 + [0] * 18, correction=True).pvalue
    assert check.metrics["wilcoxon_p"] == pytest.approx(0.3457785861511603)
    assert check.metrics["mcnemar_p"] == pytest.approx(0.5)  # 2 discordant pairs: 2 * (1/2)^2
    assert "no significant difference (p = 0.35" in check.summary


def test_many_regressions_are_a_significant_drop_and_fail() -> None:
    check = evaluate_gate("quality", suite(20, 8), GateSettings())
    assert check.status == FAILED
    assert check.metrics["difference"] == pytest.approx(-40.0)
    # scipy.stats.wilcoxon([-100] * 8 + [0] * 12, correction=True).pvalue
    assert check.metrics["wilcoxon_p"] == pytest.approx(0.005962078532093707)
    assert check.metrics["mcnemar_p"] == pytest.approx(2 / 2**8)
    assert "significant drop" in check.summary
    assert any("regressed cases: c0, c1, c2" in line for line in check.details)
    assert check.metrics["ci_high"] < 0  # the whole interval is below zero


def test_a_significant_drop_within_the_allowed_points_passes() -> None:
    check = evaluate_gate("quality", suite(20, 8), GateSettings(max_quality_drop=50))
    assert check.status == PASSED
    assert "within max_quality_drop 50" in check.summary


def test_cost_gate_compares_cost_per_successful_task() -> None:
    # baseline: $0.003 per case, all pass; candidate: $0.006 per case -> +100%
    check = evaluate_gate("cost", suite(4, 0, cost=(0.004, 0.002)), GateSettings())
    assert check.status == FAILED
    assert check.metrics["cost_increase"] == pytest.approx(1.0)
    assert "$0.00300 -> $0.00600 (+100.0%) exceeds max_cost_increase +25%" in check.summary
    relaxed = evaluate_gate("cost", suite(4, 0, cost=(0.004, 0.002)), GateSettings(max_cost_increase=1.5))
    assert relaxed.status == PASSED


def test_failed_cases_make_each_success_dearer() -> None:
    # same price per call, but the candidate passes 2 of 4: cost per success doubles
    check = evaluate_gate("cost", suite(4, 2), GateSettings())
    assert check.metrics["cost_increase"] == pytest.approx(1.0)
    assert check.status == FAILED


def test_unknown_price_skips_the_cost_gate_with_a_warning_never_zero() -> None:
    check = evaluate_gate("cost", suite(3, 0, cost=None), GateSettings())
    assert check.status == SKIPPED
    assert "cost unknown for cand" in check.summary
    assert "pricing:" in check.summary
    assert check.metrics["candidate_cost_usd"] is None


def test_latency_gate_fails_on_relative_increase_and_absolute_p95() -> None:
    slower = suite(10, 0, latency=180.0)
    check = evaluate_gate("latency", slower, GateSettings())
    assert check.status == FAILED
    assert check.metrics["latency_increase"] == pytest.approx(0.8)
    assert "exceeds max_latency_increase +50%" in check.summary
    assert any("p99" in line and "max" in line for line in check.details)
    assert evaluate_gate("latency", slower, GateSettings(max_latency_increase=1.0)).status == PASSED
    absolute = evaluate_gate(
        "latency", slower, GateSettings(max_latency_increase=None, max_p95_latency_ms=150)
    )
    assert absolute.status == FAILED
    assert "max_p95_latency_ms 150" in absolute.summary


def test_tokens_gate_fails_on_output_token_inflation() -> None:
    check = evaluate_gate("tokens", suite(5, 0, completion=14), GateSettings())
    assert check.status == FAILED
    assert check.metrics["output_token_inflation"] == pytest.approx(0.4)
    assert evaluate_gate("tokens", suite(5, 0, completion=12), GateSettings()).status == PASSED


def test_drift_uses_observed_counts_when_recorded() -> None:
    # tiktoken says "same" (both 100), the API reports 20% more for the candidate
    results = [case(f"c{i}", sample(prompt=100), sample(prompt=120), local=(100, 100)) for i in range(3)]
    check = evaluate_gate("drift", results, GateSettings())
    assert check.status == FAILED
    assert check.metrics["basis"] == "observed"
    assert check.metrics["local_ratio"] == pytest.approx(1.0)
    assert check.metrics["observed_ratio"] == pytest.approx(1.2)
    assert any(line.startswith("local (enc-a vs enc-b): 300 -> 300") for line in check.details)
    assert any("local token counts are off by" in line and "cand" in line for line in check.details)


def test_drift_falls_back_to_local_counts_and_says_so() -> None:
    results = [case(f"c{i}", sample(prompt=None), sample(prompt=None), local=(100, 110)) for i in range(2)]
    check = evaluate_gate("drift", results, GateSettings())
    assert check.status == FAILED
    assert check.metrics["basis"] == "local"
    assert "counted locally with enc-a vs enc-b" in check.summary


def test_drift_without_any_measurement_is_skipped_not_passed() -> None:
    results = [case("c", sample(prompt=None), sample(prompt=None))]
    check = evaluate_gate("drift", results, GateSettings())
    assert check.status == SKIPPED
    assert "not measured" in check.summary


def test_no_results_or_no_candidate_is_skipped() -> None:
    assert evaluate_gate("quality", [], GateSettings()).status == SKIPPED
    only_base = [CaseResult("f", "a", (), suite(1, 0)[0].baseline, None, "passed")]
    assert "no candidate" in evaluate_gate("cost", only_base, GateSettings()).summary


def test_unknown_gate_name_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown gate 'speed'"):
        evaluate_gate("speed", [], GateSettings())


def test_gate_check_round_trips_through_a_dict() -> None:
    check = evaluate_gate("quality", suite(20, 8), GateSettings())
    assert GateCheck.from_dict(check.to_dict()) == check


def test_comparison_ignores_cases_with_errors() -> None:
    results = suite(5, 0)
    assert compare_quality(results) is not None
    assert compare_quality([]) is None
