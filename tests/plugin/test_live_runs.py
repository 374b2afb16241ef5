"""Live runs through the plugin: concurrent calls, retries, an open circuit, xdist, progress."""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_llmgate.simulator import OpenAISimulator

from .conftest import DEAD_BASE_URL, files_containing, interrupt_live_run


def cases(count: int, prefix: str = "Invoice from ACME number") -> str:
    lines = ["baseline: gpt-4o", "cases:"]
    for index in range(count):
        lines += [
            f"  - id: c{index}",
            f'    prompt: "{prefix} {index}"',
            "    assert: [{type: contains, value: ACME}]",
        ]
    return "\n".join(lines) + "\n"


def live(pytester: pytest.Pytester, server: OpenAISimulator, *args: str) -> pytest.RunResult:
    return pytester.runpytest(
        "--llm-candidate=gpt-5.5",
        "--llm-record-mode=once",
        f"--llm-base-url={server.base_url}",
        "-m",
        "not llm_gate",
        *args,
    )


def test_live_calls_run_concurrently_up_to_the_limit_then_replay_identically(
    pytester: pytest.Pytester, openai_server: OpenAISimulator
) -> None:
    pytester.makefile(".yaml", llm_invoices=cases(12))
    openai_server.latency_ms = 150
    recorded = live(pytester, openai_server, "--llm-concurrency=4")
    recorded.assert_outcomes(passed=12)
    assert len(openai_server.requests) == 24
    assert openai_server.max_in_flight == 4  # bounded by --llm-concurrency, and really concurrent
    recorded.stdout.fnmatch_lines(["llmgate: 24/24 calls, 0 errors, 0 retries, $0.* spent, * s"])
    openai_server.stop()
    replayed = pytester.runpytest(
        "--llm-candidate=gpt-5.5", f"--llm-base-url={DEAD_BASE_URL}", "-m", "not llm_gate"
    )
    replayed.assert_outcomes(passed=12)
    assert "calls, 0 errors" not in replayed.stdout.str()  # no progress line on replay


def test_concurrency_one_calls_one_at_a_time(
    pytester: pytest.Pytester, openai_server: OpenAISimulator
) -> None:
    pytester.makefile(".yaml", llm_invoices=cases(4))
    openai_server.latency_ms = 50
    live(pytester, openai_server, "--llm-concurrency=1").assert_outcomes(passed=4)
    assert openai_server.max_in_flight == 1


def test_per_model_limit_holds_that_model_back(
    pytester: pytest.Pytester, openai_server: OpenAISimulator
) -> None:
    pytester.makefile(".yaml", llm_invoices=cases(6))
    openai_server.latency_ms = 100
    live(pytester, openai_server, "--llm-concurrency=6", "--llm-model-concurrency=gpt-5.5=1").assert_outcomes(
        passed=6
    )
    assert openai_server.max_in_flight_by_model["gpt-5.5"] == 1
    assert openai_server.max_in_flight_by_model["gpt-4o"] > 1


def test_rate_limit_is_retried_after_retry_after_counted_and_replayed(
    pytester: pytest.Pytester, openai_server: OpenAISimulator
) -> None:
    pytester.makefile(".yaml", llm_invoices=cases(1))
    openai_server.add_rule(model="gpt-4o", status=429, headers={"Retry-After": "0"}, times=1)
    result = live(pytester, openai_server)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        ["retries (extra requests, billed): gpt-4o 1", "llmgate: 2/2 calls, 0 errors, 1 retries*"]
    )
    cassette = yaml.safe_load((pytester.path / "cassettes/llm_invoices/c0/gpt-4o.yaml").read_text())
    assert [item["response"]["status"]["code"] for item in cassette["interactions"]] == [429, 200]
    openai_server.stop()
    replay = pytester.runpytest(
        "--llm-candidate=gpt-5.5", f"--llm-base-url={DEAD_BASE_URL}", "-m", "not llm_gate"
    )
    replay.assert_outcomes(passed=1)


def test_an_open_circuit_fails_the_rest_of_that_models_cases_fast(
    pytester: pytest.Pytester, openai_server: OpenAISimulator
) -> None:
    pytester.makefile(".yaml", llm_invoices=cases(8))
    openai_server.add_rule(model="gpt-5.5", status=503)
    result = live(pytester, openai_server, "--llm-concurrency=1", "--llm-max-retries=0")
    result.assert_outcomes(failed=8)
    candidate_requests = [request for request in openai_server.requests if request.model == "gpt-5.5"]
    assert len(candidate_requests) == 5  # the breaker opens after 5 consecutive failures
    result.stdout.fnmatch_lines(["*gpt-5.5: circuit-open error:*gpt-5.5*"])
    assert not (pytester.path / "cassettes/llm_invoices/c0/gpt-5.5.yaml").exists()  # failures never saved
    assert (pytester.path / "cassettes/llm_invoices/c0/gpt-4o.yaml").is_file()


def test_a_garbage_body_fails_the_case_clearly_and_is_not_retried(
    pytester: pytest.Pytester, openai_server: OpenAISimulator
) -> None:
    pytester.makefile(".yaml", llm_invoices=cases(1))
    openai_server.add_rule(model="gpt-5.5", body="<html>bad gateway</html>")
    result = live(pytester, openai_server)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*gpt-5.5: response error:*"])
    assert sorted(request.model or "" for request in openai_server.requests) == ["gpt-4o", "gpt-5.5"]


def test_xdist_workers_each_call_only_their_own_cases(
    pytester: pytest.Pytester, openai_server: OpenAISimulator
) -> None:
    pytester.makefile(".yaml", llm_invoices=cases(10))
    openai_server.latency_ms = 20
    result = pytester.runpytest(
        "--llm-candidate=gpt-5.5",
        "--llm-record-mode=once",
        f"--llm-base-url={openai_server.base_url}",
        "-n",
        "2",
        "-v",
        "--llm-gate=max_latency_increase=10",  # equal latencies; do not let a busy machine decide
    )
    # 10 cases and 5 gates; the gates are judged on the controller from both workers' results
    # (the candidate costs more per success, so gate[cost] fails; equal latency passes)
    result.assert_outcomes(passed=10 + 4, failed=1)
    output = result.stdout.str()
    verdicts = re.findall(r"^llm_invoices\.yaml::gate\[(\w+)\] (PASSED|FAILED)", output, re.MULTILINE)
    assert sorted(verdicts) == [
        ("cost", "FAILED"),
        ("drift", "PASSED"),
        ("latency", "PASSED"),
        ("quality", "PASSED"),
        ("tokens", "PASSED"),
    ]  # each gate reported once, by the controller
    result.stdout.fnmatch_lines(["*gpt-5.5: total $0.00*, 10/10 cases*"])
    bodies = [(request.model, request.json["messages"][-1]["content"]) for request in openai_server.requests]
    assert len(bodies) == 20
    assert len(set(bodies)) == 20  # no case was fetched twice by two workers


def test_ctrl_c_mid_run_keeps_every_finished_recording_and_corrupts_none(
    pytester: pytest.Pytester, openai_server: OpenAISimulator
) -> None:
    """A real SIGINT to a live run with calls in flight; then the rest is recorded and all replay."""
    pytester.makefile(".yaml", llm_invoices=cases(40))
    openai_server.latency_ms = 200
    args = ["--llm-candidate=gpt-5.5", "--llm-concurrency=8", "-m", "not llm_gate"]
    returncode, output = interrupt_live_run(pytester.path, openai_server, args, after_requests=20)
    assert returncode == pytest.ExitCode.INTERRUPTED, output[-2000:]
    saved = sorted((pytester.path / "cassettes").rglob("*.yaml"))
    assert 0 < len(saved) < 80  # some recorded, not all
    for path in saved:
        interactions = yaml.safe_load(path.read_text())["interactions"]
        assert [item["response"]["status"]["code"] for item in interactions] == [200]
    assert not [path.name for path in (pytester.path / "cassettes").rglob("*.tmp")]
    # a second run records what is missing; then everything replays offline
    live(pytester, openai_server).assert_outcomes(passed=40)
    openai_server.stop()
    replayed = pytester.runpytest(
        "--llm-candidate=gpt-5.5", f"--llm-base-url={DEAD_BASE_URL}", "-m", "not llm_gate"
    )
    replayed.assert_outcomes(passed=40)


def test_the_overall_time_limit_fails_the_calls_after_it_clearly(
    pytester: pytest.Pytester, openai_server: OpenAISimulator
) -> None:
    pytester.makefile(".yaml", llm_invoices=cases(6))
    openai_server.latency_ms = 300
    # 2 s: room for the first case's two 0.3 s calls on a loaded machine (a call in flight when
    # the limit passes is cut there), not for all twelve calls.
    result = live(pytester, openai_server, "--llm-concurrency=1", "--llm-time-limit=2")
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) >= 1  # the first cases fit in the limit
    assert outcomes.get("failed", 0) >= 1  # the later ones do not
    result.stdout.fnmatch_lines(["*deadline error:*time limit for model calls is 2 s*--llm-time-limit*"])
    assert len(openai_server.requests) < 12  # calls after the limit were never sent


# -- calls that never end, and a bound on response size --------------------------------------------


@pytest.fixture
def offline_tokenizer(monkeypatch: pytest.MonkeyPatch, tiktoken_cache_dir: Path) -> None:
    """No tiktoken download attempt (no network here) whose time would blur the timings."""
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tiktoken_cache_dir))


def timed(run: Callable[[], pytest.RunResult]) -> tuple[pytest.RunResult, float]:
    started = time.monotonic()
    result = run()
    return result, time.monotonic() - started


def session_overhead(pytester: pytest.Pytester, server: OpenAISimulator, *args: str) -> float:
    """How long the same session takes against a well-behaved server: what is left of a run's time
    after subtracting it is the misbehaving call itself, so the bound does not depend on how loaded
    the machine is. Cassettes and rules are cleared first and after."""
    server.rules.clear()
    shutil.rmtree(pytester.path / "cassettes", ignore_errors=True)
    result, elapsed = timed(lambda: live(pytester, server, *args))
    result.assert_outcomes(passed=1)
    shutil.rmtree(pytester.path / "cassettes", ignore_errors=True)
    return elapsed


@pytest.mark.parametrize(
    ("rule", "params"),
    [
        ({"content": "ACME " * 400, "drip_bytes_per_second": 50}, ""),  # a ~40 s JSON body
        ({"sse_keepalive_forever": True}, "defaults:\n  params: {stream: true}\n"),
    ],
    ids=["dripping-body", "endless-keepalive-stream"],
)
@pytest.mark.usefixtures("offline_tokenizer")
def test_a_call_that_never_ends_fails_within_the_timeout(
    pytester: pytest.Pytester, openai_server: OpenAISimulator, rule: dict[str, Any], params: str
) -> None:
    pytester.makefile(".yaml", llm_invoices=params + cases(1))
    openai_server.add_rule(model="gpt-5.5", **rule)
    args = ("--llm-timeout=1", "--llm-max-retries=0")
    result, elapsed = timed(lambda: live(pytester, openai_server, *args))
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*gpt-5.5: timeout error: no complete answer within 1 s (the whole call*"
            "raise it with --llm-timeout)*"
        ]
    )
    assert not (pytester.path / "cassettes/llm_invoices/c0/gpt-5.5.yaml").exists()  # nothing half-read
    assert elapsed - session_overhead(pytester, openai_server, *args) < 1 + 2


@pytest.mark.usefixtures("offline_tokenizer")
def test_the_time_limit_bounds_a_call_in_flight(
    pytester: pytest.Pytester, openai_server: OpenAISimulator
) -> None:
    pytester.makefile(".yaml", llm_invoices=cases(1))
    # Every model drips: the first call starts as the limit's clock does and is cut in flight.
    openai_server.add_rule(content="ACME " * 400, drip_bytes_per_second=50)
    args = ("--llm-timeout=60", "--llm-time-limit=1", "--llm-concurrency=1")
    result, elapsed = timed(lambda: live(pytester, openai_server, *args))
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*gpt-4o: deadline error: gpt-4o: no complete answer in the last * s of the time limit. "
            "The overall time limit for model calls is 1 s*--llm-time-limit*",
            "*gpt-5.5: deadline error: gpt-5.5: not called.*",
        ]
    )
    assert len(openai_server.requests) == 1  # the cut call was not retried, the next never sent
    assert elapsed - session_overhead(pytester, openai_server, *args) < 1 + 2


def test_a_retry_after_over_the_cap_fails_at_once_with_the_servers_number(
    pytester: pytest.Pytester, openai_server: OpenAISimulator
) -> None:
    pytester.makefile(".yaml", llm_invoices=cases(1))
    openai_server.add_rule(model="gpt-5.5", status=429, headers={"Retry-After": "300"})
    result, elapsed = timed(lambda: live(pytester, openai_server, "--llm-max-retry-wait=60"))
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*gpt-5.5: api error: API error, HTTP 429*; the server asked to retry after 300 s, "
            "more than --llm-max-retry-wait 60 s, so the call was not retried*; raise it with "
            "--llm-max-retry-wait=300 or try later*"
        ]
    )
    assert [request.model for request in openai_server.requests].count("gpt-5.5") == 1  # one billed attempt
    assert elapsed < 30  # did not wait for the server's 300 s, nor the backoff cap's 30 s


@pytest.mark.parametrize("gzip", [False, True], ids=["plain", "gzip-inflating"])
def test_a_response_over_the_size_cap_fails_clearly_and_is_not_recorded(
    pytester: pytest.Pytester, openai_server: OpenAISimulator, gzip: bool
) -> None:
    pytester.makefile(".yaml", llm_invoices=cases(1))
    pytester.makeini("[pytest]\nllm_max_response_bytes = 3000\n")
    huge = "ACME-HUGE-ANSWER " * 300  # ~5 KB, well past the 3000-byte cap (a few hundred bytes gzipped)
    openai_server.add_rule(model="gpt-5.5", content=huge, gzip=gzip)
    result = live(pytester, openai_server, "--llm-report=report.json")
    result.assert_outcomes(failed=1)
    size = "it decompressed to * bytes or more" if gzip else "the server announced * bytes"
    result.stdout.fnmatch_lines(
        [
            f"*gpt-5.5: response error: the response is larger than --llm-max-response-bytes 3000 "
            f"({size}); nothing of it was recorded. If answers this large are expected, set*"
        ]
    )
    assert (pytester.path / "cassettes/llm_invoices/c0/gpt-4o.yaml").is_file()
    assert not (pytester.path / "cassettes/llm_invoices/c0/gpt-5.5.yaml").exists()
    assert files_containing(pytester.path, "ACME-HUGE-ANSWER") == []  # not in a cassette, not in a report
    assert [request.model for request in openai_server.requests].count("gpt-5.5") == 1  # not retried


def test_the_flag_wins_over_the_ini_and_a_bad_ini_value_is_a_usage_error(
    pytester: pytest.Pytester, openai_server: OpenAISimulator
) -> None:
    pytester.makefile(".yaml", llm_invoices=cases(1))
    pytester.makeini("[pytest]\nllm_max_response_bytes = 100\n")
    live(pytester, openai_server, "--llm-max-response-bytes=100000").assert_outcomes(passed=1)
    pytester.makeini("[pytest]\nllm_max_retry_wait = soon\n")
    bad = live(pytester, openai_server)
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*ini llm_max_retry_wait = 'soon': expected a number of seconds, got 'soon'*"])


def test_help_lists_the_limits(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(
        ["*--llm-max-retry-wait=SECONDS*", "*--llm-max-response-bytes=N*", "*llm_max_response_bytes*"]
    )
