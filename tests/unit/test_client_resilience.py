"""ModelClient's retries, circuit breaker and time limit, through the real SDK against a loopback server.

Sleeps are recorded rather than slept where the test is about which delay was chosen; the
server's request log proves how many requests really went out.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
import yaml

from pytest_llmgate.client import CallError, ClientSettings, ModelClient
from pytest_llmgate.recording import Recorder, RecordingMissing
from pytest_llmgate.simulator import CREATED, OpenAISimulator

REQUEST = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Say hi"}]}
DEAD_BASE_URL = "http://127.0.0.1:9/v1"


def highest(low: float, high: float) -> float:
    return high


class Clients:
    """Builds ModelClients against the simulator, each recording the delays it would sleep."""

    def __init__(self, server: OpenAISimulator) -> None:
        self.server = server
        self.slept: list[float] = []
        self._made: list[ModelClient] = []

    def __call__(
        self, *, real_sleep: bool = False, base_url: str | None = None, **settings: Any
    ) -> ModelClient:
        settings.setdefault("api_key", "sk-unit")
        sleep: Callable[[float], None] = self._sleep_for_real if real_sleep else self.slept.append
        client = ModelClient(
            ClientSettings(base_url=base_url or self.server.base_url, **settings),
            sleep=sleep,
            uniform=highest,
            wall_clock=lambda: float(CREATED),  # the simulator's fixed Date: 2026-01-01T00:00:00Z
        )
        self._made.append(client)
        return client

    def _sleep_for_real(self, seconds: float) -> None:
        self.slept.append(seconds)
        time.sleep(seconds)

    def requests(self, model: str = "gpt-4o") -> int:
        return sum(1 for request in self.server.requests if request.model == model)

    def close(self) -> None:
        for client in self._made:
            client.close()


@pytest.fixture
def clients(openai_server: OpenAISimulator) -> Iterator[Clients]:
    made = Clients(openai_server)
    yield made
    made.close()


@pytest.mark.parametrize(
    ("headers", "expected_sleep"),
    [
        ({"Retry-After": "1"}, 1.0),
        ({"retry-after-ms": "250", "Retry-After": "7"}, 0.25),
        ({"Retry-After": "Thu, 01 Jan 2026 00:00:03 GMT"}, 3.0),
    ],
)
def test_a_429_with_retry_after_waits_as_asked_then_succeeds(
    openai_server: OpenAISimulator, clients: Clients, headers: dict[str, str], expected_sleep: float
) -> None:
    openai_server.add_rule(model="gpt-4o", status=429, headers=headers, times=1)
    client = clients()
    reply = client.complete(dict(REQUEST))
    assert reply.text == "[gpt-4o] Say hi"
    assert clients.slept == [expected_sleep]
    assert clients.requests() == 2
    stats = client.stats.snapshot()
    assert (stats.calls, stats.attempts, stats.retries, stats.failures) == (1, 2, 1, {})


def test_a_500_is_retried_once_with_backoff_and_counted(
    openai_server: OpenAISimulator, clients: Clients
) -> None:
    openai_server.add_rule(status=500, times=1)
    client = clients(retry_base_delay_s=0.2)
    assert client.complete(dict(REQUEST)).text == "[gpt-4o] Say hi"
    assert clients.slept == [0.2]  # full jitter's ceiling for the first retry
    assert clients.requests() == 2
    assert client.stats.snapshot().summary() == "1 model call, 2 requests (1 retry, 0.2 s waiting)"


def test_no_retries_means_exactly_one_request_the_sdk_never_retries(
    openai_server: OpenAISimulator, clients: Clients
) -> None:
    openai_server.add_rule(status=503)
    client = clients(max_retries=0)
    with pytest.raises(CallError) as excinfo:
        client.complete(dict(REQUEST))
    assert (excinfo.value.kind, excinfo.value.status) == ("api", 503)
    assert excinfo.value.message == (
        "API error, HTTP 503 server_error: The server is overloaded or not ready yet."
    )
    assert clients.requests() == 1
    assert clients.slept == []


def test_exhausted_retries_keep_the_servers_message_and_say_what_to_do(
    openai_server: OpenAISimulator, clients: Clients
) -> None:
    openai_server.add_rule(status=429, content="Rate limit reached for gpt-4o on tokens per min.")
    client = clients(max_retries=2)
    with pytest.raises(CallError) as excinfo:
        client.complete(dict(REQUEST))
    assert clients.requests() == 3
    assert excinfo.value.status == 429
    assert excinfo.value.attempts == 3
    assert excinfo.value.message.startswith(
        "API error, HTTP 429 requests (rate_limit_exceeded): Rate limit reached for gpt-4o on tokens per min."
    )
    assert excinfo.value.message.endswith(
        "(failed 3 times in a row, 2 retries with backoff; check the endpoint and its rate limit, "
        "or raise --llm-max-retries)"
    )
    assert client.stats.snapshot().failures == {"api": 1}


def test_a_hang_times_out_is_retried_and_the_total_time_is_bounded(
    openai_server: OpenAISimulator, clients: Clients
) -> None:
    openai_server.add_rule(hang=True)
    client = clients(real_sleep=True, timeout_s=0.3, max_retries=1, retry_base_delay_s=0.1)
    started = time.monotonic()
    with pytest.raises(CallError) as excinfo:
        client.complete(dict(REQUEST))
    elapsed = time.monotonic() - started
    assert excinfo.value.kind == "timeout"
    assert excinfo.value.message.startswith(
        "no complete answer within 0.3 s (the whole call, a slow body or an endless stream included; "
        "raise it with --llm-timeout)"
    )
    assert clients.requests() == 2
    assert clients.slept == [0.1]
    assert 0.6 <= elapsed < 3.0  # two 0.3 s timeouts and a 0.1 s pause, not the SDK's own retries


def test_a_garbage_200_body_is_a_response_error_and_not_retried(
    openai_server: OpenAISimulator, clients: Clients
) -> None:
    openai_server.add_rule(body="garbage <html>", status=200)
    client = clients()
    with pytest.raises(CallError) as excinfo:
        client.complete(dict(REQUEST))
    assert excinfo.value.kind == "response"
    assert excinfo.value.status == 200
    assert clients.requests() == 1
    assert clients.slept == []
    assert client.stats.snapshot().failures == {"response": 1}


@pytest.mark.parametrize("status", [400, 401, 404, 422])
def test_request_errors_are_not_retried(
    openai_server: OpenAISimulator, clients: Clients, status: int
) -> None:
    openai_server.add_rule(status=status)
    client = clients()
    with pytest.raises(CallError) as excinfo:
        client.complete(dict(REQUEST))
    assert (excinfo.value.kind, excinfo.value.status) == ("api", status)
    assert clients.requests() == 1
    assert client.stats.snapshot().retries == 0


def test_the_server_can_forbid_a_retry_with_x_should_retry(
    openai_server: OpenAISimulator, clients: Clients
) -> None:
    openai_server.add_rule(status=503, headers={"x-should-retry": "false"})
    with pytest.raises(CallError):
        clients().complete(dict(REQUEST))
    assert clients.requests() == 1


def test_repeated_503s_open_the_circuit_and_later_calls_never_reach_the_server(
    openai_server: OpenAISimulator, clients: Clients
) -> None:
    openai_server.add_rule(model="gpt-4o", status=503)
    client = clients(max_retries=1, circuit_threshold=3)
    with pytest.raises(CallError) as first:
        client.complete(dict(REQUEST))
    assert first.value.status == 503
    assert clients.requests() == 2
    with pytest.raises(CallError) as second:
        client.complete(dict(REQUEST))  # the 3rd failed attempt opens the circuit; its retry is refused
    assert clients.requests() == 3
    assert second.value.kind == "circuit-open"
    for _ in range(5):
        with pytest.raises(CallError) as later:
            client.complete(dict(REQUEST))
        assert later.value.kind == "circuit-open"
    assert clients.requests() == 3
    message = later.value.message
    assert message.startswith(
        "circuit open for model 'gpt-4o': 3 consecutive attempts failed "
        "(the last: API error, HTTP 503 server_error: The server is overloaded or not ready yet.)"
    )
    assert message.endswith("Check the endpoint, rate limit and quota, then re-run.")
    other = {**REQUEST, "model": "gpt-4o-mini"}
    assert client.complete(other).text == "[gpt-4o-mini] Say hi"  # one model's circuit, not the session's
    assert client.breakers.open_models() == ["gpt-4o"]
    stats = client.stats.snapshot()
    assert (stats.calls, stats.attempts, stats.failures) == (8, 4, {"api": 1, "circuit-open": 6})


def test_a_retry_after_beyond_the_time_limit_gives_up_instead_of_sleeping(
    openai_server: OpenAISimulator, clients: Clients
) -> None:
    openai_server.add_rule(status=429, headers={"Retry-After": "120"})
    client = clients(time_limit_s=30)
    with pytest.raises(CallError) as excinfo:
        client.complete(dict(REQUEST))
    assert clients.slept == []
    assert clients.requests() == 1
    assert (excinfo.value.kind, excinfo.value.status) == ("deadline", 429)
    assert "the server asked to wait 120 s (Retry-After) but only" in excinfo.value.message
    assert "raise it (--llm-time-limit) or run fewer cases" in excinfo.value.message


def test_the_time_limit_cuts_a_slow_call_short_then_fails_later_calls_at_once(
    openai_server: OpenAISimulator, clients: Clients
) -> None:
    openai_server.add_rule(latency_ms=5000, content="too late")
    client = clients(time_limit_s=1.0, timeout_s=60)
    started = time.monotonic()
    with pytest.raises(CallError) as cut:
        client.complete(dict(REQUEST))
    assert time.monotonic() - started < 3.0  # not the 5 s answer, not the 60 s timeout
    assert cut.value.kind == "deadline"
    assert re.match(
        r"gpt-4o: no complete answer in the last [01]\.\d s of the time limit\. ", cut.value.message
    )
    with pytest.raises(CallError) as later:
        client.complete(dict(REQUEST))
    assert later.value.kind == "deadline"
    assert later.value.message.startswith("gpt-4o: not called. The overall time limit for model calls is 1 s")
    assert clients.requests() == 1
    assert client.stats.snapshot().failures == {"deadline": 2}


def test_a_recorded_retry_replays_in_order_without_waiting(
    tmp_path: Path, openai_server: OpenAISimulator, clients: Clients
) -> None:
    openai_server.add_rule(status=429, headers={"Retry-After": "2"}, times=1)
    path = tmp_path / "c.yaml"
    with Recorder("once").use(path) as session:
        recorded = clients().complete(dict(REQUEST))
    assert [exchange.status for exchange in session.exchanges] == [429, 200]
    assert len(yaml.safe_load(path.read_text())["interactions"]) == 2
    assert clients.slept == [2.0]

    offline = clients(base_url=DEAD_BASE_URL, max_retries=0)  # replay settings: no live retries
    with Recorder("none").use(path) as replay:
        replayed = offline.complete(dict(REQUEST))
    assert replayed.text == recorded.text
    assert [exchange.replayed for exchange in replay.exchanges] == [True, True]
    assert clients.slept == [2.0]  # the replay did not wait again
    assert offline.stats.snapshot().retries == 1


def test_a_missing_recording_is_never_retried(tmp_path: Path, clients: Clients) -> None:
    client = clients(base_url=DEAD_BASE_URL, max_retries=3)
    with Recorder("none").use(tmp_path / "absent.yaml"), pytest.raises(RecordingMissing):
        client.complete(dict(REQUEST))
    assert clients.slept == []
    stats = client.stats.snapshot()
    assert (stats.attempts, stats.retries, stats.failures) == (1, 0, {"RecordingMissing": 1})


def test_a_dead_endpoint_is_a_retried_connection_error(clients: Clients) -> None:
    client = clients(base_url=DEAD_BASE_URL, max_retries=2, timeout_s=5)
    with pytest.raises(CallError) as excinfo:
        client.complete(dict(REQUEST))
    assert excinfo.value.kind == "connection"
    assert excinfo.value.message.startswith(f"cannot reach {DEAD_BASE_URL}/")
    assert clients.slept == [0.5, 1.0]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"max_retries": -1}, "max_retries must be >= 0"),
        ({"retry_max_delay_s": -1.0}, "max_delay_s"),
        ({"circuit_threshold": -2}, "threshold"),
        ({"time_limit_s": 0}, "time limit"),
    ],
)
def test_bad_settings_fail_when_made(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ClientSettings(**settings)


# -- whole-call bounds: a dripping body, an endless stream, a body too large -------------------------


STREAMED = {**REQUEST, "stream": True}


@pytest.mark.parametrize(
    ("rule", "request_"),
    [
        ({"content": "word " * 400, "drip_bytes_per_second": 50}, REQUEST),  # ~40 s of body
        ({"sse_keepalive_forever": True}, STREAMED),
        ({"content": "word " * 400, "drip_bytes_per_second": 50}, STREAMED),
    ],
    ids=["dripping-json", "endless-keepalive-stream", "dripping-stream"],
)
def test_a_call_whose_body_never_ends_times_out_as_a_whole(
    tmp_path: Path,
    openai_server: OpenAISimulator,
    clients: Clients,
    rule: dict[str, Any],
    request_: dict[str, Any],
) -> None:
    """Every read gets bytes well within 0.5 s, so only a bound on the whole call can end it."""
    openai_server.add_rule(**rule)
    client = clients(timeout_s=0.5, max_retries=0)
    path = tmp_path / "c.yaml"
    started = time.monotonic()
    with Recorder("once").use(path), pytest.raises(CallError) as excinfo:
        client.complete(dict(request_))
    elapsed = time.monotonic() - started
    assert 0.45 <= elapsed < 1.5
    assert excinfo.value.kind == "timeout"
    assert excinfo.value.message == (
        "no complete answer within 0.5 s (the whole call, a slow body or an endless stream included; "
        "raise it with --llm-timeout)"
    )
    assert not path.exists()  # nothing half-read reaches a cassette


def test_without_a_cassette_the_sdk_path_is_bounded_too(
    openai_server: OpenAISimulator, clients: Clients
) -> None:
    openai_server.add_rule(sse_keepalive_forever=True)
    client = clients(timeout_s=0.5, max_retries=0)
    started = time.monotonic()
    with pytest.raises(CallError) as excinfo:
        client.complete(dict(STREAMED))  # no Recorder: our own read of the streamed body
    assert time.monotonic() - started < 1.5
    assert excinfo.value.kind == "timeout"


def test_a_dripping_call_is_retried_and_each_attempt_is_bounded(
    openai_server: OpenAISimulator, clients: Clients
) -> None:
    openai_server.add_rule(content="word " * 400, drip_bytes_per_second=50, times=1)
    client = clients(timeout_s=0.5, max_retries=1)
    started = time.monotonic()
    reply = client.complete(dict(REQUEST))
    assert time.monotonic() - started < 1.5
    assert reply.text == "[gpt-4o] Say hi"
    assert clients.requests() == 2
    assert client.stats.snapshot().retries == 1


def test_the_time_limit_cuts_a_dripping_call_in_flight(
    openai_server: OpenAISimulator, clients: Clients
) -> None:
    openai_server.add_rule(content="word " * 400, drip_bytes_per_second=50)
    client = clients(time_limit_s=0.6, timeout_s=60)
    started = time.monotonic()
    with pytest.raises(CallError) as excinfo:
        client.complete(dict(REQUEST))
    assert time.monotonic() - started < 1.6  # not the 60 s timeout, not the 40 s body
    assert excinfo.value.kind == "deadline"
    assert re.match(
        r"gpt-4o: no complete answer in the last 0\.[0-6] s of the time limit\. ", excinfo.value.message
    )
    assert clients.requests() == 1


def test_a_retry_after_over_the_cap_fails_at_once_and_is_not_retried(
    openai_server: OpenAISimulator, clients: Clients
) -> None:
    openai_server.add_rule(model="gpt-5.5", status=429, headers={"Retry-After": "300"})
    client = clients(max_retry_wait_s=60)
    with pytest.raises(CallError) as excinfo:
        client.complete({**REQUEST, "model": "gpt-5.5"})
    assert clients.slept == []
    assert clients.requests("gpt-5.5") == 1
    error = excinfo.value
    assert (error.kind, error.status, error.attempts) == ("api", 429, 1)
    assert error.message.startswith("API error, HTTP 429 requests (rate_limit_exceeded): Rate limit")
    assert error.message.endswith(
        "; the server asked to retry after 300 s, more than --llm-max-retry-wait 60 s, so the call was "
        "not retried (an early retry is refused and may be billed); raise it with "
        "--llm-max-retry-wait=300 or try later"
    )


def test_a_retry_after_within_the_cap_is_waited_in_full(
    openai_server: OpenAISimulator, clients: Clients
) -> None:
    openai_server.add_rule(status=429, headers={"Retry-After": "45"}, times=1)
    client = clients(retry_max_delay_s=30.0, max_retry_wait_s=60)
    assert client.complete(dict(REQUEST)).text == "[gpt-4o] Say hi"
    assert clients.slept == [45.0]  # not cut to the backoff's 30 s cap: that retry would be refused


def test_a_body_announced_larger_than_the_cap_is_never_read_nor_recorded(
    tmp_path: Path, openai_server: OpenAISimulator, clients: Clients
) -> None:
    openai_server.add_rule(content="word " * 2000)
    client = clients(max_response_bytes=1000)
    path = tmp_path / "c.yaml"
    with Recorder("once").use(path), pytest.raises(CallError) as excinfo:
        client.complete(dict(REQUEST))
    assert clients.requests() == 1  # not retried: the same request brings the same body
    size = _announced_size(openai_server)
    assert size > 1000
    assert excinfo.value.kind == "response"
    assert excinfo.value.message == (
        f"the response is larger than --llm-max-response-bytes 1000 (the server announced {size} "
        "bytes); nothing of it was recorded. If answers this large are expected, set "
        f"--llm-max-response-bytes={size}"
    )
    assert not path.exists()


def test_an_endless_stream_stops_at_the_cap(
    tmp_path: Path, openai_server: OpenAISimulator, clients: Clients
) -> None:
    openai_server.add_rule(sse_keepalive_forever=True)  # no Content-Length: counted as it is read
    client = clients(max_response_bytes=100, timeout_s=30)
    path = tmp_path / "c.yaml"
    started = time.monotonic()
    with Recorder("once").use(path), pytest.raises(CallError) as excinfo:
        client.complete(dict(STREAMED))
    assert time.monotonic() - started < 5.0  # the cap, not the 30 s timeout, ended it
    assert re.fullmatch(
        r"the response is larger than --llm-max-response-bytes 100 \(1\d\d bytes were read before "
        r"the call was stopped\); nothing of it was recorded\. If answers this large are expected, set a "
        r"larger --llm-max-response-bytes=N",
        excinfo.value.message,
    )
    assert not path.exists()


def test_a_compressed_body_that_inflates_past_the_cap_fails(
    openai_server: OpenAISimulator, clients: Clients
) -> None:
    openai_server.add_rule(content="word " * 2000, gzip=True)  # ~300 bytes on the wire, ~10 KB inflated
    client = clients(max_response_bytes=2000)
    with pytest.raises(CallError) as excinfo:
        client.complete(dict(REQUEST))
    assert excinfo.value.kind == "response"
    assert re.match(
        r"the response is larger than --llm-max-response-bytes 2000 \(it decompressed to \d{5} bytes",
        excinfo.value.message,
    )


def test_a_body_within_the_cap_passes(openai_server: OpenAISimulator, clients: Clients) -> None:
    client = clients(max_response_bytes=5000)
    assert client.complete(dict(REQUEST)).text == "[gpt-4o] Say hi"


def _announced_size(server: OpenAISimulator) -> int:
    """The Content-Length the simulator sends for its one scripted answer, measured, not hard-coded."""
    body = {"model": "gpt-4o", "messages": REQUEST["messages"]}
    return len(httpx2.post(server.base_url + "/chat/completions", json=body, timeout=5).content)
