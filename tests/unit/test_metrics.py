"""Per-model numbers over case results: latency percentiles, cost per successful task, tokens."""

from __future__ import annotations

import pytest

from pytest_llmgate.metrics import (
    UNTAGGED,
    format_usd,
    model_summaries,
    output_token_inflation,
    plural,
    results_with_tag,
    tags_of,
    unpriced_models,
)
from pytest_llmgate.results import ModelRun

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
