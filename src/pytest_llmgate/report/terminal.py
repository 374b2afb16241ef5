"""The end-of-session summary: a table per model, then the regressions and improvements."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from tabulate import tabulate

from pytest_llmgate.pricing import PriceTable, call_cost
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
    cost_usd: float | None = None  # None: some call has no known price or no usage

    @property
    def cost_per_success(self) -> float | None:
        """Total cost over cases passed: what one successful task costs, failures included."""
        if self.cost_usd is None or not self.passed:
            return None
        return self.cost_usd / self.passed

    @property
    def pass_rate(self) -> float | None:
        return self.passed / self.cases if self.cases else None


def run_cost(runs: Sequence[ModelRun], prices: PriceTable) -> float | None:
    """Total USD of the answered calls, or None when any of them cannot be priced (never a silent 0)."""
    total = 0.0
    for run in runs:
        for sample in run.samples:
            if sample.reply is None:
                continue
            price = prices.lookup(run.model, sample.reply.model)
            cost = call_cost(sample.reply.usage, price) if price is not None else None
            if cost is None:
                return None
            total += cost
    return total


def summarise(role: str, runs: Sequence[ModelRun], prices: PriceTable | None = None) -> ModelSummary:
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
        cost_usd=run_cost(runs, prices) if prices is not None else None,
    )


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def model_summaries(results: Sequence[CaseResult], prices: PriceTable | None = None) -> list[ModelSummary]:
    summaries = [summarise("baseline", [result.baseline for result in results], prices)]
    candidates = [result.candidate for result in results if result.candidate is not None]
    if candidates:
        summaries.append(summarise("candidate", candidates, prices))
    return summaries


def output_token_inflation(results: Sequence[CaseResult]) -> float | None:
    """Candidate completion tokens / baseline's - 1, over the cases where both reported counts."""
    baseline_total = candidate_total = 0
    for result in results:
        if result.candidate is None:
            continue
        pair = [_completion_tokens(run) for run in (result.baseline, result.candidate)]
        if pair[0] is None or pair[1] is None:
            continue
        baseline_total += pair[0]
        candidate_total += pair[1]
    if baseline_total == 0:
        return None
    return candidate_total / baseline_total - 1.0


def _completion_tokens(run: ModelRun) -> int | None:
    counts = [sample.reply.usage.completion_tokens if sample.reply else None for sample in run.samples]
    if not counts or any(count is None for count in counts):
        return None
    return sum(count for count in counts if count is not None)


def model_table(summaries: Sequence[ModelSummary]) -> str:
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
            _fmt(summary.cost_per_success, ".5f"),
            summary.errors,
        ]
        for summary in summaries
    ]
    headers = [
        "model",
        "cases",
        "pass",
        "quality",
        "mean ms",
        "p95 ms",
        "tok in",
        "tok out",
        "$/success",
        "errors",
    ]
    return tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True)


def summary_lines(
    results: Sequence[CaseResult], verbose: bool = True, prices: PriceTable | None = None
) -> Iterator[str]:
    """Lines of the session summary; `verbose=False` (pytest -q) keeps the table and counts only."""
    if not results:
        return
    summaries = model_summaries(results, prices)
    yield from model_table(summaries).splitlines()
    inflation = output_token_inflation(results)
    if inflation is not None:
        yield f"output-token inflation: {inflation:+.1%} (candidate vs baseline completion tokens)"
    if prices is not None:
        for summary in summaries:
            if summary.cost_usd is None:
                yield (
                    f"cost of {summary.model}: unknown (no price for it, or calls without usage); "
                    "$/success shown as n/a, never as 0"
                )
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
