"""Which wire format a target speaks, as one small object: the operation it calls, how a case's
request becomes the body sent, how the answer becomes a `Reply`, and where in a streamed answer
the first content arrived (for time to first token).

The client, the replay and the recorder ask `adapter_for(target)` instead of branching on
`target.api` themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pytest_llmgate.model import chat, responses
from pytest_llmgate.reply import Reply
from pytest_llmgate.response import parse_chat_completion


@dataclass(frozen=True)
class WireAdapter:
    api: str
    operation: str  # the URL path's last part: chat/completions, responses
    build: Callable[[Mapping[str, Any]], dict[str, Any]]  # case request -> create() arguments
    parse: Callable[[bytes, int, str | None], Reply]
    first_content_offset: Callable[[bytes], int | None]


def _chat_build(request: Mapping[str, Any]) -> dict[str, Any]:
    return dict(request)


def _chat_parse(body: bytes, status: int, content_type: str | None) -> Reply:
    return parse_chat_completion(body, status=status, content_type=content_type)


def _responses_parse(body: bytes, status: int, content_type: str | None) -> Reply:
    return responses.parse_response(body, status, content_type)


CHAT = WireAdapter("chat", "chat/completions", _chat_build, _chat_parse, chat.first_content_offset)
RESPONSES = WireAdapter(
    "responses", "responses", responses.build_request, _responses_parse, responses.first_content_offset
)
_ADAPTERS = {adapter.api: adapter for adapter in (CHAT, RESPONSES)}


def adapter_for(api: str | None) -> WireAdapter:
    """The adapter of a target's `api` (None: chat)."""
    return _ADAPTERS[api or "chat"]
