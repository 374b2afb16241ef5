"""Replay-only runs (record mode `none`) served straight from the cassettes.

A replay needs neither the network nor the SDK: the request a case sends is known (it is the
case's `chat.completions.create` arguments) and the recorded response is parsed by our own
parser either way. Going through the SDK and vcrpy costs a third of a second of imports and a
few milliseconds a call, which made replaying a suite four times slower than a plain pytest run
of the same size; here a replayed call is a dictionary comparison.

It matches exactly as the recording side does (see recording.MATCH_ON): the HTTP method, the
URL path of the endpoint and the JSON body (both sides scrubbed of secrets), playing each recorded
interaction once, in order.
Its errors are the same `RecordingMissing` (missing, stale, exhausted) and `CallError` values as
a vcrpy replay, and a recorded retry (a 429 or 5xx followed by the answer) replays as one call
with two attempts, as `ModelClient` does. `tests/unit/test_replay.py` checks both paths agree.

One thing vcrpy never says: a cassette recorded with more samples (`--llm-repeat 3`) than the
replay asks for replays its first answers only, which may change the verdict. A session that
closes with such answers unplayed leaves a note (`ReplaySession.notes`) for the runner.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pytest_llmgate.cassettes import (
    LATENCY_HEADER,
    TTFT_HEADER,
    CorruptCassetteError,
    Exchange,
    RecordingMissing,
    kept_token_counts,
    load_cassette_data,
    unplayed_note,
)
from pytest_llmgate.model.adapters import adapter_for
from pytest_llmgate.model.targets import Target
from pytest_llmgate.model.wire import operation_of, request_body
from pytest_llmgate.ratelimits import RateLimit, read_rate_limit
from pytest_llmgate.reply import Reply
from pytest_llmgate.resilience import CallError, CallStats, RetryPolicy
from pytest_llmgate.response import ApiError, ResponseError
from pytest_llmgate.secrets import Scrubber


@dataclass
class _Interaction:
    method: str
    path: str
    body: Any  # the request body as JSON (None when it was not JSON)
    status: int
    headers: dict[str, str]
    content: bytes
    rate_limit: RateLimit | None = None  # read from the headers as recorded (ratelimits.py)


@dataclass
class ReplaySession:
    """One case's cassette for one model, opened for replay."""

    path: Path
    interactions: list[_Interaction]
    exists: bool
    played: set[int] = field(default_factory=set)
    exchanges: list[Exchange] = field(default_factory=list)
    keep: bool = True  # nothing is written in replay; the runner sets False when a call failed
    notes: list[str] = field(default_factory=list)  # filled by `close`, read by runner.call_model
    token_counts: dict[str, int] = field(default_factory=dict)  # local counts the recording kept

    def keep_token_count(self, key: str, tokens: int) -> None:
        """Nothing is written in a replay (the same call as `recording.CassetteSession`'s)."""

    def unplayed_answers(self) -> tuple[int, int]:
        """(unplayed, recorded) answers to the requests this session replayed.

        Only interactions matching a replayed request count (an old request left in the cassette
        by `new_episodes` is not a missed sample), and only answers: a recorded retry (a 429, then
        the 200) is one call, its two interactions both played by it.
        """
        replayed = [self.interactions[index] for index in sorted(self.played)]
        same = [
            (index, interaction)
            for index, interaction in enumerate(self.interactions)
            if interaction.status < 400
            and any(
                (interaction.method, interaction.path, interaction.body)
                == (played.method, played.path, played.body)
                for played in replayed
            )
        ]
        return sum(index not in self.played for index, _ in same), len(same)

    def close(self) -> None:
        """Note unplayed answers when every call succeeded (a failed call stops early anyway)."""
        if not self.keep or not self.played:
            return
        unplayed, recorded = self.unplayed_answers()
        if unplayed:
            self.notes.append(unplayed_note(self.path, unplayed, recorded))


_current: ContextVar[ReplaySession | None] = ContextVar("llmgate_replay", default=None)


def open_session(path: Path) -> ReplaySession:
    """The cassette at `path` opened for replay (empty when there is none); CorruptCassetteError
    if it cannot be read."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ReplaySession(path, [], exists=False)
    except (OSError, UnicodeDecodeError) as exc:
        raise CorruptCassetteError(path, str(exc)) from exc
    if not text.strip():
        return ReplaySession(path, [], exists=False)
    data = load_cassette_data(text, path)  # no aliases, no nan or negative numbers
    try:
        interactions = [_interaction(item) for item in data["interactions"]]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CorruptCassetteError(path, f"{type(exc).__name__}: {exc}") from exc
    return ReplaySession(path, interactions, exists=True, token_counts=kept_token_counts(path, data))


def _interaction(item: Mapping[str, Any]) -> _Interaction:
    request, response = item["request"], item["response"]
    body = request.get("body")
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    try:
        parsed = json.loads(body) if body else None
    except ValueError:
        parsed = None
    content = response.get("body", {}).get("string", b"")
    if isinstance(content, str):
        content = content.encode("utf-8")
    recorded = response.get("headers") or {}
    headers = {
        str(name).lower(): str(value[0] if isinstance(value, list) and value else value)
        for name, value in recorded.items()
    }
    return _Interaction(
        rate_limit=read_rate_limit(recorded.items()),
        method=str(request["method"]).upper(),
        path=urlsplit(str(request["uri"])).path,
        body=parsed,
        status=int(response["status"]["code"]),
        headers=headers,
        content=content,
    )


class ReplayCassettes:
    """Opens cassettes for replay; the same `use(path)` as `recording.Recorder`."""

    @contextlib.contextmanager
    def use(self, path: Path) -> Iterator[ReplaySession]:
        session = open_session(path)
        token = _current.set(session)
        try:
            yield session
            session.close()
        finally:
            _current.reset(token)


class ReplayClient:
    """Answers `complete(request)` from the calling thread's replay session (see ReplayCassettes)."""

    def __init__(self, base_url: str | None = None, scrubber: Scrubber | None = None) -> None:
        # Where the recording was made does not matter (see model/wire.py); the base URL is kept
        # for the same signature as ModelClient.
        self.base_url = base_url
        # Requests are compared scrubbed, as recording.py's matcher does: a prompt holding a
        # key-shaped string was stored redacted and must still match.
        self.scrubber = scrubber if scrubber is not None else Scrubber.from_environment()
        self.stats = CallStats()
        self._policy = RetryPolicy()
        self._lock = threading.Lock()

    def close(self) -> None:
        """Nothing to release; kept so a session can close either client."""

    def complete(self, request: dict[str, Any], target: Target | None = None) -> Reply:
        session = _current.get()
        if session is None:
            raise CallError("config", "replay needs an open cassette (ReplayCassettes.use)")
        self.stats.record_call()
        adapter = adapter_for(target.api if target is not None else None)
        try:
            sent = adapter.build(request)
        except ValueError as exc:  # a case the wire format cannot express (TranslationError)
            raise CallError("config", f"{target.name if target else 'the model'}: {exc}") from None
        # The JSON the SDK would send, compared with what the recorder stored (see `_next`).
        body = _Body(json.loads(json.dumps(request_body(sent))), self.scrubber)
        attempts = 0
        while True:
            attempts += 1
            self.stats.record_attempt()
            interaction = self._next(session, body, adapter.operation)
            latency = _float(interaction.headers.get(LATENCY_HEADER))
            ttft = interaction.headers.get(TTFT_HEADER)
            session.exchanges.append(
                Exchange(
                    interaction.status,
                    latency,
                    replayed=True,
                    ttft_ms=None if ttft is None else _float(ttft),
                    rate_limit=interaction.rate_limit,
                )
            )
            content_type = interaction.headers.get("content-type")
            try:
                return adapter.parse(interaction.content, interaction.status, content_type)
            except ApiError as exc:
                error = CallError(
                    "api",
                    str(exc),
                    status=interaction.status,
                    replayed=True,
                    attempts=attempts,
                    code=exc.code,
                    param=exc.param,
                )
            except ResponseError as exc:
                kind = "api" if interaction.status >= 400 else "response"
                error = CallError(kind, str(exc), status=interaction.status, replayed=True, attempts=attempts)
            if interaction.status >= 400 and self._policy.is_retryable(error):
                self.stats.record_retry(0.0)
                continue  # a recorded retry: the next recorded answer follows at once
            self.stats.record_failure(error.kind)
            raise error

    def _next(self, session: ReplaySession, body: _Body, operation: str) -> _Interaction:
        """The first unplayed interaction matching method, path and body (marked played)."""
        first_failure: list[str] | None = None
        matched_played = False
        for index, interaction in enumerate(session.interactions):
            failures = [
                name
                for name, same in (
                    ("method", interaction.method == "POST"),
                    ("path", operation_of(interaction.path) == operation),
                    ("body", body.matches(interaction.body)),
                )
                if not same
            ]
            if failures:
                first_failure = first_failure if first_failure is not None else failures
                continue
            if index in session.played:
                matched_played = True
                continue
            session.played.add(index)
            return interaction
        if not session.exists:
            error = RecordingMissing(session.path, "missing", "no cassette file")
        elif matched_played:
            count = len(session.interactions)
            error = RecordingMissing(
                session.path, "exhausted", f"the cassette holds {count} interaction(s) and all were replayed"
            )
        else:
            what = (
                f"the request's {', '.join(first_failure)} changed"
                if first_failure
                else "the request changed"
            )
            error = RecordingMissing(session.path, "stale", f"{what} since it was recorded")
        self.stats.record_failure(type(error).__name__)
        raise error


class _Body:
    """A request body to match against recorded ones, both sides scrubbed as the recorder does.

    Scrubbing is the costly part of matching (every string of the body through a dozen
    patterns: a third of a 2,000-case replay), and almost always a no-op: a body equal to the
    recorded one as it stands needs none, so both sides are scrubbed only when they differ (a
    prompt holding a key-shaped string, stored redacted; a cassette of a laxer scrubber).
    """

    def __init__(self, raw: Any, scrubber: Scrubber) -> None:
        self.raw = raw
        self._scrubber = scrubber
        self._scrubbed: Any = _UNSET

    def matches(self, recorded: Any) -> bool:
        if recorded == self.raw:
            return True
        if self._scrubbed is _UNSET:
            self._scrubbed = self._scrubber.value(self.raw)
        return bool(self._scrubber.value(recorded) == self._scrubbed)


_UNSET = object()


def _float(text: str | None) -> float:
    try:
        return float(text) if text is not None else 0.0
    except ValueError:
        return 0.0
