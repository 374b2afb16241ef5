"""An interrupted run says so and lists what did not run; every billed request is counted once."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import jsonschema
import pytest

from pytest_llmgate.config import GateSettings
from pytest_llmgate.report.json_report import load_schema, report_dict
from pytest_llmgate.report.markdown import render_markdown
from pytest_llmgate.report.model import build_report
from pytest_llmgate.report.terminal import summary_lines
from pytest_llmgate.simulator import OpenAISimulator

from .conftest import interrupt_live_run
from .test_live_runs import cases


def validate(data: object) -> None:
    jsonschema.validate(data, load_schema(), cls=jsonschema.Draft202012Validator)


def test_ctrl_c_mid_run_reports_interrupted_and_names_the_cases_and_gates_that_did_not_run(
    pytester: pytest.Pytester, openai_server: OpenAISimulator
) -> None:
    """A real SIGINT with calls in flight: the JSON, Markdown and summary say INTERRUPTED, never PASSED."""
    pytester.makefile(".yaml", llm_invoices=cases(40))
    openai_server.latency_ms = 200
    args = [
        "--llm-candidate=gpt-5.5",
        "--llm-concurrency=4",
        "--llm-report=report.json",
        "--llm-report=report.md",
        "--llm-gate=max_cost_increase=100",  # the cases that finish would pass every gate
    ]
    returncode, output = interrupt_live_run(pytester.path, openai_server, args, after_requests=12)
    assert returncode == pytest.ExitCode.INTERRUPTED, output[-2000:]

    data = json.loads((pytester.path / "report.json").read_text())
    validate(data)
    assert data["interrupted"] is True
    assert data["verdict"]["status"] == "INTERRUPTED"
    finished = [case["case_id"] for case in data["cases"]]
    assert all(case["outcome"] == "passed" for case in data["cases"])  # and yet no PASSED verdict
    not_run = data["not_run"]
    gates = [f"llm_invoices.yaml::gate[{name}]" for name in ("quality", "cost", "latency", "tokens", "drift")]
    assert [nodeid for nodeid in not_run if "gate[" in nodeid] == gates  # no gate was judged
    not_run_cases = [nodeid.split("::")[1] for nodeid in not_run if "gate[" not in nodeid]
    assert sorted(finished + not_run_cases) == sorted(f"c{index}" for index in range(40))
    assert 0 < len(not_run_cases) < 40
    count = len(not_run_cases)
    line = data["verdict"]["line"]
    assert line.startswith(
        f"INTERRUPTED: gpt-5.5 vs gpt-4o (stopped after {len(finished)} case"
        f"{'s' * (len(finished) != 1)}; {count} case{'s' * (count != 1)} and 5 gates did not run)"
    )
    markdown = (pytester.path / "report.md").read_text()
    assert markdown.startswith(f"## ❌ {line}")
    assert "**The run was interrupted**" in markdown
    assert f"INTERRUPTED: stopped after {len(finished)} case" in output
    assert "no verdict on the upgrade" in output


def test_an_interrupted_report_without_any_finished_case_is_still_valid() -> None:
    report = build_report([], {}, baseline="gpt-4o", not_run=["llm_a.yaml::c0"])
    data = report_dict(report)
    validate(data)
    assert data["verdict"]["status"] == "INTERRUPTED"
    assert data["not_run"] == ["llm_a.yaml::c0"]
    assert list(summary_lines([], not_run=["llm_a.yaml::c0"])) == [
        "INTERRUPTED: stopped after 0 cases; 1 case did not run; no verdict on the upgrade",
        "not run: llm_a.yaml::c0",
    ]
    assert render_markdown(report).startswith("## ❌ INTERRUPTED: gpt-4o (stopped after 0 cases;")


def test_a_run_that_was_not_interrupted_says_nothing_of_it() -> None:
    data = report_dict(build_report([], {}, baseline="gpt-4o", settings=GateSettings()))
    validate(data)
    assert data["interrupted"] is False
    assert data["not_run"] == []
    assert data["verdict"]["status"] == "PASSED"


def test_a_failed_call_keeps_its_attempts_in_the_report_and_the_progress_line(
    pytester: pytest.Pytester, openai_server: OpenAISimulator
) -> None:
    pytester.makefile(".yaml", llm_invoices=cases(1))
    openai_server.add_rule(status=503, headers={"Retry-After": "0"})
    result = pytester.runpytest(
        "--llm-record-mode=once",
        f"--llm-base-url={openai_server.base_url}",
        "--llm-max-retries=3",
        "--llm-report=report.json",
    )
    result.assert_outcomes(failed=1)
    assert len(openai_server.requests) == 4  # four requests billed...
    data = json.loads((pytester.path / "report.json").read_text())
    (sample,) = data["cases"][0]["baseline"]["samples"]
    assert sample["attempts"] == 4  # ...and four counted
    assert data["models"][0]["retries"] == 3
    result.stdout.fnmatch_lines(
        ["retries (extra requests, billed): gpt-4o 3", "llmgate: 1/1 calls, 1 errors, 3 retries*"]
    )


def test_a_call_whose_recording_cannot_be_saved_counts_once(
    pytester: pytest.Pytester, openai_server: OpenAISimulator
) -> None:
    pytester.makefile(".yaml", llm_invoices=cases(1))
    (pytester.path / "cassettes" / "llm_invoices" / "c0" / "gpt-4o.yaml").mkdir(parents=True)  # unwritable
    result = pytester.runpytest(
        "--llm-record-mode=once", f"--llm-base-url={openai_server.base_url}", "--llm-report=report.json"
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*gpt-4o: recording error: *gpt-4o.yaml*", "llmgate: 1/1 calls, 1 errors, 0 retries*"]
    )
    data = json.loads((pytester.path / "report.json").read_text())
    (sample,) = data["cases"][0]["baseline"]["samples"]
    assert sample["error_kind"] == "recording"
    assert sample["latency_ms"] > 0  # the call that was made, not a second phantom one


@pytest.fixture
def umask_022() -> Iterator[None]:
    previous = os.umask(0o022)
    yield
    os.umask(previous)


@pytest.mark.usefixtures("umask_022")
def test_reports_and_cassettes_are_created_with_the_users_umask(
    pytester: pytest.Pytester, openai_server: OpenAISimulator
) -> None:
    pytester.makefile(".yaml", llm_invoices=cases(1))
    result = pytester.runpytest(
        "--llm-record-mode=once",
        f"--llm-base-url={openai_server.base_url}",
        "--llm-report=out/report.json",
        "--llm-report=out/report.html",
    )
    result.assert_outcomes(passed=1)
    written = [
        pytester.path / "out" / "report.json",
        pytester.path / "out" / "report.html",
        pytester.path / "cassettes" / "llm_invoices" / "c0" / "gpt-4o.yaml",
    ]
    assert [oct(path.stat().st_mode & 0o777) for path in written] == [oct(0o644)] * 3


def test_a_case_id_with_a_trailing_newline_fails_collection_before_any_call(
    pytester: pytest.Pytester, openai_server: OpenAISimulator
) -> None:
    pytester.makefile(".yaml", llm_ids='baseline: gpt-4o\ncases:\n  - id: "greet\\n"\n    prompt: hi\n')
    result = pytester.runpytest("--llm-record-mode=once", f"--llm-base-url={openai_server.base_url}")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*llm_ids.yaml:3: field 'id': case #1 needs an 'id' of letters*"])
    assert openai_server.requests == []


@pytest.mark.parametrize("workers", [[], ["-n", "2"]])
def test_a_session_without_case_files_stopped_by_x_prints_no_llmgate_summary(
    pytester: pytest.Pytester, workers: list[str]
) -> None:
    # -x under xdist ends the session as interrupted; ordinary tests are not llm cases that "did
    # not run", and a session without case files has no upgrade verdict to withhold.
    pytester.makepyfile(test_plain="def test_fails():\n    assert False\n\ndef test_other():\n    pass\n")
    result = pytester.runpytest("-x", *workers, "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*1 failed*"])
    result.stdout.no_fnmatch_line("*= llmgate*")
    result.stdout.no_fnmatch_line("*INTERRUPTED*")
    result.stdout.no_fnmatch_line("*did not run*")
