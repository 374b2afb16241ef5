"""What one model said for one request: text, tool calls, finish reason and token usage.

A `Reply` is what assertions judge and what budgets and reports measure. It is built from the
raw HTTP body by `pytest_llmgate.response.parse_chat_completion` (never from the SDK's models),
so replayed, live and hand-written fixture bodies go through one parser.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ToolCall:
    """One function call the model asked for; `arguments` is the raw JSON text the model wrote."""

    name: str
    arguments: str = ""
    id: str | None = None

    def parsed_arguments(self) -> Any:
        """The arguments as JSON, or raise ValueError naming the call when they are not JSON."""
        if not self.arguments.strip():
            return {}
        try:
            return json.loads(self.arguments)
        except json.JSONDecodeError as exc:
            raise ValueError(f"arguments of tool call {self.name!r} are not valid JSON: {exc}") from exc

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "arguments": self.arguments, "id": self.id}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ToolCall:
        return cls(name=data["name"], arguments=data.get("arguments", ""), id=data.get("id"))


@dataclass(frozen=True)
class Usage:
    """Token counts (and a cost, when the API states one) as the API reported them; None where it
    did not say.

    Providers spell the same numbers differently (`prompt_tokens_details.cached_tokens`, a
    top-level `cached_tokens`, DeepSeek's `prompt_cache_hit_tokens`; `usage.cost` in USD, xAI's
    `cost_in_usd_ticks`); the parser reads them all into these fields so that budgets, prices and
    reports never need to know which provider answered. `reported_cost_usd` is the provider's own
    bill for the call, kept beside the tokens because it may include fees no price table knows.
    """

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    cached_tokens: int | None = None
    reasoning_tokens: int | None = None
    reported_cost_usd: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
            "cached_tokens": self.cached_tokens,
            "reasoning_tokens": self.reasoning_tokens,
            "reported_cost_usd": self.reported_cost_usd,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Usage:
        data = data or {}
        cost = data.get("reported_cost_usd")
        return cls(
            prompt_tokens=data.get("prompt_tokens"),
            completion_tokens=data.get("completion_tokens"),
            total_tokens=data.get("total_tokens"),
            cached_tokens=data.get("cached_tokens"),
            reasoning_tokens=data.get("reasoning_tokens"),
            reported_cost_usd=None if cost is None else float(cost),
        )


@dataclass(frozen=True)
class Reply:
    """The parsed first choice of a chat completion.

    `text` is "" when the model wrote no content (tool-call-only or reasoning-only replies);
    `raw` is the decoded JSON body (for streams: the list of chunks) for escape-hatch assertions.
    """

    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: str | None = None
    refusal: str | None = None
    model: str | None = None
    usage: Usage = field(default_factory=Usage)
    raw: Any = None
    # The summary a reasoning model wrote of its reasoning (Responses API `reasoning` items);
    # None when it gave none. Its encrypted reasoning is never kept.
    reasoning_summary: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain data for xdist transport and reports; `raw` is left out (it can be large)."""
        data: dict[str, Any] = {
            "text": self.text,
            "tool_calls": [call.to_dict() for call in self.tool_calls],
            "finish_reason": self.finish_reason,
            "refusal": self.refusal,
            "model": self.model,
            "usage": self.usage.to_dict(),
        }
        if self.reasoning_summary is not None:  # absent otherwise: reports without one stay as they were
            data["reasoning_summary"] = self.reasoning_summary
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Reply:
        return cls(
            text=data.get("text", ""),
            tool_calls=tuple(ToolCall.from_dict(call) for call in data.get("tool_calls", [])),
            finish_reason=data.get("finish_reason"),
            refusal=data.get("refusal"),
            model=data.get("model"),
            usage=Usage.from_dict(data.get("usage")),
            reasoning_summary=data.get("reasoning_summary"),
        )
