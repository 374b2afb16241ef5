"""What the plugin costs the sessions around it (issue 17), in real processes: a session that
collects no case file imports nothing heavy yet still scrubs its logs; a replay's long-lived
objects stay out of pytest's exit collections and are given back after them; a case's report
crosses from an xdist worker unchanged (same JUnit properties with and without workers)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pytest_llmgate.simulator import OpenAISimulator

from .conftest import DEAD_BASE_URL


@pytest.fixture(autouse=True)
def offline_tiktoken(monkeypatch: pytest.MonkeyPatch, tiktoken_cache_dir: Path) -> None:
    """Subprocess runs count tokens with the vocabularies the test session seeded."""
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tiktoken_cache_dir))


# Written at interpreter exit, after pytest's unconfigure and cleanups.
MODULES_AT_EXIT = """
import atexit, sys

def _modules():
    print("MODULES", " ".join(sorted(name for name in sys.modules if "." not in name or "llmgate" in name)))

atexit.register(_modules)
"""
ENTRY_MODULES = {"pytest_llmgate", "pytest_llmgate.plugin", "pytest_llmgate.keys", "pytest_llmgate.options"}
HEAVY = {"yaml", "jinja2", "openai", "vcr", "tiktoken", "jsonschema", "httpx2", "tabulate"}

SUITE = """\
baseline: gpt-4o
cases:
  - id: c0
    prompt: "Invoice from ACME"
    tags: [billing]
    assert: [{type: contains, value: ACME}]
  - id: c1
    prompt: "Invoice from Globex"
    assert: [{type: contains, value: Globex}]
  - id: c2
    prompt: "Invoice from Initech"
    tags: [billing, slow]
    assert: [{type: contains, value: Initech}]
"""


def modules_at_exit(result: pytest.RunResult) -> set[str]:
    line = next(line for line in result.outlines if line.startswith("MODULES "))
    return set(line.split()[1:])


def test_a_session_without_case_files_imports_nothing_heavy(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(MODULES_AT_EXIT)
    pytester.makepyfile(test_plain="def test_plain():\n    assert True\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    modules = modules_at_exit(result)
    assert {name for name in modules if name.startswith("pytest_llmgate")} == ENTRY_MODULES
    assert modules & HEAVY == set()


def test_the_plugin_works_without_pytest_xdist(pytester: pytest.Pytester) -> None:
    """pytest-xdist is not a dependency: its hooks are optional (an unknown one is a plugin error)."""
    pytester.makefile(".yaml", llm_suite=SUITE)
    pytester.makepyfile(test_plain="def test_plain():\n    assert True\n")
    result = pytester.runpytest_subprocess(
        "-p", "no:xdist", "-p", "no:cacheprovider", f"--llm-base-url={DEAD_BASE_URL}"
    )
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.TESTS_FAILED  # the three cases have no recording
    result.assert_outcomes(passed=1, failed=3)


def test_a_session_without_case_files_still_scrubs_secrets_from_logs(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "FAKEstartupSECRETvalue42"  # not credential-shaped: scrubbed because the environment holds it
    monkeypatch.setenv("MY_SERVICE_TOKEN", secret)
    pytester.makepyfile(
        test_logs=f"""
        import logging

        def test_logs():
            logging.getLogger("app").warning("connecting with {secret}")
        """
    )
    result = pytester.runpytest("--log-file=run.log", "--log-file-level=WARNING")
    result.assert_outcomes(passed=1)
    log = (pytester.path / "run.log").read_text()
    assert "connecting with REDACTED" in log
    assert secret not in log


def record(pytester: pytest.Pytester, server: OpenAISimulator) -> None:
    server.add_rule(content="ACME Globex Initech")
    pytester.makefile(".yaml", llm_invoices=SUITE)
    pytester.runpytest(
        "--llm-candidate=gpt-5.5",
        "--llm-record-mode=once",
        f"--llm-base-url={server.base_url}",
        "-m",
        "not llm_gate",
    ).assert_outcomes(passed=3)


# Records, from the end of the session, how much was frozen at each collection pytest makes on its
# way out (unraisableexception's, at unconfigure and at config cleanup), then at interpreter exit;
# and which loader imported the plugin's modules.
GC_AT_EXIT = """
import atexit, gc, sys

frozen = []
_collect = gc.collect

def collect(*args):
    frozen.append(gc.get_freeze_count())
    return _collect(*args)

def pytest_sessionfinish():
    gc.collect = collect

atexit.register(lambda: print("FROZEN", *frozen, "EXIT", gc.get_freeze_count()))

def loaders():
    ours = sorted(name for name in sys.modules if "llmgate" in name)
    print("LOADERS", *(f"{name}={type(sys.modules[name].__loader__).__name__}" for name in ours))

atexit.register(loaders)
"""


def test_a_replay_stays_frozen_through_pytests_exit_collections_and_imports_its_modules_plainly(
    pytester: pytest.Pytester,
    openai_server: OpenAISimulator,
) -> None:
    record(pytester, openai_server)
    pytester.makeconftest(GC_AT_EXIT)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--llm-candidate=gpt-5.5", f"--llm-base-url={DEAD_BASE_URL}"
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED  # gate[cost]: gpt-5.5 costs more
    line = next(line for line in result.outlines if line.startswith("FROZEN "))
    counts, _, at_exit = line.removeprefix("FROZEN ").partition(" EXIT ")
    frozen = [int(count) for count in counts.split()]
    assert len(frozen) == 2, line  # pytest's two exit collections ...
    assert all(count > 0 for count in frozen), line  # ... skip the run's objects
    # Given back to the collector at config cleanup (a session in another leaves nothing
    # frozen: test_scale_end_to_end), then frozen once more at exit, for the interpreter's own
    # final collections (about a second at 2,000 cases).
    assert int(at_exit) > 0, line

    # Only what was imported before configure went through pytest's assertion rewriting.
    line = next(line for line in result.outlines if line.startswith("LOADERS "))
    loaders = dict(entry.split("=") for entry in line.split()[1:])
    assert loaders["pytest_llmgate.plugin"] == "AssertionRewritingHook", line
    assert loaders["pytest_llmgate.items"] == "SourceFileLoader", line
    assert loaders["pytest_llmgate.cases"] == "SourceFileLoader", line


UNRAISABLE_TEST = """
class Cycle:
    def __del__(self):
        raise RuntimeError("finalizer of the user's cyclic garbage")

def test_leaves_cyclic_garbage():
    cycle = Cycle()
    cycle.me = cycle
"""


def test_pytest_still_reports_the_finalizer_errors_of_garbage_the_users_tests_left(
    pytester: pytest.Pytester,
    openai_server: OpenAISimulator,
) -> None:
    """pytest collects at unconfigure to report `__del__` errors of what tests left as
    PytestUnraisableExceptionWarning; freezing the run's objects before that would hide them
    (and `-W error` would then pass a run that fails)."""
    record(pytester, openai_server)
    pytester.makepyfile(test_user=UNRAISABLE_TEST)
    result = pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "--llm-candidate=gpt-5.5",
        f"--llm-base-url={DEAD_BASE_URL}",
        "-m",
        "not llm_gate",
        "-W",
        "error::pytest.PytestUnraisableExceptionWarning",
    )
    output = result.stdout.str() + result.stderr.str()
    assert "finalizer of the user's cyclic garbage" in output
    assert result.ret != pytest.ExitCode.OK


def test_a_run_without_llm_cases_leaves_the_interpreters_exit_alone(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(GC_AT_EXIT)
    pytester.makepyfile(test_plain="def test_one():\n    assert True\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    line = next(line for line in result.outlines if line.startswith("FROZEN "))
    assert line.endswith(" EXIT 0"), line


def junit_properties(path: Path) -> dict[str, list[tuple[str, str]]]:
    return {
        f"{case.get('classname')}::{case.get('name')}": [
            (prop.get("name", ""), prop.get("value", "")) for prop in case.iter("property")
        ]
        for case in ET.parse(path).iter("testcase")
    }


def test_case_properties_in_junit_are_the_same_with_and_without_workers(
    pytester: pytest.Pytester,
    openai_server: OpenAISimulator,
) -> None:
    record(pytester, openai_server)
    runs = {}
    for name, workers in (("alone", ()), ("n2", ("-n", "2"))):
        pytester.runpytest(
            "--llm-candidate=gpt-5.5",
            f"--llm-base-url={DEAD_BASE_URL}",
            "-m",
            "not llm_gate",
            f"--junitxml={name}.xml",
            *workers,
        ).assert_outcomes(passed=3)
        runs[name] = junit_properties(pytester.path / f"{name}.xml")
    assert runs["alone"] == runs["n2"]
    c0 = dict(runs["alone"]["llm_invoices.yaml::c0"])
    assert c0["llm_outcome"] == "passed"
    assert c0["llm_tags"] == "billing"
    assert c0["llm_candidate_model"] == "gpt-5.5"
    assert float(c0["llm_baseline_latency_ms"]) >= 0
    assert len(runs["alone"]["llm_invoices.yaml::c0"]) == len(c0)  # each property once
