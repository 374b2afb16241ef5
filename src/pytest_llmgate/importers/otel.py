"""OpenTelemetry GenAI spans (OTLP JSON) as calls: a chat request and the answer it got.

Teams that trace their LLM calls already hold their traffic as spans following the `gen_ai.*`
semantic conventions. The request is rebuilt from the request attributes (model, parameters,
system instructions, input messages, tool definitions) and the answer from the output messages,
finish reasons and usage, as the chat completion the service would have returned. Both the
current conventions (`gen_ai.input.messages` / `gen_ai.output.messages` as JSON with `parts`) and
the older indexed attributes (`gen_ai.prompt.0.content`, `gen_ai.completion.0.content`) that
OpenLLMetry writes are read, and so are messages kept in the span's events (`event_attributes`).
A span without message content (content capture off) cannot become a case and is reported as such.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_llmgate.importers.traffic import Call, Problem

# gen_ai.request.* attribute -> chat completions parameter
REQUEST_PARAMS = {
    "gen_ai.request.temperature": "temperature",
    "gen_ai.request.top_p": "top_p",
    "gen_ai.request.max_tokens": "max_tokens",
    "gen_ai.request.frequency_penalty": "frequency_penalty",
    "gen_ai.request.presence_penalty": "presence_penalty",
    "gen_ai.request.seed": "seed",
    "gen_ai.request.stop_sequences": "stop",
    "gen_ai.request.choice.count": "n",
}


def read_spans(where: str, document: Mapping[str, Any], calls: list[Call], problems: list[Problem]) -> None:
    """Every GenAI chat span of an OTLP JSON export (`resourceSpans`) as a `Call`."""
    from pytest_llmgate.importers.traffic import Problem

    found = False
    for resource in document.get("resourceSpans") or []:
        for scope in resource.get("scopeSpans") or resource.get("instrumentationLibrarySpans") or []:
            for index, span in enumerate(scope.get("spans") or [], start=1):
                attributes = {**event_attributes(span), **attribute_map(span.get("attributes") or [])}
                if "gen_ai.request.model" not in attributes and "gen_ai.operation.name" not in attributes:
                    continue  # not an LLM span (an HTTP or database span of the same trace)
                found = True
                span_where = f"{where}: span {span.get('spanId') or index}"
                call = _call(span_where, span, attributes)
                if isinstance(call, str):
                    problems.append(Problem(span_where, call))
                else:
                    calls.append(call)
    if not found:
        problems.append(Problem(where, "OTLP JSON without GenAI spans (no gen_ai.request.model attribute)"))


# Span events that carry message content, by convention version (the span's own attributes win).
DETAILS_EVENT = "gen_ai.client.inference.operation.details"  # the current conventions, EVENT_ONLY
PROMPT_EVENT, COMPLETION_EVENT = "gen_ai.content.prompt", "gen_ai.content.completion"  # to 1.27
MESSAGE_EVENTS = {  # one event per message (1.28 to 1.36)
    "gen_ai.system.message": "system",
    "gen_ai.user.message": "user",
    "gen_ai.assistant.message": "assistant",
    "gen_ai.tool.message": "tool",
}
CHOICE_EVENT = "gen_ai.choice"


def event_attributes(span: Mapping[str, Any]) -> dict[str, Any]:
    """Message content a span keeps in its events, as the attributes `_call` reads.

    Instrumentations that capture content as events (OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_
    CONTENT=EVENT_ONLY, or conventions before 1.37) leave the span's attributes without messages:
    the details event holds `gen_ai.input.messages` / `gen_ai.output.messages` as the span would;
    older ones hold a JSON `gen_ai.prompt` / `gen_ai.completion`, or one event per message and a
    `gen_ai.choice` event with the answer.
    """
    found: dict[str, Any] = {}
    inputs: list[dict[str, Any]] = []
    outputs: list[dict[str, Any]] = []
    for event in span.get("events") or []:
        if not isinstance(event, Mapping):
            continue
        name = event.get("name")
        attributes = attribute_map(event.get("attributes") or [])
        if name == DETAILS_EVENT:
            for key in ("gen_ai.system_instructions", "gen_ai.input.messages", "gen_ai.output.messages"):
                if key in attributes:
                    found[key] = attributes[key]
        elif name == PROMPT_EVENT:
            inputs.extend(_messages(_json(attributes.get("gen_ai.prompt")), "user"))
        elif name == COMPLETION_EVENT:
            outputs.extend(_messages(_json(attributes.get("gen_ai.completion")), "assistant"))
        elif name in MESSAGE_EVENTS:
            inputs.append({**_plain(attributes), "role": MESSAGE_EVENTS[name]})
        elif name == CHOICE_EVENT:
            message = _json(attributes.get("message"))
            choice = {**(message if isinstance(message, Mapping) else {}), "role": "assistant"}
            if attributes.get("finish_reason"):
                choice["finish_reason"] = attributes["finish_reason"]
            outputs.append(choice)
    if inputs:
        found.setdefault("gen_ai.input.messages", [_parted(message) for message in inputs])
    if outputs:
        found.setdefault("gen_ai.output.messages", [_parted(message) for message in outputs])
    return found


def _messages(value: Any, role: str) -> list[dict[str, Any]]:
    """A JSON list of `{role, content}` (or one text) as messages."""
    if isinstance(value, str):
        return [{"role": role, "content": value}]
    if not isinstance(value, list):
        return []
    return [{"role": role, **item} for item in value if isinstance(item, Mapping)]


def _plain(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """A message event's attributes without the `gen_ai.*` bookkeeping (system, provider)."""
    return {
        key: _json(value) if key == "tool_calls" else value
        for key, value in attributes.items()
        if not key.startswith("gen_ai.")
    }


def _parted(message: Mapping[str, Any]) -> dict[str, Any]:
    """A chat-style `{role, content, tool_calls, id}` message as the conventions' `{role, parts}`."""
    parts: list[dict[str, Any]] = []
    content = message.get("content")
    if message.get("role") == "tool":
        parts.append(
            {
                "type": "tool_call_response",
                "id": message.get("id", message.get("tool_call_id", "")),
                "response": content if content is not None else "",
            }
        )
    elif isinstance(content, str) and content:
        parts.append({"type": "text", "content": content})
    elif isinstance(content, list):
        parts.extend(dict(part) for part in content if isinstance(part, Mapping))
    for call in message.get("tool_calls") or []:
        if isinstance(call, Mapping):
            nested = call.get("function")
            function: Mapping[str, Any] = nested if isinstance(nested, Mapping) else call
            parts.append(
                {
                    "type": "tool_call",
                    "id": call.get("id"),
                    "name": function.get("name", ""),
                    "arguments": function.get("arguments"),
                }
            )
    parted: dict[str, Any] = {"role": message.get("role", "user"), "parts": parts}
    if message.get("finish_reason"):
        parted["finish_reason"] = message["finish_reason"]
    return parted


def attribute_map(attributes: list[Any]) -> dict[str, Any]:
    """OTLP's `[{key, value: {stringValue | intValue | ...}}]` as a plain dict."""
    return {
        str(item.get("key")): _value(item.get("value") or {})
        for item in attributes
        if isinstance(item, Mapping)
    }


def _value(value: Mapping[str, Any]) -> Any:
    if "stringValue" in value:
        return value["stringValue"]
    if "intValue" in value:
        return int(value["intValue"])  # a string in OTLP JSON (64-bit)
    if "doubleValue" in value:
        return float(value["doubleValue"])
    if "boolValue" in value:
        return bool(value["boolValue"])
    if "arrayValue" in value:
        return [_value(item) for item in (value["arrayValue"] or {}).get("values") or []]
    if "kvlistValue" in value:
        return attribute_map((value["kvlistValue"] or {}).get("values") or [])
    return None


def _json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


def _call(where: str, span: Mapping[str, Any], attributes: Mapping[str, Any]) -> Call | str:
    from pytest_llmgate.importers.traffic import Call

    operation = attributes.get("gen_ai.operation.name", "chat")
    if operation not in ("chat", "text_completion", "generate_content"):
        return f"GenAI operation {operation!r} is not a chat call"
    model = attributes.get("gen_ai.request.model")
    if not isinstance(model, str):
        return "the span has no gen_ai.request.model"
    messages = _input_messages(attributes)
    if not messages:
        return (
            "the span has no input messages (message content capture was off; set "
            "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true where the traces are made)"
        )
    request: dict[str, Any] = {"model": model, "messages": messages}
    for attribute, param in REQUEST_PARAMS.items():
        if attributes.get(attribute) is not None:
            request[param] = attributes[attribute]
    tools = _json(attributes.get("gen_ai.tool.definitions"))
    if isinstance(tools, list) and tools:
        request["tools"] = [_chat_tool(tool) for tool in tools if isinstance(tool, Mapping)]
    message, finish_reason = _output_message(attributes)
    if message is None:
        return "the span has no output messages: there is no answer to import"
    usage: dict[str, Any] = {}
    prompt = attributes.get("gen_ai.usage.input_tokens", attributes.get("gen_ai.usage.prompt_tokens"))
    completion = attributes.get(
        "gen_ai.usage.output_tokens", attributes.get("gen_ai.usage.completion_tokens")
    )
    if isinstance(prompt, int) and isinstance(completion, int):
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }
    start, end = _nanos(span.get("startTimeUnixNano")), _nanos(span.get("endTimeUnixNano"))
    response: dict[str, Any] = {
        "id": attributes.get("gen_ai.response.id") or f"chatcmpl-otel-{span.get('spanId', '')}",
        "object": "chat.completion",
        "created": int(start / 1e9) if start else 0,
        "model": attributes.get("gen_ai.response.model") or model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
    }
    if usage:
        response["usage"] = usage
    return Call(
        where=where,
        request=request,
        response=response,
        latency_ms=round((end - start) / 1e6, 1) if start and end and end >= start else None,
        created=start / 1e9 if start else None,
        id=str(span.get("spanId")) if span.get("spanId") else None,
    )


def _nanos(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _chat_tool(tool: Mapping[str, Any]) -> dict[str, Any]:
    """A tool definition in chat format (`{type: function, function: {...}}`) from either format."""
    if "function" in tool:
        return dict(tool)
    function = {key: tool[key] for key in ("name", "description", "parameters", "strict") if key in tool}
    return {"type": "function", "function": function}


def _text_of(parts: Any) -> str:
    if isinstance(parts, str):
        return parts
    if not isinstance(parts, list):
        return ""
    return "".join(
        str(part.get("content", part.get("text", "")))
        for part in parts
        if isinstance(part, Mapping) and part.get("type", "text") == "text"
    )


def _input_messages(attributes: Mapping[str, Any]) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    system = _json(attributes.get("gen_ai.system_instructions"))
    if system:
        messages.append({"role": "system", "content": _text_of(system)})
    structured = _json(attributes.get("gen_ai.input.messages"))
    if isinstance(structured, list):
        for item in structured:
            if isinstance(item, Mapping):
                messages.append(_chat_message(item))
        return messages
    index = 0
    while f"gen_ai.prompt.{index}.role" in attributes or f"gen_ai.prompt.{index}.content" in attributes:
        role = attributes.get(f"gen_ai.prompt.{index}.role", "user")
        message: dict[str, Any] = {
            "role": role,
            "content": attributes.get(f"gen_ai.prompt.{index}.content", ""),
        }
        calls = _indexed_tool_calls(attributes, f"gen_ai.prompt.{index}.tool_calls")
        if calls:
            message["tool_calls"] = calls
        if attributes.get(f"gen_ai.prompt.{index}.tool_call_id"):
            message["tool_call_id"] = attributes[f"gen_ai.prompt.{index}.tool_call_id"]
        messages.append(message)
        index += 1
    return messages


def _chat_message(item: Mapping[str, Any]) -> dict[str, Any]:
    """A `{role, parts}` message of the conventions as a chat message."""
    role = str(item.get("role", "user"))
    parts = item.get("parts", item.get("content"))
    message: dict[str, Any] = {"role": role}
    calls = [
        {
            "id": part.get("id") or f"call_{position}",
            "type": "function",
            "function": {"name": part.get("name", ""), "arguments": _arguments(part.get("arguments"))},
        }
        for position, part in enumerate(parts if isinstance(parts, list) else [])
        if isinstance(part, Mapping) and part.get("type") == "tool_call"
    ]
    responses = [
        part
        for part in (parts if isinstance(parts, list) else [])
        if isinstance(part, Mapping) and part.get("type") == "tool_call_response"
    ]
    if responses:
        response = responses[0]
        result = response.get("response", response.get("result", ""))
        message = {
            "role": "tool",
            "tool_call_id": response.get("id", ""),
            "content": result if isinstance(result, str) else json.dumps(result),
        }
        return message
    text = _text_of(parts)
    message["content"] = text if text or not calls else None
    if calls:
        message["tool_calls"] = calls
    return message


def _arguments(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value if value is not None else {})


def _indexed_tool_calls(attributes: Mapping[str, Any], prefix: str) -> list[dict[str, Any]]:
    calls = []
    position = 0
    while f"{prefix}.{position}.name" in attributes:
        calls.append(
            {
                "id": attributes.get(f"{prefix}.{position}.id") or f"call_{position}",
                "type": "function",
                "function": {
                    "name": attributes[f"{prefix}.{position}.name"],
                    "arguments": _arguments(attributes.get(f"{prefix}.{position}.arguments")),
                },
            }
        )
        position += 1
    return calls


def _output_message(attributes: Mapping[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    reasons = attributes.get("gen_ai.response.finish_reasons")
    finish = reasons[0] if isinstance(reasons, list) and reasons else None
    structured = _json(attributes.get("gen_ai.output.messages"))
    if isinstance(structured, list) and structured and isinstance(structured[0], Mapping):
        first = structured[0]
        message = _chat_message({**first, "role": "assistant"})
        finish = first.get("finish_reason", finish)
    elif "gen_ai.completion.0.content" in attributes or "gen_ai.completion.0.tool_calls.0.name" in attributes:
        calls = _indexed_tool_calls(attributes, "gen_ai.completion.0.tool_calls")
        content = attributes.get("gen_ai.completion.0.content")
        message = {"role": "assistant", "content": content if content or not calls else None}
        if calls:
            message["tool_calls"] = calls
        finish = attributes.get("gen_ai.completion.0.finish_reason", finish)
    else:
        return None, None
    if finish is None:
        finish = "tool_calls" if message.get("tool_calls") else "stop"
    if finish == "tool_call":
        finish = "tool_calls"
    return message, str(finish)
