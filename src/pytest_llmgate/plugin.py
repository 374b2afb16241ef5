"""pytest hooks of pytest-llmgate: options, collection of case files, result transport, summary.

Cheap to import: nothing here imports openai, vcrpy or tiktoken; they load on the first case run.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Any

import pytest

from pytest_llmgate.items import RESULT_KEY, STATE_KEY, CaseFileCollector, CaseItem, SessionState
from pytest_llmgate.options import Settings, add_options
from pytest_llmgate.results import CaseResult

# Name of the TestReport attribute that carries a case's result dict (survives xdist transport).
REPORT_ATTRIBUTE = "llmgate_result"


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    state = SessionState(settings=Settings.from_config(config))
    config.stash[STATE_KEY] = state
    config.pluginmanager.register(ResultCollector(state), "llmgate-results")


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
        return collector
    return None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if isinstance(item, CaseItem) and call.when == "call":
        result = item.stash.get(RESULT_KEY, None)
        if result is not None:
            setattr(report, REPORT_ATTRIBUTE, result.to_dict())
    return report


class ResultCollector:
    """Gathers every case result of the session, local or from xdist workers, and prints the summary.

    Registered as a plugin object at configure time (as junitxml does) so that its hooks reach the
    session state without module-level globals.
    """

    def __init__(self, state: SessionState) -> None:
        self.state = state

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        data = getattr(report, REPORT_ATTRIBUTE, None)
        if data is not None and report.when == "call":
            self.state.results.append(CaseResult.from_dict(data))

    def pytest_terminal_summary(self, terminalreporter: Any, config: pytest.Config) -> None:
        if not self.state.results or _is_xdist_worker(config):
            return
        from pytest_llmgate.pricing import PriceTable
        from pytest_llmgate.report.terminal import summary_lines

        settings = self.state.settings
        baseline = self.state.results[0].baseline.model
        title = (
            f"llmgate: {settings.candidate} vs {baseline}" if settings.candidate else f"llmgate: {baseline}"
        )
        terminalreporter.write_sep("=", title)
        for line in summary_lines(
            self.state.results, verbose=config.get_verbosity() >= 0, prices=PriceTable.builtin()
        ):
            terminalreporter.write_line(line)


def _is_xdist_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")
