"""The end-of-session summary: a table per model, the gates, the tags, then the regressions.

Pure functions that yield lines (the plugin writes them), kept within 100 columns.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from pytest_llmgate.config import GateSettings
from pytest_llmgate.gate import GateCheck
from pytest_llmgate.metrics import (
    ModelSummary,
    format_usd,
    judge_summary,
    model_summaries,
    output_token_inflation,
    pairs_of,
    results_with_tag,
    tags_of,
    unpriced_models,
)
from pytest_llmgate.model.params import ADAPTED_NOTE
from pytest_llmgate.report.checklist import failing_lines
from pytest_llmgate.report.memo import Memo
from pytest_llmgate.report.model import (
    RunReport,
    build_report,
    interruption_text,
    not_run_line,
    number,
    outcome_counts_text,
    percent,
    ttft_line,
)
from pytest_llmgate.report.scores import terminal_lines as score_lines
from pytest_llmgate.results import CaseResult, Outcome

WIDTH = 100
REPLAY_NOTE = "replay:"  # the prefix of the notes runner.call_model takes from a replayed cassette
TOKENIZER_NOTE = "tokenizer:"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain table, columns two spaces apart (tabulate pads headers more, which costs width)."""
    cells = [[str(value) for value in row] for row in rows]
    widths = [max(len(str(header)), *(len(row[i]) for row in cells)) for i, header in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        return "  ".join(value.ljust(width) for value, width in zip(values, widths, strict=True)).rstrip()

    return "\n".join(
        [line(list(headers)), line(["-" * width for width in widths]), *(line(row) for row in cells)]
    )


def _usd(value: float | None) -> str:
    """Dollars as the gate messages write them (`format_usd`); n/a like every missing cell."""
    return "n/a" if value is None else format_usd(value)


def _fit(label: str, width: int) -> str:
    return label if len(label) <= width else label[: max(1, width - 3)] + "..."


def model_table(summaries: Sequence[ModelSummary]) -> str:
    rows = [
        [
            summary.label,
            summary.cases,
            percent(summary.pass_rate),
            number(summary.quality, ".1f"),
            number(summary.latency.mean, ".0f"),
            number(summary.latency.p95, ".0f"),
            _usd(summary.input_cost_per_1k),
            _usd(summary.output_cost_per_1k),
            _usd(summary.cost_per_success),
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
    # A long model id must not push the table past WIDTH: the first column gives way.
    others = sum(
        max(len(header), *(len(str(row[index])) for row in rows)) + 2
        for index, header in enumerate(headers)
        if index
    )
    for row in rows:
        row[0] = _fit(str(row[0]), WIDTH - others)
    return table(headers, rows)


def tag_table(results: Sequence[CaseResult], memo: Memo | None = None) -> str | None:
    """Quality and cost per successful task by tag: an upgrade rarely helps every kind of task.

    `memo`: the summary's, which has summarised all the results (a tag of every case is them)."""
    tags = tags_of(results)
    if len(tags) < 2 and not any(result.tags for result in results):
        return None
    memo = Memo() if memo is None else memo
    columns = model_summaries(results, memo.summarise)
    paired = len(columns) == 2 and len(pairs_of(results)) == 1
    rows = []
    for tag in tags:
        subset = results_with_tag(results, tag)
        by_key = {_key(summary): summary for summary in model_summaries(subset, memo.summarise)}
        comparison = memo.compare(subset) if paired else None
        row: list[object] = [
            tag,
            len({(result.file_nodeid or result.file, result.case_id) for result in subset}),
        ]
        for column in columns:
            found = by_key.get(_key(column))  # None: a tag no candidate ran
            cells = [
                number(None if found is None else found.quality, ".1f"),
                _usd(None if found is None else found.cost_per_success),
            ]
            # Several models: one "quality $/ok" column each, so the table stays within WIDTH.
            row += cells if len(columns) <= 2 else [" ".join(cells)]
        if paired:
            row.append(
                "n/a"
                if comparison is None
                else f"{comparison.difference:+.1f} (p={comparison.wilcoxon_p:.2g})"
            )
        rows.append(row)
    headers: list[str] = ["tag", "cases"]
    for summary in columns:
        if len(columns) <= 2:
            headers += [f"{summary.role[:4]} qual", f"{summary.role[:4]} $/ok"]
        else:  # by name (and baseline, when there are several); see SEVERAL_TAGS_TITLE
            headers.append(summary.model + (f" vs {summary.versus}" if summary.versus is not None else ""))
    if paired:
        headers.append("quality diff")
    return table(headers, rows)


SEVERAL_TAGS_TITLE = "by tag (quality and $ per successful task of each model):"


def _key(summary: ModelSummary) -> tuple[str, str, str | None]:
    return (summary.model, summary.role, summary.versus)


def _case_name(result: CaseResult, several: bool) -> str:
    """`file::case` as the summary lists it; with several candidates, `file::case[candidate]`."""
    name = f"{result.file}::{result.case_id}"
    return f"{name}[{result.candidate.model}]" if several and result.candidate is not None else name


def judge_line(results: Sequence[CaseResult]) -> str | None:
    """The llm-rubric judge's calls and cost: billed, but no graded model's cost per success."""
    judge = judge_summary(results)
    if judge is None:
        return None
    return (
        f"judge: {judge.calls} call{'s' * (judge.calls != 1)}, {_usd(judge.cost_usd)} "
        "(llm-rubric grading; not in any model's $/success)"
    )


def _clip(line: str, width: int = WIDTH) -> str:
    return line if len(line) <= width else line[: width - 3] + "..."


def _tokenizer_line(results: Sequence[CaseResult]) -> Iterator[str]:
    """One line when some model has no local token count; the reasons are pytest warnings
    (items.py warns each once) and gate[drift] details, so they are not repeated here."""
    if not any(note.startswith(TOKENIZER_NOTE) for result in results for note in result.notes):
        return
    models: list[str] = []
    for result in results:
        for run in result.runs:
            if run.local_prompt_tokens is None and run.model not in models:
                models.append(run.model)
    if models:
        yield _clip(f"tokenizer: no local token count for {', '.join(models)}; see the warnings summary")


REPLAY_NOTES_SHOWN = 10


def adapted_lines(results: Sequence[CaseResult]) -> Iterator[str]:
    """Once per target and parameter: what a reasoning model was sent instead of the case's params
    (a candidate called with other sampling parameters than the baseline is a fact to see)."""
    first: dict[str, str] = {}  # "target: param" -> the first note about it
    values: dict[str, set[str]] = {}  # the values of it that were adapted
    for result in results:
        for note in result.notes:
            if not note.startswith(ADAPTED_NOTE):
                continue
            text = note.removeprefix(ADAPTED_NOTE)
            key, _, rest = text.partition("=")
            first.setdefault(key, text)
            values.setdefault(key, set()).add(rest.split(" ", 1)[0])
    for key, text in first.items():
        others = len(values[key]) - 1
        if others:  # said after the value, where clipping the line cannot cut it
            value, _, change = text.removeprefix(f"{key}=").partition(" ")
            text = f"{key}={value} (and {others} other value{'s' * (others > 1)}) {change}"
        yield _clip(f"params adapted: {text}")
    if first:
        yield "params adapted: send them as written with --llm-param-policy=strict (see the README)"


def _replay_lines(results: Sequence[CaseResult]) -> Iterator[str]:
    """Cassettes this replay did not play to the end, one line each, and how to fix it."""
    notes = list(
        dict.fromkeys(note for result in results for note in result.notes if note.startswith(REPLAY_NOTE))
    )
    for note in notes[:REPLAY_NOTES_SHOWN]:
        yield _clip(note)
    if len(notes) > REPLAY_NOTES_SHOWN:
        yield f"replay: ... and {len(notes) - REPLAY_NOTES_SHOWN} more cassettes like these"
    if notes:  # the notes end with the fix, which clipping may cut
        yield "replay: re-record with --llm-record-mode=all or pass the --llm-repeat they were recorded with"


def summary_lines(
    results: Sequence[CaseResult],
    verbose: bool = True,
    gates: Mapping[str, GateCheck] | None = None,
    not_run: Sequence[str] | None = None,
    settings: GateSettings | None = None,
    production_timeout_s: float | None = None,
    previous: Mapping[str, Any] | None = None,
    report: RunReport | None = None,
    production_concurrency: int | None = None,
    run_concurrency: int | None = None,
) -> Iterator[str]:
    """Lines of the session summary; `verbose=False` (pytest -q) keeps the table, gates and counts.

    `not_run` is given when the session was interrupted (the items that never ran): said first,
    so no one reads the numbers of a few finished cases as the verdict on the upgrade. The
    summary ends with the failing checklist items and the verdict line the reports head with
    (`settings`, the production timeout and the earlier run's JSON report feed them).
    """
    if not_run is not None:
        yield _clip(f"INTERRUPTED: {interruption_text(len(results), not_run)}; no verdict on the upgrade")
        if not_run:
            yield _clip(not_run_line(not_run))
    if not results:
        return
    memo = Memo()
    summaries = model_summaries(results, memo.summarise)
    pairs = pairs_of(results)
    several = len({cand for _, cand in pairs}) > 1
    yield from model_table(summaries).splitlines()
    judged = judge_line(results)
    if judged is not None:
        yield judged
    if any(summary.samples > summary.cases for summary in summaries):
        yield "samples passed: " + ", ".join(
            f"{summary.model} {percent(summary.sample_pass_rate)} of {summary.samples}"
            for summary in summaries
        )
    if len(pairs) == 1:
        inflation = output_token_inflation(results)
        if inflation is not None:
            yield f"output-token inflation: {inflation:+.1%} (candidate vs baseline completion tokens)"
    else:
        for base, cand in pairs:
            mine = [
                result
                for result in results
                if result.baseline.model == base and result.candidate and result.candidate.model == cand
            ]
            inflation = output_token_inflation(mine)
            if inflation is not None:
                yield f"output-token inflation: {inflation:+.1%} ({cand} vs {base} completion tokens)"
    ttft = ttft_line(summaries)
    if ttft is not None:
        yield _clip(ttft)
    yield from (_clip(line) for line in score_lines(results))
    retries = [f"{summary.model} {summary.retries}" for summary in summaries if summary.retries]
    if retries:
        yield f"retries (extra requests, billed): {', '.join(retries)}"
    yield from _tokenizer_line(results)
    yield from adapted_lines(results)
    yield from _replay_lines(results)
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
        table = tag_table(results, memo)
        if table is not None:
            yield ""
            yield SEVERAL_TAGS_TITLE if len(summaries) > 2 else "by tag:"
            yield from (f"  {line}" for line in table.splitlines())
    by_outcome: dict[str, list[CaseResult]] = {}
    for result in results:
        by_outcome.setdefault(result.outcome, []).append(result)
    counts = outcome_counts_text({outcome: len(items) for outcome, items in sorted(by_outcome.items())})
    yield ""
    yield f"cases: {counts}"
    if verbose:
        yield from _case_lines(by_outcome, several)
    if report is None:  # the caller may have built it already, for the report files
        report = build_report(
            results,
            gates or {},
            settings=settings,
            not_run=not_run,
            production_timeout_s=production_timeout_s,
            previous=previous,
            production_concurrency=production_concurrency,
            run_concurrency=run_concurrency,
        )
    yield from ending_lines(report)


def ending_lines(report: RunReport) -> Iterator[str]:
    """What changed since the earlier run, the checklist's ✗ items, then the verdict line, last,
    where a reader of a CI log looks: the same line that heads the Markdown and HTML reports."""
    if report.since is not None:
        yield ""
        yield _clip(f"since the run of {report.since.previous_created}:")
        yield from (_clip(f"  {line}") for line in report.since.lines())
    failing = list(failing_lines(report))
    if failing:
        yield ""
        for line in failing:  # wrapped, not clipped: the line ends with what to do
            yield from textwrap.wrap(line, WIDTH, subsequent_indent="    ", break_on_hyphens=False)
    yield ""
    # The verdict line, wrapped (never clipped) to the terminal's width.
    yield from textwrap.wrap(report.verdict, WIDTH, subsequent_indent="  ", break_on_hyphens=False)


def _case_lines(by_outcome: Mapping[str, list[CaseResult]], several: bool) -> Iterator[str]:
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
            yield _clip(f"  {_case_name(result, several)}: {first}")
            for line in rest[:6]:
                yield _clip(f"    {line.strip()}")
