"""pytest hooks of pytest-llmgate: options, collection of case files, result transport, summary.

Cheap to import, and cheap to run when no case file is collected: this module imports only the
options and the shared names (`keys.py`) at start; the case parser, the gates, the session
state, the SDK and the reports are imported by the hooks that first need them, and the per-item
hooks return at once while no case item exists (`_items_module`).
"""

from __future__ import annotations

import atexit
import bisect
import contextlib
import fnmatch
import functools
import gc
import glob
import json
import logging
import os
import sys
import threading
import time
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pytest

from pytest_llmgate.keys import (
    CASE_FILES_KEY,
    COLLECTORS_KEY,
    CONFIGURED_KEY,
    GATE_MARKER,
    LLM_MARKER,
    NAMED_GATES_KEY,
    PROJECT_FILE,
    REPORT_ATTRIBUTE,
    RESULT_KEY,
    SESSION_GATES,
    STATE_KEY,
    Configured,
    NamedGates,
    current_scrubber,
    session_state,
)
from pytest_llmgate.options import Settings, add_options

if TYPE_CHECKING:
    from pytest_llmgate.config import ProjectConfig
    from pytest_llmgate.results import CaseResult
    from pytest_llmgate.session import LlmSession

# Key of xdist's workeroutput under which a worker lists the gate items it left to the controller.
DEFERRED_GATES = "llmgate_deferred_gates"
# Keys of a serialized report (xdist transport) holding the result dict and the JUnit properties
# as JSON text: one string each instead of hundreds of objects for execnet to write and read.
PACKED_RESULT = "llmgate_result_json"
PACKED_PROPERTIES = "llmgate_user_properties_json"
PROGRESS_EVERY_S = 10.0
COLLECTOR_NAME = "llmgate-results"
ITEMS_MODULE = "pytest_llmgate.items"


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    _skip_assertion_rewriting(config)
    settings = Settings.from_config(config)
    project = _load_project(settings.rootdir)
    _take_named_gates(config, settings, project)
    config.addinivalue_line("markers", f"{GATE_MARKER}: a suite gate (gate[quality], gate[cost], ...)")
    config.addinivalue_line("markers", f"{LLM_MARKER}: every llm case and suite gate item")
    if config.getoption("markers", False):
        from pytest_llmgate.summary import register_tags

        register_tags(config, settings)
    config.stash[CONFIGURED_KEY] = Configured(
        settings=settings, project=project, environ=os.environ, started=time.monotonic()
    )
    if _is_live(settings) and not _is_xdist_controller(config):
        # A live run will need the SDK; importing it (~0.5 s) overlaps with collection this way.
        threading.Thread(target=_import_sdk, name="llmgate-import", daemon=True).start()
    collector = ResultCollector(config)
    config.pluginmanager.register(collector, COLLECTOR_NAME)
    # Cleanups run last in, first out: registered here, before pytest's own plugins register
    # theirs at configure (entry-point plugins are configured first), this one runs after
    # unraisableexception's exit collection, which a frozen session makes cheap.
    config.add_cleanup(collector.release_gc)


def _skip_assertion_rewriting(config: pytest.Config) -> None:
    """Take this package off pytest's list of modules to rewrite for assertion introspection.

    pytest marks every top-level package of a distribution with a `pytest11` entry point
    (`Config._mark_plugins_for_rewrite`; for an editable install, the entry point's package), so
    each module of ours imported after start-up was read, parsed and compiled by pytest's import
    hook, and under PYTHONDONTWRITEBYTECODE (no cached rewritten module) on every run: 0.2 to 0.3 s
    of a 2,000-case replay. Its modules are not test code: their asserts are invariants, fine with
    plain messages. The `PYTEST_DONT_REWRITE` docstring marker does not help (the hook parses the
    module to find it), and pytest has no public way to unmark a name, so this edits the hook's
    private set; should pytest change it, nothing happens and modules are rewritten as before.
    """
    hook = getattr(config.pluginmanager, "rewrite_hook", None)
    marked = getattr(hook, "_must_rewrite", None)
    if isinstance(marked, set) and "pytest_llmgate" in marked:
        marked.discard("pytest_llmgate")
        cache = getattr(hook, "_marked_for_rewrite_cache", None)
        if isinstance(cache, dict):
            cache.clear()


def _take_named_gates(config: pytest.Config, settings: Settings, project: ProjectConfig | None) -> None:
    """Session gates named on the command line, `pytest "llmgate::gate[cost]"`: taken out of the
    arguments pytest collects from (`llmgate` is no path) and kept, so that collection makes them
    and selects them; named alone, they are all that runs (each gate runs the cases it judges).
    A name that is no gate of this run fails here, before any model is called."""
    prefix = f"{SESSION_GATES}::"
    taken = {str(arg): str(arg).removeprefix("./") for arg in config.args}  # `./llmgate::...` too
    named = [name for name in taken.values() if name.startswith(prefix)]
    if not named:
        return
    scope = settings.gate_scope or (project.gate_scope if project is not None else None) or "session"
    if scope != "session":
        raise pytest.UsageError(
            f"{named[0]} names a session gate, but the gate scope is {scope}: name a case file's gate "
            "instead (pytest llm_invoices.yaml::gate[cost]) or run with --llm-gate-scope=session"
        )
    if not settings.candidates:
        raise pytest.UsageError(
            f"{named[0]} names a session gate: gates compare a candidate, add --llm-candidate=MODEL"
        )
    from pytest_llmgate.items import session_gates

    gates = [prefix + name for _, _, name in session_gates(settings)]
    unknown = [arg for arg in named if arg not in gates]
    if unknown:
        raise pytest.UsageError(
            f"{unknown[0]} is not a session gate of this run; its gates are: {', '.join(gates)}"
        )
    rest = [arg for arg in config.args if taken[str(arg)] not in named]
    config.stash[NAMED_GATES_KEY] = NamedGates(frozenset(named), only=not rest)
    config.args = rest or _default_args(config)


def _default_args(config: pytest.Config) -> list[str]:
    """What pytest collects from when given no argument (as its `Config._decide_args` does):
    `testpaths` from the rootdir (their matches; as module names under --pyargs), else the
    invocation folder."""
    invocation = config.invocation_params.dir
    if invocation == config.rootpath:
        testpaths = [str(path) for path in config.getini("testpaths")]
        if config.option.pyargs and testpaths:
            return testpaths
        found = [match for pattern in testpaths for match in sorted(glob.iglob(pattern, recursive=True))]
        if found:
            return found
    return [str(invocation)]


def _load_project(rootdir: Path) -> ProjectConfig | None:
    """llmgate.yaml, read now so that a broken one fails before collection; None when absent
    (the defaults, made with the session state: no YAML parser imported for nothing)."""
    if not (rootdir / PROJECT_FILE).is_file():
        return None
    from pytest_llmgate.config import ProjectConfig
    from pytest_llmgate.errors import CaseFileError

    try:
        return ProjectConfig.load(rootdir)
    except CaseFileError as exc:
        raise pytest.UsageError(exc.render()) from None


def pytest_sessionstart(session: pytest.Session) -> None:
    """Scrub secrets from every log record pytest writes (captured logs in failure reports,
    `--log-file`, live logging): the logging plugin's handlers exist from here on."""
    config = session.config
    logging_plugin = config.pluginmanager.get_plugin("logging-plugin")
    log_filter = _LogScrubbing(config)
    for name in ("caplog_handler", "report_handler", "log_file_handler", "log_cli_handler"):
        handler = getattr(logging_plugin, name, None)
        if isinstance(handler, logging.Handler):
            handler.addFilter(log_filter)


class _LogScrubbing(logging.Filter):
    """`secrets.ScrubbingLogFilter`, made on the first log record: a run that logs nothing does
    not import the scrubber."""

    def __init__(self, config: pytest.Config) -> None:
        super().__init__("llmgate-secrets")
        self._config = config
        self._filter: logging.Filter | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        if self._filter is None:
            from pytest_llmgate.secrets import ScrubbingLogFilter

            config = self._config
            self._filter = ScrubbingLogFilter(lambda: current_scrubber(config))
        return bool(self._filter.filter(record))


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(STATE_KEY, None)
    if state is not None:
        state.close()


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.suffix not in (".yaml", ".yml"):
        return None
    config = parent.config
    patterns = config.stash[CONFIGURED_KEY].settings.file_patterns
    if any(fnmatch.fnmatch(file_path.name, pattern) for pattern in patterns):
        from pytest_llmgate.items import CaseFileCollector

        session_state(config)
        collector: CaseFileCollector = CaseFileCollector.from_parent(parent, path=file_path)
        # Known even when `--lf` then skips the file: a gate may need to run its cases.
        config.stash.setdefault(CASE_FILES_KEY, {})[collector.nodeid] = file_path
        config.stash.setdefault(COLLECTORS_KEY, {})[collector.nodeid] = collector
        return collector
    return None


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Cassette folders are not searched for tests.

    2,000 cases leave 2,000 folders and 4,000 cassettes beside their case file; pytest walking
    them for test files took about a second of a replay. Skipped: the `--llm-cassette-dir`, and a
    `cassettes` folder beside a case file (where cassettes go by default).
    """
    settings = config.stash[CONFIGURED_KEY].settings
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
    if CASE_FILES_KEY not in config.stash:
        return  # no case file collected: no case or gate item, nothing to count or order
    from pytest_llmgate.items import CaseItem, GateItem

    state = session_state(config)
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


def _items_module() -> ModuleType | None:
    """`pytest_llmgate.items` once any case file was collected in this process, else None: no
    item can be a case or gate item before then, so the per-item hooks return at once."""
    return sys.modules.get(ITEMS_MODULE)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> bool | None:
    """An xdist worker reports nothing for a gate: the controller judges and reports it once
    every worker is done (it alone sees every case's result)."""
    items = _items_module()
    if items is not None and isinstance(item, items.GateItem) and _is_xdist_worker(item.config):
        return True
    return None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """The case's result rides on its call report as a dict (what xdist ships and report
    plugins read). Outside a worker the collector keeps the result object itself, so a result
    is held once as an object and once as that dict, not rebuilt from the dict."""
    report = yield
    if call.when == "call" and RESULT_KEY in item.stash:
        result = item.stash[RESULT_KEY]
        del item.stash[RESULT_KEY]
        setattr(report, REPORT_ATTRIBUTE, result.to_dict())
        collector = item.config.pluginmanager.get_plugin(COLLECTOR_NAME)
        if isinstance(collector, ResultCollector) and not collector.worker:
            collector.add_local(report.nodeid, result)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_report_to_serializable(config: pytest.Config, report: Any) -> Any:
    """xdist worker: the result dict and the JUnit properties of a case or gate item's report
    travel as JSON text, which the controller turns back into the same values.

    execnet writes and reads a nested structure object by object in Python: the result dict and
    the properties are a few hundred objects per report, JSON one string made and parsed in C
    (execnet's writing was a fifth of a worker's time at 2,000 cases). Only on workers: elsewhere
    the serialized form is what report writers such as pytest-reportlog show, and stays as it was.
    """
    data = yield
    if isinstance(data, dict) and _is_xdist_worker(config):
        pack_for_transport(data)
    return data


@pytest.hookimpl(tryfirst=True)
def pytest_report_from_serializable(config: pytest.Config, data: dict[str, Any]) -> None:
    """xdist controller: unpack what a worker packed before pytest makes the report (returning
    None lets pytest's own hook make it)."""
    if PACKED_RESULT in data or PACKED_PROPERTIES in data:
        unpack_from_transport(data)


_JSON_SCALARS = (str, int, float, bool, type(None))


def pack_for_transport(data: dict[str, Any]) -> None:
    """A serialized report of a case or gate item (marked `llm`) with its result dict and its
    (name, scalar) properties as JSON text; any other report is left as it is."""
    keywords = data.get("keywords")
    if not isinstance(keywords, dict) or LLM_MARKER not in keywords:
        return
    result = data.get(REPORT_ATTRIBUTE)
    if isinstance(result, dict):
        # `CaseResult.to_dict` is JSON by design (the JSON report is made of it).
        data[PACKED_RESULT] = json.dumps(result)
        del data[REPORT_ATTRIBUTE]
    properties = data.get("user_properties")
    if (
        properties
        and isinstance(properties, list)
        and all(
            type(pair) is tuple and len(pair) == 2 and type(pair[0]) is str and type(pair[1]) in _JSON_SCALARS
            for pair in properties
        )
    ):
        # Such pairs come back from JSON unchanged (made tuples again by `unpack_from_transport`).
        data[PACKED_PROPERTIES] = json.dumps(properties)
        data["user_properties"] = []


def unpack_from_transport(data: dict[str, Any]) -> None:
    """The inverse of `pack_for_transport`, in place."""
    packed = data.pop(PACKED_RESULT, None)
    if packed is not None:
        data[REPORT_ATTRIBUTE] = json.loads(packed)
    packed = data.pop(PACKED_PROPERTIES, None)
    if packed is not None:
        data["user_properties"] = [(name, value) for name, value in json.loads(packed)]


def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config) -> Any:
    """`PASSED (params adapted)` in -v: the model was sent other parameters than the case wrote
    (a reasoning model under `param_policy: adapt`), a fact to see on the case itself."""
    data = getattr(report, REPORT_ATTRIBUTE, None)
    if report.when != "call" or not isinstance(data, dict) or hasattr(report, "wasxfail"):
        return None
    from pytest_llmgate.model.params import ADAPTED_NOTE

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
    session state without module-level globals. The state itself is made on first use (see
    `keys.session_state`): a run that collects no case file never makes it.
    """

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.settings: Settings = config.stash[CONFIGURED_KEY].settings
        self.worker = _is_xdist_worker(config)
        self.deferred: dict[str, dict[str, Any]] = {}
        self.interrupted = False  # Ctrl-C: the reports say so and list what did not run
        self.planned: list[str] = []  # node ids of the case and gate items this session will run
        self.froze_gc = False
        self._local: set[str] = set()  # node ids whose result was kept at makereport

    @property
    def state(self) -> LlmSession:
        return session_state(self.config)

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(self, session: pytest.Session, items: list[pytest.Item]) -> None:
        """The session's gates join the items before `-k`, `-m` and `--lf` select (tryfirst);
        the module's hook (trylast) then puts every gate after the cases."""
        config = session.config
        if CASE_FILES_KEY in config.stash:  # else no session gate (`session_gate_items` makes none)
            from pytest_llmgate.items import session_gate_items

            items.extend(session_gate_items(session))
        named = config.stash.get(NAMED_GATES_KEY, None)
        if named is None:
            return
        missing = named.node_ids - {item.nodeid for item in items}
        if missing:
            # A named gate that was not made would be a silent pass (or "no tests ran").
            if self.worker:  # the controller says so (`pytest_xdist_node_collection_finished`)
                config.hook.pytest_deselected(items=list(items))
                items[:] = []
                return
            raise pytest.UsageError(self._no_gate(min(missing)))
        if named.only:
            # `pytest "llmgate::gate[cost]"` alone: that gate is what was asked for.
            dropped = [item for item in items if item.nodeid not in named.node_ids]
            if dropped:
                config.hook.pytest_deselected(items=dropped)
                items[:] = [item for item in items if item.nodeid in named.node_ids]

    def pytest_keyboard_interrupt(self) -> None:
        self.interrupted = True
        # No new model call after Ctrl-C: queued jobs are dropped now, not at unconfigure (the
        # pool would go on calling, and billing, while pytest writes its summary).
        state = self.config.stash.get(STATE_KEY, None)
        if state is not None:
            state.stop_prefetching()

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        items = _items_module()
        if items is None or CASE_FILES_KEY not in session.config.stash:
            return
        kinds = (items.CaseItem, items.GateItem)
        self.planned.extend(item.nodeid for item in session.items if isinstance(item, kinds))
        if self.planned and not _is_live(self.settings):
            # Thousands of items, cases and their parsed YAML live until the session ends; every
            # full collection of the cyclic GC walked them all again (a fifth of a 2,000-case
            # replay, and pytest's two collections at exit). Frozen, they are skipped; reference
            # counting still frees them, and `release_gc` gives them back at the very end.
            # Replay only: a live run waits on the network, and freezing there measured no better.
            gc.freeze()
            self.froze_gc = True

    @pytest.hookimpl(trylast=True)
    def pytest_unconfigure(self) -> None:
        """Freeze again what the run made and keeps till the end (results, reports, the terminal's
        statistics), so pytest's second collection at exit (unraisableexception's, at config
        cleanup) skips them: 0.3 s at 2,000 cases. Also on an xdist controller, which collects
        nothing but holds every result and report.

        Not before: unraisableexception's collection at unconfigure (an earlier hook than this
        trylast one) must still find the garbage the user's tests left, to report the errors of
        its finalizers as warnings. Frozen, that garbage would be skipped and the warnings lost.
        """
        state = self.config.stash.get(STATE_KEY, None)
        if self.froze_gc or (state is not None and state.results):
            gc.freeze()
            self.froze_gc = True

    def release_gc(self) -> None:
        """Config cleanup, after pytest's own exit collections: what was frozen is collectable
        again, so a session run inside another (pytester) leaves nothing out of the GC's reach.

        The process's own exit is another matter: the interpreter's final collections walked
        every object still alive once more, about a second after a 2,000-case run (0.3 s after
        a plain pytest run of 4,000 tests). `_freeze_at_exit` spares them that.
        """
        if self.froze_gc:
            self.froze_gc = False
            gc.unfreeze()
            _freeze_at_exit()

    def _no_gate(self, nodeid: str) -> str:
        return (
            f"{nodeid}: no case file ({', '.join(self.settings.file_patterns)}) was collected from "
            f"{', '.join(str(arg) for arg in self.config.args)}, so there is no session gate to run; "
            "run it from the folder holding the case files, or name them"
        )

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        """xdist controller: it collects nothing itself, so it learns the items from the workers."""
        named = self.config.stash.get(NAMED_GATES_KEY, None)
        if named is not None and not named.node_ids <= set(ids):
            pytest.exit(self._no_gate(min(named.node_ids - set(ids))), returncode=pytest.ExitCode.USAGE_ERROR)
        known = set(self.planned)
        patterns = self.settings.file_patterns
        for nodeid in ids:  # only case files' items: the session may hold ordinary tests too
            name = nodeid.split("::", 1)[0].rsplit("/", 1)[-1]
            if nodeid not in known and any(fnmatch.fnmatch(name, pattern) for pattern in patterns):
                known.add(nodeid)
                self.planned.append(nodeid)

    def not_run(self) -> list[str] | None:
        """The case and gate items an interrupted session never ran; None when not interrupted."""
        if not self.interrupted:
            return None
        from pytest_llmgate.items import with_candidate

        several = self.settings.several_candidates
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

    def add_local(self, nodeid: str, result: CaseResult) -> None:
        """A result made in this process (see `pytest_runtest_makereport`)."""
        from pytest_llmgate.results import result_order

        self._local.add(nodeid)
        # Kept in node order, not arrival order (xdist workers finish in any order), so every
        # number computed from the list, bootstrap intervals included, is the same run to run.
        bisect.insort(self.state.results, result, key=result_order)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        data = getattr(report, REPORT_ATTRIBUTE, None)
        # An xdist worker sends its results to the controller, which alone judges the gates and
        # writes the summary and reports: the worker keeps no copy.
        if data is None or report.when != "call" or self.worker:
            return
        if report.nodeid in self._local:
            self._local.discard(report.nodeid)  # kept already, as the object it was made as
            return
        from pytest_llmgate.results import CaseResult, result_order

        bisect.insort(self.state.results, CaseResult.from_dict(data), key=result_order)

    def pytest_runtest_logfinish(self, nodeid: str) -> None:
        """A progress line every PROGRESS_EVERY_S seconds of a live run (not on xdist workers)."""
        config = self.config
        if not _is_live(self.settings) or self.worker or config.get_verbosity() < 0:
            return
        state = config.stash.get(STATE_KEY, None)
        if state is not None and state.progress.calls and state.progress.due(PROGRESS_EVERY_S):
            reporter = config.pluginmanager.get_plugin("terminalreporter")
            if reporter is not None:
                reporter.ensure_newline()
                reporter.write_line(state.progress.line())

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        """xdist controller: remember the gate items a worker left for us (all workers list the same)."""
        for spec in getattr(node, "workeroutput", {}).get(DEFERRED_GATES, []):
            self.deferred.setdefault(spec["nodeid"], spec)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Any:
        result = yield
        if self.deferred and not session.shouldstop:
            from pytest_llmgate.summary import report_deferred_gates

            report_deferred_gates(self, session)
        return result

    def pytest_terminal_summary(self, terminalreporter: Any, config: pytest.Config) -> None:
        if _is_xdist_worker(config):
            return
        state = config.stash.get(STATE_KEY, None)  # None: no case file, no result (not made here)
        if not (state is not None and state.results) and not (self.interrupted and self.planned):
            return
        from pytest_llmgate.summary import write_summary

        write_summary(self, terminalreporter, config)


@functools.cache
def _freeze_at_exit() -> None:
    """Freeze whatever is alive when the interpreter exits (once per process, atexit).

    Interpreter shutdown frees objects by reference counting anyway; the collections it runs on
    top only reclaim reference cycles, whose finalizers Python does not promise to run at exit.
    Registered only in a process whose session ran llm cases, and run only at its very end, so a
    session inside another (pytester) changes nothing until that outer process exits.
    """
    atexit.register(gc.freeze)


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


def _is_live(settings: Settings) -> bool:
    """Whether calls may reach the API (any record mode but `none`), as `LlmSession.live` says,
    known before the session state is made."""
    return settings.record_mode != "none"


def _is_xdist_controller(config: pytest.Config) -> bool:
    """The process that distributes tests (`-n N`) and never runs a case itself."""
    return not _is_xdist_worker(config) and bool(getattr(config.option, "numprocesses", None))


def _is_xdist_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")
