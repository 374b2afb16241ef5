"""The upgrade to a reasoning model as the real API behaves: gpt-4o on chat completions against
gpt-5.5 on the Responses API, with the parameters a typical suite sets (temperature 0,
max_tokens) and tool-calling cases; recorded, replayed offline; strict sends them as written."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest

from pytest_llmgate.simulator import OpenAISimulator, ReasoningRules, Rule

pytestmark = pytest.mark.usefixtures("fake_credentials")

DEAD = "http://127.0.0.1:9/v1"
TOOLS = """\
    tools:
      - type: function
        function:
          name: route_ticket
          parameters:
            type: object
            properties: {queue: {type: string}}
            required: [queue]"""

SUITE = f"""\
baseline: gpt-4o
models:
  gpt-5.5:
    api: responses
    params: {{reasoning_effort: medium}}
defaults:
  system: You route support tickets.
  params: {{temperature: 0, max_tokens: 300}}
cases:
  - id: plain
    prompt: "Ticket from ACME: my invoice is wrong"
    assert: [{{type: contains, value: ACME}}]
  - id: refund
    prompt: "Ticket: I want my money back"
{TOOLS}
    assert:
      - type: tool-call
        value: {{name: route_ticket, arguments: {{queue: refunds}}}}
  - id: outage
    prompt: "Ticket: the site is down"
{TOOLS}
    assert:
      - type: tool-call
        value: {{name: route_ticket, arguments: {{queue: incidents}}}}
"""


@pytest.fixture
def reasoning_server() -> Iterator[OpenAISimulator]:
    """gpt-5.5 refuses what gpt-5.x refuses, function tools on chat included."""
    with OpenAISimulator(reasoning_models={"gpt-5.5": ReasoningRules(chat_tools=False)}) as server:
        for queue, text in (("refunds", "money back"), ("incidents", "site is down")):
            server.add_rule(
                Rule(contains=text, tool_calls=[{"name": "route_ticket", "arguments": {"queue": queue}}])
            )
        server.add_rule(Rule(contains="ACME", content="ACME: routed to billing"))
        yield server


def verdicts(result: pytest.RunResult) -> list[str]:
    """'file::case OUTCOME' of every case line of a -v run."""
    found = (re.match(r"^(\S+::\S+) (PASSED|FAILED|XFAIL|ERROR)", line) for line in result.outlines)
    return sorted(f"{match.group(1)} {match.group(2)}" for match in found if match)


def test_chat_baseline_and_responses_candidate_record_then_replay_with_the_adaptations_listed(
    pytester: pytest.Pytester, reasoning_server: OpenAISimulator
) -> None:
    pytester.makefile(".yaml", llm_tickets=SUITE)
    common = ("--llm-candidate=gpt-5.5", "-m", "not llm_gate", "-v", "-p", "no:cacheprovider")
    recorded = pytester.runpytest(
        *common, "--llm-record-mode=once", f"--llm-base-url={reasoning_server.base_url}"
    )
    recorded.assert_outcomes(passed=3)

    chat = [request for request in reasoning_server.requests if request.path.endswith("/chat/completions")]
    responses = [request for request in reasoning_server.requests if request.path.endswith("/responses")]
    assert {request.json["model"] for request in chat} == {"gpt-4o"}
    assert len(responses) == 3
    for request in responses:
        body = request.json
        assert body["model"] == "gpt-5.5"
        assert body["instructions"] == "You route support tickets."
        assert body["reasoning"] == {"effort": "medium"}
        assert body["max_output_tokens"] == 300
        assert body["store"] is False
        assert "temperature" not in body
        assert "max_tokens" not in body
    assert all(request.json["temperature"] == 0 for request in chat)  # the baseline as written

    lines = [
        "*params adapted: gpt-5.5: max_tokens=300 sent as max_output_tokens (*",
        "*params adapted: gpt-5.5: temperature=0 not sent (reasoning models refuse it)*",
    ]
    recorded.stdout.fnmatch_lines(lines, consecutive=False)
    assert recorded.stdout.str().count("temperature=0 not sent") == 1  # once per target and param
    recorded.stdout.fnmatch_lines(["*llm_tickets.yaml::refund PASSED (params adapted)*"])

    reasoning_server.stop()
    replayed = pytester.runpytest(*common, f"--llm-base-url={DEAD}", "--llm-report=report.json")
    replayed.assert_outcomes(passed=3)
    assert verdicts(replayed) == verdicts(recorded)
    replayed.stdout.fnmatch_lines(lines, consecutive=False)
    report = json.loads((pytester.path / "report.json").read_text())
    notes = [note for case in report["cases"] for note in case["notes"]]
    assert "params adapted: gpt-5.5: temperature=0 not sent (reasoning models refuse it)" in notes


def test_strict_sends_the_params_as_written_and_names_the_fix(
    pytester: pytest.Pytester, reasoning_server: OpenAISimulator
) -> None:
    pytester.makefile(".yaml", llm_tickets=SUITE.replace("    api: responses\n", ""))  # chat for both
    result = pytester.runpytest(
        "--llm-candidate=gpt-5.5",
        "--llm-record-mode=once",
        f"--llm-base-url={reasoning_server.base_url}",
        "--llm-param-policy=strict",
        "-m",
        "not llm_gate",
        "-p",
        "no:cacheprovider",
    )
    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines(
        [
            "*gpt-5.5: api error: gpt-5.5: *max_tokens*fix:*param_policy: adapt*",
        ]
    )
    result.stdout.no_fnmatch_line("*params adapted:*")


def test_adapt_on_chat_gives_the_tools_refusal_its_fix(
    pytester: pytest.Pytester, reasoning_server: OpenAISimulator
) -> None:
    # Adapted params, but function tools on chat: gpt-5.x refuses them there (reasoning is on).
    pytester.makefile(".yaml", llm_tickets=SUITE.replace("    api: responses\n", ""))
    result = pytester.runpytest(
        "--llm-candidate=gpt-5.5",
        "--llm-record-mode=once",
        f"--llm-base-url={reasoning_server.base_url}",
        "-m",
        "not llm_gate",
        "-p",
        "no:cacheprovider",
    )
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(
        ["*gpt-5.5: the API refuses function tools on /v1/chat/completions*api: responses*"]
    )


STREAMED = """\
baseline: gpt-4o
models:
  gpt-5.5: {api: responses}
defaults:
  params: {stream: true}
  budgets: {ttft_ms: 150}
cases:
  - id: slow-start
    prompt: "Ticket from ACME: where is my parcel"
    assert: [{type: contains, value: ACME}]
"""


def test_a_ttft_budget_fails_on_replay_exactly_as_it_did_live(
    pytester: pytest.Pytester, reasoning_server: OpenAISimulator
) -> None:
    reasoning_server.latency_ms = {"gpt-4o": 20.0, "gpt-5.5": 400.0}
    pytester.makefile(".yaml", llm_stream=STREAMED)
    common = ("--llm-candidate=gpt-5.5", "-p", "no:cacheprovider", "--llm-report=report.json")
    live = pytester.runpytest(
        *common, "--llm-record-mode=once", f"--llm-base-url={reasoning_server.base_url}"
    )
    # The case and gate[latency] fail (the other gates pass or skip, e.g. with no local tokenizer).
    assert live.parseoutcomes()["failed"] == 2
    live.stdout.fnmatch_lines(
        [
            "*gpt-5.5 broke a budget: ttft_ms: measured * ms > limit 150 ms*",
            "*gate?latency? failed: *; time to first token p95 * ms -> * ms",
            "*max_ttft_increase +50%*",
        ]
    )
    recorded = [
        sample
        for case in json.loads((pytester.path / "report.json").read_text())["cases"]
        for sample in case["candidate"]["samples"]
    ]
    assert recorded[0]["ttft_ms"] is not None
    assert 150 < recorded[0]["ttft_ms"] <= recorded[0]["latency_ms"]
    cassette = (pytester.path / "cassettes" / "llm_stream" / "slow-start" / "gpt-5.5.yaml").read_text()
    assert "x-llmgate-ttft-ms" in cassette
    assert "response.output_text.delta" in cassette  # a Responses stream was recorded

    reasoning_server.stop()
    replayed = pytester.runpytest(*common, f"--llm-base-url={DEAD}")
    assert replayed.parseoutcomes()["failed"] == 2
    replayed.stdout.fnmatch_lines(["*gpt-5.5 broke a budget: ttft_ms: measured * ms > limit 150 ms*"])
    report = json.loads((pytester.path / "report.json").read_text())
    assert report["cases"][0]["candidate"]["samples"][0]["ttft_ms"] == recorded[0]["ttft_ms"]
    replayed.stdout.fnmatch_lines(
        ["*time to first token (streamed calls): gpt-4o p50 * ms*gpt-5.5 p50 * ms*"]
    )
