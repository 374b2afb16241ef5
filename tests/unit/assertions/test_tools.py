"""Tool and routing kinds: tool-call, is-valid-openai-tools-call, finish-reason, refusal."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_llmgate.assertions import AssertionContext
from pytest_llmgate.reply import Reply, ToolCall

from .helpers import config_error, run

WEATHER = Reply(
    tool_calls=(
        ToolCall(name="lookup_user", arguments='{"id": 7}'),
        ToolCall(
            name="get_weather", arguments='{"city": "Paris", "unit": "c", "when": {"day": 1, "hour": 9}}'
        ),
    ),
    finish_reason="tool_calls",
)
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}},
                "required": ["city"],
            },
        },
    },
    {"type": "function", "function": {"name": "lookup_user"}},
]
TOOLS_CONTEXT = AssertionContext(case_id="case-1", model="gpt-test", tools=TOOLS)


# --- tool-call ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "entry",
    [
        {"value": "get_weather"},
        {"value": {"name": "get_weather"}},
        {"value": {"name": "get_weather", "arguments": {"city": "Paris"}}},
        {"value": {"name": "get_weather", "arguments": {"when": {"day": 1}}}},
        {"value": {"name": "get_weather", "arguments": '{"unit": "c"}'}},
        {"value": {"name": "lookup_user", "arguments": {"id": 7.0}}},
        {"value": "get_weather", "schema": {"type": "object", "required": ["city"]}},
    ],
)
def test_tool_call_passes(entry: dict[str, Any]) -> None:
    result = run({"type": "tool-call", **entry}, WEATHER)
    assert result.passed, result.reason
    assert not run({"type": "not-tool-call", **entry}, WEATHER).passed


@pytest.mark.parametrize(
    ("entry", "reply", "reason"),
    [
        (
            {"value": {"name": "get_weather", "arguments": {"city": "London"}}},
            WEATHER,
            "tool-call get_weather: arguments.city: expected 'London', got 'Paris'",
        ),
        (
            {"value": {"name": "get_weather", "arguments": {"when": {"hour": 10}}}},
            WEATHER,
            "arguments.when.hour: expected 10, got 9",
        ),
        (
            {"value": {"name": "get_weather", "arguments": {"country": "FR"}}},
            WEATHER,
            "arguments.country: missing",
        ),
        (
            {"value": "send_email"},
            WEATHER,
            'no call to send_email; calls: lookup_user("{\\"id\\": 7}"), get_weather(',
        ),
        (
            {"value": "get_weather"},
            Reply(text="It is sunny."),
            'the reply made no tool calls (text: "It is sunny.")',
        ),
        (
            {"value": "get_weather", "schema": {"type": "object", "properties": {"unit": {"enum": ["f"]}}}},
            WEATHER,
            "arguments.unit: 'c' is not one of ['f']",
        ),
        (
            {"value": "get_weather"},
            Reply(tool_calls=(ToolCall(name="get_weather", arguments="{city: Paris"),)),
            "arguments are not JSON",
        ),
    ],
)
def test_tool_call_fails_saying_what_differs(entry: dict[str, Any], reply: Reply, reason: str) -> None:
    result = run({"type": "tool-call", **entry}, reply)
    assert not result.passed
    assert reason in result.reason
    assert run({"type": "not-tool-call", **entry}, reply).passed


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        ({"value": {"arguments": {}}}, "value"),
        ({"value": {"name": "f", "args": {}}}, "value"),
        ({"value": {"name": "f", "arguments": [1]}}, "value"),
        ({"value": {"name": "f", "arguments": "{not json"}}, "value"),
        ({"value": "f", "schema": {"type": "wat"}}, "schema"),
        ({}, "value"),
    ],
)
def test_tool_call_bad_configuration(entry: dict[str, Any], field: str) -> None:
    assert config_error({"type": "tool-call", **entry}).field == field


# --- is-valid-openai-tools-call ----------------------------------------------------------------


def test_valid_tools_call_passes_against_the_cases_tools() -> None:
    result = run({"type": "is-valid-openai-tools-call"}, WEATHER, TOOLS_CONTEXT)
    assert result.passed
    assert result.reason == "is-valid-openai-tools-call: 2 tool calls valid"
    assert not run({"type": "not-is-valid-openai-tools-call"}, WEATHER, TOOLS_CONTEXT).passed


def test_valid_tools_call_takes_its_own_tools_as_value() -> None:
    assert run({"type": "is-valid-openai-tools-call", "value": TOOLS}, WEATHER).passed


@pytest.mark.parametrize(
    ("calls", "reason"),
    [
        (
            (ToolCall(name="get_weather", arguments='{"unit": "c"}'),),
            "call get_weather: arguments: 'city' is a required",
        ),
        (
            (ToolCall(name="get_weather", arguments='{"city": 5}'),),
            "arguments.city: 5 is not of type 'string'",
        ),
        (
            (ToolCall(name="delete_everything", arguments="{}"),),
            "calls undeclared tool 'delete_everything' (declared: get_weather, lookup_user)",
        ),
        ((ToolCall(name="get_weather", arguments="{"),), "arguments of get_weather are not JSON"),
        ((), "the reply made no tool calls"),
    ],
)
def test_valid_tools_call_fails(calls: tuple[ToolCall, ...], reason: str) -> None:
    reply = Reply(tool_calls=calls)
    result = run({"type": "is-valid-openai-tools-call"}, reply, TOOLS_CONTEXT)
    assert not result.passed
    assert reason in result.reason
    assert run({"type": "not-is-valid-openai-tools-call"}, reply, TOOLS_CONTEXT).passed


def test_valid_tools_call_without_declared_tools_fails_both_ways() -> None:
    for kind in ("is-valid-openai-tools-call", "not-is-valid-openai-tools-call"):
        result = run({"type": kind}, WEATHER)
        assert not result.passed
        assert "no tools declared" in result.reason


@pytest.mark.parametrize(
    "tools",
    [
        "get_weather",
        [{"type": "function", "function": {"parameters": {}}}],
        [{"type": "function", "function": {"name": "f", "parameters": {"type": "nope"}}}],
    ],
)
def test_valid_tools_call_bad_configuration(tools: Any) -> None:
    assert config_error({"type": "is-valid-openai-tools-call", "value": tools}).field == "value"


# --- finish-reason -----------------------------------------------------------------------------


def test_finish_reason() -> None:
    assert run({"type": "finish-reason", "value": "tool_calls"}, WEATHER).passed
    failed = run({"type": "finish-reason", "value": "stop"}, WEATHER)
    assert not failed.passed
    assert failed.reason == "finish-reason: expected 'stop', got 'tool_calls'"


def test_not_finish_reason_length_means_not_truncated() -> None:
    assert run(
        {"type": "not-finish-reason", "value": "length"}, Reply(text="ok", finish_reason="stop")
    ).passed
    truncated = run({"type": "not-finish-reason", "value": "length"}, Reply(text="o", finish_reason="length"))
    assert not truncated.passed
    assert truncated.reason == "not (finish-reason: 'length')"


@pytest.mark.parametrize("value", [None, "", 3])
def test_finish_reason_bad_configuration(value: Any) -> None:
    assert config_error({"type": "finish-reason", "value": value}).field == "value"


# --- refusal -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reply",
    [
        Reply(text="I’m sorry, but I can’t help with that request."),
        Reply(text="I CANNOT ASSIST WITH that."),
        Reply(text="", refusal="I can't do that."),
    ],
)
def test_refusal_passes_on_refusals(reply: Reply) -> None:
    assert run({"type": "refusal"}, reply).passed
    assert run({"type": "is-refusal"}, reply).passed
    assert not run({"type": "not-refusal"}, reply).passed


@pytest.mark.parametrize(
    "text",
    [
        "Paris is the capital of France.",
        "I can't provide an exact figure, but it is about 2 million.",
        "Here is a long answer. " * 20 + "Note: I can't help with legal advice.",
    ],
)
def test_refusal_fails_on_answers(text: str) -> None:
    result = run({"type": "refusal"}, text)
    assert not result.passed
    assert result.reason.startswith("refusal: no refusal in ")
    assert run({"type": "not-refusal"}, text).passed


def test_refusal_takes_extra_phrases() -> None:
    assert run(
        {"type": "refusal", "value": ["That is not something I do"]}, "That is NOT something I do."
    ).passed
    assert config_error({"type": "refusal", "value": [3]}).field == "value"
