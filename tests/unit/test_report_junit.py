"""Each case's numbers as JUnit properties: named per model, unknown numbers left out, never 0."""

from __future__ import annotations

import pytest

from pytest_llmgate.report.junit import case_properties
from pytest_llmgate.results import CaseResult, Outcome, Sample

from .results_factory import case, sample, upgrade_suite


def test_a_regressed_case_carries_both_models_numbers() -> None:
    e5 = next(result for result in upgrade_suite() if result.case_id == "e5")
    properties = case_properties(e5)
    assert [name for name, _ in properties] == [
        "llm_outcome",
        "llm_tags",
        *(
            f"llm_{role}_{name}"
            for role in ("baseline", "candidate")
            for name in (
                "model",
                "latency_ms",
                "prompt_tokens",
                "completion_tokens",
                "cost_usd",
                "score",
                "pass_rate",
                "passed",
                "samples",
            )
        ),
    ]
    values = dict(properties)
    assert values["llm_outcome"] == "regression"
    assert values["llm_tags"] == "extraction"
    assert values["llm_baseline_model"] == "gpt-4o"
    assert values["llm_baseline_latency_ms"] == 300.0
    assert values["llm_candidate_latency_ms"] == 400.0
    assert values["llm_candidate_prompt_tokens"] == 100
    assert values["llm_candidate_completion_tokens"] == 10
    assert values["llm_candidate_cost_usd"] == pytest.approx(0.005)
    assert (values["llm_candidate_score"], values["llm_candidate_pass_rate"]) == (0.0, 0.0)
    assert values["llm_candidate_passed"] is False
    assert values["llm_baseline_passed"] is True


def test_repeated_samples_give_mean_latency_and_total_tokens_and_cost() -> None:
    result = case(
        "a",
        (sample(True, latency=100), sample(False, latency=300)),
        (sample(True, latency=200, completion=5), sample(True, latency=400, completion=7)),
    )
    values = dict(case_properties(result))
    assert values["llm_baseline_latency_ms"] == 200.0
    assert values["llm_baseline_pass_rate"] == 0.5
    assert values["llm_baseline_samples"] == 2
    assert values["llm_candidate_latency_ms"] == 300.0
    assert values["llm_candidate_completion_tokens"] == 12
    assert values["llm_candidate_prompt_tokens"] == 200
    assert values["llm_candidate_cost_usd"] == pytest.approx(0.006)


def test_unknown_numbers_are_left_out_never_zero() -> None:
    result = case("a", sample(True, cost=None, prompt=None), sample(True, completion=None))
    names = {name for name, _ in case_properties(result)}
    assert "llm_baseline_cost_usd" not in names
    assert "llm_baseline_prompt_tokens" not in names
    assert "llm_baseline_completion_tokens" in names
    assert "llm_candidate_completion_tokens" not in names
    assert "llm_tags" not in names


def test_an_errored_model_reports_its_errors_and_no_latency() -> None:
    errored = Sample(None, 0.0, False, error="HTTP 500", error_kind="api")
    result = CaseResult("f.yaml", "a", (), case("a", errored, sample(True)).baseline, None, Outcome.ERROR)
    values = dict(case_properties(result))
    assert values["llm_outcome"] == "error"
    assert values["llm_baseline_errors"] == 1
    assert "llm_baseline_latency_ms" not in values
    assert "llm_baseline_cost_usd" not in values
    assert not any(name.startswith("llm_candidate_") for name in values)
