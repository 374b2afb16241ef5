"""End to end: session-scope gates (the default), `--lf` and node ids on gates, the `llm` marker.

Real pytest sessions on real YAML files, recorded against the loopback simulator, then replayed
offline. The gates judge every case of the run as one suite; a gate re-run alone (`--lf`, its
node id) runs the cases it judges, so its verdict does not depend on what was selected.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pytest_llmgate.simulator import OpenAISimulator

from .conftest import DEAD_BASE_URL

pytestmark = pytest.mark.usefixtures("fake_credentials")

GATES = ("quality", "cost", "latency", "tokens", "drift")
PROJECT = "gate: {max_latency_increase: null}\n"  # a few ms of latency is noise


@pytest.fixture(autouse=True)
def session_scope(monkeypatch: pytest.MonkeyPatch, tiktoken_cache_dir: Path, file_gate_scope: None) -> None:
    """The default scope: the conftest's `--llm-gate-scope=file` is taken away again."""
    monkeypatch.delenv("PYTEST_ADDOPTS", raising=False)
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tiktoken_cache_dir))


def case_file(name: str, *cases: str, tags: str = "extraction") -> str:
    body = "".join(
        f'  - id: {case}\n    prompt: "Invoice {case.upper()} from ACME"\n    tags: [{tags}]\n'
        "    assert: [{type: contains, value: ACME}]\n"
        for case in cases
    )
    return f"baseline: gpt-4o\ncases:\n{body}"


def make_suite(pytester: pytest.Pytester, server: OpenAISimulator) -> None:
    """Two files, five cases, all passed by both models; gpt-5.5 costs more per successful task, so
    gate[cost] is the one failure."""
    pytester.makefile(".yaml", llmgate=PROJECT)
    pytester.makefile(".yaml", llm_a=case_file("a", "a1", "a2", "a3"))
    pytester.makefile(".yaml", llm_b=case_file("b", "b1", "b2", tags="routing"))
    result = pytester.runpytest(
        "--llm-candidate=gpt-5.5", "--llm-record-mode=once", f"--llm-base-url={server.base_url}"
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()
    server.stop()


def replay(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest("--llm-candidate=gpt-5.5", f"--llm-base-url={DEAD_BASE_URL}", *args)


def verdicts(result: pytest.RunResult, prefix: str) -> dict[str, str]:
    """Gate name -> verdict from `-v` lines (`[gwN]`-prefixed under xdist); each gate once."""
    pattern = re.compile(
        rf"(?:\[gw\d\] \[ *\d+%\] )?(PASSED|FAILED|SKIPPED) {re.escape(prefix)}::gate\[(\w+)\]"
    )
    plain = re.compile(rf"^{re.escape(prefix)}::gate\[(\w+)\] (PASSED|FAILED|SKIPPED)\b")
    found: list[tuple[str, str]] = []
    for line in result.outlines:
        if match := plain.match(line):
            found.append((match.group(1), match.group(2)))
        elif (match := pattern.match(line)) and line.startswith("["):
            found.append((match.group(2), match.group(1)))
    assert sorted(name for name, _ in found) == sorted(GATES), found
    return dict(found)


EXPECTED = {
    "quality": "PASSED",
    "cost": "FAILED",
    "latency": "SKIPPED",
    "tokens": "PASSED",
    "drift": "PASSED",
}


@pytest.mark.parametrize("xdist", [(), ("-n", "2")], ids=["alone", "n2"])
def test_by_default_one_set_of_gates_judges_every_case_of_the_run(
    pytester: pytest.Pytester, openai_server: OpenAISimulator, xdist: tuple[str, ...]
) -> None:
    make_suite(pytester, openai_server)
    result = replay(pytester, "-v", "--junitxml=junit.xml", *xdist)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    # 5 cases and 5 gates, not 5 per file; counted once in the header and in the results.
    result.assert_outcomes(passed=8, failed=1, skipped=1)
    assert verdicts(result, "llmgate") == EXPECTED
    assert not any(re.search(r"llm_[ab]\.yaml::gate\[", line) for line in result.outlines)
    # The gate is judged on all five cases, with each file's figure beside it.
    result.stdout.fnmatch_lines(
        [
            "*llm gate: llmgate::gate?cost? *",
            "gate?cost? failed: cost per successful task *",
            "  gpt-4o: total *, 5/5 cases passed, *",
            "  llm_a.yaml: failed: cost per successful task *",
            "  llm_b.yaml: failed: cost per successful task *",
        ]
    )
    cases = {
        (case.get("classname"), case.get("name"))
        for case in ET.parse(pytester.path / "junit.xml").iter("testcase")
    }
    assert {("llmgate", f"gate[{gate}]") for gate in GATES} <= cases
    assert len(cases) == 10
    if xdist:
        # The header counts the gates the controller judges: "[10 items]", then 10 results, <= 100%.
        result.stdout.fnmatch_lines(["*2 workers [[]10 items[]]*"])
        percentages = [
            int(match.group(1)) for line in result.outlines if (match := re.search(r"\[ *(\d+)%\]", line))
        ]
        assert percentages
        assert max(percentages) == 100


def test_gate_scope_file_from_the_flag_ini_or_llmgate_yaml(
    pytester: pytest.Pytester, openai_server: OpenAISimulator
) -> None:
    make_suite(pytester, openai_server)
    by_flag = replay(pytester, "-v", "--llm-gate-scope=file")
    assert verdicts(by_flag, "llm_a.yaml")["cost"] == "FAILED"
    assert verdicts(by_flag, "llm_b.yaml")["cost"] == "FAILED"
    by_flag.assert_outcomes(passed=11, failed=2, skipped=2)

    pytester.makefile(".yaml", llmgate=PROJECT + "gate_scope: file\n")
    by_yaml = replay(pytester, "-v")
    assert verdicts(by_yaml, "llm_a.yaml")["cost"] == "FAILED"
    # The ini wins over llmgate.yaml, the flag over the ini.
    pytester.makeini("[pytest]\nllm_gate_scope = session\n")
    assert verdicts(replay(pytester, "-v"), "llmgate")["cost"] == "FAILED"
    assert verdicts(replay(pytester, "-v", "--llm-gate-scope=file"), "llm_b.yaml")["cost"] == "FAILED"


def test_a_bad_gate_scope_is_an_error_naming_where_it_was_written(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", llmgate="gate_scope: suite\n")
    result = replay(pytester)
    result.stderr.fnmatch_lines(
        ["*llmgate.yaml: field 'gate_scope': gate_scope must be one of session, file*"]
    )
    assert replay(pytester, "--llm-gate-scope=suite").ret == pytest.ExitCode.USAGE_ERROR


def test_lf_reruns_a_failed_session_gate_and_the_gate_runs_its_cases(
    pytester: pytest.Pytester, openai_server: OpenAISimulator
) -> None:
    make_suite(pytester, openai_server)
    first = replay(pytester, "-v")
    first.assert_outcomes(passed=8, failed=1, skipped=1)
    again = replay(pytester, "-v", "--lf")
    again.stdout.fnmatch_lines(["run-last-failure: rerun previous 1 failure*"])
    again.assert_outcomes(failed=1, deselected=9)
    # Judged on the same five cases as before, though none of them was selected.
    summary = [line for line in first.outlines if line.startswith("gate[cost] failed")]
    assert summary
    assert summary == [line for line in again.outlines if line.startswith("gate[cost] failed")]
    again.stdout.fnmatch_lines(["  gpt-4o: total *, 5/5 cases passed, *"])


def test_selecting_a_file_gate_by_id_runs_the_cases_it_judges(
    pytester: pytest.Pytester, openai_server: OpenAISimulator
) -> None:
    make_suite(pytester, openai_server)
    result = replay(pytester, "--llm-gate-scope=file", "llm_a.yaml::gate[cost]")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["gate?cost? failed: cost per successful task *", "  gpt-4o: total *, 3/3 cases passed, *"]
    )


def test_a_case_selected_by_id_does_not_pull_in_the_session_gates(
    pytester: pytest.Pytester, openai_server: OpenAISimulator
) -> None:
    make_suite(pytester, openai_server)
    result = replay(pytester, "llm_a.yaml::a1")
    result.assert_outcomes(passed=1)


@pytest.mark.parametrize("xdist", [(), ("-n", "2")], ids=["alone", "n2"])
def test_a_session_gate_named_by_its_id_runs_alone_and_judges_every_case(
    pytester: pytest.Pytester, openai_server: OpenAISimulator, xdist: tuple[str, ...]
) -> None:
    make_suite(pytester, openai_server)
    result = replay(pytester, "llmgate::gate[cost]", *xdist)
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()
    # the five cases deselected (xdist's controller does not count what its workers deselect)
    result.assert_outcomes(failed=1, deselected=0 if xdist else 5)
    # the same verdict, on the same five cases, as when the whole suite runs
    result.stdout.fnmatch_lines(
        ["gate?cost? failed: cost per successful task *", "  gpt-4o: total *, 5/5 cases passed, *"]
    )
    two = replay(pytester, "llmgate::gate[quality]", "llmgate::gate[tokens]", *xdist)
    assert two.ret == pytest.ExitCode.OK, two.stdout.str()
    two.assert_outcomes(passed=2, deselected=0 if xdist else 5)


def test_a_session_gate_named_beside_a_file_runs_with_that_files_cases_and_no_other_gate(
    pytester: pytest.Pytester, openai_server: OpenAISimulator
) -> None:
    make_suite(pytester, openai_server)
    result = replay(pytester, "llm_b.yaml", "llmgate::gate[cost]")
    result.assert_outcomes(passed=2, failed=1)  # b1, b2 and that one gate, of the five
    # A gate judges its whole scope whatever was selected: the run's five cases.
    result.stdout.fnmatch_lines(["  gpt-4o: total *, 5/5 cases passed, *"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("llmgate::gate[speed]",),
            "llmgate::gate[speed] is not a session gate of this run; its gates are: "
            "llmgate::gate[quality], llmgate::gate[cost], llmgate::gate[latency], ",
        ),
        (
            ("llmgate::gate[cost]", "--llm-gate-scope=file"),
            "llmgate::gate[cost] names a session gate, but the "
            "gate scope is file: name a case file's gate instead (pytest llm_invoices.yaml::gate[cost])",
        ),
    ],
)
def test_a_named_session_gate_that_is_none_is_a_usage_error(
    pytester: pytest.Pytester, args: tuple[str, ...], message: str
) -> None:
    pytester.makefile(".yaml", llm_a=case_file("a", "a1"))
    result = replay(pytester, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.stderr.str()


@pytest.mark.parametrize("xdist", [(), ("-n", "2")], ids=["alone", "n2"])
def test_a_named_session_gate_with_no_case_file_to_judge_is_an_error_not_a_pass(
    pytester: pytest.Pytester, xdist: tuple[str, ...]
) -> None:
    pytester.makepyfile(test_plain="def test_plain():\n    pass\n")
    result = replay(pytester, "llmgate::gate[cost]", *xdist)
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()
    said = " ".join((result.stdout.str() + result.stderr.str()).split())
    assert "llmgate::gate[cost]: no case file (llm_*.yaml, llm_*.yml) was collected from " in said


def test_a_named_session_gate_may_be_written_with_a_leading_dot_slash(
    pytester: pytest.Pytester, openai_server: OpenAISimulator
) -> None:
    make_suite(pytester, openai_server)
    result = replay(pytester, "./llmgate::gate[cost]")
    result.assert_outcomes(failed=1, deselected=5)


def test_a_named_session_gate_needs_a_candidate(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", llm_a=case_file("a", "a1"))
    result = pytester.runpytest("llmgate::gate[cost]")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert (
        "llmgate::gate[cost] names a session gate: gates compare a candidate, add --llm-candidate=MODEL"
        in result.stderr.str()
    )


def test_llm_marker_selects_every_case_and_gate_and_tags_are_listed_as_markers(
    pytester: pytest.Pytester, openai_server: OpenAISimulator
) -> None:
    make_suite(pytester, openai_server)
    pytester.makepyfile(test_plain="def test_plain():\n    pass\n")
    selected = replay(pytester, "-m", "llm")
    selected.assert_outcomes(passed=8, failed=1, skipped=1, deselected=1)
    others = replay(pytester, "-m", "not llm")
    others.assert_outcomes(passed=1, deselected=10)
    markers = pytester.runpytest("--markers")
    markers.stdout.fnmatch_lines(["@pytest.mark.llm: every llm case and suite gate item"])
    markers.stdout.fnmatch_lines(["@pytest.mark.extraction: llm case tag"])
    markers.stdout.fnmatch_lines(["@pytest.mark.routing: llm case tag"])
