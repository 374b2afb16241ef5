"""A large HTML report renders folded cases on demand (issue 17): their bodies are inert
`<template>`s until opened, so a 2,000-case page lays out only what is read."""

from __future__ import annotations

import re

from pytest_llmgate.report.html import LAZY_CASES, SCRIPT, render_html
from pytest_llmgate.results import CaseResult, Outcome

from .results_factory import case, sample, upgrade_report, with_text


def _suite(count: int) -> list[CaseResult]:
    results = [
        case(
            f"ok-{index}",
            with_text(sample(), f"reply number {index}"),
            with_text(sample(), f"reply number {index}"),
        )
        for index in range(count - 1)
    ]
    results.append(case("broken", sample(), with_text(sample(passed=False), "the regressed reply")))
    return results


def _cases(page: str) -> dict[str, str]:
    """Each case element's HTML by the case id in its summary."""
    found = re.findall(r'(<details class="case[^"]*".*?</details>)', page, flags=re.S)
    return {re.search(r"::([^<]+)</code>", element).group(1): element for element in found}  # type: ignore[union-attr]


def test_past_the_limit_folded_cases_keep_their_body_in_a_template() -> None:
    results = _suite(LAZY_CASES + 1)
    assert results[-1].outcome == Outcome.REGRESSION
    cases = _cases(render_html(upgrade_report(results)))
    assert len(cases) == LAZY_CASES + 1
    folded = cases["ok-7"]
    # Summary outside (filter, sort and the closed view need it), replies inside the template.
    assert re.search(r"<summary>.*ok-7.*</summary>\s*<template class=\"lazy\">", folded, flags=re.S)
    assert folded.index("reply number 7") > folded.index('<template class="lazy">')
    assert re.search(r"</template>\s*</details>$", folded)
    opened = cases["broken"]  # a failing case is open: rendered in place, as before
    assert " open" in opened.split(">", 1)[0]
    assert "<template" not in opened
    assert "the regressed reply" in opened


def test_a_small_report_renders_every_case_in_place() -> None:
    page = render_html(upgrade_report(_suite(LAZY_CASES)))
    assert "<template" not in page
    assert "reply number 7" in page


def test_the_script_unfolds_on_open_and_print_and_searches_folded_text() -> None:
    assert "addEventListener('toggle'" in SCRIPT
    assert "unfold(e.target)" in SCRIPT
    assert "'beforeprint', function () { cases.forEach(unfold); }" in SCRIPT
    assert "t.content.textContent" in SCRIPT  # search reaches replies not yet rendered
