"""Reports of a large run: the PR comment within GitHub's limit, the HTML report's filter, search,
sort, prompt and diff (checked in headless Chromium), the checklist, run-to-run comparison and
re-rendering from the JSON report."""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from pytest_llmgate.cli import main
from pytest_llmgate.config import GateSettings
from pytest_llmgate.gate import GATE_NAMES, evaluate_gate
from pytest_llmgate.metrics import format_usd
from pytest_llmgate.ratelimits import RateLimit
from pytest_llmgate.report.checklist import ITEM_NAMES, checklist
from pytest_llmgate.report.html import CSS, render_html, word_diff
from pytest_llmgate.report.json_report import load_schema, render_json
from pytest_llmgate.report.junit import run_properties
from pytest_llmgate.report.markdown import MAX_CHARS, render_markdown
from pytest_llmgate.report.model import RunReport, build_report, money, outcome_counts_text
from pytest_llmgate.report.reload import report_from_dict
from pytest_llmgate.report.terminal import summary_lines
from pytest_llmgate.results import CaseResult, ModelRun, Outcome

from .results_factory import UPGRADE_CREATED, case, sample, upgrade_report, upgrade_suite, with_text

PROMPT = (
    {"role": "system", "content": "You extract totals."},
    {"role": "user", "content": "Invoice 7: 12 EUR"},
)


def large_results(files: int = 100, per_file: int = 10) -> list[CaseResult]:
    """`files` x `per_file` cases; every 7th regresses, every 5th improves, every 11th fails on both."""
    results = []
    for number in range(files * per_file):
        file = f"llm_suite_{number // per_file:03d}.yaml"
        base_ok = number % 5 != 0 and number % 11 != 0
        cand_ok = number % 7 != 0 and number % 11 != 0
        base = with_text(sample(base_ok, latency=300 + number % 13), f"The total is {number} EUR, paid.")
        cand = with_text(
            sample(cand_ok, latency=400 + number % 17, cost=(0.002, 0.003)),
            f"Total: {number} EUR (paid) and a longer explanation of case number {number}.",
        )
        result = case(
            f"c{number}", base, cand, tags=(f"tag{number % 8}",), base_model="gpt-4o", cand_model="gpt-5.5"
        )
        results.append(dataclasses.replace(result, file=file, file_nodeid=file, prompt=PROMPT))
    return results


def large_report(files: int = 100, per_file: int = 10) -> RunReport:
    results = large_results(files, per_file)
    settings = GateSettings()
    gates = {}
    for index in range(files):
        file = f"llm_suite_{index:03d}.yaml"
        mine = [result for result in results if result.file == file]
        for name in GATE_NAMES:
            gates[f"{file}::gate[{name}]"] = evaluate_gate(name, mine, settings)
    return build_report(results, gates, settings=settings, created=UPGRADE_CREATED)


@pytest.fixture(scope="module")
def large() -> RunReport:
    return large_report()


# The PR comment


def test_the_markdown_of_100_files_and_1000_cases_stays_under_60000_characters(large: RunReport) -> None:
    text = render_markdown(large)
    assert len(text) < MAX_CHARS
    lines = text.splitlines()
    assert lines[0].startswith("## ❌ BLOCKED: gpt-5.5 vs gpt-4o, ")
    assert text.count("### Models") == 1
    assert text.count("| gate | verdict | numbers |") == 1
    assert "### Top regressions and failures (" in text
    assert "<details><summary>The other " in text
    assert "Cut to stay within GitHub's comment limit: " in text
    assert "pytest --llm-report=report.html" in text


def test_a_small_run_cuts_nothing_and_says_nothing_about_cutting() -> None:
    text = render_markdown(upgrade_report())
    assert "Cut to stay within" not in text
    assert "<details><summary>By tag (2 tags)</summary>" in text


def test_the_headline_is_one_line_status_first_and_names_the_worst_file(large: RunReport) -> None:
    text = render_markdown(large)
    headline = text.splitlines()[0]
    assert "\n" not in large.verdict
    match = re.search(r"in (llm_suite_\d{3}\.yaml) \(worst of (\d+) files\)", headline)
    assert match is not None, headline
    assert f"`{match.group(1)}::gate[" in text or int(match.group(2)) > 20


def test_headline_numbers_are_the_tables_numbers() -> None:
    report = upgrade_report()
    text = render_markdown(report)
    # "p95 latency 1320 ms" in the headline, 1320 in the candidate's p95 column of the model table
    assert "p95 latency 1320 ms" in text.splitlines()[0]
    candidate_row = next(line for line in text.splitlines() if line.startswith("| `gpt-5.5`"))
    assert "| 1320 |" in candidate_row


def test_counts_are_plural_and_check_names_are_not_repeated() -> None:
    assert outcome_counts_text({"improvement": 3, "regression": 1, "budget": 2}) == (
        "3 improvements, 1 regression, 2 budget breaches"
    )
    text = render_markdown(upgrade_report())
    assert "Cases: 6 improvements, 4 passed, 1 regression." in text
    from pytest_llmgate.assertions import AssertionResult

    failing = AssertionResult("fields", False, 0.0, "fields: missing total")
    result = case("f", sample(True), dataclasses.replace(sample(False), assertions=(failing,)))
    markdown = render_markdown(build_report([result], {}))
    assert "fields: missing total" in markdown
    assert "fields: fields:" not in markdown
    assert "fields: fields:" not in render_html(build_report([result], {}))


def test_one_money_format_everywhere() -> None:
    report = upgrade_report()
    assert money(0.000685) == format_usd(0.000685) == "$0.000685"
    for text in (render_markdown(report), render_html(report)):
        amounts = set(re.findall(r"\$\d+\.\d+", text))
        assert amounts, "no amount"
        assert all(amount == format_usd(float(amount[1:])) for amount in amounts), amounts


def test_junit_properties_have_no_float_noise() -> None:
    run = ModelRun("m", (sample(True, cost=(0.0001425, 0.0005)),))
    properties = dict(run_properties("candidate", run))
    assert repr(0.0001425 + 0.0005) == "0.0006425000000000001"
    assert repr(properties["llm_candidate_cost_usd"]) == "0.0006425"


# The HTML report at 1,000 cases


def test_the_html_has_filters_with_counts_search_and_sort(large: RunReport) -> None:
    text = render_html(large)
    counts = {outcome: 0 for outcome in (Outcome.REGRESSION, Outcome.IMPROVEMENT, Outcome.ALREADY_FAILING)}
    for result in large.results:
        if result.outcome in counts:
            counts[result.outcome] += 1
    assert '<button type="button" data-filter="all" aria-pressed="true">all (1000)</button>' in text
    assert (
        f'data-filter="regressions" aria-pressed="false">regressions ({counts[Outcome.REGRESSION]})' in text
    )
    assert (
        f'data-filter="improvements" aria-pressed="false">improvements ({counts[Outcome.IMPROVEMENT]})'
        in text
    )
    both = counts[Outcome.ALREADY_FAILING]
    assert f'data-filter="failing-on-both" aria-pressed="false">failing on both ({both})' in text
    assert 'id="case-search"' in text
    for value in ("failures", "score", "cost", "latency"):
        assert f'<option value="{value}">' in text
    assert text.count('<details class="case') == 1000


def test_failures_come_first_and_the_prompt_sits_above_the_replies(large: RunReport) -> None:
    text = render_html(large)
    groups = re.findall(r'<details class="case[^"]*" id="case-\d+" data-group="([^"]+)"', text)
    first_pass = groups.index("improvements")
    assert all(group != "regressions" for group in groups[first_pass:])
    assert groups[0] == "regressions"
    block = text[text.index('<details class="case') :]
    block = block[: block.index("</details>")]
    assert block.index('<div class="prompt"><h3>Prompt</h3>') < block.index('<div class="pair">')
    assert '<span class="role">system</span><pre>You extract totals.</pre>' in block


def test_the_two_replies_are_diffed_word_by_word() -> None:
    assert word_diff("The total is 12 EUR", "The total is 14 EUR") == "The total is <ins>14</ins> EUR"
    assert word_diff("a <b>", "a <c>", "del") == "a <del>&lt;c&gt;</del>"
    text = render_html(upgrade_report(upgrade_suite()))
    assert "<ins>Total:" in text  # e5: the candidate's reply differs from the baseline's "x"


def test_chart_bars_link_to_existing_cases(large: RunReport) -> None:
    text = render_html(large)
    chart = text[text.index('id="chart-deltas"') : text.index("</figure>", text.index('id="chart-deltas"'))]
    links = re.findall(r'<a href="#(case-\d+)">', chart)
    assert links
    ids = set(re.findall(r'id="(case-\d+)"', text))
    assert set(links) <= ids


def _luminance(color: str) -> float:
    channels = [int(color[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def _contrast(a: str, b: str) -> float:
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def _variables(block: str) -> dict[str, str]:
    return dict(re.findall(r"--([\w-]+): (#[0-9a-f]{6})", block))


def test_text_colours_meet_wcag_aa_in_both_schemes() -> None:
    light = _variables(CSS[: CSS.index("@media (prefers-color-scheme: dark)")])
    dark = {**light, **_variables(CSS[CSS.index("@media (prefers-color-scheme: dark)") :])}
    assert _contrast("#f58518", "#ffffff") < 3  # the old candidate orange, 2.55:1
    for scheme in (light, dark):
        for text in ("fg", "muted", "ok", "bad", "warn", "base", "cand"):
            for background in ("bg", "panel", "head"):
                ratio = _contrast(scheme[text], scheme[background])
                assert ratio >= 4.5, (text, background, ratio)
    for badge in ("badge-ok", "badge-bad", "badge-warn", "badge-muted"):
        assert _contrast("#ffffff", light[badge]) >= 4.5, badge


def test_print_stylesheet_phone_width_and_heading_order(large: RunReport) -> None:
    text = render_html(large)
    assert "@media print" in CSS
    assert "break-inside: avoid" in CSS
    assert "@media (max-width: 700px)" in CSS
    assert "svg.chart { font-size: 11px; display: block; max-width: 100%" in CSS
    levels = [int(level) for level in re.findall(r"<h([1-6])[ >]", text)]
    assert levels[0] == 1
    assert all(after <= before + 1 for before, after in itertools.pairwise(levels))


def test_price_sources_and_the_reported_cost_are_shown() -> None:
    priced = dataclasses.replace(
        sample(True), price_source="built-in price table, checked 2025-06-01", reported_cost_usd=0.0031
    )
    result = case("p", priced, priced)
    text = render_html(build_report([result], {}))
    assert "$0.00300 (built-in price table, checked 2025-06-01), API reported $0.00310" in text
    assert "Prices: <code>base</code>: built-in price table, checked 2025-06-01" in text


def test_adapted_parameters_are_listed() -> None:
    result = dataclasses.replace(
        case("a", sample(True), sample(True)),
        notes=("params adapted: gpt-5.5: temperature=0.2 dropped (reasoning models take only 1)",),
    )
    text = render_html(build_report([result], {}))
    assert '<section id="adapted"><h2>Adapted parameters</h2>' in text
    assert "gpt-5.5: temperature=0.2 dropped" in text


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _dom(page: Path, fragment: str, profile: Path) -> str:
    chromium = _chromium()
    assert chromium is not None
    command = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=5000",
        "--dump-dom",
        page.as_uri() + fragment,
    ]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert "<details" in completed.stdout, completed.stderr[-2000:]
    return completed.stdout


def _shown(dom: str) -> list[tuple[str, str]]:
    """(id, group) of the cases not hidden, in page order."""
    return [
        (case_id, group)
        for case_id, group, rest in re.findall(
            r'<details class="case[^"]*" id="(case-\d+)" data-group="([^"]+)"([^>]*)>', dom
        )
        if "hidden" not in rest
    ]


@pytest.mark.skipif(
    _chromium() is None, reason="no headless Chromium here (Debian: apt-get install chromium)"
)
def test_filter_search_sort_and_prompt_work_in_headless_chromium(tmp_path: Path, large: RunReport) -> None:
    page = tmp_path / "report.html"
    page.write_text(render_html(large), encoding="utf-8")
    regressions = sum(result.outcome == Outcome.REGRESSION for result in large.results)

    dom = _dom(page, "#filter=regressions&q=&sort=failures", tmp_path / "p1")
    shown = _shown(dom)
    assert len(shown) == regressions
    assert {group for _, group in shown} == {"regressions"}
    assert f"{regressions} of 1000 cases shown" in dom

    # search over the reply text: "case number 777." is in one candidate reply only
    dom = _dom(page, "#filter=all&q=case%20number%20777.&sort=failures", tmp_path / "p2")
    shown = _shown(dom)
    index = next(i for i, result in enumerate(large.results) if result.case_id == "c777")
    assert shown == [(f"case-{index}", "regressions" if 777 % 7 == 0 else shown[0][1])]
    # and by tag: tag3 is every 8th case
    dom = _dom(page, "#filter=all&q=%23tag3&sort=failures", tmp_path / "p3")
    assert len(_shown(dom)) == 125

    # sorting by latency puts the slowest candidate first
    dom = _dom(page, "#filter=all&q=&sort=latency", tmp_path / "p4")
    latencies = [float(value) for value in re.findall(r'data-latency="([\d.]+)"', dom)]
    assert latencies == sorted(latencies, reverse=True)

    # the prompt is on the page, above the replies, as text a reader sees
    assert "You extract totals." in dom


# The checklist


def test_the_checklist_has_14_named_items_with_their_values_on_the_example() -> None:
    report = dataclasses.replace(upgrade_report(), production_timeout_s=1.0)
    items = checklist(report)
    assert tuple(item.name for item in items) == ITEM_NAMES
    assert len(items) == 14
    by_name = {item.name: item for item in items}
    assert by_name["timeouts"].status == "fail"
    assert by_name["timeouts"].value == "gpt-5.5 p99 1320 ms vs production timeout 1000 ms"
    assert by_name["verbosity"].status == "ok"
    assert by_name["fallback-routing"].status == "ok"
    assert by_name["real-traffic-share"].status == "fail"
    assert by_name["real-traffic-share"].value == "0 of 11 cases imported from production (0%)"
    assert by_name["quality-on-own-tasks"].value.startswith("11 cases, quality +18.2 (p = 0.36)")
    assert by_name["output-length"].value == (
        "11 of 11 cases without a max-token limit; 0% of replies cut at length"
    )
    unset = checklist(upgrade_report())
    assert {item.name: item.status for item in unset}["timeouts"] == "unknown"


def _limited(limit: RateLimit) -> list[CaseResult]:
    """The upgrade suite with every candidate answer stating `limit` in its headers.

    The candidate's mean latency is (6 x 1320 + 5 x 400) / 11 = 901.8 ms and its mean tokens per
    call (6 x 112 + 5 x 110) / 11 = 111.1: at concurrency 8, 532 requests and 59,129 tokens a minute.
    """
    limited = []
    for result in upgrade_suite():
        assert result.candidate is not None
        samples = tuple(dataclasses.replace(sample, rate_limit=limit) for sample in result.candidate.samples)
        limited.append(
            dataclasses.replace(result, candidate=dataclasses.replace(result.candidate, samples=samples))
        )
    return limited


def test_retry_storms_holds_the_concurrency_against_the_recorded_rate_limits() -> None:
    report = dataclasses.replace(
        upgrade_report(_limited(RateLimit(500, 1_000_000, 499, 999_000))), run_concurrency=8
    )
    item = {item.name: item for item in checklist(report)}["retry-storms"]
    assert item.status == "fail"
    assert item.value == (
        "0 retries and 0 rate-limited calls (429) in 22 calls; at concurrency 8 (this run's): gpt-5.5: "
        "limits 500 requests/min, 1,000,000 tokens/min; concurrency 8 asks about 532 requests/min and "
        "59,129 tokens/min; at best 100% of them left"
    )
    # floor(8 x 500 / 532.3) = 7 calls in flight fit
    assert item.action.startswith("gpt-5.5 would exceed its requests limit: run at most 7 calls at once")

    # production runs 4 at once: 266 requests a minute fit in 500
    calm = dataclasses.replace(report, production_concurrency=4)
    item = {item.name: item for item in checklist(calm)}["retry-storms"]
    assert item.status == "ok"
    assert "at concurrency 4 (production): gpt-5.5: limits 500 requests/min" in item.value


def test_retry_storms_fails_when_the_account_was_nearly_spent_while_recording() -> None:
    report = dataclasses.replace(
        upgrade_report(_limited(RateLimit(10_000, None, 400, None))), run_concurrency=8
    )
    item = {item.name: item for item in checklist(report)}["retry-storms"]
    assert item.status == "fail"
    assert item.value.endswith("at best 4% of them left")
    assert item.action.startswith("gpt-5.5's account had under 10% of a limit left")


def test_retry_storms_judges_the_candidate_not_the_baseline_it_replaces() -> None:
    limited = []
    for result in upgrade_suite():
        samples = tuple(
            dataclasses.replace(sample, rate_limit=RateLimit(10, None, 9, None))
            for sample in result.baseline.samples
        )
        limited.append(
            dataclasses.replace(result, baseline=dataclasses.replace(result.baseline, samples=samples))
        )
    report = dataclasses.replace(upgrade_report(limited), run_concurrency=8)
    item = {item.name: item for item in checklist(report)}["retry-storms"]
    assert item.status == "ok"
    assert item.value.endswith("no rate-limit headers recorded for the candidate")


def test_retry_storms_when_not_even_one_call_at_once_fits() -> None:
    # one call in flight asks 66.5 requests a minute (60,000 / 901.8 ms) of a limit of 10
    report = dataclasses.replace(
        upgrade_report(_limited(RateLimit(10, None, 9, None))), production_concurrency=1
    )
    item = {item.name: item for item in checklist(report)}["retry-storms"]
    assert item.status == "fail"
    assert item.action == (
        "gpt-5.5 would exceed its requests limit even with one call in flight: raise the account's "
        "limits before switching"
    )
    # and at 2 in flight over a limit of 100 (133 asked), 1 call fits
    report = dataclasses.replace(
        upgrade_report(_limited(RateLimit(100, None, 99, None))), production_concurrency=2
    )
    item = {item.name: item for item in checklist(report)}["retry-storms"]
    assert item.action.startswith("gpt-5.5 would exceed its requests limit: run at most 1 call at once ")


def test_retry_storms_without_a_known_concurrency_says_so() -> None:
    item = {item.name: item for item in checklist(upgrade_report(_limited(RateLimit(10))))}["retry-storms"]
    assert item.status == "ok"
    assert "; concurrency unknown: gpt-5.5: limits 10 requests/min" in item.value


def test_retry_storms_says_when_no_rate_limit_was_recorded() -> None:
    item = {item.name: item for item in checklist(upgrade_report())}["retry-storms"]
    assert item.status == "ok"
    assert item.value == (
        "0 retries and 0 rate-limited calls (429) in 22 calls; "
        "no rate-limit headers recorded for the candidate"
    )


def test_rate_limits_and_concurrency_survive_the_json_report() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    report = dataclasses.replace(
        upgrade_report(_limited(RateLimit(500, None, 499, None))), run_concurrency=8, production_concurrency=2
    )
    data = json.loads(render_json(report))
    jsonschema.validate(data, load_schema())
    assert data["production"]["concurrency"] == 2
    assert data["concurrency"] == 8
    again = report_from_dict(data)
    assert {item.name: item for item in checklist(again)}["retry-storms"] == {
        item.name: item for item in checklist(report)
    }["retry-storms"]
    assert json.loads(render_json(again)) == data


def test_the_checklist_is_in_every_format() -> None:
    report = upgrade_report()
    markdown = render_markdown(report)
    assert "### Pre-upgrade checklist" in markdown
    assert all(f"`{name}`" in markdown for name in ITEM_NAMES)
    html = render_html(report)
    assert all(f'id="check-{name}"' in html for name in ITEM_NAMES)
    data = json.loads(render_json(report))
    assert [item["name"] for item in data["checklist"]] == list(ITEM_NAMES)
    lines = list(summary_lines(report.results, gates=dict(report.gates)))
    failing = [line for line in lines if line.startswith("checklist ✗ ")]
    assert (
        "checklist ✗ real-traffic-share: 0 of 11 cases imported from production (0%); import a sample: "
        in (failing[-1][:95] + failing[-1][95:])
        or any(line.startswith("checklist ✗ real-traffic-share: 0 of 11") for line in failing)
    )
    assert len(failing) == sum(item.status == "fail" for item in checklist(report))
    assert lines[-1] == report.verdict


# Run to run, and the report as a function of its JSON


def test_since_the_previous_run_per_model_and_verdict_flips() -> None:
    before = json.loads(render_json(upgrade_report()))
    fixed = [
        dataclasses.replace(
            result, outcome=Outcome.PASSED, candidate=dataclasses.replace(result.baseline, model="gpt-5.5")
        )
        if result.case_id == "e5"
        else result
        for result in upgrade_suite()
    ]
    report = build_report(fixed, {}, previous=before, created=UPGRADE_CREATED)
    assert report.since is not None
    flips = [(flip.case, flip.before, flip.after) for flip in report.since.flips]
    assert flips == [("llm_x.yaml::e5", "regression", "passed")]
    candidate = next(change for change in report.since.models if change.role == "candidate")
    assert candidate.quality_before == pytest.approx(90.9, abs=0.05)
    assert candidate.quality_after == pytest.approx(100.0)
    markdown = render_markdown(report)
    assert "### Since the previous run (2025-06-01T12:00:00Z)" in markdown
    assert "- verdict flips: 0 worse, 1 better" in markdown
    assert '<section id="since"><h2>Since the previous run</h2>' in render_html(report)
    data = json.loads(render_json(report))
    assert data["since"]["flips"] == [
        {"case": "llm_x.yaml::e5", "model": "gpt-5.5", "before": "regression", "after": "passed"}
    ]


def test_a_report_rebuilt_from_its_json_renders_identically() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    results = [dataclasses.replace(result, prompt=PROMPT) for result in upgrade_suite()]
    report = dataclasses.replace(upgrade_report(results), production_timeout_s=30.0)
    data = json.loads(render_json(report))
    jsonschema.validate(data, load_schema())
    again = report_from_dict(data)
    assert json.loads(render_json(again)) == data  # equal numbers (300 read back as 300.0)
    assert render_html(again) == render_html(report)
    assert render_markdown(again) == render_markdown(report)


def test_llmgate_report_rerenders_any_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = upgrade_report()
    source = tmp_path / "run.json"
    source.write_text(render_json(report), encoding="utf-8")
    html, md = tmp_path / "out" / "run.html", tmp_path / "run.md"
    assert main(["report", str(source), "-o", str(html), "-o", str(md)]) == 0
    assert html.read_text(encoding="utf-8") == render_html(report)
    assert md.read_text(encoding="utf-8") == render_markdown(report)
    assert capsys.readouterr().out == f"llmgate report: {html}\nllmgate report: {md}\n"
    broken = tmp_path / "broken.json"
    broken.write_text("{", encoding="utf-8")
    assert main(["report", str(broken), "-o", str(html)]) == 1
    error = capsys.readouterr().err
    assert f"{broken}: cannot read it as JSON" in error
    assert "pytest --llm-report=run.json" in error
    with pytest.raises(SystemExit):
        main(["report", str(source), "-o", str(tmp_path / "run.txt")])
