"""What keeps a large replay cheap, in real sessions (issue 17): cassette folders are not walked
for tests, the session's long-lived objects are out of the cyclic GC's way while it runs, and
the cassettes it replays are JSON."""

from __future__ import annotations

import gc
import json

import pytest

from pytest_llmgate.simulator import OpenAISimulator

from .conftest import DEAD_BASE_URL

SUITE = """\
baseline: gpt-4o
cases:
  - id: c0
    prompt: "Invoice from ACME"
    assert: [{type: contains, value: ACME}]
"""
FAILING_TEST = "def test_inside_a_cassette_folder():\n    assert False, 'collected from a cassette folder'\n"


def _record(pytester: pytest.Pytester, server: OpenAISimulator, *args: str, passed: int = 1) -> None:
    pytester.runpytest(
        "--llm-candidate=gpt-5.5", "--llm-record-mode=once", f"--llm-base-url={server.base_url}", *args
    ).assert_outcomes(passed=passed)


def _replay(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest("--llm-candidate=gpt-5.5", f"--llm-base-url={DEAD_BASE_URL}", *args)


def test_cassette_folders_beside_a_case_file_are_not_collected(
    pytester: pytest.Pytester, openai_server: OpenAISimulator
) -> None:
    pytester.makefile(".yaml", llm_invoices=SUITE)
    _record(pytester, openai_server, "-m", "not llm_gate")
    cassette = pytester.path / "cassettes/llm_invoices/c0/gpt-4o.yaml"
    assert json.loads(cassette.read_text())["interactions"]  # recorded as JSON text
    (pytester.path / "cassettes/test_inside.py").write_text(FAILING_TEST)
    _replay(pytester, "-m", "not llm_gate").assert_outcomes(passed=1)
    # An ordinary `cassettes` folder (no case file beside it) is collected as pytest always did.
    other = pytester.mkdir("plain")
    (other / "cassettes").mkdir()
    (other / "cassettes/test_inside.py").write_text(FAILING_TEST)
    _replay(pytester, "-m", "not llm_gate").assert_outcomes(passed=1, failed=1)


def test_an_explicit_cassette_dir_is_not_collected(
    pytester: pytest.Pytester, openai_server: OpenAISimulator
) -> None:
    pytester.makefile(".yaml", llm_invoices=SUITE)
    _record(pytester, openai_server, "--llm-cassette-dir=recordings", "-m", "not llm_gate")
    (pytester.path / "recordings/test_inside.py").write_text(FAILING_TEST)
    _replay(pytester, "--llm-cassette-dir=recordings", "-m", "not llm_gate").assert_outcomes(passed=1)


def test_long_lived_objects_are_frozen_during_the_run_and_released_after(
    pytester: pytest.Pytester, openai_server: OpenAISimulator
) -> None:
    pytester.makefile(".yaml", llm_invoices=SUITE)
    _record(pytester, openai_server, "-m", "not llm_gate")
    pytester.makepyfile(
        test_frozen="""
        import gc

        def test_the_collected_session_is_frozen():
            assert gc.get_freeze_count() > 0
        """
    )
    gc.unfreeze()  # whatever an earlier test left frozen: this one counts from zero
    _replay(pytester, "-m", "not llm_gate").assert_outcomes(passed=2)
    assert gc.get_freeze_count() == 0  # nothing stays out of the collector's reach
    # A session without case files is left alone.
    (pytester.path / "llm_invoices.yaml").unlink()
    _replay(pytester).assert_outcomes(failed=1)


def test_one_process_keeps_each_result_as_made_not_rebuilt_from_its_report(
    pytester: pytest.Pytester, openai_server: OpenAISimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A result rides on its call report as a dict (for xdist and report plugins); one process
    keeps the object it made instead of rebuilding it from that dict (a third copy per case)."""
    from pytest_llmgate.results import CaseResult

    cases = "cases:\n" + _CASE.format(1) + _CASE.format(2)
    pytester.makefile(".yaml", llm_invoices=SUITE.replace("cases:\n", cases))
    _record(pytester, openai_server, "-m", "not llm_gate", passed=3)  # gates would judge noise
    rebuilt: list[str] = []
    original = CaseResult.from_dict.__func__  # type: ignore[attr-defined]

    def counting(cls: type[CaseResult], data: dict[str, object]) -> CaseResult:
        rebuilt.append(str(data["case_id"]))
        return original(cls, data)  # type: ignore[no-any-return]

    monkeypatch.setattr(CaseResult, "from_dict", classmethod(counting))
    result = _replay(pytester, "--llm-report=run.json", "-m", "not llm_gate")
    result.assert_outcomes(passed=3)
    assert rebuilt == []
    report = json.loads((pytester.path / "run.json").read_text())
    assert [case["case_id"] for case in report["cases"]] == ["c0", "c1", "c2"]  # each once, in order


_CASE = """\
  - id: c{0}
    prompt: "Invoice {0} from ACME"
    assert: [{{type: contains, value: ACME}}]
"""
