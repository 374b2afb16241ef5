"""Chat Completions streams, seen event by event: where the first content or tool-call delta is.

The chat reply itself is parsed by `pytest_llmgate.response.parse_chat_completion`; this module
holds what both wire formats need while bytes are still arriving: splitting raw SSE bytes into
complete events (with the byte offset each one ends at) and telling whether a chat chunk carries
content. `model.responses` has the Responses counterpart, so time to first token is measured
the same way on both formats: feed the bytes read so far to `first_content_offset`, and the
first time it is not None, the first token has arrived.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

_EVENT_END = re.compile(rb"\r\n\r\n|\n\n|\r\r")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class SseEvent:
    """One complete server-sent event: its `event:` name (or None), its data, and the offset in
    the raw bytes just past the blank line that ended it."""

    end: int
    event: str | None
    data: str


def sse_events(raw: bytes) -> Iterator[SseEvent]:
    """The complete events in `raw`, in order; a trailing event without its blank line is not yet
    complete and is not yielded (more bytes may follow). Comments and data-less events are skipped."""
    start = 0
    for match in _EVENT_END.finditer(raw):
        block = raw[start : match.start()].decode("utf-8", errors="replace")
        start = match.end()
        name: str | None = None
        data: list[str] = []
        for line in _LINE_BREAK.split(block):
            if not line or line.startswith(":"):
                continue
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "data":
                data.append(value)
            elif field == "event":
                name = value
        if data:
            yield SseEvent(end=start, event=name, data="\n".join(data))


def chunk_carries_content(data: str) -> bool:
    """Whether one chat stream event's data holds reply text, refusal text or a tool-call piece
    for choice 0 (the role-only first chunk, finish and usage chunks carry none)."""
    chunk = _json_object(data)
    choices = chunk.get("choices") if chunk else None
    if not isinstance(choices, list):
        return False
    for choice in choices:
        if not isinstance(choice, dict) or choice.get("index", 0) != 0:
            continue
        delta = choice.get("delta")
        if not isinstance(delta, dict):
            continue
        if _non_empty_text(delta.get("content")) or _non_empty_text(delta.get("refusal")):
            return True
        if delta.get("tool_calls") or delta.get("function_call"):
            return True
    return False


def first_content_offset(raw: bytes, carries: Callable[[str], bool] = chunk_carries_content) -> int | None:
    """The byte offset at which the first content-carrying event of `raw` is complete, or None
    when no complete event carries content yet. `carries` judges one event's data; the default
    reads chat chunks, `model.responses.event_carries_content` reads Responses events."""
    for event in sse_events(raw):
        if carries(event.data):
            return event.end
    return None


def _json_object(data: str) -> dict[str, Any] | None:
    try:
        value = json.loads(data)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _non_empty_text(value: Any) -> bool:
    if isinstance(value, str):
        return bool(value)
    if isinstance(value, list):  # content parts
        return any(isinstance(part, dict) and part.get("text") for part in value)
    return False
