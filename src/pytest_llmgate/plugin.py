"""pytest hooks of pytest-llmgate: options, collection of case files, result transport, summary.

Cheap to import: nothing here imports openai, vcrpy or tiktoken; they load on the first case run.
"""

from __future__ import annotations

import bisect
import contextlib
import fnmatch
import gc
import logging
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from pytest_llmgate.cassettes import create_temp_beside
from pytest_llmgate.config import ProjectConfig
from pytest_llmgate.errors import CaseFileError
from pytest_llmgate.items import (
    CASE_FILES_KEY,
    COLLECTORS_KEY,
    GATE_MARKER,
    LLM_MARKER,
    RESULT_KEY,
    STATE_KEY,
    CaseFileCollector,
    CaseItem,
    GateItem,
    gate_failure_text,
    gate_properties,
    judge_gate,
    resolve_gate,
    result_order,
    session_gate_items,
    with_candidate,
)
from pytest_llmgate.model.params import ADAPTED_NOTE
from pytest_llmgate.options import Settings, add_options
from pytest_llmgate.results import CaseResult
from pytest_llmgate.secrets import ScrubbingLogFilter
from pytest_llmgate.session import LlmSession

# Name of the TestReport attribute that carries a case's result dict (survives xdist transport).
REPORT_ATTRIBUTE = "llmgate_result"
# Key of xdist's workeroutput under which a worker lists the gate items it left to the controller.
DEFERRED_GATES = "llmgate_deferred_gates"
PROGRESS_EVERY_S = 10.0


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    settings = Settings.from_config(config)
    try:
        project = ProjectConfig.load(settings.rootdir)
    except CaseFileError as exc:
        raise pytest.UsageError(exc.render()) from None
    config.addinivalue_line("markers", f"{GATE_MARKER}: a suite gate (gate[quality], gate[cost], ...)")
    config.addinivalue_line("markers", f"{LLM_MARKER}: every llm case and suite gate item")
    if config.getoption("markers", False):
        _register_tags(config, settings)
    state = LlmSession(settings=settings, project=project)
    config.stash[STATE_KEY] = state
    if state.live and not _is_xdist_controller(config):
        # A live run will need the SDK; importing it (~0.5 s) overlaps with collection this way.
        threading.Thread(target=_import_sdk, name="llmgate-import", daemon=True).start()
    config.pluginmanager.register(ResultCollector(state, config), "llmgate-results")


def pytest_sessionstart(session: pytest.Session) -> None:
    """Scrub secrets from every log record pytest writes (captured logs in failure reports,
    `--log-file`, live logging): the logging plugin's handlers exist from here on."""
    state = session.config.stash[STATE_KEY]
    logging_plugin = session.config.pluginmanager.get_plugin("logging-plugin")
    log_filter = ScrubbingLogFilter(lambda: state.scrubber)
    for name in ("caplog_handler", "report_handler", "log_file_handler", "log_cli_handler"):
        handler = getattr(logging_plugin, name, None)
        if isinstance(handler, logging.Handler):
            handler.addFilter(log_filter)


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(STATE_KEY, None)
    if state is not None:
        state.close()


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.suffix not in (".yaml", ".yml"):
        return None
    patterns = parent.config.stash[STATE_KEY].settings.file_patterns
    if any(fnmatch.fnmatch(file_path.name, pattern) for pattern in patterns):
        collector: CaseFileCollector = CaseFileCollector.from_parent(parent, path=file_path)
        # Known even when `--lf` then skips the file: a gate may need to run its cases.
        parent.config.stash.setdefault(CASE_FILES_KEY, {})[collector.nodeid] = file_path
        parent.config.stash.setdefault(COLLECTORS_KEY, {})[collector.nodeid] = collector
        return collector
    return None


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Cassette folders are not searched for tests.

    2,000 cases leave 2,000 folders and 4,000 cassettes beside their case file; pytest walking
    them for test files took about a second of a replay. Skipped: the `--llm-cassette-dir`, and a
    `cassettes` folder beside a case file (where cassettes go by default).
    """
    settings = config.stash[STATE_KEY].settings
    if settings.cassette_dir is not None and collection_path == settings.cassette_dir:
        return True
    if collection_path.name == "cassettes" and collection_path.is_dir():
        with contextlib.suppress(OSError):
            for entry in os.scandir(collection_path.parent):
                if any(fnmatch.fnmatch(entry.name, pattern) for pattern in settings.file_patterns):
                    return True
    return None


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Gate items run after every case item; under xdist the controller runs them (see below).

    A gate judges all cases of its scope (the session, or its file), so it must come after them,
    whatever order other plugins chose. An xdist worker sees only its share of the cases, so
    workers pass over the gate items and list them in `workeroutput`; the controller judges them
    once every worker is done and reports them like any test (verbose line, JUnit, exit code).
    """
    state = config.stash[STATE_KEY]
    calls = 0
    cases: set[str] = set()
    for item in items:
        if isinstance(item, CaseItem):
            # The baseline runs once per case, however many candidate items share it; each
            # llm-rubric assertion makes one judge call per reply.
            models = (item.case_nodeid not in cases) + (item.candidate is not None)
            cases.add(item.case_nodeid)
            judged = sum(spec.kind == "llm-rubric" for spec in item.case.assertions)
            calls += models * (item.case.repeat or state.settings.repeat) * (1 + judged)
    state.progress.expect(calls)
    gates = [item for item in items if isinstance(item, GateItem)]
    if not gates:
        return
    others = [item for item in items if not isinstance(item, GateItem)]
    if _is_xdist_worker(config):
        config.workeroutput[DEFERRED_GATES] = [  # type: ignore[attr-defined]
            {
                "nodeid": gate.nodeid,
                "location": list(gate.location),
                "files": gate.case_files,
                "scope": gate.scope,
                "gate": gate.gate_name,
                "settings": gate.settings.to_dict(),
                "candidate": gate.candidate,
            }
            for gate in gates
        ]
    # Workers keep the gates among their items, so xdist's header counts them ("[10 items]") and
    # -v percentages end at 100%; a worker passes over them (`pytest_runtest_protocol`).
    items[:] = [*others, *gates]


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> bool | None:
    """An xdist worker reports nothing for a gate: the controller judges and reports it once
    every worker is done (it alone sees every case's result)."""
    if isinstance(item, GateItem) and _is_xdist_worker(item.config):
        return True
    return None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if isinstance(item, CaseItem) and call.when == "call":
        result = item.stash.get(RESULT_KEY, None)
        if result is not None:
            setattr(report, REPORT_ATTRIBUTE, result.to_dict())
    return report


def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config) -> Any:
    """`PASSED (params adapted)` in -v: the model was sent other parameters than the case wrote
    (a reasoning model under `param_policy: adapt`), a fact to see on the case itself."""
    data = getattr(report, REPORT_ATTRIBUTE, None)
    if report.when != "call" or not isinstance(data, dict) or hasattr(report, "wasxfail"):
        return None
    if not any(str(note).startswith(ADAPTED_NOTE) for note in data.get("notes", ())):
        return None
    if report.passed:
        return "passed", ".", ("PASSED (params adapted)", {"green": True})
    if report.failed:
        return "failed", "F", ("FAILED (params adapted)", {"red": True})
    return None


class ResultCollector:
    """Gathers every case result of the session, local or from xdist workers, and prints the summary.

    Registered as a plugin object at configure time (as junitxml does) so that its hooks reach the
    session state without module-level globals.
    """

    def __init__(self, state: LlmSession, config: pytest.Config) -> None:
        self.state = state
        self.config = config
        self.deferred: dict[str, dict[str, Any]] = {}
        self.interrupted = False  # Ctrl-C: the reports say so and list what did not run
        self.planned: list[str] = []  # node ids of the case and gate items this session will run
        self.froze_gc = False

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(self, session: pytest.Session, items: list[pytest.Item]) -> None:
        """The session's gates join the items before `-k`, `-m` and `--lf` select (tryfirst);
        the module's hook (trylast) then puts every gate after the cases."""
        items.extend(session_gate_items(session))

    def pytest_keyboard_interrupt(self) -> None:
        self.interrupted = True
        # No new model call after Ctrl-C: queued jobs are dropped now, not at unconfigure (the
        # pool would go on calling, and billing, while pytest writes its summary).
        self.state.stop_prefetching()

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.planned.extend(item.nodeid for item in session.items if isinstance(item, CaseItem | GateItem))
        if self.planned and not self.state.live:
            # Thousands of items, cases and their parsed YAML live until the session ends; every
            # full collection of the cyclic GC walked them all again (a fifth of a 2,000-case
            # replay, and pytest's two collections at exit). Frozen, they are skipped; reference
            # counting still frees them, and `pytest_unconfigure` below gives them back. Replay
            # only: a live run waits on the network, and freezing there measured no better.
            gc.freeze()
            self.froze_gc = True

    @pytest.hookimpl(trylast=True)
    def pytest_unconfigure(self) -> None:
        """After pytest's own exit collections (trylast): what was frozen is collectable again,
        so a session run inside another (pytester) leaves no cycle behind for good."""
        if self.froze_gc:
            gc.unfreeze()

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        """xdist controller: it collects nothing itself, so it learns the items from the workers."""
        known = set(self.planned)
        patterns = self.state.settings.file_patterns
        for nodeid in ids:  # only case files' items: the session may hold ordinary tests too
            name = nodeid.split("::", 1)[0].rsplit("/", 1)[-1]
            if nodeid not in known and any(fnmatch.fnmatch(name, pattern) for pattern in patterns):
                known.add(nodeid)
                self.planned.append(nodeid)

    def not_run(self) -> list[str] | None:
        """The case and gate items an interrupted session never ran; None when not interrupted."""
        if not self.interrupted:
            return None
        several = self.state.settings.several_candidates
        done = {
            with_candidate(
                f"{result.file_nodeid}::{result.case_id}",
                result.candidate.model if result.candidate is not None else None,
                several,
            )
            for result in self.state.results
        }
        done.update(self.state.gate_checks)
        planned = [*self.planned, *(nodeid for nodeid in self.deferred if nodeid not in self.planned)]
        return [nodeid for nodeid in planned if nodeid not in done]

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        data = getattr(report, REPORT_ATTRIBUTE, None)
        if data is not None and report.when == "call":
            # Kept in node order, not arrival order (xdist workers finish in any order), so every
            # number computed from the list, bootstrap intervals included, is the same run to run.
            result = CaseResult.from_dict(data)
            bisect.insort(self.state.results, result, key=result_order)

    def pytest_runtest_logfinish(self, nodeid: str) -> None:
        """A progress line every PROGRESS_EVERY_S seconds of a live run (not on xdist workers)."""
        config = self.config
        if not self.state.live or _is_xdist_worker(config) or config.get_verbosity() < 0:
            return
        if self.state.progress.calls and self.state.progress.due(PROGRESS_EVERY_S):
            reporter = config.pluginmanager.get_plugin("terminalreporter")
            if reporter is not None:
                reporter.ensure_newline()
                reporter.write_line(self.state.progress.line())

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        """xdist controller: remember the gate items a worker left for us (all workers list the same)."""
        for spec in getattr(node, "workeroutput", {}).get(DEFERRED_GATES, []):
            self.deferred.setdefault(spec["nodeid"], spec)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Any:
        result = yield
        if self.deferred and not session.shouldstop:
            self._report_deferred_gates(session)
        return result

    def _report_deferred_gates(self, session: pytest.Session) -> None:
        """Judge the gates the workers deferred and report each through the normal report hooks."""
        from pytest_llmgate.config import GateSettings
        from pytest_llmgate.gate import FAILED, PASSED

        hook = session.config.hook
        for nodeid, spec in self.deferred.items():
            check = judge_gate(
                session,
                spec["gate"],
                spec["scope"],
                spec["files"],
                GateSettings.from_dict(spec["settings"]),
                spec.get("candidate"),
            )
            self.state.gate_checks[nodeid] = check
            location = (spec["location"][0], spec["location"][1], spec["location"][2])
            hook.pytest_runtest_logstart(nodeid=nodeid, location=location)
            longrepr: Any = None
            if check.status == FAILED:
                longrepr = self.state.scrubber.text(gate_failure_text(check))
            elif check.status != PASSED:
                longrepr = (str(session.config.rootpath / location[0]), 1, f"Skipped: {check.summary}")
            for when, outcome in (("setup", "passed"), ("call", check.status), ("teardown", "passed")):
                report = pytest.TestReport(
                    nodeid=nodeid,
                    location=location,
                    keywords={},
                    outcome=outcome,  # type: ignore[arg-type]
                    longrepr=longrepr if when == "call" else None,
                    when=when,  # type: ignore[arg-type]
                    # junitxml reads the properties from the teardown report, the terminal from call
                    user_properties=self.state.scrubber.value(gate_properties(check)),
                )
                hook.pytest_runtest_logreport(report=report)
            hook.pytest_runtest_logfinish(nodeid=nodeid, location=location)

    def pytest_terminal_summary(self, terminalreporter: Any, config: pytest.Config) -> None:
        if (not self.state.results and not (self.interrupted and self.planned)) or _is_xdist_worker(config):
            return
        from pytest_llmgate.report.terminal import summary_lines

        settings = self.state.settings
        # Every baseline the case files named, not the first result's: files may differ.
        baselines = list(dict.fromkeys(result.baseline.model for result in self.state.results))
        baseline = ", ".join(baselines) or settings.baseline or "?"
        candidates = ", ".join(settings.candidates)
        title = f"llmgate: {candidates} vs {baseline}" if candidates else f"llmgate: {baseline}"
        terminalreporter.write_sep("=", title)
        report: Any = None
        try:
            # Built once: the summary ends with its checklist and verdict, the report files are it.
            report = self._build_report()
            lines = list(
                summary_lines(
                    self.state.results,
                    verbose=config.get_verbosity() >= 0,
                    gates=self.state.gate_checks,
                    not_run=self.not_run(),
                    report=report,
                )
            )
        except Exception as exc:  # a report bug must not hide the test outcomes or change the exit code
            lines = [
                f"llmgate: the summary could not be written ({type(exc).__name__}: {exc}); please report it"
            ]
        if self.state.live and not _is_xdist_worker(config):
            lines.append(self.state.progress.line())
        scrub = self.state.scrubber.text  # a reply that echoed the key is quoted in the summary
        for line in lines:
            # Markup follows pytest's own colour settings (--color, NO_COLOR, a pipe).
            terminalreporter.write_line(scrub(line), **_markup(line))
        for line in self._write_reports(report):
            terminalreporter.write_line(scrub(line))

    def _report_inputs(self) -> dict[str, Any]:
        """What the summary and the reports take besides the results: gate settings, the
        production timeout (llmgate.yaml) and the earlier run (--llm-compare-report)."""
        from pytest_llmgate.report.since import load_previous

        path = self.state.settings.compare_report
        return {
            "settings": resolve_gate(self.state),
            "production_timeout_s": self.state.project.production_timeout_s,
            "previous": None if path is None else load_previous(path),
        }

    def _build_report(self) -> Any:
        """The run's report (`report.model.RunReport`), from which the summary's ending and every
        report file are rendered."""
        from pytest_llmgate.report.model import build_report

        return build_report(
            self.state.results,
            self.state.gate_checks,
            candidate=", ".join(self.state.settings.candidates) or None,
            not_run=self.not_run(),
            **self._report_inputs(),
        )

    def _write_reports(self, report: Any = None) -> list[str]:
        """Write every --llm-report file (and the GitHub step summary); one line per file written.

        `report` is the one the summary was written from (None: build it here). A failure to
        write is said, never raised: the run's verdict is the tests' exit code.
        """
        settings = self.state.settings
        step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if not settings.reports and not step_summary:
            return []
        from pytest_llmgate.report.formats import render_format, render_report

        lines: list[str] = []
        try:
            report = report if report is not None else self._build_report()
        except Exception as exc:
            return [f"llmgate: reports not written ({type(exc).__name__}: {exc}); please report it"]
        for path in settings.reports:
            try:
                write_atomically(path, render_report(report, path, self.state.scrubber))
                lines.append(f"llmgate report: {path}")
            except Exception as exc:
                lines.append(f"llmgate: cannot write {path}: {type(exc).__name__}: {exc}")
        if step_summary:
            try:
                with open(step_summary, "a", encoding="utf-8") as handle:
                    handle.write(render_format(report, "markdown", self.state.scrubber) + "\n")
            except OSError as exc:
                lines.append(f"llmgate: cannot append to $GITHUB_STEP_SUMMARY ({step_summary}): {exc}")
        return lines


_MARKUP = {"  FAILED ": "red", "  PASSED ": "green", "  SKIPPED ": "yellow", "regressions (": "red"}


def _markup(line: str) -> dict[str, bool]:
    for prefix, colour in _MARKUP.items():
        if line.startswith(prefix):
            return {colour: True, "bold": prefix.startswith("  FAILED")}
    return {}


def write_atomically(path: Path, text: str) -> None:
    """Write `text` to `path` through a temporary file and a rename: never a half-written report."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = create_temp_beside(path)  # as any file is made (umask), not mkstemp's 0600
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def _import_sdk() -> None:
    try:
        import openai  # noqa: F401

        import pytest_llmgate.client  # noqa: F401  (httpx2, vcrpy)
    except Exception:  # the first case reports any import problem with its own message
        return
    # The SDK brings a few hundred thousand long-lived objects (modules, classes, type hints).
    # Every full collection of the cyclic GC would walk them all while holding the GIL, stalling
    # the pool's threads mid-call: about 5% of a 400-call live run (benchmarks/README.md).
    # Freezing moves what exists now out of the collector's reach; reference counting still frees
    # these objects, so the only cost is that cycles among them are never collected.
    gc.freeze()


def _is_xdist_controller(config: pytest.Config) -> bool:
    """The process that distributes tests (`-n N`) and never runs a case itself."""
    return not _is_xdist_worker(config) and bool(getattr(config.option, "numprocesses", None))


def _is_xdist_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def _register_tags(config: pytest.Config, settings: Settings) -> None:
    """Case tags as markers in `pytest --markers`, which collects nothing: the case files under
    the command line's paths (else testpaths, else the rootdir) are read for their tags."""
    import yaml

    roots = [Path(str(arg).split("::")[0]) for arg in config.args] or [settings.rootdir]
    tags: dict[str, None] = {}
    for root in roots:
        root = root if root.is_absolute() else settings.invocation_dir / root
        paths = (
            [root]
            if root.is_file()
            else [p for pattern in settings.file_patterns for p in root.rglob(pattern)]
        )
        for path in sorted(paths):
            if any(part.startswith(".") or part in ("node_modules", "venv") for part in path.parts[-4:-1]):
                continue
            try:
                document = yaml.safe_load(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, yaml.YAMLError):
                continue  # a broken file is reported when it is collected
            cases = document.get("cases") if isinstance(document, dict) else None
            for case in cases if isinstance(cases, list) else ():
                for tag in case.get("tags") or () if isinstance(case, dict) else ():
                    if isinstance(tag, str):
                        tags[tag] = None
    for tag in tags:
        config.addinivalue_line("markers", f"{tag}: llm case tag")
