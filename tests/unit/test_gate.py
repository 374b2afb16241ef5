"""The suite gates as pure functions: each verdict, its numbers and its reasons."""

from __future__ import annotations

import dataclasses
import math
import statistics
from statistics import NormalDist

import pytest

from pytest_llmgate.comparison import compare_quality
from pytest_llmgate.config import GateSettings
from pytest_llmgate.gate import FAILED, PASSED, PRICE_EXAMPLE, SKIPPED, GateCheck, evaluate_gate
from pytest_llmgate.results import CaseResult, Sample

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
    # 20 cases whose differences spread like these (sd 30.8 points) cannot see a 2-point drop:
    # ((z[0.975] + z[0.8]) * sd / 2)^2 / (3 / pi) cases would be needed.
    spread = statistics.stdev([-100.0] * 2 + [0.0] * 18)
    z = NormalDist().inv_cdf(0.975) + NormalDist().inv_cdf(0.8)
    needed = math.ceil((z * spread / 2) ** 2 / (3 / math.pi))
    assert needed > 1000
    assert check.metrics["cases_needed"] == needed
    assert check.summary == (
        "quality -10.0 points (100.0 -> 90.0), p = 0.35: 20 cases cannot detect a 2-point drop at "
        f"alpha 0.05; about {needed} are needed"
    )
    assert check.summary.count("p = ") == 1  # the p-value is said once
    assert "Wilcoxon p = 0.35 (not significant at alpha 0.05)" in check.details[0]
    assert check.details[0].count("0.35") == 1


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
    assert check.details == (
        "base: total $0.0120, 4/4 cases passed, per successful task $0.00300, per case $0.00300",
        "cand: total $0.0240, 4/4 cases passed, per successful task $0.00600, per case $0.00600",
        "raise the limit with --llm-gate max_cost_increase=N if the price is worth it",
    )
    relaxed = evaluate_gate("cost", suite(4, 0, cost=(0.004, 0.002)), GateSettings(max_cost_increase=1.5))
    assert relaxed.status == PASSED


def test_cost_of_cheap_calls_keeps_three_significant_digits() -> None:
    # $0.00004 per case on both; the candidate passes 3 of 5: $0.0000667 per success, +66.7%.
    # Five decimals said "$0.00004 -> $0.00007 (+66.7%)", which does not add up.
    cheap = (1e-5, 3e-5)
    results = [case(f"c{i}", sample(True, cost=cheap), sample(i >= 2, cost=cheap)) for i in range(5)]
    check = evaluate_gate("cost", results, GateSettings())
    assert check.summary.startswith("cost per successful task $0.0000400 -> $0.0000667 (+66.7%) exceeds")


def test_cost_detail_of_a_model_that_passed_no_case_says_so() -> None:
    results = [case(f"c{i}", sample(True), sample(False)) for i in range(2)]
    check = evaluate_gate("cost", results, GateSettings())
    assert check.status == FAILED
    assert check.summary == "cand passed no case: its cost per successful task is unbounded"
    assert check.details[1] == "cand: total $0.00600, no case passed (0/2 cases), per case $0.00300"
    assert not any("unknown" in line for line in check.details)


def test_counts_of_one_are_singular() -> None:
    results = [case("c", sample(True, prompt=100), sample(False, prompt=100), local=(100, 100))]
    quality = evaluate_gate("quality", results, GateSettings())
    assert "over 1 case;" in quality.details[0]
    assert "regressed case: c" in quality.details
    cost = evaluate_gate("cost", [case("c", sample(True), sample(True))], GateSettings())
    assert (
        cost.details[0]
        == "base: total $0.00300, 1/1 case passed, per successful task $0.00300, per case $0.00300"
    )
    latency = evaluate_gate("latency", results, GateSettings())
    assert latency.details[0].endswith("over 1 call")
    drift = evaluate_gate("drift", results, GateSettings())
    assert "observed from recorded usage over 1 case)" in drift.summary
    assert all(
        "1 cases" not in line for line in (quality.summary, drift.summary, *quality.details, *drift.details)
    )


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
    assert check.summary.endswith(f"e.g. cand: {PRICE_EXAMPLE}")  # the example the warning gives too
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


def test_passing_drift_on_observed_counts_still_shows_a_local_tokenizer_change() -> None:
    # The API reports the same prompt tokens, tiktoken counts 12% more with the other encoding.
    results = [case(f"c{i}", sample(prompt=100), sample(prompt=101), local=(100, 112)) for i in range(3)]
    check = evaluate_gate("drift", results, GateSettings())
    assert check.status == PASSED
    assert check.metrics["basis"] == "observed"
    assert check.summary == (
        "prompt tokens base 300 -> cand 303 (+1.0%; observed from recorded usage over 3 cases) within "
        "the allowed drift of 5.0%; locally enc-a vs enc-b: +12.0%"
    )


def test_passing_drift_leaves_an_unchanged_local_count_to_the_details() -> None:
    results = [case(f"c{i}", sample(prompt=100), sample(prompt=101), local=(100, 100)) for i in range(3)]
    results = [
        dataclasses.replace(result, candidate=dataclasses.replace(result.candidate, encoding="enc-a"))
        for result in results
        if result.candidate is not None
    ]
    check = evaluate_gate("drift", results, GateSettings())
    assert check.status == PASSED
    assert "locally" not in check.summary
    assert any(line.startswith("local (enc-a vs enc-a): 300 -> 300") for line in check.details)


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


def test_drift_details_keep_tokenizer_notes_only() -> None:
    notes = (
        "tokenizer: cannot load tiktoken encoding 'o200k_base' (ConnectionError: down); set ...",
        "replay: cassettes/llm_x/tokenizer-case/cand.yaml: 2 of 3 recorded answers not replayed (...)",
    )
    results = [dataclasses.replace(case("c", sample(prompt=100), sample(prompt=100)), notes=notes)]
    details = evaluate_gate("drift", results, GateSettings()).details
    assert notes[0] in details
    assert notes[1] not in details


def test_drift_names_the_cases_that_moved_most() -> None:
    results = [
        case("short", sample(prompt=100), sample(prompt=101)),
        case("long", sample(prompt=100), sample(prompt=150)),
        case("same", sample(prompt=100), sample(prompt=100)),
    ]
    check = evaluate_gate("drift", results, GateSettings())
    line = next(line for line in check.details if line.startswith("most changed cases"))
    assert line == "most changed cases (observed): long 100 -> 150 (+50.0%), short 100 -> 101 (+1.0%)"


def test_a_candidates_gate_is_named_after_it_and_travels_with_its_name() -> None:
    plain = GateCheck("cost", "failed", "too dear", ("detail",), {"cost_increase": 0.5})
    assert plain.item_name == "gate[cost]"
    assert "candidate" not in plain.to_dict()  # one candidate: the dict it always was
    named = dataclasses.replace(plain, candidate="gpt-5.5")
    assert named.item_name == "gate[cost][gpt-5.5]"
    assert named.to_dict()["candidate"] == "gpt-5.5"
    assert GateCheck.from_dict(named.to_dict()) == named
    assert GateCheck.from_dict(plain.to_dict()) == plain


def test_a_quality_gate_with_enough_cases_gives_its_plain_verdict() -> None:
    # 400 cases, 2 regressions (a 0.5-point drop): enough cases to see a 2-point drop...
    check = evaluate_gate("quality", suite(400, 2), GateSettings())
    assert check.status == PASSED
    assert 0 < check.metrics["cases_needed"] <= 400
    assert check.summary.endswith(": drop within max_quality_drop 2")
    assert not any("cannot detect" in line for line in check.details)
    # ...but not a 0.4-point one: the non-significant drop says how many cases it would take.
    check = evaluate_gate("quality", suite(400, 2), GateSettings(max_quality_drop=0.4))
    assert check.status == PASSED
    assert check.metrics["cases_needed"] > 400
    needed = check.metrics["cases_needed"]
    assert check.summary.endswith(
        f": 400 cases cannot detect a 0.4-point drop at alpha 0.05; about {needed} are needed"
    )


def test_a_passing_underpowered_quality_gate_says_so_in_its_details() -> None:
    results = [
        case(f"c{i}", sample(i % 2 == 0), sample(True))
        for i in range(6)  # candidate fixes 3 of 6
    ]
    check = evaluate_gate("quality", results, GateSettings())
    assert check.status == PASSED
    assert check.summary.endswith(": no drop")
    assert any(
        line.startswith("6 cases cannot detect a 2-point drop at alpha 0.05; about ")
        for line in check.details
    )


def test_cost_gate_skips_a_model_that_answered_no_call_instead_of_pricing_it_at_zero() -> None:
    missing = Sample(None, 0.0, True, error="no cassette", error_kind="recording-missing")
    results = [case(f"c{i}", sample(True), missing) for i in range(3)]
    check = evaluate_gate("cost", results, GateSettings())
    assert check.status == SKIPPED
    assert "$0" not in check.summary
    assert check.summary.startswith("not judged: cost unknown for cand, which answered no call")
