"""The loopback simulator, driven by the real openai SDK and by plain httpx2 where the SDK hides details."""

from __future__ import annotations

import gzip
import http.client
import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest
from openai import OpenAI

from pytest_llmgate.model.responses import build_request, parse_response
from pytest_llmgate.simulator import CREATED, OpenAISimulator, ReasoningRules, Rule, count_tokens

USER = [{"role": "user", "content": "hello world"}]


def client(server: OpenAISimulator, **kwargs: Any) -> OpenAI:
    options: dict[str, Any] = {"max_retries": 0, **kwargs}
    return OpenAI(base_url=server.base_url, api_key="sk-test", **options)


def post(server: OpenAISimulator, body: Any, path: str = "/chat/completions") -> httpx2.Response:
    return httpx2.post(server.base_url + path, json=body, timeout=5)


def sse_events(text: str) -> list[str]:
    assert text.endswith("data: [DONE]\n\n")
    return [block.removeprefix("data: ") for block in text.split("\n\n") if block]


# -- plain replies -----------------------------------------------------------------------------


def test_default_reply_echoes_model_and_last_user_message(openai_server: OpenAISimulator) -> None:
    messages: list[Any] = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "hello world"},
    ]
    reply = client(openai_server).chat.completions.create(model="gpt-4o", messages=messages)

    assert reply.choices[0].message.content == "[gpt-4o] hello world"
    assert reply.choices[0].message.refusal is None
    assert reply.choices[0].finish_reason == "stop"
    assert reply.id.startswith("chatcmpl-sim-")
    assert reply.created == CREATED
    assert reply.model == "gpt-4o"
    assert reply.system_fingerprint == "fp_sim"
    assert reply.usage is not None
    # 3 to prime + (3 + words) per message: be brief=2, first=1, ok=1, hello world=2.
    assert reply.usage.prompt_tokens == 3 + (3 + 2) + (3 + 1) + (3 + 1) + (3 + 2)
    assert reply.usage.completion_tokens == count_tokens("[gpt-4o] hello world") == 7
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + 7

    [request] = openai_server.requests
    assert (request.method, request.path) == ("POST", "/v1/chat/completions")
    assert request.headers["authorization"] == "Bearer sk-test"
    assert request.json["messages"] == messages
    assert json.loads(request.raw) == request.json
    assert request.model == "gpt-4o"


def test_raw_body_has_the_real_api_shape(openai_server: OpenAISimulator) -> None:
    response = post(openai_server, {"model": "gpt-5.5", "messages": USER})

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-request-id"].startswith("req_")
    assert response.json() == {
        "id": response.json()["id"],
        "object": "chat.completion",
        "created": CREATED,
        "model": "gpt-5.5",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "[gpt-5.5] hello world", "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": 8,
            "completion_tokens": 9,  # [ gpt - 5 . 5 ] hello world
            "total_tokens": 17,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        },
        "service_tier": "default",
        "system_fingerprint": "fp_sim",
    }


def test_rules_match_model_and_text_in_order(openai_server: OpenAISimulator) -> None:
    openai_server.add_rule(model="gpt-4o", contains="refund", content="Refunds take 5 days.")
    openai_server.add_rule(contains="refund", content="Any model: refunds.")
    openai_server.add_rule(
        Rule(model="gpt-4o", content="gpt-4o fallback", response_model="gpt-4o-2024-08-06")
    )
    sdk = client(openai_server)

    def ask(model: str, text: str) -> tuple[str | None, str]:
        reply = sdk.chat.completions.create(model=model, messages=[{"role": "user", "content": text}])
        return reply.choices[0].message.content, reply.model

    assert ask("gpt-4o", "Where is my refund?") == ("Refunds take 5 days.", "gpt-4o")
    assert ask("gpt-5.5", "Where is my refund?") == ("Any model: refunds.", "gpt-5.5")
    assert ask("gpt-4o", "hi") == ("gpt-4o fallback", "gpt-4o-2024-08-06")
    assert ask("gpt-5.5", "hi") == ("[gpt-5.5] hi", "gpt-5.5")


def test_contains_sees_system_and_text_parts(openai_server: OpenAISimulator) -> None:
    openai_server.add_rule(contains="PIRATE", content="Arr.")
    reply = client(openai_server).chat.completions.create(
        model="gpt-4o",
        messages=[
            {"role": "system", "content": [{"type": "text", "text": "Talk like a PIRATE."}]},
            {"role": "user", "content": "hello"},
        ],
    )
    assert reply.choices[0].message.content == "Arr."


def test_tool_call_rule_sends_null_content(openai_server: OpenAISimulator) -> None:
    openai_server.add_rule(
        model="gpt-4o",
        tool_calls=[
            {"name": "route_ticket", "arguments": {"queue": "billing", "priority": 2}},
            {"name": "broken", "arguments": '{"queue": '},
        ],
    )
    reply = client(openai_server).chat.completions.create(model="gpt-4o", messages=USER)

    message = reply.choices[0].message
    assert message.content is None
    assert reply.choices[0].finish_reason == "tool_calls"
    assert message.tool_calls is not None
    first, second = message.tool_calls
    assert first.type == "function"
    assert first.id.startswith("call_")
    assert first.id != second.id
    assert first.function.name == "route_ticket"
    assert json.loads(first.function.arguments) == {"queue": "billing", "priority": 2}
    assert second.function.arguments == '{"queue": '  # raw text passes through untouched
    assert reply.usage is not None
    assert reply.usage.completion_tokens == count_tokens(first.function.arguments) + count_tokens(
        '{"queue": '
    )


def test_refusal_and_usage_override(openai_server: OpenAISimulator) -> None:
    openai_server.add_rule(
        refusal="I can't help with that.",
        usage={"cached_tokens": 4, "reasoning_tokens": 64},
        finish_reason="stop",
    )
    reply = client(openai_server).chat.completions.create(model="o4-mini", messages=USER)

    assert reply.choices[0].message.content is None
    assert reply.choices[0].message.refusal == "I can't help with that."
    assert reply.usage is not None
    assert reply.usage.completion_tokens == count_tokens("I can't help with that.") + 64
    assert reply.usage.prompt_tokens_details is not None
    assert reply.usage.prompt_tokens_details.cached_tokens == 4
    assert reply.usage.completion_tokens_details is not None
    assert reply.usage.completion_tokens_details.reasoning_tokens == 64


def test_prompt_token_factor_scales_prompt_tokens_only(openai_server: OpenAISimulator) -> None:
    openai_server.add_rule(model="gpt-5.5", content="ok", prompt_token_factor=1.5)
    sdk = client(openai_server)
    base = sdk.chat.completions.create(model="gpt-4o", messages=USER).usage
    drifted = sdk.chat.completions.create(model="gpt-5.5", messages=USER).usage

    assert base is not None
    assert drifted is not None
    assert base.prompt_tokens == 8
    assert drifted.prompt_tokens == 12
    assert drifted.completion_tokens == 1
    assert drifted.total_tokens == 13


def test_rule_validation_fails_when_written() -> None:
    with pytest.raises(ValueError, match=r"unknown usage keys \['cached'\]"):
        Rule(usage={"cached": 1})
    with pytest.raises(ValueError, match=r"tool_calls\[0\] needs a string 'name'"):
        Rule(tool_calls=[{"arguments": {}}])
    with pytest.raises(TypeError, match="not both"):
        OpenAISimulator().add_rule(Rule(), content="x")
    with pytest.raises(ValueError, match="drip_bytes_per_second must be > 0"):
        Rule(drip_bytes_per_second=0)


# -- errors ------------------------------------------------------------------------------------


def test_429_with_retry_after_raises_rate_limit_error(openai_server: OpenAISimulator) -> None:
    openai_server.add_rule(status=429, headers={"Retry-After": "1"})
    with pytest.raises(openai.RateLimitError) as info:
        client(openai_server).chat.completions.create(model="gpt-4o", messages=USER)

    assert info.value.status_code == 429
    assert info.value.response.headers["retry-after"] == "1"
    assert info.value.code == "rate_limit_exceeded"
    assert info.value.type == "requests"
    assert "Rate limit reached for gpt-4o" in info.value.message
    assert len(openai_server.requests) == 1


def test_sdk_honours_retry_after_when_retrying(openai_server: OpenAISimulator) -> None:
    openai_server.add_rule(status=429, headers={"Retry-After": "0.3"}, times=1)
    started = time.monotonic()
    reply = client(openai_server, max_retries=1).chat.completions.create(model="gpt-4o", messages=USER)
    elapsed = time.monotonic() - started

    assert reply.choices[0].message.content == "[gpt-4o] hello world"
    assert len(openai_server.requests) == 2
    assert 0.3 <= elapsed < 2.0


def test_500_once_then_success(openai_server: OpenAISimulator) -> None:
    openai_server.add_rule(status=500, times=1, content="upstream exploded")
    sdk = client(openai_server)

    with pytest.raises(openai.InternalServerError) as info:
        sdk.chat.completions.create(model="gpt-4o", messages=USER)
    assert info.value.status_code == 500
    assert info.value.message == "Error code: 500 - upstream exploded"
    assert info.value.body == {
        "message": "upstream exploded",
        "type": "server_error",
        "param": None,
        "code": None,
    }

    reply = sdk.chat.completions.create(model="gpt-4o", messages=USER)
    assert reply.choices[0].message.content == "[gpt-4o] hello world"


def test_unknown_path_is_an_openai_shaped_404(openai_server: OpenAISimulator) -> None:
    response = post(openai_server, {"model": "gpt-4o"}, path="/embeddingz")
    assert response.status_code == 404
    assert response.json() == {
        "error": {
            "message": "Invalid URL (POST /v1/embeddingz)",
            "type": "invalid_request_error",
            "param": None,
            "code": "",
        }
    }


@pytest.mark.parametrize(
    ("body", "message", "param"),
    [
        (b"{not json", "We could not parse the JSON body", None),
        (b'{"messages": [{"role": "user", "content": "x"}]}', "you must provide a model parameter", None),
        (b'{"model": "gpt-4o"}', "Missing required parameter: 'messages'.", "messages"),
    ],
)
def test_bad_requests_are_openai_shaped_400s(
    openai_server: OpenAISimulator, body: bytes, message: str, param: str | None
) -> None:
    response = httpx2.post(
        openai_server.base_url + "/chat/completions",
        content=body,
        headers={"content-type": "application/json"},
        timeout=5,
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["message"].startswith(message)
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert openai_server.requests[-1].raw == body


def test_garbage_200_body_breaks_sdk_parsing(openai_server: OpenAISimulator) -> None:
    openai_server.add_rule(body='{"id": "chatcmpl-1", "choices": [')
    sdk = client(openai_server)

    # The SDK lets the json module's error escape: it is not an openai.APIError.
    with pytest.raises(json.JSONDecodeError):
        sdk.chat.completions.create(model="gpt-4o", messages=USER)

    raw = sdk.chat.completions.with_raw_response.create(model="gpt-4o", messages=USER)
    assert raw.status_code == 200
    assert raw.http_response.text == '{"id": "chatcmpl-1", "choices": ['
    with pytest.raises(json.JSONDecodeError):
        raw.parse()


def test_hang_times_out_the_client_and_stop_returns_promptly() -> None:
    server = OpenAISimulator([Rule(hang=True)])
    server.start()
    try:
        started = time.monotonic()
        with pytest.raises(openai.APITimeoutError):
            client(server, timeout=0.5).chat.completions.create(model="gpt-4o", messages=USER)
        assert 0.5 <= time.monotonic() - started < 2.0

        # A second hanging request from a raw socket that never gives up.
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        connection.request("POST", "/v1/chat/completions", body=json.dumps({"model": "m", "messages": USER}))
        time.sleep(0.2)
    finally:
        started = time.monotonic()
        server.stop()
        assert time.monotonic() - started < 2.0
    with pytest.raises((http.client.HTTPException, ConnectionError)):
        connection.getresponse()
    assert len(server.requests) == 2


def test_drip_sends_the_whole_body_slowly_and_every_read_gets_bytes(openai_server: OpenAISimulator) -> None:
    openai_server.add_rule(content="slow but complete", drip_bytes_per_second=4000)
    started = time.monotonic()
    chunks: list[tuple[float, bytes]] = []
    body = {"model": "gpt-4o", "messages": USER}
    with httpx2.stream(
        "POST", openai_server.base_url + "/chat/completions", json=body, timeout=0.5
    ) as response:
        size = int(response.headers["content-length"])
        for chunk in response.iter_raw():
            chunks.append((time.monotonic() - started, chunk))
    data = b"".join(chunk for _, chunk in chunks)
    assert len(data) == size > 400
    assert json.loads(data)["choices"][0]["message"]["content"] == "slow but complete"
    # ~0.1 s at 4000 bytes/s: spread over many reads, none of them waiting near the 0.5 s timeout.
    assert chunks[-1][0] >= 0.8 * size / 4000
    assert len(chunks) >= 3


def test_sse_keepalive_forever_never_sends_an_event_until_stopped() -> None:
    server = OpenAISimulator([Rule(sse_keepalive_forever=True)])
    server.start()
    try:
        body = {"model": "gpt-4o", "messages": USER, "stream": True}
        received = b""
        with httpx2.stream("POST", server.base_url + "/chat/completions", json=body, timeout=0.5) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            started = time.monotonic()
            for chunk in response.iter_raw():
                received += chunk
                if time.monotonic() - started > 0.7:  # longer than the read timeout: reads never wait
                    break
        assert received.count(b": keep-alive\n\n") >= 4
        assert received.replace(b": keep-alive\n\n", b"") == b""

        # A client that never hangs up: stop() must still end the stream promptly.
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        connection.request("POST", "/v1/chat/completions", body=json.dumps(body))
        endless = connection.getresponse()
        assert endless.read(len(b": keep-alive\n\n")) == b": keep-alive\n\n"
    finally:
        started = time.monotonic()
        server.stop()
        assert time.monotonic() - started < 2.0
    rest = endless.read()  # the server closed the connection: the body ends, no event ever came
    assert set(rest.split(b"\n\n")) <= {b": keep-alive", b""}


def test_stop_ends_a_drip_promptly() -> None:
    server = OpenAISimulator([Rule(content="x " * 2000, drip_bytes_per_second=10)])
    server.start()
    try:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        connection.request("POST", "/v1/chat/completions", body=json.dumps({"model": "m", "messages": USER}))
        response = connection.getresponse()
        assert response.read(1) == b"{"
    finally:
        started = time.monotonic()
        server.stop()
        assert time.monotonic() - started < 2.0
    with pytest.raises(http.client.IncompleteRead):
        response.read()


def test_stop_interrupts_latency_sleep() -> None:
    server = OpenAISimulator(latency_ms=30_000)
    server.start()
    errors: list[BaseException] = []

    def call() -> None:
        try:
            client(server, timeout=20).chat.completions.create(model="gpt-4o", messages=USER)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=call)
    thread.start()
    while not server.requests:
        time.sleep(0.01)
    started = time.monotonic()
    server.stop()
    thread.join(5)
    assert time.monotonic() - started < 2.0
    assert [type(error) for error in errors] == [openai.APIConnectionError]


# -- streaming ---------------------------------------------------------------------------------


def test_stream_without_usage(openai_server: OpenAISimulator) -> None:
    openai_server.add_rule(content="The quick brown fox jumps over the lazy dog.")
    chunks = list(client(openai_server).chat.completions.create(model="gpt-4o", messages=USER, stream=True))

    assert chunks[0].choices[0].delta.role == "assistant"
    pieces = [chunk.choices[0].delta.content or "" for chunk in chunks]
    assert "".join(pieces) == "The quick brown fox jumps over the lazy dog."
    assert sum(1 for piece in pieces if piece) == 4
    assert [chunk.choices[0].finish_reason for chunk in chunks][-1] == "stop"
    assert all(chunk.usage is None for chunk in chunks)
    assert {chunk.object for chunk in chunks} == {"chat.completion.chunk"}
    assert len({chunk.id for chunk in chunks}) == 1

    raw = post(openai_server, {"model": "gpt-4o", "messages": USER, "stream": True})
    assert raw.headers["content-type"].startswith("text/event-stream")
    events = sse_events(raw.text)
    assert events[-1] == "[DONE]"
    assert all("usage" not in json.loads(event) for event in events[:-1])


def test_stream_with_include_usage(openai_server: OpenAISimulator) -> None:
    chunks = list(
        client(openai_server).chat.completions.create(
            model="gpt-4o", messages=USER, stream=True, stream_options={"include_usage": True}
        )
    )
    *body, last = chunks
    assert last.choices == []
    assert last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens, last.usage.total_tokens) == (8, 7, 15)
    assert all(chunk.usage is None for chunk in body)
    assert body[-1].choices[0].finish_reason == "stop"
    assert "".join(chunk.choices[0].delta.content or "" for chunk in body) == "[gpt-4o] hello world"

    raw = post(
        openai_server,
        {"model": "gpt-4o", "messages": USER, "stream": True, "stream_options": {"include_usage": True}},
    )
    events = [json.loads(event) for event in sse_events(raw.text)[:-1]]
    assert all(event["usage"] is None for event in events[:-1])
    assert events[-1]["choices"] == []


def test_stream_tool_call_deltas_reassemble(openai_server: OpenAISimulator) -> None:
    openai_server.add_rule(
        content=None,
        tool_calls=[
            {"name": "lookup", "arguments": {"order": "A-17", "verbose": True}},
            {"name": "notify", "arguments": {"to": "ops"}},
        ],
    )
    chunks = list(client(openai_server).chat.completions.create(model="gpt-4o", messages=USER, stream=True))

    calls: dict[int, dict[str, str]] = {}
    for chunk in chunks:
        for delta in chunk.choices[0].delta.tool_calls or ():
            entry = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
            if delta.id:
                entry["id"] = delta.id
            if delta.function and delta.function.name:
                entry["name"] = delta.function.name
            if delta.function and delta.function.arguments:
                entry["arguments"] += delta.function.arguments
    assert sorted(calls) == [0, 1]
    assert calls[0]["name"] == "lookup"
    assert json.loads(calls[0]["arguments"]) == {"order": "A-17", "verbose": True}
    assert json.loads(calls[1]["arguments"]) == {"to": "ops"}
    assert calls[0]["id"].startswith("call_")
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    assert all(not chunk.choices[0].delta.content for chunk in chunks)


# -- timing and concurrency --------------------------------------------------------------------


def test_rule_latency_is_honoured(openai_server: OpenAISimulator) -> None:
    openai_server.add_rule(model="slow", latency_ms=200, content="eventually")
    sdk = client(openai_server)

    started = time.monotonic()
    sdk.chat.completions.create(model="fast", messages=USER)
    fast = time.monotonic() - started
    started = time.monotonic()
    reply = sdk.chat.completions.create(model="slow", messages=USER)
    slow = time.monotonic() - started

    assert reply.choices[0].message.content == "eventually"
    assert slow >= 0.2
    assert fast < 0.2


def test_per_model_latency_table() -> None:
    with OpenAISimulator(latency_ms={"gpt-4o": 150, "*": 0}) as server:
        sdk = client(server)
        timings = {}
        for model in ("gpt-4o", "other"):
            started = time.monotonic()
            reply = sdk.chat.completions.create(model=model, messages=USER)
            timings[model] = time.monotonic() - started
        response = post(server, {"model": "gpt-4o", "messages": USER})

    assert reply.choices[0].message.content == "[other] hello world"
    assert timings["gpt-4o"] >= 0.15 > timings["other"]
    assert response.headers["openai-processing-ms"] == "150"


def test_concurrent_requests_overlap() -> None:
    with OpenAISimulator(latency_ms=300) as server:
        sdk = client(server, timeout=10)

        def ask(index: int) -> str | None:
            reply = sdk.chat.completions.create(
                model="gpt-4o", messages=[{"role": "user", "content": f"q{index}"}]
            )
            return reply.choices[0].message.content

        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=16) as pool:
            answers = list(pool.map(ask, range(16)))
        elapsed = time.monotonic() - started

    assert answers == [f"[gpt-4o] q{index}" for index in range(16)]
    assert 0.3 <= elapsed < 1.6  # serial would take 4.8 s
    assert len(server.requests) == 16


def test_keep_alive_reuses_one_connection(openai_server: OpenAISimulator) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", openai_server.port, timeout=5)
    try:
        bodies = []
        sockets = []
        for text in ("one", "two", "three"):
            payload = json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": text}]})
            connection.request("POST", "/v1/chat/completions", body=payload)
            response = connection.getresponse()
            assert response.version == 11
            assert response.getheader("content-length") is not None
            bodies.append(json.loads(response.read())["choices"][0]["message"]["content"])
            sockets.append(connection.sock)
        connection.request("GET", "/nowhere")
        missing = connection.getresponse()
        assert missing.status == 404
        missing.read()
        sockets.append(connection.sock)
    finally:
        connection.close()
    assert bodies == ["[gpt-4o] one", "[gpt-4o] two", "[gpt-4o] three"]
    assert all(sock is sockets[0] and sock is not None for sock in sockets)


def test_restart_keeps_base_url_and_rules() -> None:
    server = OpenAISimulator([Rule(content="still here")])
    first_url = server.start()
    server.stop()
    with pytest.raises(openai.APIConnectionError):
        client(server).chat.completions.create(model="gpt-4o", messages=USER)
    try:
        assert server.start() == first_url == server.base_url
        reply = client(server).chat.completions.create(model="gpt-4o", messages=USER)
    finally:
        server.stop()
    assert reply.choices[0].message.content == "still here"


def test_base_url_before_start_says_what_to_do() -> None:
    with pytest.raises(RuntimeError, match=r"call start\(\)"):
        _ = OpenAISimulator().base_url


# -- determinism -------------------------------------------------------------------------------


def test_same_request_to_fresh_servers_gives_identical_bytes() -> None:
    body = {"model": "gpt-4o", "messages": USER, "tools": [{"type": "function", "function": {"name": "f"}}]}
    rules = [Rule(tool_calls=[{"name": "f", "arguments": {"x": 1}}])]
    responses = []
    for _ in range(2):
        with OpenAISimulator(rules) as server:
            first = post(server, body)
            second = post(server, body)
        responses.append((first, second))

    (a1, a2), (b1, b2) = responses
    assert a1.content == b1.content
    assert a2.content == b2.content
    assert a1.headers["x-request-id"] == b1.headers["x-request-id"]
    assert a1.headers["date"] == b1.headers["date"]
    # A repeated body is a new completion, with new ids.
    assert a1.json()["id"] != a2.json()["id"]
    first_call = a1.json()["choices"][0]["message"]["tool_calls"][0]["id"]
    second_call = a2.json()["choices"][0]["message"]["tool_calls"][0]["id"]
    assert first_call != second_call


# -- other endpoints and transports ------------------------------------------------------------


def test_models_lists_rule_and_latency_models() -> None:
    rules = [Rule(model="gpt-4o", response_model="gpt-4o-2024-08-06"), Rule(contains="x")]
    with OpenAISimulator(rules, latency_ms={"gpt-5.5": 480, "*": 10}) as server:
        listed = [model.id for model in client(server).models.list()]
        one = client(server).models.retrieve("gpt-5.5")
        with pytest.raises(openai.NotFoundError):
            client(server).models.retrieve("nope")

    assert listed == ["gpt-4o", "gpt-4o-2024-08-06", "gpt-5.5"]
    assert one.id == "gpt-5.5"


def test_azure_deployment_path_uses_deployment_as_model(openai_server: OpenAISimulator) -> None:
    azure = openai.AzureOpenAI(
        azure_endpoint=openai_server.base_url.removesuffix("/v1"),
        api_key="sk-test",
        api_version="2024-10-21",
        max_retries=0,
    )
    reply = azure.chat.completions.create(model="my-deployment", messages=USER)

    assert reply.choices[0].message.content == "[my-deployment] hello world"
    [request] = openai_server.requests
    assert request.path == "/openai/deployments/my-deployment/chat/completions"
    assert request.query == "api-version=2024-10-21"
    assert request.headers["api-key"] == "sk-test"

    bare = httpx2.post(
        openai_server.base_url.removesuffix("/v1") + "/openai/deployments/dep2/chat/completions",
        json={"messages": USER},
        timeout=5,
    )
    assert bare.json()["model"] == "dep2"


def test_path_without_v1_prefix(openai_server: OpenAISimulator) -> None:
    response = httpx2.post(
        openai_server.base_url.removesuffix("/v1") + "/chat/completions",
        json={"model": "gpt-4o", "messages": USER},
        timeout=5,
    )
    assert response.json()["choices"][0]["message"]["content"] == "[gpt-4o] hello world"


def test_gzip_only_when_the_client_accepts_it(openai_server: OpenAISimulator) -> None:
    openai_server.add_rule(gzip=True, content="squeezed")
    body = json.dumps({"model": "gpt-4o", "messages": USER})

    connection = http.client.HTTPConnection("127.0.0.1", openai_server.port, timeout=5)
    try:
        connection.request("POST", "/v1/chat/completions", body=body, headers={"Accept-Encoding": "gzip"})
        zipped = connection.getresponse()
        assert zipped.getheader("content-encoding") == "gzip"
        assert json.loads(gzip.decompress(zipped.read()))["choices"][0]["message"]["content"] == "squeezed"
        connection.request("POST", "/v1/chat/completions", body=body, headers={"Accept-Encoding": "identity"})
        plain = connection.getresponse()
        assert plain.getheader("content-encoding") is None
        assert json.loads(plain.read())["choices"][0]["message"]["content"] == "squeezed"
    finally:
        connection.close()

    # The SDK asks for gzip and decodes it transparently.
    reply = client(openai_server).chat.completions.create(model="gpt-4o", messages=USER)
    assert reply.choices[0].message.content == "squeezed"


# -- scripts and CLI ---------------------------------------------------------------------------

SCRIPT = """\
latency_ms: {gpt-4o: 30, gpt-5.5: 60}
rules:
  - model: gpt-5.5
    contains: refund
    tool_calls:
      - name: route_ticket
        arguments: {queue: billing}
    content: null
  - model: gpt-4o
    contains: refund
    content: "Please contact billing."
  - status: 429
    contains: flood
    headers: {Retry-After: 2}
"""


def test_from_script(tmp_path: Path) -> None:
    script = tmp_path / "sim.yaml"
    script.write_text(SCRIPT)
    server = OpenAISimulator.from_script(script)

    assert server.latency_ms == {"gpt-4o": 30.0, "gpt-5.5": 60.0}
    assert [rule.model for rule in server.rules] == ["gpt-5.5", "gpt-4o", None]
    assert server.rules[2].headers == {"Retry-After": "2"}
    with server:
        sdk = client(server)
        refund = [{"role": "user", "content": "I want a refund"}]
        candidate = sdk.chat.completions.create(model="gpt-5.5", messages=refund).choices[0].message
        baseline = sdk.chat.completions.create(model="gpt-4o", messages=refund).choices[0].message
        with pytest.raises(openai.RateLimitError) as info:
            sdk.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "flood"}])

    assert candidate.tool_calls is not None
    assert candidate.tool_calls[0].function.arguments == '{"queue":"billing"}'
    assert baseline.content == "Please contact billing."
    assert info.value.response.headers["retry-after"] == "2"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("rules:\n  - contnet: hi\n", r"rules\[0\]: unknown fields \['contnet'\]"),
        ("latency: 3\n", r"unknown top-level keys \['latency'\]"),
        ("rules:\n  - usage: {tokens: 3}\n", r"rules\[0\]: unknown usage keys"),
        ("rules: [\n", "not valid YAML"),
    ],
)
def test_from_script_errors_name_file_and_field(tmp_path: Path, text: str, message: str) -> None:
    script = tmp_path / "bad.yaml"
    script.write_text(text)
    with pytest.raises(ValueError, match=message) as info:
        OpenAISimulator.from_script(script)
    assert str(info.value).startswith(str(script))


def test_cli_serves_until_terminated(tmp_path: Path) -> None:
    script = tmp_path / "sim.yaml"
    script.write_text(SCRIPT)
    process = subprocess.Popen(
        [sys.executable, "-m", "pytest_llmgate.simulator", "--script", str(script), "--latency-ms", "5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        assert line.startswith("base_url=http://127.0.0.1:")
        base_url = line.removeprefix("base_url=")
        assert base_url.endswith("/v1")
        sdk = OpenAI(base_url=base_url, api_key="sk-test", max_retries=0)
        reply = sdk.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "refund?"}])
        other = sdk.chat.completions.create(model="other", messages=USER)
        assert reply.choices[0].message.content == "Please contact billing."
        assert other.choices[0].message.content == "[other] hello world"
        assert (
            httpx2.post(base_url + "/chat/completions", json={"model": "other", "messages": USER}).headers[
                "openai-processing-ms"
            ]
            == "5"
        )
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=10)
    assert process.returncode == 0, stderr
    assert stderr == ""  # no access log


def test_tiktoken_cache_dir_works_offline(tiktoken_cache_dir: Path) -> None:
    code = "import tiktoken; print(tiktoken.get_encoding('o200k_base').encode('hello world'))"
    env = {**os.environ, "TIKTOKEN_CACHE_DIR": str(tiktoken_cache_dir)}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[24912, 2375]"


# -- the Responses API -------------------------------------------------------------------------

SHARED = Path(__file__).resolve().parents[3] / "shared" / "real-openai"


def response_events(text: str) -> list[dict[str, Any]]:
    """The events of a Responses stream, checking each `event:` line names its data's type."""
    events = []
    for block in text.split("\n\n"):
        if not block:
            continue
        name_line, data_line = block.split("\n")
        event = json.loads(data_line.removeprefix("data: "))
        assert name_line == f"event: {event['type']}"
        events.append(event)
    return events


def test_responses_default_reply_via_sdk(openai_server: OpenAISimulator) -> None:
    reply = client(openai_server).responses.create(
        model="gpt-5.5", instructions="be brief", input=[{"role": "user", "content": "hello world"}]
    )

    assert reply.output_text == "[gpt-5.5] hello world"
    assert reply.status == "completed"
    assert reply.id.startswith("resp_")
    assert reply.created_at == CREATED
    assert reply.instructions == "be brief"
    assert reply.usage is not None
    assert reply.usage.output_tokens == count_tokens("[gpt-5.5] hello world")
    assert reply.usage.total_tokens == reply.usage.input_tokens + reply.usage.output_tokens
    assert openai_server.requests[-1].path == "/v1/responses"


def test_responses_answer_from_the_same_rules_as_chat(openai_server: OpenAISimulator) -> None:
    openai_server.add_rule(
        model="gpt-5.5",
        contains="weather",
        tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}],
        reasoning_summary="The user wants the weather.",
        usage={"reasoning_tokens": 64, "cached_tokens": 5},
    )

    reply = client(openai_server).responses.create(
        model="gpt-5.5", input="What is the weather in Paris?", include=["reasoning.encrypted_content"]
    )

    assert [item.type for item in reply.output] == ["reasoning", "function_call"]
    reasoning, call = reply.output
    assert reasoning.type == "reasoning"
    assert [part.text for part in reasoning.summary] == ["The user wants the weather."]
    assert reasoning.encrypted_content
    assert call.type == "function_call"
    assert (call.name, call.arguments) == ("get_weather", '{"city":"Paris"}')
    assert call.call_id.startswith("call_")
    assert reply.usage is not None
    assert reply.usage.output_tokens_details.reasoning_tokens == 64
    assert reply.usage.input_tokens_details.cached_tokens == 5


def test_responses_parse_with_our_adapter(openai_server: OpenAISimulator) -> None:
    openai_server.add_rule(content="Paris.", refusal=None, finish_reason="length")
    body = build_request({"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}], "max_tokens": 2})

    response = post(openai_server, body, "/responses")
    reply = parse_response(response.content, response.status_code, response.headers["content-type"])

    assert response.json()["status"] == "incomplete"
    assert response.json()["incomplete_details"] == {"reason": "max_output_tokens"}
    assert response.json()["max_output_tokens"] == 2
    assert (reply.text, reply.finish_reason, reply.model) == ("Paris.", "length", "gpt-4o")


def test_responses_refusal(openai_server: OpenAISimulator) -> None:
    openai_server.add_rule(refusal="I can't help with that.")

    reply = client(openai_server).responses.create(model="gpt-4o", input="x")

    assert reply.output[0].type == "message"
    assert [part.type for part in reply.output[0].content] == ["refusal"]
    assert reply.output_text == ""


def test_responses_stream_uses_the_real_event_names(openai_server: OpenAISimulator) -> None:
    openai_server.add_rule(content="one two three four", reasoning_summary="think")

    response = post(openai_server, {"model": "gpt-5.5", "input": "x", "stream": True}, "/responses")
    events = response_events(response.text)

    assert response.headers["content-type"].startswith("text/event-stream")
    types = [event["type"] for event in events]
    assert types[:2] == ["response.created", "response.in_progress"]
    assert types[-1] == "response.completed"
    for name in (
        "response.output_item.added",
        "response.reasoning_summary_text.delta",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
    ):
        assert name in types
    assert [event["sequence_number"] for event in events] == list(range(len(events)))
    deltas = [event["delta"] for event in events if event["type"] == "response.output_text.delta"]
    assert len(deltas) > 1
    assert "".join(deltas) == "one two three four"
    assert events[0]["response"]["status"] == "in_progress"
    assert events[-1]["response"]["usage"]["output_tokens"] == count_tokens("one two three four")


def test_responses_stream_of_tool_calls_via_sdk(openai_server: OpenAISimulator) -> None:
    openai_server.add_rule(tool_calls=[{"name": "add", "arguments": {"a": 1, "b": 2}}])

    with client(openai_server).responses.stream(model="gpt-4o", input="1+2?") as stream:
        types = [event.type for event in stream]
        final = stream.get_final_response()

    assert "response.function_call_arguments.delta" in types
    assert "response.function_call_arguments.done" in types
    assert final.output[0].type == "function_call"
    assert final.output[0].arguments == '{"a":1,"b":2}'


def test_responses_incomplete_stream_ends_with_response_incomplete(openai_server: OpenAISimulator) -> None:
    openai_server.add_rule(content="cut", finish_reason="length")

    response = post(openai_server, {"model": "gpt-4o", "input": "x", "stream": True}, "/responses")
    last = response_events(response.text)[-1]

    assert last["type"] == "response.incomplete"
    assert last["response"]["incomplete_details"] == {"reason": "max_output_tokens"}


def test_responses_scripted_error_status_latency_and_headers(openai_server: OpenAISimulator) -> None:
    openai_server.add_rule(status=429, headers={"retry-after": "1"}, times=1)
    openai_server.add_rule(latency_ms=150, content="late")

    failed = post(openai_server, {"model": "gpt-4o", "input": "x"}, "/responses")
    started = time.monotonic()
    late = post(openai_server, {"model": "gpt-4o", "input": "x"}, "/responses")

    assert failed.status_code == 429
    assert failed.json()["error"]["code"] == "rate_limit_exceeded"
    assert failed.headers["retry-after"] == "1"
    assert time.monotonic() - started >= 0.14
    assert late.headers["openai-processing-ms"] == "150"


@pytest.mark.parametrize("param", ["messages", "max_tokens", "response_format", "reasoning_effort", "stop"])
def test_responses_refuse_chat_only_parameters(openai_server: OpenAISimulator, param: str) -> None:
    response = post(openai_server, {"model": "gpt-4o", "input": "x", param: 1}, "/responses")

    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "message": f"Unknown parameter: '{param}'.",
            "type": "invalid_request_error",
            "param": param,
            "code": "unknown_parameter",
        }
    }


def test_responses_without_input_or_model(openai_server: OpenAISimulator) -> None:
    no_input = post(openai_server, {"model": "gpt-4o"}, "/responses")
    no_model = post(openai_server, {"input": "x"}, "/responses")

    assert no_input.status_code == no_model.status_code == 400
    assert no_input.json()["error"]["param"] == "input"
    assert no_model.json()["error"]["param"] == "model"


def test_responses_get_is_not_allowed(openai_server: OpenAISimulator) -> None:
    assert httpx2.get(openai_server.base_url + "/responses", timeout=5).status_code == 405


def test_responses_are_byte_identical_when_repeated_across_servers() -> None:
    bodies = []
    for _ in range(2):
        with OpenAISimulator() as server:
            bodies.append(
                post(server, {"model": "gpt-5.5", "input": "x", "stream": True}, "/responses").content
            )

    assert bodies[0] == bodies[1]


# -- reasoning-model refusals ------------------------------------------------------------------


def refusal_of(server: OpenAISimulator, body: dict[str, Any], path: str = "/chat/completions") -> Any:
    response = post(server, body, path)
    assert response.status_code == 400, response.text
    return response.json()


@pytest.fixture
def reasoning_server() -> Any:
    rules = {
        "gpt-5.5": ReasoningRules(chat_tools=False),
        "gpt-5-mini": ReasoningRules(),
        "o1-mini": ReasoningRules(system_role=False),
    }
    with OpenAISimulator(reasoning_models=rules) as server:
        yield server


def test_reasoning_refusal_of_max_tokens(reasoning_server: OpenAISimulator) -> None:
    body = refusal_of(reasoning_server, {"model": "gpt-5.5", "messages": USER, "max_tokens": 300})

    assert body == {
        "error": {
            "message": "Unsupported parameter: 'max_tokens' is not supported with this model. "
            "Use 'max_completion_tokens' instead.",
            "type": "invalid_request_error",
            "param": "max_tokens",
            "code": "unsupported_parameter",
        }
    }


@pytest.mark.parametrize(("param", "value", "shown"), [("temperature", 0, "0"), ("top_p", 0.5, "0.5")])
def test_reasoning_refusal_of_a_value_other_than_1(
    reasoning_server: OpenAISimulator, param: str, value: float, shown: str
) -> None:
    body = refusal_of(reasoning_server, {"model": "gpt-5.5", "messages": USER, param: value})

    assert body["error"] == {
        "message": f"Unsupported value: '{param}' does not support {shown} with this model. "
        "Only the default (1) value is supported.",
        "type": "invalid_request_error",
        "param": param,
        "code": "unsupported_value",
    }


def test_reasoning_models_take_the_default_temperature(reasoning_server: OpenAISimulator) -> None:
    response = post(reasoning_server, {"model": "gpt-5.5", "messages": USER, "temperature": 1})

    assert response.status_code == 200


@pytest.mark.parametrize(
    "param", ["stop", "presence_penalty", "frequency_penalty", "logprobs", "top_logprobs"]
)
def test_reasoning_refusal_of_unsupported_parameters(reasoning_server: OpenAISimulator, param: str) -> None:
    body = refusal_of(reasoning_server, {"model": "gpt-5-mini", "messages": USER, param: ["4242"]})

    assert body["error"]["message"] == f"Unsupported parameter: '{param}' is not supported with this model."
    assert body["error"]["code"] == "unsupported_parameter"
    assert body["error"]["param"] == param


def test_reasoning_refusals_match_the_real_recordings(reasoning_server: OpenAISimulator) -> None:
    if not SHARED.is_dir():
        pytest.skip(f"real OpenAI corpus not found at {SHARED}")
    for name, model in (
        ("045_chat-error-400__mirascope.json", "gpt-5-mini"),
        ("076_chat-error-400__pydantic-ai.json", "o1-mini"),
    ):
        recorded = json.loads((SHARED / name).read_text(encoding="utf-8"))
        request = json.loads(recorded["request"]["body"])
        assert request["model"] == model

        response = post(reasoning_server, request)

        assert response.status_code == recorded["response"]["status"] == 400
        assert response.json() == json.loads(recorded["response"]["body"])


def test_reasoning_refusal_of_system_for_older_o1(reasoning_server: OpenAISimulator) -> None:
    messages = [{"role": "user", "content": "a"}, {"role": "system", "content": "b"}]
    body = refusal_of(reasoning_server, {"model": "o1-mini", "messages": messages})

    assert (
        body["error"]["message"]
        == "Unsupported value: 'messages[1].role' does not support 'system' with this model."
    )
    assert body["error"]["param"] == "messages[1].role"
    developer = [{"role": "developer", "content": "b"}, {"role": "user", "content": "a"}]
    assert post(reasoning_server, {"model": "o1-mini", "messages": developer}).status_code == 200
    assert post(reasoning_server, {"model": "gpt-5-mini", "messages": messages}).status_code == 200


def test_reasoning_refusal_of_tools_on_chat(reasoning_server: OpenAISimulator) -> None:
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]

    body = refusal_of(reasoning_server, {"model": "gpt-5.5", "messages": USER, "tools": tools})
    with_none = post(
        reasoning_server, {"model": "gpt-5.5", "messages": USER, "tools": tools, "reasoning_effort": "none"}
    )
    on_responses = post(
        reasoning_server,
        {"model": "gpt-5.5", "input": "x", "tools": [{"type": "function", "name": "f", "parameters": {}}]},
        "/responses",
    )

    assert body["error"] == {
        "message": "Function tools with reasoning_effort are not supported for gpt-5.5 in "
        "/v1/chat/completions. Please use /v1/responses instead.",
        "type": "invalid_request_error",
        "param": "reasoning_effort",
        "code": None,
    }
    assert with_none.status_code == 200
    assert on_responses.status_code == 200
    assert (
        post(reasoning_server, {"model": "gpt-5-mini", "messages": USER, "tools": tools}).status_code == 200
    )


def test_reasoning_refusal_on_responses(reasoning_server: OpenAISimulator) -> None:
    body = refusal_of(reasoning_server, {"model": "gpt-5.5", "input": "x", "temperature": 0.2}, "/responses")

    assert body["error"] == {
        "message": "Unsupported parameter: 'temperature' is not supported with this model.",
        "type": "invalid_request_error",
        "param": "temperature",
        "code": None,
    }
    assert (
        post(
            reasoning_server, {"model": "gpt-4o", "input": "x", "temperature": 0.2}, "/responses"
        ).status_code
        == 200
    )


def test_reasoning_refusal_reaches_the_sdk_as_bad_request(reasoning_server: OpenAISimulator) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client(reasoning_server).chat.completions.create(model="gpt-5.5", messages=USER, temperature=0)

    assert info.value.code == "unsupported_value"
    assert info.value.param == "temperature"


def test_other_models_take_every_parameter(reasoning_server: OpenAISimulator) -> None:
    body = {"model": "gpt-4o", "messages": USER, "max_tokens": 5, "temperature": 0, "stop": ["x"]}

    assert post(reasoning_server, body).status_code == 200


def test_refused_requests_use_no_rule(reasoning_server: OpenAISimulator) -> None:
    rule = reasoning_server.add_rule(content="scripted", times=1)

    post(reasoning_server, {"model": "gpt-5.5", "messages": USER, "max_tokens": 1})
    ok = post(reasoning_server, {"model": "gpt-5.5", "messages": USER})

    assert ok.json()["choices"][0]["message"]["content"] == "scripted"  # the refusal did not use it up
    assert rule.content == "scripted"


def test_from_script_reads_reasoning_models(tmp_path: Path) -> None:
    script = tmp_path / "sim.yaml"
    script.write_text(
        "reasoning_models:\n  gpt-5.5: {chat_tools: false}\n  o1-mini: {system_role: false}\n",
        encoding="utf-8",
    )
    listed = tmp_path / "listed.yaml"
    listed.write_text("reasoning_models: [o3]\n", encoding="utf-8")

    assert OpenAISimulator.from_script(script).reasoning_models == {
        "gpt-5.5": ReasoningRules(chat_tools=False),
        "o1-mini": ReasoningRules(system_role=False),
    }
    assert OpenAISimulator.from_script(listed).reasoning_models == {"o3": ReasoningRules()}


def test_from_script_rejects_bad_reasoning_models(tmp_path: Path) -> None:
    script = tmp_path / "sim.yaml"
    script.write_text("reasoning_models:\n  gpt-5.5: {tools: false}\n", encoding="utf-8")

    with pytest.raises(ValueError, match=r"sim\.yaml: reasoning_models\.gpt-5\.5: expected a mapping of"):
        OpenAISimulator.from_script(script)
