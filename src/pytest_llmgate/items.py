"""pytest collection of case files: one `CaseFileCollector` per file, one `CaseItem` per case."""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pytest_llmgate.cases import Case, load_case_file
from pytest_llmgate.errors import CaseFileError
from pytest_llmgate.options import Settings
from pytest_llmgate.results import CaseResult, Outcome


class CaseFailed(Exception):
    """A case's verdict is a failure; its message is the whole report of the item."""


@dataclass
class SessionState:
    """Per-session objects built lazily on the first case, so collecting costs no SDK import."""

    settings: Settings
    results: list[CaseResult] = field(default_factory=list)
    _client: Any = None
    _recorder: Any = None

    def client_and_recorder(self) -> tuple[Any, Any]:
        if self._client is None:
            from pytest_llmgate.client import ClientSettings, ModelClient
            from pytest_llmgate.recording import Recorder

            client_settings = ClientSettings.from_environment(
                self.settings.base_url,
                timeout_s=self.settings.timeout_s,
                # Replay has nothing to retry; a missing recording must fail at once.
                max_retries=0 if self.settings.record_mode == "none" else 2,
            )
            self._client = ModelClient(client_settings)
            self._recorder = Recorder(self.settings.record_mode, secrets=client_settings.secrets())
        return self._client, self._recorder

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


STATE_KEY = pytest.StashKey[SessionState]()
RESULT_KEY = pytest.StashKey[CaseResult]()


class CaseFileCollector(pytest.File):
    """An `llm_*.yaml` file; a broken file is one collection error naming file, line and field."""

    def collect(self) -> Iterator[pytest.Item]:
        settings = self.config.stash[STATE_KEY].settings
        try:
            case_file = load_case_file(self.path)
        except CaseFileError as exc:
            raise self.CollectError(exc.render()) from None
        baseline = settings.baseline or case_file.baseline
        if not baseline:
            raise self.CollectError(
                f"{self.path}: no baseline model. Set 'baseline: gpt-4o' at the top of the file, "
                "'llm_baseline = gpt-4o' in the pytest ini, or pass --llm-baseline=gpt-4o"
            )
        for case in case_file.cases:
            for tag in case.tags:
                self.config.addinivalue_line("markers", f"{tag}: llm case tag")
            item = CaseItem.from_parent(self, name=case.id, case=case, baseline=baseline)
            for tag in case.tags:
                item.add_marker(tag)
            yield item


class CaseItem(pytest.Item):
    def __init__(self, *, case: Case, baseline: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.case = case
        self.baseline = baseline

    def runtest(self) -> None:
        from pytest_llmgate.runner import RunPlan, run_case

        state = self.config.stash[STATE_KEY]
        settings = state.settings
        client, recorder = state.client_and_recorder()
        plan = RunPlan(
            baseline=self.baseline,
            candidate=settings.candidate,
            cassette_dir=settings.cassette_dir,
            judge=settings.judge,
        )
        result = run_case(self.case, plan, client, recorder)
        self.stash[RESULT_KEY] = result
        if result.outcome in (Outcome.PASSED, Outcome.IMPROVEMENT):
            return
        if result.outcome == Outcome.ALREADY_FAILING and not settings.strict:
            pytest.xfail("already failing on baseline")
        if result.outcome == Outcome.ERROR:
            raise CaseFailed(self._error_message(result, settings))
        raise CaseFailed(f"case {self.case.id!r}: {result.message}")

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
        settings = self.config.stash[STATE_KEY].settings
        parts = ["pytest", self.nodeid, f"--llm-baseline={self.baseline}"]
        if settings.candidate:
            parts.append(f"--llm-candidate={settings.candidate}")
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
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.case.line - 1, f"llm case: {self.case.id}"


def _recording_problem(kind: str, detail: str, settings: Settings) -> str:
    if kind == "recording-missing":
        return f"no recording ({detail}); --llm-record-mode={settings.record_mode} does not call the API"
    if kind == "recording-stale":
        return (
            f"the recording is stale ({detail}): the prompt, params or overrides were edited after recording"
        )
    return f"the recording has too few interactions ({detail})"
