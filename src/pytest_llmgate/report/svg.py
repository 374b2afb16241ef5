"""Charts of the HTML report as inline SVG, drawn in Python: no script, no network, no fonts.

Each chart is a pure function of the `RunReport` returning one `<svg>` element; every piece of
text in it goes through `html.escape`, since case ids, tags and model names are user text. The
elements carry no `xmlns`: inline SVG in HTML needs none.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

from pytest_llmgate.metrics import baseline_runs, format_usd
from pytest_llmgate.report.model import RunReport
from pytest_llmgate.results import ModelRun
from pytest_llmgate.stats import percentile

COLORS = {"baseline": "#4c78a8", "candidate": "#b45309"}  # both at least 4.5:1 on white (WCAG AA)
GOOD, BAD, MUTED = "#2e7d32", "#c62828", "#6b7280"
WIDTH = 640
MAX_DELTA_ROWS = 60


def _text(x: float, y: float, text: str, *, anchor: str = "start", cls: str = "") -> str:
    extra = f' class="{cls}"' if cls else ""
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"{extra}>{html.escape(text)}</text>'


def _line(x1: float, y1: float, x2: float, y2: float, attributes: str = 'class="grid"') -> str:
    return f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" {attributes}/>'


def _circle(cx: float, cy: float, r: float, fill: str, extra: str = "", title: str = "") -> str:
    head = f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="{r:g}" fill="{fill}"{extra}'
    return f"{head}><title>{html.escape(title)}</title></circle>" if title else f"{head}/>"


def _rect(x: float, y: float, width: float, height: float, attributes: str, title: str = "") -> str:
    head = f'<rect x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" height="{height:.1f}" {attributes}'
    return f"{head}><title>{html.escape(title)}</title></rect>" if title else f"{head}/>"


def _svg(height: float, label: str, body: Sequence[str]) -> str:
    return (
        f'<svg class="chart" viewBox="0 0 {WIDTH} {height:.0f}" width="{WIDTH}" height="{height:.0f}" '
        f'role="img" aria-label="{html.escape(label)}">' + "".join(body) + "</svg>"
    )


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 times a power of ten that is >= value (axis ends)."""
    if value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    for step in (1.0, 2.0, 2.5, 5.0):
        if step * power >= value * (1 - 1e-12):
            return step * power
    return 10.0 * power


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _empty(label: str, message: str) -> str:
    return _svg(60, label, [_text(WIDTH / 2, 34, message, anchor="middle", cls="muted")])


def latency_chart(report: RunReport) -> str:
    """Per model, a box plot of call latency (min, quartiles, median, max) with p95 and each call."""
    label = "Latency distribution per model"
    series = []
    for summary in report.summaries:
        runs: list[ModelRun | None] = (
            list(baseline_runs(report.results, summary.model))
            if summary.role == "baseline"
            else [
                result.candidate
                for result in report.results
                if result.candidate is not None
                and result.candidate.model == summary.model
                and summary.versus in (None, result.baseline.model)
            ]
        )
        values = [
            sample.latency_ms
            for run in runs
            if run is not None
            for sample in run.samples
            if sample.reply is not None
        ]
        series.append((summary.role, summary.model, sorted(values)))
    if not any(values for _, _, values in series):
        return _empty(label, "no answered call: no latency to show")
    top = nice_ceiling(max(max(values) for _, _, values in series if values))
    left, right, row = 150.0, WIDTH - 36.0, 64.0
    axis_y = 20 + row * len(series)

    def x(value: float) -> float:
        return left + (right - left) * value / top

    body = []
    for index in range(6):
        value = top * index / 5
        body.append(_line(x(value), 14, x(value), axis_y))
        body.append(_text(x(value), axis_y + 16, f"{value:g} ms", anchor="middle", cls="tick"))
    for index, (role, model, values) in enumerate(series):
        mid = 24 + row * index + row / 2
        color = COLORS.get(role, MUTED)
        stroke = f'stroke="{color}" stroke-width="1.5"'
        body.append(_text(left - 10, mid - 2, _clip(model, 22), anchor="end", cls="label"))
        body.append(_text(left - 10, mid + 12, role, anchor="end", cls="tick"))
        if not values:
            body.append(_text(left + 4, mid + 4, "no answered call", cls="muted"))
            continue
        q1, median, q3, p95 = (percentile(values, q) or 0.0 for q in (25, 50, 75, 95))
        body.append(_line(x(values[0]), mid, x(values[-1]), mid, stroke))
        body.extend(_line(x(end), mid - 8, x(end), mid + 8, stroke) for end in (values[0], values[-1]))
        body.append(
            _rect(
                x(q1),
                mid - 13,
                max(x(q3) - x(q1), 1.5),
                26,
                f'fill="{color}" fill-opacity="0.25" stroke="{color}"',
                f"{model}: quartiles {q1:.0f}-{q3:.0f} ms, median {median:.0f} ms",
            )
        )
        body.append(_line(x(median), mid - 13, x(median), mid + 13, f'stroke="{color}" stroke-width="3"'))
        for position, value in enumerate(values):
            jitter = ((position * 7) % 9 - 4) * 2.2
            body.append(_circle(x(value), mid + jitter, 2, color, ' fill-opacity="0.55"'))
        body.append(
            f'<path d="M{x(p95):.1f} {mid - 15:.1f} l5 -6 h-10 z" fill="{BAD}">'
            f"<title>p95 {p95:.0f} ms</title></path>"
        )
        body.append(_text(x(p95), mid - 24, f"p95 {p95:.0f}", anchor="middle", cls="tick"))
    return _svg(axis_y + 26, label, body)


def cost_quality_chart(report: RunReport) -> str:
    """Per tag, each model's cost per successful task (x) against its quality (y), joined by an arrow."""
    label = "Cost per successful task vs quality, per tag"
    points: list[tuple[str, str, float, float]] = []  # tag, role, cost, quality
    omitted: list[str] = []
    for tag in report.tags:
        for summary in tag.summaries:
            if summary.cost_per_success is not None and summary.quality is not None:
                points.append((tag.tag, summary.role, summary.cost_per_success, summary.quality))
            else:
                omitted.append(f"{tag.tag} {summary.role}")
    if not points:
        return _empty(label, "cost per successful task unknown (no price, or no case passed)")
    top = nice_ceiling(max(cost for _, _, cost, _ in points) * 1.1)
    left, right, upper, lower = 70.0, WIDTH - 120.0, 20.0, 300.0

    def x(cost: float) -> float:
        return left + (right - left) * cost / top

    def y(quality: float) -> float:
        return lower - (lower - upper) * quality / 100

    body = [
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="6" markerHeight="6" '
        f'orient="auto-start-reverse"><path d="M0 0 L10 5 L0 10 z" fill="{MUTED}"/></marker></defs>'
    ]
    for index in range(6):
        quality = 20.0 * index
        cost = top * index / 5
        body.append(_line(left, y(quality), right, y(quality)))
        body.append(_text(left - 8, y(quality) + 4, f"{quality:.0f}", anchor="end", cls="tick"))
        body.append(_line(x(cost), upper, x(cost), lower))
        body.append(_text(x(cost), lower + 16, format_usd(cost), anchor="middle", cls="tick"))
    middle = (upper + lower) / 2
    body.append(_text((left + right) / 2, lower + 34, "cost per successful task (USD)", anchor="middle"))
    body.append(
        f'<text x="16" y="{middle:.1f}" text-anchor="middle" transform="rotate(-90 16 {middle:.1f})">'
        "quality (0-100)</text>"
    )
    by_tag: dict[str, dict[str, tuple[float, float]]] = {}
    for name, role, cost, quality in points:
        by_tag.setdefault(name, {})[role] = (cost, quality)
    for name, roles in by_tag.items():
        if "baseline" in roles and "candidate" in roles:
            (bx, by), (cx, cy) = roles["baseline"], roles["candidate"]
            body.append(
                _line(
                    x(bx), y(by), x(cx), y(cy), f'stroke="{MUTED}" stroke-width="1" marker-end="url(#arrow)"'
                )
            )
        for role, (cost, quality) in roles.items():
            title = f"{name}, {role}: quality {quality:.1f}, {format_usd(cost)} per successful task"
            body.append(_circle(x(cost), y(quality), 5, COLORS.get(role, MUTED), title=title))
        anchor_cost, anchor_quality = roles.get("candidate", roles.get("baseline", (0.0, 0.0)))
        body.append(_text(x(anchor_cost) + 8, y(anchor_quality) - 6, _clip(name, 24), cls="label"))
    for index, (role, color) in enumerate(COLORS.items()):
        body.append(_circle(right + 20, upper + 6 + 18 * index, 5, color))
        body.append(_text(right + 30, upper + 10 + 18 * index, role, cls="tick"))
    if omitted:
        note = "not shown (no case passed, or cost unknown): " + ", ".join(omitted)
        body.append(_text(left, lower + 52, _clip(note, 100), cls="muted"))
    return _svg(lower + (62 if omitted else 44), label, body)


def score_delta_chart(report: RunReport) -> str:
    """Per case, the candidate's score minus the baseline's in points, worst first."""
    label = "Per-case score difference, candidate minus baseline"
    deltas = sorted(
        (100.0 * (result.candidate.score - result.baseline.score), f"{result.file}::{result.case_id}", index)
        for index, result in enumerate(report.results)
        if result.candidate is not None and not result.baseline.errored and not result.candidate.errored
    )
    if not deltas:
        return _empty(label, "no case was answered by both models without errors")
    hidden = 0
    if len(deltas) > MAX_DELTA_ROWS:
        hidden = len(deltas) - MAX_DELTA_ROWS
        deltas = deltas[: MAX_DELTA_ROWS // 2] + deltas[-MAX_DELTA_ROWS // 2 :]
    left, right, row = 250.0, WIDTH - 40.0, 16.0
    zero = (left + right) / 2
    bottom = 16 + row * len(deltas)

    def x(delta: float) -> float:
        return zero + (right - left) / 2 * delta / 100

    body = []
    for value in (-100, -50, 0, 50, 100):
        body.append(_line(x(value), 10, x(value), bottom))
        body.append(
            _text(x(value), bottom + 16, f"{value:+d}" if value else "0", anchor="middle", cls="tick")
        )
    for index, (delta, name, case) in enumerate(deltas):
        top = 14 + row * index
        color = GOOD if delta > 0 else BAD if delta < 0 else MUTED
        start, end = sorted((x(0), x(delta)))
        body.append(_text(left - 34, top + 11, _clip(name, 34), anchor="end", cls="tick"))
        title = f"{name}: {delta:+.1f} points"
        # Each bar links to its case (`html.case_anchor`): the chart is where a reader starts.
        body.append(f'<a href="#case-{case}">')
        body.append(_rect(start, top + 2, max(end - start, 1.0), row - 4, f'fill="{color}"', title))
        body.append("</a>")
        if delta >= 0:
            body.append(_text(end + 4, top + 11, f"{delta:+.0f}", cls="tick"))
        else:
            body.append(_text(start - 4, top + 11, f"{delta:+.0f}", anchor="end", cls="tick"))
    if hidden:
        note = f"{hidden} cases with smaller changes not shown"
        body.append(_text(zero, bottom + 34, note, anchor="middle"))
    return _svg(bottom + (44 if hidden else 26), label, body)
