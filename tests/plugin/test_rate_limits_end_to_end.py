"""The rate-limit headers of a live run are recorded, replayed offline and held against the
concurrency by the checklist's retry-storms item."""

from __future__ import annotations

import json

import pytest

from pytest_llmgate.simulator import OpenAISimulator

from .conftest import DEAD_BASE_URL

CASES = """\
baseline: gpt-4o
cases:
  - id: one
    prompt: "first"
    assert: [{type: contains, value: ok}]
  - id: two
    prompt: "second"
    assert: [{type: contains, value: ok}]
  - id: three
    prompt: "third"
    assert: [{type: contains, value: ok}]
"""
# 1,000 requests a minute: at 8 calls in flight and about 100 ms a call the candidate would send
# about 4,800 (still over 1,000 at 400 ms a call); one call in flight sends at most 600.
LIMITS = {
    "x-ratelimit-limit-requests": "1000",
    "x-ratelimit-limit-tokens": "2000000",
    "x-ratelimit-remaining-requests": "999",
    "x-ratelimit-remaining-tokens": "1998500",
    "x-ratelimit-reset-requests": "60ms",
}


NO_GATES = ("-m", "not llm_gate")  # the candidate costs more: its cost gate is not this test's business


def _replay(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest(
        *NO_GATES,
        "--llm-candidate=gpt-5.5",
        f"--llm-base-url={DEAD_BASE_URL}",
        "--llm-report=run.json",
        *args,
    )


def _record(pytester: pytest.Pytester, server: OpenAISimulator) -> None:
    pytester.makefile(".yaml", llm_suite=CASES)
    server.add_rule(model="gpt-5.5", content="ok", headers=LIMITS, latency_ms=100)
    server.add_rule(model="gpt-4o", content="ok", latency_ms=100)
    result = pytester.runpytest(
        *NO_GATES,
        "--llm-candidate=gpt-5.5",
        "--llm-record-mode=once",
        f"--llm-base-url={server.base_url}",
        "--llm-report=recorded.json",
        "-n",
        "2",
    )
    assert result.ret == 0, result.stdout.str()
    server.stop()
    # live, each of the two xdist workers kept --llm-concurrency (8) calls in flight
    assert json.loads((pytester.path / "recorded.json").read_text())["concurrency"] == 16


def test_recorded_rate_limits_are_held_against_the_concurrency_on_replay(
    pytester: pytest.Pytester, openai_server: OpenAISimulator
) -> None:
    _record(pytester, openai_server)
    cassettes = sorted(pytester.path.rglob("*.yaml"))
    candidate = [path for path in cassettes if "gpt-5.5" in path.name]
    assert candidate, [path.name for path in cassettes]
    assert all("x-ratelimit-limit-requests" in path.read_text() for path in candidate)

    result = _replay(pytester)
    assert result.ret == 0  # the checklist informs; it fails no test
    data = json.loads((pytester.path / "run.json").read_text())
    for case in data["cases"]:
        assert case["candidate"]["samples"][0]["replayed"] is True
        assert case["candidate"]["samples"][0]["rate_limit"] == {
            "requests_per_minute": 1000,
            "tokens_per_minute": 2000000,
            "remaining_requests": 999,
            "remaining_tokens": 1998500,
        }
        assert case["baseline"]["samples"][0]["rate_limit"] is None
    item = {item["name"]: item for item in data["checklist"]}["retry-storms"]
    assert item["status"] == "fail"
    assert "at concurrency 8 (this run's): gpt-5.5: limits 1,000 requests/min" in item["value"]
    assert item["action"].startswith("gpt-5.5 would exceed its requests limit: run at most ")
    # the terminal's line for it, wrapped at its width
    terminal = " ".join(result.stdout.str().split())
    assert (
        "checklist ✗ retry-storms: 0 retries and 0 rate-limited calls (429) in 6 calls; at concurrency 8"
        in terminal
    )
    assert "gpt-5.5: limits 1,000 requests/min, 2,000,000 tokens/min; concurrency 8 asks about" in terminal

    # A replay makes no call: spread over xdist workers, it says the same.
    _replay(pytester, "-n", "2")
    data = json.loads((pytester.path / "run.json").read_text())
    assert data["concurrency"] == 8

    # Production keeps one call in flight: within the limit.
    pytester.makefile(".yaml", llmgate="production: {concurrency: 1}\n")
    result = _replay(pytester)
    data = json.loads((pytester.path / "run.json").read_text())
    item = {item["name"]: item for item in data["checklist"]}["retry-storms"]
    assert item["status"] == "ok", item
    assert "at concurrency 1 (production): gpt-5.5" in item["value"]
    assert not any(line.startswith("checklist ✗ retry-storms") for line in result.stdout.lines)
