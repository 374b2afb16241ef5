"""The Responses API (`POST /v1/responses`) as a wire format: a case's request in, a `Reply` out.

Why an adapter rather than a second case format: a suite is written once, in chat terms
(`system`, `messages`, `tools`, `response_format`, `max_tokens`), and the upgrade under test may
move to a model that is best (or only) served by the Responses API. `build_request` translates
the chat.completions-style request of `Case.request_for` into a Responses body; `parse_response`
reads the `output` items of the answer, JSON or server-sent events, into the same `Reply` the
chat parser gives, so assertions, budgets and reports never learn which format answered.

Errors are the chat parser's: `ApiError` when the server said it failed, `ResponseError` for
every other body we cannot use; nothing else escapes `parse_response`, whatever the bytes.
Pure: no SDK, no I/O.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pytest_llmgate.model.chat import first_content_offset as _first_offset
from pytest_llmgate.reply import Reply, ToolCall, Usage

# The chat parser's decoding, JSON and error helpers: one reading of bodies for both formats.
from pytest_llmgate.response import (
    ApiError,
    ResponseError,
    _api_error_from_body,
    _api_error_from_object,
    _arguments_text,
    _count,
    _decode,
    _json_kind,
    _load_json,
    _looks_like_sse,
    _media_type,
    _reported_cost,
    _sse_data,
    _str_or_none,
    excerpt,
)

__all__ = [
    "TranslationError",
    "build_request",
    "event_carries_content",
    "first_content_offset",
    "parse_response",
]

_RESPONSES_HINT = "the target says `api: responses`; remove it (or set `api: chat`) to call /chat/completions"
_LOGPROBS_INCLUDE = "message.output_text.logprobs"
_TERMINAL_EVENTS = ("response.completed", "response.incomplete", "response.failed")
_UNFINISHED = ("queued", "in_progress")
_CONTENT_DELTAS = frozenset(
    {"response.output_text.delta", "response.refusal.delta", "response.function_call_arguments.delta"}
)
_CALL_ITEMS = frozenset({"function_call", "custom_tool_call"})


class TranslationError(ValueError):
    """A chat request that has no Responses equivalent (e.g. a tool result without its call id)."""


# -- request ----------------------------------------------------------------------------------


def build_request(chat_request: Mapping[str, Any]) -> dict[str, Any]:
    """The `/v1/responses` body for a chat.completions-style request.

    `system` messages at the start become `instructions`; the other messages become `input`
    items (user/assistant/developer text, an assistant's tool calls as `function_call` items,
    tool results as `function_call_output`); chat `tools` and `tool_choice` lose their
    `function` wrapper (and function tools say `strict: false` unless the case said otherwise,
    because the Responses API defaults to strict schemas a chat suite was never written for);
    `response_format` and `verbosity` go under `text`; `max_tokens`/`max_completion_tokens`
    become `max_output_tokens`; `reasoning_effort` becomes `reasoning.effort`; `logprobs: true`
    asks for output logprobs through `include`; `stream_options.include_usage` is dropped (a
    Responses stream always ends with its usage); `store` is false unless the case sets it.
    Keys set to null are left out; every other key, `model` and `stream` included, passes
    through untouched.
    """
    # A parameter set to null is not sent: that is how a case's `overrides:` takes one away.
    request = copy.deepcopy({key: value for key, value in chat_request.items() if value is not None})
    body: dict[str, Any] = {}
    messages = request.pop("messages", None)
    if "input" in request:  # already a Responses input: the case knows what it wants
        body["input"] = request.pop("input")
    elif messages is not None:
        instructions, items = _input_items(messages)
        if instructions is not None and "instructions" not in request:
            body["instructions"] = instructions
        body["input"] = items
    for key in ("max_completion_tokens", "max_tokens"):
        value = request.pop(key, None)
        if value is not None and "max_output_tokens" not in request:
            request["max_output_tokens"] = value
    if "tools" in request and isinstance(request["tools"], list):
        request["tools"] = [_tool(tool) for tool in request["tools"]]
    if "tool_choice" in request:
        request["tool_choice"] = _tool_choice(request["tool_choice"])
    text = request.pop("text", None)
    text = dict(text) if isinstance(text, Mapping) else {}
    if "response_format" in request:
        response_format = request.pop("response_format")
        if response_format is not None:
            text["format"] = _text_format(response_format)
    if "verbosity" in request:
        text["verbosity"] = request.pop("verbosity")
    if text:
        body["text"] = text
    if "reasoning_effort" in request:
        effort = request.pop("reasoning_effort")
        reasoning = request.pop("reasoning", None)
        reasoning = dict(reasoning) if isinstance(reasoning, Mapping) else {}
        reasoning.setdefault("effort", effort)
        request["reasoning"] = reasoning
    if "logprobs" in request:
        if request.pop("logprobs") is True:
            include = list(request.get("include") or [])
            if _LOGPROBS_INCLUDE not in include:
                include.append(_LOGPROBS_INCLUDE)
            request["include"] = include
    options = request.get("stream_options")
    if isinstance(options, Mapping):
        kept = {key: value for key, value in options.items() if key != "include_usage"}
        if kept:
            request["stream_options"] = kept
        else:
            del request["stream_options"]
    request.setdefault("store", False)
    return {**request, **body}


def _input_items(messages: Any) -> tuple[str | None, list[Any]]:
    if not isinstance(messages, list):
        raise TranslationError(f"messages must be a list, got a {type(messages).__name__}")
    instructions: list[str] = []
    items: list[Any] = []
    for index, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise TranslationError(f"messages[{index}] must be a mapping with a role")
        role = message.get("role")
        if role == "system" and not items:
            instructions.append(_plain_text(message.get("content")))
        elif role == "tool":
            call_id = message.get("tool_call_id")
            if not isinstance(call_id, str) or not call_id:
                raise TranslationError(
                    f"messages[{index}] is a tool result without tool_call_id; the Responses API "
                    f"needs the id of the call it answers (the assistant message's tool_calls[].id)"
                )
            items.append(
                {
                    "type": "function_call_output",
                    "call_id": call_id,
                    "output": _plain_text(message.get("content")),
                }
            )
        elif role == "assistant":
            items.extend(_assistant_items(message))
        else:
            items.append({"role": role, "content": _input_content(message.get("content"))})
    return ("\n\n".join(instructions) if instructions else None), items


def _assistant_items(message: Mapping[str, Any]) -> list[Any]:
    items: list[Any] = []
    text = _plain_text(message.get("content"))
    if text:
        items.append({"role": "assistant", "content": text})
    for call in message.get("tool_calls") or ():
        if not isinstance(call, Mapping):
            continue
        function = call.get("function")
        function = function if isinstance(function, Mapping) else {}
        item: dict[str, Any] = {
            "type": "function_call",
            "name": function.get("name"),
            "arguments": _arguments_text(function.get("arguments")),
        }
        if call.get("id") is not None:
            item["call_id"] = call.get("id")
        items.append(item)
    return items


def _plain_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(part.get("text", "")) for part in content if isinstance(part, Mapping) and "text" in part
        )
    return str(content)


def _input_content(content: Any) -> Any:
    """A user/developer message's content: text stays text, chat parts become input parts."""
    if not isinstance(content, list):
        return _plain_text(content)
    parts: list[Any] = []
    for part in content:
        if not isinstance(part, Mapping):
            parts.append(part)
            continue
        kind = part.get("type")
        if kind == "text":
            parts.append({"type": "input_text", "text": part.get("text", "")})
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, Mapping) else image
            converted: dict[str, Any] = {"type": "input_image", "image_url": url}
            if isinstance(image, Mapping) and image.get("detail") is not None:
                converted["detail"] = image["detail"]
            else:
                converted["detail"] = "auto"
            parts.append(converted)
        elif kind == "file" and isinstance(part.get("file"), Mapping):
            parts.append({"type": "input_file", **part["file"]})
        else:
            parts.append(dict(part))
    return parts


def _tool(tool: Any) -> Any:
    if not isinstance(tool, Mapping):
        return tool
    kind = tool.get("type", "function")
    wrapped = tool.get(kind)
    if kind not in ("function", "custom") or not isinstance(wrapped, Mapping):
        return dict(tool)  # already a Responses tool, or a built-in one (web_search, ...)
    converted = {"type": kind, **wrapped}
    if kind == "function":
        converted.setdefault("strict", False)
    return converted


def _tool_choice(choice: Any) -> Any:
    if isinstance(choice, Mapping):
        kind = choice.get("type")
        wrapped = choice.get(kind) if isinstance(kind, str) else None
        if kind in ("function", "custom") and isinstance(wrapped, Mapping) and "name" in wrapped:
            return {"type": kind, "name": wrapped["name"]}
    return choice


def _text_format(response_format: Any) -> Any:
    if not isinstance(response_format, Mapping):
        return response_format
    if response_format.get("type") == "json_schema" and isinstance(
        response_format.get("json_schema"), Mapping
    ):
        return {"type": "json_schema", **response_format["json_schema"]}
    return dict(response_format)


# -- reply ------------------------------------------------------------------------------------


def parse_response(body: bytes | str, status: int = 200, content_type: str | None = None) -> Reply:
    """The `Reply` of a `/v1/responses` answer, streamed or not.

    `output` items are read in order: `message` text and refusals, `function_call` and
    `custom_tool_call` items as tool calls (their `call_id` as the id), `reasoning` summaries;
    encrypted reasoning and built-in tool items (web search, code interpreter, ...) are passed
    over. `status: incomplete` gives finish reason `length` for `max_output_tokens` (and the
    API's reason otherwise); a completed reply is `tool_calls` when it calls a tool, else `stop`.
    """
    text = _decode(body, status)
    if status >= 400:
        raise _api_error_from_body(text, status)
    stripped = text.strip()
    if not stripped:
        raise ResponseError(
            "the response body is empty, expected a Responses API response "
            "(was it dropped from the cassette?)",
            status=status,
        )
    if stripped[0] not in "{[" and (
        _looks_like_sse(stripped) or _media_type(content_type) == "text/event-stream"
    ):
        return _parse_stream(text, status)
    data = _load_json(text, status, "the response body")
    if not isinstance(data, dict):
        raise ResponseError(
            f"the response body is a JSON {_json_kind(data)}, expected a Responses API response object",
            status=status,
            body_excerpt=excerpt(text),
        )
    return _reply_from_response(data, status, raw=data)


def event_carries_content(data: str) -> bool:
    """Whether one Responses stream event's data is a piece of the reply: text, refusal or tool-call
    argument deltas, or a tool call's item appearing (its name is the first thing the model wrote).
    Reasoning summaries and lifecycle events are not content."""
    try:
        event = json.loads(data)
    except (ValueError, RecursionError):
        return False
    if not isinstance(event, dict):
        return False
    kind = event.get("type")
    if kind in _CONTENT_DELTAS:
        return bool(event.get("delta"))
    if kind == "response.output_item.added":
        item = event.get("item")
        return isinstance(item, dict) and item.get("type") in _CALL_ITEMS
    return False


def first_content_offset(raw: bytes) -> int | None:
    """The byte offset at which the first content-carrying event of a Responses stream is
    complete, or None while none is (see `model.chat.first_content_offset`)."""
    return _first_offset(raw, event_carries_content)


def _reply_from_response(response: dict[str, Any], status: int, *, raw: Any) -> Reply:
    if response.get("error") is not None:
        error = _api_error_from_object(response, status)
        if error is not None:
            raise error
    obj = response.get("object")
    if obj in ("chat.completion", "chat.completion.chunk") or "choices" in response:
        raise ResponseError(
            f"not a Responses API response (object {obj!r}, a chat completion); {_RESPONSES_HINT}",
            status=status,
        )
    state = response.get("status")
    if state in _UNFINISHED:
        raise ResponseError(
            f"the response is still {state!r} (a background response): pytest-llmgate needs the "
            f"finished answer; remove `background: true` from the case's params",
            status=status,
        )
    if state == "cancelled":
        raise ResponseError("the response was cancelled before it finished", status=status)
    if state == "failed":
        raise ApiError("the response failed without an error object", status=status)
    output = response.get("output")
    if not isinstance(output, list):
        raise ResponseError(
            "the Responses API response has no output list"
            if output is None
            else f"output is a JSON {_json_kind(output)}, expected a list",
            status=status,
            body_excerpt=excerpt(json.dumps(response, ensure_ascii=False)[:1000]),
        )
    draft = _Draft()
    for position, item in enumerate(output):
        draft.add_item(item, status, f"output[{position}]")
    return draft.reply(response, status, raw)


@dataclass
class _Draft:
    """The reply's pieces gathered from output items (or, in a stream, from their events)."""

    text: list[str] = field(default_factory=list)
    refusal: list[str] = field(default_factory=list)
    calls: list[ToolCall] = field(default_factory=list)
    summaries: list[str] = field(default_factory=list)

    def add_item(self, item: Any, status: int, where: str) -> None:
        if not isinstance(item, dict):
            raise ResponseError(
                f"{where} is a JSON {_json_kind(item)}, expected an item object", status=status
            )
        kind = item.get("type")
        if kind == "message":
            self._add_message(item, status, where)
        elif kind in _CALL_ITEMS:
            name = item.get("name")
            if not isinstance(name, str) or not name:
                raise ResponseError(f"{where} is a {kind} without a name", status=status)
            arguments = item.get("arguments") if kind == "function_call" else item.get("input")
            self.calls.append(
                ToolCall(
                    name=name,
                    arguments=_arguments_text(arguments),
                    id=_str_or_none(item.get("call_id")) or _str_or_none(item.get("id")),
                )
            )
        elif kind == "reasoning":
            for part in item.get("summary") or ():
                if isinstance(part, dict) and isinstance(part.get("text"), str) and part["text"]:
                    self.summaries.append(part["text"])
        # Built-in tool items (web_search_call, file_search_call, code_interpreter_call, mcp_*,
        # image_generation_call, ...) are the server's own work, not part of the reply.

    def _add_message(self, item: dict[str, Any], status: int, where: str) -> None:
        content = item.get("content")
        if isinstance(content, str):
            self.text.append(content)
            return
        if content is None:
            return
        if not isinstance(content, list):
            raise ResponseError(
                f"{where}.content is a JSON {_json_kind(content)}, expected a list of parts", status=status
            )
        for part in content:
            if not isinstance(part, dict):
                continue
            if part.get("type") == "refusal" and isinstance(part.get("refusal"), str):
                self.refusal.append(part["refusal"])
            elif isinstance(part.get("text"), str):
                self.text.append(part["text"])

    def reply(self, response: dict[str, Any], status: int, raw: Any) -> Reply:
        return Reply(
            text="".join(self.text),
            tool_calls=tuple(self.calls),
            finish_reason=_finish_reason(response, bool(self.calls)),
            refusal="".join(self.refusal) or None,
            model=_str_or_none(response.get("model")),
            usage=_usage(response.get("usage")),
            raw=raw,
            reasoning_summary="\n\n".join(self.summaries) or None,
        )


def _finish_reason(response: dict[str, Any], calls: bool) -> str | None:
    state = response.get("status")
    if state == "incomplete":
        details = response.get("incomplete_details")
        reason = details.get("reason") if isinstance(details, dict) else None
        if reason == "max_output_tokens":
            return "length"
        return _str_or_none(reason) or "incomplete"
    if state == "completed" or state is None:
        return "tool_calls" if calls else "stop"
    return _str_or_none(state)


def _usage(raw: Any) -> Usage:
    if not isinstance(raw, dict):
        return Usage()
    input_details = raw.get("input_tokens_details")
    output_details = raw.get("output_tokens_details")
    return Usage(
        prompt_tokens=_count(raw.get("input_tokens")),
        completion_tokens=_count(raw.get("output_tokens")),
        total_tokens=_count(raw.get("total_tokens")),
        cached_tokens=_count(input_details.get("cached_tokens")) if isinstance(input_details, dict) else None,
        reasoning_tokens=(
            _count(output_details.get("reasoning_tokens")) if isinstance(output_details, dict) else None
        ),
        reported_cost_usd=_reported_cost(raw),
    )


# -- server-sent events -----------------------------------------------------------------------


@dataclass
class _StreamItem:
    """One output item as its events build it: the item from `output_item.added`, its text and
    arguments from deltas, replaced wholesale by `output_item.done`."""

    item: dict[str, Any]
    text: list[str] = field(default_factory=list)
    refusal: list[str] = field(default_factory=list)
    arguments: list[str] = field(default_factory=list)
    summary: list[str] = field(default_factory=list)
    done: bool = False

    def as_item(self) -> dict[str, Any]:
        if self.done:
            return self.item
        item = dict(self.item)
        kind = item.get("type")
        if kind == "message":
            parts: list[dict[str, Any]] = []
            if self.text:
                parts.append({"type": "output_text", "text": "".join(self.text)})
            if self.refusal:
                parts.append({"type": "refusal", "refusal": "".join(self.refusal)})
            item["content"] = parts or item.get("content")
        elif kind == "function_call" and self.arguments:
            item["arguments"] = "".join(self.arguments)
        elif kind == "custom_tool_call" and self.arguments:
            item["input"] = "".join(self.arguments)
        elif kind == "reasoning" and self.summary:
            item["summary"] = [{"type": "summary_text", "text": "".join(self.summary)}]
        return item


def _parse_stream(text: str, status: int) -> Reply:
    events: list[dict[str, Any]] = []
    items: dict[int, _StreamItem] = {}
    final: dict[str, Any] | None = None
    started: dict[str, Any] | None = None
    for number, data in enumerate(_sse_data(text), start=1):
        if data.strip() == "[DONE]":
            break
        event = _load_json(data, status, f"stream event {number}")
        if not isinstance(event, dict):
            raise ResponseError(
                f"stream event {number} is a JSON {_json_kind(event)}, expected an event object",
                status=status,
                body_excerpt=excerpt(data),
            )
        events.append(event)
        kind = event.get("type")
        if kind == "error" or (kind is None and event.get("error") is not None):
            raise _stream_error(event, status)
        if event.get("object") == "chat.completion.chunk" or "choices" in event:
            raise ResponseError(
                f"not a Responses API stream (event {number} is a chat completion chunk); {_RESPONSES_HINT}",
                status=status,
            )
        response = event.get("response")
        if kind == "response.created" and isinstance(response, dict):
            started = response
        elif kind in _TERMINAL_EVENTS and isinstance(response, dict):
            final = response
        else:
            _fold_event(items, event)
    if not events:
        raise ResponseError("the event stream has no data events", status=status, body_excerpt=excerpt(text))
    if final is None:
        raise ResponseError(
            "the event stream ended without response.completed (or .incomplete/.failed): it was cut off",
            status=status,
        )
    if not final.get("output") and items and final.get("error") is None:
        # A terminal event without its output (some gateways trim it): the events are the reply.
        final = {**final, "output": [items[index].as_item() for index in sorted(items)]}
    if final.get("model") is None and started is not None:
        final = {**final, "model": started.get("model")}
    return _reply_from_response(final, status, raw=events)


def _fold_event(items: dict[int, _StreamItem], event: dict[str, Any]) -> None:
    kind = event.get("type")
    index = event.get("output_index")
    if not isinstance(index, int) or isinstance(index, bool):
        return
    if kind in ("response.output_item.added", "response.output_item.done"):
        item = event.get("item")
        if isinstance(item, dict):
            entry = items.setdefault(index, _StreamItem(item=item))
            entry.item = item
            entry.done = kind == "response.output_item.done"
        return
    entry = items.setdefault(index, _StreamItem(item={"type": _item_type(kind)}))
    delta = event.get("delta")
    if not isinstance(delta, str):
        return
    if kind == "response.output_text.delta":
        entry.text.append(delta)
    elif kind == "response.refusal.delta":
        entry.refusal.append(delta)
    elif kind in ("response.function_call_arguments.delta", "response.custom_tool_call_input.delta"):
        entry.arguments.append(delta)
    elif kind == "response.reasoning_summary_text.delta":
        entry.summary.append(delta)


def _item_type(kind: Any) -> str:
    if kind in ("response.function_call_arguments.delta",):
        return "function_call"
    if kind == "response.custom_tool_call_input.delta":
        return "custom_tool_call"
    if isinstance(kind, str) and kind.startswith("response.reasoning"):
        return "reasoning"
    return "message"


def _stream_error(event: dict[str, Any], status: int) -> ApiError:
    """An `error` event: `{type: error, code, message, param}` (or the fields under `error`)."""
    nested = event.get("error")
    source = nested if isinstance(nested, dict) else event
    message = source.get("message")
    code = source.get("code")
    param = source.get("param")
    return ApiError(
        message
        if isinstance(message, str) and message
        else "the stream sent an error event without a message",
        status=status,
        code=code if isinstance(code, str) and code else None,
        type=source.get("type") if isinstance(source.get("type"), str) and source is nested else None,
        param=param if isinstance(param, str) and param else None,
    )
