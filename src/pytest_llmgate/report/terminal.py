"""The end-of-session summary: a table per model, then the regressions and improvements."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from tabulate import tabulate

from pytest_llmgate.results import CaseResult, ModelRun, Outcome
from pytest_llmgate.stats import mean, percentile


@dataclass(frozen=True)
class ModelSummary:
    """What the table says of one model over the cases of a session."""

    model: str
    role: str
    cases: int
    passed: int
    quality: float | None  # 0-100, mean case score
    mean_latency_ms: float | None
    p95_latency_ms: float | None
    prompt_tokens: int | None
    completion_tokens: int | None
    errors: int

    @property
    def pass_rate(self) -> float | None:
        return self.passed / self.cases if self.cases else None


def summarise(role: str, runs: Sequence[ModelRun]) -> ModelSummary:
    samples = [sample for run in runs for sample in run.samples]
    answered = [sample for sample in samples if sample.reply is not None]
    latencies = [sample.latency_ms for sample in answered]
    scored = [run.score for run in runs if not run.errored]
    quality = mean(scored)

    def total(field: str) -> int | None:
        counts = [getattr(sample.reply.usage, field) for sample in answered if sample.reply is not None]
        known = [count for count in counts if count is not None]
        return sum(known) if known else None

    return ModelSummary(
        model=runs[0].model if runs else "?",
        role=role,
        cases=len(runs),
        passed=sum(run.passed for run in runs),
        quality=None if quality is None else 100.0 * quality,
        mean_latency_ms=mean(latencies),
        p95_latency_ms=percentile(latencies, 95),
        prompt_tokens=total("prompt_tokens"),
        completion_tokens=total("completion_tokens"),
        errors=sum(run.errored for run in runs),
    )


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def model_table(results: Sequence[CaseResult]) -> str:
    summaries = [summarise("baseline", [result.baseline for result in results])]
    candidates = [result.candidate for result in results if result.candidate is not None]
    if candidates:
        summaries.append(summarise("candidate", candidates))
    rows = [
        [
            f"{summary.model} ({summary.role})",
            summary.cases,
            _fmt(None if summary.pass_rate is None else 100 * summary.pass_rate, ".0f") + "%",
            _fmt(summary.quality, ".1f"),
            _fmt(summary.mean_latency_ms, ".0f"),
            _fmt(summary.p95_latency_ms, ".0f"),
            _fmt(summary.prompt_tokens, "d"),
            _fmt(summary.completion_tokens, "d"),
            summary.errors,
        ]
        for summary in summaries
    ]
    headers = ["model", "cases", "pass", "quality", "mean ms", "p95 ms", "prompt tok", "compl. tok", "errors"]
    return tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True)


def summary_lines(results: Sequence[CaseResult], verbose: bool = True) -> Iterator[str]:
    """Lines of the session summary; `verbose=False` (pytest -q) keeps the table and counts only."""
    if not results:
        return
    yield from model_table(results).splitlines()
    by_outcome: dict[str, list[CaseResult]] = {}
    for result in results:
        by_outcome.setdefault(result.outcome, []).append(result)
    counts = ", ".join(f"{len(items)} {outcome}" for outcome, items in sorted(by_outcome.items()))
    yield ""
    yield f"cases: {counts}"
    if not verbose:
        return
    for outcome, title in (
        (Outcome.REGRESSION, "regressions"),
        (Outcome.BUDGET, "budget breaches"),
        (Outcome.IMPROVEMENT, "improvements"),
        (Outcome.ERROR, "errors"),
    ):
        items = by_outcome.get(outcome, [])
        if not items:
            continue
        yield ""
        yield f"{title} ({len(items)}):"
        for result in items:
            first, *rest = result.message.splitlines() or [""]
            yield f"  {result.file}::{result.case_id}: {first}"
            for line in rest[:6]:
                yield f"    {line.strip()}"
