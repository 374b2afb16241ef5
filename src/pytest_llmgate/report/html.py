"""The HTML report (`--llm-report=report.html`): one self-contained page a reviewer opens.

Everything is in the one file: inline CSS, charts as inline SVG (`report.svg`), one small inline
script (filter, search, sort: the page reads fine without it) and no reference to the network,
so it opens from a CI artifact, offline, years later. Model output is
untrusted: every piece of text goes through `html.escape` (quotes included, as attribute values
are built the same way), so a reply containing `<script>` is shown, never run.

Each case shows its prompt, then the two models' replies side by side (word differences marked),
sample by sample, with the failing assertions, errors and budget breaches under the reply they
judged; failing cases come first and open, the others folded. A run of 1,000 cases is read
through the filter (by verdict, with counts), the search box and the sort; the state is kept in
the URL's fragment (`#filter=regressions&q=total&sort=score`), so a link shows the same view.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator, Mapping, Sequence

from pytest_llmgate.assertions.base import AssertionResult, json_pointer
from pytest_llmgate.gate import FAILED
from pytest_llmgate.metrics import ModelSummary
from pytest_llmgate.report.checklist import checklist
from pytest_llmgate.report.model import (
    BLOCKING_OUTCOMES,
    RunReport,
    check_text,
    money,
    not_run_line,
    number,
    percent,
    summary_key,
    ttft_line,
)
from pytest_llmgate.report.routing import Routing, routing_yaml
from pytest_llmgate.report.scores import score_tables
from pytest_llmgate.report.since import FLIPS_SHOWN
from pytest_llmgate.report.svg import cost_quality_chart, latency_chart, score_delta_chart
from pytest_llmgate.results import CaseResult, ModelRun, Outcome, Sample

CSS = """
:root { --ok: #2e7d32; --bad: #c62828; --warn: #92400e; --muted: #4b5563; --line: #d1d5db;
  --base: #3b6a9e; --cand: #b45309; --fg: #111827; --bg: #f9fafb; --panel: #ffffff; --head: #f3f4f6;
  --failbg: #fdecea; --ins: #d1fae5; --del: #fee2e2;
  --badge-ok: #2e7d32; --badge-bad: #c62828; --badge-warn: #92400e; --badge-muted: #4b5563; }
@media (prefers-color-scheme: dark) {
  :root { --ok: #81c784; --bad: #ef9a9a; --warn: #fcd34d; --muted: #a3aab5; --line: #374151;
    --base: #93c5fd; --cand: #fdba74; --fg: #e5e7eb; --bg: #111827; --panel: #1f2937; --head: #273244;
    --failbg: #3b1d1d; --ins: #14532d; --del: #5b1f1f; }
}
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
  color: var(--fg); margin: 0; background: var(--bg); }
header.verdict { padding: 18px 28px; color: #fff; }
header.verdict.passed { background: var(--badge-ok); }
header.verdict.blocked { background: var(--badge-bad); }
header.verdict h1 { margin: 0; font-size: 20px; font-weight: 600; }
header.verdict p { margin: 4px 0 0; font-size: 12px; }
main { padding: 8px 28px 40px; max-width: 1400px; }
section { margin-top: 22px; }
h2 { font-size: 17px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
h3 { font-size: 15px; }
a { color: var(--base); }
.scroll { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; background: var(--panel); font-size: 13px; }
th, td { border: 1px solid var(--line); padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: var(--head); font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.status { font-weight: 600; white-space: nowrap; }
.status.passed, .status.ok { color: var(--ok); }
.status.failed, .status.fail { color: var(--bad); }
.status.skipped, .status.unknown { color: var(--muted); }
.charts { display: flex; flex-wrap: wrap; gap: 16px; }
figure { margin: 0; background: var(--panel); border: 1px solid var(--line); padding: 8px;
  max-width: 100%; min-width: 0; }
figcaption { font-weight: 600; margin-bottom: 4px; }
svg.chart { font-size: 11px; display: block; max-width: 100%; height: auto; }
svg .grid { stroke: var(--line); stroke-width: 1; }
svg .tick, svg .muted { fill: var(--muted); }
svg .label { fill: var(--fg); font-weight: 600; }
svg a rect:hover { opacity: 0.7; }
code, pre { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 12px; }
pre { white-space: pre-wrap; word-break: break-word; margin: 4px 0; }
pre.reply { background: var(--head); padding: 6px 8px; max-height: 260px; overflow: auto; }
pre.reply ins { background: var(--ins); text-decoration: none; }
pre.reply del { background: var(--del); text-decoration: line-through; }
pre.reply .judged { background: var(--failbg); }
pre.reply .judged-at { color: var(--bad); font-weight: 600; }
.prompt { margin: 4px 10px; padding: 4px 8px; border-left: 3px solid var(--line); }
.prompt h3 { margin: 2px 0; font-size: 13px; }
.prompt .role { font-weight: 600; color: var(--muted); font-size: 12px; }
.prompt pre { background: var(--head); padding: 4px 8px; max-height: 200px; overflow: auto; }
.controls { position: sticky; top: 0; z-index: 1; background: var(--bg); padding: 6px 0;
  display: flex; flex-wrap: wrap; gap: 6px; align-items: center; }
.controls button { font: inherit; font-size: 13px; color: var(--fg); background: var(--panel);
  border: 1px solid var(--line); border-radius: 12px; padding: 2px 10px; cursor: pointer; }
.controls button[aria-pressed="true"] { background: var(--fg); color: var(--bg); }
.controls input, .controls select { font: inherit; font-size: 13px; color: var(--fg);
  background: var(--panel); border: 1px solid var(--line); padding: 2px 6px; }
.controls input { flex: 1 1 200px; min-width: 0; }
details.case { background: var(--panel); border: 1px solid var(--line); margin: 6px 0; }
details.case > summary { padding: 6px 10px; cursor: pointer; }
details.case.blocking { border-left: 4px solid var(--bad); }
.badge { display: inline-block; padding: 0 6px; border-radius: 8px; font-size: 12px; color: #fff;
  background: var(--badge-muted); }
.badge.passed, .badge.improvement { background: var(--badge-ok); }
.badge.regression, .badge.error, .badge.failed { background: var(--badge-bad); }
.badge.budget, .badge.already-failing { background: var(--badge-warn); }
.tag { color: var(--muted); font-size: 12px; }
.message { margin: 4px 10px; color: var(--muted); }
.pair { display: grid; grid-template-columns: 1fr 1fr; gap: 10px; padding: 6px 10px 10px; }
@media (max-width: 700px) { main { padding: 8px 10px 30px; } .pair { grid-template-columns: 1fr; }
  header.verdict { padding: 12px 10px; } }
.run { min-width: 0; }
.run h3 { margin: 4px 0; font-size: 14px; }
.run.baseline h3 { color: var(--base); } .run.candidate h3 { color: var(--cand); }
.sample { border-top: 1px dashed var(--line); padding-top: 4px; margin-top: 4px; }
.stats { color: var(--muted); font-size: 12px; }
ul.checks { list-style: none; padding: 0; margin: 4px 0; }
ul.checks li { padding: 1px 6px; margin: 1px 0; }
ul.checks li.ok { color: var(--ok); }
ul.checks li.fail { background: var(--failbg); color: var(--bad); font-weight: 600; }
.muted { color: var(--muted); }
@media print {
  .controls { display: none; }
  body { background: #fff; color: #000; }
  header.verdict { print-color-adjust: exact; -webkit-print-color-adjust: exact; }
  table, tr, figure, pre, .sample { break-inside: avoid; }
  pre.reply, .prompt pre { max-height: none; overflow: visible; }
}
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
        yield from _since_section(report)
        yield from _gates_section(report)
        yield from _checklist_section(report)
        yield from _charts_section(report)
        yield from _tags_section(report)
        for title, table in score_tables(report.results):
            yield f"<section><h2>{esc(title)}</h2>{_table(*table)}</section>"
        if report.routing is not None:
            yield from _routing_section(report.routing)
        yield from _adapted_section(report)
        yield from _cases_section(report)
    yield "</main>"
    if report.results:
        yield f"<script>{SCRIPT}</script>"
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
    yield from _price_sources(report)
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


FILTERS = (
    ("all", "all"),
    ("regressions", "regressions"),
    ("improvements", "improvements"),
    ("failing-on-both", "failing on both"),
    ("budget", "budget"),
    ("errors", "errors"),
)
GROUPS = {
    Outcome.REGRESSION: "regressions",
    Outcome.IMPROVEMENT: "improvements",
    Outcome.ALREADY_FAILING: "failing-on-both",
    Outcome.BUDGET: "budget",
    Outcome.ERROR: "errors",
}
# Failures first: what blocks, then what fails on both, then the rest (file order within each).
RANK = {
    Outcome.REGRESSION: 0,
    Outcome.ERROR: 1,
    Outcome.BUDGET: 2,
    Outcome.FAILED: 3,
    Outcome.ALREADY_FAILING: 4,
    Outcome.IMPROVEMENT: 5,
    Outcome.PASSED: 6,
}
LAZY_CASES = 200
"""Past this many cases, folded cases are rendered when opened: a page of 2,000 laid out whole
(3.4 MB of replies) took seconds to open and scroll."""
MAX_DIFF_WORDS = 3000  # a longer reply is shown without marks: the matching is quadratic at worst

SCRIPT = """
(function () {
  var list = document.getElementById('case-list');
  if (!list) return;
  var cases = Array.prototype.slice.call(list.children);
  var state = {filter: 'all', q: '', sort: 'failures'};
  var search = document.getElementById('case-search');
  var sorter = document.getElementById('case-sort');
  var shown = document.getElementById('case-shown');
  var buttons = Array.prototype.slice.call(document.querySelectorAll('[data-filter]'));
  var texts = new WeakMap();
  function text(c) {
    var t = folded(c);
    if (!texts.has(c)) texts.set(c, (c.textContent + ' ' + (t ? t.content.textContent : '')).toLowerCase());
    return texts.get(c);
  }
  function folded(c) { return c.querySelector(':scope > template.lazy'); }
  function unfold(c) { var t = folded(c); if (t) c.replaceChild(t.content, t); }
  list.addEventListener('toggle', function (e) { if (e.target.open) unfold(e.target); }, true);
  window.addEventListener('beforeprint', function () { cases.forEach(unfold); });
  function num(c, key, missing) {
    var v = c.getAttribute('data-' + key);
    return v === null || v === '' ? missing : parseFloat(v);
  }
  function by(key, missing, sign) {
    return function (a, b) {
      return sign * (num(a, key, missing) - num(b, key, missing)) || num(a, 'order', 0) - num(b, 'order', 0);
    };
  }
  var orders = {
    failures: by('rank', 9, 1),
    score: by('score-change', 1e9, 1),
    cost: by('cost-change', -1e9, -1),
    latency: by('latency', -1e9, -1)
  };
  function apply(save) {
    var words = state.q.toLowerCase().split(/\\s+/).filter(Boolean);
    var count = 0;
    cases.sort(orders[state.sort] || orders.failures);
    cases.forEach(function (c) {
      list.appendChild(c);
      var ok = (state.filter === 'all' || c.getAttribute('data-group') === state.filter) &&
        words.every(function (w) { return text(c).indexOf(w) >= 0; });
      c.hidden = !ok;
      if (ok) count += 1;
    });
    buttons.forEach(function (b) {
      b.setAttribute('aria-pressed', String(b.getAttribute('data-filter') === state.filter));
    });
    search.value = state.q;
    sorter.value = state.sort;
    shown.textContent = count + ' of ' + cases.length + ' cases shown';
    if (save && window.history && history.replaceState) {
      history.replaceState(null, '', '#filter=' + encodeURIComponent(state.filter) +
        '&q=' + encodeURIComponent(state.q) + '&sort=' + encodeURIComponent(state.sort));
    }
  }
  function fromHash() {
    var hash = location.hash.slice(1);
    if (hash.indexOf('=') < 0) return false;
    hash.split('&').forEach(function (part) {
      var i = part.indexOf('=');
      var key = part.slice(0, i), value = decodeURIComponent(part.slice(i + 1).replace(/\\+/g, ' '));
      if (key in state) state[key] = value;
    });
    return true;
  }
  function reveal() {
    var target = location.hash.length > 1 && document.getElementById(location.hash.slice(1));
    if (!target || !target.classList || !target.classList.contains('case')) return;
    if (target.hidden) { state.filter = 'all'; state.q = ''; apply(false); }
    target.open = true;
    target.scrollIntoView();
  }
  buttons.forEach(function (b) {
    b.addEventListener('click', function () { state.filter = b.getAttribute('data-filter'); apply(true); });
  });
  search.addEventListener('input', function () { state.q = search.value; apply(true); });
  sorter.addEventListener('change', function () { state.sort = sorter.value; apply(true); });
  window.addEventListener('hashchange', function () { if (fromHash()) apply(false); else reveal(); });
  window.addEventListener('beforeprint', function () {
    cases.forEach(function (c) { if (!c.hidden) c.open = true; });
  });
  fromHash();
  apply(false);
  reveal();
})();
"""


def _cases_section(report: RunReport) -> Iterator[str]:
    failing = sum(result.outcome in BLOCKING_OUTCOMES for result in report.results)
    yield '<section id="cases"><h2>Cases</h2>'
    yield (
        f'<p class="muted">{len(report.results)} cases, {failing} failing (first, and open); '
        "each shows its prompt, then the two models' replies side by side, what differs marked.</p>"
    )
    counts = {name: 0 for name, _ in FILTERS}
    counts["all"] = len(report.results)
    for result in report.results:
        group = GROUPS.get(result.outcome)
        if group is not None:
            counts[group] += 1
    yield '<div class="controls" role="search">'
    for name, label in FILTERS:
        pressed = "true" if name == "all" else "false"
        yield (
            f'<button type="button" data-filter="{name}" aria-pressed="{pressed}">'
            f"{esc(label)} ({counts[name]})</button>"
        )
    yield (
        '<input type="search" id="case-search" placeholder="search id, tag, prompt, reply" '
        'aria-label="search the cases by id, tag, prompt or reply text">'
    )
    yield (
        '<select id="case-sort" aria-label="sort the cases">'
        '<option value="failures">failures first</option>'
        '<option value="score">score change (worst first)</option>'
        '<option value="cost">cost change (largest first)</option>'
        '<option value="latency">latency (slowest first)</option></select>'
    )
    yield f'<span id="case-shown" class="muted" aria-live="polite">{len(report.results)} cases</span>'
    yield "</div>"
    yield '<div id="case-list">'
    blocking = {id(result) for result in report.failed_cases}
    order = sorted(
        range(len(report.results)), key=lambda index: (RANK.get(report.results[index].outcome, 9), index)
    )
    lazy = len(report.results) > LAZY_CASES
    # The cases are most of the page (2,000 cases: 50,000 lines): appended to one list and joined
    # once, not yielded through a generator per nesting level.
    lines: list[str] = []
    diffs: Diffs = {}
    for index in order:
        result = report.results[index]
        _case(lines, index, result, id(result) in blocking, lazy=lazy, diffs=diffs)
    if lines:
        yield "\n".join(lines)
    yield "</div>"
    yield "</section>"


def case_anchor(index: int) -> str:
    """The id of a case's element: chart bars and the verdict link to it."""
    return f"case-{index}"


def _case(
    out: list[str],
    index: int,
    result: CaseResult,
    blocking: bool,
    lazy: bool = False,
    diffs: Diffs | None = None,
) -> None:
    """One case, whole, appended to `out` line by line: the only place a case is rendered (a
    paged or lazily rendered report renders each case with this function too).

    `lazy`: a folded case's body goes in an inert `<template>`, put in place when it is first
    opened (see SCRIPT's `unfold`); the browser then lays out only the open cases. `diffs` is
    shared by the cases of one page (see `word_diff`).
    """
    classes = "case blocking" if blocking else "case"
    is_open = " open" if result.outcome in BLOCKING_OUTCOMES else ""
    tags = "".join(f' <span class="tag">#{esc(tag)}</span>' for tag in result.tags)
    scores = " → ".join(f"{100 * run.score:.0f}" for run in result.runs)
    versus = "" if result.candidate is None else f' <span class="muted">{esc(result.candidate.model)}</span>'
    data = {
        "group": GROUPS.get(result.outcome, "other"),
        "rank": str(RANK.get(result.outcome, 9)),
        "order": str(index),
        "score-change": _data_number(
            None if result.candidate is None else 100 * (result.candidate.score - result.baseline.score)
        ),
        "cost-change": _data_number(_cost_change(result)),
        "latency": _data_number(_mean_latency(result.candidate or result.baseline)),
    }
    attributes = "".join(f' data-{key}="{esc(value)}"' for key, value in data.items())
    out.append(f'<details class="{classes}" id="{case_anchor(index)}"{attributes}{is_open}>')
    out.append(
        f'<summary><span class="badge {esc(result.outcome)}">{esc(result.outcome)}</span> '
        f"<code>{esc(result.file)}::{esc(result.case_id)}</code>{tags}{versus} "
        f'<span class="muted">score {esc(scores)}</span></summary>'
    )
    folded = lazy and not is_open
    if folded:
        out.append('<template class="lazy">')
    if result.message and result.outcome != Outcome.PASSED:
        out.append(f'<pre class="message">{esc(result.message)}</pre>')
    _prompt(out, result.prompt)
    out.append('<div class="pair">')
    diffs = {} if diffs is None else diffs
    _run(out, result.baseline, "baseline", result.candidate, diffs)
    if result.candidate is not None:
        _run(out, result.candidate, "candidate", result.baseline, diffs)
    else:
        out.append('<div class="run candidate"><h3>no candidate</h3></div>')
    out.append("</div>")
    if folded:
        out.append("</template>")
    out.append("</details>")


def _data_number(value: float | None) -> str:
    return "" if value is None else f"{value:.6g}"


def _cost_change(result: CaseResult) -> float | None:
    if result.candidate is None:
        return None
    base, cand = result.baseline.cost_usd, result.candidate.cost_usd
    return None if base is None or cand is None else cand - base


def _mean_latency(run: ModelRun) -> float | None:
    answered = [sample.latency_ms for sample in run.samples if sample.reply is not None]
    return sum(answered) / len(answered) if answered else None


def _prompt(out: list[str], messages: Sequence[Mapping[str, object]]) -> None:
    """The messages the models were sent; content given as parts shows its text parts."""
    if not messages:
        return
    out.append('<div class="prompt"><h3>Prompt</h3>')
    for message in messages:
        out.append(
            f'<div class="message-in"><span class="role">{esc(message.get("role", ""))}</span>'
            f"<pre>{esc(_content_text(message.get('content')))}</pre></div>"
        )
    out.append("</div>")


def _content_text(content: object) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, Mapping):
                text = part.get("text")
                parts.append(str(text) if isinstance(text, str) else f"[{part.get('type', 'part')}]")
            else:
                parts.append(str(part))
        return "\n".join(parts)
    return str(content)


_TOKEN = re.compile(r"\s+|[^\s]+")


Blocks = list[tuple[int, int, int]]
"""Matching blocks (start in `before`, start in `after`, length in tokens), in order."""

Diffs = dict[tuple[str, str], Blocks]
"""(before, after) -> its blocks, when already known: see `word_diff`."""


def word_diff(before: str, after: str, tag: str = "ins", diffs: Diffs | None = None) -> str:
    """`after` escaped, the words not in `before` wrapped in `<ins>` (or `<del>`, for the
    baseline's side): what changed between the two replies, at a glance.

    The words are matched as `difflib.SequenceMatcher(autojunk=False)` matches them (see
    `matching_blocks`). Each case diffs its two replies both ways (the baseline's side against
    the candidate's, and back); `diffs`, shared by the calls of one page, takes the second
    from the first when the matching is the same both ways.
    """
    old, new = _TOKEN.findall(before), _TOKEN.findall(after)
    if len(old) > MAX_DIFF_WORDS or len(new) > MAX_DIFF_WORDS or before == after:
        return esc(after)
    blocks = None if diffs is None else diffs.pop((before, after), None)
    if blocks is None:
        blocks, symmetric = matching_blocks(old, new)
        if diffs is not None and symmetric:
            diffs[(after, before)] = [(j, i, size) for i, j, size in blocks]
    out: list[str] = []
    done = 0
    for _, start, size in (*blocks, (len(old), len(new), 0)):
        if start > done:  # words of `after` that `before` lacks (or whitespace only: unmarked)
            chunk = esc("".join(new[done:start]))
            out.append(f"<{tag}>{chunk}</{tag}>" if chunk.strip() else chunk)
        if size:
            out.append(esc("".join(new[start : start + size])))
        done = start + size
    return "".join(out)


def matching_blocks(a: Sequence[str], b: Sequence[str]) -> tuple[Blocks, bool]:
    """`difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_matching_blocks()` without its
    final dummy and without merging adjacent blocks (a diff marks the same words either way),
    and whether swapping `a` and `b` gives the same blocks swapped.

    difflib's algorithm (the longest common run, the first in `a` then in `b` among equals, then
    the same on each side of it), without the junk heuristics that `autojunk=False` and no
    `isjunk` turn off: a 2,000-case page diffs 4,000 replies, and difflib's object and bookkeeping
    cost as much as the matching. Swapped, the algorithm picks the same run whenever the longest
    is unique: when it is in every step, the reverse diff needs no second matching.
    """
    b2j: dict[str, list[int]] = {}
    for j, token in enumerate(b):
        b2j.setdefault(token, []).append(j)
    blocks: Blocks = []
    symmetric = True
    queue = [(0, len(a), 0, len(b))]
    while queue:
        alo, ahi, blo, bhi = queue.pop()
        best_i, best_j, best_size = alo, blo, 0
        tied = False
        lengths: dict[int, int] = {}  # j -> length of the common run ending at a[i - 1], b[j]
        for i in range(alo, ahi):
            following: dict[int, int] = {}
            for j in b2j.get(a[i], ()):
                if j < blo:
                    continue
                if j >= bhi:
                    break
                size = following[j] = lengths.get(j - 1, 0) + 1
                if size > best_size:
                    best_i, best_j, best_size = i - size + 1, j - size + 1, size
                    tied = False
                elif size == best_size:
                    tied = True
            lengths = following
        if best_size:
            symmetric = symmetric and not tied
            blocks.append((best_i, best_j, best_size))
            if alo < best_i and blo < best_j:
                queue.append((alo, best_i, blo, best_j))
            if best_i + best_size < ahi and best_j + best_size < bhi:
                queue.append((best_i + best_size, ahi, best_j + best_size, bhi))
    blocks.sort()
    return blocks, symmetric


def _cost_text(sample: Sample) -> str:
    """The cost, where its price came from, and the API's own figure beside it when both exist."""
    text = money(sample.cost_usd)
    if sample.price_source:
        text += f" ({sample.price_source})"
    computed = sample.input_cost_usd is not None and sample.output_cost_usd is not None
    if computed and sample.reported_cost_usd is not None:
        text += f", API reported {money(sample.reported_cost_usd)}"
    return text


def _price_sources(report: RunReport) -> Iterator[str]:
    """Which price each model's costs rest on: a stale table or a typo is then visible."""
    sources: dict[str, list[str]] = {}
    for result in report.results:
        for run in result.runs:
            for sample in run.samples:
                if sample.price_source and sample.price_source not in sources.setdefault(run.model, []):
                    sources[run.model].append(sample.price_source)
    if not sources:
        return
    parts = [
        f"<code>{esc(model)}</code>: {esc('; '.join(found) or 'no price')}"
        for model, found in sources.items()
    ]
    yield f"<p>Prices: {' · '.join(parts)}.</p>"


def _since_section(report: RunReport) -> Iterator[str]:
    since = report.since
    if since is None:
        return
    yield '<section id="since"><h2>Since the previous run</h2>'
    yield (
        f'<p class="muted">Compared with the run of {esc(since.previous_created)}: '
        f"{esc(since.previous_verdict)}</p>"
    )
    rows = [
        [
            change.model,
            change.role,
            number(change.quality_before, ".1f"),
            number(change.quality_after, ".1f"),
            money(change.cost_per_success_before),
            money(change.cost_per_success_after),
            percent(change.cost_change, "+.0%"),
            number(change.p95_before, ".0f"),
            number(change.p95_after, ".0f"),
        ]
        for change in since.models
    ]
    yield _table(
        [
            "model",
            "role",
            "quality then",
            "quality now",
            "$/success then",
            "$/success now",
            "change",
            "p95 ms then",
            "p95 ms now",
        ],
        rows,
        numeric=range(2, 9),
    )
    yield f"<p>{esc(since.lines()[-1])}.</p>"
    if since.flips:
        items = "".join(
            f"<li><code>{esc(flip.case)}</code> ({esc(flip.model)}): "
            f"{esc(flip.before)} → {esc(flip.after)}</li>"
            for flip in since.flips[:FLIPS_SHOWN]
        )
        more = len(since.flips) - FLIPS_SHOWN
        yield f"<ul>{items}</ul>" + (
            f'<p class="muted">… and {more} more in the JSON report.</p>' if more > 0 else ""
        )
    yield "</section>"


def _checklist_section(report: RunReport) -> Iterator[str]:
    items = checklist(report)
    failing = sum(item.status == "fail" for item in items)
    yield '<section id="checklist"><h2>Pre-upgrade checklist</h2>'
    yield (
        f'<p class="muted">{len(items)} items, {failing} to act on, answered from what this run measured.</p>'
    )
    yield '<div class="scroll"><table><thead><tr><th>status</th><th>item</th><th>measured</th>'
    yield "<th>what to do</th></tr></thead><tbody>"
    for item in items:
        yield (
            f'<tr id="check-{esc(item.name)}"><td class="status {esc(item.status)}">{esc(item.mark)}</td>'
            f"<td><code>{esc(item.name)}</code> {esc(item.title)}</td><td>{esc(item.value)}</td>"
            f"<td>{esc(item.action)}</td></tr>"
        )
    yield "</tbody></table></div></section>"


def _adapted_section(report: RunReport) -> Iterator[str]:
    from pytest_llmgate.report.terminal import adapted_lines

    lines = [line.removeprefix("params adapted: ") for line in adapted_lines(report.results)]
    if not lines:
        return
    yield '<section id="adapted"><h2>Adapted parameters</h2>'
    yield "<ul>" + "".join(f"<li>{esc(line)}</li>" for line in lines) + "</ul>"
    yield "</section>"


def _run(out: list[str], run: ModelRun, role: str, other: ModelRun | None, diffs: Diffs) -> None:
    """One model's samples; `other` is the run its replies are diffed against, word by word."""
    verdict = "passed" if run.passed else "failed"
    out.append(f'<div class="run {role}">')
    out.append(
        f"<h3>{esc(role)} · <code>{esc(run.model)}</code> · "
        f'<span class="status {verdict}">{verdict}</span> '
        f'<span class="muted">score {100 * run.score:.0f}, pass rate {run.pass_rate:.0%}</span></h3>'
    )
    for number_, sample in enumerate(run.samples, start=1):
        counterpart = None
        if other is not None and other.samples:
            counterpart = other.samples[min(number_, len(other.samples)) - 1]
        _sample(
            out,
            sample,
            number_ if len(run.samples) > 1 else None,
            counterpart,
            "del" if role == "baseline" else "ins",
            diffs,
        )
    out.append("</div>")


def _judged_json(text: str, assertions: Sequence[AssertionResult]) -> str | None:
    """A JSON reply laid out a field a line, each field a failed assertion judged marked on its
    line with what was wrong there; None when no failed assertion says where (the reply is then
    shown as it came, diffed with the other model's)."""
    findings: dict[str, list[str]] = {}
    for check in assertions:
        if not check.passed:
            for pointer, message in check.at:
                findings.setdefault(pointer, []).append(f"{check.type}: {message}")
    if not findings:
        return None
    from pytest_llmgate.assertions.structured import parse_json_output

    try:
        document = parse_json_output(text)
    except ValueError:
        return None
    if not isinstance(document, dict | list):
        return None
    lines = []
    marked: set[str] = set()
    for line, where in _json_lines(document):
        messages = findings.get(where) if where is not None else None
        if messages and where is not None:
            marked.add(where)
            wrong = esc("; ".join(messages))
            lines.append(f'<span class="judged">{esc(line)}</span><span class="judged-at">  ✗ {wrong}</span>')
        else:
            lines.append(esc(line))
    lines.extend(
        f'<span class="judged-at">✗ {esc("; ".join(messages))} '
        f"({'deeper than this layout goes' if _resolves(document, pointer) else 'not in the reply'})</span>"
        for pointer, messages in findings.items()
        if pointer not in marked
    )
    return (
        '<p class="muted">the reply as JSON, a field a line; ✗ marks what a failed assertion judged there</p>'
        f'<pre class="reply judged-json">{chr(10).join(lines)}</pre>'
    )


def _resolves(document: object, pointer: str) -> bool:
    """Whether the JSON Pointer names a value of `document`."""
    node = document
    for part in pointer.split("/")[1:]:
        key = part.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and key in node:
            node = node[key]
        elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
            node = node[int(key)]
        else:
            return False
    return True


_JSON_LAYOUT_DEPTH = 64  # deeper than this, a value is shown on one line (no field is marked in it)


def _json_lines(
    value: object, pointer: str = "", depth: int = 0, prefix: str = "", suffix: str = ""
) -> Iterator[tuple[str, str | None]]:
    """(line, JSON Pointer of the value that line starts, or None) of `value` laid out with two
    spaces an indent, as `json.dumps(indent=2)` would."""
    pad = "  " * depth
    if isinstance(value, dict) and value and depth < _JSON_LAYOUT_DEPTH:
        yield f"{pad}{prefix}{{", pointer
        last = len(value) - 1
        for index, (key, item) in enumerate(value.items()):
            name = json.dumps(key, ensure_ascii=False)
            comma = "," if index < last else ""
            yield from _json_lines(item, pointer + json_pointer([key]), depth + 1, f"{name}: ", comma)
        yield f"{pad}}}{suffix}", None
    elif isinstance(value, list) and value and depth < _JSON_LAYOUT_DEPTH:
        yield f"{pad}{prefix}[", pointer
        last = len(value) - 1
        for index, item in enumerate(value):
            comma = "," if index < last else ""
            yield from _json_lines(item, f"{pointer}/{index}", depth + 1, "", comma)
        yield f"{pad}]{suffix}", None
    else:
        yield f"{pad}{prefix}{json.dumps(value, ensure_ascii=False)}{suffix}", pointer


def _sample(
    out: list[str],
    sample: Sample,
    position: int | None,
    counterpart: Sample | None,
    diff_tag: str,
    diffs: Diffs,
) -> None:
    out.append('<div class="sample">')
    parts = [f"{sample.latency_ms:.0f} ms"]
    if sample.reply is not None:
        usage = sample.reply.usage
        parts.append(
            f"{'?' if usage.prompt_tokens is None else usage.prompt_tokens} in / "
            f"{'?' if usage.completion_tokens is None else usage.completion_tokens} out tokens"
        )
        if sample.reply.finish_reason:
            parts.append(f"finish {sample.reply.finish_reason}")
    parts.append(_cost_text(sample))
    parts.append(f"score {sample.score:.2f}")
    if sample.attempts > 1:
        parts.append(f"{sample.attempts} attempts")
    if sample.replayed:
        parts.append("replayed")
    head = f"sample {position}: " if position is not None else ""
    out.append(f'<div class="stats">{esc(head + " · ".join(parts))}</div>')
    if sample.reply is not None:
        reply = sample.reply
        judged = _judged_json(reply.text, sample.assertions) if reply.text else None
        if judged is not None:
            out.append(judged)
        if reply.text:
            other = counterpart.reply.text if counterpart is not None and counterpart.reply else None
            shown = esc(reply.text) if not other else word_diff(other, reply.text, diff_tag, diffs)
            if judged is None:
                out.append(f'<pre class="reply">{shown}</pre>')
            else:  # the text itself stays one click away, diffed, and searchable
                out.append(
                    '<details class="as-sent"><summary>the reply as it came</summary>'
                    f'<pre class="reply">{shown}</pre></details>'
                )
        if reply.refusal:
            out.append(f'<pre class="reply">refusal: {esc(reply.refusal)}</pre>')
        for call in reply.tool_calls:
            out.append(f'<pre class="reply">tool call {esc(call.name)}({esc(call.arguments)})</pre>')
        if not (reply.text or reply.refusal or reply.tool_calls):
            out.append('<p class="muted">(empty reply)</p>')
    checks: list[str] = []
    if sample.error is not None:
        checks.append(
            f'<li class="fail">✗ {esc(sample.error_kind or "call")} error: {esc(sample.error)}</li>'
        )
    for check in sample.assertions:
        mark, cls = ("✓", "ok") if check.passed else ("✗", "fail")
        checks.append(f'<li class="{cls}">{mark} {esc(check_text(check.type, check.reason))}</li>')
    for breach in sample.breaches:
        checks.append(f'<li class="fail">✗ budget {esc(breach.describe())}</li>')
    checks.extend(f'<li class="muted">note: {esc(note)}</li>' for note in sample.notes)
    if checks:
        out.append(f'<ul class="checks">{"".join(checks)}</ul>')
    out.append("</div>")
