"""Retry policy, circuit breaker, deadline and call stats, with a fake clock, sleep and random draw."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable

import pytest

from pytest_llmgate.resilience import (
    CallError,
    CallStats,
    CircuitBreaker,
    CircuitBreakers,
    Deadline,
    ResilientCaller,
    RetryPolicy,
    StatsSnapshot,
    parse_retry_after,
    parse_should_retry,
)

EPOCH = 1767225600.0  # Thu, 01 Jan 2026 00:00:00 GMT


class FakeTime:
    """A monotonic clock that only moves when the code under test sleeps (or a test advances it)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def highest(low: float, high: float) -> float:
    """A "random" draw that always takes the top of the range, so backoff delays are predictable."""
    return high


def api(
    status: int,
    *,
    retry_after_s: float | None = None,
    should_retry: bool | None = None,
    replayed: bool = False,
) -> CallError:
    return CallError(
        "api",
        f"HTTP {status}: boom",
        status=status,
        retry_after_s=retry_after_s,
        should_retry=should_retry,
        replayed=replayed,
    )


def make_caller(
    fake: FakeTime,
    policy: RetryPolicy | None = None,
    *,
    threshold: int = 0,
    cooldown_s: float | None = None,
    limit_s: float | None = None,
) -> ResilientCaller:
    return ResilientCaller(
        policy or RetryPolicy(),
        breakers=CircuitBreakers(threshold, cooldown_s, clock=fake.clock),
        deadline=Deadline(limit_s, clock=fake.clock),
        sleep=fake.sleep,
        uniform=highest,
    )


class Script:
    """An attempt function that raises the scripted errors in turn, then returns "ok"."""

    def __init__(self, *outcomes: BaseException) -> None:
        self.outcomes = list(outcomes)
        self.calls = 0
        self.remaining: list[float | None] = []

    def __call__(self, remaining_s: float | None) -> str:
        self.calls += 1
        self.remaining.append(remaining_s)
        if self.outcomes:
            raise self.outcomes.pop(0)
        return "ok"


# -- what is retried ----------------------------------------------------------------------------


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504, 507, 599])
def test_transient_statuses_are_retryable(status: int) -> None:
    assert RetryPolicy().is_retryable(api(status))


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422, 200])
def test_request_and_account_errors_are_not_retryable(status: int) -> None:
    assert not RetryPolicy().is_retryable(api(status))


@pytest.mark.parametrize(
    ("kind", "retryable"),
    [
        ("timeout", True),
        ("connection", True),
        ("config", False),
        ("sdk", False),
        ("response", False),
        ("circuit-open", False),
        ("deadline", False),
    ],
)
def test_retryable_kinds(kind: str, retryable: bool) -> None:
    assert RetryPolicy().is_retryable(CallError(kind, "x", status=200)) is retryable


def test_the_servers_x_should_retry_overrides_the_status_rule() -> None:
    policy = RetryPolicy()
    assert not policy.is_retryable(api(503, should_retry=False))
    assert policy.is_retryable(api(400, should_retry=True))
    assert parse_should_retry({"X-Should-Retry": "false"}) is False
    assert parse_should_retry({"x-should-retry": " TRUE "}) is True
    assert parse_should_retry({"x-should-retry": "maybe"}) is None
    assert parse_should_retry({}) is None


# -- delays ---------------------------------------------------------------------------------------


def test_full_jitter_backoff_doubles_up_to_the_cap() -> None:
    policy = RetryPolicy(base_delay_s=0.5, max_delay_s=3.0)
    assert [policy.backoff_s(retry, highest) for retry in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert policy.backoff_s(10_000, highest) == 3.0  # no overflow on absurd retry numbers
    ranges: list[tuple[float, float]] = []

    def record(low: float, high: float) -> float:
        ranges.append((low, high))
        return (low + high) / 2

    assert policy.backoff_s(1, record) == 0.5
    assert ranges == [(0.0, 1.0)]


def test_retry_after_wins_over_backoff_and_is_waited_in_full() -> None:
    policy = RetryPolicy(base_delay_s=0.5, max_delay_s=30.0, max_retry_wait_s=60.0)
    assert policy.delay_s(api(429, retry_after_s=7.0), 0, highest) == 7.0
    # Longer than the backoff's cap but within the wait cap: not cut short (an early retry is refused).
    assert policy.delay_s(api(429, retry_after_s=45.0), 0, highest) == 45.0
    assert policy.retry_wait_refused(api(429, retry_after_s=60.0)) is None
    assert policy.delay_s(api(503), 2, highest) == 2.0
    ignoring = RetryPolicy(honour_retry_after=False)
    assert ignoring.delay_s(api(429, retry_after_s=7.0), 0, highest) == 0.5
    assert ignoring.retry_wait_refused(api(429, retry_after_s=3600.0)) is None


def test_a_retry_after_over_the_cap_fails_at_once_with_the_servers_number_and_the_flag() -> None:
    fake = FakeTime()
    caller = make_caller(fake, RetryPolicy(max_retry_wait_s=60.0), threshold=5)
    attempt = Script(api(429, retry_after_s=300.0))
    with pytest.raises(CallError) as excinfo:
        caller.call("gpt-5.5", attempt)
    assert attempt.calls == 1
    assert fake.slept == []
    error = excinfo.value
    assert (error.kind, error.status, error.attempts) == ("api", 429, 1)
    assert error.message == (
        "HTTP 429: boom; the server asked to retry after 300 s, more than --llm-max-retry-wait "
        "60 s, so the call was not retried (an early retry is refused and may be billed); raise it with "
        "--llm-max-retry-wait=300 or try later"
    )
    stats = caller.stats.snapshot()
    assert (stats.attempts, stats.retries, stats.failures) == (1, 0, {"api": 1})  # one billed attempt


def test_an_endless_retry_after_says_try_later() -> None:
    fake = FakeTime()
    caller = make_caller(fake)
    with pytest.raises(CallError) as excinfo:
        caller.call("gpt-4o", Script(api(503, retry_after_s=math.inf)))
    assert fake.slept == []
    assert excinfo.value.message.endswith(
        "the server asked to retry after longer than any wait, more than --llm-max-retry-wait 60 s, "
        "so the call was not retried (an early retry is refused and may be billed); try later"
    )


def test_a_retry_after_under_the_cap_is_slept_in_full_then_retried() -> None:
    fake = FakeTime()
    caller = make_caller(fake, RetryPolicy(max_delay_s=30.0, max_retry_wait_s=50.0))
    assert caller.call("gpt-4o", Script(api(429, retry_after_s=45.0))) == "ok"
    assert fake.slept == [45.0]


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "2"}, 2.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"Retry-After-Ms": "250", "Retry-After": "9"}, 0.25),
        ({"retry-after-ms": "soon", "retry-after": "3"}, 3.0),
        ({"Retry-After": "Thu, 01 Jan 2026 00:00:05 GMT"}, 5.0),
        ({"Retry-After": "Wed, 31 Dec 2025 23:59:00 GMT"}, 0.0),
        ({"Retry-After": "-4"}, 0.0),
        ({"Retry-After": "1e999"}, math.inf),
        ({"Retry-After": "nan"}, None),
        ({"Retry-After": "whenever"}, None),
        ({}, None),
    ],
)
def test_parse_retry_after(headers: dict[str, str], expected: float | None) -> None:
    assert parse_retry_after(headers, now=EPOCH) == expected


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_retries", -1),
        ("max_retries", 1.5),
        ("base_delay_s", -0.1),
        ("max_delay_s", math.nan),
        ("max_retry_wait_s", -1.0),
        ("max_retry_wait_s", math.inf),
    ],
)
def test_policy_rejects_nonsense(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=field):
        RetryPolicy(**{field: value})  # type: ignore[arg-type]


# -- the retry loop -------------------------------------------------------------------------------


def test_retries_until_success_with_growing_backoff_and_counts_everything() -> None:
    fake = FakeTime()
    caller = make_caller(fake)
    attempt = Script(api(503), CallError("timeout", "slow"), CallError("connection", "refused"))
    assert caller.call("gpt-4o", attempt) == "ok"
    assert attempt.calls == 4
    assert fake.slept == [0.5, 1.0, 2.0]
    assert caller.stats.snapshot() == StatsSnapshot(calls=1, attempts=4, retries=3, waited_s=3.5)


def test_gives_up_after_max_retries_and_says_so() -> None:
    fake = FakeTime()
    caller = make_caller(fake, RetryPolicy(max_retries=2))
    attempt = Script(api(503), api(503), api(503), api(503))
    with pytest.raises(CallError) as excinfo:
        caller.call("gpt-4o", attempt)
    error = excinfo.value
    assert attempt.calls == 3
    assert (error.kind, error.status, error.attempts) == ("api", 503, 3)
    assert error.message == (
        "HTTP 503: boom (failed 3 times in a row, 2 retries with backoff; "
        "check the endpoint and its rate limit, or raise --llm-max-retries)"
    )
    assert caller.stats.snapshot().failures == {"api": 1}


def test_zero_retries_leaves_the_message_alone() -> None:
    caller = make_caller(FakeTime(), RetryPolicy(max_retries=0))
    with pytest.raises(CallError) as excinfo:
        caller.call("gpt-4o", Script(api(500)))
    assert excinfo.value.message == "HTTP 500: boom"


@pytest.mark.parametrize(
    "error", [api(400), api(401), api(422), CallError("response", "garbage", status=200)]
)
def test_permanent_failures_are_not_retried(error: CallError) -> None:
    fake = FakeTime()
    caller = make_caller(fake)
    attempt = Script(error)
    with pytest.raises(CallError) as excinfo:
        caller.call("gpt-4o", attempt)
    assert excinfo.value is error
    assert attempt.calls == 1
    assert fake.slept == []
    assert caller.stats.snapshot().retries == 0


def test_other_exceptions_pass_through_unretried_and_are_counted() -> None:
    class RecordingGone(Exception):
        pass

    caller = make_caller(FakeTime(), threshold=1)
    attempt = Script(RecordingGone("no cassette"))
    with pytest.raises(RecordingGone):
        caller.call("gpt-4o", attempt)
    assert attempt.calls == 1
    assert caller.stats.snapshot().failures == {"RecordingGone": 1}
    breaker = caller.breakers.get("gpt-4o")
    assert breaker is not None
    assert breaker.state == "closed"


def test_honours_retry_after() -> None:
    fake = FakeTime()
    caller = make_caller(fake)
    assert caller.call("gpt-4o", Script(api(429, retry_after_s=4.0))) == "ok"
    assert fake.slept == [4.0]


def test_replayed_failures_are_followed_at_once_even_with_no_retries() -> None:
    fake = FakeTime()
    caller = make_caller(fake, RetryPolicy(max_retries=0), threshold=1)
    attempt = Script(api(429, retry_after_s=30.0, replayed=True), api(500, replayed=True))
    assert caller.call("gpt-4o", attempt) == "ok"
    assert attempt.calls == 3
    assert fake.slept == []
    assert caller.stats.snapshot().retries == 2
    breaker = caller.breakers.get("gpt-4o")
    assert breaker is not None
    assert breaker.state == "closed"  # a replay asked no endpoint: the breaker never counted it


# -- the deadline ---------------------------------------------------------------------------------


def test_deadline_counts_down_and_expires() -> None:
    fake = FakeTime()
    deadline = Deadline(10.0, clock=fake.clock)
    assert deadline.remaining_s() == 10.0
    fake.now += 4
    assert deadline.remaining_s() == 6.0
    assert not deadline.expired()
    fake.now += 7
    assert deadline.remaining_s() == 0.0
    assert deadline.expired()
    unlimited = Deadline(clock=fake.clock)
    assert unlimited.remaining_s() is None
    assert not unlimited.expired()


@pytest.mark.parametrize("limit", [0.0, -1.0, math.inf, math.nan])
def test_deadline_rejects_nonsense(limit: float) -> None:
    with pytest.raises(ValueError, match="positive number of seconds"):
        Deadline(limit)


def test_an_expired_deadline_fails_calls_without_attempting_them() -> None:
    fake = FakeTime()
    caller = make_caller(fake, limit_s=5.0)
    fake.now += 6
    attempt = Script()
    with pytest.raises(CallError) as excinfo:
        caller.call("gpt-4o", attempt)
    assert attempt.calls == 0
    assert excinfo.value.kind == "deadline"
    assert excinfo.value.message == (
        "gpt-4o: not called. The overall time limit for model calls is 5 s and 6.0 s have passed; "
        "raise it (--llm-time-limit) or run fewer cases."
    )
    assert caller.stats.snapshot() == StatsSnapshot(calls=1, attempts=0, failures={"deadline": 1})


def test_each_attempt_is_told_the_time_left() -> None:
    fake = FakeTime()
    caller = make_caller(fake, limit_s=10.0)
    attempt = Script(api(503))
    caller.call("gpt-4o", attempt)
    assert attempt.remaining == [10.0, 9.5]


def test_a_retry_after_beyond_the_time_left_gives_up_at_once() -> None:
    fake = FakeTime()
    caller = make_caller(fake, limit_s=20.0)
    attempt = Script(api(429, retry_after_s=60.0))
    with pytest.raises(CallError) as excinfo:
        caller.call("gpt-4o", attempt)
    assert fake.slept == []
    assert attempt.calls == 1
    error = excinfo.value
    assert (error.kind, error.status) == ("deadline", 429)
    assert error.message == (
        "gpt-4o: gave up after 1 attempt, which failed with HTTP 429: boom; the server asked to wait "
        "60.0 s (Retry-After) but only 20.0 s of the time limit remain. The overall time limit for model "
        "calls is 20 s and 0.0 s have passed; raise it (--llm-time-limit) or run fewer cases."
    )


def test_a_backoff_beyond_the_time_left_gives_up_at_once() -> None:
    fake = FakeTime()
    caller = make_caller(fake, RetryPolicy(base_delay_s=8.0), limit_s=5.0)
    with pytest.raises(CallError, match="the next retry would start after the time limit") as excinfo:
        caller.call("gpt-4o", Script(api(503)))
    assert excinfo.value.kind == "deadline"
    assert fake.slept == []


def test_a_deadline_passing_during_attempts_names_the_last_error() -> None:
    fake = FakeTime()
    caller = make_caller(fake, limit_s=5.0)

    def slow_failure(remaining_s: float | None) -> str:
        fake.now += 3
        raise CallError("timeout", "no answer within 3 s")

    with pytest.raises(CallError) as excinfo:
        caller.call("gpt-4o", slow_failure)
    assert excinfo.value.kind == "deadline"
    assert "gpt-4o: gave up after 2 attempts, the last failed with no answer within 3 s" in (
        excinfo.value.message
    )


# -- the circuit breaker --------------------------------------------------------------------------


def test_breaker_counts_attempts_and_stops_calls_to_that_model_only() -> None:
    fake = FakeTime()
    caller = make_caller(fake, RetryPolicy(max_retries=3), threshold=5)
    failing = Script(*[api(503) for _ in range(10)])
    with pytest.raises(CallError, match="HTTP 503"):
        caller.call("gpt-4o", failing)  # 4 attempts
    with pytest.raises(CallError) as excinfo:
        caller.call("gpt-4o", failing)  # the 5th attempt opens the circuit, the retry is refused
    assert failing.calls == 5
    error = excinfo.value
    assert error.kind == "circuit-open"
    with pytest.raises(CallError, match="circuit open"):
        caller.call("gpt-4o", failing)
    assert failing.calls == 5
    assert caller.call("gpt-4o-mini", Script()) == "ok"
    assert error.message == (
        "circuit open for model 'gpt-4o': 5 consecutive attempts failed (the last: HTTP 503: boom); "
        "calls to 'gpt-4o' fail at once for the rest of the session instead of hammering the endpoint. "
        "Check the endpoint, rate limit and quota, then re-run."
    )
    assert caller.stats.snapshot().failures == {"api": 1, "circuit-open": 2}
    assert caller.breakers.open_models() == ["gpt-4o"]


def test_a_success_resets_the_count_and_permanent_errors_do_not_touch_it() -> None:
    breaker = CircuitBreaker("m", threshold=3)
    breaker.record_failure(api(503))
    breaker.record_failure(api(503))
    breaker.release()  # e.g. a 400: the endpoint answered, but the count stays
    assert breaker.consecutive_failures == 2
    breaker.record_success()
    assert breaker.consecutive_failures == 0
    breaker.record_failure(api(503))
    breaker.record_failure(api(503))
    breaker.allow()
    breaker.record_failure(api(503))
    with pytest.raises(CallError, match="3 consecutive attempts failed"):
        breaker.allow()


def test_half_open_lets_one_trial_through_after_the_cool_down() -> None:
    fake = FakeTime()
    breaker = CircuitBreaker("m", threshold=1, cooldown_s=30.0, clock=fake.clock)
    breaker.record_failure(api(503))
    assert breaker.state == "open"
    fake.now += 10
    with pytest.raises(CallError, match=r"until a trial call in 20\.0 s"):
        breaker.allow()
    fake.now += 20
    assert breaker.state == "half-open"
    breaker.allow()  # the trial
    with pytest.raises(CallError, match="circuit open"):
        breaker.allow()  # others keep failing fast while it runs
    breaker.record_failure(api(503))  # the trial failed: open for another cool-down
    assert breaker.state == "open"
    with pytest.raises(CallError):
        breaker.allow()
    fake.now += 30
    breaker.allow()
    breaker.release()  # the trial said nothing (e.g. a 400): the next call may try
    breaker.allow()
    breaker.record_success()
    assert breaker.state == "closed"
    breaker.allow()
    breaker.allow()


def test_breakers_off_with_threshold_zero_and_validated() -> None:
    assert CircuitBreakers(0).get("m") is None
    with pytest.raises(ValueError, match=">= 0"):
        CircuitBreakers(-1)
    with pytest.raises(ValueError, match="cool-down"):
        CircuitBreakers(3, -1.0)


def _hammer(threads: int, action: Callable[[], None], times: int) -> None:
    barrier = threading.Barrier(threads)

    def run() -> None:
        barrier.wait()
        for _ in range(times):
            action()

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


def test_breaker_counts_exactly_under_threads() -> None:
    breaker = CircuitBreaker("m", threshold=10_000)
    _hammer(8, lambda: breaker.record_failure(api(503)), 500)
    assert breaker.consecutive_failures == 4000
    assert breaker.state == "closed"


def test_half_open_admits_exactly_one_trial_among_threads() -> None:
    fake = FakeTime()
    breaker = CircuitBreaker("m", threshold=1, cooldown_s=1.0, clock=fake.clock)
    breaker.record_failure(api(503))
    fake.now += 5
    admitted: list[int] = []
    lock = threading.Lock()

    def try_once() -> None:
        try:
            breaker.allow()
        except CallError:
            return
        with lock:
            admitted.append(1)

    _hammer(8, try_once, 50)
    assert admitted == [1]


# -- stats ----------------------------------------------------------------------------------------


def test_stats_count_exactly_under_threads() -> None:
    stats = CallStats()

    def record() -> None:
        stats.record_call()
        stats.record_attempt()
        stats.record_retry(0.25)
        stats.record_failure("timeout")

    _hammer(8, record, 250)
    assert stats.snapshot() == StatsSnapshot(
        calls=2000, attempts=2000, retries=2000, waited_s=500.0, failures={"timeout": 2000}
    )


def test_stats_snapshot_round_trips_merges_and_summarises() -> None:
    one = StatsSnapshot(calls=5, attempts=7, retries=2, waited_s=1.5, failures={"timeout": 1})
    assert StatsSnapshot.from_dict(one.to_dict()) == one
    two = StatsSnapshot(calls=1, attempts=1, failures={"timeout": 1, "api": 2})
    assert one.merged(two) == StatsSnapshot(
        calls=6, attempts=8, retries=2, waited_s=1.5, failures={"timeout": 2, "api": 2}
    )
    assert one.failed == 1
    assert one.summary() == "5 model calls, 7 requests (2 retries, 1.5 s waiting), 1 failed (timeout 1)"
    assert StatsSnapshot(calls=1, attempts=1).summary() == "1 model call, 1 request (0 retries)"
    assert StatsSnapshot(calls=1, attempts=2, retries=1).summary() == "1 model call, 2 requests (1 retry)"
