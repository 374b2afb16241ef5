"""Calls to an OpenAI-compatible chat-completions endpoint through the official `openai` SDK.

One SDK client per session, its HTTP traffic routed through `RecordingTransport` so each call is
replayed from or recorded to the cassette its thread has open. The body is parsed by our own
parser (`response.parse_chat_completion`), so every failure the SDK or the server can produce
(error status, timeout, garbage body, a bare JSONDecodeError, a missing recording) ends as a
`CallError` with a kind and a one-line message, never as a traceback.

The SDK's own retries are off (`max_retries=0`): `resilience.ResilientCaller` retries instead,
so every attempt is counted in `ModelClient.stats`, goes through the cassette (a recorded retry
replays in order), honours Retry-After, stops at an open circuit breaker and at the session's
time limit.

Why the connection pool is our own: httpx's timeout applies to each socket operation, so a
server that drips its body a byte a second, or an event stream that sends keep-alive comments
forever, never times out, and a CI job hangs until its runner kills it. Every socket operation
of a call is given only what is left of the call's own deadline (`--llm-timeout`, or less when
the session's `--llm-time-limit` ends sooner), so the whole call ends in time, on every wire
format, whether the SDK, vcrpy or our parser reads the body. The pool also stops reading a body
past `--llm-max-response-bytes`. Both fire below vcrpy, which then records nothing of the call.
"""

from __future__ import annotations

import os
import random
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import httpcore2
import httpx2

from pytest_llmgate.cassettes import LATENCY_HEADER, RecordingMissing
from pytest_llmgate.model.adapters import WireAdapter, adapter_for
from pytest_llmgate.model.targets import DEFAULT_KEY_ENV, AzureDeployment, Target
from pytest_llmgate.recording import RecordingTransport, current_session, note_arrival
from pytest_llmgate.reply import Reply
from pytest_llmgate.resilience import (
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_MAX_RETRY_WAIT_S,
    CallError,
    CallStats,
    CircuitBreakers,
    Deadline,
    ResilientCaller,
    ResponseTooLarge,
    RetryPolicy,
    parse_retry_after,
    parse_should_retry,
)
from pytest_llmgate.response import ApiError, ResponseError, parse_chat_completion

__all__ = ["PLACEHOLDER_KEY", "CallError", "ClientSettings", "ModelClient"]

# Sent when no key is configured: replay needs none, and local servers (vLLM, Ollama) ignore it.
PLACEHOLDER_KEY = "llmgate-no-key"


@dataclass(frozen=True)
class ClientSettings:
    """Where and how patiently to call models.

    `max_retries` is our own retry count per call (the SDK never retries); 0 for replay, where a
    recorded retry is replayed anyway. `time_limit_s` bounds all calls of the session together;
    `circuit_threshold` consecutive retryable failures of one model open its circuit breaker
    (0 turns breakers off) and `circuit_cooldown_s` later one trial call is let through (None:
    the circuit stays open for the rest of the session). `timeout_s` bounds one request from
    connect to the body's last byte; a Retry-After over `max_retry_wait_s` fails the call; a
    body over `max_response_bytes` fails it too.
    """

    base_url: str | None = None
    api_key: str | None = None
    timeout_s: float = 60.0
    max_retries: int = 3
    retry_base_delay_s: float = 0.5
    retry_max_delay_s: float = 30.0
    circuit_threshold: int = 5
    circuit_cooldown_s: float | None = 60.0
    time_limit_s: float | None = None
    model_concurrency: tuple[tuple[str, int], ...] = ()  # (model, most calls in flight at once)
    max_retry_wait_s: float = DEFAULT_MAX_RETRY_WAIT_S
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES

    def __post_init__(self) -> None:
        # Fail when the settings are made, not on the first model call.
        self.retry_policy()
        if isinstance(self.max_response_bytes, bool) or not isinstance(self.max_response_bytes, int):
            raise ValueError(f"max_response_bytes must be a whole number, got {self.max_response_bytes!r}")
        if self.max_response_bytes < 1:
            raise ValueError(f"max_response_bytes must be >= 1, got {self.max_response_bytes}")
        CircuitBreakers(self.circuit_threshold, self.circuit_cooldown_s)
        Deadline(self.time_limit_s)

    @classmethod
    def from_environment(
        cls,
        base_url: str | None,
        timeout_s: float,
        max_retries: int,
        *,
        retry_base_delay_s: float = 0.5,
        retry_max_delay_s: float = 30.0,
        circuit_threshold: int = 5,
        circuit_cooldown_s: float | None = 60.0,
        time_limit_s: float | None = None,
        model_concurrency: tuple[tuple[str, int], ...] = (),
        max_retry_wait_s: float = DEFAULT_MAX_RETRY_WAIT_S,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> ClientSettings:
        return cls(
            base_url=base_url or os.environ.get("OPENAI_BASE_URL") or None,
            api_key=os.environ.get("OPENAI_API_KEY") or None,
            timeout_s=timeout_s,
            max_retries=max_retries,
            retry_base_delay_s=retry_base_delay_s,
            retry_max_delay_s=retry_max_delay_s,
            circuit_threshold=circuit_threshold,
            circuit_cooldown_s=circuit_cooldown_s,
            time_limit_s=time_limit_s,
            model_concurrency=model_concurrency,
            max_retry_wait_s=max_retry_wait_s,
            max_response_bytes=max_response_bytes,
        )

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            max_retries=self.max_retries,
            base_delay_s=self.retry_base_delay_s,
            max_delay_s=self.retry_max_delay_s,
            max_retry_wait_s=self.max_retry_wait_s,
        )

    def secrets(self) -> tuple[str, ...]:
        """Values that must never be written to a cassette, a report or a log."""
        values = [self.api_key, os.environ.get("OPENAI_ORG_ID"), os.environ.get("OPENAI_PROJECT_ID")]
        return tuple(value for value in values if value)


class ModelClient:
    """A reusable SDK client; cheap per call, built once per session, safe to share between threads.

    `sleep`, `clock` (monotonic), `wall_clock` (epoch, for HTTP-date Retry-After) and `uniform`
    (the backoff's random draw) are injectable for tests. `deadline` overrides the one built from
    `settings.time_limit_s`, e.g. to start the clock at session start rather than first call.
    """

    def __init__(
        self,
        settings: ClientSettings,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        uniform: Callable[[float, float], float] | None = None,
        deadline: Deadline | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.settings = settings
        self.stats = CallStats()
        self._wall_clock = wall_clock
        self._slots = {
            model: threading.BoundedSemaphore(limit) for model, limit in settings.model_concurrency
        }
        self._caller = ResilientCaller(
            settings.retry_policy(),
            breakers=CircuitBreakers(settings.circuit_threshold, settings.circuit_cooldown_s, clock=clock),
            deadline=deadline or Deadline(settings.time_limit_s, clock=clock),
            stats=self.stats,
            sleep=sleep,
            uniform=uniform or random.Random().uniform,
        )
        tls = httpx2.create_ssl_context()  # made once, shared: building one costs ~20 ms
        transport = RecordingTransport(verify=tls)
        transport._pool = _BoundedPool(settings.max_response_bytes, tls)  # see the module docstring
        self._http_client = httpx2.Client(transport=transport, timeout=settings.timeout_s)
        self._environ = environ if environ is not None else os.environ
        self._sdk_clients: dict[tuple[Any, ...], Any] = {}
        self._sdk_lock = threading.Lock()
        self._target_slots: dict[str, threading.BoundedSemaphore] = {}
        self._client = self._sdk_for(None)

    def _sdk_for(self, target: Target | None) -> Any:
        """The SDK client of a target's endpoint and key (one per distinct endpoint, shared).

        The key is read from the target's variable here, when a call is made: a replay never
        asks. A missing key sends a placeholder (local servers ignore keys); a server that wants
        one answers 401, which the failure message explains.
        """
        from openai import AzureOpenAI, OpenAI

        headers: tuple[tuple[str, str], ...] = ()
        azure: AzureDeployment | None = None
        if target is None:
            base_url, key = self.settings.base_url, self.settings.api_key
        else:
            base_url = target.base_url or self.settings.base_url
            key = target.api_key(self._environ)
            if target.api_key_env == DEFAULT_KEY_ENV and key is None:
                key = self.settings.api_key
            azure, headers = target.azure, tuple(sorted(target.headers.items()))
        cache_key = (base_url, key, azure, headers)
        with self._sdk_lock:
            client = self._sdk_clients.get(cache_key)
            if client is not None:
                return client
            kwargs: dict[str, Any] = {
                "api_key": key or PLACEHOLDER_KEY,
                "timeout": self.settings.timeout_s,
                "max_retries": 0,  # ours count and record every attempt; the SDK's would hide them
                "http_client": self._http_client,
                "default_headers": dict(headers),
            }
            if azure is not None:
                endpoint = (base_url or "").rstrip("/")
                endpoint = endpoint[: -len("/openai")] if endpoint.endswith("/openai") else endpoint
                client = AzureOpenAI(
                    azure_endpoint=endpoint,
                    azure_deployment=azure.deployment,
                    api_version=azure.api_version,
                    **kwargs,
                )
            else:
                if base_url:
                    kwargs["base_url"] = base_url
                client = OpenAI(**kwargs)
            self._sdk_clients[cache_key] = client
            return client

    @property
    def base_url(self) -> str:
        return str(self._client.base_url)

    @property
    def breakers(self) -> CircuitBreakers:
        return self._caller.breakers

    @property
    def deadline(self) -> Deadline:
        return self._caller.deadline

    def close(self) -> None:
        self._http_client.close()

    def complete(self, request: dict[str, Any], target: Target | None = None) -> Reply:
        """Send one chat completion request to `target`'s endpoint (the session's when None),
        retrying as the settings allow; return the parsed reply or raise CallError. A
        RecordingMissing passes through, never retried."""
        model = target.name if target is not None else str(request.get("model") or "the model")
        client = self._sdk_for(target)
        slots = self._slots.get(model) or self._slots_for(target)

        adapter = adapter_for(target.api if target is not None else None)
        try:
            body = adapter.build(request)
        except ValueError as exc:  # a case the wire format cannot express (TranslationError)
            raise CallError("config", f"{model}: {exc}") from None

        def attempt(remaining: float | None) -> Reply:
            return self._attempt(client, adapter, body, model, remaining)

        if slots is None:
            return self._caller.call(model, attempt)
        with slots:  # a per-model limit (--llm-model-concurrency, a target's concurrency)
            return self._caller.call(model, attempt)

    def _slots_for(self, target: Target | None) -> threading.BoundedSemaphore | None:
        if target is None or target.concurrency is None:
            return None
        with self._sdk_lock:
            return self._target_slots.setdefault(target.name, threading.BoundedSemaphore(target.concurrency))

    def _attempt(
        self,
        client: Any,
        adapter: WireAdapter,
        request: dict[str, Any],
        model: str,
        remaining_s: float | None,
    ) -> Reply:
        """One request, bounded as a whole (connect to last byte) by the timeout, or by what is
        left of the time limit if that is less."""
        import openai

        clipped = remaining_s is not None and remaining_s < self.settings.timeout_s
        bound_s = remaining_s if clipped and remaining_s is not None else self.settings.timeout_s
        params = {**request, "timeout": remaining_s} if clipped else request
        token = _call_deadline.set(time.monotonic() + bound_s)
        try:
            endpoint = client.responses if adapter.api == "responses" else client.chat.completions
            raw = endpoint.with_raw_response.create(**params)
            http = raw.http_response
            body = http.read()
        except RecordingMissing:
            raise
        except ResponseTooLarge as exc:
            raise _too_large(exc) from None
        except openai.APIStatusError as exc:
            raise self._status_error(exc.response) from None
        except (openai.APITimeoutError, httpx2.TimeoutException):
            if clipped and remaining_s is not None:
                raise self.deadline.error(
                    model, f"no complete answer in the last {remaining_s:.1f} s of the time limit"
                ) from None
            raise CallError(
                "timeout",
                f"no complete answer within {self.settings.timeout_s:g} s (the whole call, a slow "
                "body or an endless stream included; raise it with --llm-timeout)",
            ) from None
        except openai.APIConnectionError as exc:
            missing = _find_cause(exc, RecordingMissing)
            if missing is not None:
                raise missing from None
            cause = exc.__cause__ or exc
            raise CallError(
                "connection", f"cannot reach {client.base_url}: {type(cause).__name__}: {cause}"
            ) from None
        except TypeError as exc:
            raise CallError("config", f"chat.completions.create rejected the case's params: {exc}") from None
        except Exception as exc:  # the SDK can surface bare exceptions (e.g. JSONDecodeError)
            missing = _find_cause(exc, RecordingMissing)
            if missing is not None:
                raise missing from None
            raise CallError("sdk", f"{type(exc).__name__}: {exc}") from None
        finally:
            _call_deadline.reset(token)
        if len(body) > self.settings.max_response_bytes:  # a compressed body that inflated past it
            raise _too_large(ResponseTooLarge(len(body), self.settings.max_response_bytes, decoded=True))
        _note_first_content(adapter, body, http.headers)
        try:
            return adapter.parse(body, http.status_code, http.headers.get("content-type"))
        except ApiError as exc:
            raise CallError("api", str(exc), status=exc.status, code=exc.code, param=exc.param) from None
        except ResponseError as exc:
            raise CallError("response", str(exc), status=http.status_code) from None

    def _status_error(self, response: httpx2.Response) -> CallError:
        """The error status's body parsed into the API's message, with what the server said about
        retrying; `replayed` when the response came from a cassette (it carries our latency header)."""
        message = f"HTTP {response.status_code}"
        code = param = None
        try:
            parse_chat_completion(
                response.read(),
                status=response.status_code,
                content_type=response.headers.get("content-type"),
            )
        except ApiError as exc:
            message, code, param = str(exc), exc.code, exc.param
        except ResponseError as exc:
            message = str(exc)
        except Exception as exc:  # reading the body failed (connection cut mid-body)
            message = f"HTTP {response.status_code} (body unreadable: {type(exc).__name__}: {exc})"
        headers = response.headers
        return CallError(
            "api",
            message,
            status=response.status_code,
            retry_after_s=parse_retry_after(headers, now=self._wall_clock()),
            should_retry=parse_should_retry(headers),
            replayed=LATENCY_HEADER in headers,
            code=code,
            param=param,
        )


def _note_first_content(adapter: WireAdapter, body: bytes, headers: httpx2.Headers) -> None:
    """Tell the cassette where a streamed answer's first content ended, for its time to first
    token. Only a body as it came over the wire can be mapped to its arrival times."""
    session = current_session()
    if session is None or "event-stream" not in headers.get("content-type", ""):
        return
    if headers.get("content-encoding", "identity") not in ("identity", ""):
        return  # compressed on the wire: its byte offsets are not the body's
    offset = adapter.first_content_offset(body)
    if offset is not None:
        session.note_first_content(offset)


def _too_large(exc: ResponseTooLarge) -> CallError:
    # Kind "response": not retried, the same request would bring the same body (and bill it).
    return CallError("response", exc.describe())


_call_deadline: ContextVar[float | None] = ContextVar("llmgate_call_deadline", default=None)
"""When (time.monotonic) the calling thread's model call must be over; None outside a call."""


def _time_left(timeout: float | None, error: type[httpcore2.TimeoutException]) -> float | None:
    """A socket operation's timeout cut to what is left of the call's deadline; `error` once
    nothing is."""
    deadline = _call_deadline.get()
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise error("the call's time is up")
    return left if timeout is None else min(timeout, left)


class _BoundedStream(httpcore2.NetworkStream):
    """A connection whose every read and write ends by the calling thread's call deadline."""

    def __init__(self, inner: httpcore2.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _time_left(timeout, httpcore2.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _time_left(timeout, httpcore2.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore2.NetworkStream:
        left = _time_left(timeout, httpcore2.ConnectTimeout)
        return _BoundedStream(self._inner.start_tls(ssl_context, server_hostname, left))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _BoundedBackend(httpcore2.NetworkBackend):
    """Opens `_BoundedStream`s; connecting, too, ends by the call deadline."""

    def __init__(self) -> None:
        self._inner = httpcore2.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
    ) -> httpcore2.NetworkStream:
        left = _time_left(timeout, httpcore2.ConnectTimeout)
        return _BoundedStream(self._inner.connect_tcp(host, port, left, local_address, socket_options))

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
    ) -> httpcore2.NetworkStream:
        left = _time_left(timeout, httpcore2.ConnectTimeout)
        return _BoundedStream(self._inner.connect_unix_socket(path, left, socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class _BoundedPool(httpcore2.ConnectionPool):
    """httpx2's default pool (same limits, TLS and HTTP/1.1) over `_BoundedBackend`, whose
    response bodies stop at `max_response_bytes`."""

    def __init__(self, max_response_bytes: int, ssl_context: ssl.SSLContext) -> None:
        super().__init__(
            ssl_context=ssl_context,
            max_connections=100,  # httpx2's DEFAULT_LIMITS
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=_BoundedBackend(),
        )
        self.max_response_bytes = max_response_bytes

    def handle_request(self, request: httpcore2.Request) -> httpcore2.Response:
        response = super().handle_request(request)
        announced = _content_length(response.headers)
        if announced is not None and announced > self.max_response_bytes:
            response.close()  # unread: the connection is dropped, not reused
            raise ResponseTooLarge(0, self.max_response_bytes, announced_bytes=announced)
        assert isinstance(response.stream, Iterable)
        response.stream = _CappedBody(response.stream, self.max_response_bytes)
        return response


def _content_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    for name, value in headers:
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class _CappedBody:
    """A response body that raises `ResponseTooLarge` instead of yielding past `limit` bytes."""

    def __init__(self, stream: Iterable[bytes], limit: int) -> None:
        self._stream = stream
        self._limit = limit

    def __iter__(self) -> Iterator[bytes]:
        read = 0
        for chunk in self._stream:
            read += len(chunk)
            if read > self._limit:
                raise ResponseTooLarge(read, self._limit)
            note_arrival(len(chunk))  # when it came, for a stream's time to first token
            yield chunk

    def close(self) -> None:
        close = getattr(self._stream, "close", None)
        if close is not None:
            close()


def _find_cause(exc: BaseException, kind: type[RecordingMissing]) -> RecordingMissing | None:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None
