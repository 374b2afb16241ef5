"""pytest collection of case files: one `CaseFileCollector` per file, one `CaseItem` per case,
then one `GateItem` per suite gate (`gate[quality]`, `gate[cost]`, ...) when a candidate is given.

With several candidates each case and gate is one item per candidate, named with a suffix
(`case-id[gpt-5.5]`, `gate[cost][gpt-5.5]`, so `-k gpt-5.5` selects one candidate), and the
candidate items of a case share one baseline run (`SharedRuns`)."""

from __future__ import annotations

import bisect
import dataclasses
import functools
import os
import shlex
import textwrap
import threading
import warnings
from collections.abc import Callable, Hashable, Iterable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

from pytest_llmgate.cases import Case, CaseFile, load_case_file
from pytest_llmgate.config import GateSettingError, GateSettings
from pytest_llmgate.errors import CaseFileError, LlmGateWarning
from pytest_llmgate.gate import FAILED, GATE_NAMES, PRICE_EXAMPLE, SKIPPED, GateCheck, evaluate_gate
from pytest_llmgate.keys import (
    CASE_FILES_KEY,
    COLLECTORS_KEY,
    GATE_MARKER,
    LLM_MARKER,
    NAMED_GATES_KEY,
    RESULT_KEY,
    SESSION_GATES,
    SHARED_KEY,
    session_state,
)
from pytest_llmgate.model.targets import Target, missing_live_keys, resolve_targets, with_target_prices
from pytest_llmgate.options import Settings
from pytest_llmgate.pricing import PriceTable
from pytest_llmgate.report.junit import case_properties
from pytest_llmgate.report.terminal import TOKENIZER_NOTE, WIDTH
from pytest_llmgate.results import CaseResult, ModelRun, Outcome, result_order
from pytest_llmgate.secrets import Scrubber
from pytest_llmgate.session import Job, LlmSession

PER_CASE_XFAIL = "regressed; judged at suite level by gate[quality]"


class CaseFailed(Exception):
    """A case's verdict is a failure; its message is the whole report of the item."""


class GateFailed(Exception):
    """A suite gate failed; its message is the gate's summary and details."""


def upcoming_items(item: pytest.Item) -> list[pytest.Item]:
    """Items this process will run from `item` on.

    Alone: the rest of the session's items. On an xdist worker: the items the controller has
    sent this worker so far (xdist's `WorkerInteractor.torun` queue; read under its lock), so a
    worker never calls the API for another worker's cases. Should xdist change that internal,
    the worker falls back to the item itself and the next one.
    """
    items = item.session.items
    if not hasattr(item.config, "workerinput"):
        try:
            start = items.index(item)
        except ValueError:
            return [item]
        return items[start:]
    for plugin in item.config.pluginmanager.get_plugins():
        queue: Any = getattr(plugin, "torun", None)
        if type(plugin).__name__ == "WorkerInteractor" and hasattr(queue, "lock"):
            try:
                with queue.lock() as pending:
                    indices = [plugin.nextitem_index, *pending]
                return [item, *(items[index] for index in indices if isinstance(index, int))]
            except Exception:  # an xdist internal changed: degrade to no lookahead
                break
    return [item]


def with_candidate(name: str, candidate: str | None, several: bool) -> str:
    """An item's name: `name`, suffixed `[candidate]` only when several candidates run."""
    return f"{name}[{candidate}]" if several and candidate is not None else name


class SharedRuns:
    """Runs several items need (a case's baseline run, one per candidate item): made once.

    Whichever item (or prefetch thread) asks first runs the job; the others wait for its result.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._futures: dict[Hashable, Future[ModelRun]] = {}

    def job(self, key: Hashable, make: Callable[[], ModelRun]) -> Callable[[], ModelRun]:
        def run() -> ModelRun:
            with self._lock:
                future = self._futures.get(key)
                owner = future is None
                if future is None:
                    future = self._futures[key] = Future()
            if owner:
                try:
                    future.set_result(make())
                except BaseException as exc:
                    future.set_exception(exc)
                    raise
            return future.result()

        return run


class PropertyScrubber:
    """JUnit properties scrubbed as `Scrubber.value` scrubs them, each distinct string once.

    A case's properties are mostly the same strings case after case (property names, model
    names, outcomes, tags), and numbers cannot hold a secret; running every string of every item
    through every secret pattern was 0.29 s of a 2,000-case replay. The answers are kept per
    scrubber: the session's is replaced (not changed) when it learns a key.
    """

    def __init__(self, scrubber: Scrubber) -> None:
        self.scrubber = scrubber
        self._texts: dict[str, str] = {}

    def __call__(self, properties: Iterable[tuple[str, object]]) -> list[tuple[str, object]]:
        return [(self._value(name), self._value(value)) for name, value in properties]

    def _value(self, value: Any) -> Any:
        kind = type(value)
        if kind is str:
            scrubbed = self._texts.get(value)
            if scrubbed is None:
                scrubbed = self._texts[value] = self.scrubber.text(value)
            return scrubbed
        if kind in _UNSCRUBBED:
            return value
        return self.scrubber.value(value)  # anything else (a str subclass, a structure) as before


_UNSCRUBBED = (int, float, bool, type(None))
PROPERTY_SCRUBBER_KEY = pytest.StashKey[PropertyScrubber]()


def property_scrubber(config: pytest.Config, scrubber: Scrubber) -> PropertyScrubber:
    """The session's `PropertyScrubber` for `scrubber` (a new one once the scrubber changed)."""
    cached = config.stash.get(PROPERTY_SCRUBBER_KEY, None)
    if cached is None or cached.scrubber is not scrubber:
        cached = config.stash[PROPERTY_SCRUBBER_KEY] = PropertyScrubber(scrubber)
    return cached


class CaseFileCollector(pytest.File):
    """An `llm_*.yaml` file; a broken file is one collection error naming file, line and field."""

    gate: GateSettings
    prices: PriceTable
    targets: dict[str, Target]
    param_policy: str | None

    _items: list[pytest.Item] | None = None

    def collect(self) -> Iterator[pytest.Item]:
        """The file's items, made once: a gate selected without its cases (`--lf`, a node id)
        asks the collector for the case items it must run (`case_items`)."""
        if self._items is None:
            self._items = list(self._collect())
        return iter(self._items)

    def case_items(self) -> list[CaseItem]:
        """Every case item of the file, whatever was selected; none when the file is broken."""
        try:
            items = list(self.collect())
        except self.CollectError:
            return []
        return [item for item in items if isinstance(item, CaseItem)]

    def _collect(self) -> Iterator[pytest.Item]:
        state = session_state(self.config)
        settings = state.settings
        try:
            case_file = load_case_file(self.path, settings.rootdir)
            self.gate = resolve_gate(state, case_file)
            prices = PriceTable.builtin().merged(state.project.pricing, origin="llmgate.yaml")
            prices = prices.merged(case_file.pricing, origin=self.path.name)
        except CaseFileError as exc:
            raise self.CollectError(exc.render()) from None
        baseline = settings.baseline or case_file.baseline
        if not baseline:
            raise self.CollectError(
                f"{self.path}: no baseline model. Set 'baseline: gpt-4o' at the top of the file, "
                "'llm_baseline = gpt-4o' in the pytest ini, or pass --llm-baseline=gpt-4o"
            )
        self.param_policy = case_file.param_policy
        self.targets = resolve_targets(
            (baseline, *settings.candidates, settings.judge), state.project.targets, case_file.targets
        )
        self.prices = with_target_prices(prices, self.targets)
        # Keys in variables of any name: scrubbed by value from everything written.
        keys = {target.api_key(os.environ) for target in self.targets.values()} - {None}
        if keys - set(state.scrubber.secrets):
            state.scrubber = state.scrubber.with_secrets(sorted(key for key in keys if key))
        if state.live:
            for target in missing_live_keys(self.targets, os.environ):
                raise self.CollectError(f"{self.path}: {target.missing_key_message()}")
        self._warn_unpriced(state, baseline, settings.candidates)
        several = settings.several_candidates
        for case in case_file.cases:
            for tag in case.tags:
                self.config.addinivalue_line("markers", f"{tag}: llm case tag")
            for candidate in settings.candidates or (None,):
                item = CaseItem.from_parent(
                    self,
                    name=with_candidate(case.id, candidate, several),
                    case=case,
                    baseline=baseline,
                    candidate=candidate,
                )
                for tag in case.tags:
                    item.add_marker(tag)
                item.add_marker(LLM_MARKER)
                yield item
        if gate_scope(state) != "file":
            return  # the session's gates judge this file with the others (`session_gate_items`)
        for candidate in settings.candidates:
            for name in GATE_NAMES:
                yield GateItem.from_parent(
                    self,
                    name=with_candidate(f"gate[{name}]", candidate, several),
                    gate_name=name,
                    settings=self.gate,
                    candidate=candidate if several else None,
                    scope="file",
                )

    def _warn_unpriced(self, state: LlmSession, baseline: str, candidates: tuple[str, ...]) -> None:
        for model in (baseline, *candidates):
            if model in state.warned_prices or self.prices.lookup(model) is not None:
                continue
            state.warned_prices.add(model)
            # Located at the case file (a stacklevel would point into this module).
            warnings.warn_explicit(
                LlmGateWarning(
                    f"no price for model {model!r}: cost shown as unknown (never 0), gate[cost] skipped; "
                    f"add to llmgate.yaml: pricing: {{{model}: {PRICE_EXAMPLE}}} (USD per 1M tokens)"
                ),
                LlmGateWarning,
                filename=str(self.path),
                lineno=1,
            )


def resolve_gate(state: LlmSession, case_file: CaseFile | None = None) -> GateSettings:
    """Built-in defaults < llmgate.yaml < the case file's gate: < --llm-gate.

    Without a case file: the thresholds of the whole run, for the reports and the routing.
    """
    project = state.project
    gate = GateSettings()
    try:
        if project.gate:
            gate = gate.merged(project.gate, str(project.path), project.gate_line)
        if case_file is not None:
            gate = gate.merged(case_file.gate, str(case_file.path), case_file.gate_line)
        return gate.merged(state.settings.gate_overrides, "--llm-gate")
    except GateSettingError as exc:  # validated at load time; kept for a clear message if not
        if case_file is None:
            raise
        raise CaseFileError(case_file.path, str(exc), field="gate") from None


class CaseItem(pytest.Item):
    def __init__(self, *, case: Case, baseline: str, candidate: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.case = case
        self.baseline = baseline
        self.candidate = candidate

    @property
    def case_nodeid(self) -> str:
        """The case's node id without a `[candidate]` suffix: the key its model runs share."""
        assert self.parent is not None
        return f"{self.parent.nodeid}::{self.case.id}"

    def model_jobs(self) -> list[Job]:
        """One unit of work per model (its calls and the judging of its replies), keyed by
        (case node id, model), baseline first; each is safe to run on any thread. With several
        candidates the baseline's job is shared by the case's candidate items (run once)."""
        from pytest_llmgate.runner import RunPlan, run_model

        state = session_state(self.config)
        settings = state.settings
        client, recorder = state.client_and_recorder()
        collector = self.parent
        assert isinstance(collector, CaseFileCollector)
        plan = RunPlan(
            baseline=self.baseline,
            candidate=self.candidate,
            cassette_dir=settings.cassette_dir,
            judge=settings.judge,
            samples=self.case.repeat or settings.repeat,
            prices=collector.prices,
            tokenizers=state.tokenizers(),
            context_windows=state.project.context_windows,
            project_root=settings.rootdir,
            targets=collector.targets,
            param_policy=settings.param_policy,
            file_param_policy=collector.param_policy,
        )
        self._plan = plan  # the pairwise grader, run after both models, uses it too
        case = self.case
        # Budgets bind the model under test: the candidate, or the baseline when it runs alone.
        roles = [(self.baseline, self.candidate is None)]
        if self.candidate is not None:
            roles.append((self.candidate, True))
        jobs: list[Job] = [
            (
                (self.case_nodeid, model),
                functools.partial(run_model, case, model, plan, client, recorder, judged_budgets=budgets),
            )
            for model, budgets in roles
        ]
        if settings.several_candidates:
            shared = self.config.stash.setdefault(SHARED_KEY, SharedRuns())
            key, job = jobs[0]
            jobs[0] = (key, shared.job(key, job))
        return jobs

    def _run(self, state: LlmSession) -> CaseResult:
        """The case's result from its model runs (prefetched on the pool in live runs)."""
        from pytest_llmgate.runner import combine, run_pairwise

        def upcoming() -> Iterator[list[Job]]:
            for item in upcoming_items(self):
                if isinstance(item, CaseItem) and not state.prefetched((item.case_nodeid, item.last_model)):
                    yield item.model_jobs()

        jobs = self.model_jobs()
        models = [self._plan.target(name).model for name in (self.baseline, self.candidate) if name]
        runs = state.model_runs(jobs, upcoming, models)
        parent = self.parent
        assert parent is not None
        candidate = runs[1] if len(runs) > 1 else None
        pairwise = run_pairwise(self.case, self._plan, *state.client_and_recorder(), runs[0], candidate)
        result = dataclasses.replace(
            combine(self.case, runs[0], candidate, pairwise), file_nodeid=parent.nodeid
        )
        state.add(result)
        return result

    @property
    def last_model(self) -> str:
        """The model whose job is queued last for this item (the candidate, else the baseline)."""
        return self.candidate or self.baseline

    def runtest(self) -> None:
        state = session_state(self.config)
        settings = state.settings
        collector = self.parent
        assert isinstance(collector, CaseFileCollector)
        result = self._run(state)
        self.stash[RESULT_KEY] = result
        self.user_properties.extend(property_scrubber(self.config, state.scrubber)(case_properties(result)))
        self._warn_notes(state, result)
        if result.outcome in (Outcome.PASSED, Outcome.IMPROVEMENT):
            return
        if result.outcome == Outcome.ALREADY_FAILING and not settings.strict:
            pytest.xfail("already failing on baseline")
        if result.outcome == Outcome.ERROR:
            raise CaseFailed(self._error_message(result, settings))
        if result.outcome == Outcome.REGRESSION and collector.gate.per_case == "report":
            if not self.case.critical:
                pytest.xfail(PER_CASE_XFAIL)
            raise CaseFailed(
                f"case {self.case.id!r} (critical: its regression always fails): {result.message}"
            )
        raise CaseFailed(f"case {self.case.id!r}: {result.message}")

    def _warn_notes(self, state: LlmSession, result: CaseResult) -> None:
        """Each distinct tokenizer note once per session, as a warning pytest summarises.

        Here on the main thread, where pytest catches warnings (the model runs may have been
        prefetched on pool threads); at the case file, line 1, so xdist workers' copies group.
        """
        for note in result.notes:
            if note.startswith(TOKENIZER_NOTE) and note not in state.warned_notes:
                state.warned_notes.add(note)
                warnings.warn_explicit(
                    LlmGateWarning(note), LlmGateWarning, filename=str(self.path), lineno=1
                )

    def _error_message(self, result: CaseResult, settings: Settings) -> str:
        lines = [f"case {self.case.id!r} could not be judged:"]
        for run in result.runs:
            for sample in run.samples:
                if sample.error is None:
                    continue
                kind = sample.error_kind or ""
                if kind.startswith("recording-"):
                    lines.append(f"  {run.model}: {_recording_problem(kind, sample.error, settings)}")
                    mode = "once" if kind == "recording-missing" else "all"
                    lines.append(f"  Record it: {self.record_command(mode)}")
                else:
                    lines.append(f"  {run.model}: {kind} error: {sample.error}")
        return "\n".join(lines)

    def record_command(self, mode: str) -> str:
        settings = session_state(self.config).settings
        # Every flag that changes what is recorded: pasted as printed, the command must make
        # the very requests this run looked for (same samples, endpoint, judge, parameters).
        parts = ["pytest", self.nodeid, f"--llm-baseline={self.baseline}"]
        if self.candidate:
            parts.append(f"--llm-candidate={self.candidate}")
        if settings.judge:
            parts.append(f"--llm-judge={settings.judge}")
        if settings.repeat != 1:
            parts.append(f"--llm-repeat={settings.repeat}")
        if settings.base_url:
            parts.append(f"--llm-base-url={settings.base_url}")
        if settings.param_policy:
            parts.append(f"--llm-param-policy={settings.param_policy}")
        if settings.cassette_dir is not None:
            parts.append(f"--llm-cassette-dir={settings.cassette_dir}")
        parts.append(f"--llm-record-mode={mode}")
        return shlex.join(parts)

    def repr_failure(
        self,
        excinfo: pytest.ExceptionInfo[BaseException],
        style: Any = None,
    ) -> str | Any:
        if isinstance(excinfo.value, CaseFailed):
            return session_state(self.config).scrubber.text(str(excinfo.value))
        return scrubbed_repr(self, super().repr_failure(excinfo, style=style))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.case.line - 1, f"llm case: {self.case.id}"


def scrubbed_repr(item: pytest.Item, longrepr: Any) -> Any:
    """An unexpected exception's traceback as pytest renders it, or as scrubbed text if it shows
    a secret (a reply quoted in an exception message, a key among `--showlocals`)."""
    text = str(longrepr)
    scrubbed = session_state(item.config).scrubber.text(text)
    return longrepr if scrubbed == text else scrubbed


def _recording_problem(kind: str, detail: str, settings: Settings) -> str:
    if kind == "recording-missing":
        return f"no recording ({detail}); --llm-record-mode={settings.record_mode} does not call the API"
    if kind == "recording-stale":
        return (
            f"the recording is stale ({detail}): the prompt, params or overrides were edited after recording"
        )
    return f"the recording has too few interactions ({detail})"


class GateItem(pytest.Item):
    """One suite gate, run after every case item (see `plugin.py` for xdist).

    Scope `session`: a child of the session with the node id `llmgate::gate[cost]`, judging every
    case of the run. Scope `file`: a child of its case file, judging that file's cases. Either
    way a gate judges its whole scope: the cases that did not run as items (deselected by `--lf`,
    `-k` or a node id) are run by the gate itself, so its verdict never depends on the selection.
    """

    def __init__(
        self,
        *,
        gate_name: str,
        settings: GateSettings,
        candidate: str | None = None,
        scope: str = "file",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.gate_name = gate_name
        self.settings = settings
        self.candidate = candidate  # set when several candidates run: the gate judges this one's
        self.scope = scope
        self.add_marker(GATE_MARKER)
        self.add_marker(LLM_MARKER)

    @property
    def case_files(self) -> list[str]:
        """Node ids of the case files this gate judges."""
        if self.scope == "file":
            assert self.parent is not None
            return [self.parent.nodeid]
        known: dict[str, Path] = self.config.stash.get(CASE_FILES_KEY, {})
        return list(known)

    def runtest(self) -> None:
        state = session_state(self.config)
        check = judge_gate(
            self.session, self.gate_name, self.scope, self.case_files, self.settings, self.candidate
        )
        state.gate_checks[self.nodeid] = check
        self.user_properties.extend(state.scrubber.value(gate_properties(check)))
        raise_for(check)

    def repr_failure(
        self,
        excinfo: pytest.ExceptionInfo[BaseException],
        style: Any = None,
    ) -> str | Any:
        if isinstance(excinfo.value, GateFailed):
            return session_state(self.config).scrubber.text(str(excinfo.value))
        return scrubbed_repr(self, super().repr_failure(excinfo, style=style))

    def reportinfo(self) -> tuple[Path, int, str]:
        where = SESSION_GATES if self.scope == "session" else self.path.name
        return self.path, 0, f"llm gate: {where}::{self.name}"


def gate_scope(state: LlmSession) -> str:
    """--llm-gate-scope, else ini llm_gate_scope, else llmgate.yaml's gate_scope, else session."""
    return state.settings.gate_scope or state.project.gate_scope or "session"


def session_gate_items(session: pytest.Session) -> list[GateItem]:
    """The session's gates (one per gate and candidate), children of the session itself.

    Made before `-k`, `-m` and `--lf` select (they then apply as to any item); none when the
    scope is `file`, no candidate runs, no case file was collected, or the command line names
    node ids (`file.yaml::case`): selecting one case must not pull in the whole suite. When it
    names session gates (`llmgate::gate[cost]`, see `plugin._take_named_gates`), those are made.
    """
    config = session.config
    state = session_state(config)
    settings = state.settings
    named = config.stash.get(NAMED_GATES_KEY, None)
    if (
        gate_scope(state) != "session"
        or not settings.candidates
        or not config.stash.get(CASE_FILES_KEY, None)
        or (named is None and any("::" in str(arg) for arg in config.args))
    ):
        return []
    gate_settings = resolve_gate(state)
    several = settings.several_candidates
    return [
        GateItem.from_parent(
            session,
            name=name,
            nodeid=f"{SESSION_GATES}::{name}",
            gate_name=gate,
            settings=gate_settings,
            candidate=candidate if several else None,
            scope="session",
        )
        for candidate, gate, name in session_gates(settings)
        if named is None or f"{SESSION_GATES}::{name}" in named.node_ids
    ]


def session_gates(settings: Settings) -> list[tuple[str, str, str]]:
    """(candidate, gate, item name) of each session gate the run has: `gate[cost]`, or
    `gate[cost][o4-mini]` with several candidates (its node id is `llmgate::` and the name)."""
    several = settings.several_candidates
    return [
        (candidate, gate, with_candidate(f"gate[{gate}]", candidate, several))
        for candidate in settings.candidates
        for gate in GATE_NAMES
    ]


def judge_gate(
    session: pytest.Session,
    name: str,
    scope: str,
    files: list[str],
    settings: GateSettings,
    candidate: str | None,
) -> GateCheck:
    """Run the cases of `files` that have no result yet, then judge the gate over all of them."""
    state = session_state(session.config)
    run_missing_cases(session, files, candidate)
    wanted = set(files)
    results = [result for result in state.results if result.file_nodeid in wanted]
    check = evaluate_candidate_gate(name, results, settings, candidate)
    if scope == "session" and len({result.file_nodeid for result in results}) > 1:
        check = dataclasses.replace(
            check, details=(*check.details, *per_file_lines(name, results, settings, candidate))
        )
    return check


def per_file_lines(
    name: str, results: list[CaseResult], settings: GateSettings, candidate: str | None
) -> list[str]:
    """The session gate's breakdown: the same gate over each file's cases, one line per file."""
    files = list(dict.fromkeys(result.file_nodeid for result in results))
    lines = []
    for file in files:
        check = evaluate_candidate_gate(
            name, [result for result in results if result.file_nodeid == file], settings, candidate
        )
        lines.append(f"{file}: {check.status}: {check.summary}")
    return lines


def run_missing_cases(session: pytest.Session, files: list[str], candidate: str | None) -> None:
    """Run, outside any item, the cases of `files` (for `candidate`, or all) that have no result.

    A gate re-run by `--lf` or selected by its node id needs the cases it judges; they are run
    (replayed, or called in a live run) as their items would, and join the summary and reports.
    On an xdist controller, which collects nothing, the case files are collected here.
    """
    state = session_state(session.config)
    known = session.config.stash.setdefault(CASE_FILES_KEY, {})
    collectors = session.config.stash.setdefault(COLLECTORS_KEY, {})
    done = {
        (result.file_nodeid, result.case_id, result.candidate.model if result.candidate else None)
        for result in state.results
    }
    for file in files:
        collector = collectors.get(file)
        if collector is None:
            path = known.get(file, session.config.rootpath / file)
            if not path.is_file():
                continue
            collector = collectors[file] = CaseFileCollector.from_parent(session, path=path, nodeid=file)
        for item in collector.case_items():
            if candidate is not None and item.candidate != candidate:
                continue
            if (file, item.case.id, item.candidate) in done:
                continue
            result = item._run(state)
            bisect.insort(state.results, result, key=result_order)
            done.add((file, item.case.id, item.candidate))


def evaluate_candidate_gate(
    name: str, results: list[CaseResult], settings: GateSettings, candidate: str | None
) -> GateCheck:
    """The gate over one candidate's results (`candidate` None: the only candidate)."""
    if candidate is None:
        return evaluate_gate(name, results, settings)
    mine = [
        result for result in results if result.candidate is not None and result.candidate.model == candidate
    ]
    return dataclasses.replace(evaluate_gate(name, mine, settings), candidate=candidate)


def gate_failure_text(check: GateCheck) -> str:
    """The gate's summary and details, wrapped at WIDTH columns with indented continuations."""

    def wrap(text: str, indent: str) -> list[str]:
        # Long words (paths, flags) stay whole: a broken --llm-gate flag cannot be pasted.
        return textwrap.wrap(
            text,
            WIDTH,
            initial_indent=indent,
            subsequent_indent=indent + "    ",
            break_long_words=False,
            break_on_hyphens=False,
        ) or [indent + text]

    lines = wrap(f"{check.item_name} failed: {check.summary}", "")
    for detail in check.details:
        lines.extend(wrap(detail, "  "))
    return "\n".join(lines)


def raise_for(check: GateCheck) -> None:
    if check.status == FAILED:
        raise GateFailed(gate_failure_text(check))
    if check.status == SKIPPED:
        # The item's location (the case file), not this line, is what `-rs` should show.
        raise pytest.skip.Exception(check.summary, _use_item_location=True)


def gate_properties(check: GateCheck) -> list[tuple[str, object]]:
    """JUnit properties of a gate: its status, summary and numbers."""
    properties: list[tuple[str, object]] = [
        ("llm_gate_status", check.status),
        ("llm_gate_summary", check.summary),
    ]
    properties.extend((f"llm_{key}", value) for key, value in check.metrics.items() if value is not None)
    return properties
