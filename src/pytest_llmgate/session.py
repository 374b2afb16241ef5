"""One run of the gate, without pytest: settings, the clients and recorder, tokenizers, the
prefetch pool and the results gathered so far.

pytest's items ask this object to run their cases (`items.py` stays glue), and any other front
end (the `llmgate` command, a script) can drive the same orchestration. Everything expensive is
built on first use, so collecting case files costs no SDK, vcrpy or tiktoken import.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pytest_llmgate.config import ProjectConfig
from pytest_llmgate.gate import GateCheck
from pytest_llmgate.prefetch import Prefetcher
from pytest_llmgate.progress import Progress
from pytest_llmgate.results import CaseResult, ModelRun
from pytest_llmgate.secrets import Scrubber

if TYPE_CHECKING:
    from pytest_llmgate.drift import Tokenizers
    from pytest_llmgate.options import Settings

Job = tuple[Hashable, Callable[[], ModelRun]]
"""One unit of work: a key (case node, model) and the call that runs and judges that model."""


@dataclass
class LlmSession:
    """Per-session objects, built lazily on the first case."""

    settings: Settings
    project: ProjectConfig = field(default_factory=ProjectConfig)
    results: list[CaseResult] = field(default_factory=list)
    gate_checks: dict[str, GateCheck] = field(default_factory=dict)  # gate node id -> verdict
    warned_prices: set[str] = field(default_factory=set)
    warned_notes: set[str] = field(default_factory=set)  # tokenizer notes already warned about
    progress: Progress = field(default_factory=Progress)
    # Other processes of the run (xdist workers) may record the same cassettes at the same time.
    shared_cassettes: bool = False
    # The one scrubber of every output: cassettes, terminal, JUnit, reports (see secrets.py).
    scrubber: Scrubber = field(default_factory=Scrubber.from_environment, repr=False)
    _client: Any = None
    _recorder: Any = None
    _tokenizers: Any = None
    _prefetcher: Prefetcher[ModelRun] | None = None
    _warming: threading.Thread | None = None

    @property
    def live(self) -> bool:
        """Whether calls may reach the API (any record mode but `none`)."""
        return self.settings.record_mode != "none"

    def tokenizers(self) -> Tokenizers:
        if self._tokenizers is None:
            from pytest_llmgate.drift import Tokenizers

            self._tokenizers = Tokenizers(self.project.encodings, offline=not self.live)
        return self._tokenizers  # type: ignore[no-any-return]

    def file_results(self, file_nodeid: str) -> list[CaseResult]:
        return [result for result in self.results if result.file_nodeid == file_nodeid]

    def client_and_recorder(self) -> tuple[Any, Any]:
        """The model client and the cassettes: replayed straight from disk in record mode `none`,
        else the SDK through vcrpy."""
        if self._client is None and not self.live:
            # Replay reads the cassettes itself: no SDK, no vcrpy, no network (see replay.py).
            from pytest_llmgate.replay import ReplayCassettes, ReplayClient

            self._client = ReplayClient(self.settings.base_url, scrubber=self.scrubber)
            self._recorder = ReplayCassettes()
        if self._client is None:
            from pytest_llmgate.client import ClientSettings, ModelClient
            from pytest_llmgate.recording import Recorder

            client_settings = ClientSettings.from_environment(
                self.settings.base_url,
                timeout_s=self.settings.timeout_s,
                max_retries=self.settings.max_retries,
                time_limit_s=self.settings.time_limit_s,
                model_concurrency=self.settings.model_concurrency,
                max_retry_wait_s=self.settings.max_retry_wait_s,
                max_response_bytes=self.settings.max_response_bytes,
            )
            self._client = ModelClient(client_settings)
            self.scrubber = self.scrubber.with_secrets(client_settings.secrets())
            self._recorder = Recorder(
                self.settings.record_mode, secrets=self.scrubber.secrets, shared=self.shared_cassettes
            )
        return self._client, self._recorder

    def model_runs(
        self, jobs: list[Job], upcoming: Callable[[], Iterable[list[Job]]], models: Iterable[str] = ()
    ) -> list[ModelRun]:
        """The runs of `jobs`, in order. Live runs with concurrency queue `upcoming()` too (the
        jobs this process will need next, in run order) on the pool, then wait for their own.

        `models` (the model ids the jobs call) have their tokenizers loaded on a thread of their
        own once the first calls are out (see `_warm_tokenizers`)."""
        if not self.live or self.settings.concurrency < 2:
            return [job() for _, job in jobs]
        self.client_and_recorder()  # built here, once, before any pool thread needs it
        prefetcher = self.prefetcher()
        for more in upcoming():
            for key, job in more:
                prefetcher.submit(key, job)
        self._warm_tokenizers(models)
        return [prefetcher.result(key, job) for key, job in jobs]

    def _warm_tokenizers(self, models: Iterable[str]) -> None:
        """Load the encodings of `models` now, on a daemon thread, once per session.

        Loading o200k_base holds the GIL for about 0.3 s. Left to the first count, it ran when
        the first answers came back, stalling the threads handling them; started right after the
        first calls went out, it runs while every thread waits on the network.
        """
        if self._warming is not None:
            return
        tokenizers = self.tokenizers()
        self._warming = threading.Thread(
            target=tokenizers.preload, args=(list(models),), name="llmgate-tokenizers", daemon=True
        )
        self._warming.start()

    def prefetched(self, key: Hashable) -> bool:
        """Whether the job under `key` was queued already (so its item need not build it again)."""
        return self._prefetcher is not None and key in self._prefetcher

    def add(self, result: CaseResult) -> None:
        """Count a judged case in the live progress line."""
        self.progress.add(result)

    def prefetcher(self) -> Prefetcher[ModelRun]:
        if self._prefetcher is None:
            # Keys are (case node id, model): a model's calls take about as long as each other.
            self._prefetcher = Prefetcher(self.settings.concurrency, group=_model_of)
        return self._prefetcher

    def stop_prefetching(self) -> None:
        """Drop the jobs not yet started; calls in flight finish and are saved."""
        if self._prefetcher is not None:
            self._prefetcher.close()

    def close(self) -> None:
        self.stop_prefetching()
        self._prefetcher = None
        abandon = getattr(self._recorder, "abandon", None)
        if abandon is not None:  # pool threads may still be saving after Ctrl-C: no .tmp litter
            abandon()
        if self._client is not None:
            self._client.close()
            self._client = None


def _model_of(key: Hashable) -> Hashable:
    return key[1] if isinstance(key, tuple) and len(key) == 2 else key
