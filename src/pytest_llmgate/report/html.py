"""The HTML report (`--llm-report=report.html`): one self-contained page a reviewer opens.

Everything is in the one file: inline CSS, charts as inline SVG (`report.svg`), no script and no
reference to the network, so it opens from a CI artifact, offline, years later. Model output is
untrusted: every piece of text goes through `html.escape` (quotes included, as attribute values
are built the same way), so a reply containing `<script>` is shown, never run.

Each case gets a side-by-side view of the two models' replies, sample by sample, with the failing
assertions, errors and budget breaches highlighted; failing cases are open, the others folded.
"""

from __future__ import annotations

import html
from collections.abc import Iterator, Sequence

from pytest_llmgate.gate import FAILED
from pytest_llmgate.metrics import ModelSummary
from pytest_llmgate.report.model import (
    BLOCKING_OUTCOMES,
    RunReport,
    money,
    not_run_line,
    number,
    percent,
    summary_key,
    ttft_line,
)
from pytest_llmgate.report.routing import Routing, routing_yaml
from pytest_llmgate.report.svg import cost_quality_chart, latency_chart, score_delta_chart
from pytest_llmgate.results import CaseResult, ModelRun, Outcome, Sample

CSS = """
:root { --ok: #2e7d32; --bad: #c62828; --warn: #b26a00; --muted: #6b7280; --line: #e5e7eb;
  --base: #4c78a8; --cand: #f58518; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
  color: #111827; margin: 0; background: #f9fafb; }
header.verdict { padding: 18px 28px; color: #fff; }
header.verdict.passed { background: var(--ok); }
header.verdict.blocked { background: var(--bad); }
header.verdict h1 { margin: 0; font-size: 20px; font-weight: 600; }
header.verdict p { margin: 4px 0 0; opacity: 0.9; font-size: 12px; }
main { padding: 8px 28px 40px; max-width: 1400px; }
section { margin-top: 22px; }
h2 { font-size: 17px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
.scroll { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; background: #fff; font-size: 13px; }
th, td { border: 1px solid var(--line); padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f3f4f6; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.status { font-weight: 600; white-space: nowrap; }
.status.passed { color: var(--ok); }
.status.failed { color: var(--bad); }
.status.skipped { color: var(--muted); }
.charts { display: flex; flex-wrap: wrap; gap: 16px; }
figure { margin: 0; background: #fff; border: 1px solid var(--line); padding: 8px; }
figcaption { font-weight: 600; margin-bottom: 4px; }
svg.chart { font-size: 11px; display: block; max-width: 100%; height: auto; }
svg .grid { stroke: var(--line); stroke-width: 1; }
svg .tick, svg .muted { fill: var(--muted); }
svg .label { fill: #111827; font-weight: 600; }
code, pre { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 12px; }
pre { white-space: pre-wrap; word-break: break-word; margin: 4px 0; }
pre.reply { background: #f3f4f6; padding: 6px 8px; max-height: 260px; overflow: auto; }
details.case { background: #fff; border: 1px solid var(--line); margin: 6px 0; }
details.case > summary { padding: 6px 10px; cursor: pointer; }
details.case.blocking { border-left: 4px solid var(--bad); }
.badge { display: inline-block; padding: 0 6px; border-radius: 8px; font-size: 12px; color: #fff;
  background: var(--muted); }
.badge.passed, .badge.improvement { background: var(--ok); }
.badge.regression, .badge.error, .badge.failed { background: var(--bad); }
.badge.budget, .badge.already-failing { background: var(--warn); }
.tag { color: var(--muted); font-size: 12px; }
.message { margin: 4px 10px; color: var(--muted); }
.pair { display: grid; grid-template-columns: 1fr 1fr; gap: 10px; padding: 6px 10px 10px; }
.run { min-width: 0; }
.run h4 { margin: 4px 0; }
.run.baseline h4 { color: var(--base); } .run.candidate h4 { color: var(--cand); }
.sample { border-top: 1px dashed var(--line); padding-top: 4px; margin-top: 4px; }
.stats { color: var(--muted); font-size: 12px; }
ul.checks { list-style: none; padding: 0; margin: 4px 0; }
ul.checks li { padding: 1px 6px; margin: 1px 0; }
ul.checks li.ok { color: var(--ok); }
ul.checks li.fail { background: #fdecea; color: var(--bad); font-weight: 600; }
.muted { color: var(--muted); }
"""


def esc(value: object) -> str:
    """Text for HTML content or a quoted attribute value."""
    return html.escape(str(value), quote=True)


def render_html(report: RunReport) -> str:
    """The whole report as one self-contained HTML page."""
    return "\n".join(html_lines(report)) + "\n"


def html_lines(report: RunReport) -> Iterator[str]:
    status = "blocked" if report.blocked else "passed"
    yield "<!DOCTYPE html>"
    yield '<html lang="en">'
    yield "<head>"
    yield '<meta charset="utf-8">'
    yield '<meta name="viewport" content="width=device-width, initial-scale=1">'
    yield f"<title>llmgate: {esc(report.verdict)}</title>"
    yield f"<style>{CSS}</style>"
    yield "</head>"
    yield "<body>"
    yield f'<header class="verdict {status}" id="verdict">'
    yield f"<h1>{esc(report.verdict)}</h1>"
    if report.interrupted:
        yield "<p>The run was interrupted: the numbers below cover the finished cases only.</p>"
        if report.not_run:
            yield f"<p>{esc(not_run_line(report.not_run))}</p>"
    yield (
        f"<p>pytest-llmgate {esc(report.plugin_version)} · {len(report.results)} cases · "
        f"created {esc(report.created)}</p>"
    )
    yield "</header>"
    yield "<main>"
    if not report.results:
        yield "<p>No case ran.</p>"
    else:
        yield from _models_section(report)
        yield from _gates_section(report)
        yield from _charts_section(report)
        yield from _tags_section(report)
        if report.routing is not None:
            yield from _routing_section(report.routing)
        yield from _cases_section(report)
    yield "</main>"
    yield "</body>"
    yield "</html>"


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]], numeric: Sequence[int] = ()) -> str:
    """A table of escaped cells; the columns whose index is in `numeric` are right-aligned."""
    head = "".join(f"<th>{esc(header)}</th>" for header in headers)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{esc(value)}</td>' if index in numeric else f"<td>{esc(value)}</td>"
            for index, value in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _model_rows(summaries: Sequence[ModelSummary], inflations: Sequence[float | None]) -> list[list[object]]:
    return [
        [
            summary.model,
            summary.role + (f" vs {summary.versus}" if summary.versus is not None else ""),
            summary.cases,
            percent(summary.pass_rate),
            number(summary.quality, ".1f"),
            number(summary.latency.mean, ".0f"),
            number(summary.latency.p95, ".0f"),
            number(summary.latency.p99, ".0f"),
            money(summary.input_cost_per_1k),
            money(summary.output_cost_per_1k),
            money(summary.cost_per_success),
            "reference" if summary.role == "baseline" else percent(inflation, "+.1%"),
            summary.retries,
            summary.errors,
        ]
        for summary, inflation in zip(summaries, inflations, strict=True)
    ]


def _models_section(report: RunReport) -> Iterator[str]:
    yield '<section id="models"><h2>Models</h2>'
    headers = [
        "model",
        "role",
        "cases",
        "pass rate",
        "quality",
        "avg ms",
        "p95 ms",
        "p99 ms",
        "$/1k in",
        "$/1k out",
        "$/success",
        "output tokens",
        "retries",
        "errors",
    ]
    inflations = [report.inflation_of(summary) for summary in report.summaries]
    yield _table(headers, _model_rows(report.summaries, inflations), numeric=range(2, 14))
    ttft = ttft_line(report.summaries)
    if ttft is not None:
        yield f"<p>{esc(ttft[0].upper() + ttft[1:])}.</p>"
    if report.judge is not None:
        yield (
            f"<p>Judge (llm-rubric grading): {report.judge.calls} calls, "
            f"{esc(money(report.judge.cost_usd))}; not in any model's $/success.</p>"
        )
    if report.comparison is not None:
        yield f"<p>{esc(report.comparison.describe(report.settings.alpha))}</p>"
    if report.several:
        for pair in report.pairs:
            if pair.comparison is not None:
                yield (
                    f"<p><code>{esc(pair.candidate)}</code> vs <code>{esc(pair.baseline)}</code>: "
                    f"{esc(pair.comparison.describe(report.settings.alpha))}</p>"
                )
    for model in report.unpriced:
        yield (
            f'<p class="muted">Cost of <code>{esc(model)}</code> is unknown (no price, or calls without '
            "usage): shown as n/a, never 0.</p>"
        )
    yield "</section>"


def _gates_section(report: RunReport) -> Iterator[str]:
    if not report.gates:
        return
    yield '<section id="gates"><h2>Gates</h2>'
    yield '<div class="scroll"><table>'
    yield "<thead><tr><th>gate</th><th>verdict</th><th>numbers</th></tr></thead><tbody>"
    for nodeid, check in report.gates:
        details = "".join(f"<li>{esc(line)}</li>" for line in check.details)
        yield (
            f"<tr><td><code>{esc(nodeid)}</code></td>"
            f'<td class="status {esc(check.status)}">{esc(check.status)}</td>'
            f"<td>{esc(check.summary)}"
            + (f'<ul class="muted">{details}</ul>' if details and check.status == FAILED else "")
            + "</td></tr>"
        )
    yield "</tbody></table></div></section>"


def _charts_section(report: RunReport) -> Iterator[str]:
    yield '<section id="charts"><h2>Charts</h2><div class="charts">'
    charts = [("chart-latency", "Latency distribution per model (ms)", latency_chart(report))]
    if report.candidate is not None:
        charts.append(("chart-cost-quality", "Cost vs quality per tag", cost_quality_chart(report)))
        charts.append(("chart-deltas", "Per-case score delta (points)", score_delta_chart(report)))
    for chart_id, caption, svg in charts:
        yield f'<figure id="{chart_id}"><figcaption>{esc(caption)}</figcaption>{svg}</figure>'
    yield "</div></section>"


def _tags_section(report: RunReport) -> Iterator[str]:
    if not any(result.tags for result in report.results):
        return
    routes = {} if report.routing is None else {route.tag: route.model for route in report.routing.routes}
    columns = list(report.summaries)
    headers = ["tag", "cases"]
    for column in columns:
        name = report.column(column)
        headers += [f"{name} quality", f"{name} $/success", f"{name} p95 ms"]
    paired = len(columns) == 2 and not report.several
    if paired:
        headers += ["difference", "p", "route"]
    rows: list[list[object]] = []
    for tag in report.tags:
        row: list[object] = [tag.tag, tag.cases]
        by_key = {summary_key(summary): summary for summary in tag.summaries}
        for column in columns:
            summary = by_key.get(summary_key(column))
            row += [
                number(None if summary is None else summary.quality, ".1f"),
                money(None if summary is None else summary.cost_per_success),
                number(None if summary is None else summary.latency.p95, ".0f"),
            ]
        if paired:
            comparison = tag.comparison
            row += [
                "n/a" if comparison is None else f"{comparison.difference:+.1f}",
                "n/a" if comparison is None else f"{comparison.wilcoxon_p:.2g}",
                routes.get(tag.tag, "default"),
            ]
        rows.append(row)
    numeric = range(1, len(headers) - 1) if paired else range(1, len(headers))
    yield '<section id="tags"><h2>By tag</h2>'
    yield _table(headers, rows, numeric=numeric)
    yield "</section>"


def _routing_section(routing: Routing) -> Iterator[str]:
    yield '<section id="routing"><h2>Routing recommendation</h2>'
    yield (
        f'<p class="muted">Per tag: the significantly better model (Wilcoxon p &lt; {routing.alpha:g}), '
        "else the cheaper per successful task, else the faster at p95, else the baseline.</p>"
    )
    rows = [[route.tag, route.cases, route.model, route.role, route.reason] for route in routing.routes]
    default = routing.default
    rows.append([default.tag, default.cases, default.model, default.role, default.reason])
    yield _table(["tag", "cases", "route to", "role", "why"], rows, numeric=(1,))
    blends = [
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
    yield "<h3>Blended</h3>"
    yield _table(
        ["serving", "cases", "pass rate", "quality", "$/success", "total $", "avg ms", "p95 ms"],
        blends,
        numeric=range(1, 8),
    )
    yield f"<h3>Routing table</h3><pre><code>{esc(routing_yaml(routing))}</code></pre>"
    yield "</section>"


def _cases_section(report: RunReport) -> Iterator[str]:
    failing = sum(result.outcome in BLOCKING_OUTCOMES for result in report.results)
    yield '<section id="cases"><h2>Cases</h2>'
    yield (
        f'<p class="muted">{len(report.results)} cases, {failing} failing (open below); '
        "each shows the two models' replies side by side.</p>"
    )
    blocking = {id(result) for result in report.failed_cases}
    for index, result in enumerate(report.results):
        yield from _case(index, result, id(result) in blocking)
    yield "</section>"


def _case(index: int, result: CaseResult, blocking: bool) -> Iterator[str]:
    classes = "case blocking" if blocking else "case"
    is_open = " open" if result.outcome in BLOCKING_OUTCOMES else ""
    tags = "".join(f' <span class="tag">#{esc(tag)}</span>' for tag in result.tags)
    scores = " → ".join(f"{100 * run.score:.0f}" for run in result.runs)
    versus = "" if result.candidate is None else f' <span class="muted">{esc(result.candidate.model)}</span>'
    yield f'<details class="{classes}" id="case-{index}"{is_open}>'
    yield (
        f'<summary><span class="badge {esc(result.outcome)}">{esc(result.outcome)}</span> '
        f"<code>{esc(result.file)}::{esc(result.case_id)}</code>{tags}{versus} "
        f'<span class="muted">score {esc(scores)}</span></summary>'
    )
    if result.message and result.outcome != Outcome.PASSED:
        yield f'<pre class="message">{esc(result.message)}</pre>'
    yield '<div class="pair">'
    yield from _run(result.baseline, "baseline")
    if result.candidate is not None:
        yield from _run(result.candidate, "candidate")
    else:
        yield '<div class="run candidate"><h4>no candidate</h4></div>'
    yield "</div>"
    yield "</details>"


def _run(run: ModelRun, role: str) -> Iterator[str]:
    verdict = "passed" if run.passed else "failed"
    yield f'<div class="run {role}">'
    yield (
        f"<h4>{esc(role)} · <code>{esc(run.model)}</code> · "
        f'<span class="status {verdict}">{verdict}</span> '
        f'<span class="muted">score {100 * run.score:.0f}, pass rate {run.pass_rate:.0%}</span></h4>'
    )
    for number_, sample in enumerate(run.samples, start=1):
        yield from _sample(sample, number_ if len(run.samples) > 1 else None)
    yield "</div>"


def _sample(sample: Sample, position: int | None) -> Iterator[str]:
    yield '<div class="sample">'
    parts = [f"{sample.latency_ms:.0f} ms"]
    if sample.reply is not None:
        usage = sample.reply.usage
        parts.append(
            f"{'?' if usage.prompt_tokens is None else usage.prompt_tokens} in / "
            f"{'?' if usage.completion_tokens is None else usage.completion_tokens} out tokens"
        )
        if sample.reply.finish_reason:
            parts.append(f"finish {sample.reply.finish_reason}")
    parts.append(money(sample.cost_usd))
    parts.append(f"score {sample.score:.2f}")
    if sample.attempts > 1:
        parts.append(f"{sample.attempts} attempts")
    if sample.replayed:
        parts.append("replayed")
    head = f"sample {position}: " if position is not None else ""
    yield f'<div class="stats">{esc(head + " · ".join(parts))}</div>'
    if sample.reply is not None:
        reply = sample.reply
        if reply.text:
            yield f'<pre class="reply">{esc(reply.text)}</pre>'
        if reply.refusal:
            yield f'<pre class="reply">refusal: {esc(reply.refusal)}</pre>'
        for call in reply.tool_calls:
            yield f'<pre class="reply">tool call {esc(call.name)}({esc(call.arguments)})</pre>'
        if not (reply.text or reply.refusal or reply.tool_calls):
            yield '<p class="muted">(empty reply)</p>'
    checks: list[str] = []
    if sample.error is not None:
        checks.append(
            f'<li class="fail">✗ {esc(sample.error_kind or "call")} error: {esc(sample.error)}</li>'
        )
    for check in sample.assertions:
        mark, cls = ("✓", "ok") if check.passed else ("✗", "fail")
        checks.append(f'<li class="{cls}">{mark} {esc(check.type)}: {esc(check.reason)}</li>')
    for breach in sample.breaches:
        checks.append(f'<li class="fail">✗ budget {esc(breach.describe())}</li>')
    checks.extend(f'<li class="muted">note: {esc(note)}</li>' for note in sample.notes)
    if checks:
        yield f'<ul class="checks">{"".join(checks)}</ul>'
    yield "</div>"
