"""Per-model numbers over case results: latency percentiles, cost per successful task, tokens."""

from __future__ import annotations

import dataclasses

import pytest

from pytest_llmgate.metrics import (
    UNTAGGED,
    JudgeSummary,
    format_usd,
    judge_summary,
    model_summaries,
    output_token_inflation,
    plural,
    results_with_tag,
    tags_of,
    unpriced_models,
)
from pytest_llmgate.results import CaseResult, ModelRun

from .results_factory import case, sample

RESULTS = [
    case(
        "a",
        sample(True, prompt=1000, completion=100, latency=100, cost=(0.001, 0.0002)),
        sample(True, prompt=1000, completion=150, latency=300, cost=(0.002, 0.0006)),
    ),
    case(
        "b",
        sample(True, prompt=1000, completion=100, latency=200, cost=(0.001, 0.0002)),
        sample(False, prompt=1000, completion=150, latency=500, cost=(0.002, 0.0006)),
    ),
]


def test_summaries_compute_pass_rate_latency_tokens_and_costs() -> None:
    base, cand = model_summaries(RESULTS)
    assert (base.cases, base.passed, cand.passed) == (2, 2, 1)
    assert (base.latency.mean, base.latency.p50, base.latency.max) == (150, 150, 200)
    assert cand.latency.p95 == pytest.approx(490.0)  # 300 + 0.95 * (500 - 300)
    assert cand.latency.p99 == pytest.approx(498.0)
    assert (base.prompt_tokens, base.completion_tokens) == (2000, 200)
    assert base.cost_usd == pytest.approx(0.0024)
    assert base.cost_per_success == pytest.approx(0.0012)
    assert base.cost_per_case == pytest.approx(0.0012)
    assert cand.cost_per_success == pytest.approx(0.0052)  # failures are paid for too
    assert cand.input_cost_per_1k == pytest.approx(0.002)  # $0.004 over 2000 prompt tokens
    assert cand.output_cost_per_1k == pytest.approx(0.004)  # $0.0012 over 300 completion tokens
    assert cand.quality == pytest.approx(50.0)


def test_one_unpriced_call_makes_the_total_unknown_not_smaller() -> None:
    results = [*RESULTS, case("c", sample(True), sample(True, cost=None))]
    base, cand = model_summaries(results)
    assert base.cost_usd is not None
    assert cand.cost_usd is None
    assert cand.cost_per_success is None
    assert unpriced_models(results) == ["cand"]


def test_output_token_inflation_compares_the_same_cases() -> None:
    assert output_token_inflation(RESULTS) == pytest.approx(0.5)


def test_inflation_ignores_cases_without_counts_on_either_side() -> None:
    results = [*RESULTS, case("c", sample(True, completion=None), sample(True, completion=9999))]
    assert output_token_inflation(results) == pytest.approx(0.5)


def test_repeats_pass_by_pass_rate_and_count_samples() -> None:
    three = (sample(True), sample(True), sample(False))
    strict = ModelRun("m", three)
    lenient = ModelRun("m", three, required_pass_rate=0.66)
    assert strict.pass_rate == pytest.approx(2 / 3)
    assert not strict.passed
    assert lenient.passed
    result = case("r", three, three)
    (base, _) = model_summaries([result])
    assert (base.samples, base.sample_passes) == (3, 2)
    assert base.sample_pass_rate == pytest.approx(2 / 3)


def test_retries_are_counted_as_extra_requests() -> None:
    result = case("r", sample(True, attempts=3), sample(True))
    base, cand = model_summaries([result])
    assert (base.retries, cand.retries) == (2, 0)


def test_tags_group_cases_and_untagged_ones() -> None:
    results = [
        case("a", sample(), sample(), tags=("reasoning",)),
        case("b", sample(), sample(), tags=("extraction", "reasoning")),
        case("c", sample(), sample()),
    ]
    assert tags_of(results) == ["extraction", "reasoning", UNTAGGED]
    assert [r.case_id for r in results_with_tag(results, "reasoning")] == ["a", "b"]
    assert [r.case_id for r in results_with_tag(results, UNTAGGED)] == ["c"]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.0000412, "$0.0000412"),  # below a cent: 3 significant digits
        (0.00004, "$0.0000400"),
        (2 / 30000, "$0.0000667"),
        (0.00024, "$0.000240"),
        (0.0065, "$0.00650"),
        (0.00999, "$0.00999"),
        (0.0099996, "$0.0100"),  # rounds up to a cent: shown as cents are
        (0.01, "$0.0100"),  # from a cent: 4 decimals
        (0.0528, "$0.0528"),
        (1.5, "$1.5000"),
        (1234.56789, "$1234.5679"),
        (0.0, "$0.0000"),
        (None, "unknown"),
    ],
)
def test_format_usd(value: float | None, text: str) -> None:
    assert format_usd(value) == text


def test_format_usd_shows_a_ratio_its_numbers_support() -> None:
    before, after = 0.00004, 0.00004 * 5 / 3  # +66.7%
    shown = [float(format_usd(value)[1:]) for value in (before, after)]
    assert shown[1] / shown[0] - 1 == pytest.approx(2 / 3, abs=0.001)


def test_plural() -> None:
    assert [plural(n, "case") for n in (0, 1, 2)] == ["0 cases", "1 case", "2 cases"]
    assert plural(2, "match", "matches") == "2 matches"


# --- several candidates, several baselines ---------------------------------------------------


def _two_candidates() -> list[CaseResult]:
    """Cases a and b on baseline gpt-4o, each with gpt-5.5 and o4-mini (sharing one baseline run)."""
    results = []
    for case_id in ("a", "b"):
        base = sample(True, latency=100, cost=(0.001, 0.001))
        for model, passed, cost in (("gpt-5.5", False, (0.004, 0.004)), ("o4-mini", True, (0.0005, 0.0005))):
            results.append(
                case(case_id, base, sample(passed, cost=cost), base_model="gpt-4o", cand_model=model)
            )
    # Both results of a case carry the same baseline run, as items.SharedRuns gives them.
    for index in range(0, len(results), 2):
        results[index + 1] = dataclasses.replace(results[index + 1], baseline=results[index].baseline)
    return results


def test_several_candidates_give_one_baseline_row_counting_each_case_once_then_a_row_each() -> None:
    summaries = model_summaries(_two_candidates())
    assert [(s.model, s.role, s.cases, s.passed, s.versus) for s in summaries] == [
        ("gpt-4o", "baseline", 2, 2, None),
        ("gpt-5.5", "candidate", 2, 0, None),
        ("o4-mini", "candidate", 2, 2, None),
    ]
    assert summaries[0].cost_usd == pytest.approx(0.004)  # 2 cases x $0.002, not 4 x
    assert [s.label for s in summaries] == ["gpt-4o (baseline)", "gpt-5.5 (candidate)", "o4-mini (candidate)"]


def test_files_with_different_baselines_are_not_merged_under_one_name() -> None:
    first = case(
        "a", sample(True, cost=(0.001, 0.0)), sample(True), base_model="gpt-4o", cand_model="gpt-5.5"
    )
    second = dataclasses.replace(
        case(
            "a",
            sample(False, cost=(0.003, 0.0)),
            sample(True),
            base_model="gpt-4o-mini",
            cand_model="gpt-5.5",
        ),
        file="llm_y.yaml",
        file_nodeid="llm_y.yaml",
    )
    summaries = model_summaries([first, second])
    assert [(s.model, s.role, s.cases, s.passed, s.versus) for s in summaries] == [
        ("gpt-4o", "baseline", 1, 1, None),
        ("gpt-4o-mini", "baseline", 1, 0, None),
        ("gpt-5.5", "candidate", 1, 1, "gpt-4o"),
        ("gpt-5.5", "candidate", 1, 1, "gpt-4o-mini"),
    ]
    assert summaries[2].label == "gpt-5.5 vs gpt-4o"
    assert summaries[1].cost_usd == pytest.approx(0.003)


def test_judge_calls_are_summed_once_per_run_and_unknown_when_unpriced() -> None:
    results = _two_candidates()
    assert judge_summary(results) is None
    judged = [
        dataclasses.replace(
            result,
            baseline=dataclasses.replace(
                result.baseline,
                samples=tuple(
                    dataclasses.replace(s, judge_calls=1, judge_cost_usd=0.5) for s in result.baseline.samples
                ),
            ),
        )
        for result in results
    ]
    # Two cases' baseline replies graded once each: the shared run is not counted per candidate.
    assert judge_summary(judged) == JudgeSummary(calls=2, cost_usd=pytest.approx(1.0))
    unpriced = [
        dataclasses.replace(
            result,
            candidate=ModelRun(
                "gpt-5.5", (dataclasses.replace(sample(True), judge_calls=2, judge_cost_usd=None),)
            ),
        )
        for result in judged[:1]
    ]
    assert judge_summary(unpriced) == JudgeSummary(calls=3, cost_usd=None)
    # The graded model's own cost ignores what grading it cost.
    assert model_summaries(judged)[0].cost_usd == pytest.approx(0.004)
