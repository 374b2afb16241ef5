"""An OpenAI-compatible server on loopback (chat completions and the Responses API), scripted by rules.

Why a real server rather than a mocked SDK: the plugin talks to models through the official
`openai` SDK over `httpx2` and records at the HTTP layer with vcrpy. Only a real socket
exercises the SDK's retries, timeouts, streaming and error mapping, and only real traffic gives
cassettes that look like production ones. The simulator serves three users:

* the test suite, which scripts status codes, bodies, hangs and latencies per test;
* the example cassettes, which need believable, distinct answers per model and must come out
  byte-identical when re-recorded (fixed `created`, fixed `Date`, ids hashed from the request);
* the benchmark, which needs many concurrent keep-alive connections with per-model latency.

Stdlib only at import time (PyYAML is imported lazily by `from_script`), so it starts wherever
the package is installed. Run it by hand with `python -m pytest_llmgate.simulator --help`.
"""

from __future__ import annotations

import argparse
import gzip as gzip_module
import hashlib
import itertools
import json
import logging
import math
import re
import select
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any, cast

__all__ = ["CREATED", "OpenAISimulator", "ReasoningRules", "RecordedRequest", "Rule", "count_tokens", "main"]

_log = logging.getLogger(__name__)

CREATED = 1767225600
"""The `created` stamp of every reply (2026-01-01T00:00:00Z): fixed so recordings are stable."""

_FIXED_DATE = "Thu, 01 Jan 2026 00:00:00 GMT"
_SERVER_NAME = "llmgate-simulator"
_HANG_CAP_S = 60.0
_DRIP_TICK_S = 0.05
_KEEPALIVE_TICK_S = 0.1
_KEEPALIVE_COMMENT = b": keep-alive\n\n"
_STOP_JOIN_S = 1.5
_TOKEN_RE = re.compile(r"\w+|[^\w\s]")
_USAGE_KEYS = frozenset(
    {"prompt_tokens", "completion_tokens", "total_tokens", "cached_tokens", "reasoning_tokens"}
)
_CHAT_PATH = re.compile(r"^(?:/openai)?(?:/v1)?/chat/completions/?$")
_AZURE_CHAT_PATH = re.compile(r"^/openai/deployments/(?P<deployment>[^/]+)/chat/completions/?$")
_MODELS_PATH = re.compile(r"^(?:/openai)?(?:/v1)?/models(?:/(?P<model>[^/]+))?/?$")
_RESPONSES_PATH = re.compile(r"^(?:/openai)?(?:/v1)?/responses/?$")
# What reasoning models refuse on /v1/chat/completions, in the order the simulator checks them.
_DEFAULT_ONLY_PARAMS = ("temperature", "top_p")
_REFUSED_PARAMS = ("stop", "presence_penalty", "frequency_penalty", "logprobs", "top_logprobs")
# Chat Completions parameters the Responses API does not know (the adapter translates them).
_CHAT_ONLY_PARAMS = (
    "messages",
    "max_tokens",
    "max_completion_tokens",
    "response_format",
    "reasoning_effort",
    "stop",
    "n",
)

# status -> (type, code, default message); the shapes the real API uses for each family.
_ERROR_KINDS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("permission_error", None, "You are not allowed to sample from this model."),
    404: ("invalid_request_error", "model_not_found", "The model `{model}` does not exist."),
    408: ("timeout", None, "Request timed out."),
    409: ("invalid_request_error", "conflict", "Conflict."),
    422: ("invalid_request_error", None, "Unprocessable entity."),
    429: (
        "requests",
        "rate_limit_exceeded",
        "Rate limit reached for {model} on requests per min (RPM): Limit 500, Used 500, Requested 1.",
    ),
    500: ("server_error", None, "The server had an error while processing your request. Sorry about that!"),
    502: ("server_error", None, "Bad gateway."),
    503: ("server_error", None, "The server is overloaded or not ready yet."),
    504: ("server_error", None, "Gateway timeout."),
}


def count_tokens(text: str) -> int:
    """A deterministic stand-in for a tokenizer: words and punctuation marks.

    Real token counts need tiktoken and a vocabulary file; the simulator only needs numbers
    that grow with the text and never change between runs.
    """
    return len(_TOKEN_RE.findall(text))


@dataclass(frozen=True)
class ReasoningRules:
    """How one reasoning model refuses requests, beyond what every reasoning model refuses.

    Every model named in `OpenAISimulator(reasoning_models=...)` answers 400 to `max_tokens`,
    to `temperature`/`top_p` other than 1 and to `stop`, `presence_penalty`,
    `frequency_penalty`, `logprobs`, `top_logprobs` on chat, and to `temperature`/`top_p`,
    the penalties and `top_logprobs` on responses, with the real API's error bodies.
    `system_role=False` also refuses `system` messages (the older o1 models); `chat_tools=False`
    refuses function tools on chat unless `reasoning_effort` is "none" (reasoning is on by
    default for gpt-5.4 and later).
    """

    system_role: bool = True
    chat_tools: bool = True


@dataclass
class Rule:
    """One scripted answer: which requests it matches and what it replies.

    Rules are tried in the order they were added and the first match wins, so put specific
    rules before catch-alls. A matching rule replaces the default echo reply, so a rule that
    sets only `latency_ms` or `headers` answers with empty text: give it `content` too.
    `content=""` beside `tool_calls` or `refusal` is sent as JSON null, as the real API does;
    set `content` to a non-empty string to send both. `times` counts matches per simulator,
    so one `Rule` object can be shared between simulators.

    Two misbehaviours that a per-read timeout cannot catch, each capped at 60 s and ended by
    `stop()`: `drip_bytes_per_second` sends the headers at once and then the body slowly (every
    read gets a few bytes, none waits long); `sse_keepalive_forever` sends the headers of an
    event stream and then `: keep-alive` comment lines every 0.1 s, never an event.
    """

    model: str | None = None
    contains: str | None = None
    content: str | None = ""
    tool_calls: list[dict[str, Any]] | None = None
    refusal: str | None = None
    finish_reason: str | None = None
    status: int = 200
    body: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    latency_ms: float | None = None
    hang: bool = False
    times: int | None = None
    usage: dict[str, int] | None = None
    prompt_token_factor: float = 1.0
    response_model: str | None = None
    gzip: bool = False
    drip_bytes_per_second: float | None = None
    sse_keepalive_forever: bool = False
    reasoning_summary: str | None = None  # Responses API only: a `reasoning` item's summary text

    def __post_init__(self) -> None:
        # Fail when the rule is written, not when a request finally hits it mid-test.
        if self.drip_bytes_per_second is not None and not (
            math.isfinite(self.drip_bytes_per_second) and self.drip_bytes_per_second > 0
        ):
            raise ValueError(f"drip_bytes_per_second must be > 0, got {self.drip_bytes_per_second!r}")
        if self.usage is not None:
            unknown = set(self.usage) - _USAGE_KEYS
            if unknown:
                raise ValueError(f"unknown usage keys {sorted(unknown)}; valid: {sorted(_USAGE_KEYS)}")
        for index, call in enumerate(self.tool_calls or ()):
            if not isinstance(call, dict) or not isinstance(call.get("name"), str):
                raise ValueError(f"tool_calls[{index}] needs a string 'name', got {call!r}")
        if self.times is not None and self.times < 0:
            raise ValueError(f"times must be >= 0, got {self.times}")
        if not 100 <= self.status <= 599:
            raise ValueError(f"status must be an HTTP status code, got {self.status}")
        self.headers = {str(name): str(value) for name, value in self.headers.items()}

    def matches(self, model: str, text: str) -> bool:
        """Whether a request for `model` whose messages read `text` is this rule's business."""
        if self.model is not None and self.model != model:
            return False
        return self.contains is None or self.contains in text


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server received it, for tests to assert what the client sent."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    json: Any
    raw: bytes

    @property
    def model(self) -> str | None:
        """The requested model, when the body was a JSON object naming one."""
        if isinstance(self.json, dict):
            model = self.json.get("model")
            return model if isinstance(model, str) else None
        return None


@dataclass
class _Plan:
    """What to send for one request, decided before any waiting so the decision is atomic."""

    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    latency_s: float = 0.0
    hang: bool = False
    gzip: bool = False
    drip_bytes_per_second: float | None = None
    sse_keepalive_forever: bool = False


@dataclass(frozen=True)
class _ToolCall:
    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class _Answer:
    """The reply content of one completion, shared by the plain and the streamed shapes."""

    id: str
    model: str
    content: str | None
    refusal: str | None
    tool_calls: tuple[_ToolCall, ...]
    finish_reason: str
    usage: dict[str, Any]
    reasoning_summary: str | None = None


def _error_body(
    status: int,
    message: str | None = None,
    *,
    model: str = "",
    param: str | None = None,
    code: str | None = None,
    type_: str | None = None,
) -> bytes:
    kind, default_code, default_message = _ERROR_KINDS.get(
        status, ("server_error" if status >= 500 else "invalid_request_error", None, f"HTTP {status}.")
    )
    error = {
        "message": message or default_message.format(model=model),
        "type": type_ or kind,
        "param": param,
        "code": code if code is not None else default_code,
    }
    return (json.dumps({"error": error}, indent=2) + "\n").encode()


def _refusal_body(message: str, param: str, code: str | None) -> bytes:
    """A 400 exactly as the real API words a refused parameter (see the shared 045/046/076 files)."""
    error = {"message": message, "type": "invalid_request_error", "param": param, "code": code}
    return (json.dumps({"error": error}, indent=2) + "\n").encode()


def _shown_value(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _chat_refusal(model: str, body: dict[str, Any], rules: ReasoningRules) -> bytes | None:
    """The 400 body a reasoning model's /v1/chat/completions answers to `body`, or None."""
    if body.get("max_tokens") is not None:
        return _refusal_body(
            "Unsupported parameter: 'max_tokens' is not supported with this model. "
            "Use 'max_completion_tokens' instead.",
            "max_tokens",
            "unsupported_parameter",
        )
    for name in _DEFAULT_ONLY_PARAMS:
        value = body.get(name)
        if value is not None and (value != 1 or isinstance(value, bool)):
            return _refusal_body(
                f"Unsupported value: '{name}' does not support {_shown_value(value)} with this model. "
                "Only the default (1) value is supported.",
                name,
                "unsupported_value",
            )
    for name in _REFUSED_PARAMS:
        if body.get(name) is not None:
            return _refusal_body(
                f"Unsupported parameter: '{name}' is not supported with this model.",
                name,
                "unsupported_parameter",
            )
    if not rules.system_role:
        for index, message in enumerate(body.get("messages") or ()):
            if isinstance(message, dict) and message.get("role") == "system":
                return _refusal_body(
                    f"Unsupported value: 'messages[{index}].role' does not support 'system' with this model.",
                    f"messages[{index}].role",
                    "unsupported_value",
                )
    if not rules.chat_tools and body.get("tools") and body.get("reasoning_effort") != "none":
        return _refusal_body(
            f"Function tools with reasoning_effort are not supported for {model} in "
            "/v1/chat/completions. Please use /v1/responses instead.",
            "reasoning_effort",
            None,
        )
    return None


def _responses_refusal(body: dict[str, Any], reasoning: bool) -> bytes | None:
    """The 400 body /v1/responses answers to `body`: chat-only parameters for every model, and
    `temperature`/`top_p` (at any value), penalties and `top_logprobs` for reasoning models."""
    for name in _CHAT_ONLY_PARAMS:
        if name in body:
            return _refusal_body(f"Unknown parameter: '{name}'.", name, "unknown_parameter")
    if reasoning:
        for name in (*_DEFAULT_ONLY_PARAMS, "presence_penalty", "frequency_penalty", "top_logprobs"):
            if body.get(name) is not None:
                return _refusal_body(
                    f"Unsupported parameter: '{name}' is not supported with this model.", name, None
                )
    return None


def _part_text(content: Any) -> str:
    """Text of a message's `content`: a string or a list of typed parts (only text parts count)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            str(part.get("text", "")) for part in content if isinstance(part, dict) and "text" in part
        )
    return ""


def _message_text(message: Any) -> str:
    if not isinstance(message, dict):
        return ""
    pieces = [_part_text(message.get("content"))]
    for call in message.get("tool_calls") or ():
        if isinstance(call, dict) and isinstance(call.get("function"), dict):
            pieces.append(str(call["function"].get("arguments", "")))
    return "\n".join(piece for piece in pieces if piece)


def _last_user_text(messages: Sequence[Any]) -> str:
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return _part_text(message.get("content"))
    return ""


def _prompt_tokens(messages: Sequence[Any], tools: Any) -> int:
    # Three per message and three to prime the reply, like OpenAI's cookbook estimate.
    total = 3 + sum(3 + count_tokens(_message_text(message)) for message in messages)
    if tools:
        total += count_tokens(json.dumps(tools, sort_keys=True))
    return total


def _split(text: str, parts: int) -> list[str]:
    """Cut `text` into at most `parts` near-equal pieces on word boundaries, losslessly."""
    words = re.findall(r"\s*\S+\s*|\s+", text)
    count = min(parts, len(words))
    if count == 0:
        return []
    bounds = [round(index * len(words) / count) for index in range(count + 1)]
    return ["".join(words[start:end]) for start, end in itertools.pairwise(bounds)]


def _split_chars(text: str, parts: int) -> list[str]:
    if not text:
        return []
    size = max(1, -(-len(text) // parts))
    return [text[start : start + size] for start in range(0, len(text), size)]


def _dumps(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def _completion_body(answer: _Answer) -> bytes:
    message: dict[str, Any] = {"role": "assistant", "content": answer.content, "refusal": answer.refusal}
    if answer.tool_calls:
        message["tool_calls"] = [
            {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}
            for call in answer.tool_calls
        ]
    body = {
        "id": answer.id,
        "object": "chat.completion",
        "created": CREATED,
        "model": answer.model,
        "choices": [
            {"index": 0, "message": message, "logprobs": None, "finish_reason": answer.finish_reason}
        ],
        "usage": answer.usage,
        "service_tier": "default",
        "system_fingerprint": "fp_sim",
    }
    # The real API pretty-prints its JSON; doing the same keeps cassettes readable in review.
    return (json.dumps(body, indent=2, ensure_ascii=False) + "\n").encode()


def _stream_chunks(answer: _Answer, include_usage: bool) -> Iterator[dict[str, Any]]:
    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": answer.id,
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": answer.model,
            "service_tier": "default",
            "system_fingerprint": "fp_sim",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        }
        if include_usage:
            data["usage"] = None
        return data

    first: dict[str, Any] = {
        "role": "assistant",
        "content": "" if answer.content is not None else None,
        "refusal": None,
    }
    yield chunk(first)
    for piece in _split(answer.content or "", 4):
        yield chunk({"content": piece})
    for piece in _split(answer.refusal or "", 4):
        yield chunk({"refusal": piece})
    for index, call in enumerate(answer.tool_calls):
        yield chunk(
            {
                "tool_calls": [
                    {
                        "index": index,
                        "id": call.id,
                        "type": "function",
                        "function": {"name": call.name, "arguments": ""},
                    }
                ]
            }
        )
        for piece in _split_chars(call.arguments, 3):
            yield chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
    yield chunk({}, answer.finish_reason)
    if include_usage:
        yield {
            "id": answer.id,
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": answer.model,
            "service_tier": "default",
            "system_fingerprint": "fp_sim",
            "choices": [],
            "usage": answer.usage,
        }


def _stream_body(answer: _Answer, include_usage: bool) -> bytes:
    events = [f"data: {_dumps(chunk)}\n\n" for chunk in _stream_chunks(answer, include_usage)]
    events.append("data: [DONE]\n\n")
    return "".join(events).encode()


def _responses_messages(body: dict[str, Any]) -> list[Any]:
    """A Responses request's `instructions` and `input` as chat-style messages, so rules match
    and tokens are counted the same way on both wire formats."""
    messages: list[Any] = []
    instructions = body.get("instructions")
    if isinstance(instructions, str) and instructions:
        messages.append({"role": "system", "content": instructions})
    raw = body.get("input")
    if isinstance(raw, str):
        return [*messages, {"role": "user", "content": raw}]
    for item in raw if isinstance(raw, list) else ():
        if not isinstance(item, dict):
            continue
        kind = item.get("type", "message")
        if kind == "message" or "role" in item:
            messages.append({"role": item.get("role", "user"), "content": item.get("content")})
        elif kind == "function_call":
            messages.append(
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [{"function": {"arguments": item.get("arguments", "")}}],
                }
            )
        elif kind == "function_call_output":
            output = item.get("output")
            messages.append({"role": "tool", "content": output if isinstance(output, str) else ""})
    return messages


def _responses_usage(usage: dict[str, Any]) -> dict[str, Any]:
    return {
        "input_tokens": usage["prompt_tokens"],
        "input_tokens_details": {"cached_tokens": usage["prompt_tokens_details"]["cached_tokens"]},
        "output_tokens": usage["completion_tokens"],
        "output_tokens_details": {"reasoning_tokens": usage["completion_tokens_details"]["reasoning_tokens"]},
        "total_tokens": usage["total_tokens"],
    }


def _item_id(prefix: str, answer: _Answer, index: int) -> str:
    return f"{prefix}_sim{hashlib.sha256(f'{answer.id}:{index}'.encode()).hexdigest()[:24]}"


def _output_items(answer: _Answer, encrypted: bool) -> list[dict[str, Any]]:
    """The `output` items of a finished response: reasoning, the message, then the calls."""
    items: list[dict[str, Any]] = []
    incomplete = answer.finish_reason in ("length", "content_filter")
    if answer.reasoning_summary is not None or answer.usage["completion_tokens_details"]["reasoning_tokens"]:
        reasoning: dict[str, Any] = {"id": _item_id("rs", answer, 0), "type": "reasoning", "summary": []}
        if answer.reasoning_summary:
            reasoning["summary"] = [{"type": "summary_text", "text": answer.reasoning_summary}]
        if encrypted:
            # Opaque to the client, as the real one is; fixed so recordings stay stable.
            reasoning["encrypted_content"] = "gAAAAAB" + hashlib.sha256(answer.id.encode()).hexdigest()
        items.append(reasoning)
    parts: list[dict[str, Any]] = []
    if answer.content:
        parts.append({"type": "output_text", "annotations": [], "logprobs": [], "text": answer.content})
    if answer.refusal is not None:
        parts.append({"type": "refusal", "refusal": answer.refusal})
    if parts or not answer.tool_calls:
        items.append(
            {
                "id": _item_id("msg", answer, 1),
                "type": "message",
                "status": "incomplete" if incomplete else "completed",
                "content": parts,
                "role": "assistant",
            }
        )
    for index, call in enumerate(answer.tool_calls):
        items.append(
            {
                "id": _item_id("fc", answer, 2 + index),
                "type": "function_call",
                "status": "completed",
                "arguments": call.arguments,
                "call_id": call.id,
                "name": call.name,
            }
        )
    return items


def _response_object(
    answer: _Answer, request: dict[str, Any], *, finished: bool = True, encrypted: bool = False
) -> dict[str, Any]:
    """A `response` object as the real API sends it (the fields a client reads, in its order)."""
    reason = {"length": "max_output_tokens", "content_filter": "content_filter"}.get(answer.finish_reason)
    status = ("incomplete" if reason else "completed") if finished else "in_progress"
    reasoning = request.get("reasoning")
    text = request.get("text")
    return {
        "id": answer.id,
        "object": "response",
        "created_at": CREATED,
        "status": status,
        "background": False,
        "error": None,
        "incomplete_details": {"reason": reason} if reason and finished else None,
        "instructions": request.get("instructions"),
        "max_output_tokens": request.get("max_output_tokens"),
        "model": answer.model,
        "output": _output_items(answer, encrypted) if finished else [],
        "parallel_tool_calls": request.get("parallel_tool_calls", True),
        "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None, **(reasoning if isinstance(reasoning, dict) else {})},
        "service_tier": "default",
        "store": request.get("store", True),
        "temperature": request.get("temperature", 1.0),
        "text": text if isinstance(text, dict) else {"format": {"type": "text"}},
        "tool_choice": request.get("tool_choice", "auto"),
        "tools": request.get("tools") or [],
        "top_p": request.get("top_p", 1.0),
        "truncation": "disabled",
        "usage": _responses_usage(answer.usage) if finished else None,
        "user": None,
        "metadata": {},
    }


def _response_body(answer: _Answer, request: dict[str, Any], encrypted: bool) -> bytes:
    body = _response_object(answer, request, encrypted=encrypted)
    return (json.dumps(body, indent=2, ensure_ascii=False) + "\n").encode()


def _response_events(answer: _Answer, request: dict[str, Any], encrypted: bool) -> Iterator[dict[str, Any]]:
    """The events of a streamed response, with the real API's names and fields."""
    started = _response_object(answer, request, finished=False)
    yield {"type": "response.created", "response": started}
    yield {"type": "response.in_progress", "response": started}
    for index, item in enumerate(_output_items(answer, encrypted)):
        where = {"item_id": item["id"], "output_index": index}
        kind = item["type"]
        if kind == "reasoning":
            yield {
                "type": "response.output_item.added",
                "output_index": index,
                "item": {**item, "summary": []},
            }
            for summary_index, part in enumerate(item["summary"]):
                at = {**where, "summary_index": summary_index}
                yield {"type": "response.reasoning_summary_part.added", **at, "part": {**part, "text": ""}}
                for piece in _split(part["text"], 3):
                    yield {"type": "response.reasoning_summary_text.delta", **at, "delta": piece}
                yield {"type": "response.reasoning_summary_text.done", **at, "text": part["text"]}
                yield {"type": "response.reasoning_summary_part.done", **at, "part": part}
        elif kind == "message":
            added = {**item, "status": "in_progress", "content": []}
            yield {"type": "response.output_item.added", "output_index": index, "item": added}
            for content_index, part in enumerate(item["content"]):
                at = {**where, "content_index": content_index}
                if part["type"] == "refusal":
                    yield {"type": "response.content_part.added", **at, "part": {**part, "refusal": ""}}
                    for piece in _split(part["refusal"], 4):
                        yield {"type": "response.refusal.delta", **at, "delta": piece}
                    yield {"type": "response.refusal.done", **at, "refusal": part["refusal"]}
                else:
                    yield {"type": "response.content_part.added", **at, "part": {**part, "text": ""}}
                    for piece in _split(part["text"], 4):
                        yield {"type": "response.output_text.delta", **at, "delta": piece, "logprobs": []}
                    yield {"type": "response.output_text.done", **at, "text": part["text"], "logprobs": []}
                yield {"type": "response.content_part.done", **at, "part": part}
        else:
            added = {**item, "status": "in_progress", "arguments": ""}
            yield {"type": "response.output_item.added", "output_index": index, "item": added}
            for piece in _split_chars(item["arguments"], 3):
                yield {"type": "response.function_call_arguments.delta", **where, "delta": piece}
            yield {"type": "response.function_call_arguments.done", **where, "arguments": item["arguments"]}
        yield {"type": "response.output_item.done", "output_index": index, "item": item}
    final = _response_object(answer, request, encrypted=encrypted)
    kind = "response.completed" if final["status"] == "completed" else "response.incomplete"
    yield {"type": kind, "response": final}


def _response_stream_body(answer: _Answer, request: dict[str, Any], encrypted: bool) -> bytes:
    events = []
    for number, event in enumerate(_response_events(answer, request, encrypted)):
        numbered = {"type": event["type"], "sequence_number": number, **event}
        events.append(f"event: {event['type']}\ndata: {_dumps(numbered)}\n\n")
    return "".join(events).encode()


def _not_json() -> _Plan:
    """The real API's answer to a body that is not a JSON object (both endpoints)."""
    return _Plan(
        status=400,
        body=_error_body(
            400, "We could not parse the JSON body of your request. The OpenAI API expects a JSON payload."
        ),
    )


class OpenAISimulator:
    """A threaded HTTP/1.1 server answering chat completions from `Rule`s or a default echo.

    Un-scripted requests get `"[<model>] <last user message>"`, so a test that only needs
    *an* answer needs no rule, and two models always answer differently.

    `POST /v1/responses` answers from the same rules (content, tool calls, refusal, usage,
    latency, status, body, ...) in the Responses API's shape, JSON or events. Models named in
    `reasoning_models` (a set of ids, or ids mapped to `ReasoningRules`) refuse what the real
    API refuses of reasoning models, with its exact 400 bodies; other models take everything.
    """

    def __init__(
        self,
        rules: Iterable[Rule] = (),
        latency_ms: float | Mapping[str, float] = 0.0,
        host: str = "127.0.0.1",
        port: int = 0,
        reasoning_models: Iterable[str] | Mapping[str, ReasoningRules] = (),
    ) -> None:
        self.rules: list[Rule] = list(rules)
        self.reasoning_models: dict[str, ReasoningRules] = (
            dict(reasoning_models)
            if isinstance(reasoning_models, Mapping)
            else {name: ReasoningRules() for name in reasoning_models}
        )
        # A number applies to every model; a mapping is per model, with "*" for the rest.
        self.latency_ms: float | Mapping[str, float] = latency_ms
        self.host = host
        self.port = port
        self.requests: list[RecordedRequest] = []
        self.in_flight = 0
        self.max_in_flight = 0  # most requests being answered at once: proves client concurrency
        self.max_in_flight_by_model: dict[str, int] = {}
        self._in_flight_by_model: dict[str, int] = {}
        self._lock = threading.Lock()
        self._hits: dict[int, int] = {}
        self._body_counts: dict[str, int] = {}
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._base_url: str | None = None

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """`http://HOST:PORT/v1`; kept after `stop()` so replay tests can point at a dead port."""
        if self._base_url is None:
            raise RuntimeError("the simulator has not been started; call start() or use it as a context")
        return self._base_url

    def start(self) -> str:
        """Bind, serve in a daemon thread and return the base URL (idempotent while running)."""
        if self._server is not None:
            return self.base_url
        self._stopping.clear()
        server = _Server((self.host, self.port), self)
        bound_host, port = server.server_address[:2]
        host = bound_host.decode() if isinstance(bound_host, bytes) else str(bound_host)
        self.port = int(port)
        shown_host = f"[{host}]" if ":" in host else host
        self._base_url = f"http://{shown_host}:{self.port}/v1"
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="llmgate-simulator", daemon=True
        )
        self._thread.start()
        return self._base_url

    def stop(self) -> None:
        """Stop promptly, even with handlers sleeping, hanging or parked on idle keep-alive sockets."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        server.close_connections(_STOP_JOIN_S)
        if thread is not None:
            thread.join(_STOP_JOIN_S)
        # `self.port` keeps the bound port, so a restart serves the same base URL again.
        self._server = None
        self._thread = None

    def __enter__(self) -> OpenAISimulator:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- scripting -------------------------------------------------------------------------

    def add_rule(self, rule: Rule | None = None, **fields: Any) -> Rule:
        """Append a rule (given, or built from keyword fields) and return it."""
        if rule is None:
            rule = Rule(**fields)
        elif fields:
            raise TypeError("pass either a Rule or keyword fields, not both")
        with self._lock:
            self.rules.append(rule)
        return rule

    @classmethod
    def from_script(cls, path: str | Path) -> OpenAISimulator:
        """Build a simulator from a YAML script: `{latency_ms: N | {model: N}, rules: [...],
        reasoning_models: [id, ...] | {id: {system_role: false, chat_tools: false}}}`.

        Scripts let example cassettes be re-recorded from a file kept beside them, and let the
        CLI serve the same behaviour to a benchmark.
        """
        import yaml

        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise ValueError(f"{path}: not valid YAML: {exc}") from exc
        data = {} if data is None else data
        if not isinstance(data, dict):
            raise ValueError(f"{path}: the script must be a mapping with 'latency_ms' and 'rules'")
        unknown = set(data) - {"latency_ms", "rules", "reasoning_models"}
        if unknown:
            raise ValueError(
                f"{path}: unknown top-level keys {sorted(unknown)}; "
                "valid: ['latency_ms', 'reasoning_models', 'rules']"
            )
        latency = data.get("latency_ms", 0.0)
        if isinstance(latency, dict):
            latency_ms: float | dict[str, float] = {str(k): float(v) for k, v in latency.items()}
        elif isinstance(latency, (int, float)):
            latency_ms = float(latency)
        else:
            raise ValueError(f"{path}: latency_ms must be a number or a mapping of model to number")
        raw_rules = data.get("rules") or []
        if not isinstance(raw_rules, list):
            raise ValueError(f"{path}: 'rules' must be a list of mappings")
        valid = {f.name for f in fields(Rule)}
        rules: list[Rule] = []
        for index, raw in enumerate(raw_rules):
            if not isinstance(raw, dict):
                raise ValueError(f"{path}: rules[{index}] must be a mapping, got {raw!r}")
            bad = set(raw) - valid
            if bad:
                raise ValueError(
                    f"{path}: rules[{index}]: unknown fields {sorted(bad)}; valid: {sorted(valid)}"
                )
            try:
                rules.append(Rule(**raw))
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{path}: rules[{index}]: {exc}") from exc
        return cls(
            rules=rules,
            latency_ms=latency_ms,
            reasoning_models=_script_reasoning(path, data.get("reasoning_models")),
        )

    def models(self) -> list[str]:
        """Model ids named by rules or by the latency table, for `GET /v1/models`."""
        names = {rule.model for rule in self.rules if rule.model}
        names |= {rule.response_model for rule in self.rules if rule.response_model}
        if isinstance(self.latency_ms, Mapping):
            names |= {name for name in self.latency_ms if name != "*"}
        return sorted(names)

    def latency_for(self, model: str) -> float:
        """The default latency in milliseconds for `model`, before any rule override."""
        if isinstance(self.latency_ms, Mapping):
            return float(self.latency_ms.get(model, self.latency_ms.get("*", 0.0)))
        return float(self.latency_ms)

    # -- request handling (called from handler threads) ------------------------------------

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _choose(self, model: str, text: str) -> Rule | None:
        with self._lock:
            for rule in self.rules:
                if not rule.matches(model, text):
                    continue
                hits = self._hits.get(id(rule), 0)
                if rule.times is not None and hits >= rule.times:
                    continue
                self._hits[id(rule)] = hits + 1
                return rule
        return None

    def _seed(self, path: str, raw: bytes) -> str:
        """A per-request seed from the body and how often that body came, never from randomness."""
        digest = hashlib.sha256(path.encode() + b"\n" + raw).hexdigest()
        with self._lock:
            count = self._body_counts.get(digest, 0)
            self._body_counts[digest] = count + 1
        return f"{digest}:{count}"

    def _plan(self, request: RecordedRequest) -> _Plan:
        if request.method not in ("GET", "POST"):
            return _Plan(status=405, body=_error_body(405, f"Method {request.method} not allowed."))
        if _MODELS_PATH.match(request.path):
            if request.method != "GET":
                return _Plan(status=405, body=_error_body(405, "Use GET for the models list."))
            return self._plan_models(request)
        if _RESPONSES_PATH.match(request.path):
            if request.method != "POST":
                return _Plan(status=405, body=_error_body(405, "Use POST to create a response."))
            return self._plan_responses(request)
        azure = _AZURE_CHAT_PATH.match(request.path)
        if azure or _CHAT_PATH.match(request.path):
            if request.method != "POST":
                return _Plan(status=405, body=_error_body(405, "Use POST for chat completions."))
            return self._plan_chat(request, azure.group("deployment") if azure else None)
        return _Plan(
            status=404,
            body=_error_body(404, f"Invalid URL ({request.method} {request.path})", code=""),
        )

    def _plan_models(self, request: RecordedRequest) -> _Plan:
        match = _MODELS_PATH.match(request.path)
        wanted = match.group("model") if match else None
        entries = [
            {"id": name, "object": "model", "created": CREATED, "owned_by": _SERVER_NAME}
            for name in self.models()
        ]
        if wanted is None:
            data: dict[str, Any] = {"object": "list", "data": entries}
        else:
            found = [entry for entry in entries if entry["id"] == wanted]
            if not found:
                return _Plan(status=404, body=_error_body(404, model=wanted))
            data = found[0]
        return _Plan(body=(json.dumps(data, indent=2) + "\n").encode())

    def _plan_chat(self, request: RecordedRequest, deployment: str | None) -> _Plan:
        body = request.json
        if not isinstance(body, dict):
            return _not_json()
        model = body.get("model") or deployment
        if not isinstance(model, str) or not model:
            return _Plan(status=400, body=_error_body(400, "you must provide a model parameter"))
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return _Plan(
                status=400,
                body=_error_body(
                    400,
                    "Missing required parameter: 'messages'.",
                    param="messages",
                    code="missing_required_parameter",
                ),
            )
        rules = self.reasoning_models.get(model)
        refusal = _chat_refusal(model, body, rules) if rules is not None else None
        if refusal is not None:
            return _Plan(status=400, body=refusal, headers=self._request_id(request))
        stream = body.get("stream") is True
        plan, rule, seed, scripted = self._plan_scripted(request, model, messages, stream)
        if scripted:
            return plan
        answer = self._answer(rule, model, messages, body.get("tools"), seed)
        plan.status = rule.status if rule is not None else 200
        if stream:
            options = body.get("stream_options")
            include_usage = isinstance(options, dict) and options.get("include_usage") is True
            plan.body = _stream_body(answer, include_usage)
            plan.content_type = "text/event-stream; charset=utf-8"
        else:
            plan.body = _completion_body(answer)
        return plan

    def _plan_responses(self, request: RecordedRequest) -> _Plan:
        body = request.json
        if not isinstance(body, dict):
            return _not_json()
        model = body.get("model")
        if not isinstance(model, str) or not model:
            return _Plan(
                status=400,
                body=_error_body(
                    400,
                    "Missing required parameter: 'model'.",
                    param="model",
                    code="missing_required_parameter",
                ),
            )
        refusal = _responses_refusal(body, model in self.reasoning_models)
        if refusal is not None:
            return _Plan(status=400, body=refusal, headers=self._request_id(request))
        messages = _responses_messages(body)
        if not messages:
            return _Plan(
                status=400,
                body=_error_body(
                    400,
                    "Missing required parameter: 'input'.",
                    param="input",
                    code="missing_required_parameter",
                ),
            )
        stream = body.get("stream") is True
        plan, rule, seed, scripted = self._plan_scripted(request, model, messages, stream)
        if scripted:
            return plan
        answer = self._answer(rule, model, messages, body.get("tools"), seed, prefix="resp_sim")
        include = body.get("include")
        encrypted = isinstance(include, list) and "reasoning.encrypted_content" in include
        plan.status = rule.status if rule is not None else 200
        if stream:
            plan.body = _response_stream_body(answer, body, encrypted)
            plan.content_type = "text/event-stream; charset=utf-8"
        else:
            plan.body = _response_body(answer, body, encrypted)
        return plan

    def _request_id(self, request: RecordedRequest) -> dict[str, str]:
        seed = self._seed(request.path, request.raw)
        return {"x-request-id": "req_" + hashlib.sha256(f"{seed}:req".encode()).hexdigest()[:32]}

    def _plan_scripted(
        self, request: RecordedRequest, model: str, messages: list[Any], stream: bool
    ) -> tuple[_Plan, Rule | None, str, bool]:
        """The rule for a request and the plan's delivery (latency, headers, misbehaviours); the
        last value says the plan is complete (the rule scripts a body or an error status)."""
        text = "\n".join(_message_text(message) for message in messages)
        rule = self._choose(model, text)
        seed = self._seed(request.path, request.raw)
        latency_ms = (
            rule.latency_ms if rule is not None and rule.latency_ms is not None else self.latency_for(model)
        )
        headers = {
            "x-request-id": "req_" + hashlib.sha256(f"{seed}:req".encode()).hexdigest()[:32],
            "openai-processing-ms": str(round(latency_ms)),
        }
        if rule is not None:
            headers.update(rule.headers)
        plan = _Plan(
            latency_s=latency_ms / 1000.0,
            headers=headers,
            hang=rule is not None and rule.hang,
            gzip=rule is not None and rule.gzip and "gzip" in request.headers.get("accept-encoding", ""),
            drip_bytes_per_second=rule.drip_bytes_per_second if rule is not None else None,
            sse_keepalive_forever=rule is not None and rule.sse_keepalive_forever,
        )
        if rule is not None and rule.body is not None:
            plan.status = rule.status
            plan.body = rule.body.encode()
            if stream and rule.status < 400:
                plan.content_type = "text/event-stream; charset=utf-8"
            return plan, rule, seed, True
        if rule is not None and rule.status >= 400:
            plan.status = rule.status
            plan.body = _error_body(rule.status, rule.content or None, model=model)
            return plan, rule, seed, True
        return plan, rule, seed, False

    def _answer(
        self,
        rule: Rule | None,
        model: str,
        messages: list[Any],
        tools: Any,
        seed: str,
        prefix: str = "chatcmpl-sim",
    ) -> _Answer:
        def short_hash(salt: str) -> str:
            return hashlib.sha256(f"{seed}:{salt}".encode()).hexdigest()[:24]

        if rule is None:
            rule = Rule(content=f"[{model}] {_last_user_text(messages)}")
        calls = tuple(
            _ToolCall(
                id=str(call.get("id") or f"call_{short_hash(f'call{index}')}"),
                name=str(call["name"]),
                arguments=call.get("arguments", {})
                if isinstance(call.get("arguments", {}), str)
                else _dumps(call.get("arguments", {})),
            )
            for index, call in enumerate(rule.tool_calls or ())
        )
        content = rule.content
        if content == "" and (calls or rule.refusal is not None):
            content = None
        finish_reason = rule.finish_reason or ("tool_calls" if calls else "stop")

        override = rule.usage or {}
        prompt = round(_prompt_tokens(messages, tools) * rule.prompt_token_factor)
        reasoning = int(override.get("reasoning_tokens", 0))
        written = count_tokens(content or "") + count_tokens(rule.refusal or "")
        written += sum(count_tokens(call.arguments) for call in calls)
        prompt = int(override.get("prompt_tokens", prompt))
        completion = int(override.get("completion_tokens", written + reasoning))
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": int(override.get("total_tokens", prompt + completion)),
            "prompt_tokens_details": {
                "cached_tokens": int(override.get("cached_tokens", 0)),
                "audio_tokens": 0,
            },
            "completion_tokens_details": {
                "reasoning_tokens": reasoning,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }
        return _Answer(
            id=f"{prefix}-{short_hash('id')}",
            model=rule.response_model or model,
            content=content,
            refusal=rule.refusal,
            tool_calls=calls,
            finish_reason=finish_reason,
            usage=usage,
            reasoning_summary=rule.reasoning_summary,
        )


def _script_reasoning(path: Path, raw: Any) -> dict[str, ReasoningRules]:
    """`reasoning_models:` of a script: a list of model ids, or ids mapped to their rules."""
    if raw is None:
        return {}
    if isinstance(raw, list) and all(isinstance(name, str) for name in raw):
        return {name: ReasoningRules() for name in raw}
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: reasoning_models must be a list of model ids or a mapping of id to rules")
    valid = {f.name for f in fields(ReasoningRules)}
    result: dict[str, ReasoningRules] = {}
    for name, entry in raw.items():
        entry = entry or {}
        if not isinstance(entry, dict) or set(entry) - valid:
            raise ValueError(f"{path}: reasoning_models.{name}: expected a mapping of {sorted(valid)}")
        result[str(name)] = ReasoningRules(**entry)
    return result


class _Handler(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive: every response carries Content-Length so connections are reused."""

    protocol_version = "HTTP/1.1"
    server_version = _SERVER_NAME
    sys_version = ""
    # Headers and body go out in separate writes; with Nagle's algorithm on, the body waits for
    # the client's delayed ACK (about 40 ms), which would add to every measured latency.
    disable_nagle_algorithm = True

    @property
    def _sim_server(self) -> _Server:
        return cast(_Server, self.server)

    def log_message(self, format: str, *args: Any) -> None:
        """Silenced: the stdlib writes an access log line to stderr per request."""

    def handle(self) -> None:
        try:
            super().handle()
        except OSError:
            # The client went away, or stop() shut the socket: nothing is left to answer.
            self.close_connection = True

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _dispatch(self) -> None:
        received = time.monotonic()
        simulator = self._sim_server.simulator
        # Read the body first, whatever the route: an unread body would corrupt the next
        # request on this keep-alive connection.
        raw = self._read_body()
        path, _, query = self.path.partition("?")
        try:
            parsed: Any = json.loads(raw) if raw else None
        except (ValueError, UnicodeDecodeError):
            parsed = None
        request = RecordedRequest(
            method=self.command,
            path=path,
            query=query,
            headers={name.lower(): value for name, value in self.headers.items()},
            json=parsed,
            raw=raw,
        )
        simulator._record(request)
        model = request.model or "?"
        with simulator._lock:
            simulator.in_flight += 1
            simulator.max_in_flight = max(simulator.max_in_flight, simulator.in_flight)
            count = simulator._in_flight_by_model[model] = simulator._in_flight_by_model.get(model, 0) + 1
            simulator.max_in_flight_by_model[model] = max(
                simulator.max_in_flight_by_model.get(model, 0), count
            )
        self._in_flight_model: str | None = model
        try:
            self._answer(request, received)
        finally:
            self._leave_in_flight()

    def _leave_in_flight(self) -> None:
        """The request stops counting as in flight (once): before its last bytes are written.

        Counted down after the write, a client that had read the whole answer could send its
        next request while this one still counted: a limit of 1 measured as 2.
        """
        model, self._in_flight_model = self._in_flight_model, None
        if model is None:
            return
        simulator = self._sim_server.simulator
        with simulator._lock:
            simulator.in_flight -= 1
            simulator._in_flight_by_model[model] -= 1

    def _answer(self, request: RecordedRequest, received: float) -> None:
        simulator = self._sim_server.simulator
        try:
            plan = simulator._plan(request)
        except Exception as exc:  # a simulator bug must reach the test as a 500, not a hung client
            _log.exception("simulator failed on %s %s", self.command, self.path)
            plan = _Plan(status=500, body=_error_body(500, f"simulator error: {exc!r}"))

        stopping = simulator._stopping
        remaining = plan.latency_s - (time.monotonic() - received)
        if remaining > 0 and stopping.wait(remaining):
            self.close_connection = True
            return
        if plan.hang:
            self._hang(stopping)
            self.close_connection = True
            return
        if plan.sse_keepalive_forever:
            self._keep_alive_forever(plan, stopping)
            self.close_connection = True
            return
        self._send(plan, stopping)

    def _hang(self, stopping: threading.Event) -> None:
        """Wait until the server stops, the client hangs up, or the cap passes, then send nothing."""
        deadline = time.monotonic() + _HANG_CAP_S
        while not stopping.wait(0.05) and time.monotonic() < deadline:
            try:
                readable, _, _ = select.select([self.connection], [], [], 0)
                if readable and not self.connection.recv(1, socket.MSG_PEEK):
                    return
            except (OSError, ValueError):
                return

    def _send_headers(self, status: int, headers: Mapping[str, str]) -> None:
        self.send_response_only(status)
        # A fixed Date keeps re-recorded cassettes identical; the real server's would vary.
        self.send_header("Date", _FIXED_DATE)
        self.send_header("Server", _SERVER_NAME)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()

    def _send(self, plan: _Plan, stopping: threading.Event) -> None:
        body = plan.body
        headers = {"Content-Type": plan.content_type}
        if plan.gzip:
            body = gzip_module.compress(body, mtime=0)
            headers["Content-Encoding"] = "gzip"
        headers.update(plan.headers)
        headers["Content-Length"] = str(len(body))
        if plan.drip_bytes_per_second is not None:
            self._send_headers(plan.status, headers)
            self._drip(body, plan.drip_bytes_per_second, stopping)
            return
        self._leave_in_flight()
        self._send_headers(plan.status, headers)
        self.wfile.write(body)
        self.wfile.flush()

    def _drip(self, body: bytes, rate: float, stopping: threading.Event) -> None:
        """Send `body` at `rate` bytes a second; give up (closing the connection) on stop or the cap."""
        step = max(1, math.ceil(rate * _DRIP_TICK_S))
        deadline = time.monotonic() + _HANG_CAP_S
        for start in range(0, len(body), step):
            self.wfile.write(body[start : start + step])
            self.wfile.flush()
            last = start + step >= len(body)
            if not last and (stopping.wait(step / rate) or time.monotonic() > deadline):
                self.close_connection = True
                return

    def _keep_alive_forever(self, plan: _Plan, stopping: threading.Event) -> None:
        """An event stream that never sends an event: headers, then comment lines until stopped.

        No Content-Length and `Connection: close`, so the body only ends when the connection does.
        """
        headers = {"Content-Type": "text/event-stream; charset=utf-8", **plan.headers}
        headers["Connection"] = "close"
        self._send_headers(plan.status, headers)
        deadline = time.monotonic() + _HANG_CAP_S
        while True:
            self.wfile.write(_KEEPALIVE_COMMENT)
            self.wfile.flush()
            if stopping.wait(_KEEPALIVE_TICK_S) or time.monotonic() > deadline:
                return


class _Server(ThreadingHTTPServer):
    """Tracks its connection threads so stop() can close idle keep-alive sockets and join them.

    The stdlib's own join-on-close waits without a timeout for every connection, including
    keep-alive connections the client's pool holds open, so it is switched off.
    """

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    # The stdlib's backlog of 5 drops SYNs when a benchmark opens 16+ connections at once, and
    # the client's retransmit then adds a whole second to those requests.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], simulator: OpenAISimulator) -> None:
        self.simulator = simulator
        self._live_lock = threading.Lock()
        self._live: dict[threading.Thread, socket.socket] = {}
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self._serve_connection,
            args=(request, client_address),
            name="llmgate-simulator-conn",
            daemon=True,
        )
        with self._live_lock:
            self._live[thread] = request
        thread.start()

    def _serve_connection(self, request: Any, client_address: Any) -> None:
        try:
            self.process_request_thread(request, client_address)
        finally:
            with self._live_lock:
                self._live.pop(threading.current_thread(), None)

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, OSError):
            return
        _log.error("simulator connection from %s failed", client_address, exc_info=True)

    def close_connections(self, timeout: float) -> None:
        with self._live_lock:
            live = list(self._live.items())
        for _, connection in live:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        deadline = time.monotonic() + timeout
        for thread, _ in live:
            thread.join(max(0.0, deadline - time.monotonic()))


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until SIGTERM or SIGINT; print `base_url=...` once listening, for scripts to read."""
    parser = argparse.ArgumentParser(
        prog="python -m pytest_llmgate.simulator",
        description="An OpenAI-compatible chat-completions simulator on loopback.",
    )
    parser.add_argument("--script", type=Path, help="YAML script: {latency_ms: ..., rules: [...]}")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to bind (default: 0, any free port)")
    parser.add_argument(
        "--latency-ms",
        type=float,
        default=None,
        help="latency for every model; with a per-model script table, for the models it does not name",
    )
    args = parser.parse_args(argv)
    try:
        simulator = OpenAISimulator.from_script(args.script) if args.script else OpenAISimulator()
    except (OSError, ValueError) as exc:
        parser.error(str(exc))
    simulator.host, simulator.port = args.host, args.port
    if args.latency_ms is not None:
        if isinstance(simulator.latency_ms, Mapping):
            simulator.latency_ms = {**simulator.latency_ms, "*": args.latency_ms}
        else:
            simulator.latency_ms = args.latency_ms

    done = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with simulator:
        print(f"base_url={simulator.base_url}", flush=True)
        while not done.wait(0.5):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
