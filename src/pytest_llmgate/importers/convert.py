"""A logged call as what a case sends and what a recording answers: a chat request and completion.

Cases speak chat completions, so a Responses-API call is translated where the translation is
exact (input text or messages, `instructions` as the system message, function tools, JSON output
formats) and refused with the reason where it is not (server-side state, built-in tools, images).
A streamed answer becomes the plain completion it adds up to (parsed by the same parser replay
uses), since a case is replayed without streaming. Identifiers of the end user (`user`,
`metadata`, `safety_identifier`) and switches that only matter in production (`stream`, `store`)
are dropped: they must not be in a repository, and the gate does not need them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pytest_llmgate.importers.traffic import Call
from pytest_llmgate.reply import Reply
from pytest_llmgate.response import ResponseError, parse_chat_completion

DROPPED_PARAMS = frozenset(
    {"user", "metadata", "store", "stream", "stream_options", "safety_identifier", "prompt_cache_key"}
)
# Responses parameters with the same meaning in chat completions (renamed where needed).
RESPONSES_PARAMS = {
    "temperature": "temperature",
    "top_p": "top_p",
    "max_output_tokens": "max_completion_tokens",
    "parallel_tool_calls": "parallel_tool_calls",
    "service_tier": "service_tier",
    "seed": "seed",
    "top_logprobs": "top_logprobs",
}
RESPONSES_IGNORED = frozenset(
    {
        "model",
        "input",
        "instructions",
        "tools",
        "tool_choice",
        "text",
        "reasoning",
        "include",
        "truncation",
        "background",
    }
    | DROPPED_PARAMS
)


class Unconvertible(Exception):
    """The call cannot become a case; the message says why."""


@dataclass(frozen=True)
class Converted:
    """A call as a chat request (model included) and the chat completion that answered it."""

    call: Call
    request: dict[str, Any]
    completion: dict[str, Any]
    reply: Reply

    @property
    def model(self) -> str:
        return str(self.request["model"])


def convert(call: Call) -> Converted:
    """The chat request and completion of `call`; Unconvertible naming the reason otherwise."""
    if call.endpoint == "responses":
        request = responses_request(call.request)
        if isinstance(call.response, Mapping) and call.response.get("object") == "chat.completion":
            raise Unconvertible(
                "the response does not match its request: a chat completion answers a Responses request"
            )
        completion = responses_completion(call.response)
    else:
        request = {key: value for key, value in call.request.items() if key not in DROPPED_PARAMS}
        if not isinstance(request.get("messages"), list) or not request["messages"]:
            raise Unconvertible("the request has no messages")
        completion = _chat_completion(call.response)
    try:
        reply = parse_chat_completion(json.dumps(completion), content_type="application/json")
    except ResponseError as exc:
        raise Unconvertible(f"the response is not a usable chat completion: {exc}") from None
    _check_match(request, completion, reply)
    return Converted(call, request, completion, reply)


def _chat_completion(response: Any) -> dict[str, Any]:
    if isinstance(response, str):  # a stream: the completion its chunks add up to
        try:
            reply = parse_chat_completion(response, content_type="text/event-stream")
        except ResponseError as exc:
            raise Unconvertible(f"the streamed response cannot be read: {exc}") from None
        return completion_from_reply(reply)
    if not isinstance(response, Mapping):
        raise Unconvertible("the response is not a JSON object")
    if response.get("object") == "response" or ("output" in response and "choices" not in response):
        raise Unconvertible("the response does not match its request: a Responses answer to a chat request")
    if not isinstance(response.get("choices"), list) or not response["choices"]:
        raise Unconvertible("the response has no choices")
    return dict(response)


def completion_from_reply(reply: Reply) -> dict[str, Any]:
    """A plain chat completion body saying what `reply` says (for streamed or translated answers)."""
    message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
    if reply.refusal:
        message["refusal"] = reply.refusal
    if reply.tool_calls:
        message["tool_calls"] = [
            {
                "id": call.id or f"call_{index}",
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            }
            for index, call in enumerate(reply.tool_calls)
        ]
    completion: dict[str, Any] = {
        "id": "chatcmpl-imported",
        "object": "chat.completion",
        "created": 0,
        "model": reply.model or "",
        "choices": [{"index": 0, "message": message, "finish_reason": reply.finish_reason or "stop"}],
    }
    usage = reply.usage
    if usage.prompt_tokens is not None and usage.completion_tokens is not None:
        completion["usage"] = {
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens or usage.prompt_tokens + usage.completion_tokens,
        }
        if usage.cached_tokens is not None:
            completion["usage"]["prompt_tokens_details"] = {"cached_tokens": usage.cached_tokens}
        if usage.reasoning_tokens is not None:
            completion["usage"]["completion_tokens_details"] = {"reasoning_tokens": usage.reasoning_tokens}
    return completion


def _check_match(request: Mapping[str, Any], completion: Mapping[str, Any], reply: Reply) -> None:
    """A response logged against the wrong request (a join gone wrong) must not become a baseline."""
    asked, answered = str(request.get("model", "")), str(completion.get("model") or "")
    if answered and not same_model(asked, answered):
        raise Unconvertible(
            f"the response does not match its request: model {answered!r} answered a request for {asked!r}"
        )
    declared = {
        str((tool.get("function") or tool.get("custom") or {}).get("name"))
        for tool in request.get("tools") or []
        if isinstance(tool, Mapping)
    }
    declared |= {
        str(function.get("name"))
        for function in request.get("functions") or []
        if isinstance(function, Mapping)
    }
    for call in reply.tool_calls:
        if call.name not in declared:
            raise Unconvertible(
                f"the response does not match its request: it calls tool {call.name!r}, which the request "
                f"does not declare ({', '.join(sorted(declared)) or 'no tools'})"
            )


_SNAPSHOT = re.compile(r"-(?:\d{4}-\d{2}-\d{2}|\d{4})(?=-|$)")


def same_model(asked: str, answered: str) -> bool:
    """`gpt-4o` is answered by `gpt-4o-2024-08-06`, `gpt-4-vision-preview` by
    `gpt-4-1106-vision-preview`: an alias resolves to a dated snapshot. Routed names
    (`openai/gpt-4o`) and deployments are not comparable, so they always match."""
    if "/" in asked or "/" in answered:
        return True
    asked, answered = _SNAPSHOT.sub("", asked), _SNAPSHOT.sub("", answered)
    return answered.startswith(asked) or asked.startswith(answered)


# -- the Responses API ---------------------------------------------------------------------------


def responses_request(body: Mapping[str, Any]) -> dict[str, Any]:
    """A Responses request as the chat request meaning the same; Unconvertible where none does."""
    if body.get("previous_response_id") or body.get("conversation") or body.get("prompt"):
        raise Unconvertible(
            "Responses request continues server-side state (previous_response_id, conversation or a "
            "stored prompt): the conversation is not in the log"
        )
    unknown = sorted(set(body) - RESPONSES_IGNORED - set(RESPONSES_PARAMS) - {"previous_response_id"})
    if unknown:
        raise Unconvertible(
            f"Responses parameter(s) {', '.join(unknown)} have no chat completions equivalent"
        )
    messages: list[dict[str, Any]] = []
    if isinstance(body.get("instructions"), str) and body["instructions"]:
        messages.append({"role": "system", "content": body["instructions"]})
    raw_input = body.get("input")
    if isinstance(raw_input, str):
        messages.append({"role": "user", "content": raw_input})
    elif isinstance(raw_input, list):
        for item in raw_input:
            messages.extend(_responses_item(item, messages))
    else:
        raise Unconvertible("the Responses request has no input")
    request: dict[str, Any] = {"model": body["model"], "messages": messages}
    for key, chat_key in RESPONSES_PARAMS.items():
        if key in body and body[key] is not None:
            request[chat_key] = body[key]
    tools = body.get("tools") or []
    if tools:
        request["tools"] = [_responses_tool(tool) for tool in tools]
    choice = body.get("tool_choice")
    if isinstance(choice, str):
        request["tool_choice"] = choice
    elif isinstance(choice, Mapping) and choice.get("type") == "function":
        request["tool_choice"] = {"type": "function", "function": {"name": choice.get("name")}}
    text_format = (body.get("text") or {}).get("format") if isinstance(body.get("text"), Mapping) else None
    if isinstance(text_format, Mapping) and text_format.get("type") == "json_schema":
        schema = {
            key: text_format[key] for key in ("name", "schema", "strict", "description") if key in text_format
        }
        request["response_format"] = {"type": "json_schema", "json_schema": schema}
    elif isinstance(text_format, Mapping) and text_format.get("type") == "json_object":
        request["response_format"] = {"type": "json_object"}
    reasoning = body.get("reasoning")
    if isinstance(reasoning, Mapping) and reasoning.get("effort"):
        request["reasoning_effort"] = reasoning["effort"]
    return request


def _responses_item(item: Any, so_far: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not isinstance(item, Mapping):
        raise Unconvertible("a Responses input item is not an object")
    kind = item.get("type", "message")
    if kind == "message":
        role = str(item.get("role", "user"))
        return [{"role": role, "content": _responses_text(item.get("content"))}]
    if kind == "function_call":
        call = {
            "id": item.get("call_id") or item.get("id"),
            "type": "function",
            "function": {"name": item.get("name"), "arguments": item.get("arguments", "")},
        }
        previous = so_far[-1] if so_far else None
        if previous is not None and previous.get("role") == "assistant" and previous.get("tool_calls"):
            previous["tool_calls"].append(call)
            return []
        return [{"role": "assistant", "content": None, "tool_calls": [call]}]
    if kind == "function_call_output":
        output = item.get("output", "")
        return [
            {
                "role": "tool",
                "tool_call_id": item.get("call_id"),
                "content": output if isinstance(output, str) else json.dumps(output),
            }
        ]
    if kind == "reasoning":
        return []  # the model's own notes between turns; chat completions takes none
    raise Unconvertible(f"Responses input item of type {kind!r} has no chat completions equivalent")


def _responses_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise Unconvertible("a Responses message has no content")
    texts = []
    for part in content:
        kind = part.get("type") if isinstance(part, Mapping) else None
        if kind not in ("input_text", "output_text", "text"):
            raise Unconvertible(f"Responses content of type {kind!r} (only text is converted)")
        texts.append(str(part.get("text", "")))
    return "".join(texts)


def _responses_tool(tool: Any) -> dict[str, Any]:
    if not isinstance(tool, Mapping) or tool.get("type") != "function":
        kind = tool.get("type") if isinstance(tool, Mapping) else tool
        raise Unconvertible(f"Responses built-in tool {kind!r} has no chat completions equivalent")
    function = {key: tool[key] for key in ("name", "description", "parameters", "strict") if key in tool}
    return {"type": "function", "function": function}


def responses_completion(response: Any) -> dict[str, Any]:
    """A Responses answer as the chat completion saying the same thing."""
    if isinstance(response, str):
        raise Unconvertible("streamed Responses answers are not converted; log the final response object")
    if not isinstance(response, Mapping) or not isinstance(response.get("output"), list):
        raise Unconvertible("the response does not match its request: no Responses 'output' list")
    if response.get("status") not in (None, "completed", "incomplete"):
        raise Unconvertible(f"the Responses answer has status {response.get('status')!r}, not completed")
    texts: list[str] = []
    refusals: list[str] = []
    calls: list[dict[str, Any]] = []
    for item in response["output"]:
        if not isinstance(item, Mapping):
            continue
        if item.get("type") == "message":
            for part in item.get("content") or []:
                if isinstance(part, Mapping) and part.get("type") == "output_text":
                    texts.append(str(part.get("text", "")))
                elif isinstance(part, Mapping) and part.get("type") == "refusal":
                    refusals.append(str(part.get("refusal", "")))
        elif item.get("type") == "function_call":
            calls.append(
                {
                    "id": item.get("call_id") or item.get("id"),
                    "type": "function",
                    "function": {"name": item.get("name"), "arguments": item.get("arguments", "")},
                }
            )
        elif item.get("type") not in ("reasoning",):
            raise Unconvertible(
                f"Responses output item {item.get('type')!r} has no chat completions equivalent"
            )
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts else None}
    if refusals:
        message["refusal"] = "".join(refusals)
    if calls:
        message["tool_calls"] = calls
    incomplete = (
        (response.get("incomplete_details") or {}).get("reason")
        if response.get("status") == "incomplete"
        else None
    )
    finish = (
        "length"
        if incomplete == "max_output_tokens"
        else "content_filter"
        if incomplete
        else "tool_calls"
        if calls
        else "stop"
    )
    completion: dict[str, Any] = {
        "id": str(response.get("id", "resp-imported")),
        "object": "chat.completion",
        "created": int(response.get("created_at") or 0),
        "model": str(response.get("model") or ""),
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
    }
    usage = response.get("usage")
    if isinstance(usage, Mapping) and isinstance(usage.get("input_tokens"), int):
        chat_usage: dict[str, Any] = {
            "prompt_tokens": usage["input_tokens"],
            "completion_tokens": usage.get("output_tokens", 0),
            "total_tokens": usage.get("total_tokens", usage["input_tokens"] + usage.get("output_tokens", 0)),
        }
        cached = (usage.get("input_tokens_details") or {}).get("cached_tokens")
        if cached is not None:
            chat_usage["prompt_tokens_details"] = {"cached_tokens": cached}
        reasoning = (usage.get("output_tokens_details") or {}).get("reasoning_tokens")
        if reasoning is not None:
            chat_usage["completion_tokens_details"] = {"reasoning_tokens": reasoning}
        completion["usage"] = chat_usage
    return completion
