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
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx2

from pytest_llmgate.cassettes import LATENCY_HEADER, RecordingMissing
from pytest_llmgate.recording import RecordingTransport
from pytest_llmgate.reply import Reply
from pytest_llmgate.resilience import (
    CallError,
    CallStats,
    CircuitBreakers,
    Deadline,
    ResilientCaller,
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
    the circuit stays open for the rest of the session).
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

    def __post_init__(self) -> None:
        # Fail when the settings are made, not on the first model call.
        self.retry_policy()
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
        )

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            max_retries=self.max_retries,
            base_delay_s=self.retry_base_delay_s,
            max_delay_s=self.retry_max_delay_s,
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
    ) -> None:
        from openai import OpenAI

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
        http_client = httpx2.Client(transport=RecordingTransport(), timeout=settings.timeout_s)
        kwargs: dict[str, Any] = {
            "api_key": settings.api_key or PLACEHOLDER_KEY,
            "timeout": settings.timeout_s,
            "max_retries": 0,  # ours count and record every attempt; the SDK's would hide them
            "http_client": http_client,
        }
        if settings.base_url:
            kwargs["base_url"] = settings.base_url
        self._client = OpenAI(**kwargs)

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
        self._client.close()

    def complete(self, request: dict[str, Any]) -> Reply:
        """Send one chat completion request, retrying as the settings allow; return the parsed
        reply or raise CallError. A RecordingMissing passes through, never retried."""
        model = str(request.get("model") or "the model")
        slots = self._slots.get(model)
        if slots is None:
            return self._caller.call(model, lambda remaining: self._attempt(request, model, remaining))
        with slots:  # a per-model limit (--llm-model-concurrency), held across its retries
            return self._caller.call(model, lambda remaining: self._attempt(request, model, remaining))

    def _attempt(self, request: dict[str, Any], model: str, remaining_s: float | None) -> Reply:
        """One request. Its timeout is cut to what is left of the time limit, if that is less."""
        import openai

        clipped = remaining_s is not None and remaining_s < self.settings.timeout_s
        params = {**request, "timeout": remaining_s} if clipped else request
        try:
            raw = self._client.chat.completions.with_raw_response.create(**params)
            http = raw.http_response
            body = http.read()
        except RecordingMissing:
            raise
        except openai.APIStatusError as exc:
            raise self._status_error(exc.response) from None
        except openai.APITimeoutError:
            if clipped and remaining_s is not None:
                raise self.deadline.error(
                    model, f"no answer in the last {remaining_s:.1f} s of the time limit"
                ) from None
            raise CallError(
                "timeout", f"no answer within {self.settings.timeout_s:g} s (raise it with --llm-timeout)"
            ) from None
        except openai.APIConnectionError as exc:
            missing = _find_cause(exc, RecordingMissing)
            if missing is not None:
                raise missing from None
            cause = exc.__cause__ or exc
            raise CallError(
                "connection", f"cannot reach {self.base_url}: {type(cause).__name__}: {cause}"
            ) from None
        except TypeError as exc:
            raise CallError("config", f"chat.completions.create rejected the case's params: {exc}") from None
        except Exception as exc:  # the SDK can surface bare exceptions (e.g. JSONDecodeError)
            missing = _find_cause(exc, RecordingMissing)
            if missing is not None:
                raise missing from None
            raise CallError("sdk", f"{type(exc).__name__}: {exc}") from None
        try:
            return parse_chat_completion(
                body, status=http.status_code, content_type=http.headers.get("content-type")
            )
        except ApiError as exc:
            raise CallError("api", str(exc), status=exc.status) from None
        except ResponseError as exc:
            raise CallError("response", str(exc), status=http.status_code) from None

    def _status_error(self, response: httpx2.Response) -> CallError:
        """The error status's body parsed into the API's message, with what the server said about
        retrying; `replayed` when the response came from a cassette (it carries our latency header)."""
        message = f"HTTP {response.status_code}"
        try:
            parse_chat_completion(
                response.read(),
                status=response.status_code,
                content_type=response.headers.get("content-type"),
            )
        except ResponseError as exc:  # ApiError included
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
        )


def _find_cause(exc: BaseException, kind: type[RecordingMissing]) -> RecordingMissing | None:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None
