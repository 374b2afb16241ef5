"""Recording and replay of model calls with vcrpy: cassette paths, matching, scrubbing, latency.

vcrpy's own patcher swaps `httpx2.HTTPTransport.handle_request` for the whole process, which
cannot serve two cassettes at once. Here vcrpy's httpx2 stub is bound per cassette and reached
through one `RecordingTransport` given to the OpenAI client: the cassette of the calling thread
(a context variable) decides where a request is replayed from or recorded to. Cassettes are
loaded with a safe YAML loader, stored with decoded bodies, scrubbed of secrets on both the
request and the response side (by header name, then every header, URI and body by value with
`secrets.Scrubber`), and written whole (temp file + rename) or not at all, as JSON text (which
is YAML, and reads 15x faster).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx2
import yaml
from vcr.cassette import Cassette
from vcr.errors import CannotOverwriteExistingCassetteException
from vcr.filters import decode_response
from vcr.record_mode import RecordMode
from vcr.serialize import deserialize, serialize
from vcr.stubs.httpx_stubs import vcr_handle_request

from pytest_llmgate.cassettes import (
    LATENCY_HEADER,
    TOKEN_COUNTS_KEY,
    TTFT_HEADER,
    CorruptCassetteError,
    Exchange,
    RecordingMissing,
    cassette_lock,
    create_temp_beside,
    dump_cassette_text,
    load_cassette_data,
    remove_stale_temps,
    unplayed_note,
)
from pytest_llmgate.model.wire import canonical_uri, operation_of
from pytest_llmgate.ratelimits import read_rate_limit
from pytest_llmgate.secrets import REDACTED, Scrubber

__all__ = ["REDACTED", "AtomicPersister", "CassetteSession", "Recorder", "RecordingTransport"]

RECORD_MODES = ("none", "once", "new_episodes", "all")
MATCH_ON = ("method", "path", "body")

# Headers that carry credentials or identify the account; removed from requests AND responses.
SECRET_HEADERS = frozenset(
    {
        "authorization",
        "api-key",
        "x-api-key",
        "openai-organization",
        "openai-project",
        "cookie",
        "set-cookie",
    }
)
# Headers that change on every call or machine and would make recordings noisy to review.
VOLATILE_HEADER_PREFIXES = (
    "x-stainless-",
    "cf-",
    "x-request-id",
    "date",
    "user-agent",
    "openai-processing",
    "host",
)
# Query parameters that carry credentials, whatever their value looks like.
SECRET_QUERY = re.compile(r"([?&](?:api[-_]?key|key|access_token|token|sig|signature)=)[^&#]*", re.I)


class _SafeYamlSerializer:
    """vcrpy serializer writing JSON text (which is YAML) and reading with safe loaders only.

    JSON because a replay reads it 15x faster than libyaml (`cassettes.dump_cassette_text`); a
    cassette JSON cannot hold (a body that is not UTF-8) is written as safe YAML, as before.
    """

    @staticmethod
    def deserialize(cassette_string: str) -> Any:
        return load_cassette_data(cassette_string, Path("<cassette>"))

    @staticmethod
    def serialize(cassette_dict: Any) -> str:
        try:
            return dump_cassette_text(cassette_dict)
        except (TypeError, ValueError):
            pass
        return yaml.dump(
            cassette_dict,
            Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper),
            allow_unicode=True,
            sort_keys=True,
            width=120,
        )


class AtomicPersister:
    """Writes a cassette to a temporary file in its folder and renames it into place.

    A run killed mid-write (Ctrl-C, OOM, CI timeout) leaves the previous cassette or none, never a
    truncated one.
    """

    @classmethod
    def load_cassette(cls, cassette_path: str | Path, serializer: Any) -> Any:
        from vcr.persisters.filesystem import CassetteNotFoundError

        path = Path(cassette_path)
        if not path.is_file():
            raise CassetteNotFoundError()
        text = path.read_text(encoding="utf-8")
        if not text.strip():
            raise CassetteNotFoundError()
        data = load_cassette_data(text, path)  # no aliases, no nan or negative numbers
        try:
            return deserialize(text, _Loaded(data))
        except (yaml.YAMLError, ValueError, KeyError, TypeError) as exc:
            raise CorruptCassetteError(path, str(exc)) from exc

    pending: PendingWrites | None = None  # set on the per-Recorder subclass (see Recorder.use)

    @classmethod
    def save_cassette(cls, cassette_path: str | Path, cassette_dict: Any, serializer: Any) -> None:
        path = Path(cassette_path)
        data = serialize(cassette_dict, serializer)
        path.parent.mkdir(parents=True, exist_ok=True)
        pending = cls.pending or PendingWrites()
        handle, temp_name = pending.begin(path)
        try:
            # Written through the descriptor mkstemp opened: if the session abandons the file
            # meanwhile, the data goes to an unlinked inode and the rename below fails.
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                stream.write(data)
                stream.flush()
                os.fsync(stream.fileno())
            os.replace(temp_name, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp_name)
            raise
        finally:
            pending.end(temp_name)


class _Loaded:
    """A vcrpy serializer handing over data already loaded and checked (parsed once, not twice)."""

    def __init__(self, data: Any) -> None:
        self._data = data

    def deserialize(self, _cassette_string: str) -> Any:
        return self._data


class PendingWrites:
    """The temporary files of cassette writes in progress, so a session that ends mid-write
    (Ctrl-C while pool threads are saving) can remove them instead of leaving `.tmp` litter.

    After `abandon()` no write starts and every half-written temporary file is deleted; a thread
    still writing then fails its rename and the cassette keeps its previous content.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._temps: set[str] = set()
        self._abandoned = False
        self._swept: set[Path] = set()
        self.started = time.time()

    def sweep(self, folder: Path) -> None:
        """Once per folder and session: remove what a killed run left there (`remove_stale_temps`)."""
        with self._lock:
            if folder in self._swept:
                return
            self._swept.add(folder)
        remove_stale_temps(folder, self.started)

    def begin(self, path: Path) -> tuple[int, str]:
        """An open descriptor and the name of a new temporary file beside `path`."""
        with self._lock:
            if self._abandoned:
                raise RuntimeError(f"the session ended before {path} could be written")
            handle, temp_name = create_temp_beside(path)
            self._temps.add(temp_name)
            return handle, temp_name

    def end(self, temp_name: str) -> None:
        with self._lock:
            self._temps.discard(temp_name)

    def abandon(self) -> None:
        with self._lock:
            self._abandoned = True
            for temp_name in self._temps:
                with contextlib.suppress(OSError):
                    os.unlink(temp_name)
            self._temps.clear()


def _scrub_headers(headers: Mapping[str, Any], scrubber: Scrubber) -> dict[str, Any]:
    """Credential and volatile headers dropped by name; every other one scrubbed by value, since
    servers and proxies echo the key under any name (`x-echo-auth`, `llm_provider-...`)."""
    kept: dict[str, Any] = {}
    for name, value in headers.items():
        lower = name.lower()
        if lower in SECRET_HEADERS or lower.startswith(VOLATILE_HEADER_PREFIXES):
            continue
        kept[scrubber.text(name)] = scrubber.value(value)
    return kept


def _scrub_uri(uri: str, scrubber: Scrubber) -> str:
    return scrubber.text(SECRET_QUERY.sub(lambda match: match.group(1) + REDACTED, uri))


@dataclass
class CassetteSession:
    """An open cassette for one case and model, and what happened through it."""

    path: Path
    cassette: Any
    exchanges: list[Exchange] = field(default_factory=list)
    missing: RecordingMissing | None = None
    # Set to False by the caller when the call failed: nothing of a failed call is saved.
    keep: bool = True
    notes: list[str] = field(default_factory=list)  # filled when the cassette closes

    def note_unplayed(self) -> None:
        """Like `replay.ReplaySession.close`: recorded answers a replay left unplayed (fewer samples).

        Only answers (status < 400) count: a recorded retry's 429 is played by the same call.
        """
        if not self.keep or not self.cassette.play_count:
            return
        counts = self.cassette.play_counts
        answers = [
            index
            for index, (_, response) in enumerate(self.cassette.data)
            if response["status"]["code"] < 400
        ]
        unplayed = sum(1 for index in answers if not counts[index])
        if unplayed and not self.cassette.dirty:  # a session that recorded too has no missing samples
            self.notes.append(unplayed_note(self.path, unplayed, len(answers)))

    @property
    def token_counts(self) -> Mapping[str, int]:
        """The local prompt-token counts the cassette keeps (checked on load: `kept_token_counts`)."""
        counts = self.cassette._metadata.get(TOKEN_COUNTS_KEY)
        return counts if isinstance(counts, Mapping) else {}

    def keep_token_count(self, key: str, tokens: int) -> None:
        """Keep a local count in the cassette so that a replay needs no tokenizer.

        Only where writing is expected: a cassette that recorded a call, or any cassette under
        `new_episodes` (which adds what older recordings lack, their interactions unchanged). A
        cassette only replayed under `once` or `all` is not rewritten for it. A cassette holds
        one request per model, so a count kept for an earlier request with the same encoding
        (the prompt was edited since) is dropped rather than carried along forever.
        """
        if self.cassette.dirty or self.cassette.record_mode == RecordMode.NEW_EPISODES:
            counts = self.cassette._metadata.get(TOKEN_COUNTS_KEY) or {}
            if counts.get(key) != tokens:
                encoding = key.split(":", 1)[0] + ":"
                kept = {name: value for name, value in counts.items() if not name.startswith(encoding)}
                self.cassette._metadata[TOKEN_COUNTS_KEY] = {**kept, key: tokens}
                self.cassette.dirty = True

    def __post_init__(self) -> None:
        self._handler = vcr_handle_request(self.cassette, httpx2.HTTPTransport.handle_request, httpx2)
        self.arrivals: list[tuple[float, int]] = []  # of the last live request: (seconds in, bytes)

    def handle(self, transport: httpx2.HTTPTransport, request: httpx2.Request) -> httpx2.Response:
        played_before = self.cassette.play_count
        recorded_before = len(self.cassette.data)
        started = time.perf_counter()
        arrivals: list[tuple[float, int]] = []
        token = _arrivals.set((started, arrivals))
        try:
            response: httpx2.Response = self._handler(transport, request)
        except CannotOverwriteExistingCassetteException as exc:
            self.missing = self._explain_missing(exc)
            raise self.missing from None
        finally:
            _arrivals.reset(token)
        self.arrivals = arrivals
        # Rounded as it is stored, so a recording run and its replay report the same numbers.
        elapsed_ms = round((time.perf_counter() - started) * 1000.0, 1)
        rate_limit = read_rate_limit(response.headers.items())
        if self.cassette.play_count > played_before:
            recorded = response.headers.get(LATENCY_HEADER)
            latency = _float_or(recorded, elapsed_ms)
            ttft = response.headers.get(TTFT_HEADER)
            ttft_ms = None if ttft is None else _float_or(ttft, 0.0)
            self.exchanges.append(
                Exchange(response.status_code, latency, replayed=True, ttft_ms=ttft_ms, rate_limit=rate_limit)
            )
        else:
            if len(self.cassette.data) > recorded_before:
                self.cassette.data[-1][1]["headers"][LATENCY_HEADER] = [f"{elapsed_ms:.1f}"]
            self.exchanges.append(
                Exchange(response.status_code, elapsed_ms, replayed=False, rate_limit=rate_limit)
            )
        return response

    def note_first_content(self, offset: int) -> None:
        """The answer's first content ended at byte `offset` of its body: the time it arrived is
        the last exchange's time to first token, stored beside the latency when it was recorded."""
        if not self.exchanges or self.exchanges[-1].replayed:
            return
        ttft_ms = first_arrival(self.arrivals, offset)
        if ttft_ms is None:
            return
        self.exchanges[-1].ttft_ms = ttft_ms
        if self.cassette.data:
            self.cassette.data[-1][1]["headers"][TTFT_HEADER] = [f"{ttft_ms:.1f}"]

    def _explain_missing(self, exc: CannotOverwriteExistingCassetteException) -> RecordingMissing:
        reason = getattr(exc, "reason", "")
        if not self.path.exists() or reason == "cassette_not_found":
            return RecordingMissing(self.path, "missing", "no cassette file")
        if reason == "already_played":
            count = len(self.cassette.data)
            return RecordingMissing(
                self.path, "exhausted", f"the cassette holds {count} interaction(s) and all were replayed"
            )
        failed: list[str] = []
        for _request, _succeeded, failures in getattr(exc, "similar_requests", [])[:1]:
            failed = [name for name, _message in failures]
        what = f"the request's {', '.join(failed)} changed" if failed else "the request changed"
        return RecordingMissing(self.path, "stale", f"{what} since it was recorded")


def _float_or(text: str | None, default: float) -> float:
    try:
        return float(text) if text is not None else default
    except ValueError:
        return default


_current_session: ContextVar[CassetteSession | None] = ContextVar("llmgate_cassette", default=None)
_arrivals: ContextVar[tuple[float, list[tuple[float, int]]] | None] = ContextVar(
    "llmgate_arrivals", default=None
)


def current_session() -> CassetteSession | None:
    """The cassette the calling thread's model call goes through, if any."""
    return _current_session.get()


def note_arrival(size: int) -> None:
    """`size` more body bytes of the calling thread's request arrived now (the transport's pool
    calls this for every chunk it reads; nothing is kept outside a cassette session)."""
    clock = _arrivals.get()
    if clock is not None:
        started, arrivals = clock
        arrivals.append((time.perf_counter() - started, size))


def first_arrival(arrivals: list[tuple[float, int]], offset: int) -> float | None:
    """When (ms after sending, rounded as stored) the body's first `offset` bytes had all arrived;
    None when fewer arrived (a body not read through the pool, or decoded to another length)."""
    received = 0
    for seconds, size in arrivals:
        received += size
        if received >= offset:
            return round(seconds * 1000.0, 1)
    return None


class RecordingTransport(httpx2.HTTPTransport):
    """httpx2 transport that replays from / records to the calling thread's cassette."""

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        session = _current_session.get()
        if session is None:
            return super().handle_request(request)
        return session.handle(self, request)


@dataclass(frozen=True)
class Recorder:
    """Opens cassettes in one record mode, scrubbing the given secrets from everything saved."""

    record_mode: str = "none"
    secrets: tuple[str, ...] = field(default=(), repr=False)  # never shown in a traceback
    # Other processes (xdist workers) may record the same cassettes: see cassettes.cassette_lock.
    shared: bool = False
    pending: PendingWrites = field(default_factory=PendingWrites, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.record_mode not in RECORD_MODES:
            raise ValueError(
                f"record mode must be one of {', '.join(RECORD_MODES)}, got {self.record_mode!r}"
            )

    def abandon(self) -> None:
        """The session is over: start no more writes and delete half-written temporary files."""
        self.pending.abandon()

    @functools.cached_property
    def _persister(self) -> type[AtomicPersister]:
        """AtomicPersister bound to this recorder's pending writes (vcrpy wants a class); built
        once per recorder, not for every cassette."""
        return type("SessionPersister", (AtomicPersister,), {"pending": self.pending})

    @functools.cached_property
    def scrubber(self) -> Scrubber:
        return Scrubber(self.secrets)

    def _before_record_request(self, request: Any) -> Any:
        request = copy.copy(request)
        request.headers = _scrub_headers(request.headers, self.scrubber)
        # No host, port or base path: a recording is found by cassette, operation and body.
        request.uri = canonical_uri(_scrub_uri(request.uri, self.scrubber))
        if isinstance(request.body, bytes):
            request.body = self.scrubber.bytes(request.body)
        return request

    def _memoised_before_record_request(self) -> Any:
        """`_before_record_request` for one cassette session, computed once per request object.

        vcrpy calls the hook four times for every request (to match, then to record); copying and
        scrubbing it each time was a tenth of a live run's CPU. The memo lives as long as the
        session and holds each request, so an id is never reused while it is in the memo.
        """
        memo: dict[int, tuple[Any, Any]] = {}

        def before_record_request(request: Any) -> Any:
            hit = memo.get(id(request))
            if hit is not None and hit[0] is request:
                return hit[1]
            result = self._before_record_request(request)
            memo[id(request)] = (request, result)
            return result

        return before_record_request

    def _before_record_response(self, response: dict[str, Any]) -> dict[str, Any] | None:
        response = decode_response(response)
        response["headers"] = _scrub_headers(response.get("headers", {}), self.scrubber)
        status = response.get("status")
        if isinstance(status, dict) and isinstance(status.get("message"), str):
            status["message"] = self.scrubber.text(status["message"])
        body = response.get("body", {}).get("string")
        if isinstance(body, str):
            body = body.encode("utf-8")
        if isinstance(body, bytes):
            scrubbed = self.scrubber.bytes(body)
            if scrubbed != body:
                response["body"]["string"] = scrubbed
                for name in list(response["headers"]):
                    if name.lower() == "content-length":
                        response["headers"][name] = [str(len(scrubbed))]
        return response

    @contextlib.contextmanager
    def use(self, path: Path) -> Iterator[CassetteSession]:
        """Route this thread's model calls through the cassette at `path` while inside the block.

        The cassette is saved when the block ends without error; a call that failed (API error,
        garbage body, Ctrl-C) saves nothing, so the previous recording, if any, stays intact.
        """
        mode = RecordMode(self.record_mode)
        with contextlib.ExitStack() as stack:
            if self.shared and mode in (RecordMode.ONCE, RecordMode.NEW_EPISODES):
                stack.enter_context(cassette_lock(path))
            yield from self._use(path, mode)

    def _use(self, path: Path, mode: RecordMode) -> Iterator[CassetteSession]:
        cassette = Cassette(
            path=str(path),
            serializer=_SafeYamlSerializer,
            persister=self._persister,
            record_mode=mode,
            match_on=_matchers(self.scrubber),
            before_record_request=self._memoised_before_record_request(),
            before_record_response=self._before_record_response,
            drop_unused_requests=mode == RecordMode.ALL,
        )
        self.pending.sweep(path.parent)
        cassette._load()
        session = CassetteSession(path=path, cassette=cassette)
        token = _current_session.set(session)
        try:
            yield session
        finally:
            _current_session.reset(token)
        if session.keep and cassette.dirty:
            cassette._save()
        elif mode in (RecordMode.NONE, RecordMode.ONCE):
            session.note_unplayed()


def _matchers(scrubber: Scrubber) -> tuple[Any, ...]:
    from vcr import matchers

    def body(current: Any, recorded: Any) -> None:
        """vcrpy's body matcher on the scrubbed bodies of both requests.

        A prompt holding a key-shaped string is stored redacted; scrubbing the recorded side too
        keeps a cassette written by an older, laxer scrubber (or with other secrets) replayable.
        """
        matchers.body(_scrubbed_body(current, scrubber), _scrubbed_body(recorded, scrubber))

    def path(current: Any, recorded: Any) -> None:
        """The operation called (chat/completions, responses), wherever the endpoint was."""
        called, stored = operation_of(urlsplit(current.uri).path), operation_of(urlsplit(recorded.uri).path)
        assert called == stored, f"{called} != {stored}"

    matcher: Callable[[Any, Any], None] = body  # named "body" in vcrpy's failure list
    operation: Callable[[Any, Any], None] = path  # named "path" likewise
    return (matchers.method, operation, matcher)


def _scrubbed_body(request: Any, scrubber: Scrubber) -> Any:
    body = request.body
    if not isinstance(body, bytes):
        return request
    scrubbed = scrubber.bytes(body)
    if scrubbed is body:
        return request
    clone = copy.copy(request)
    clone.body = scrubbed
    return clone
