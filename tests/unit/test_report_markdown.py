"""The Markdown report: the verdict first, then tables a PR reviewer can read, every cell escaped."""

from __future__ import annotations

import re

from pytest_llmgate.report.markdown import cell, render_markdown
from pytest_llmgate.report.model import build_report
from pytest_llmgate.results import CaseResult, Outcome

from .results_factory import case, sample, two_candidate_report, upgrade_report


def _rows(text: str, first_header: str) -> list[list[str]]:
    """The cells of the GitHub table whose header starts with `first_header`, header row included."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_header} |"))
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append([part.strip() for part in re.split(r"(?<!\\)\|", line)[1:-1]])
    return [rows[0], *rows[2:]]


def test_the_first_line_is_the_verdict() -> None:
    text = render_markdown(upgrade_report())
    assert text.splitlines()[0] == (
        "## ❌ BLOCKED: gpt-5.5 vs gpt-4o, p95 latency 1320 ms (+65%), 1 case regressed, "
        "quality +18.2 (p = 0.36)"
    )


def test_model_table_has_latency_prices_cost_per_success_inflation_quality_and_pass_rate() -> None:
    header, base, cand = _rows(render_markdown(upgrade_report()), "model")
    assert header == [
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
    # gpt-4o: 6 x 800 ms + 5 x 300 ms; $0.001 per 100 prompt tokens = $0.01/1k; $0.033 / 5 passed
    assert base == [
        "`gpt-4o`",
        "baseline",
        "11",
        "45%",
        "72.7",
        "573",
        "800",
        "$0.0100",
        "$0.2000",
        "$0.00660",
        "reference",
        "0",
    ]
    # gpt-5.5 writes 122 completion tokens where gpt-4o wrote 110: +10.9%
    assert cand == [
        "`gpt-5.5`",
        "candidate",
        "11",
        "91%",
        "90.9",
        "902",
        "1320",
        "$0.0200",
        "$0.4180",
        "$0.00730",
        "+10.9%",
        "0",
    ]


def test_gates_show_verdict_and_numbers_with_details_of_failures() -> None:
    text = render_markdown(upgrade_report())
    rows = {row[0]: row[1:] for row in _rows(text, "gate")[1:]}
    assert rows["`llm_x.yaml::gate[latency]`"] == [
        "❌ failed",
        "p95 800 ms -> 1320 ms (+65.0%): the increase exceeds max_latency_increase +50%",
    ]
    assert rows["`llm_x.yaml::gate[cost]`"][0] == "✅ passed"
    assert "(+10.6%)" in rows["`llm_x.yaml::gate[cost]`"][1]
    assert "<details><summary>Failed gates: details</summary>" in text
    assert "**llm_x.yaml::gate[latency]**" in text
    assert "- gpt-5.5: mean 902 ms, p50 1320 ms, p95 1320 ms, p99 1320 ms, max 1320 ms over 11 calls" in text


def test_tag_table_and_routing_recommendation() -> None:
    text = render_markdown(upgrade_report())
    tags = {row[0]: row for row in _rows(text, "tag")[1:]}
    assert tags["extraction"] == [
        "extraction",
        "5",
        "100.0",
        "$0.00300",
        "80.0",
        "$0.00625",
        "-20.0 (p = 1)",
        "`gpt-4o`",
    ]
    assert tags["reasoning"][-2:] == ["+50.0 (p = 0.031)", "`gpt-5.5`"]
    assert "- **reasoning** → `gpt-5.5` (candidate): +50.0 quality, significant (p = 0.031)" in text
    assert (
        "- **extraction** → `gpt-4o` (baseline): no significant quality difference (-20.0, p = 1), "
        "52% cheaper per successful task"
    ) in text
    blends = {row[0]: row[1:] for row in _rows(text, "serving")[1:]}
    assert blends["routed"] == ["11", "100%", "100.0", "$0.00573", "$0.0630", "856", "1320"]
    assert blends["all baseline"][:4] == ["11", "45%", "72.7", "$0.00660"]
    assert blends["all candidate"][:4] == ["11", "91%", "90.9", "$0.00730"]
    assert "```yaml\n" in text
    assert "routes:\n  extraction: gpt-4o\n  reasoning: gpt-5.5\ndefault: gpt-4o\n```" in text


def test_regressions_show_case_failing_assertion_and_an_escaped_excerpt() -> None:
    text = render_markdown(upgrade_report())
    assert "### Regressions and failures (1)" in text
    header, row = _rows(text, "case")
    assert header == ["case", "outcome", "model", "failing check", "reply excerpt"]
    assert row[:4] == ["`llm_x.yaml::e5`", "regression", "`gpt-5.5`", "contains: not found"]
    # the reply's `<script>`, `|` and newline cannot break out of the cell or into HTML
    assert row[4] == 'Total: &lt;script>alert("x")&lt;/script> \\| n/a second line'
    assert "<script>" not in text


def test_every_table_row_has_as_many_cells_as_its_header() -> None:
    text = render_markdown(upgrade_report())
    for first in ("model", "gate", "tag", "serving", "case"):
        rows = _rows(text, first)
        assert {len(row) for row in rows} == {len(rows[0])}, first


def test_cells_escape_pipes_newlines_and_html() -> None:
    assert cell("a | b\nc\r\n\nd") == "a \\| b<br>c<br>d"
    assert cell("<img src=x onerror=alert(1)> &amp;") == "&lt;img src=x onerror=alert(1)> &amp;amp;"


def test_a_passing_run_says_so_and_lists_no_regressions() -> None:
    results = [case(f"c{i}", sample(True), sample(True), tags=("t",)) for i in range(3)]
    text = render_markdown(build_report(results, {}))
    assert text.startswith("## ✅ PASSED: cand vs base, quality +0.0 (p = 1), cost per successful task +0%\n")
    assert "No regressions, budget breaches or errors." in text
    assert text.rstrip().endswith("Cases: 3 passed.")


def test_baseline_only_run_has_no_routing() -> None:
    only = case("a", sample(True), sample(True))
    text = render_markdown(
        build_report([CaseResult("f.yaml", "a", (), only.baseline, None, Outcome.PASSED)], {})
    )
    assert text.startswith("## ✅ PASSED: base, 1/1 cases passed\n")
    assert "Routing" not in text
    assert _rows(text, "model")[1][:2] == ["`base`", "baseline"]


def test_several_candidates_get_a_row_a_comparison_and_tag_columns_each() -> None:
    text = render_markdown(two_candidate_report())
    lines = text.splitlines()
    assert lines[0].startswith("## ❌ BLOCKED: gpt-5.5: BLOCKED, p95 latency 1320 ms (+65%)")
    assert "; o4-mini: PASSED, quality +27.3 (p = 0.031)" in lines[0]
    rows = [line for line in lines if line.startswith("| `")]
    assert rows[0].startswith("| `gpt-4o` | baseline | 11 |")
    assert rows[1].startswith("| `gpt-5.5` | candidate | 11 |")
    assert rows[1].endswith("| +10.9% | 0 |")  # each candidate's own output-token inflation
    assert rows[2].startswith("| `o4-mini` | candidate | 11 |")
    assert rows[2].endswith("| +0.0% | 0 |")
    assert "Paired comparison, `gpt-5.5` vs `gpt-4o`: quality 72.7 -> 90.9" in text
    assert "Paired comparison, `o4-mini` vs `gpt-4o`: quality 72.7 -> 100.0" in text
    header = next(line for line in lines if line.startswith("| tag |"))
    assert header == (
        "| tag | cases | gpt-4o quality | gpt-4o $/success | gpt-5.5 quality | gpt-5.5 $/success "
        "| o4-mini quality | o4-mini $/success | route |"
    )
    assert "`llm_x.yaml::gate[latency][gpt-5.5]` | ❌ failed" in text
    assert "- **(default)** → `o4-mini` (candidate)" in text
