"""What a provider's rate-limit headers say about the account, and whether a concurrency fits.

Every answer of OpenAI carries the account's limits for the model and what is left of them:
`x-ratelimit-limit-requests` and `x-ratelimit-limit-tokens` (per minute) and
`x-ratelimit-remaining-requests` / `-tokens`. Azure OpenAI, Groq, Together and most
OpenAI-compatible gateways send the same names (Azure sometimes only the remaining ones; Groq's
request limit is per day, which only makes the comparison here more lenient); LiteLLM proxies
forward the provider's prefixed with `llm_provider-` beside their own (the proxy's own set is read
when it sends one, else the provider's: the two are never mixed); Mistral counts tokens per minute
(`x-ratelimit-limit-tokens-minute`) and requests per minute (`-req-minute`) or per 10 seconds
(`-req-10-second`, read as six times that per minute). Other spellings are ignored, and so is a
header sent twice (a recording and its replay would not read it alike).

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
    ("x-ratelimit-limit-req-minute", "requests_per_minute", 1),
    ("x-ratelimit-limit-req-10-second", "requests_per_minute", 6),
    ("x-ratelimit-limit-tokens", "tokens_per_minute", 1),
    ("x-ratelimit-limit-tokens-minute", "tokens_per_minute", 1),
    ("x-ratelimit-remaining-requests", "remaining_requests", 1),
    ("x-ratelimit-remaining-req-minute", "remaining_requests", 1),
    ("x-ratelimit-remaining-req-10-second", "remaining_requests", 6),
    ("x-ratelimit-remaining-tokens", "remaining_tokens", 1),
    ("x-ratelimit-remaining-tokens-minute", "remaining_tokens", 1),
)
_PROXY_PREFIX = "llm_provider-"
_MAX_VALUE = 10**15  # beyond any real limit: a larger number is a corrupt header, not a limit
LOW_HEADROOM = 0.1  # under 10% of a limit left at every answer of a recording: the account is near it


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
    own: dict[str, str | None] = {}
    proxied: dict[str, str | None] = {}
    for name, value in headers:
        lowered = str(name).lower()
        found = own
        if lowered.startswith(_PROXY_PREFIX):
            lowered, found = lowered[len(_PROXY_PREFIX) :], proxied
        if not lowered.startswith("x-ratelimit-"):
            continue
        if isinstance(value, list):  # a cassette keeps each header's values as a list
            value = value[0] if len(value) == 1 else None
        # Sent twice: the live client sees "100, 200" (unreadable), a replay each value apart.
        found[lowered] = None if lowered in found else str(value)
    return _limits(own) or _limits(proxied)


def _limits(found: Mapping[str, str | None]) -> RateLimit | None:
    fields: dict[str, int] = {}
    for header, name, factor in _HEADERS:
        text = found.get(header)
        if name in fields or text is None:
            continue
        count = _count(text.strip())
        if count is not None:
            fields[name] = count * factor
    return RateLimit(**fields) if fields else None


def _count(value: Any) -> int | None:
    """A whole number >= 0 as a header writes it (digits only) or as the JSON report keeps it."""
    if isinstance(value, str):
        if not (value.isascii() and value.isdigit()) or len(value) > 15:
            return None
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _MAX_VALUE:
        return value
    return None


@dataclass(frozen=True)
class Exposure:
    """One model's recorded limits against what the run's concurrency would ask of them."""

    model: str
    concurrency: int
    requests_per_minute: int | None  # the tightest limit any answer reported
    tokens_per_minute: int | None
    # The share of its limits the least loaded answer had left: under LOW_HEADROOM, the account
    # was near a limit the whole time (the recording's own calls alone use up some of it).
    headroom: float | None
    demand_requests: float | None  # requests a minute at `concurrency`, from the mean latency
    demand_tokens: float | None  # tokens a minute at that rate, from the mean tokens per call

    @property
    def _demands(self) -> tuple[tuple[str, float | None, int | None], ...]:
        """(what, demand a minute, limit a minute) for requests and tokens."""
        return (
            ("requests", self.demand_requests, self.requests_per_minute),
            ("tokens", self.demand_tokens, self.tokens_per_minute),
        )

    @property
    def over(self) -> tuple[str, ...]:
        """The limits the demand exceeds: "requests", "tokens"."""
        return tuple(
            name
            for name, demand, limit in self._demands
            if demand is not None and limit is not None and demand > limit
        )

    @property
    def low_headroom(self) -> bool:
        return self.headroom is not None and self.headroom < LOW_HEADROOM

    def fitting_concurrency(self) -> int | None:
        """The largest concurrency whose demand stays within both limits; 0 when even one call
        in flight exceeds one; None when nothing is over (or the demand is unknown)."""
        if not self.over or not self.concurrency:
            return None
        ratios = [limit / demand for _, demand, limit in self._demands if demand and limit is not None]
        return math.floor(self.concurrency * min(ratios)) if ratios else None

    def describe(self) -> str:
        limits = ", ".join(f"{limit:,} {unit}/min" for unit, _, limit in self._demands if limit is not None)
        text = f"{self.model}: limits {limits or 'not stated'}"
        demands = [f"{demand:,.0f} {unit}/min" for unit, demand, _ in self._demands if demand is not None]
        if demands:
            text += f"; concurrency {self.concurrency} asks about {' and '.join(demands)}"
        if self.headroom is not None:
            text += f"; at best {self.headroom:.0%} of them left"
        return text


def exposure(
    model: str,
    rate_limits: Iterable[RateLimit],
    calls: Iterable[tuple[float, int]],
    tokens_per_call: Iterable[int],
    concurrency: int,
) -> Exposure | None:
    """`model`'s exposure from what its answers reported; None when none stated a rate limit.

    `calls` are (milliseconds, requests) of each answered call, retries included. The demand is
    what `concurrency` calls kept in flight would ask: its requests a minute, and the mean tokens
    of a call at its rate of calls; unknown (None) without an answered call or a concurrency.
    """
    limits = list(rate_limits)
    if not limits:
        return None

    def tightest(values: Iterable[int | None]) -> int | None:
        known = [value for value in values if value is not None]
        return min(known) if known else None

    headrooms = [limit.headroom for limit in limits if limit.headroom is not None]
    timed = [(latency, requests) for latency, requests in calls if latency > 0]
    tokens = list(tokens_per_call)
    demand_requests = demand_tokens = None
    if timed and concurrency >= 1:
        total_ms = sum(latency for latency, _ in timed)
        demand_requests = concurrency * 60_000 * sum(requests for _, requests in timed) / total_ms
        if tokens:
            demand_tokens = concurrency * 60_000 * len(timed) / total_ms * sum(tokens) / len(tokens)
    return Exposure(
        model=model,
        concurrency=concurrency,
        requests_per_minute=tightest(limit.requests_per_minute for limit in limits),
        tokens_per_minute=tightest(limit.tokens_per_minute for limit in limits),
        headroom=max(headrooms) if headrooms else None,
        demand_requests=demand_requests,
        demand_tokens=demand_tokens,
    )
