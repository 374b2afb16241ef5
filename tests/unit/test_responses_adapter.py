"""The Responses API wire adapter: chat-style requests translated, every reply shape parsed."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from pytest_llmgate.model import chat
from pytest_llmgate.model.responses import (
    TranslationError,
    build_request,
    event_carries_content,
    first_content_offset,
    parse_response,
)
from pytest_llmgate.reply import Reply, ToolCall, Usage
from pytest_llmgate.response import ApiError, ResponseError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "responses"
SCHEMA = Path(__file__).resolve().parents[2] / "src" / "pytest_llmgate" / "data" / "report.schema.json"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def parse_fixture(name: str, status: int = 200) -> Reply:
    content_type = "text/event-stream; charset=utf-8" if name.endswith(".sse") else "application/json"
    return parse_response(fixture(name), status, content_type)


# -- build_request ----------------------------------------------------------------------------


def test_typical_case_becomes_instructions_input_and_max_output_tokens() -> None:
    request = {
        "model": "gpt-5.5",
        "messages": [
            {"role": "system", "content": "Answer in one word."},
            {"role": "user", "content": "Capital of France?"},
        ],
        "max_tokens": 300,
        "temperature": 0,
        "stream": True,
    }

    assert build_request(request) == {
        "model": "gpt-5.5",
        "instructions": "Answer in one word.",
        "input": [{"role": "user", "content": "Capital of France?"}],
        "max_output_tokens": 300,
        "temperature": 0,
        "stream": True,
        "store": False,
    }


def test_request_is_not_mutated() -> None:
    request = {
        "model": "m",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
        "response_format": {"type": "json_object"},
        "reasoning_effort": "low",
    }
    before = copy.deepcopy(request)

    build_request(request)

    assert request == before


def test_conversation_with_tool_calls_and_results_becomes_input_items() -> None:
    request = {
        "model": "gpt-5.5",
        "messages": [
            {"role": "system", "content": "Use tools."},
            {"role": "user", "content": "Weather in Paris?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": '{"temp": 21}'},
            {"role": "assistant", "content": "It is 21 degrees."},
            {"role": "system", "content": "Now be terse."},
            {"role": "developer", "content": "No emoji."},
            {"role": "user", "content": "And tomorrow?"},
        ],
    }

    body = build_request(request)

    assert body["instructions"] == "Use tools."
    assert body["input"] == [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "type": "function_call",
            "name": "get_weather",
            "arguments": '{"city":"Paris"}',
            "call_id": "call_1",
        },
        {"type": "function_call_output", "call_id": "call_1", "output": '{"temp": 21}'},
        {"role": "assistant", "content": "It is 21 degrees."},
        {"role": "system", "content": "Now be terse."},  # a later system message keeps its place
        {"role": "developer", "content": "No emoji."},
        {"role": "user", "content": "And tomorrow?"},
    ]
    assert "messages" not in body


def test_leading_system_messages_join_into_instructions() -> None:
    body = build_request(
        {
            "model": "m",
            "messages": [
                {"role": "system", "content": "One."},
                {"role": "system", "content": [{"type": "text", "text": "Two."}]},
                {"role": "user", "content": "hi"},
            ],
        }
    )

    assert body["instructions"] == "One.\n\nTwo."


def test_content_parts_become_input_parts() -> None:
    body = build_request(
        {
            "model": "m",
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is this?"},
                        {"type": "image_url", "image_url": {"url": "https://x/cat.png", "detail": "low"}},
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                        {"type": "file", "file": {"file_id": "file-1"}},
                    ],
                }
            ],
        }
    )

    assert body["input"][0]["content"] == [
        {"type": "input_text", "text": "What is this?"},
        {"type": "input_image", "image_url": "https://x/cat.png", "detail": "low"},
        {"type": "input_image", "image_url": "data:image/png;base64,AAAA", "detail": "auto"},
        {"type": "input_file", "file_id": "file-1"},
    ]


def test_tools_lose_their_wrapper_and_default_to_non_strict() -> None:
    body = build_request(
        {
            "model": "m",
            "messages": [{"role": "user", "content": "hi"}],
            "tools": [
                {
                    "type": "function",
                    "function": {"name": "lookup", "description": "Find.", "parameters": {"type": "object"}},
                },
                {"type": "function", "function": {"name": "strict_one", "parameters": {}, "strict": True}},
                {"type": "custom", "custom": {"name": "sql", "description": "Free-form SQL."}},
                {"type": "web_search"},
            ],
            "tool_choice": {"type": "function", "function": {"name": "lookup"}},
            "parallel_tool_calls": False,
        }
    )

    assert body["tools"] == [
        {
            "type": "function",
            "name": "lookup",
            "description": "Find.",
            "parameters": {"type": "object"},
            "strict": False,
        },
        {"type": "function", "name": "strict_one", "parameters": {}, "strict": True},
        {"type": "custom", "name": "sql", "description": "Free-form SQL."},
        {"type": "web_search"},
    ]
    assert body["tool_choice"] == {"type": "function", "name": "lookup"}
    assert body["parallel_tool_calls"] is False


@pytest.mark.parametrize("choice", ["auto", "none", "required"])
def test_string_tool_choice_passes(choice: str) -> None:
    body = build_request(
        {"model": "m", "messages": [{"role": "user", "content": "x"}], "tool_choice": choice}
    )

    assert body["tool_choice"] == choice


def test_response_format_and_verbosity_go_under_text() -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    body = build_request(
        {
            "model": "m",
            "messages": [{"role": "user", "content": "x"}],
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "City", "schema": schema, "strict": True},
            },
            "verbosity": "low",
        }
    )

    assert body["text"] == {
        "format": {"type": "json_schema", "name": "City", "schema": schema, "strict": True},
        "verbosity": "low",
    }
    assert "response_format" not in body
    assert "verbosity" not in body


def test_json_object_format() -> None:
    body = build_request(
        {
            "model": "m",
            "messages": [{"role": "user", "content": "x"}],
            "response_format": {"type": "json_object"},
        }
    )

    assert body["text"] == {"format": {"type": "json_object"}}


def test_reasoning_effort_becomes_reasoning_object_keeping_a_summary_request() -> None:
    body = build_request(
        {
            "model": "gpt-5.5",
            "messages": [{"role": "user", "content": "x"}],
            "reasoning_effort": "high",
            "reasoning": {"summary": "auto"},
        }
    )

    assert body["reasoning"] == {"summary": "auto", "effort": "high"}
    assert "reasoning_effort" not in body


def test_max_completion_tokens_becomes_max_output_tokens() -> None:
    body = build_request(
        {"model": "o3", "messages": [{"role": "user", "content": "x"}], "max_completion_tokens": 1000}
    )

    assert body["max_output_tokens"] == 1000
    assert "max_completion_tokens" not in body


def test_store_is_false_unless_the_case_says_so() -> None:
    messages = [{"role": "user", "content": "x"}]

    assert build_request({"model": "m", "messages": messages})["store"] is False
    assert build_request({"model": "m", "messages": messages, "store": True})["store"] is True


def test_logprobs_and_stream_options_translate() -> None:
    body = build_request(
        {
            "model": "m",
            "messages": [{"role": "user", "content": "x"}],
            "logprobs": True,
            "top_logprobs": 3,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
    )

    assert body["include"] == ["message.output_text.logprobs"]
    assert body["top_logprobs"] == 3
    assert "logprobs" not in body
    assert "stream_options" not in body  # a Responses stream always ends with its usage


def test_unknown_params_pass_through_untouched() -> None:
    extra = {"metadata": {"suite": "upgrade"}, "seed": 7, "user": "ci", "service_tier": "flex", "n": 2}
    body = build_request({"model": "m", "messages": [{"role": "user", "content": "x"}], **extra})

    for key, value in extra.items():
        assert body[key] == value


def test_a_tool_result_without_its_call_id_cannot_be_translated() -> None:
    with pytest.raises(TranslationError, match=r"messages\[1\] is a tool result without tool_call_id"):
        build_request(
            {
                "model": "m",
                "messages": [{"role": "user", "content": "x"}, {"role": "tool", "content": "42"}],
            }
        )


# -- parse_response: own fixtures -------------------------------------------------------------


def test_message_with_cached_tokens() -> None:
    reply = parse_fixture("resp_message_cached.json")

    assert reply.text == "The capital of France is Paris."
    assert reply.finish_reason == "stop"
    assert reply.tool_calls == ()
    assert reply.refusal is None
    assert reply.model == "gpt-4o-2024-08-06"
    assert reply.usage == Usage(
        prompt_tokens=1515, completion_tokens=8, total_tokens=1523, cached_tokens=1390, reasoning_tokens=0
    )
    assert reply.reasoning_summary is None
    assert reply.raw["id"] == "resp_fx_message"


def test_function_calls_keep_call_ids_and_built_in_tool_items_are_tolerated() -> None:
    reply = parse_fixture("resp_function_calls.json")

    assert reply.tool_calls == (
        ToolCall(name="get_weather", arguments='{"city":"Paris"}', id="call_fx_weather"),
        ToolCall(name="get_time", arguments='{"tz":"Europe/Paris"}', id="call_fx_time"),
        ToolCall(name="run_sql", arguments="SELECT 1", id="call_fx_sql"),
    )
    assert reply.finish_reason == "tool_calls"
    assert reply.text == ""


def test_reasoning_summary_kept_and_encrypted_content_ignored() -> None:
    reply = parse_fixture("resp_reasoning_summary.json")

    assert reply.text == "3"
    assert reply.reasoning_summary == "**Counting letters**\n\nI count each r.\n\nThree in total."
    assert reply.usage.reasoning_tokens == 59
    assert "gAAAA" not in json.dumps(reply.to_dict())


def test_refusal() -> None:
    reply = parse_fixture("resp_refusal.json")

    assert reply.refusal == "I'm very sorry, but I can't assist with that."
    assert reply.text == ""
    assert reply.finish_reason == "stop"


def test_incomplete_at_max_output_tokens_is_length() -> None:
    reply = parse_fixture("resp_incomplete_max_output_tokens.json")

    assert reply.finish_reason == "length"
    assert reply.text == ""
    assert reply.usage.reasoning_tokens == reply.usage.completion_tokens == 50


def test_incomplete_for_another_reason_names_it() -> None:
    data = json.loads(fixture("resp_incomplete_max_output_tokens.json"))
    data["incomplete_details"] = {"reason": "content_filter"}

    assert parse_response(json.dumps(data).encode()).finish_reason == "content_filter"


def test_failed_response_is_an_api_error() -> None:
    with pytest.raises(ApiError) as info:
        parse_fixture("resp_failed.json")

    assert info.value.code == "server_error"
    assert "The model failed to generate a response." in str(info.value)


def test_background_response_still_queued_says_what_to_change() -> None:
    with pytest.raises(ResponseError, match=r"still 'queued'.*remove `background: true`") as info:
        parse_fixture("resp_background_queued.json")

    assert not isinstance(info.value, ApiError)


def test_error_status_gives_the_api_error_with_code_null() -> None:
    with pytest.raises(ApiError) as info:
        parse_fixture("resp_error_400_unsupported_parameter.json", status=400)

    assert info.value.status == 400
    assert info.value.param == "temperature"
    assert info.value.code is None
    assert info.value.message == "Unsupported parameter: 'temperature' is not supported with this model."


def test_stream_of_text() -> None:
    reply = parse_fixture("resp_stream_text.sse")

    assert reply.text == "pong"
    assert reply.finish_reason == "stop"
    assert reply.model == "gpt-5.5-2026-04-23"
    assert reply.usage.prompt_tokens == 11
    assert reply.usage.completion_tokens == 5
    assert isinstance(reply.raw, list)
    assert reply.raw[0]["type"] == "response.created"


def test_stream_of_reasoning_and_a_function_call() -> None:
    reply = parse_fixture("resp_stream_tool_calls.sse")

    assert reply.tool_calls == (
        ToolCall(name="final_result", arguments='{"result":6666}', id="call_fx_final"),
    )
    assert reply.finish_reason == "tool_calls"
    assert reply.reasoning_summary == "Need the tool."
    assert reply.usage.reasoning_tokens == 448


def test_stream_of_a_refusal() -> None:
    reply = parse_fixture("resp_stream_refusal.sse")

    assert reply.refusal == "I can't help with that."
    assert reply.text == ""


def test_stream_ending_incomplete_is_length() -> None:
    reply = parse_fixture("resp_stream_incomplete.sse")

    assert reply.finish_reason == "length"
    assert reply.text == "1. Alabama\n2. Alaska"


def test_stream_whose_final_event_lost_its_output_is_rebuilt_from_deltas() -> None:
    reply = parse_fixture("resp_stream_trimmed_final.sse")

    assert reply.text == "pong"
    assert reply.usage.completion_tokens == 5


def test_stream_without_a_terminal_event_was_cut_off() -> None:
    with pytest.raises(ResponseError, match=r"ended without response\.completed.*cut off"):
        parse_fixture("resp_stream_truncated.sse")


def test_error_event_in_a_stream_is_an_api_error() -> None:
    with pytest.raises(ApiError) as info:
        parse_fixture("resp_stream_error.sse")

    assert info.value.code == "server_error"
    assert "The server had an error while processing your request." in str(info.value)


def test_nested_error_event_shape() -> None:
    error = {"type": "invalid_request_error", "code": "bad", "message": "No."}
    body = f"event: error\ndata: {json.dumps({'type': 'error', 'error': error})}\n\n"

    with pytest.raises(ApiError) as info:
        parse_response(body.encode())

    assert (info.value.code, info.value.type, info.value.message) == ("bad", "invalid_request_error", "No.")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "the response body is empty, expected a Responses API response"),
        (b"<html>Bad gateway</html>", "the response body is not JSON"),
        (b'{"id": "resp_1", "object": "response", "status": "compl', "truncated JSON"),
        (b"[1, 2]", "the response body is a JSON array, expected a Responses API response object"),
        (b'{"object": "response", "status": "completed"}', "has no output list"),
        (b'{"object": "response", "status": "completed", "output": {}}', "output is a JSON object"),
        (b'{"object": "response", "status": "completed", "output": [3]}', r"output\[0\] is a JSON number"),
        (
            b'{"object": "response", "status": "completed", "output": [{"type": "function_call"}]}',
            r"output\[0\] is a function_call without a name",
        ),
        (b'{"object": "response", "status": "cancelled", "output": []}', "was cancelled"),
        (b'{"object": "chat.completion", "choices": []}', "not a Responses API response.*api: responses"),
        (b'data: {"object": "chat.completion.chunk", "choices": []}\n\n', "not a Responses API stream"),
        (b'data: {"type": "response.created", "response": {"model": "m"}}\n\n', "cut off"),
        (b"data: [DONE]\n\n", "no data events"),
        (b"\x1f\x8b\x08\x00", "still gzip-compressed"),
    ],
)
def test_unusable_bodies_fail_with_one_clear_error(body: bytes, message: str) -> None:
    with pytest.raises(ResponseError, match=message):
        parse_response(body, 200, None)


def test_http_error_without_an_error_object() -> None:
    with pytest.raises(ApiError, match="without an OpenAI-style error object") as info:
        parse_response(b"upstream timed out", 504, "text/plain")

    assert info.value.status == 504


def test_str_body_and_missing_usage() -> None:
    body = json.dumps(
        {
            "object": "response",
            "status": "completed",
            "model": "m",
            "output": [{"type": "message", "content": [{"type": "output_text", "text": "hi"}]}],
        }
    )

    reply = parse_response(body)

    assert reply.text == "hi"
    assert reply.usage == Usage()


# -- time to first token ----------------------------------------------------------------------


def test_first_content_offset_of_a_responses_stream_is_the_end_of_the_first_text_delta() -> None:
    raw = fixture("resp_stream_text.sse")
    offset = first_content_offset(raw)

    assert offset is not None
    before = raw[:offset].decode()
    assert before.endswith('"delta":"po","logprobs":[]}\n\n')
    assert before.count("response.output_text.delta") == 2  # its `event:` line and its data
    # Bytes arriving one at a time: no answer until that event is complete, then always the same.
    assert first_content_offset(raw[: offset - 1]) is None
    assert first_content_offset(raw[: offset + 5]) == offset


def test_first_content_of_a_tool_call_stream_is_the_call_item_not_the_reasoning() -> None:
    raw = fixture("resp_stream_tool_calls.sse")
    offset = first_content_offset(raw)

    assert offset is not None
    last_event = raw[:offset].decode().strip().split("\n\n")[-1]
    assert '"type":"function_call"' in last_event
    assert "response.output_item.added" in last_event
    assert "reasoning_summary_text.delta" in raw[:offset].decode()


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ({"type": "response.output_text.delta", "delta": "Hi"}, True),
        ({"type": "response.output_text.delta", "delta": ""}, False),
        ({"type": "response.refusal.delta", "delta": "No"}, True),
        ({"type": "response.function_call_arguments.delta", "delta": "{"}, True),
        ({"type": "response.output_item.added", "item": {"type": "function_call", "name": "f"}}, True),
        ({"type": "response.output_item.added", "item": {"type": "message", "content": []}}, False),
        ({"type": "response.reasoning_summary_text.delta", "delta": "thinking"}, False),
        ({"type": "response.created", "response": {}}, False),
        ({"type": "response.completed", "response": {}}, False),
    ],
)
def test_event_carries_content(event: dict[str, Any], expected: bool) -> None:
    assert event_carries_content(json.dumps(event)) is expected


def test_event_carries_content_of_non_json_is_false() -> None:
    assert event_carries_content("[DONE]") is False
    assert event_carries_content("not json") is False


def test_chat_stream_first_content_skips_the_role_chunk() -> None:
    raw = (FIXTURES / "stream_include_usage.sse").read_bytes()
    offset = chat.first_content_offset(raw)

    first, second = list(chat.sse_events(raw))[:2]
    assert chat.chunk_carries_content(first.data) is False  # role and "" only
    assert offset == second.end
    assert '"delta":{"content":"Hi"}' in second.data


def test_chat_stream_first_content_may_be_a_tool_call() -> None:
    raw = (FIXTURES / "stream_tool_call_deltas.sse").read_bytes()

    first = next(chat.sse_events(raw))
    assert chat.first_content_offset(raw) == first.end
    assert '"name":"get_weather"' in first.data


@pytest.mark.parametrize(
    ("delta", "expected"),
    [
        ({"role": "assistant", "content": ""}, False),
        ({"content": "Hi"}, True),
        ({"refusal": "No"}, True),
        ({"tool_calls": [{"index": 0, "function": {"name": "f"}}]}, True),
        ({"function_call": {"name": "f"}}, True),
        ({}, False),
    ],
)
def test_chat_chunk_carries_content(delta: dict[str, Any], expected: bool) -> None:
    chunk = {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta}]}

    assert chat.chunk_carries_content(json.dumps(chunk)) is expected


def test_chat_usage_chunk_and_other_choices_carry_no_content() -> None:
    usage = {"choices": [], "usage": {"prompt_tokens": 1}}
    other = {"choices": [{"index": 1, "delta": {"content": "x"}}]}

    assert chat.chunk_carries_content(json.dumps(usage)) is False
    assert chat.chunk_carries_content(json.dumps(other)) is False


def test_sse_events_handles_crlf_comments_and_event_names() -> None:
    raw = b": keep-alive\r\n\r\nevent: response.created\r\ndata: {}\r\n\r\ndata: a\ndata: b\n\ndata: partial"

    events = list(chat.sse_events(raw))

    assert [(event.event, event.data) for event in events] == [("response.created", "{}"), (None, "a\nb")]
    assert raw[: events[-1].end].endswith(b"data: b\n\n")


# -- Reply transport --------------------------------------------------------------------------


def test_reasoning_summary_survives_to_dict_and_back() -> None:
    reply = parse_fixture("resp_reasoning_summary.json")

    data = reply.to_dict()

    assert data["reasoning_summary"] == reply.reasoning_summary
    again = Reply.from_dict(data)
    assert again.reasoning_summary == reply.reasoning_summary
    assert again.text == reply.text


def test_a_reply_without_summary_serialises_as_before() -> None:
    assert "reasoning_summary" not in parse_fixture("resp_message_cached.json").to_dict()


def test_report_schema_accepts_a_reply_with_a_reasoning_summary() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    reply_schema = {**schema["$defs"]["reply"], "$defs": schema["$defs"]}

    jsonschema.validate(parse_fixture("resp_reasoning_summary.json").to_dict(), reply_schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(
            {**parse_fixture("resp_refusal.json").to_dict(), "reasoning_summary": 3}, reply_schema
        )
