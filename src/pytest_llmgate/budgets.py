"""Case budgets: limits on latency, tokens and cost that the model under test keeps on every sample."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from pytest_llmgate.reply import Usage


@dataclass(frozen=True)
class Budgets:
    latency_ms: float | None = None
    output_tokens: float | None = None
    prompt_tokens: float | None = None
    total_tokens: float | None = None
    cost_usd: float | None = None
    ttft_ms: float | None = None  # time to first token of a streamed call

    def to_dict(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if value is not None}

    def is_empty(self) -> bool:
        return not self.to_dict()


@dataclass(frozen=True)
class BudgetBreach:
    """One budget a sample broke: which, the limit and what was measured."""

    budget: str
    limit: float
    measured: float

    def describe(self) -> str:
        if self.budget == "cost_usd":
            return f"cost_usd: measured ${self.measured:.6f} > limit ${self.limit:.6f}"
        if self.budget == "context_window":
            return (
                f"context window: prompt + max_tokens = {_number(self.measured)} tokens > window "
                f"{_number(self.limit)} tokens; shorten the prompt or lower max_tokens"
            )
        unit = " ms" if self.budget in ("latency_ms", "ttft_ms") else " tokens"
        return f"{self.budget}: measured {_number(self.measured)}{unit} > limit {_number(self.limit)}{unit}"

    def to_dict(self) -> dict[str, Any]:
        return {"budget": self.budget, "limit": self.limit, "measured": self.measured}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BudgetBreach:
        return cls(budget=data["budget"], limit=float(data["limit"]), measured=float(data["measured"]))


def _number(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() or value >= 100 else f"{value:.1f}"


def check_budgets(
    budgets: Budgets,
    latency_ms: float,
    usage: Usage,
    cost_usd: float | None = None,
    ttft_ms: float | None = None,
) -> tuple[list[BudgetBreach], list[str]]:
    """Breaches of `budgets` by one sample, and notes on budgets that could not be checked.

    A token budget the API gave no count for, or a cost budget for a model without a price, is
    not a breach (there is no evidence) but is said, so that nothing passes silently.
    """
    measured: dict[str, float | None] = {
        "latency_ms": latency_ms,
        "output_tokens": usage.completion_tokens,
        "prompt_tokens": usage.prompt_tokens,
        "total_tokens": usage.total_tokens,
        "cost_usd": cost_usd,
        "ttft_ms": ttft_ms,
    }
    breaches: list[BudgetBreach] = []
    unchecked: list[str] = []
    for name, limit in budgets.to_dict().items():
        value = measured[name]
        if value is None and name == "cost_usd":
            unchecked.append(
                "cost_usd: the cost is unknown (no price for the model, or no usage reported), "
                "budget not checked; add the model under pricing: in llmgate.yaml"
            )
        elif value is None and name == "ttft_ms":
            unchecked.append(
                "ttft_ms: no time to first token (the call was not streamed, or its recording predates "
                "it), budget not checked; set params: {stream: true} and record again"
            )
        elif value is None:
            unchecked.append(f"{name}: the API reported no count, budget not checked")
        elif value > limit:
            breaches.append(BudgetBreach(name, float(limit), float(value)))
    return breaches, unchecked
