"""What a provider's rate-limit headers say about the account, and whether a concurrency fits.

Every answer of OpenAI carries the account's limits for the model and what is left of them:
`x-ratelimit-limit-requests` and `x-ratelimit-limit-tokens` (per minute) and
`x-ratelimit-remaining-requests` / `-tokens`. Azure OpenAI, Groq, Together and most
OpenAI-compatible gateways send the same names (Azure sometimes only the remaining ones; Groq's
request limit is per day, which only makes the comparison here more lenient); LiteLLM proxies
forward them prefixed with `llm_provider-`; Mistral counts tokens per minute
(`x-ratelimit-limit-tokens-minute`) and requests per 10 seconds (`x-ratelimit-limit-req-10-second`,
read here as six times that per minute). Other spellings are ignored.

Read from each answer when it is recorded and again when it is replayed (the headers are kept in
the cassette), so the pre-upgrade checklist can hold the concurrency a team runs at against the
limits the candidate's account really has, offline.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# (header, field, factor to a per-minute figure); the first spelling present wins per field.
_HEADERS: tuple[tuple[str, str, int], ...] = (
    ("x-ratelimit-limit-requests", "requests_per_minute", 1),
    ("x-ratelimit-limit-req-10-second", "requests_per_minute", 6),
    ("x-ratelimit-limit-tokens", "tokens_per_minute", 1),
    ("x-ratelimit-limit-tokens-minute", "tokens_per_minute", 1),
    ("x-ratelimit-remaining-requests", "remaining_requests", 1),
    ("x-ratelimit-remaining-req-10-second", "remaining_requests", 6),
    ("x-ratelimit-remaining-tokens", "remaining_tokens", 1),
    ("x-ratelimit-remaining-tokens-minute", "remaining_tokens", 1),
)
_PROXY_PREFIX = "llm_provider-"
_MAX_VALUE = 10**15  # beyond any real limit: a larger number is a corrupt header, not a limit
LOW_HEADROOM = 0.1  # under 10% of a limit left while the run was recorded: production will hit it


@dataclass(frozen=True)
class RateLimit:
    """The limits one answer reported, and what was left of them; None where it did not say."""

    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    remaining_requests: int | None = None
    remaining_tokens: int | None = None

    @property
    def headroom(self) -> float | None:
        """The smallest share of a limit left when the answer was sent (0..1), if known."""
        shares = [
            remaining / limit
            for remaining, limit in (
                (self.remaining_requests, self.requests_per_minute),
                (self.remaining_tokens, self.tokens_per_minute),
            )
            if remaining is not None and limit
        ]
        return min(min(shares), 1.0) if shares else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests_per_minute": self.requests_per_minute,
            "tokens_per_minute": self.tokens_per_minute,
            "remaining_requests": self.remaining_requests,
            "remaining_tokens": self.remaining_tokens,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RateLimit:
        return cls(
            requests_per_minute=_count(data.get("requests_per_minute")),
            tokens_per_minute=_count(data.get("tokens_per_minute")),
            remaining_requests=_count(data.get("remaining_requests")),
            remaining_tokens=_count(data.get("remaining_tokens")),
        )


def read_rate_limit(headers: Iterable[tuple[str, Any]]) -> RateLimit | None:
    """The rate limit an answer's headers (name, value) state; None when they state none.

    A value that is not a whole number >= 0 (a hostile or corrupt recording) is ignored, never
    an error: the headers inform a checklist item, they do not decide a verdict.
    """
    found: dict[str, str] = {}
    for name, value in headers:
        lowered = str(name).lower()
        if lowered.startswith(_PROXY_PREFIX):
            lowered = lowered[len(_PROXY_PREFIX) :]
        if lowered.startswith("x-ratelimit-"):
            found[lowered] = str(value[0] if isinstance(value, list) and value else value)
    if not found:
        return None
    fields: dict[str, int] = {}
    for header, name, factor in _HEADERS:
        if name in fields or header not in found:
            continue
        count = _count(found[header].strip())
        if count is not None:
            fields[name] = count * factor
    return RateLimit(**fields) if fields else None


def _count(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(number) or number < 0 or number > _MAX_VALUE or number != int(number):
        return None
    return int(number)


@dataclass(frozen=True)
class Exposure:
    """One model's recorded limits against what the run's concurrency would ask of them."""

    model: str
    concurrency: int
    requests_per_minute: int | None  # the tightest limit any answer reported
    tokens_per_minute: int | None
    headroom: float | None  # the smallest share of a limit left at any answer
    demand_requests: float | None  # requests a minute at `concurrency`, from the mean latency
    demand_tokens: float | None  # tokens a minute at that rate, from the mean tokens per call

    @property
    def over(self) -> tuple[str, ...]:
        """The limits the demand exceeds: "requests", "tokens"."""
        return tuple(
            name
            for name, demand, limit in (
                ("requests", self.demand_requests, self.requests_per_minute),
                ("tokens", self.demand_tokens, self.tokens_per_minute),
            )
            if demand is not None and limit is not None and demand > limit
        )

    @property
    def low_headroom(self) -> bool:
        return self.headroom is not None and self.headroom < LOW_HEADROOM

    def fitting_concurrency(self) -> int | None:
        """The largest concurrency whose demand stays within both limits (at least 1)."""
        if not self.over or not self.concurrency:
            return None
        ratios = [
            limit / demand
            for demand, limit in (
                (self.demand_requests, self.requests_per_minute),
                (self.demand_tokens, self.tokens_per_minute),
            )
            if demand and limit is not None
        ]
        return max(1, math.floor(self.concurrency * min(ratios))) if ratios else None

    def describe(self) -> str:
        limits = ", ".join(
            f"{limit:,} {unit}/min"
            for limit, unit in ((self.requests_per_minute, "requests"), (self.tokens_per_minute, "tokens"))
            if limit is not None
        )
        text = f"{self.model}: limits {limits or 'not stated'}"
        demands = [
            f"{demand:,.0f} {unit}/min"
            for demand, unit in ((self.demand_requests, "requests"), (self.demand_tokens, "tokens"))
            if demand is not None
        ]
        if demands:
            text += f"; concurrency {self.concurrency} asks about {' and '.join(demands)}"
        if self.headroom is not None:
            text += f"; {self.headroom:.0%} left at the lowest"
        return text


def exposure(
    model: str,
    rate_limits: Iterable[RateLimit],
    latencies_ms: Iterable[float],
    tokens_per_call: Iterable[int],
    concurrency: int,
) -> Exposure | None:
    """`model`'s exposure from what its answers reported; None when none stated a rate limit.

    The demand is what `concurrency` calls kept in flight would ask: one call per mean latency
    each (requests) and the mean tokens of a call at that rate (tokens); unknown (None) without
    an answered call or a concurrency (< 1).
    """
    limits = list(rate_limits)
    if not limits:
        return None

    def tightest(values: Iterable[int | None]) -> int | None:
        known = [value for value in values if value is not None]
        return min(known) if known else None

    headrooms = [limit.headroom for limit in limits if limit.headroom is not None]
    latencies = [latency for latency in latencies_ms if latency > 0]
    tokens = list(tokens_per_call)
    demand_requests = (
        concurrency * 60_000 / (sum(latencies) / len(latencies)) if latencies and concurrency >= 1 else None
    )
    demand_tokens = (
        demand_requests * sum(tokens) / len(tokens) if demand_requests is not None and tokens else None
    )
    return Exposure(
        model=model,
        concurrency=concurrency,
        requests_per_minute=tightest(limit.requests_per_minute for limit in limits),
        tokens_per_minute=tightest(limit.tokens_per_minute for limit in limits),
        headroom=min(headrooms) if headrooms else None,
        demand_requests=demand_requests,
        demand_tokens=demand_tokens,
    )
