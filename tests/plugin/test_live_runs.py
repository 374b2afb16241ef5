"""Live runs through the plugin: concurrent calls, retries, an open circuit, xdist, progress."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time

import pytest
import yaml

from pytest_llmgate.simulator import OpenAISimulator

from .conftest import DEAD_BASE_URL


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
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "--llm-candidate=gpt-5.5",
        "--llm-record-mode=once",
        f"--llm-base-url={openai_server.base_url}",
        "--llm-concurrency=8",
        "-m",
        "not llm_gate",
    ]
    process = subprocess.Popen(command, cwd=pytester.path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while len(openai_server.requests) < 20 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert openai_server.in_flight > 0  # interrupted with calls in flight
    process.send_signal(signal.SIGINT)
    output = process.communicate(timeout=60)[0].decode()
    assert process.returncode == pytest.ExitCode.INTERRUPTED, output[-2000:]
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
    result = live(pytester, openai_server, "--llm-concurrency=1", "--llm-time-limit=1")
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) >= 1  # the first cases fit in the limit
    assert outcomes.get("failed", 0) >= 1  # the later ones do not
    result.stdout.fnmatch_lines(["*deadline error:*time limit for model calls is 1 s*--llm-time-limit*"])
    assert len(openai_server.requests) < 12  # calls after the limit were never sent
