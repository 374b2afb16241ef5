"""The HTML report: one self-contained, well-formed page; model output escaped; renders in Chromium."""

from __future__ import annotations

import dataclasses
import difflib
import html
import json
import shutil
import struct
import subprocess
import zlib
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_llmgate.report.html import _TOKEN, Diffs, matching_blocks, render_html, word_diff
from pytest_llmgate.report.model import build_report
from pytest_llmgate.results import CaseResult, Outcome

from .results_factory import case, sample, two_candidate_report, upgrade_report, upgrade_suite, with_text

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
EXTERNAL = {"link", "iframe", "img", "object", "embed", "audio", "video", "source"}


class Page(HTMLParser):
    """Tag balance, ids, references and the text of each element of interest."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, dict[str, str]]] = []
        self.errors: list[str] = []
        self.tags: Counter[str] = Counter()
        self.ids: set[str] = set()
        self.references: list[str] = []
        self.items: list[tuple[str, str, str, str]] = []  # (case id, run class, li class, text)
        self._text: list[str] | None = None

    def _open(self, tag: str, attrs: list[tuple[str, str | None]]) -> dict[str, str]:
        values = {name: value or "" for name, value in attrs}
        self.tags[tag] += 1
        if "id" in values:
            assert values["id"] not in self.ids, f"duplicate id {values['id']}"
            self.ids.add(values["id"])
        self.references += [
            values[name] for name in ("src", "href", "xlink:href", "action") if name in values
        ]
        return values

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = self._open(tag, attrs)
        if tag in VOID:
            return
        self.stack.append((tag, values))
        if tag == "li":
            self._text = []

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._open(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1][0] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1][0] if self.stack else 'nothing'}")
            return
        _, values = self.stack.pop()
        if tag == "li" and self._text is not None:
            details = next((a.get("id", "") for t, a in reversed(self.stack) if t == "details"), "")
            run = next(
                (a.get("class", "") for t, a in reversed(self.stack) if "run" in a.get("class", "")), ""
            )
            self.items.append((details, run, values.get("class", ""), "".join(self._text)))
            self._text = None

    def handle_data(self, data: str) -> None:
        if self._text is not None:
            self._text.append(data)


def _parse(text: str) -> Page:
    page = Page()
    page.feed(text)
    page.close()
    assert not page.errors, page.errors[:5]
    assert not page.stack, f"unclosed: {[tag for tag, _ in page.stack]}"
    return page


def test_the_page_is_well_formed_and_has_every_part() -> None:
    text = render_html(upgrade_report())
    assert text.startswith('<!DOCTYPE html>\n<html lang="en">')
    page = _parse(text)
    assert {"verdict", "models", "gates", "charts", "tags", "routing", "cases"} <= page.ids
    assert {"chart-latency", "chart-cost-quality", "chart-deltas"} <= page.ids
    assert page.tags["svg"] == 3
    assert page.tags["details"] == 11  # one per case
    assert page.tags["style"] == 1


def test_the_page_is_self_contained() -> None:
    text = render_html(upgrade_report())
    page = _parse(text)
    assert not (EXTERNAL & set(page.tags)), EXTERNAL & set(page.tags)
    assert all(not ref.startswith(("http:", "https:", "//")) for ref in page.references), page.references
    assert "http://" not in text
    assert "https://" not in text
    assert "@import" not in text
    # one inline script (filter, search, sort), loading nothing
    assert page.tags["script"] == 1
    assert "<script src" not in text
    assert "fetch(" not in text
    assert "XMLHttpRequest" not in text


def test_the_verdict_heads_the_page() -> None:
    text = render_html(upgrade_report())
    assert '<header class="verdict blocked" id="verdict">' in text
    assert (
        "<h1>BLOCKED: gpt-5.5 vs gpt-4o, p95 latency 1320 ms (+65%), 1 case regressed, "
        "quality +18.2 (p = 0.36)</h1>"
    ) in text


def test_model_output_is_escaped_never_markup() -> None:
    text = render_html(upgrade_report())
    page = _parse(text)
    assert page.tags["script"] == 1  # the report's own, after the last case
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; | n/a\nsecond line" in text


def test_attribute_breaking_text_is_escaped_everywhere() -> None:
    nasty = '"><img src=x onerror=alert(1)>'
    result = case(nasty, with_text(sample(True), nasty), sample(False), tags=(nasty,))
    page = _parse(render_html(build_report([result], {})))
    assert "img" not in page.tags
    assert page.references == ["#case-0"]  # the score-delta chart's bar linking to the case


def test_the_failing_assertion_is_highlighted_in_the_candidate_column() -> None:
    page = _parse(render_html(upgrade_report()))
    e5 = next(i for i, result in enumerate(upgrade_report().results) if result.case_id == "e5")
    items = [item for item in page.items if item[0] == f"case-{e5}"]
    assert (f"case-{e5}", "run baseline", "ok", "✓ contains: ok") in items
    assert (f"case-{e5}", "run candidate", "fail", "✗ contains: not found") in items


def test_failing_cases_are_open_the_others_folded() -> None:
    text = render_html(upgrade_report())
    assert text.count('<details class="case blocking"') == 1
    assert text.count(" open>") == 1
    assert '<span class="badge regression">regression</span> <code>llm_x.yaml::e5</code>' in text


def test_charts_show_the_numbers() -> None:
    text = render_html(upgrade_report())
    latency = text[text.index('id="chart-latency"') :]
    assert ">p95 800<" in latency
    assert ">p95 1320<" in latency
    deltas = text[text.index('id="chart-deltas"') :]
    assert "<title>llm_x.yaml::e5: -100.0 points</title>" in deltas
    assert "<title>llm_x.yaml::r1: +50.0 points</title>" in deltas
    scatter = text[text.index('id="chart-cost-quality"') :]
    assert "<title>extraction, baseline: quality 100.0, $0.00300 per successful task</title>" in scatter
    assert "not shown (no case passed, or cost unknown): reasoning baseline" in scatter


def test_routing_and_tables_are_in_the_page() -> None:
    text = render_html(upgrade_report())
    routing = text[text.index('id="routing"') :]
    assert '<td>reasoning</td><td class="num">6</td><td>gpt-5.5</td><td>candidate</td>' in routing
    assert "routes:\n  extraction: gpt-4o\n  reasoning: gpt-5.5\ndefault: gpt-4o" in routing
    assert '<td>routed</td><td class="num">11</td><td class="num">100%</td>' in routing


def test_baseline_only_and_empty_runs_render() -> None:
    only = case("a", sample(True), sample(True))
    result = CaseResult("f.yaml", "a", (), only.baseline, None, Outcome.PASSED)
    page = _parse(render_html(build_report([result], {})))
    assert page.tags["svg"] == 1  # latency only: nothing to compare
    assert "routing" not in page.ids
    empty = _parse(render_html(build_report([], {})))
    assert "verdict" in empty.ids


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _png_pixel_rows(data: bytes, rows: int) -> tuple[int, int, list[bytes]]:
    """Width, height and the first `rows` rows of an 8-bit RGB(A) PNG, unfiltered."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height, depth, color = struct.unpack(">IIBB", data[16:26])
    assert depth == 8
    assert color in (2, 6), color
    channels = 4 if color == 6 else 3
    position, compressed = 8, b""
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        if kind == b"IDAT":
            compressed += data[position + 8 : position + 8 + length]
        position += 12 + length
    stride = width * channels
    raw = zlib.decompressobj().decompress(compressed, (stride + 1) * rows)
    previous, result = bytes(stride), []
    for row in range(rows):
        start = row * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up, corner = previous[i], previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 0xFF
        previous = bytes(line)
        result.append(previous)
    return width, height, result


@pytest.mark.skipif(
    _chromium() is None, reason="no headless Chromium here (Debian: apt-get install chromium)"
)
def test_it_renders_in_headless_chromium(tmp_path: Path) -> None:
    chromium = _chromium()
    assert chromium is not None
    page = tmp_path / "report.html"
    page.write_text(render_html(upgrade_report(upgrade_suite())), encoding="utf-8")
    shot = tmp_path / "report.png"
    command = [
        chromium,
        "--headless",
        "--no-sandbox",  # root in a container has no user namespace sandbox
        "--disable-gpu",
        "--hide-scrollbars",
        "--no-first-run",
        # no calls home: this machine's closed network refuses them, and a report needs none
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-quic",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=1280,1600",
        f"--screenshot={shot}",
        page.as_uri(),
    ]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert shot.exists(), completed.stderr[-2000:]
    data = shot.read_bytes()
    width, height, rows = _png_pixel_rows(data, 40)
    assert (width, height) == (1280, 1600)
    channels = len(rows[0]) // width
    # the BLOCKED banner (#c62828) fills the top of the page, the verdict written on it in white
    banner = rows[5][10 * channels : 10 * channels + 3]
    assert tuple(banner) == (0xC6, 0x28, 0x28)
    assert any(
        tuple(rows[row][x : x + 3]) == (255, 255, 255)
        for row in range(15, 40)
        for x in range(0, 600 * channels, channels)
    )
    assert len(data) > 100_000  # tables, charts and text: a blank page is a few kB


def test_several_candidates_render_a_row_and_a_comparison_each() -> None:
    page = render_html(two_candidate_report())
    for text in ("<td>gpt-5.5</td>", "<td>o4-mini</td>", "<code>o4-mini</code> vs <code>gpt-4o</code>"):
        assert text in page
    assert "o4-mini p95 ms" in page


# Word diffs: difflib's matching, computed once per pair of replies (issue 17)


def _difflib_diff(before: str, after: str, tag: str = "ins") -> str:
    """word_diff as it was written on difflib.SequenceMatcher: the reference."""
    old, new = _TOKEN.findall(before), _TOKEN.findall(after)
    if before == after:
        return html.escape(after)
    out = []
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    for op, _, _, start, end in matcher.get_opcodes():
        chunk = html.escape("".join(new[start:end]))
        if op == "equal" or not chunk.strip():
            out.append(chunk)
        elif op in ("replace", "insert"):
            out.append(f"<{tag}>{chunk}</{tag}>")
    return "".join(out)


# Few distinct words, so that runs repeat and tie: where a matching can go wrong.
_reply = st.lists(st.sampled_from(["a", "b", "<c>", "&", " ", "  ", "\n", "é"]), max_size=14).map("".join)


@given(_reply, _reply)
def test_word_diffs_mark_what_difflib_marks_both_ways_with_or_without_the_shared_memo(
    baseline: str, candidate: str
) -> None:
    expected = (_difflib_diff(candidate, baseline, "del"), _difflib_diff(baseline, candidate, "ins"))
    assert (word_diff(candidate, baseline, "del"), word_diff(baseline, candidate, "ins")) == expected
    diffs: Diffs = {}
    assert (
        word_diff(candidate, baseline, "del", diffs),
        word_diff(baseline, candidate, "ins", diffs),
    ) == expected
    assert not diffs  # the reverse diff, when kept, was taken: nothing stays for the next case


@given(_reply, _reply)
def test_matching_blocks_are_difflibs_and_symmetric_only_when_swapping_changes_nothing(
    first: str, second: str
) -> None:
    a, b = _TOKEN.findall(first), _TOKEN.findall(second)
    blocks, symmetric = matching_blocks(a, b)
    merged: list[tuple[int, int, int]] = []
    for i, j, size in blocks:  # difflib merges adjacent blocks
        if merged and merged[-1][0] + merged[-1][2] == i and merged[-1][1] + merged[-1][2] == j:
            merged[-1] = (merged[-1][0], merged[-1][1], merged[-1][2] + size)
        else:
            merged.append((i, j, size))
    expected = difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_matching_blocks()[:-1]
    assert merged == [tuple(block) for block in expected]
    if symmetric:
        assert matching_blocks(b, a)[0] == [(j, i, size) for i, j, size in blocks]


def test_a_tie_between_equal_runs_is_diffed_again_the_other_way() -> None:
    blocks, symmetric = matching_blocks(["a", "b", "a"], ["a"])
    assert (blocks, symmetric) == ([(0, 0, 1)], False)  # "a" twice in the first: a tie
    diffs: Diffs = {}
    assert word_diff("a b a", "a", "ins", diffs) == "a"
    assert not diffs
    assert word_diff("a", "a b a", "del", diffs) == _difflib_diff("a", "a b a", "del") == "a<del> b a</del>"


def test_a_page_of_many_cases_marks_each_reply_as_difflib_does() -> None:
    results = [
        case(
            f"c{index}",
            with_text(sample(), f"Total: {index} EUR, paid on {index % 3} May"),
            with_text(sample(), f"The total is {index} EUR, paid {index % 5} May"),
        )
        for index in range(30)
    ]
    page = render_html(build_report(results, {}))
    for result in results:
        assert result.candidate is not None
        base, cand = result.baseline.samples[0].reply, result.candidate.samples[0].reply
        assert base is not None
        assert cand is not None
        assert f'<pre class="reply">{_difflib_diff(cand.text, base.text, "del")}</pre>' in page
        assert f'<pre class="reply">{_difflib_diff(base.text, cand.text, "ins")}</pre>' in page


def _json_case(candidate_text: str, assertion: dict[str, object]) -> CaseResult:
    """A case whose candidate reply `candidate_text` is judged by `assertion` (the baseline's is
    the right answer)."""
    from pytest_llmgate.assertions import AssertionContext, evaluate, parse_assertion
    from pytest_llmgate.reply import Reply

    spec = parse_assertion(assertion)
    right = '{"vendor": "ACME", "total": 42, "lines": [{"sku": "a", "qty": 3}], "currency": "EUR"}'
    judged = evaluate(spec, Reply(text=candidate_text), AssertionContext(case_id="c", model="cand"))
    base = dataclasses.replace(
        with_text(sample(True), right),
        assertions=(evaluate(spec, Reply(text=right), AssertionContext(case_id="c", model="base")),),
    )
    cand = dataclasses.replace(
        with_text(sample(False), candidate_text), assertions=(judged,), score=judged.score
    )
    return case("invoice", base, cand)


def test_a_failing_field_is_marked_on_its_line_of_the_reply() -> None:
    result = _json_case(
        '```json\n{"vendor": "ACME", "total": 41, "lines": [{"sku": "a", "qty": 2}]}\n```',
        {"type": "fields", "value": {"vendor": "ACME", "total": 42, "lines.0.qty": 3, "currency": "EUR"}},
    )
    text = render_html(build_report([result], {}))
    _parse(text)
    block = text[text.index('<pre class="reply judged-json">') :]
    block = block[: block.index("</pre>")]
    lines = block.split("\n")
    # the reply laid out a field a line; each wrong field's line marked with what was wrong there
    assert lines[1] == "  &quot;vendor&quot;: &quot;ACME&quot;,"
    assert lines[2] == (
        '<span class="judged">  &quot;total&quot;: 41,</span>'
        '<span class="judged-at">  ✗ fields: total: expected 42, got 41</span>'
    )
    qty = next(line for line in lines if "qty" in line)
    assert qty.endswith('<span class="judged-at">  ✗ fields: lines.0.qty: expected 3, got 2</span>')
    # a field the reply lacks is said after it
    assert lines[-1] == (
        '<span class="judged-at">✗ fields: currency: expected &#x27;EUR&#x27;, missing '
        "(not in the reply)</span>"
    )
    # the baseline's reply, which passed, is shown as it came; the candidate's text one click away
    assert text.count('<pre class="reply judged-json">') == 1
    assert '<details class="as-sent"><summary>the reply as it came</summary><pre class="reply">' in text
    assert "```json" in text


def test_a_field_too_deep_to_lay_out_or_indexed_as_00_is_still_placed() -> None:
    deep: object = {"x": 1}
    for _ in range(70):
        deep = {"a": deep}
    result = _json_case(json.dumps(deep), {"type": "fields", "value": {"a." * 70 + "x": 2}})
    text = render_html(build_report([result], {}))
    assert "expected 2, got 1 (deeper than this layout goes)</span>" in text
    listed = _json_case('{"items": [{"q": 2}]}', {"type": "fields", "value": {"items.00.q": 3}})
    text = render_html(build_report([listed], {}))
    assert '<span class="judged-at">  ✗ fields: items.00.q: expected 3, got 2</span>' in text


def test_a_reply_that_is_not_json_or_a_check_that_says_nowhere_is_shown_as_it_came() -> None:
    prose = _json_case("Total: 41", {"type": "fields", "value": {"total": 42}})
    assert 'class="reply judged-json"' not in render_html(build_report([prose], {}))
    nowhere = _json_case('{"total": 41}', {"type": "contains", "value": "42"})
    assert 'class="reply judged-json"' not in render_html(build_report([nowhere], {}))


def test_the_json_layout_is_json_dumps_indent_2() -> None:
    from pytest_llmgate.report.html import _json_lines

    document = {"a": [1, {"b": None, "c": "é"}], "d": {}, "e": [], "f/g": {"h": True}}
    lines = [line for line, _ in _json_lines(document)]
    assert "\n".join(lines) == json.dumps(document, indent=2, ensure_ascii=False)
    pointers = dict((line.strip(), pointer) for line, pointer in _json_lines(document))
    assert pointers['"b": null,'] == "/a/1/b"
    assert pointers['"h": true'] == "/f~1g/h"


def test_where_a_field_failed_is_in_the_json_report_and_renders_again_from_it() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    from pytest_llmgate.report.json_report import load_schema, render_json
    from pytest_llmgate.report.reload import report_from_dict

    report = build_report([_json_case('{"total": 41}', {"type": "fields", "value": {"total": 42}})], {})
    data = json.loads(render_json(report))
    jsonschema.validate(data, load_schema())
    checks = data["cases"][0]["candidate"]["samples"][0]["assertions"]
    assert checks[0]["at"] == [{"pointer": "/total", "message": "total: expected 42, got 41"}]
    assert render_html(report_from_dict(data)) == render_html(report)
