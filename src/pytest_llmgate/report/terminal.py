"""The end-of-session summary: a table per model, the gates, the tags, then the regressions.

Pure functions that yield lines (the plugin writes them), kept within 100 columns.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator, Mapping, Sequence

from pytest_llmgate.comparison import compare_quality
from pytest_llmgate.gate import GateCheck
from pytest_llmgate.metrics import (
    ModelSummary,
    model_summaries,
    output_token_inflation,
    results_with_tag,
    tags_of,
    unpriced_models,
)
from pytest_llmgate.results import CaseResult, Outcome

WIDTH = 100


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain table, columns two spaces apart (tabulate pads headers more, which costs width)."""
    cells = [[str(value) for value in row] for row in rows]
    widths = [max(len(str(header)), *(len(row[i]) for row in cells)) for i, header in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        return "  ".join(value.ljust(width) for value, width in zip(values, widths, strict=True)).rstrip()

    return "\n".join(
        [line(list(headers)), line(["-" * width for width in widths]), *(line(row) for row in cells)]
    )


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.0f}%"


def model_table(summaries: Sequence[ModelSummary]) -> str:
    rows = [
        [
            f"{summary.model} ({summary.role})",
            summary.cases,
            _percent(summary.pass_rate),
            _fmt(summary.quality, ".1f"),
            _fmt(summary.latency.mean, ".0f"),
            _fmt(summary.latency.p95, ".0f"),
            _fmt(summary.input_cost_per_1k, ".5f"),
            _fmt(summary.output_cost_per_1k, ".5f"),
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
        "avg ms",
        "p95 ms",
        "$/1k in",
        "$/1k out",
        "$/success",
        "err",
    ]
    return table(headers, rows)


def tag_table(results: Sequence[CaseResult]) -> str | None:
    """Quality and cost per successful task by tag: an upgrade rarely helps every kind of task."""
    tags = tags_of(results)
    if len(tags) < 2 and not any(result.tags for result in results):
        return None
    paired = len(model_summaries(results)) == 2
    rows = []
    for tag in tags:
        subset = results_with_tag(results, tag)
        summaries = model_summaries(subset)
        comparison = compare_quality(subset)
        row = [tag, len(subset)]
        for summary in summaries:
            row += [_fmt(summary.quality, ".1f"), _fmt(summary.cost_per_success, ".5f")]
        row += ["n/a", "n/a"] * (1 + paired - len(summaries))  # a tag no candidate ran
        if paired:
            row.append(
                "n/a"
                if comparison is None
                else f"{comparison.difference:+.1f} (p={comparison.wilcoxon_p:.2g})"
            )
        rows.append(row)
    headers: list[str] = ["tag", "cases"]
    for summary in model_summaries(results):
        headers += [f"{summary.role[:4]} qual", f"{summary.role[:4]} $/ok"]
    if paired:
        headers.append("quality diff")
    return table(headers, rows)


def _clip(line: str, width: int = WIDTH) -> str:
    return line if len(line) <= width else line[: width - 3] + "..."


def summary_lines(
    results: Sequence[CaseResult],
    verbose: bool = True,
    gates: Mapping[str, GateCheck] | None = None,
) -> Iterator[str]:
    """Lines of the session summary; `verbose=False` (pytest -q) keeps the table, gates and counts."""
    if not results:
        return
    summaries = model_summaries(results)
    yield from model_table(summaries).splitlines()
    if any(summary.samples > summary.cases for summary in summaries):
        yield "samples passed: " + ", ".join(
            f"{summary.model} {_percent(summary.sample_pass_rate)} of {summary.samples}"
            for summary in summaries
        )
    inflation = output_token_inflation(results)
    if inflation is not None:
        yield f"output-token inflation: {inflation:+.1%} (candidate vs baseline completion tokens)"
    retries = [f"{summary.model} {summary.retries}" for summary in summaries if summary.retries]
    if retries:
        yield f"retries (extra requests, billed): {', '.join(retries)}"
    for note in sorted(
        {note for result in results for note in result.notes if note.startswith("tokenizer:")}
    ):
        yield from textwrap.wrap(f"warning: {note}", WIDTH, subsequent_indent="    ")
    for model in unpriced_models(results):
        yield _clip(
            f"cost of {model}: unknown (no price for it, or calls without usage); shown as n/a, never 0"
        )
    if gates:
        yield ""
        yield "gates:"
        for nodeid, check in gates.items():
            yield from textwrap.wrap(
                f"{check.status.upper():7} {nodeid}: {check.summary}",
                WIDTH,
                initial_indent="  ",
                subsequent_indent="            ",
            )
    if verbose:
        table = tag_table(results)
        if table is not None:
            yield ""
            yield "by tag:"
            yield from (f"  {line}" for line in table.splitlines())
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
            yield _clip(f"  {result.file}::{result.case_id}: {first}")
            for line in rest[:6]:
                yield _clip(f"    {line.strip()}")
