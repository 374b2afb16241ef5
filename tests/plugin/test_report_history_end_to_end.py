"""A real session's reports: the prompt and price source on each case, the checklist against the
production timeout, run-to-run comparison and `llmgate report` re-rendering the JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_llmgate.cli import main
from pytest_llmgate.simulator import OpenAISimulator

from .test_reports_end_to_end import record, replay


def test_reports_carry_the_prompt_the_price_source_and_the_checklist(
    pytester: pytest.Pytester, openai_server: OpenAISimulator
) -> None:
    pytester.makefile(".yaml", llmgate="production: {timeout_s: 0.001}\n")
    record(pytester, openai_server)
    result = replay(pytester, "--llm-report=run.json", "--llm-report=run.html")
    assert result.ret == 1
    data = json.loads((pytester.path / "run.json").read_text())
    cases = {case["case_id"]: case for case in data["cases"]}
    assert cases["invoice-acme"]["prompt"] == [{"role": "user", "content": "Invoice from ACME"}]
    sample = cases["invoice-acme"]["candidate"]["samples"][0]
    assert sample["price_source"].startswith("built-in price table, checked ")
    checks = {item["name"]: item for item in data["checklist"]}
    assert data["production"] == {"timeout_s": 0.001, "concurrency": None}
    assert data["concurrency"] == 8  # the run's --llm-concurrency, which the retry-storms item uses
    assert checks["timeouts"]["status"] == "fail"
    assert checks["timeouts"]["value"].endswith("vs production timeout 1 ms")
    html = (pytester.path / "run.html").read_text()
    assert '<span class="role">user</span><pre>Invoice from ACME</pre>' in html
    # the terminal: one line per failing checklist item, then the verdict line last
    result.stdout.fnmatch_lines(["checklist ✗ timeouts: gpt-5.5 p99 * ms vs production timeout 1 ms; *"])
    summary = result.stdout.lines[
        : next(i for i, line in enumerate(result.stdout.lines) if "short test summary" in line)
    ]
    verdict_at = max(i for i, line in enumerate(summary) if line.startswith("BLOCKED: gpt-5.5 vs gpt-4o"))
    assert all(
        line.startswith(("  ", "llmgate report:", "=")) or not line for line in summary[verdict_at + 1 :]
    )


def test_compare_report_says_what_changed_since_an_earlier_run(
    pytester: pytest.Pytester, openai_server: OpenAISimulator
) -> None:
    record(pytester, openai_server)
    replay(pytester, "--llm-report=before.json")
    before = json.loads((pytester.path / "before.json").read_text())
    before["cases"] = [
        {**case, "outcome": "passed"} if case["case_id"] == "invoice-globex" else case
        for case in before["cases"]
    ]
    (pytester.path / "before.json").write_text(json.dumps(before))
    result = replay(
        pytester, "--llm-compare-report=before.json", "--llm-report=after.md", "--llm-report=after.json"
    )
    result.stdout.fnmatch_lines(
        ["since the run of *:", "  gpt-5.5 (candidate): quality *", "  verdict flips: 1 worse, 0 better"]
    )
    after = json.loads((pytester.path / "after.json").read_text())
    assert after["since"]["flips"] == [
        {
            "case": "llm_suite.yaml::invoice-globex",
            "model": "gpt-5.5",
            "before": "passed",
            "after": "regression",
        }
    ]
    assert "### Since the previous run (" in (pytester.path / "after.md").read_text()


def test_a_missing_compare_report_fails_before_any_model_is_called(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", llm_suite="baseline: gpt-4o\ncases: [{id: a, prompt: hi}]\n")
    result = pytester.runpytest("--llm-compare-report=nowhere.json")
    assert result.ret == 4
    result.stderr.fnmatch_lines(
        ["*--llm-compare-report*nowhere.json: cannot read it as JSON*--llm-report=run.json*"]
    )


def test_llmgate_report_rerenders_a_sessions_json(
    pytester: pytest.Pytester, openai_server: OpenAISimulator, tmp_path: Path
) -> None:
    record(pytester, openai_server)
    replay(pytester, "--llm-report=run.json", "--llm-report=run.md")
    again = tmp_path / "again.md"
    assert main(["report", str(pytester.path / "run.json"), "-o", str(again)]) == 0
    assert again.read_text() == (pytester.path / "run.md").read_text()
