"""Resilient model calls: counted retries with jittered backoff, Retry-After, a per-model circuit
breaker and an overall time limit.

Why our own retries instead of the SDK's: the SDK retries out of sight, so a flaky endpoint
would multiply spend and latency with nothing in the report saying so. Here every attempt is
counted (`CallStats`), a model that keeps failing stops being called (`CircuitBreaker`), and no
sleep runs past the session's time limit (`Deadline`).

Plain Python: no openai, no pytest. Sleep, clock and random numbers are injected so tests run
in microseconds. Everything shared between threads (breakers, stats) takes a lock, because the
runner may call models from a thread pool.

What is retried, and why:

* HTTP 408, 409, 429 and every 5xx, timeouts and connection errors: transient by nature, the
  same request may well succeed a moment later.
* Not 400/401/403/404/422: the request or the account is wrong and will be wrong again.
* Not a configuration error (the SDK rejected the case's params) or an unexpected SDK error.
* Not a 200 whose body is not a chat completion (kind "response"): a server that answers
  garbage tends to answer the same garbage again, and each re-fetch may be billed.
* A server may override the status rule with `x-should-retry: true|false`, as the SDK honours.
"""

from __future__ import annotations

import email.utils
import math
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timezone
from typing import Any, TypeVar

__all__ = [
    "DEFAULT_MAX_RESPONSE_BYTES",
    "DEFAULT_MAX_RETRY_WAIT_S",
    "RETRYABLE_KINDS",
    "CallError",
    "CallStats",
    "CircuitBreaker",
    "CircuitBreakers",
    "Deadline",
    "ResilientCaller",
    "ResponseTooLarge",
    "RetryPolicy",
    "StatsSnapshot",
    "is_retryable_status",
    "parse_retry_after",
    "parse_should_retry",
]

T = TypeVar("T")

RETRYABLE_KINDS = frozenset({"timeout", "connection"})
"""Failure kinds retried whatever their status: the request never got an answer."""

_RETRYABLE_4XX = frozenset({408, 409, 429})

DEFAULT_MAX_RETRY_WAIT_S = 60.0
"""The longest Retry-After a call waits for (--llm-max-retry-wait); a longer one fails the call."""

DEFAULT_MAX_RESPONSE_BYTES = 10 * 1024 * 1024
"""The largest response body read (--llm-max-response-bytes); a larger one fails the call."""


class CallError(Exception):
    """A model call that produced no usable reply. `kind` groups errors for reports.

    Kinds: api (an error status or error object), timeout, connection, config, sdk, response (a
    body that is not a chat completion), circuit-open and deadline. `retry_after_s` and
    `should_retry` carry what the server said about retrying; `replayed` marks a failure read
    back from a cassette rather than received live; `attempts` is how many requests the call made.
    """

    def __init__(
        self,
        kind: str,
        message: str,
        *,
        status: int | None = None,
        retry_after_s: float | None = None,
        should_retry: bool | None = None,
        replayed: bool = False,
        attempts: int = 1,
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.status = status
        self.retry_after_s = retry_after_s
        self.should_retry = should_retry
        self.replayed = replayed
        self.attempts = attempts
        self.code = code  # the API's error code and parameter, when it said (unsupported_parameter)
        self.param = param

    def amended(self, message: str, *, kind: str | None = None, attempts: int | None = None) -> CallError:
        """A copy with a new message (and optionally kind and attempt count), the rest kept."""
        return CallError(
            kind or self.kind,
            message,
            status=self.status,
            retry_after_s=self.retry_after_s,
            should_retry=self.should_retry,
            replayed=self.replayed,
            attempts=self.attempts if attempts is None else attempts,
            code=self.code,
            param=self.param,
        )


class ResponseTooLarge(Exception):
    """A response body passed the size bound; raised while it is read, so the rest never is.

    Why a bound at all: a body is held in memory, written whole into the cassette and quoted in
    reports, and a runaway server (or an endless stream) would fill all three. `read_bytes` is
    what was read before stopping; `announced_bytes` the server's Content-Length, if it sent one
    (then nothing needs to be read to know); `decoded` marks a compressed body that inflated past
    the bound.
    """

    def __init__(
        self,
        read_bytes: int,
        limit_bytes: int,
        *,
        announced_bytes: int | None = None,
        decoded: bool = False,
    ) -> None:
        self.read_bytes = read_bytes
        self.limit_bytes = limit_bytes
        self.announced_bytes = announced_bytes
        self.decoded = decoded
        super().__init__(self.describe())

    def describe(self) -> str:
        """One line for a CallError; the runner puts the model in front, the item the case."""
        if self.announced_bytes is not None:
            size = f"the server announced {self.announced_bytes} bytes"
            suggestion = f"--llm-max-response-bytes={self.announced_bytes}"
        elif self.decoded:
            size = f"it decompressed to {self.read_bytes} bytes or more"
            suggestion = "a larger --llm-max-response-bytes=N"
        else:
            size = f"{self.read_bytes} bytes were read before the call was stopped"
            suggestion = "a larger --llm-max-response-bytes=N"
        return (
            f"the response is larger than --llm-max-response-bytes {self.limit_bytes} ({size}); "
            f"nothing of it was recorded. If answers this large are expected, set {suggestion}"
        )


def is_retryable_status(status: int) -> bool:
    """408, 409, 429 and every 5xx: the server may well answer the same request next time."""
    return status in _RETRYABLE_4XX or 500 <= status <= 599


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def parse_retry_after(headers: Mapping[str, str], *, now: float) -> float | None:
    """Seconds the server asked to wait, from `retry-after-ms` or `retry-after`; None if it did not.

    `retry-after` may be seconds (a float is accepted, as servers send them) or an HTTP date,
    measured from `now` (seconds since the epoch). A date in the past means 0; a number too
    large for a float means forever (`math.inf`), which callers cap or give up on.
    """
    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        text = _header(headers, name)
        if text is None:
            continue
        try:
            value = float(text)
        except ValueError:
            continue
        if math.isnan(value):
            continue
        return max(0.0, value / divisor)
    text = _header(headers, "retry-after")
    if text is None:
        return None
    try:
        when = email.utils.parsedate_to_datetime(text.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, when.timestamp() - now)


def parse_should_retry(headers: Mapping[str, str]) -> bool | None:
    """The server's explicit `x-should-retry: true|false`, or None when it said nothing."""
    text = (_header(headers, "x-should-retry") or "").strip().lower()
    return {"true": True, "false": False}.get(text)


def _seconds(value: float) -> str:
    return f"{value:.1f} s" if value < 100 else f"{value:.0f} s"


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a failed model call is retried.

    `max_retries` counts retries after the first attempt, so a call makes at most
    `max_retries + 1` requests. Backoff is "full jitter" (AWS Architecture Blog, "Exponential
    Backoff And Jitter"): a uniform draw from `[0, min(max_delay_s, base_delay_s * 2**retry)]`,
    which spreads the retries of parallel callers instead of having them return in lockstep.
    A server's Retry-After wins over the backoff when `honour_retry_after` is set, and is waited
    in full: retrying earlier is what the server told us not to do, and each early request may be
    billed and answered with another 429. One longer than `max_retry_wait_s` is not waited for:
    the call fails at once (see `retry_wait_refused`), so one header cannot stall a session.
    """

    max_retries: int = 3
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0
    honour_retry_after: bool = True
    max_retry_wait_s: float = DEFAULT_MAX_RETRY_WAIT_S

    def __post_init__(self) -> None:
        if isinstance(self.max_retries, bool) or not isinstance(self.max_retries, int):
            raise ValueError(f"max_retries must be a whole number, got {self.max_retries!r}")
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries}")
        for name in ("base_delay_s", "max_delay_s", "max_retry_wait_s"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number of seconds >= 0, got {value!r}")

    def is_retryable(self, error: CallError) -> bool:
        """Whether another attempt could succeed; see the module docstring for the reasons."""
        if error.kind in RETRYABLE_KINDS:
            return True
        if error.kind != "api" or error.status is None:
            return False
        if error.should_retry is not None:
            return error.should_retry
        return is_retryable_status(error.status)

    def backoff_s(self, retry: int, uniform: Callable[[float, float], float]) -> float:
        """Full-jitter backoff before retry number `retry` (0 for the first retry)."""
        ceiling = min(self.max_delay_s, self.base_delay_s * 2.0 ** min(retry, 64))
        return min(ceiling, max(0.0, uniform(0.0, ceiling)))

    def delay_s(self, error: CallError, retry: int, uniform: Callable[[float, float], float]) -> float:
        """Seconds to sleep before retry number `retry` after `error`: the server's Retry-After
        (possibly `math.inf`; check `retry_wait_refused` before sleeping), else the backoff."""
        if self.honour_retry_after and error.retry_after_s is not None:
            return error.retry_after_s
        return self.backoff_s(retry, uniform)

    def retry_wait_refused(self, error: CallError) -> str | None:
        """Why `error`'s Retry-After is too long to wait for, or None when it is not. (The
        model is not named: the runner puts it in front of every call's error.)"""
        asked = error.retry_after_s
        if not self.honour_retry_after or asked is None or asked <= self.max_retry_wait_s:
            return None
        if math.isfinite(asked):
            when = _seconds(asked)
            later = f"raise it with --llm-max-retry-wait={math.ceil(asked)} or try later"
        else:
            when, later = "longer than any wait", "try later"
        return (
            f"{error.message}; the server asked to retry after {when}, more than "
            f"--llm-max-retry-wait {self.max_retry_wait_s:g} s, so the call was not retried "
            f"(an early retry is refused and may be billed); {later}"
        )


class Deadline:
    """An overall time limit for every model call of a session; None means no limit.

    The clock starts when the deadline is built (the plugin builds its client on the first
    case). Once the limit has passed, calls fail at once with kind "deadline", and no sleep
    between retries is allowed to end beyond it.
    """

    def __init__(self, limit_s: float | None = None, *, clock: Callable[[], float] = time.monotonic) -> None:
        if limit_s is not None and (not math.isfinite(limit_s) or limit_s <= 0):
            raise ValueError(f"the time limit must be a positive number of seconds, got {limit_s!r}")
        self.limit_s = limit_s
        self._clock = clock
        self._started = clock()

    def elapsed_s(self) -> float:
        return self._clock() - self._started

    def remaining_s(self) -> float | None:
        """Seconds left (never below 0), or None when there is no limit."""
        if self.limit_s is None:
            return None
        return max(0.0, self.limit_s - self.elapsed_s())

    def expired(self) -> bool:
        remaining = self.remaining_s()
        return remaining is not None and remaining <= 0

    def error(self, model: str, what: str, *, status: int | None = None, attempts: int = 0) -> CallError:
        """A "deadline" CallError: `what` says what happened to the call to `model`."""
        limit = self.limit_s if self.limit_s is not None else 0.0
        return CallError(
            "deadline",
            f"{model}: {what}. The overall time limit for model calls is {limit:g} s and "
            f"{_seconds(self.elapsed_s())} have passed; raise it (--llm-time-limit) or run fewer cases.",
            status=status,
            attempts=attempts,
        )


class CircuitBreaker:
    """Stops calling one model after `threshold` consecutive retryable failures.

    Counted per attempt, not per call: with 3 retries per call, counting calls would let 4x the
    threshold requests hit a broken endpoint before stopping. Only retryable failures count
    (5xx, 429, timeouts, connection errors): a 400 proves the endpoint answers, so it neither
    counts nor resets. A success closes the breaker. While open, every call fails at once with
    kind "circuit-open". With `cooldown_s` set, the first call after the cool-down is let
    through as a trial ("half-open"): its success closes the breaker, a retryable failure
    opens it again for another cool-down; other calls keep failing fast meanwhile.
    """

    def __init__(
        self,
        model: str,
        *,
        threshold: int = 5,
        cooldown_s: float | None = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if threshold < 1:
            raise ValueError(f"the circuit breaker threshold must be >= 1, got {threshold}")
        if cooldown_s is not None and (not math.isfinite(cooldown_s) or cooldown_s < 0):
            raise ValueError(f"the circuit breaker cool-down must be >= 0 seconds, got {cooldown_s!r}")
        self.model = model
        self.threshold = threshold
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._lock = threading.Lock()
        self._state = "closed"
        self._failures = 0
        self._last: CallError | None = None
        self._opened_at = 0.0
        self._trial_running = False

    @property
    def state(self) -> str:
        """ "closed", "open" or "half-open" (a trial call is allowed or running)."""
        with self._lock:
            if self._state == "open" and self._cooled_down():
                return "half-open"
            return self._state

    @property
    def consecutive_failures(self) -> int:
        with self._lock:
            return self._failures

    def _cooled_down(self) -> bool:
        return self.cooldown_s is not None and self._clock() - self._opened_at >= self.cooldown_s

    def allow(self) -> None:
        """Return if an attempt may be made now; raise a "circuit-open" CallError if not."""
        with self._lock:
            if self._state == "closed":
                return
            if self._state == "open" and self._cooled_down():
                self._state = "half-open"
            if self._state == "half-open" and not self._trial_running:
                self._trial_running = True
                return
            raise self._open_error()

    def record_success(self) -> None:
        with self._lock:
            self._state = "closed"
            self._failures = 0
            self._last = None
            self._trial_running = False

    def record_failure(self, error: CallError) -> None:
        """A retryable failure of one attempt."""
        with self._lock:
            self._failures += 1
            self._last = error
            if self._state == "half-open" or self._failures >= self.threshold:
                self._state = "open"
                self._opened_at = self._clock()
                self._trial_running = False

    def release(self) -> None:
        """An attempt ended in a way that says nothing about the endpoint's health (a 400, a
        missing recording, a replayed answer, an interrupt): free the trial slot, if it held it."""
        with self._lock:
            self._trial_running = False

    def _open_error(self) -> CallError:
        last = self._last
        cause = f"the last: {last.message}" if last is not None else "no error recorded"
        if self.cooldown_s is None:
            later = "for the rest of the session"
        else:
            wait = max(0.0, self.cooldown_s - (self._clock() - self._opened_at))
            later = f"until a trial call in {_seconds(wait)}"
        return CallError(
            "circuit-open",
            f"circuit open for model {self.model!r}: {self._failures} consecutive attempts failed "
            f"({cause}); calls to {self.model!r} fail at once {later} instead of hammering the "
            "endpoint. Check the endpoint, rate limit and quota, then re-run.",
            status=last.status if last is not None else None,
            attempts=0,
        )


class CircuitBreakers:
    """One `CircuitBreaker` per model, created on first use; threshold 0 turns them off."""

    def __init__(
        self,
        threshold: int = 5,
        cooldown_s: float | None = 60.0,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if threshold < 0:
            raise ValueError(f"the circuit breaker threshold must be >= 0 (0 = off), got {threshold}")
        if threshold:
            CircuitBreaker("-", threshold=threshold, cooldown_s=cooldown_s)  # validate now, not mid-run
        self.threshold = threshold
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._lock = threading.Lock()
        self._breakers: dict[str, CircuitBreaker] = {}

    def get(self, model: str) -> CircuitBreaker | None:
        if not self.threshold:
            return None
        with self._lock:
            breaker = self._breakers.get(model)
            if breaker is None:
                breaker = CircuitBreaker(
                    model, threshold=self.threshold, cooldown_s=self.cooldown_s, clock=self._clock
                )
                self._breakers[model] = breaker
            return breaker

    def open_models(self) -> list[str]:
        """Models whose breaker is not closed, for a session summary."""
        with self._lock:
            breakers = list(self._breakers.values())
        return sorted(breaker.model for breaker in breakers if breaker.state != "closed")


@dataclass(frozen=True)
class StatsSnapshot:
    """Counters of model calls at one moment, as plain data (reports, xdist transport).

    `calls` are `complete()` calls; `attempts` are requests actually sent or replayed (a call
    refused by an open breaker or an expired deadline makes none); `retries` are attempts beyond
    each call's first; `waited_s` is the time slept between them; `failures` counts calls that
    ended without a reply, by error kind.
    """

    calls: int = 0
    attempts: int = 0
    retries: int = 0
    waited_s: float = 0.0
    failures: dict[str, int] = field(default_factory=dict)

    @property
    def failed(self) -> int:
        return sum(self.failures.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "attempts": self.attempts,
            "retries": self.retries,
            "waited_s": self.waited_s,
            "failures": dict(self.failures),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StatsSnapshot:
        return cls(
            calls=int(data.get("calls", 0)),
            attempts=int(data.get("attempts", 0)),
            retries=int(data.get("retries", 0)),
            waited_s=float(data.get("waited_s", 0.0)),
            failures={str(kind): int(count) for kind, count in dict(data.get("failures", {})).items()},
        )

    def merged(self, other: StatsSnapshot) -> StatsSnapshot:
        """The sum of two snapshots, e.g. of two xdist workers."""
        failures = dict(self.failures)
        for kind, count in other.failures.items():
            failures[kind] = failures.get(kind, 0) + count
        return StatsSnapshot(
            calls=self.calls + other.calls,
            attempts=self.attempts + other.attempts,
            retries=self.retries + other.retries,
            waited_s=self.waited_s + other.waited_s,
            failures=failures,
        )

    def summary(self) -> str:
        """One line for a report, e.g.
        "5 model calls, 7 requests (2 retries, 1.5 s waiting), 1 failed (timeout 1)"."""
        text = f"{self.calls} model call{'s' * (self.calls != 1)}, {self.attempts} request"
        text += "s" * (self.attempts != 1)
        text += f" ({self.retries} retr{'y' if self.retries == 1 else 'ies'}"
        text += f", {_seconds(self.waited_s)} waiting)" if self.waited_s else ")"
        if self.failures:
            kinds = ", ".join(f"{kind} {count}" for kind, count in sorted(self.failures.items()))
            text += f", {self.failed} failed ({kinds})"
        return text


class CallStats:
    """Thread-safe counters behind `StatsSnapshot`, so a report can say how many retries ran."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls = 0
        self._attempts = 0
        self._retries = 0
        self._waited_s = 0.0
        self._failures: dict[str, int] = {}

    def record_call(self) -> None:
        with self._lock:
            self._calls += 1

    def record_attempt(self) -> None:
        with self._lock:
            self._attempts += 1

    def record_retry(self, waited_s: float) -> None:
        with self._lock:
            self._retries += 1
            self._waited_s += waited_s

    def record_failure(self, kind: str) -> None:
        with self._lock:
            self._failures[kind] = self._failures.get(kind, 0) + 1

    def snapshot(self) -> StatsSnapshot:
        with self._lock:
            return StatsSnapshot(
                calls=self._calls,
                attempts=self._attempts,
                retries=self._retries,
                waited_s=self._waited_s,
                failures=dict(self._failures),
            )


class ResilientCaller:
    """Runs one model call's attempts under a retry policy, circuit breakers and a deadline.

    `attempt(remaining_s)` makes one request and returns its result or raises `CallError`;
    `remaining_s` is what is left of the time limit (None when unlimited), so the attempt can
    cap its own timeout. Any other exception (a missing recording, an interrupt) passes through
    at once, never retried.

    A retryable failure read back from a cassette (`CallError.replayed`) is followed at once by
    the next recorded attempt: the recording holds what came next, sleeping would only slow the
    replay, and the cassette's length bounds the loop (an exhausted cassette raises, unretried).
    Such replayed retries are counted in the stats but do not use up `max_retries` (replay runs
    with 0) and do not feed the breaker, since no endpoint was asked.
    """

    def __init__(
        self,
        policy: RetryPolicy | None = None,
        *,
        breakers: CircuitBreakers | None = None,
        deadline: Deadline | None = None,
        stats: CallStats | None = None,
        sleep: Callable[[float], None] = time.sleep,
        uniform: Callable[[float, float], float] | None = None,
    ) -> None:
        self.policy = policy or RetryPolicy()
        self.breakers = breakers or CircuitBreakers()
        self.deadline = deadline or Deadline()
        self.stats = stats or CallStats()
        self._sleep = sleep
        self._uniform = uniform or random.Random().uniform

    def call(self, model: str, attempt: Callable[[float | None], T]) -> T:
        """The result of the first successful attempt; or the CallError that ended the call."""
        self.stats.record_call()
        try:
            return self._attempts(model, attempt)
        except CallError as error:
            self.stats.record_failure(error.kind)
            raise
        except Exception as exc:
            self.stats.record_failure(type(exc).__name__)
            raise

    def _attempts(self, model: str, attempt: Callable[[float | None], T]) -> T:
        breaker = self.breakers.get(model)
        attempts = 0
        live_retries = 0
        while True:
            remaining = self.deadline.remaining_s()
            if remaining is not None and remaining <= 0:
                what = "not called" if not attempts else f"gave up after {attempts} failed attempts"
                raise self.deadline.error(model, what, attempts=attempts)
            if breaker is not None:
                breaker.allow()
            attempts += 1
            self.stats.record_attempt()
            try:
                return self._one(breaker, attempt, remaining)
            except CallError as error:
                error.attempts = attempts
                if not self.policy.is_retryable(error):
                    raise
                if error.replayed:
                    self.stats.record_retry(0.0)
                    continue
                if live_retries >= self.policy.max_retries:
                    if attempts == 1:
                        raise
                    raise error.amended(
                        f"{error.message} (failed {attempts} times in a row, {live_retries} "
                        f"retr{'y' if live_retries == 1 else 'ies'} with backoff; check the endpoint "
                        "and its rate limit, or raise --llm-max-retries)"
                    ) from None
                delay = self.policy.delay_s(error, live_retries, self._uniform)
                self._check_wait(model, error, delay, attempts)
                refused = self.policy.retry_wait_refused(error)
                if refused is not None:
                    raise error.amended(refused) from None
                self._sleep(delay)
                live_retries += 1
                self.stats.record_retry(delay)

    def _check_wait(self, model: str, error: CallError, delay: float, attempts: int) -> None:
        """Raise a "deadline" error instead of sleeping up to or past the end of the time limit."""
        remaining = self.deadline.remaining_s()
        if remaining is None:
            return
        which = "which" if attempts == 1 else "the last"
        tried = (
            f"gave up after {attempts} attempt{'s' * (attempts != 1)}, {which} failed with {error.message}"
        )
        asked = error.retry_after_s if self.policy.honour_retry_after else None
        if remaining <= 0:
            why = tried
        elif asked is not None and asked >= remaining:
            why = (
                f"{tried}; the server asked to wait {_seconds(asked)} (Retry-After) "
                f"but only {_seconds(remaining)} of the time limit remain"
            )
        elif delay >= remaining:
            why = f"{tried}; the next retry would start after the time limit"
        else:
            return
        raise self.deadline.error(model, why, status=error.status, attempts=attempts) from None

    def _one(
        self, breaker: CircuitBreaker | None, attempt: Callable[[float | None], T], remaining: float | None
    ) -> T:
        if breaker is None:
            return attempt(remaining)
        try:
            result = attempt(remaining)
        except CallError as error:
            if not error.replayed and self.policy.is_retryable(error):
                breaker.record_failure(error)
            else:
                breaker.release()
            raise
        except BaseException:
            breaker.release()
            raise
        breaker.record_success()
        return result
