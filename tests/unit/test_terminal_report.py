"""The end-of-session summary: numbers computed from known results, unknown prices never zero."""

from __future__ import annotations

import pytest

from pytest_llmgate.assertions import AssertionResult
from pytest_llmgate.pricing import Price, PriceTable
from pytest_llmgate.reply import Reply, Usage
from pytest_llmgate.report.terminal import model_summaries, output_token_inflation, summary_lines
from pytest_llmgate.results import CaseResult, ModelRun, Outcome, Sample

PRICES = PriceTable(
    {
        "base": Price(input=1.0, cached_input=0.5, output=2.0),
        "cand": Price(input=2.0, cached_input=1.0, output=4.0),
    },
    "2026-11-23",
)


def sample(passed: bool, prompt: int, completion: int, latency: float) -> Sample:
    result = AssertionResult("contains", passed, 1.0 if passed else 0.0, "r")
    usage = Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion)
    return Sample(Reply(text="x", usage=usage), latency, True, assertions=(result,), score=result.score)


def case(case_id: str, base: Sample, cand: Sample, outcome: str) -> CaseResult:
    return CaseResult(
        "llm_x.yaml", case_id, (), ModelRun("base", (base,)), ModelRun("cand", (cand,)), outcome
    )


RESULTS = [
    case("a", sample(True, 1000, 100, 100), sample(True, 1000, 150, 300), Outcome.PASSED),
    case("b", sample(True, 1000, 100, 200), sample(False, 1000, 150, 500), Outcome.REGRESSION),
]


def test_summaries_compute_pass_rate_latency_tokens_and_cost_per_successful_task() -> None:
    base, cand = model_summaries(RESULTS, PRICES)
    assert (base.cases, base.passed, cand.passed) == (2, 2, 1)
    assert base.mean_latency_ms == 150
    assert cand.p95_latency_ms == pytest.approx(490.0)
    assert (base.prompt_tokens, base.completion_tokens) == (2000, 200)
    # base: 2000 in at $1/M + 200 out at $2/M = 0.0024, over 2 successes
    assert base.cost_per_success == pytest.approx(0.0012)
    # cand: 2000 in at $2/M + 300 out at $4/M = 0.0052, over 1 success
    assert cand.cost_per_success == pytest.approx(0.0052)
    assert cand.quality == pytest.approx(50.0)


def test_output_token_inflation_compares_the_same_cases() -> None:
    assert output_token_inflation(RESULTS) == pytest.approx(0.5)


def test_unknown_price_is_shown_as_unknown_never_zero() -> None:
    only_base = PriceTable({"base": PRICES.lookup("base")}, "2026-11-23")  # type: ignore[dict-item]
    lines = list(summary_lines(RESULTS, prices=only_base))
    assert any(line.startswith("cost of cand: unknown") for line in lines)
    cand_row = next(line for line in lines if line.startswith("cand (candidate)"))
    assert "n/a" in cand_row
    assert "0.00000" not in cand_row


def test_quiet_summary_keeps_the_table_and_counts_only() -> None:
    lines = list(summary_lines(RESULTS, verbose=False, prices=PRICES))
    assert lines[-1] == "cases: 1 passed, 1 regression"
    assert not any(line.startswith("regressions") for line in lines)
    verbose = list(summary_lines(RESULTS, prices=PRICES))
    assert "regressions (1):" in verbose
