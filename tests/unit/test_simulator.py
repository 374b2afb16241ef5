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

from pytest_llmgate.simulator import CREATED, OpenAISimulator, Rule, count_tokens

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
