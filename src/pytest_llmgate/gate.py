"""The suite gates: one verdict per concern (quality, cost, latency, tokens, drift) over a case file.

Each check is a pure function of the file's case results and its `GateSettings`, returning a
`GateCheck` that says passed, failed or skipped, one summary line, detail lines and the numbers
behind it. A check that cannot judge (no price, no usage, no candidate) is skipped with the
reason, never passed silently.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pytest_llmgate.comparison import compare_quality
from pytest_llmgate.config import GateSettings
from pytest_llmgate.drift import (
    CaseTokens,
    EstimatorError,
    LocalDrift,
    ObservedDrift,
    drift_verdict,
    reported_prompt_tokens,
)
from pytest_llmgate.metrics import (
    ModelSummary,
    format_usd,
    model_summaries,
    output_token_inflation,
    plural,
    unpriced_models,
)
from pytest_llmgate.results import CaseResult, Outcome

GATE_NAMES = ("quality", "cost", "latency", "tokens", "drift")
PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"
MOST_MOVED = 5
"""How many cases gate[drift] names as the ones whose prompt tokens changed most."""
ESTIMATOR_TOLERANCE = 0.1
"""Local token counts further than this from the API's (mean relative error) get a warning."""
PRICE_EXAMPLE = "{input: 2.5, cached_input: 1.25, output: 10.0}"
"""The price (USD per 1M tokens) every "no price" message suggests, so they all agree."""


@dataclass(frozen=True)
class GateCheck:
    """The verdict of one gate over one case file (and, when several run, one candidate)."""

    name: str
    status: str
    summary: str
    details: tuple[str, ...] = ()
    metrics: Mapping[str, Any] = field(default_factory=dict)
    candidate: str | None = None  # set when several candidates run: whose gate this is

    @property
    def item_name(self) -> str:
        return f"gate[{self.name}]" + (f"[{self.candidate}]" if self.candidate is not None else "")

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "status": self.status,
            "summary": self.summary,
            "details": list(self.details),
            "metrics": dict(self.metrics),
        }
        if self.candidate is not None:
            data["candidate"] = self.candidate
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GateCheck:
        return cls(
            name=data["name"],
            status=data["status"],
            summary=data["summary"],
            details=tuple(data.get("details", ())),
            metrics=dict(data.get("metrics", {})),
            candidate=data.get("candidate"),
        )


def evaluate_gate(name: str, results: Sequence[CaseResult], settings: GateSettings) -> GateCheck:
    """Run the gate `name` (one of GATE_NAMES) over the results of one case file."""
    check = _CHECKS.get(name)
    if check is None:
        raise ValueError(f"unknown gate {name!r}; gates are {', '.join(GATE_NAMES)}")
    compared = [result for result in results if result.candidate is not None]
    if not compared:
        reason = "no case of this file ran" if not results else "no candidate model (--llm-candidate)"
        return GateCheck(name, SKIPPED, f"not judged: {reason}")
    return check(compared, settings)


def _pct(value: float) -> str:
    return f"{value:+.1%}"


def _quality(results: Sequence[CaseResult], settings: GateSettings) -> GateCheck:
    comparison = compare_quality(results)
    if comparison is None:
        return GateCheck("quality", SKIPPED, "not judged: no case was answered by both models without errors")
    metrics: dict[str, Any] = {
        **comparison.numbers(),
        "max_quality_drop": settings.max_quality_drop,
        "alpha": settings.alpha,
    }
    regressed = [result.case_id for result in results if result.outcome == Outcome.REGRESSION]
    details = [comparison.describe(settings.alpha)]
    if regressed:
        shown = ", ".join(regressed[:10]) + (
            f" and {len(regressed) - 10} more" if len(regressed) > 10 else ""
        )
        label = "regressed case" if len(regressed) == 1 else "regressed cases"
        details.append(f"{label}: {shown}")
    too_big = comparison.drop > settings.max_quality_drop
    significant = comparison.significant(settings.alpha)
    head = (
        f"quality {comparison.difference:+.1f} points ({comparison.baseline_quality:.1f} -> "
        f"{comparison.candidate_quality:.1f}), p = {comparison.wilcoxon_p:.2g}"
    )
    if too_big and significant:
        details.append(
            f"the drop exceeds max_quality_drop {settings.max_quality_drop:g} and is significant "
            f"at alpha {settings.alpha:g}; fix the regressed cases or raise the threshold with "
            f"--llm-gate max_quality_drop=N"
        )
        return GateCheck("quality", FAILED, f"{head}: significant drop", tuple(details), metrics)
    # Too few cases to see a drop of the size the gate is about: say so, a bare "no significant
    # difference" would read as evidence of no difference.
    underpowered = comparison.power_note(settings.max_quality_drop, settings.alpha)
    metrics["cases_needed"] = comparison.cases_needed(settings.max_quality_drop, settings.alpha)
    if too_big:
        # The head already gives p; the verdict says what it means.
        verdict = underpowered or f"no significant difference at alpha {settings.alpha:g}"
    elif comparison.drop > 0:
        verdict = f"drop within max_quality_drop {settings.max_quality_drop:g}"
    else:
        verdict = "no drop"
    if underpowered and not too_big:
        details.append(underpowered)
    return GateCheck("quality", PASSED, f"{head}: {verdict}", tuple(details), metrics)


def _cost(results: Sequence[CaseResult], settings: GateSettings) -> GateCheck:
    baseline, candidate = model_summaries(results)
    metrics: dict[str, Any] = {
        "baseline_cost_usd": baseline.cost_usd,
        "candidate_cost_usd": candidate.cost_usd,
        "baseline_cost_per_success": baseline.cost_per_success,
        "candidate_cost_per_success": candidate.cost_per_success,
        "max_cost_increase": settings.max_cost_increase,
    }
    details = tuple(_cost_line(summary) for summary in (baseline, candidate))
    unknown = unpriced_models(results)
    if unknown:
        return GateCheck(
            "cost",
            SKIPPED,
            f"not judged: cost unknown for {', '.join(unknown)} (no price, or calls without usage); "
            f"add it under pricing: in llmgate.yaml, e.g. {unknown[0]}: {PRICE_EXAMPLE}",
            details,
            metrics,
        )
    unanswered = _unanswered_models(results)
    if unanswered:
        # No call answered, so no cost measured: $0 would compare a model that was never run.
        return GateCheck(
            "cost",
            SKIPPED,
            f"not judged: cost unknown for {', '.join(unanswered)}, which answered no call (no "
            f"recording, or every call failed); record it with --llm-record-mode=once",
            details,
            metrics,
        )
    if settings.max_cost_increase is None:
        return GateCheck("cost", SKIPPED, "switched off (max_cost_increase: null)", details, metrics)
    if not baseline.passed:
        return GateCheck(
            "cost",
            SKIPPED,
            f"not judged: {baseline.model} passed no case, its cost per successful task is undefined",
            details,
            metrics,
        )
    if not candidate.passed:
        return GateCheck(
            "cost",
            FAILED,
            f"{candidate.model} passed no case: its cost per successful task is unbounded",
            details,
            metrics,
        )
    assert baseline.cost_per_success is not None
    assert candidate.cost_per_success is not None
    if baseline.cost_per_success == 0:
        return GateCheck("cost", SKIPPED, f"not judged: {baseline.model} cost nothing", details, metrics)
    increase = candidate.cost_per_success / baseline.cost_per_success - 1
    metrics["cost_increase"] = increase
    head = (
        f"cost per successful task {format_usd(baseline.cost_per_success)} -> "
        f"{format_usd(candidate.cost_per_success)} ({_pct(increase)})"
    )
    if increase > settings.max_cost_increase:
        return GateCheck(
            "cost",
            FAILED,
            f"{head} exceeds max_cost_increase {settings.max_cost_increase:+.0%}",
            (*details, "raise the limit with --llm-gate max_cost_increase=N if the price is worth it"),
            metrics,
        )
    return GateCheck(
        "cost", PASSED, f"{head} within max_cost_increase {settings.max_cost_increase:+.0%}", details, metrics
    )


def _unanswered_models(results: Sequence[CaseResult]) -> list[str]:
    """Models none of whose samples got a priced answer, in order of first appearance."""
    answered: dict[str, bool] = {}
    for result in results:
        for run in result.runs:
            priced = any(sample.reply is not None and sample.cost_usd is not None for sample in run.samples)
            answered[run.model] = answered.get(run.model, False) or priced
    return [model for model, yes in answered.items() if not yes]


def _cost_line(summary: ModelSummary) -> str:
    total = f"{summary.model}: total {format_usd(summary.cost_usd)}"
    per_case = f"per case {format_usd(summary.cost_per_case)}"
    if not summary.passed:
        # Not "unknown": the price is known, there is just no success to divide it by.
        return f"{total}, no case passed (0/{plural(summary.cases, 'case')}), {per_case}"
    return (
        f"{total}, {summary.passed}/{plural(summary.cases, 'case')} passed, per successful task "
        f"{format_usd(summary.cost_per_success)}, {per_case}"
    )


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f} ms"


def _latency(results: Sequence[CaseResult], settings: GateSettings) -> GateCheck:
    baseline, candidate = model_summaries(results)
    details = tuple(
        f"{summary.model}: mean {_ms(summary.latency.mean)}, p50 {_ms(summary.latency.p50)}, "
        f"p95 {_ms(summary.latency.p95)}, p99 {_ms(summary.latency.p99)}, max {_ms(summary.latency.max)} "
        f"over {plural(summary.latency.calls, 'call')}"
        for summary in (baseline, candidate)
    )
    metrics: dict[str, Any] = {
        "baseline_p95_ms": baseline.latency.p95,
        "candidate_p95_ms": candidate.latency.p95,
        "max_p95_latency_ms": settings.max_p95_latency_ms,
        "max_latency_increase": settings.max_latency_increase,
    }
    if candidate.latency.p95 is None:
        return GateCheck(
            "latency", SKIPPED, f"not judged: {candidate.model} answered no call", details, metrics
        )
    if settings.max_p95_latency_ms is None and settings.max_latency_increase is None:
        return GateCheck("latency", SKIPPED, "switched off (both latency limits are null)", details, metrics)
    problems: list[str] = []
    head = f"p95 {_ms(baseline.latency.p95)} -> {_ms(candidate.latency.p95)}"
    if settings.max_p95_latency_ms is not None and candidate.latency.p95 > settings.max_p95_latency_ms:
        problems.append(f"{candidate.model} p95 exceeds max_p95_latency_ms {settings.max_p95_latency_ms:g}")
    if baseline.latency.p95:
        increase = candidate.latency.p95 / baseline.latency.p95 - 1
        metrics["latency_increase"] = increase
        head += f" ({_pct(increase)})"
        if settings.max_latency_increase is not None and increase > settings.max_latency_increase:
            problems.append(f"the increase exceeds max_latency_increase {settings.max_latency_increase:+.0%}")
    if baseline.ttft.p95 and candidate.ttft.p95 is not None:
        # The suite streams: the time to the first token is what a user waits for.
        ttft_increase = candidate.ttft.p95 / baseline.ttft.p95 - 1
        metrics.update(
            baseline_ttft_p95_ms=baseline.ttft.p95,
            candidate_ttft_p95_ms=candidate.ttft.p95,
            ttft_increase=ttft_increase,
            max_ttft_increase=settings.max_ttft_increase,
        )
        head += f"; time to first token p95 {_ms(baseline.ttft.p95)} -> {_ms(candidate.ttft.p95)}"
        head += f" ({_pct(ttft_increase)})"
        details += tuple(
            f"{summary.model}: time to first token p50 {_ms(summary.ttft.p50)}, p95 {_ms(summary.ttft.p95)} "
            f"over {plural(summary.ttft.calls, 'streamed call')}"
            for summary in (baseline, candidate)
        )
        if settings.max_ttft_increase is not None and ttft_increase > settings.max_ttft_increase:
            problems.append(
                f"time to first token exceeds max_ttft_increase {settings.max_ttft_increase:+.0%}"
            )
    if problems:
        return GateCheck("latency", FAILED, f"{head}: {'; '.join(problems)}", details, metrics)
    return GateCheck("latency", PASSED, f"{head}: within limits", details, metrics)


def _tokens(results: Sequence[CaseResult], settings: GateSettings) -> GateCheck:
    baseline, candidate = model_summaries(results)
    inflation = output_token_inflation(results)
    details = (
        f"completion tokens: {baseline.model} {baseline.completion_tokens}, "
        f"{candidate.model} {candidate.completion_tokens}",
    )
    metrics = {
        "output_token_inflation": inflation,
        "max_output_token_inflation": settings.max_output_token_inflation,
    }
    if inflation is None:
        return GateCheck(
            "tokens",
            SKIPPED,
            "not judged: no case has completion token counts from both models",
            details,
            metrics,
        )
    head = f"output-token inflation {_pct(inflation)} ({candidate.model} vs {baseline.model})"
    if settings.max_output_token_inflation is None:
        return GateCheck("tokens", SKIPPED, f"{head}; switched off", details, metrics)
    if inflation > settings.max_output_token_inflation:
        return GateCheck(
            "tokens",
            FAILED,
            f"{head} exceeds max_output_token_inflation {settings.max_output_token_inflation:+.0%}",
            details,
            metrics,
        )
    return GateCheck(
        "tokens",
        PASSED,
        f"{head} within max_output_token_inflation {settings.max_output_token_inflation:+.0%}",
        details,
        metrics,
    )


def local_drift(results: Sequence[CaseResult]) -> LocalDrift | None:
    """tiktoken's counts of the same cases under each model's encoding, where both were counted."""
    rows: list[CaseTokens] = []
    encodings: tuple[str, str] | None = None
    for result in results:
        candidate = result.candidate
        if candidate is None:
            continue
        base_count, cand_count = result.baseline.local_prompt_tokens, candidate.local_prompt_tokens
        if base_count is None or cand_count is None:
            continue
        encodings = encodings or (result.baseline.encoding or "?", candidate.encoding or "?")
        rows.append(CaseTokens(result.case_id, base_count, cand_count))
    if encodings is None:
        return None
    first = next(result for result in results if result.candidate is not None)
    assert first.candidate is not None
    return LocalDrift(
        first.baseline.model,
        first.candidate.model,
        tuple(rows),
        baseline_encoding=encodings[0],
        candidate_encoding=encodings[1],
    )


def estimator_errors(results: Sequence[CaseResult]) -> list[EstimatorError]:
    """Per model, tiktoken's count against the API's reported prompt tokens."""
    by_model: dict[str, list[CaseTokens]] = {}
    for result in results:
        for run in result.runs:
            reported = reported_prompt_tokens(run)
            if run.local_prompt_tokens is not None and reported is not None:
                by_model.setdefault(run.model, []).append(
                    CaseTokens(result.case_id, run.local_prompt_tokens, reported)
                )
    return [EstimatorError(model, tuple(rows), ESTIMATOR_TOLERANCE) for model, rows in by_model.items()]


def _drift(results: Sequence[CaseResult], settings: GateSettings) -> GateCheck:
    local = local_drift(results)
    observed = ObservedDrift.from_results(results)
    ok, basis, message = drift_verdict(local, observed, settings.max_prompt_token_drift)
    details: list[str] = []
    metrics: dict[str, Any] = {"basis": basis, "max_prompt_token_drift": settings.max_prompt_token_drift}
    if local is not None and local.cases:
        details.append(
            f"local ({local.baseline_encoding} vs {local.candidate_encoding}): {local.baseline_total} -> "
            f"{local.candidate_total} tokens ({_pct(local.ratio - 1)}) "
            f"over {plural(len(local.cases), 'case')}"
        )
        metrics["local_ratio"] = local.ratio
    else:
        details.append("local: not measured (no tiktoken encoding loaded for both models; see the notes)")
    if observed is not None and observed.cases:
        details.append(
            f"observed (API usage): {observed.baseline_total} -> {observed.candidate_total} tokens "
            f"({_pct(observed.ratio - 1)}) over {plural(len(observed.cases), 'case')}"
        )
        metrics["observed_ratio"] = observed.ratio
    else:
        details.append("observed: not measured (no recorded usage.prompt_tokens for both models)")
    measured = observed if basis == "observed" else local if basis == "local" else None
    if measured is not None:
        moved = sorted(
            (row for row in measured.cases if row.delta), key=lambda row: (-abs(row.ratio - 1), row.case_id)
        )
        if moved:
            shown = ", ".join(
                f"{row.case_id} {row.baseline} -> {row.candidate} ({_pct(row.ratio - 1)})"
                for row in moved[:MOST_MOVED]
            )
            more = f" and {len(moved) - MOST_MOVED} more" if len(moved) > MOST_MOVED else ""
            details.append(f"most changed cases ({basis}): {shown}{more}")
    for error in estimator_errors(results):
        metrics[f"estimator_error[{error.model}]"] = error.mean_relative_error
        warning = error.warning()
        if warning is not None:
            details.append(f"warning: {warning}")
    notes = sorted({note for result in results for note in result.notes if note.startswith("tokenizer:")})
    details.extend(notes)
    if basis is None:
        return GateCheck("drift", SKIPPED, message, tuple(details), metrics)
    return GateCheck("drift", PASSED if ok else FAILED, message, tuple(details), metrics)


_CHECKS: dict[str, Callable[[Sequence[CaseResult], GateSettings], GateCheck]] = {
    "quality": _quality,
    "cost": _cost,
    "latency": _latency,
    "tokens": _tokens,
    "drift": _drift,
}
