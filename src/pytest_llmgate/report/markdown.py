"""The Markdown report (`--llm-report=report.md`, and $GITHUB_STEP_SUMMARY): a PR comment.

The one-line verdict comes first, because it is all most readers of a PR read; then the model
table, the gates, the tags, the routing recommendation and the failing cases. GitHub tables are
written by hand so that every cell is escaped the same way: `|` and newlines would break the
row, and `<` or `&` would let model output (untrusted) inject HTML into the comment.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from pytest_llmgate.gate import FAILED, PASSED
from pytest_llmgate.metrics import ModelSummary
from pytest_llmgate.report.checklist import checklist
from pytest_llmgate.report.model import (
    BLOCKING_OUTCOMES,
    RunReport,
    failing_checks,
    judged_run,
    money,
    not_run_line,
    number,
    outcome_counts_text,
    percent,
    reply_excerpt,
    summary_key,
    ttft_line,
)
from pytest_llmgate.report.routing import Routing, routing_yaml
from pytest_llmgate.report.scores import score_tables
from pytest_llmgate.report.since import FLIPS_SHOWN
from pytest_llmgate.results import CaseResult

STATUS_MARK = {PASSED: "✅ passed", FAILED: "❌ failed"}
MAX_FAILING_CASES = 50  # a PR comment is limited in size; the HTML and JSON reports hold the rest


def _html_safe(text: str) -> str:
    """`&` and `<` as entities: enough that no tag or entity in model output reaches the page."""
    return text.replace("&", "&amp;").replace("<", "&lt;")


def escape(text: object) -> str:
    """Text safe in a Markdown paragraph: no HTML from the text gets through, on one line."""
    return " ".join(_html_safe(str(text)).split())


def cell(text: object) -> str:
    """Text safe in a GitHub table cell: escaped, `|` escaped, line breaks as `<br>`."""
    lines = [" ".join(_html_safe(line).split()) for line in str(text).splitlines()]
    return "<br>".join(line for line in lines if line).replace("|", "\\|")


def md_table(headers: Sequence[str], rows: Sequence[Sequence[object]], numeric: Sequence[int] = ()) -> str:
    """A GitHub table; the columns whose index is in `numeric` are right-aligned."""
    align = ["---:" if index in numeric else "---" for index in range(len(headers))]
    lines = [
        "| " + " | ".join(cell(header) for header in headers) + " |",
        "| " + " | ".join(align) + " |",
        *("| " + " | ".join(cell(value) for value in row) + " |" for row in rows),
    ]
    return "\n".join(lines)


MAX_CHARS = 60_000  # GitHub refuses a comment over 65,536 characters; room for a bot's own text
TOP_REGRESSIONS = 10  # failing cases shown outside <details>
MAX_GATES_SHOWN = 20  # gate rows in the main table (failed first); the rest in <details>


def render_markdown(report: RunReport, limit: int = MAX_CHARS) -> str:
    """The whole report as Markdown text, ending with a newline, under `limit` characters."""
    return "\n".join(markdown_lines(report, limit)) + "\n"


def markdown_lines(report: RunReport, limit: int = MAX_CHARS) -> Iterator[str]:
    """The headline, the models, the gates, the checklist and the top regressions always; the
    long parts (by tag, routing, every failing case, gate details) in `<details>`, each only if
    it fits within `limit`, and a last line naming what was cut and where the full report is."""
    head = list(_head_lines(report))
    if not report.results:
        yield from head
        return
    optional = list(_optional_blocks(report))
    reserve = 600  # the "cut" line and the outcome counts
    used = sum(len(line) + 1 for line in head) + reserve
    cut: list[str] = []
    kept: list[list[str]] = []
    for name, choices in optional:
        for index, (partial, block) in enumerate(choices):
            size = sum(len(line) + 1 for line in block)
            if used + size <= limit:
                kept.append(block)
                used += size
                if index:
                    cut.append(partial)
                break
        else:
            cut.append(name)
    yield from head
    for block in kept:
        yield from block
    yield ""
    yield f"Cases: {escape(outcome_counts_text(report.outcome_counts()))}."
    if cut:
        yield ""
        yield (
            f"<sub>Cut to stay within GitHub's comment limit: {escape(', '.join(cut))}. The full report "
            "is the HTML or JSON report of this run (pytest --llm-report=report.html), "
            "e.g. the CI job's artifact.</sub>"
        )


def _head_lines(report: RunReport) -> Iterator[str]:
    """What every PR comment shows, whatever the size of the run."""
    mark = "❌" if report.blocked else "✅"
    yield f"## {mark} {escape(report.verdict)}"
    yield ""
    if report.interrupted:
        yield "**The run was interrupted**: the numbers below cover the finished cases only."
        if report.not_run:
            yield escape(not_run_line(report.not_run))
        yield ""
    yield (
        f"<sub>pytest-llmgate {escape(report.plugin_version)} · {len(report.results)} cases · "
        f"{escape(report.created)}</sub>"
    )
    if not report.results:
        yield ""
        yield "No case ran."
        return
    yield ""
    yield "### Models"
    yield ""
    yield model_table(
        report.summaries, report.inflation, [report.inflation_of(summary) for summary in report.summaries]
    )
    ttft = ttft_line(report.summaries)
    if ttft is not None:
        yield ""
        yield ttft[0].upper() + ttft[1:] + "."
    if report.judge is not None:
        yield ""
        yield (
            f"Judge (llm-rubric grading): {report.judge.calls} calls, {money(report.judge.cost_usd)}; "
            "not in any model's $/success."
        )
    if report.comparison is not None:
        yield ""
        yield f"Paired comparison: {escape(report.comparison.describe(report.settings.alpha))}."
    if report.several:
        for pair in report.pairs:
            if pair.comparison is not None:
                yield ""
                yield (
                    f"Paired comparison, `{escape(pair.candidate)}` vs `{escape(pair.baseline)}`: "
                    f"{escape(pair.comparison.describe(report.settings.alpha))}."
                )
    for model in report.unpriced:
        yield ""
        yield f"Cost of `{escape(model)}` is unknown (no price, or calls without usage): n/a, never 0."
    if report.since is not None:
        yield ""
        yield f"### Since the previous run ({escape(report.since.previous_created)})"
        yield ""
        yield from (f"- {escape(line)}" for line in report.since.lines())
    if report.gates:
        yield ""
        yield "### Gates"
        yield ""
        yield from gate_lines(report)
    yield ""
    yield "### Pre-upgrade checklist"
    yield ""
    yield md_table(["", "item", "measured", "what to do"], checklist_rows(report))
    yield ""
    yield from failing_case_lines(report, TOP_REGRESSIONS)


def _details(summary: str, lines: Sequence[str]) -> list[str]:
    return ["", f"<details><summary>{escape(summary)}</summary>", "", *lines, "", "</details>"]


Choices = list[tuple[str, list[str]]]


def _optional_blocks(report: RunReport) -> Iterator[tuple[str, Choices]]:
    """(what it is, its versions largest first: (what the version leaves out, its lines)), in the
    order they are kept while they fit."""
    failing = [result for result in report.results if result.outcome in BLOCKING_OUTCOMES]
    if len(failing) > TOP_REGRESSIONS:
        rest = failing[TOP_REGRESSIONS:]
        choices = []
        # All of them if they fit, else as many as fit of a few sizes (a row is ~100-400 chars).
        for size in sorted({len(rest), *(n for n in (200, 100, 40) if n < len(rest))}, reverse=True):
            lines = [failing_table(report, rest[:size])]
            if size < len(rest):
                lines += ["", f"… and {len(rest) - size} more: see the HTML or JSON report."]
            choices.append(
                (f"{len(rest) - size} failing cases", _details(f"The other {len(rest)} failing cases", lines))
            )
        yield f"the other {len(rest)} failing cases", choices
    if len(report.gates) > MAX_GATES_SHOWN:
        rows = [
            [f"`{nodeid}`", STATUS_MARK.get(check.status, f"⏭️ {check.status}"), check.summary]
            for nodeid, check in report.gates
        ]
        yield (
            "the table of all gates",
            [
                (
                    "",
                    _details(
                        f"All {len(report.gates)} gates", [md_table(["gate", "verdict", "numbers"], rows)]
                    ),
                )
            ],
        )
    details = [
        line
        for nodeid, check in report.gates
        if check.status == FAILED and check.details
        for line in (f"**{escape(nodeid)}**", "", *(f"- {escape(line)}" for line in check.details), "")
    ]
    if details:
        yield "the failed gates' details", [("", _details("Failed gates: details", details))]
    if report.tags and any(result.tags for result in report.results):
        yield "the by-tag table", [("", _details(f"By tag ({len(report.tags)} tags)", [tag_table(report)]))]
    for title, table in score_tables(report.results):
        yield title, [("", _details(title, [md_table(*table)]))]
    if report.routing is not None:
        yield (
            "the routing recommendation",
            [("", _details("Routing recommendation", list(routing_lines(report.routing))))],
        )
    if report.since is not None and report.since.flips:
        flips = [
            f"- `{escape(flip.case)}` ({escape(flip.model)}): {flip.before} → {flip.after}"
            for flip in report.since.flips[:FLIPS_SHOWN]
        ]
        if len(report.since.flips) > FLIPS_SHOWN:
            flips.append(f"- … and {len(report.since.flips) - FLIPS_SHOWN} more in the JSON report")
        yield (
            "the verdict flips",
            [("", _details(f"Verdict flips since the previous run ({len(report.since.flips)})", flips))],
        )


def checklist_rows(report: RunReport) -> list[list[str]]:
    return [[item.mark, f"`{item.name}`", item.value, item.action] for item in checklist(report)]


def model_table(
    summaries: Sequence[ModelSummary],
    inflation: float | None,
    inflations: Sequence[float | None] | None = None,
) -> str:
    """The models' rows; `inflations` gives each row's own (several candidates), else `inflation`."""
    row_inflation = list(inflations) if inflations is not None else [inflation] * len(summaries)
    headers = [
        "model",
        "role",
        "cases",
        "pass rate",
        "quality",
        "avg ms",
        "p95 ms",
        "$/1k in",
        "$/1k out",
        "$/success",
        "output tokens",
        "errors",
    ]
    rows = [
        [
            f"`{summary.model}`",
            summary.role + (f" vs {summary.versus}" if summary.versus is not None else ""),
            summary.cases,
            percent(summary.pass_rate),
            number(summary.quality, ".1f"),
            number(summary.latency.mean, ".0f"),
            number(summary.latency.p95, ".0f"),
            money(summary.input_cost_per_1k),
            money(summary.output_cost_per_1k),
            money(summary.cost_per_success),
            "reference" if summary.role == "baseline" else percent(own, "+.1%"),
            summary.errors,
        ]
        for summary, own in zip(summaries, row_inflation, strict=True)
    ]
    return md_table(headers, rows, numeric=range(2, 12))


def gate_lines(report: RunReport) -> Iterator[str]:
    """The gate table: every gate of a small run; of a large one the failed first, up to
    MAX_GATES_SHOWN rows (all of them are in `<details>` below)."""
    gates = sorted(report.gates, key=lambda item: item[1].status != FAILED)
    rows = [
        [f"`{nodeid}`", STATUS_MARK.get(check.status, f"⏭️ {check.status}"), check.summary]
        for nodeid, check in gates[:MAX_GATES_SHOWN]
    ]
    if len(gates) <= MAX_GATES_SHOWN:
        rows = [
            [f"`{nodeid}`", STATUS_MARK.get(check.status, f"⏭️ {check.status}"), check.summary]
            for nodeid, check in report.gates
        ]
    yield md_table(["gate", "verdict", "numbers"], rows)
    if len(gates) > MAX_GATES_SHOWN:
        failed = sum(check.status == FAILED for _, check in gates)
        yield ""
        yield f"{len(gates)} gates, {failed} failed; {MAX_GATES_SHOWN} shown (the failed first)."


def tag_table(report: RunReport) -> str:
    routes = {} if report.routing is None else {route.tag: route for route in report.routing.routes}
    headers = ["tag", "cases"]
    columns = list(report.summaries)
    for column in columns:
        headers += [f"{report.column(column)} quality", f"{report.column(column)} $/success"]
    paired = len(columns) == 2 and not report.several
    routed = paired or report.routing is not None
    if paired:
        headers.append("difference (p)")
    if routed:
        headers.append("route")
    rows: list[list[object]] = []
    for tag in report.tags:
        row: list[object] = [tag.tag, tag.cases]
        by_key = {summary_key(summary): summary for summary in tag.summaries}
        for column in columns:
            summary = by_key.get(summary_key(column))
            row += [
                number(None if summary is None else summary.quality, ".1f"),
                money(None if summary is None else summary.cost_per_success),
            ]
        if paired:
            comparison = tag.comparison
            difference = "n/a"
            if comparison is not None:
                difference = f"{comparison.difference:+.1f} (p = {comparison.wilcoxon_p:.2g})"
            row.append(difference)
        if routed:
            route = routes.get(tag.tag)
            row.append("default" if route is None else f"`{route.model}`")
        rows.append(row)
    return md_table(headers, rows, numeric=range(1, len(headers) - 1 if routed else len(headers)))


def routing_lines(routing: Routing) -> Iterator[str]:
    yield (
        f"Per tag, the significantly better model (Wilcoxon p < {routing.alpha:g}), else the cheaper per "
        "successful task, else the faster at p95, else the baseline."
    )
    yield ""
    for route in (*routing.routes, routing.default):
        yield f"- **{escape(route.tag)}** → `{escape(route.model)}` ({route.role}): {escape(route.reason)}"
    yield ""
    rows = [
        [
            blend.name,
            blend.cases,
            percent(blend.pass_rate),
            number(blend.quality, ".1f"),
            money(blend.cost_per_success),
            money(blend.cost_usd),
            number(blend.latency_mean_ms, ".0f"),
            number(blend.latency_p95_ms, ".0f"),
        ]
        for blend in routing.blends
    ]
    yield md_table(
        ["serving", "cases", "pass rate", "quality", "$/success", "total $", "avg ms", "p95 ms"],
        rows,
        numeric=range(1, 8),
    )
    yield ""
    yield "<details><summary>Routing table (YAML)</summary>"
    yield ""
    yield "```yaml"
    yield from routing_yaml(routing).replace("```", "'''").splitlines()
    yield "```"
    yield ""
    yield "</details>"


def failing_case_lines(report: RunReport, limit: int = MAX_FAILING_CASES) -> Iterator[str]:
    """The top failing cases (file order within the worst outcomes first), `limit` of them."""
    failing = [result for result in report.results if result.outcome in BLOCKING_OUTCOMES]
    if not failing:
        yield "No regressions, budget breaches or errors."
        return
    title = "Top regressions and failures" if len(failing) > limit else "Regressions and failures"
    yield f"### {title} ({len(failing)})"
    yield ""
    yield failing_table(report, failing[:limit])
    if len(failing) > limit:
        yield ""
        yield f"{limit} of {len(failing)} shown; the others below."


def failing_table(report: RunReport, failing: Sequence[CaseResult]) -> str:
    rows = []
    for result in failing:
        run = judged_run(result)
        checks = failing_checks(run) or [result.message]
        blocking = result in report.failed_cases
        rows.append(
            [
                f"`{result.file}::{result.case_id}`",
                result.outcome + ("" if blocking else " (not blocking)"),
                f"`{run.model}`",
                "\n".join(checks[:3]) + (f"\n… and {len(checks) - 3} more" if len(checks) > 3 else ""),
                reply_excerpt(run),
            ]
        )
    return md_table(["case", "outcome", "model", "failing check", "reply excerpt"], rows)
