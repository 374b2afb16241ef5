"""parse_chat_completion on the project's own fixtures, one per body shape met in real traffic."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_llmgate.reply import Reply, ToolCall, Usage
from pytest_llmgate.response import EXCERPT_CHARS, ApiError, ResponseError, parse_chat_completion

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "responses"
JSON = "application/json"
SSE = "text/event-stream; charset=utf-8"


def expected(
    text: str = "",
    *,
    calls: tuple[tuple[str, str, str | None], ...] = (),
    finish: str | None = "stop",
    refusal: str | None = None,
    model: str | None,
    usage: tuple[int | None, int | None, int | None, int | None, int | None] = (None,) * 5,
    cost: float | None = None,
) -> dict[str, Any]:
    """The Reply.to_dict() we expect; usage is (prompt, completion, total, cached, reasoning) and
    `cost` the USD the API reported."""
    return Reply(
        text=text,
        tool_calls=tuple(ToolCall(name=name, arguments=args, id=call_id) for name, args, call_id in calls),
        finish_reason=finish,
        refusal=refusal,
        model=model,
        usage=Usage(*usage, reported_cost_usd=cost),
    ).to_dict()


REPLY_CASES = [
    pytest.param(
        "chat_null_content_tool_call.json",
        JSON,
        expected(
            calls=(("get_weather", '{"city":"Oslo"}', "call_fixture_weather"),),
            finish="tool_calls",
            model="gpt-4o-mini-2024-07-18",
            usage=(81, 15, 96, 0, 0),
        ),
        id="null-content-beside-tool-call",
    ),
    pytest.param(
        "chat_parallel_tool_calls.json",
        JSON,
        expected(
            calls=(
                ("lookup_stock", '{"ticker": "ACME"}', "call_fixture_a"),
                ("lookup_stock", '{"ticker": "INIT"}', "call_fixture_b"),
            ),
            finish="tool_calls",
            model="gpt-3.5-turbo-0125",
            usage=(64, 40, 104, None, None),
        ),
        id="parallel-tool-calls",
    ),
    pytest.param(
        "chat_legacy_function_call.json",
        JSON,
        expected(
            calls=(("convert_currency", '{\n  "amount": 12,\n  "to": "EUR"\n}', None),),
            finish="function_call",
            model="gpt-4-0613",
            usage=(77, 21, 98, None, None),
        ),
        id="legacy-function-call",
    ),
    pytest.param(
        "chat_custom_tool_call.json",
        JSON,
        expected(
            calls=(("run_sql", "SELECT 1", "call_fixture_custom"),),
            finish="tool_calls",
            model="gpt-5-2025-08-07",
            usage=(120, 90, 210, 0, 64),
        ),
        id="custom-tool-call-input",
    ),
    pytest.param(
        "chat_reasoning_only_length.json",
        JSON,
        expected("", finish="length", model="gpt-5-mini-2025-08-07", usage=(17, 40, 57, 0, 40)),
        id="reasoning-only-length",
    ),
    pytest.param(
        "chat_cached_tokens.json",
        JSON,
        expected("Use one table per entity.", model="gpt-4o-2024-08-06", usage=(1300, 7, 1307, 1280, 0)),
        id="cached-tokens",
    ),
    pytest.param(
        "chat_old_model_no_details.json",
        JSON,
        expected("Six.", model="gpt-3.5-turbo-0613", usage=(25, 2, 27, None, None)),
        id="old-model-no-usage-details",
    ),
    pytest.param(
        "chat_extra_usage_details.json",
        JSON,
        expected("Ready.", model="gpt-5.6-sol", usage=(2050, 3, 2053, 0, None)),
        id="extra-usage-details-and-null-reasoning",
    ),
    pytest.param(
        "chat_dated_model.json",
        JSON,
        expected("Bonjour !", model="gpt-4.1-2025-04-14", usage=(12, 4, 16, 0, 0)),
        id="dated-model-id",
    ),
    pytest.param(
        "chat_refusal.json",
        JSON,
        expected(refusal="I can't help with that.", model="gpt-4o-2024-08-06", usage=(50, 9, 59, 0, 0)),
        id="refusal",
    ),
    pytest.param(
        "chat_content_parts.json",
        JSON,
        expected("Line one. Line two.", model="gpt-4o-2024-11-20", usage=(30, 6, 36, None, None)),
        id="content-as-list-of-parts",
    ),
    pytest.param(
        "chat_audio_transcript.json",
        JSON,
        expected("Good morning.", model="gpt-4o-audio-preview-2024-12-17", usage=(11, 8, 19, None, None)),
        id="audio-transcript-as-text",
    ),
    pytest.param(
        "chat_two_choices.json",
        JSON,
        expected("First answer.", model="gpt-3.5-turbo-0301", usage=(40, 8, 48, None, None)),
        id="n2-takes-choice-index-0",
    ),
    pytest.param(
        "stream_include_usage.sse",
        SSE,
        expected("Hi there", model="gpt-4.1-2025-04-14", usage=(1100, 3, 1103, 1024, 0)),
        id="stream-include-usage",
    ),
    pytest.param(
        "stream_no_usage.sse",
        SSE,
        expected("bar", model="gpt-3.5-turbo-0125"),
        id="stream-without-usage",
    ),
    pytest.param(
        "stream_tool_call_deltas.sse",
        SSE,
        expected(
            calls=(
                ("get_weather", '{"city":"Lima"}', "call_fixture_s3a"),
                ("get_time", '{"tz":"America/Lima"}', "call_fixture_s3b"),
            ),
            finish="tool_calls",
            model="gpt-4o-2024-08-06",
            usage=(90, 33, 123, 0, 0),
        ),
        id="stream-tool-call-deltas",
    ),
    pytest.param(
        "stream_refusal.sse",
        SSE,
        expected(refusal="I can’t do that.", model="gpt-4o-2024-08-06"),
        id="stream-refusal",
    ),
    pytest.param(
        "stream_azure_prompt_filter.sse",
        SSE,
        expected("Done.", model="gpt-4o-mini-2024-07-18", usage=(15, 2, 17, 0, 0)),
        id="stream-azure-empty-first-chunk",
    ),
    # Other OpenAI-compatible providers: the same fields, spelled their way (../shared/real-providers).
    pytest.param(
        "chat_azure_content_filter.json",
        JSON,
        expected("", finish="content_filter", model="gpt-35-turbo", usage=(13, 21, 34, None, None)),
        id="azure-content-filter-without-message-is-billed",
    ),
    pytest.param(
        "stream_x_groq_usage.sse",
        SSE,
        expected("Fast answer.", model="llama3-8b-8192", usage=(22, 4, 26, None, None)),
        id="groq-usage-only-in-x_groq",
    ),
    pytest.param(
        "chat_top_level_cached_tokens.json",
        JSON,
        expected("Two.", model="kimi-k2.6", usage=(40, 12, 52, 32, 9)),
        id="top-level-cached-tokens",
    ),
    pytest.param(
        "chat_deepseek_cache_hit.json",
        JSON,
        expected("Cached.", model="deepseek-chat", usage=(600, 3, 603, 576, None)),
        id="deepseek-prompt-cache-hit-tokens",
    ),
    pytest.param(
        "chat_openrouter_cost.json",
        JSON,
        expected("Routed.", model="openai/gpt-4o-mini", usage=(1000, 500, 1500, 0, 0), cost=0.00045),
        id="openrouter-usage-cost",
    ),
    pytest.param(
        "chat_perplexity_cost.json",
        JSON,
        expected("About 800,000 people.[1]", model="sonar", usage=(8, 92, 100, None, None), cost=0.0051),
        id="perplexity-cost-object",
    ),
    pytest.param(
        "chat_xai_cost_ticks.json",
        JSON,
        expected("Yes", model="grok-3-mini", usage=(20, 1, 121, 4, 100), cost=556000 * 1e-10),
        id="xai-cost-in-usd-ticks",
    ),
    pytest.param(
        "chat_gemini_hidden_thoughts.json",
        JSON,
        expected("Noon.", model="gemini-2.5-flash", usage=(30, 3, 73, None, None)),
        id="gemini-total-above-prompt-plus-completion",
    ),
    pytest.param(
        "stream_cumulative_usage.sse",
        SSE,
        expected("Paris [1]", model="sonar", usage=(7, 3, 10, None, None), cost=0.00501),
        id="perplexity-stream-cumulative-usage",
    ),
]


ERROR_CASES = [
    pytest.param(
        "error_400.json",
        400,
        JSON,
        ApiError,
        "Unsupported parameter: 'temperature' is not supported with this model.",
        {
            "status": 400,
            "code": "unsupported_parameter",
            "type": "invalid_request_error",
            "param": "temperature",
        },
        id="error-400",
    ),
    pytest.param(
        "error_401_masked_key.json",
        401,
        "application/json; charset=utf-8",
        ApiError,
        "Incorrect API key provided: sk-fixt*******************wxyz.",
        {"status": 401, "code": "invalid_api_key", "type": "invalid_request_error", "body_excerpt": ""},
        id="error-401-masked-key",
    ),
    pytest.param(
        "error_404_azure.json",
        404,
        JSON,
        ApiError,
        "The API deployment for this resource does not exist.",
        {"status": 404, "code": "DeploymentNotFound", "type": None},
        id="error-404-azure-string-code",
    ),
    pytest.param(
        "error_on_200.json",
        200,
        JSON,
        ApiError,
        "The server had an error while processing your request.",
        {"status": 200, "code": None, "type": "server_error"},
        id="error-object-on-200",
    ),
    pytest.param(
        "garbage_body.html",
        502,
        "text/html",
        ApiError,
        "without an OpenAI-style error object; body starts with: '<html> <head><title>502 Bad Gateway",
        {"status": 502, "code": None},
        id="error-502-html",
    ),
    pytest.param(
        "empty_body.txt",
        200,
        JSON,
        ResponseError,
        "the response body is empty",
        {"status": 200},
        id="empty-body",
    ),
    pytest.param(
        "empty_body.txt",
        500,
        None,
        ApiError,
        "error status with an empty body",
        {"status": 500},
        id="empty-body-on-500",
    ),
    pytest.param(
        "garbage_body.html",
        200,
        "text/html",
        ResponseError,
        "the response body is not JSON (Content-Type 'text/html')",
        {"status": 200},
        id="garbage-body",
    ),
    pytest.param(
        "truncated.json",
        200,
        JSON,
        ResponseError,
        "the response body is truncated JSON",
        {"status": 200},
        id="truncated-json",
    ),
    pytest.param(
        "responses_api.json",
        200,
        JSON,
        ResponseError,
        "not a chat completion (object 'response'); pytest-llmgate calls /chat/completions",
        {},
        id="responses-api-body",
    ),
    pytest.param(
        "stream_responses_api.sse",
        200,
        SSE,
        ResponseError,
        "not a chat completion (a Responses API stream, event 'response.created')",
        {},
        id="responses-api-stream",
    ),
    pytest.param(
        "stream_truncated.sse",
        200,
        SSE,
        ResponseError,
        "the event stream ended without a finish_reason or [DONE]",
        {},
        id="stream-cut-off",
    ),
]


def read_fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


@pytest.mark.parametrize(("name", "content_type", "want"), REPLY_CASES)
def test_fixture_parses_to_the_expected_reply(name: str, content_type: str, want: dict[str, Any]) -> None:
    reply = parse_chat_completion(read_fixture(name), content_type=content_type)

    assert reply.to_dict() == want


@pytest.mark.parametrize(("name", "status", "content_type", "error_class", "fragment", "attrs"), ERROR_CASES)
def test_fixture_raises_the_expected_error(
    name: str,
    status: int,
    content_type: str | None,
    error_class: type[ResponseError],
    fragment: str,
    attrs: dict[str, Any],
) -> None:
    with pytest.raises(ResponseError) as info:
        parse_chat_completion(read_fixture(name), status=status, content_type=content_type)

    assert type(info.value) is error_class
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)
    assert len(info.value.body_excerpt) <= EXCERPT_CHARS
    for attr, value in attrs.items():
        assert getattr(info.value, attr) == value, attr


def test_every_fixture_is_used() -> None:
    used = {param.values[0] for param in REPLY_CASES + ERROR_CASES}

    # resp_* are the Responses API's fixtures, used by test_responses_adapter.py.
    assert {path.name for path in FIXTURES.iterdir() if not path.name.startswith("resp_")} == used


def test_raw_is_the_decoded_json_or_the_list_of_chunks() -> None:
    plain = parse_chat_completion(read_fixture("chat_cached_tokens.json"))
    streamed = parse_chat_completion(read_fixture("stream_include_usage.sse"), content_type=SSE)

    assert plain.raw == json.loads(read_fixture("chat_cached_tokens.json"))
    assert [chunk["object"] for chunk in streamed.raw] == ["chat.completion.chunk"] * 5
    assert streamed.raw[-1]["choices"] == []


def test_api_message_is_the_only_part_of_a_401_body_repeated() -> None:
    with pytest.raises(ApiError) as info:
        parse_chat_completion(read_fixture("error_401_masked_key.json"), status=401)

    assert str(info.value) == (
        "API error, HTTP 401 invalid_request_error (invalid_api_key): Incorrect API key provided: "
        "sk-fixt*******************wxyz. You can find your API key at "
        "https://platform.openai.com/account/api-keys."
    )


@pytest.mark.parametrize(
    "transform",
    [
        pytest.param(lambda text: text.replace("\n", "\r\n"), id="crlf"),
        pytest.param(lambda text: text.replace("\n", "\r"), id="cr"),
        pytest.param(
            lambda text: "event: message\n" + text.replace("\n\n", "\n\n: keep-alive\n\n"), id="events"
        ),
        pytest.param(lambda text: text.replace("data: ", "data:"), id="no-space"),
        pytest.param(lambda text: text.replace("data: [DONE]\n", ""), id="no-done"),
    ],
)
def test_stream_framing_variants_parse_alike(transform: Any) -> None:
    text = read_fixture("stream_tool_call_deltas.sse").decode()

    assert parse_chat_completion(transform(text)) == parse_chat_completion(text)


def test_stream_is_recognised_without_a_content_type() -> None:
    reply = parse_chat_completion(read_fixture("stream_no_usage.sse"), content_type=None)

    assert reply.text == "bar"


def test_stream_data_split_over_lines_and_raw_line_separator() -> None:
    chunk = {
        "model": "m",
        "choices": [{"index": 0, "delta": {"content": "a\u2028b"}, "finish_reason": "stop"}],
    }
    encoded = json.dumps(chunk, ensure_ascii=False, indent=1)
    body = "".join(f"data: {line}\n" for line in encoded.split("\n")) + "\ndata: [DONE]\n\n"

    assert parse_chat_completion(body, content_type=SSE).text == "a\u2028b"


def sse(*chunks: dict[str, Any]) -> str:
    return "".join(f"data: {json.dumps(chunk)}\n\n" for chunk in chunks) + "data: [DONE]\n\n"


def delta_chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"model": "m", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def test_stream_tool_calls_without_index_are_told_apart_by_id() -> None:
    body = sse(
        delta_chunk({"tool_calls": [{"id": "a", "function": {"name": "one", "arguments": "{"}}]}),
        delta_chunk({"tool_calls": [{"function": {"arguments": "}"}}]}),
        delta_chunk({"tool_calls": [{"id": "b", "function": {"name": "two", "arguments": "[]"}}]}),
        delta_chunk({}, finish="tool_calls"),
    )

    calls = parse_chat_completion(body, content_type=SSE).tool_calls

    assert calls == (ToolCall("one", "{}", "a"), ToolCall("two", "[]", "b"))


def test_stream_legacy_function_call_deltas() -> None:
    body = sse(
        delta_chunk({"role": "assistant", "content": None, "function_call": {"name": "f", "arguments": ""}}),
        delta_chunk({"function_call": {"arguments": '{"x": 1}'}}),
        delta_chunk({}, finish="function_call"),
    )

    assert parse_chat_completion(body).tool_calls == (ToolCall("f", '{"x": 1}'),)


def test_stream_events_with_empty_data_are_skipped() -> None:
    body = "data:\n\n" + sse(delta_chunk({"content": "ok"}, finish="stop"))

    assert parse_chat_completion(body).text == "ok"


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        pytest.param(
            "null", "the response body is a JSON null, expected a chat completion object", id="null"
        ),
        pytest.param("[1, 2]", "the response body is a JSON array", id="array"),
        pytest.param('{"a": 1,, "b": 2}', "is not valid JSON (Expecting property name", id="bad-middle"),
        pytest.param('{"choices": []}', "the chat completion has empty choices", id="empty-choices"),
        pytest.param('{"object": "list", "data": []}', "not a chat completion (object 'list')", id="list"),
        pytest.param('{"choices": [{"text": "hi"}]}', "has no choices[0].message", id="legacy-completions"),
        pytest.param('{"choices": [{"message": {"content": 5}}]}', "content is a JSON number", id="content"),
        pytest.param(
            '{"choices": [{"message": {"tool_calls": [{"type": "function", "function": {}}]}}]}',
            "tool_calls[0] has no function name",
            id="nameless-call",
        ),
        pytest.param("data: [DONE]\n\n", "the event stream has only [DONE]", id="done-only"),
        pytest.param('data: {"choices": [\n\n', "stream event 1 is truncated JSON", id="cut-event"),
    ],
)
def test_wrong_shapes_are_named(body: str, fragment: str) -> None:
    with pytest.raises(ResponseError) as info:
        parse_chat_completion(body)

    assert fragment in str(info.value)
    assert not isinstance(info.value, ApiError)


def test_stream_error_event_is_an_api_error() -> None:
    body = 'data: {"error": {"message": "Overloaded", "type": "server_error", "code": null}}\n\n'

    with pytest.raises(ApiError, match="Overloaded"):
        parse_chat_completion(body, content_type=SSE)


def completion_with_usage(usage: dict[str, Any]) -> str:
    return json.dumps(
        {
            "object": "chat.completion",
            "choices": [{"index": 0, "message": {"content": "ok"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12, **usage},
        }
    )


@pytest.mark.parametrize(
    ("usage", "cached"),
    [
        pytest.param(
            {"prompt_tokens_details": {"cached_tokens": 0}, "prompt_cache_hit_tokens": 8}, 8, id="proxy-zero"
        ),
        pytest.param({"cached_tokens": 6, "prompt_tokens_details": {"cached_tokens": None}}, 6, id="null"),
        pytest.param({"prompt_cache_hit_tokens": 0, "prompt_cache_miss_tokens": 10}, 0, id="deepseek-miss"),
        pytest.param({"cached_tokens": "8", "prompt_cache_hit_tokens": True}, None, id="not-counts"),
    ],
)
def test_cached_tokens_take_the_largest_count_any_spelling_gives(
    usage: dict[str, Any], cached: int | None
) -> None:
    assert parse_chat_completion(completion_with_usage(usage)).usage.cached_tokens == cached


@pytest.mark.parametrize(
    ("usage", "cost"),
    [
        pytest.param({"cost": 0.002, "is_byok": False, "cost_details": {"upstream_inference_cost": 0.002}},
                     0.002, id="openrouter-upstream-equal-to-cost-not-added"),
        pytest.param({"cost": 0.0001, "is_byok": True, "cost_details": {"upstream_inference_cost": 0.003}},
                     0.0031, id="openrouter-byok-fee-plus-upstream"),
        pytest.param({"cost": 0}, 0.0, id="free-model-costs-zero"),
        pytest.param({"cost": {"input_tokens_cost": 0.001, "output_tokens_cost": 0.002,
                               "request_cost": 0.005}}, 0.008, id="perplexity-parts-without-total"),
        pytest.param({"cost": {"total_cost": 0.009, "request_cost": 0.005}}, 0.009,
                     id="perplexity-total-wins"),
        pytest.param({"cost_in_usd_ticks": 25_000_000}, 0.0025, id="xai-ticks"),
        pytest.param({"cost": -1}, None, id="negative"),
        pytest.param({"cost": "0.1"}, None, id="text"),
        pytest.param({"cost": True}, None, id="boolean"),
        pytest.param({"cost": {"currency": "USD"}}, None, id="object-without-amounts"),
        pytest.param({"cost_in_usd_ticks": 10**400}, None, id="ticks-past-float-range"),
        pytest.param({}, None, id="absent"),
    ],
)  # fmt: skip
def test_reported_cost_is_read_in_usd(usage: dict[str, Any], cost: float | None) -> None:
    reported = parse_chat_completion(completion_with_usage(usage)).usage.reported_cost_usd

    assert reported == (None if cost is None else pytest.approx(cost, rel=1e-12))


def test_content_filter_without_message_keeps_the_filter_verdict_in_raw() -> None:
    reply = parse_chat_completion(read_fixture("chat_azure_content_filter.json"))

    assert reply.raw["choices"][0]["content_filter_results"]["violence"]["filtered"] is True
    assert reply.tool_calls == ()
    assert reply.refusal is None


@pytest.mark.parametrize(
    "choice",
    [
        pytest.param({"finish_reason": "stop"}, id="stop"),
        pytest.param({"finish_reason": None}, id="none"),
        pytest.param({"finish_reason": "content_filter", "message": "blocked"}, id="message-not-object"),
    ],
)
def test_only_a_content_filter_may_leave_out_the_message(choice: dict[str, Any]) -> None:
    with pytest.raises(ResponseError, match=r"has no choices\[0\]\.message"):
        parse_chat_completion(json.dumps({"choices": [{"index": 0, **choice}]}))


def test_content_filter_with_null_message_is_a_reply() -> None:
    body = {
        "choices": [{"index": 0, "message": None, "finish_reason": "content_filter"}],
        "usage": {"prompt_tokens": 3},
    }

    reply = parse_chat_completion(json.dumps(body))

    assert (reply.text, reply.finish_reason, reply.usage.prompt_tokens) == ("", "content_filter", 3)


def test_stream_usage_beats_x_groq_usage_in_the_same_chunk_and_later_chunks_win() -> None:
    first = delta_chunk({"content": "a"}) | {
        "x_groq": {"usage": {"prompt_tokens": 1, "completion_tokens": 1}}
    }
    last = delta_chunk({}, finish="stop") | {
        "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
        "x_groq": {"id": "req", "usage": {"prompt_tokens": 99, "completion_tokens": 99}},
    }

    usage = parse_chat_completion(sse(first, last)).usage

    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (5, 2, 7)


def test_x_groq_usage_of_a_plain_completion_is_read() -> None:
    body = json.loads(completion_with_usage({}))
    body["x_groq"] = {"id": "req", "usage": body.pop("usage")}

    assert parse_chat_completion(json.dumps(body)).usage.total_tokens == 12


def test_usage_round_trips_with_the_reported_cost_and_reads_results_written_before_it() -> None:
    reply = parse_chat_completion(read_fixture("chat_openrouter_cost.json"))

    assert Reply.from_dict(reply.to_dict()).usage == reply.usage
    old = reply.to_dict()
    del old["usage"]["reported_cost_usd"]
    assert Reply.from_dict(old).usage.reported_cost_usd is None
    assert Reply.from_dict(old).usage.prompt_tokens == 1000


def test_gzip_body_is_named_as_such() -> None:
    with pytest.raises(ResponseError, match="still gzip-compressed"):
        parse_chat_completion(b"\x1f\x8b\x08\x00rest")


def test_long_garbage_is_cut_to_the_excerpt_limit() -> None:
    with pytest.raises(ResponseError) as info:
        parse_chat_completion("x" * 5000)

    assert len(info.value.body_excerpt) == EXCERPT_CHARS
    assert info.value.body_excerpt.endswith("…")


def test_errors_survive_pickling() -> None:
    with pytest.raises(ApiError) as info:
        parse_chat_completion(read_fixture("error_404_azure.json"), status=404)

    copy = pickle.loads(pickle.dumps(info.value))

    assert (type(copy), str(copy), copy.code, copy.status) == (
        ApiError,
        str(info.value),
        "DeploymentNotFound",
        404,
    )


# -- properties -------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
chat_keys = st.sampled_from(
    ["choices", "message", "delta", "content", "tool_calls", "function", "function_call", "name",
     "arguments", "index", "usage", "model", "finish_reason", "refusal", "error", "object", "type",
     "custom", "audio", "transcript", "text", "prompt_tokens_details", "cached_tokens", "x_groq",
     "prompt_cache_hit_tokens", "cost", "total_cost", "cost_details", "upstream_inference_cost",
     "is_byok", "cost_in_usd_ticks"]
)  # fmt: skip
# Objects keyed like chat completions, so the shapes the parser inspects are actually reached.
chat_like = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.sampled_from(["", "x", "function", "custom", "stop"]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(chat_keys, children, max_size=5),
    max_leaves=30,
)
statuses = st.sampled_from([200, 201, 400, 401, 404, 429, 500])
content_types = st.sampled_from([None, JSON, SSE, "text/html"])


def parses_or_raises_response_error(body: bytes | str, status: int, content_type: str | None) -> None:
    error: ResponseError | None = None
    try:
        reply = parse_chat_completion(body, status=status, content_type=content_type)
    except ResponseError as exc:
        error = exc
    if error is None:
        assert isinstance(reply.text, str)
        assert all(isinstance(call.name, str) and call.name for call in reply.tool_calls)
    else:
        assert "\n" not in str(error) or isinstance(error, ApiError)
        assert len(error.body_excerpt) <= EXCERPT_CHARS


@given(body=st.binary(max_size=300), status=statuses, content_type=content_types)
def test_arbitrary_bytes_give_a_reply_or_a_response_error(
    body: bytes, status: int, content_type: str | None
) -> None:
    parses_or_raises_response_error(body, status, content_type)


@settings(max_examples=300)
@given(data=json_values | chat_like, status=statuses)
def test_arbitrary_json_gives_a_reply_or_a_response_error(data: Any, status: int) -> None:
    parses_or_raises_response_error(json.dumps(data), status, JSON)


@settings(max_examples=300)
@given(chunks=st.lists(chat_like, max_size=4), done=st.booleans())
def test_arbitrary_streams_give_a_reply_or_a_response_error(chunks: list[Any], done: bool) -> None:
    body = "".join(f"data: {json.dumps(chunk)}\n\n" for chunk in chunks) + (
        "data: [DONE]\n\n" if done else ""
    )

    parses_or_raises_response_error(body, 200, SSE)
