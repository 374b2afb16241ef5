"""--llm-report files, the GitHub step summary and JUnit properties from a real session."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
import yaml

from pytest_llmgate.simulator import OpenAISimulator

from .conftest import DEAD_BASE_URL

CASES = """\
baseline: gpt-4o
cases:
  - id: invoice-acme
    prompt: "Invoice from ACME"
    tags: [extraction]
    assert: [{type: contains, value: ACME}]
  - id: invoice-globex
    prompt: "Invoice from Globex REGRESSED"
    tags: [extraction]
    assert: [{type: contains, value: Globex}]
  - id: plan-trip
    prompt: "Plan a trip to Rome IMPROVED"
    tags: [reasoning]
    assert: [{type: contains, value: Rome}]
"""


def record(pytester: pytest.Pytester, server: OpenAISimulator) -> None:
    pytester.makefile(".yaml", llm_suite=CASES)
    server.add_rule(model="gpt-5.5", contains="REGRESSED", content="No vendor found.")
    server.add_rule(model="gpt-4o", contains="IMPROVED", content="No plan.")
    pytester.runpytest(
        "--llm-candidate=gpt-5.5", "--llm-record-mode=once", f"--llm-base-url={server.base_url}"
    )
    server.stop()


def replay(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest("--llm-candidate=gpt-5.5", f"--llm-base-url={DEAD_BASE_URL}", *args)


def test_every_report_format_is_written_from_the_run(
    pytester: pytest.Pytester, openai_server: OpenAISimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    record(pytester, openai_server)
    summary = pytester.path / "step-summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    result = replay(
        pytester,
        "--llm-report=out/report.json",
        "--llm-report=out/report.md",
        "--llm-report=out/report.html",
        "--llm-report=out/routing.yaml",
        "--junitxml=junit.xml",
    )
    assert result.ret == 1
    result.stdout.fnmatch_lines(["llmgate report: */out/report.json", "llmgate report: */out/routing.yaml"])

    data = json.loads((pytester.path / "out/report.json").read_text())
    schema = json.loads(resources.files("pytest_llmgate").joinpath("data/report.schema.json").read_text())
    jsonschema.validate(data, schema)
    cases = {case["case_id"]: case for case in data["cases"]}
    assert cases["invoice-globex"]["outcome"] == "regression"
    assert cases["plan-trip"]["outcome"] == "improvement"
    assert {gate["name"] for gate in data["gates"]} == {"quality", "cost", "latency", "tokens", "drift"}
    assert data["verdict"]["status"] == "BLOCKED"
    assert data["verdict"]["line"].startswith("BLOCKED: gpt-5.5 vs gpt-4o")

    markdown = (pytester.path / "out/report.md").read_text()
    assert markdown.splitlines()[0] == f"## ❌ {data['verdict']['line']}"
    assert "invoice-globex" in markdown
    assert summary.read_text().startswith("earlier step\n")  # appended, not overwritten
    assert markdown.strip() in summary.read_text()

    html = (pytester.path / "out/report.html").read_text()
    assert html.lstrip().lower().startswith("<!doctype html>")
    assert "invoice-globex" in html
    assert "http://" not in html
    assert "https://" not in html

    routing = yaml.safe_load((pytester.path / "out/routing.yaml").read_text())
    assert set(routing["routes"]) == {"extraction", "reasoning"}
    assert routing["default"] in {"gpt-4o", "gpt-5.5"}

    junit = ET.parse(pytester.path / "junit.xml")
    case = next(item for item in junit.iter("testcase") if item.get("name") == "invoice-globex")
    properties = {prop.get("name"): prop.get("value") for prop in case.iter("property")}
    assert properties["llm_outcome"] == "regression"
    assert properties["llm_candidate_model"] == "gpt-5.5"
    assert float(properties["llm_candidate_latency_ms"]) >= 0


def test_a_replay_twice_gives_byte_identical_json_apart_from_the_timestamp(
    pytester: pytest.Pytester,
    openai_server: OpenAISimulator,
    monkeypatch: pytest.MonkeyPatch,
    tiktoken_cache_dir: Path,
) -> None:
    # The same tokenizer for both runs: the xdist workers are fresh processes, while this process
    # may hold encodings another test loaded.
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tiktoken_cache_dir))
    record(pytester, openai_server)
    replay(pytester, "--llm-report=first.json")
    replay(pytester, "--llm-report=second.json", "-n", "2")

    def without_created(name: str) -> str:
        data = json.loads((pytester.path / name).read_text())
        data.pop("created")
        return json.dumps(data, sort_keys=True)

    assert without_created("first.json") == without_created("second.json")


def test_an_unknown_report_suffix_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", llm_suite=CASES)
    result = replay(pytester, "--llm-report=report.pdf")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*cannot tell the format from the suffix '.pdf'*report.html*"])
