"""Hand-built case results for tests of the pure core (metrics, gates, reports)."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone

from pytest_llmgate.assertions import AssertionResult
from pytest_llmgate.config import GateSettings
from pytest_llmgate.gate import GATE_NAMES, evaluate_gate
from pytest_llmgate.reply import Reply, Usage
from pytest_llmgate.report.model import RunReport, build_report
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


def with_text(base: Sample, text: str) -> Sample:
    """`base` with its reply text replaced (usage kept)."""
    assert base.reply is not None
    return dataclasses.replace(base, reply=dataclasses.replace(base.reply, text=text))


UPGRADE_REGRESSION_TEXT = 'Total: <script>alert("x")</script> | n/a\nsecond line'


def upgrade_suite() -> list[CaseResult]:
    """A small upgrade run from gpt-4o to gpt-5.5 whose report numbers are worked out by hand.

    reasoning r1-r6: the baseline fails (score 0.5, 800 ms, $0.003), the candidate passes
    (1320 ms, $0.008, 12 completion tokens): +50 points each, Wilcoxon p = 2/64 = 0.031.
    extraction e1-e5: both pass, baseline 300 ms $0.003, candidate 400 ms $0.005, except e5,
    which the candidate fails (a regression whose reply holds `<script>`, `|` and a newline).
    """
    results = [
        case(
            f"r{i}",
            sample(False, score=0.5, latency=800),
            sample(True, latency=1320, cost=(0.002, 0.006), completion=12),
            tags=("reasoning",),
            base_model="gpt-4o",
            cand_model="gpt-5.5",
        )
        for i in range(1, 7)
    ]
    results += [
        case(
            f"e{i}",
            sample(True, latency=300),
            sample(True, latency=400, cost=(0.002, 0.003)),
            tags=("extraction",),
            base_model="gpt-4o",
            cand_model="gpt-5.5",
        )
        for i in range(1, 5)
    ]
    results.append(
        case(
            "e5",
            sample(True, latency=300),
            with_text(sample(False, latency=400, cost=(0.002, 0.003)), UPGRADE_REGRESSION_TEXT),
            tags=("extraction",),
            base_model="gpt-4o",
            cand_model="gpt-5.5",
        )
    )
    return results


UPGRADE_CREATED = datetime(2025, 6, 1, 12, 0, tzinfo=timezone.utc)


def upgrade_report(
    results: list[CaseResult] | None = None, settings: GateSettings | None = None
) -> RunReport:
    """The report of `upgrade_suite()` (or `results`) with all five gates judged on one file.

    With the default settings gate[latency] fails (p95 800 -> 1320 ms, +65%) and the others pass.
    """
    results = upgrade_suite() if results is None else results
    settings = settings or GateSettings()
    gates = {f"llm_x.yaml::gate[{name}]": evaluate_gate(name, results, settings) for name in GATE_NAMES}
    return build_report(results, gates, settings=settings, created=UPGRADE_CREATED)


def two_candidate_suite() -> list[CaseResult]:
    """`upgrade_suite()` (gpt-5.5) plus o4-mini on the same cases sharing each baseline run:
    o4-mini passes every case at the baseline's latency for $0.001 a call."""
    results = upgrade_suite()
    for result in list(results):
        runs = tuple(sample(True, latency=300, cost=(0.0005, 0.0005)) for _ in result.baseline.samples)
        other = ModelRun("o4-mini", runs, encoding="enc-b")
        results.append(
            dataclasses.replace(result, candidate=other, outcome=outcome_of(result.baseline, other))
        )
    return results


def two_candidate_report(settings: GateSettings | None = None) -> RunReport:
    """The report of `two_candidate_suite()` with each candidate's five gates judged on its results
    (gate[latency][gpt-5.5] fails under the default settings; o4-mini's gates pass)."""
    results = two_candidate_suite()
    settings = settings or GateSettings()
    gates = {}
    for model in ("gpt-5.5", "o4-mini"):
        mine = [result for result in results if result.candidate and result.candidate.model == model]
        for name in GATE_NAMES:
            check = dataclasses.replace(evaluate_gate(name, mine, settings), candidate=model)
            gates[f"llm_x.yaml::gate[{name}][{model}]"] = check
    return build_report(results, gates, settings=settings, created=UPGRADE_CREATED)
