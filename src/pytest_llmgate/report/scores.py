"""Named metrics and pairwise wins/ties/losses as every report shows them.

Pure functions of the case results (via `metrics.metric_summaries` and `pairwise_summaries`), one
per output format, so the terminal, Markdown, HTML and JSON reports say the same numbers.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from pytest_llmgate.metrics import (
    MetricSummary,
    PairwiseSummary,
    metric_summaries,
    pairwise_summaries,
    plural,
)
from pytest_llmgate.results import CaseResult


def _points(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def _difference(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.1f}"


def metric_line(summary: MetricSummary) -> str:
    """E.g. "conciseness: gpt-4o 80.0 -> gpt-5.5 60.0 (-20.0 points over 3 cases)"."""
    if summary.candidate_model is None:
        cases = plural(summary.cases, "case")
        return f"{summary.name}: {summary.baseline_model} {_points(summary.baseline)} over {cases}"
    return (
        f"{summary.name}: {summary.baseline_model} {_points(summary.baseline)} -> "
        f"{summary.candidate_model} {_points(summary.candidate)} "
        f"({_difference(summary.difference)} points over {plural(summary.cases, 'paired case')})"
    )


def pairwise_line(summary: PairwiseSummary) -> str:
    """E.g. "(all cases): 5 wins, 1 tie, 2 losses for gpt-5.5; sign test p = 0.45"."""
    unjudged = f", {summary.unjudged} not judged" if summary.unjudged else ""
    return (
        f"{summary.tag}: {plural(summary.wins, 'win')}, {plural(summary.ties, 'tie')}, "
        f"{plural(summary.losses, 'loss', 'losses')}{unjudged}; sign test p = {summary.p_value:.2g}"
    )


def _pairwise_groups(summaries: Sequence[PairwiseSummary]) -> Iterator[tuple[str, list[PairwiseSummary]]]:
    groups: dict[tuple[str, str], list[PairwiseSummary]] = {}
    for summary in summaries:
        groups.setdefault((summary.candidate_model, summary.baseline_model), []).append(summary)
    for (cand, base), rows in groups.items():
        yield f"{cand} vs {base}", rows


def terminal_lines(results: Sequence[CaseResult]) -> Iterator[str]:
    """The session summary's lines for named metrics and pairwise grading (none without them)."""
    metrics = metric_summaries(results)
    if metrics:
        yield "metrics (mean score 0-100; candidate minus baseline over the same cases):"
        yield from (f"  {metric_line(summary)}" for summary in metrics)
    for title, rows in _pairwise_groups(pairwise_summaries(results)):
        yield f"pairwise, {title} (the judge compared both replies, in both orders):"
        yield from (f"  {pairwise_line(summary)}" for summary in rows)


Table = tuple[list[str], list[list[object]], tuple[int, ...]]
"""(headers, rows, indexes of the numeric columns): what markdown.md_table and html._table take."""


def score_tables(results: Sequence[CaseResult]) -> list[tuple[str, Table]]:
    """(title, table) for named metrics and pairwise grading; [] without them. The Markdown and
    HTML reports render them with their own table function (and escaping)."""
    tables: list[tuple[str, Table]] = []
    metrics = metric_summaries(results)
    if metrics:
        headers = ["metric", "baseline", "mean", "candidate", "mean", "difference", "cases"]
        rows: list[list[object]] = [
            [
                summary.name,
                summary.baseline_model,
                _points(summary.baseline),
                summary.candidate_model or "-",
                _points(summary.candidate),
                _difference(summary.difference),
                summary.cases,
            ]
            for summary in metrics
        ]
        tables.append(("Metrics (mean score 0-100, paired difference)", (headers, rows, (2, 4, 5, 6))))
    pairwise = pairwise_summaries(results)
    if pairwise:
        headers = ["pair", "tag", "wins", "ties", "losses", "not judged", "sign test p"]
        rows = [
            [title, row.tag, row.wins, row.ties, row.losses, row.unjudged, f"{row.p_value:.2g}"]
            for title, group in _pairwise_groups(pairwise)
            for row in group
        ]
        tables.append(
            ("Pairwise (candidate vs baseline, judged in both orders)", (headers, rows, (2, 3, 4, 5, 6)))
        )
    return tables


def json_scores(results: Sequence[CaseResult]) -> dict[str, Any]:
    """`metrics` and `pairwise` of the JSON report (empty lists without them)."""
    return {
        "metrics": [
            {
                "name": summary.name,
                "baseline_model": summary.baseline_model,
                "candidate_model": summary.candidate_model,
                "baseline": summary.baseline,
                "candidate": summary.candidate,
                "difference": summary.difference,
                "cases": summary.cases,
            }
            for summary in metric_summaries(results)
        ],
        "pairwise": [
            {
                "tag": summary.tag,
                "baseline_model": summary.baseline_model,
                "candidate_model": summary.candidate_model,
                "wins": summary.wins,
                "ties": summary.ties,
                "losses": summary.losses,
                "not_judged": summary.unjudged,
                "sign_test_p": summary.p_value,
            }
            for summary in pairwise_summaries(results)
        ],
    }
