"""Raw HTTP body of a /chat/completions call (JSON or server-sent events) -> `Reply`, or a clear error.

We parse bodies ourselves instead of trusting the SDK's models so that live calls, replayed
cassettes and hand-written fixtures go through one parser, and so that a body the SDK would
half-accept (empty, cut off, an error object on HTTP 200, a Responses-API body) fails the case
with one readable line instead of a traceback from deep inside a report.

Every way a body can be wrong ends in `ResponseError` (or its subclass `ApiError` when the server
said it failed); nothing else escapes `parse_chat_completion`, whatever the bytes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pytest_llmgate.errors import LlmGateError
from pytest_llmgate.reply import Reply, ToolCall, Usage

EXCERPT_CHARS = 200
"""Longest body excerpt an error carries: enough to recognise an HTML error page, short enough for
one terminal line."""

_CHAT_ENDPOINT_HINT = "pytest-llmgate calls /chat/completions"
_DONE = "[DONE]"
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


class ResponseError(LlmGateError):
    """The body is not a usable chat completion: empty, not JSON, cut off or of the wrong shape."""

    def __init__(self, message: str, *, status: int | None = None, body_excerpt: str = "") -> None:
        self.message = message
        self.status = status
        self.body_excerpt = body_excerpt
        super().__init__(self.render())

    def render(self) -> str:
        text = self.message if self.status is None else f"HTTP {self.status}: {self.message}"
        if self.body_excerpt:
            text += f"; body starts with: {self.body_excerpt!r}"
        return text

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only arguments defeat Exception's default pickling, which xdist workers need.
        return (_rebuild, (type(self), dict(self.__dict__)))


class ApiError(ResponseError):
    """The server answered an error: an HTTP status >= 400, or an `{"error": {...}}` object.

    `message`, `code`, `type` and `param` are the API's own fields (Azure's `code` is a string
    such as "DeploymentNotFound"). The rendered text never adds more of the body than the API's
    message: 401 bodies quote the masked key, and that is as much of it as we repeat.
    """

    status: int

    def __init__(
        self,
        message: str,
        *,
        status: int,
        code: str | None = None,
        type: str | None = None,
        param: str | None = None,
        body_excerpt: str = "",
    ) -> None:
        self.code = code
        self.type = type
        self.param = param
        super().__init__(message, status=status, body_excerpt=body_excerpt)

    def render(self) -> str:
        labels = " ".join(label for label in (self.type, f"({self.code})" if self.code else None) if label)
        text = f"API error, HTTP {self.status}"
        if labels:
            text += f" {labels}"
        text += f": {self.message}"
        if self.body_excerpt:
            text += f"; body starts with: {self.body_excerpt!r}"
        return text


def _rebuild(cls: type[ResponseError], state: dict[str, Any]) -> ResponseError:
    error = cls.__new__(cls)
    error.__dict__.update(state)
    Exception.__init__(error, error.render())
    return error


def parse_chat_completion(body: bytes | str, *, status: int = 200, content_type: str | None = None) -> Reply:
    """Parse the first choice of a chat completion, streamed or not.

    `content_type` only breaks ties: a body that starts like JSON is parsed as JSON and one that
    starts with an SSE field (`data:`, `event:`, `:`) as a stream, whatever the header says,
    because recorded cassettes do not always keep headers and bodies in step.
    """
    text = _decode(body, status)
    if status >= 400:
        raise _api_error_from_body(text, status)
    stripped = text.strip()
    if not stripped:
        raise ResponseError(
            "the response body is empty, expected a chat completion (was it dropped from the cassette?)",
            status=status,
        )
    if stripped[0] not in "{[" and (
        _looks_like_sse(stripped) or _media_type(content_type) == "text/event-stream"
    ):
        return _parse_stream(text, status)
    return _parse_json_body(text, status, content_type)


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """`text` with runs of whitespace folded to one space and cut to at most `limit` characters."""
    folded = " ".join(text.split())
    return folded if len(folded) <= limit else folded[: limit - 1] + "…"


# -- decoding ---------------------------------------------------------------------------------


def _decode(body: bytes | str, status: int) -> str:
    if isinstance(body, str):
        return body.removeprefix("\ufeff")
    if body[:2] == b"\x1f\x8b":
        raise ResponseError(
            "the response body is still gzip-compressed; decode its Content-Encoding before parsing",
            status=status,
        )
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ResponseError(
            f"the response body is not UTF-8 text (bad byte at offset {exc.start})",
            status=status,
            body_excerpt=excerpt(body.decode("utf-8", errors="replace")),
        ) from None


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _content_type_note(content_type: str | None) -> str:
    media_type = _media_type(content_type)
    return f" (Content-Type {media_type!r})" if media_type else ""


def _load_json(text: str, status: int, what: str, note: str = "") -> Any:
    """json.loads whose every failure is a ResponseError that says whether the text was cut off.

    Three cases read differently to a user: not JSON at all (an HTML error page from a proxy),
    JSON that stops mid-value (a dropped connection), and JSON that goes wrong in the middle.
    """
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.pos <= len(text) - len(text.lstrip()):
            problem = f"is not JSON{note}"
        elif exc.pos >= len(text.rstrip()) or exc.msg.startswith("Unterminated string"):
            problem = "is truncated JSON (it ends mid-value)"
        else:
            problem = f"is not valid JSON ({exc.msg} at character {exc.pos})"
        raise ResponseError(f"{what} {problem}", status=status, body_excerpt=excerpt(text)) from None
    except (ValueError, RecursionError) as exc:
        # Integers past Python's digit limit and absurd nesting are not JSON we can use either.
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise ResponseError(
            f"{what} is not usable JSON ({reason})", status=status, body_excerpt=excerpt(text)
        ) from None


# -- errors -----------------------------------------------------------------------------------


def _api_error_from_body(text: str, status: int) -> ApiError:
    """The API's own message, code and type when the body has them, else an excerpt of the body."""
    data: Any = None
    if text.strip():
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):
            data = None
    if isinstance(data, dict):
        error = _api_error_from_object(data, status)
        if error is not None:
            return error
    if not text.strip():
        return ApiError("the server sent an error status with an empty body", status=status)
    return ApiError(
        "the server sent an error status without an OpenAI-style error object",
        status=status,
        body_excerpt=excerpt(text),
    )


def _api_error_from_object(data: dict[str, Any], status: int) -> ApiError | None:
    """An ApiError from `{"error": {...}}`, `{"error": "text"}` or a gateway's `{"message": ...}`."""
    error = data.get("error")
    if isinstance(error, str) and error.strip():
        return ApiError(error, status=status)
    if isinstance(error, dict):
        message = error.get("message")
        # An Azure content-filter error can arrive on HTTP 200 carrying its own status.
        own_status = error.get("status")
        if isinstance(own_status, int) and not isinstance(own_status, bool) and own_status >= 400:
            status = own_status
        return ApiError(
            message if isinstance(message, str) and message else "the API sent an error without a message",
            status=status,
            code=_label(error.get("code")),
            type=_label(error.get("type")),
            param=_label(error.get("param")),
        )
    message = data.get("message")
    if status >= 400 and isinstance(message, str) and message:
        return ApiError(message, status=status, code=_label(data.get("code")))
    return None


def _label(value: Any) -> str | None:
    """A code/type/param as text: Azure sends codes as strings, some gateways as numbers."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


# -- JSON chat completions --------------------------------------------------------------------


def _parse_json_body(text: str, status: int, content_type: str | None) -> Reply:
    data = _load_json(text, status, "the response body", _content_type_note(content_type))
    if not isinstance(data, dict):
        raise ResponseError(
            f"the response body is a JSON {_json_kind(data)}, expected a chat completion object",
            status=status,
            body_excerpt=excerpt(text),
        )
    if data.get("error") is not None:
        error = _api_error_from_object(data, status)
        if error is not None:
            raise error
    obj = data.get("object")
    if obj == "chat.completion.chunk":
        # One streamed chunk stored as plain JSON: a one-event stream.
        return _reply_from_chunks([data], status)
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices:
        raise _not_a_completion(
            obj, text, status, "has no choices" if choices is None else "has empty choices"
        )
    choice = _first_choice(choices)
    if choice is None:
        raise ResponseError(
            "choices[0] of the chat completion is not an object", status=status, body_excerpt=excerpt(text)
        )
    message = choice.get("message")
    if not isinstance(message, dict):
        if message is not None or choice.get("finish_reason") != "content_filter":
            raise _not_a_completion(obj, text, status, "has no choices[0].message")
        # Azure's output filter withholds the whole message but still bills the call: a reply with
        # no text that `finish-reason: content_filter` can assert and whose tokens are counted.
        message = {}
    return Reply(
        text=_message_text(message, status),
        tool_calls=_message_tool_calls(message, status),
        finish_reason=_str_or_none(choice.get("finish_reason")),
        refusal=_str_or_none(message.get("refusal")),
        model=_str_or_none(data.get("model")),
        usage=_usage(_usage_object(data)),
        raw=data,
    )


def _not_a_completion(obj: Any, text: str, status: int, problem: str) -> ResponseError:
    if isinstance(obj, str) and obj and obj != "chat.completion":
        return ResponseError(f"not a chat completion (object {obj!r}); {_CHAT_ENDPOINT_HINT}", status=status)
    return ResponseError(f"the chat completion {problem}", status=status, body_excerpt=excerpt(text))


def _first_choice(choices: list[Any]) -> dict[str, Any] | None:
    """The choice with index 0 (n > 1 replies list several), else the first listed."""
    for choice in choices:
        if isinstance(choice, dict) and choice.get("index") == 0:
            return choice
    first = choices[0]
    return first if isinstance(first, dict) else None


def _message_text(message: dict[str, Any], status: int) -> str:
    content = message.get("content")
    if content is None:
        # Audio replies put what the model said in the transcript and leave content null.
        audio = message.get("audio")
        transcript = audio.get("transcript") if isinstance(audio, dict) else None
        return transcript if isinstance(transcript, str) else ""
    return _content_text(content, status, "choices[0].message.content")


def _content_text(content: Any, status: int, where: str) -> str:
    """Text of a content value: a string, null, or a list of parts whose text parts are joined."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        pieces: list[str] = []
        for part in content:
            if isinstance(part, str):
                pieces.append(part)
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                pieces.append(part["text"])  # type "text" (chat) or "output_text"; images etc. have none
        return "".join(pieces)
    raise ResponseError(
        f"{where} is a JSON {_json_kind(content)}, expected text, null or a list of parts", status=status
    )


def _message_tool_calls(message: dict[str, Any], status: int) -> tuple[ToolCall, ...]:
    calls: list[ToolCall] = []
    raw_calls = message.get("tool_calls")
    if raw_calls is not None and not isinstance(raw_calls, list):
        raise ResponseError(
            f"choices[0].message.tool_calls is a JSON {_json_kind(raw_calls)}, expected a list", status=status
        )
    for position, raw in enumerate(raw_calls or []):
        call = _tool_call(raw, status, f"choices[0].message.tool_calls[{position}]")
        if call is not None:
            calls.append(call)
    legacy = message.get("function_call")
    if isinstance(legacy, dict):
        call = _tool_call(
            {"type": "function", "function": legacy}, status, "choices[0].message.function_call"
        )
        if call is not None:
            calls.append(call)
    return tuple(calls)


def _tool_call(raw: Any, status: int, where: str) -> ToolCall | None:
    """A ToolCall from `{type, id, <type>: {name, arguments|input}}`; None for nameless unknown kinds.

    Function calls carry `arguments`, custom tools (GPT-5 freeform) carry `input`; both become the
    call's argument text so assertions can see them.
    """
    if not isinstance(raw, dict):
        raise ResponseError(f"{where} is a JSON {_json_kind(raw)}, expected an object", status=status)
    kind = raw.get("type")
    kind = kind if isinstance(kind, str) and kind else "function"
    payload = raw.get(kind)
    if not isinstance(payload, dict):
        payload = raw.get("function")
    name = payload.get("name") if isinstance(payload, dict) else None
    if not isinstance(payload, dict) or not isinstance(name, str) or not name:
        if kind == "function":
            raise ResponseError(f"{where} has no function name", status=status)
        return None
    arguments = payload.get("arguments", payload.get("input"))
    return ToolCall(name=name, arguments=_arguments_text(arguments), id=_str_or_none(raw.get("id")))


def _arguments_text(arguments: Any) -> str:
    """Arguments as the model wrote them; some compatible servers send an object, we re-encode it."""
    if arguments is None:
        return ""
    if isinstance(arguments, str):
        return arguments
    return json.dumps(arguments, ensure_ascii=False)


def _usage_object(obj: dict[str, Any]) -> dict[str, Any] | None:
    """The usage object of a body or chunk: `usage`, else Groq's `x_groq.usage` (older Groq
    streams put it only there, in the last chunk)."""
    usage = obj.get("usage")
    if isinstance(usage, dict):
        return usage
    groq = obj.get("x_groq")
    groq_usage = groq.get("usage") if isinstance(groq, dict) else None
    return groq_usage if isinstance(groq_usage, dict) else None


def _usage(raw: Any) -> Usage:
    """Token counts and the reported cost, each None when absent or null; unknown fields ignored."""
    if not isinstance(raw, dict):
        return Usage()
    prompt_details = raw.get("prompt_tokens_details")
    completion_details = raw.get("completion_tokens_details")
    return Usage(
        prompt_tokens=_count(raw.get("prompt_tokens")),
        completion_tokens=_count(raw.get("completion_tokens")),
        total_tokens=_count(raw.get("total_tokens")),
        cached_tokens=_cached_tokens(raw, prompt_details),
        reasoning_tokens=(
            _count(completion_details.get("reasoning_tokens"))
            if isinstance(completion_details, dict)
            else None
        ),
        reported_cost_usd=_reported_cost(raw),
    )


def _cached_tokens(raw: dict[str, Any], prompt_details: Any) -> int | None:
    """Prompt tokens served from the cache, wherever the provider put them.

    OpenAI (and most compatible servers) use `prompt_tokens_details.cached_tokens`; Together, the
    HF router and Moonshot a top-level `cached_tokens`; DeepSeek `prompt_cache_hit_tokens`. The
    largest count wins: proxies fill the OpenAI field with 0 while passing the provider's own
    field through, and a cache hit read as 0 would bill cached tokens at the full input price.
    """
    counts = [
        _count(prompt_details.get("cached_tokens")) if isinstance(prompt_details, dict) else None,
        _count(raw.get("cached_tokens")),
        _count(raw.get("prompt_cache_hit_tokens")),
    ]
    known = [count for count in counts if count is not None]
    return max(known) if known else None


USD_PER_XAI_TICK = 1e-10
"""xAI bills in ticks of 1e-10 USD (`usage.cost_in_usd_ticks`)."""


def _reported_cost(raw: dict[str, Any]) -> float | None:
    """USD the provider says it billed for the call, or None when it did not say.

    OpenRouter: `cost` (credits, 1 credit = 1 USD); with a bring-your-own-key call that is only
    OpenRouter's fee, and `cost_details.upstream_inference_cost` is what the upstream provider
    charged on top. Perplexity: `cost` as an object whose `total_cost` includes the request fee.
    xAI: `cost_in_usd_ticks`.
    """
    cost = raw.get("cost")
    if isinstance(cost, dict):
        total = _usd(cost.get("total_cost"))
        if total is not None:
            return total
        parts = [_usd(value) for key, value in cost.items() if key.endswith("_cost")]
        known = [part for part in parts if part is not None]
        return sum(known) if known else None
    usd = _usd(cost)
    if usd is not None:
        details = raw.get("cost_details")
        upstream = _usd(details.get("upstream_inference_cost")) if isinstance(details, dict) else None
        if raw.get("is_byok") is True and upstream is not None:
            usd += upstream
        return usd
    ticks = _usd(raw.get("cost_in_usd_ticks"))
    return None if ticks is None else ticks * USD_PER_XAI_TICK


def _usd(value: Any) -> float | None:
    """A finite, non-negative amount of money, else None (a cost we cannot trust is not a cost)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        amount = float(value)
    except OverflowError:  # an integer past float range
        return None
    return amount if 0 <= amount < float("inf") else None


def _count(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


# -- server-sent events -----------------------------------------------------------------------


def _looks_like_sse(stripped: str) -> bool:
    return stripped.startswith(("data:", "event:", "id:", "retry:", ":"))


def _sse_data(text: str) -> Iterator[str]:
    """The data of each event, per the SSE spec: `data:` lines joined by newlines, an event ending
    at a blank line, events with empty data not dispatched; `event:`/`id:`/`retry:` fields and
    `:` comments skipped; lines end in CR, LF or CRLF."""
    lines: list[str] = []
    # Not str.splitlines(): it also splits at U+2028 and friends, which JSON strings may hold raw.
    for line in _LINE_BREAK.split(text):
        if not line:
            if any(lines):
                yield "\n".join(lines)
            lines = []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        if field == "data":
            lines.append(value.removeprefix(" "))
    if any(lines):
        yield "\n".join(lines)


def _parse_stream(text: str, status: int) -> Reply:
    chunks: list[dict[str, Any]] = []
    done = False
    for number, data in enumerate(_sse_data(text), start=1):
        if data.strip() == _DONE:
            done = True
            break
        chunk = _load_json(data, status, f"stream event {number}")
        if not isinstance(chunk, dict):
            raise ResponseError(
                f"stream event {number} is a JSON {_json_kind(chunk)}, expected a chunk object",
                status=status,
                body_excerpt=excerpt(data),
            )
        _check_chunk(chunk, status)
        chunks.append(chunk)
    if not chunks:
        problem = "only [DONE]" if done else "no data events"
        raise ResponseError(f"the event stream has {problem}", status=status, body_excerpt=excerpt(text))
    reply = _reply_from_chunks(chunks, status)
    if not done and reply.finish_reason is None:
        raise ResponseError(
            "the event stream ended without a finish_reason or [DONE]: it was cut off", status=status
        )
    return reply


def _check_chunk(chunk: dict[str, Any], status: int) -> None:
    if chunk.get("error") is not None:
        error = _api_error_from_object(chunk, status)
        if error is not None:
            raise error
    event_type = chunk.get("type")
    if isinstance(event_type, str) and event_type.startswith("response."):
        raise ResponseError(
            f"not a chat completion (a Responses API stream, event {event_type!r}); {_CHAT_ENDPOINT_HINT}",
            status=status,
        )
    obj = chunk.get("object")
    if obj == "response":
        raise ResponseError(f"not a chat completion (object {obj!r}); {_CHAT_ENDPOINT_HINT}", status=status)


@dataclass
class _CallDraft:
    """A tool call being assembled from its deltas."""

    name: str = ""
    arguments: str = ""
    id: str | None = None
    kind: str = "function"


def _reply_from_chunks(chunks: list[dict[str, Any]], status: int) -> Reply:
    text: list[str] = []
    refusal: list[str] = []
    drafts: dict[int | str, _CallDraft] = {}
    finish_reason: str | None = None
    model: str | None = None
    usage: Any = None
    saw_choice = False
    for number, chunk in enumerate(chunks, start=1):
        model = model or _str_or_none(chunk.get("model"))  # Azure's first chunk has model ""
        usage = _usage_object(chunk) or usage  # with include_usage: the last chunk, choices []
        choices = chunk.get("choices")
        if choices is None:
            continue
        if not isinstance(choices, list):
            raise ResponseError(
                f"stream chunk {number} has choices of type {_json_kind(choices)}, expected a list",
                status=status,
            )
        for choice in choices:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue  # n > 1 streams interleave choices; the Reply is choice 0
            saw_choice = True
            finish_reason = _str_or_none(choice.get("finish_reason")) or finish_reason
            delta = choice.get("delta")
            if not isinstance(delta, dict):
                continue
            where = f"stream chunk {number} delta"
            text.append(_content_text(delta.get("content"), status, f"{where}.content"))
            if isinstance(delta.get("refusal"), str):
                refusal.append(delta["refusal"])
            _merge_tool_call_deltas(drafts, delta, status, where)
    if not saw_choice:
        raise ResponseError(
            "the event stream has no chunk with choices[0]",
            status=status,
            body_excerpt=excerpt(json.dumps(chunks[0])),
        )
    calls = tuple(
        ToolCall(name=draft.name, arguments=draft.arguments, id=draft.id)
        for draft in drafts.values()
        if draft.name
    )
    nameless = [key for key, draft in drafts.items() if not draft.name and draft.kind == "function"]
    if nameless:
        raise ResponseError(
            f"streamed tool call {nameless[0]!r} never received a function name", status=status
        )
    return Reply(
        text="".join(text),
        tool_calls=calls,
        finish_reason=finish_reason,
        refusal="".join(refusal) or None,
        model=model,
        usage=_usage(usage),
        raw=chunks,
    )


def _merge_tool_call_deltas(
    drafts: dict[int | str, _CallDraft], delta: dict[str, Any], status: int, where: str
) -> None:
    """Fold one delta's tool-call pieces into `drafts`, keyed by each call's `index`.

    Only the first piece of a call carries its id and name; later pieces add argument text. The
    legacy `function_call` delta is one call of its own.
    """
    raw_calls = delta.get("tool_calls")
    if raw_calls is not None and not isinstance(raw_calls, list):
        raise ResponseError(
            f"{where}.tool_calls is a JSON {_json_kind(raw_calls)}, expected a list", status=status
        )
    for position, raw in enumerate(raw_calls or []):
        if not isinstance(raw, dict):
            raise ResponseError(
                f"{where}.tool_calls[{position}] is a JSON {_json_kind(raw)}, expected an object",
                status=status,
            )
        draft = drafts.setdefault(_draft_key(drafts, raw, position), _CallDraft())
        kind = raw.get("type")
        if isinstance(kind, str) and kind:
            draft.kind = kind
        _merge_piece(
            draft, raw.get(draft.kind) if isinstance(raw.get(draft.kind), dict) else raw.get("function")
        )
        draft.id = draft.id or _str_or_none(raw.get("id"))
    legacy = delta.get("function_call")
    if isinstance(legacy, dict):
        _merge_piece(drafts.setdefault("function_call", _CallDraft()), legacy)


def _draft_key(drafts: dict[int | str, _CallDraft], raw: dict[str, Any], position: int) -> int | str:
    """The call a piece belongs to: its `index`; without one (some compatible servers), its id, and
    without either, the call begun last (a continuation carries neither)."""
    index = raw.get("index")
    if isinstance(index, int) and not isinstance(index, bool):
        return index
    call_id = _str_or_none(raw.get("id"))
    if call_id is None:
        return next(reversed(drafts)) if drafts else position
    for key, draft in drafts.items():
        if draft.id == call_id:
            return key
    return f"id:{call_id}"


def _merge_piece(draft: _CallDraft, piece: Any) -> None:
    if not isinstance(piece, dict):
        return
    name = piece.get("name")
    if isinstance(name, str):
        draft.name += name
    arguments = piece.get("arguments", piece.get("input"))
    if arguments is not None:
        draft.arguments += _arguments_text(arguments)
