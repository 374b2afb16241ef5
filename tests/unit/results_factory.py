"""Hand-built case results for tests of the pure core (metrics, gates, reports)."""

from __future__ import annotations

from pytest_llmgate.assertions import AssertionResult
from pytest_llmgate.reply import Reply, Usage
from pytest_llmgate.results import CaseResult, ModelRun, Outcome, Sample


def sample(
    passed: bool = True,
    *,
    prompt: int | None = 100,
    completion: int | None = 10,
    latency: float = 100.0,
    cost: tuple[float, float] | None = (0.001, 0.002),
    score: float | None = None,
    attempts: int = 1,
) -> Sample:
    result = AssertionResult("contains", passed, 1.0 if passed else 0.0, "ok" if passed else "not found")
    total = None if prompt is None or completion is None else prompt + completion
    usage = Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=total)
    return Sample(
        Reply(text="x", usage=usage),
        latency,
        True,
        assertions=(result,),
        score=result.score if score is None else score,
        attempts=attempts,
        input_cost_usd=None if cost is None else cost[0],
        output_cost_usd=None if cost is None else cost[1],
    )


def outcome_of(base: ModelRun, cand: ModelRun) -> str:
    if base.passed and not cand.passed:
        return Outcome.REGRESSION
    if cand.passed and not base.passed:
        return Outcome.IMPROVEMENT
    return Outcome.PASSED if base.passed else Outcome.ALREADY_FAILING


def case(
    case_id: str,
    base: Sample | tuple[Sample, ...],
    cand: Sample | tuple[Sample, ...],
    *,
    tags: tuple[str, ...] = (),
    base_model: str = "base",
    cand_model: str = "cand",
    local: tuple[int | None, int | None] = (None, None),
) -> CaseResult:
    base_run = ModelRun(
        base_model,
        base if isinstance(base, tuple) else (base,),
        local_prompt_tokens=local[0],
        encoding="enc-a",
    )
    cand_run = ModelRun(
        cand_model,
        cand if isinstance(cand, tuple) else (cand,),
        local_prompt_tokens=local[1],
        encoding="enc-b",
    )
    return CaseResult(
        "llm_x.yaml",
        case_id,
        tags,
        base_run,
        cand_run,
        outcome_of(base_run, cand_run),
        file_nodeid="llm_x.yaml",
    )
