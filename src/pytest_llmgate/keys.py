"""Names the plugin's modules share (stash keys, markers, the report attribute) and the run's state.

A module of their own so that the entry module (`plugin.py`) can use them without importing
`items`, which brings the case parser, the gates, statistics and the terminal report: a pytest
run that collects no case file imports only `plugin`, `options`, `secrets` and this.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import pytest

if TYPE_CHECKING:
    from pytest_llmgate.config import ProjectConfig
    from pytest_llmgate.items import CaseFileCollector, SharedRuns
    from pytest_llmgate.options import Settings
    from pytest_llmgate.results import CaseResult
    from pytest_llmgate.secrets import Scrubber
    from pytest_llmgate.session import LlmSession

GATE_MARKER = "llm_gate"  # `-m "not llm_gate"` runs the cases without the suite gates
LLM_MARKER = "llm"  # every case and gate item: `-m llm` runs the LLM suite, `-m "not llm"` the rest
SESSION_GATES = "llmgate"  # the node id prefix of the session's gates: `llmgate::gate[cost]`
# Name of the TestReport attribute that carries a case's result dict (survives xdist transport).
REPORT_ATTRIBUTE = "llmgate_result"
# `config.PROJECT_FILE`, named here so that a run without the file imports no config parser.
PROJECT_FILE = "llmgate.yaml"


class Configured:
    """What `pytest_configure` resolved: enough for the hooks that run whether or not a case file
    is collected, without the session state (`session_state`) and the imports it needs."""

    def __init__(
        self,
        settings: Settings,
        project: ProjectConfig | None,
        environ: Mapping[str, str],
        started: float,
    ) -> None:
        self.settings = settings
        self.project = project  # None: no llmgate.yaml, the defaults
        self._environ = dict(environ)  # as it was at configure time, for `scrubber`
        self.started = started  # time.monotonic() at configure: the live progress line counts from it

    @functools.cached_property
    def scrubber(self) -> Scrubber:
        """The secrets of the environment at configure time, scrubbed from every output; made when
        first needed (a log record, the session state), so a run without either imports no regex."""
        from pytest_llmgate.secrets import Scrubber

        return Scrubber.from_environment(self._environ)


CONFIGURED_KEY: pytest.StashKey[Configured] = pytest.StashKey()
STATE_KEY: pytest.StashKey[LlmSession] = pytest.StashKey()
RESULT_KEY: pytest.StashKey[CaseResult] = pytest.StashKey()
SHARED_KEY: pytest.StashKey[SharedRuns] = pytest.StashKey()
CASE_FILES_KEY: pytest.StashKey[dict[str, Path]] = pytest.StashKey()
"""Every case file collected this session (node id -> path), even those `--lf` then skipped."""
COLLECTORS_KEY: pytest.StashKey[dict[str, CaseFileCollector]] = pytest.StashKey()


class NamedGates(NamedTuple):
    """Session gates named on the command line (`pytest "llmgate::gate[cost]"`)."""

    node_ids: frozenset[str]
    only: bool  # nothing else was named: every other item is deselected


NAMED_GATES_KEY: pytest.StashKey[NamedGates] = pytest.StashKey()


def session_state(config: pytest.Config) -> LlmSession:
    """The run's `LlmSession`, made on first use: when the first case file is collected, or on
    an xdist controller when the first result or deferred gate arrives.

    Not at configure time: the session and what it imports (gates, statistics, results) cost a
    run that collects no case file about 40 ms of start-up.
    """
    state = config.stash.get(STATE_KEY, None)
    if state is None:
        from pytest_llmgate.config import ProjectConfig
        from pytest_llmgate.session import LlmSession

        configured = config.stash[CONFIGURED_KEY]
        state = LlmSession(
            settings=configured.settings,
            project=configured.project or ProjectConfig(),
            scrubber=configured.scrubber,
            shared_cassettes=hasattr(config, "workerinput"),
        )
        state.progress.started = configured.started
        config.stash[STATE_KEY] = state
    return state


def current_scrubber(config: pytest.Config) -> Scrubber:
    """The session state's scrubber (it learns the keys of the case files' targets), else the
    one made at configure time; neither makes the state."""
    state = config.stash.get(STATE_KEY, None)
    return state.scrubber if state is not None else config.stash[CONFIGURED_KEY].scrubber
