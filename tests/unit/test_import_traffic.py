"""Reading traffic sources (format by content) and converting calls to chat requests and answers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_llmgate.importers.convert import Unconvertible, convert, same_model
from pytest_llmgate.importers.traffic import Call, read_sources

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "traffic"


def test_jsonl_calls_keep_latency_time_tags_and_report_bad_lines() -> None:
    calls, problems = read_sources([FIXTURES / "calls.jsonl"])
    assert [call.where.rsplit(":", 1)[1] for call in calls] == ["1", "2", "3", "4", "6", "7", "8", "9"]
    first = calls[0]
    assert first.latency_ms == 420.5
    assert first.tags == ("support",)
    assert first.id == "req-1"
    assert first.created == 1746093600.0  # 2025-05-01T10:00:00Z
    assert calls[6].endpoint == "responses"
    assert isinstance(calls[7].response, str)  # a stream, kept as its text
    assert [str(problem) for problem in problems] == [
        f"{FIXTURES / 'calls.jsonl'}:5: malformed line, not JSON (Expecting value at column 46)"
    ]


def test_batch_files_pair_by_custom_id_in_any_order() -> None:
    calls, problems = read_sources([FIXTURES / "batch_output.jsonl", FIXTURES / "batch_input.jsonl"])
    answers = {call.id: call.response["choices"][0]["message"]["content"] for call in calls}
    assert answers == {"r1": "positive", "r2": "negative"}
    reasons = sorted(problem.reason for problem in problems)
    assert reasons == [
        "batch output 'r9' has no request: pass the batch input file too",
        "not a chat call (/v1/embeddings); only chat completions and Responses calls are imported",
    ]


def test_stored_completions_export() -> None:
    calls, problems = read_sources([FIXTURES / "stored_completions.json"])
    assert len(calls) == 1
    assert calls[0].request["messages"] == [
        {"role": "user", "content": "Favourite colour of the sky? One word."}
    ]
    assert calls[0].request["temperature"] == 0.2
    assert calls[0].tags == ("colours",)
    assert [problem.reason for problem in problems] == [
        "stored completion without its input messages: export them with the completion"
    ]


def test_vcrpy_cassette_takes_chat_interactions_and_processing_time() -> None:
    calls, problems = read_sources([FIXTURES / "app_cassette.yaml"])
    assert len(calls) == 1
    assert calls[0].latency_ms == 733.0
    assert calls[0].request["model"] == "gpt-4o"
    assert "authorization" not in json.dumps(calls[0].request).lower()  # only the body is kept
    assert problems[0].where.endswith("app_cassette.yaml: interaction 2")


def test_otel_genai_spans_current_and_indexed_conventions() -> None:
    calls, problems = read_sources([FIXTURES / "spans.otlp.json"])
    current, indexed = calls
    assert current.request == {
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Name a prime number above 10."},
        ],
        "temperature": 0.0,
        "max_tokens": 50,
    }
    assert current.latency_ms == 750.0
    assert current.response["choices"][0]["message"]["content"] == "11"
    assert current.response["usage"]["total_tokens"] == 19
    reply = convert(indexed).reply
    assert reply.tool_calls[0].name == "get_weather"
    assert indexed.request["tools"][0]["function"]["name"] == "get_weather"
    assert len(problems) == 1
    assert "content capture was off" in problems[0].reason


def test_unknown_format_and_empty_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    calls, problems = read_sources([FIXTURES / "unknown.txt", empty, tmp_path / "missing.jsonl"])
    assert calls == []
    assert problems[0].reason.startswith("unknown format: expected JSON Lines")
    assert problems[1].reason == "the file is empty"
    assert problems[2].reason.startswith("cannot read")


def test_a_single_pretty_printed_record_is_read_whole(tmp_path: Path) -> None:
    record = {
        "request": {
            "method": "POST",
            "uri": "https://api.openai.com/v1/chat/completions",
            "body": json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}),
        },
        "response": {
            "status": 200,
            "headers": {"openai-processing-ms": ["120"]},
            "body": json.dumps(
                {
                    "object": "chat.completion",
                    "model": "gpt-4o",
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": "hello"},
                            "finish_reason": "stop",
                        }
                    ],
                }
            ),
        },
    }
    path = tmp_path / "one.json"
    path.write_text(json.dumps(record, indent=2))
    calls, problems = read_sources([path])
    assert problems == []
    assert calls[0].latency_ms == 120.0
    assert convert(calls[0]).reply.text == "hello"


def _call(request: dict, response: object, endpoint: str = "chat") -> Call:
    return Call(where="x.jsonl:1", request=request, response=response, endpoint=endpoint)


def _completion(model: str = "gpt-4o", **message: object) -> dict:
    return {
        "object": "chat.completion",
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", **message}, "finish_reason": "stop"}],
    }


def test_convert_drops_end_user_identifiers_and_streaming() -> None:
    request = {
        "model": "gpt-4o",
        "messages": [{"role": "user", "content": "hi"}],
        "user": "u-1",
        "metadata": {"a": "b"},
        "stream": False,
        "temperature": 0,
    }
    converted = convert(_call(request, _completion(content="hello")))
    assert converted.request == {
        "model": "gpt-4o",
        "messages": [{"role": "user", "content": "hi"}],
        "temperature": 0,
    }


@pytest.mark.parametrize(
    ("request_body", "response", "reason"),
    [
        (
            {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]},
            _completion("claude-3", content="x"),
            "model 'claude-3' answered a request for 'gpt-4o'",
        ),
        (
            {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]},
            _completion(
                content=None,
                tool_calls=[{"id": "1", "type": "function", "function": {"name": "rm", "arguments": "{}"}}],
            ),
            "it calls tool 'rm', which the request does not declare (no tools)",
        ),
        (
            {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]},
            {"object": "response", "output": []},
            "a Responses answer to a chat request",
        ),
        ({"model": "gpt-4o", "messages": []}, _completion(content="x"), "the request has no messages"),
    ],
)
def test_responses_that_do_not_match_their_request_are_refused(
    request_body: dict, response: dict, reason: str
) -> None:
    with pytest.raises(Unconvertible, match=reason.replace("(", r"\(").replace(")", r"\)")):
        convert(_call(request_body, response))


def test_aliases_match_their_dated_snapshots() -> None:
    assert same_model("gpt-4o", "gpt-4o-2024-08-06")
    assert same_model("gpt-4-vision-preview", "gpt-4-1106-vision-preview")
    assert not same_model("gpt-4o", "gpt-3.5-turbo")


def test_responses_api_call_becomes_a_chat_case() -> None:
    request = {
        "model": "gpt-4o",
        "instructions": "Be brief.",
        "input": [{"role": "user", "content": [{"type": "input_text", "text": "Weather?"}]}],
        "tools": [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}}],
        "max_output_tokens": 40,
        "text": {"format": {"type": "json_schema", "name": "w", "schema": {"type": "object"}}},
    }
    response = {
        "object": "response",
        "status": "completed",
        "model": "gpt-4o-2024-08-06",
        "output": [
            {"type": "reasoning", "summary": []},
            {
                "type": "function_call",
                "call_id": "c1",
                "name": "get_weather",
                "arguments": '{"city": "Oslo"}',
            },
        ],
        "usage": {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15},
    }
    converted = convert(_call(request, response, "responses"))
    assert converted.request == {
        "model": "gpt-4o",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Weather?"}],
        "max_completion_tokens": 40,
        "tools": [
            {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
        ],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "w", "schema": {"type": "object"}},
        },
    }
    assert converted.reply.tool_calls[0].parsed_arguments() == {"city": "Oslo"}
    assert converted.reply.finish_reason == "tool_calls"
    assert converted.completion["usage"]["prompt_tokens"] == 10


@pytest.mark.parametrize(
    ("request_body", "reason"),
    [
        ({"model": "gpt-4o", "input": "hi", "previous_response_id": "resp_1"}, "server-side state"),
        ({"model": "gpt-4o", "input": "hi", "tools": [{"type": "web_search"}]}, "built-in tool 'web_search'"),
        (
            {"model": "gpt-4o", "input": [{"role": "user", "content": [{"type": "input_image"}]}]},
            "input_image",
        ),
    ],
)
def test_responses_requests_without_a_chat_equivalent_are_refused(request_body: dict, reason: str) -> None:
    with pytest.raises(Unconvertible, match=reason):
        convert(_call(request_body, {"object": "response", "output": []}, "responses"))


def test_a_streamed_answer_becomes_the_completion_it_adds_up_to() -> None:
    calls, _ = read_sources([FIXTURES / "calls.jsonl"])
    converted = convert(calls[-1])
    assert converted.reply.text == "Our office opens at 9am."
    assert converted.completion["choices"][0]["message"]["content"] == "Our office opens at 9am."
    assert "stream" not in converted.request
    assert "stream_options" not in converted.request


def _otlp_span(attributes: dict[str, object], events: list[dict[str, object]]) -> dict[str, object]:
    def values(mapping: dict[str, object]) -> list[dict[str, object]]:
        out: list[dict[str, object]] = []
        for key, value in mapping.items():
            typed = {"intValue": str(value)} if isinstance(value, int) else {"stringValue": value}
            out.append({"key": key, "value": typed})
        return out

    span = {
        "spanId": "ab12",
        "startTimeUnixNano": "1700000000000000000",
        "endTimeUnixNano": "1700000000400000000",
        "attributes": values({"gen_ai.operation.name": "chat", **attributes}),
        "events": [{"name": event["name"], "attributes": values(event["attributes"])} for event in events],  # type: ignore[arg-type]
    }
    return {"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}


@pytest.mark.parametrize(
    "events",
    [
        pytest.param(
            [
                {
                    "name": "gen_ai.client.inference.operation.details",
                    "attributes": {
                        "gen_ai.input.messages": json.dumps(
                            [{"role": "user", "parts": [{"type": "text", "content": "Capital of France?"}]}]
                        ),
                        "gen_ai.output.messages": json.dumps(
                            [
                                {
                                    "role": "assistant",
                                    "parts": [{"type": "text", "content": "Paris"}],
                                    "finish_reason": "stop",
                                }
                            ]
                        ),
                    },
                }
            ],
            id="details-event",
        ),
        pytest.param(
            [
                {
                    "name": "gen_ai.content.prompt",
                    "attributes": {
                        "gen_ai.prompt": json.dumps([{"role": "user", "content": "Capital of France?"}])
                    },
                },
                {
                    "name": "gen_ai.content.completion",
                    "attributes": {
                        "gen_ai.completion": json.dumps([{"role": "assistant", "content": "Paris"}])
                    },
                },
            ],
            id="prompt-and-completion-events",
        ),
        pytest.param(
            [
                {
                    "name": "gen_ai.user.message",
                    "attributes": {"gen_ai.system": "openai", "content": "Capital of France?"},
                },
                {
                    "name": "gen_ai.choice",
                    "attributes": {"finish_reason": "stop", "message": json.dumps({"content": "Paris"})},
                },
            ],
            id="message-events",
        ),
    ],
)
def test_otel_spans_that_keep_their_messages_in_events(
    tmp_path: Path, events: list[dict[str, object]]
) -> None:
    """Content captured as events (EVENT_ONLY, or conventions before 1.37) leaves the span's own
    attributes without messages; the events hold them."""
    path = tmp_path / "events.otlp.json"
    path.write_text(
        json.dumps(
            _otlp_span(
                {
                    "gen_ai.request.model": "gpt-4o",
                    "gen_ai.usage.input_tokens": 9,
                    "gen_ai.usage.output_tokens": 1,
                },
                events,
            )
        )
    )
    calls, problems = read_sources([path])
    assert problems == []
    [call] = calls
    assert call.request == {
        "model": "gpt-4o",
        "messages": [{"role": "user", "content": "Capital of France?"}],
    }
    assert call.response["choices"][0]["message"]["content"] == "Paris"
    assert call.response["choices"][0]["finish_reason"] == "stop"
    assert call.latency_ms == 400.0


def test_otel_message_events_keep_tool_calls_and_their_results(tmp_path: Path) -> None:
    calls_json = json.dumps(
        [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            }
        ]
    )
    events: list[dict[str, object]] = [
        {"name": "gen_ai.system.message", "attributes": {"content": "Be brief."}},
        {"name": "gen_ai.user.message", "attributes": {"content": "Weather in Paris?"}},
        {"name": "gen_ai.assistant.message", "attributes": {"tool_calls": calls_json}},
        {"name": "gen_ai.tool.message", "attributes": {"id": "call_1", "content": "18C"}},
        {
            "name": "gen_ai.choice",
            "attributes": {"finish_reason": "stop", "message": json.dumps({"content": "18C and sunny"})},
        },
    ]
    path = tmp_path / "tools.otlp.json"
    path.write_text(json.dumps(_otlp_span({"gen_ai.request.model": "gpt-4o"}, events)))
    [call], problems = read_sources([path])
    assert problems == []
    messages = call.request["messages"]
    assert [message["role"] for message in messages] == ["system", "user", "assistant", "tool"]
    assert messages[2]["tool_calls"][0]["function"] == {
        "name": "get_weather",
        "arguments": '{"city": "Paris"}',
    }
    assert messages[3] == {"role": "tool", "tool_call_id": "call_1", "content": "18C"}
    assert call.response["choices"][0]["message"]["content"] == "18C and sunny"


def test_a_spans_own_message_attributes_win_over_its_events(tmp_path: Path) -> None:
    events: list[dict[str, object]] = [
        {"name": "gen_ai.user.message", "attributes": {"content": "from the event"}}
    ]
    attributes = {
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.input.messages": json.dumps(
            [{"role": "user", "parts": [{"type": "text", "content": "from the span"}]}]
        ),
        "gen_ai.output.messages": json.dumps(
            [{"role": "assistant", "parts": [{"type": "text", "content": "ok"}]}]
        ),
    }
    path = tmp_path / "both.otlp.json"
    path.write_text(json.dumps(_otlp_span(attributes, events)))
    [call], _ = read_sources([path])
    assert call.request["messages"] == [{"role": "user", "content": "from the span"}]
