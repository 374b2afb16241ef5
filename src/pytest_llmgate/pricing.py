"""Token prices per model, where each price came from, and the cost of one call.

A cost is only ever shown when it is known: an unknown model or a reply without token counts
gives None (callers show "unknown" and warn), never 0.0, because a gate that reads an unknown
cost as free would pass a candidate that is in fact ten times dearer. When the table has no
price but the API stated what it billed (OpenRouter, Perplexity, xAI), that figure is the cost.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from types import MappingProxyType
from typing import Any, Literal

import yaml

from pytest_llmgate.reply import Usage

PER_TOKENS = 1_000_000
"""Prices are quoted in USD per this many tokens, as vendors quote them."""

_FIELDS = ("input", "cached_input", "output", "per_request", "example")
_DATED_SUFFIX = re.compile(r"-(?:\d{4}-\d{2}-\d{2}|(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01]))$")
_AZURE_DOTLESS_VERSION = re.compile(r"^gpt-(\d)(\d)(?=-|$)")

PriceKind = Literal["builtin", "target", "reported"]


@dataclass(frozen=True)
class PriceSource:
    """Where a cost's price came from, so a report can say how far to trust it.

    `builtin`: the table shipped with pytest-llmgate, with the date it was checked (prices go
    stale). `target`: a price the project set (`origin` names where: llmgate.yaml, a case file, a
    model target). `reported`: no price was used; the API stated what it billed.
    """

    kind: PriceKind
    checked: str | None = None
    origin: str | None = None

    def describe(self) -> str:
        if self.kind == "builtin":
            dated = f", checked {self.checked}" if self.checked else ", never checked"
            return f"built-in price table{dated}"
        if self.kind == "target":
            return f"price set in {self.origin}" if self.origin else "price set for the target"
        return "cost reported by the API"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "checked": self.checked, "origin": self.origin}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PriceSource:
        kind = data.get("kind")
        if kind not in ("builtin", "target", "reported"):
            raise ValueError(f"price source kind must be builtin, target or reported, got {kind!r}")
        return cls(kind, data.get("checked"), data.get("origin"))


REPORTED = PriceSource("reported")
TARGET = PriceSource("target")


@dataclass(frozen=True)
class Price:
    """USD per 1M tokens, plus a fee per request; `example` marks an illustrative price not taken
    from the vendor's page.

    `source` rides along for reports and is left out of comparisons: the same numbers are the same
    price wherever they were written down.
    """

    input: float
    cached_input: float
    output: float
    example: bool = False
    per_request: float = 0.0
    source: PriceSource = field(default=TARGET, compare=False)


def undated(model: str) -> str:
    """The model id without a snapshot suffix: `gpt-4o-2024-08-06` -> `gpt-4o`, `gpt-4-0613` -> `gpt-4`.

    The API reports the dated snapshot it served, while price pages list the alias.
    """
    return _DATED_SUFFIX.sub("", model)


def canonical(model: str) -> str:
    """The vendor's own spelling of a model id that a router or cloud spelled its way.

    Routers and proxies prefix the vendor (`openai/gpt-4o` on OpenRouter, `azure/gpt-4o` in
    LiteLLM): the last path segment is the model. Azure drops the dot of a version
    (`gpt-35-turbo` is `gpt-3.5-turbo`).
    """
    name = model.rsplit("/", 1)[-1]
    return _AZURE_DOTLESS_VERSION.sub(r"gpt-\1.\2", name)


@dataclass(frozen=True)
class PriceTable:
    """Prices by model id, plus the date they were last checked against the vendor's page."""

    prices: Mapping[str, Price] = field(default_factory=lambda: MappingProxyType({}))
    checked: str | None = None

    @classmethod
    def builtin(cls) -> PriceTable:
        """The table shipped in `pytest_llmgate/data/prices.yaml`."""
        resource = resources.files("pytest_llmgate").joinpath("data/prices.yaml")
        data = yaml.safe_load(resource.read_text(encoding="utf-8"))
        if not isinstance(data, Mapping) or not isinstance(data.get("models"), Mapping):
            raise ValueError("pytest_llmgate/data/prices.yaml: expected a mapping with a 'models' mapping")
        checked = data.get("checked")
        checked = None if checked is None else str(checked)
        source = PriceSource("builtin", checked=checked)
        prices = {
            name: _parse_entry(str(name), entry, None, source) for name, entry in data["models"].items()
        }
        return cls(MappingProxyType(prices), checked)

    def merged(self, overrides: Mapping[str, Mapping[str, Any]], origin: str | None = None) -> PriceTable:
        """A new table with `overrides` applied (the project's own prices win).

        An override of a known model may give only the fields that change; a new model needs
        `input` and `output`, and its `cached_input` defaults to `input` (the dearer reading, so a
        missing cache price never makes a call look cheaper than it was). An overridden price is
        the project's (`target`, from `origin`) even where it keeps built-in fields.
        """
        source = PriceSource("target", origin=origin)
        prices = dict(self.prices)
        for name, entry in overrides.items():
            model = str(name)
            prices[model] = _parse_entry(model, entry, prices.get(model), source)
        return PriceTable(MappingProxyType(prices), self.checked)

    def aliased(self, aliases: Mapping[str, str]) -> PriceTable:
        """A new table where each alias (a target name) costs what its model id costs."""
        prices = dict(self.prices)
        for name, model in aliases.items():
            price = self.lookup(model)
            if price is not None:
                prices[name] = price
        return PriceTable(MappingProxyType(prices), self.checked)

    def find(self, requested: str, reported: str | None = None) -> tuple[str, Price] | None:
        """(the table's name for the model, its price), or None when the model is unknown.

        Exact names first: the name the case asked for, the (usually dated) id the API reported,
        then the undated prefix of either, so that a project can price one snapshot differently
        from its alias and still get the alias price for snapshots it did not list. Then the same
        names in the vendor's spelling (`openai/gpt-4o` -> `gpt-4o`, `gpt-35-turbo` ->
        `gpt-3.5-turbo`), so a price the project wrote for the router's id still wins.
        """
        for name in _candidates(requested, reported):
            price = self.prices.get(name)
            if price is not None:
                return name, price
        return None

    def lookup(self, requested: str, reported: str | None = None) -> Price | None:
        """The price for a call, or None when the model is unknown (see `find` for the order)."""
        found = self.find(requested, reported)
        return None if found is None else found[1]


def _candidates(requested: str, reported: str | None) -> Iterator[str]:
    names = [requested]
    if reported:
        names += [reported, undated(reported)]
    names.append(undated(requested))
    yield from names
    for name in names:
        vendor = canonical(name)
        yield vendor
        yield undated(vendor)


def _number(model: str, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"price for model {model!r}: field {key!r} must be a number, got {value!r}")
    if value < 0 or value != value or value == float("inf"):
        raise ValueError(f"price for model {model!r}: field {key!r} must be finite and >= 0, got {value!r}")
    return float(value)


def _parse_entry(model: str, entry: Any, base: Price | None, source: PriceSource) -> Price:
    if not isinstance(entry, Mapping):
        raise ValueError(
            f"price for model {model!r} must be a mapping with fields input, cached_input, output "
            f"(USD per 1M tokens) and optionally per_request (USD per call); got {entry!r}"
        )
    unknown = sorted(str(key) for key in entry if key not in _FIELDS)
    if unknown:
        raise ValueError(
            f"price for model {model!r}: unknown field {unknown[0]!r} (expected one of {', '.join(_FIELDS)})"
        )
    example = entry.get("example", False if base is None else base.example)
    if not isinstance(example, bool):
        raise ValueError(f"price for model {model!r}: field 'example' must be true or false, got {example!r}")
    if base is None:
        for key in ("input", "output"):
            if key not in entry:
                raise ValueError(f"price for model {model!r}: missing field {key!r} (USD per 1M tokens)")
        input_price = _number(model, "input", entry["input"])
        return Price(
            input_price,
            _number(model, "cached_input", entry.get("cached_input", input_price)),
            _number(model, "output", entry["output"]),
            example,
            _number(model, "per_request", entry.get("per_request", 0.0)),
            source,
        )
    return Price(
        _number(model, "input", entry.get("input", base.input)),
        _number(model, "cached_input", entry.get("cached_input", base.cached_input)),
        _number(model, "output", entry.get("output", base.output)),
        example,
        _number(model, "per_request", entry.get("per_request", base.per_request)),
        source,
    )


def billed_output_tokens(usage: Usage) -> int | None:
    """Completion tokens as billed: what `completion_tokens` says plus reasoning it left out.

    OpenAI counts reasoning inside `completion_tokens`; xAI and Gemini's OpenAI-compatible API
    report it beside (xAI: 1 completion + 228 reasoning = 241 - 12 prompt tokens), and bill it as
    output. Tokens of `total_tokens` beyond prompt + completion are those; without a total, a
    reasoning count above the completion count says the same.
    """
    if usage.completion_tokens is None:
        return None
    hidden = 0
    if usage.total_tokens is not None and usage.prompt_tokens is not None:
        hidden = usage.total_tokens - usage.prompt_tokens - usage.completion_tokens
    elif usage.reasoning_tokens is not None:
        hidden = usage.reasoning_tokens - usage.completion_tokens
    return usage.completion_tokens + max(hidden, 0)


def _token_parts(usage: Usage, price: Price) -> tuple[float, float] | None:
    output_tokens = billed_output_tokens(usage)
    if usage.prompt_tokens is None or output_tokens is None:
        return None
    cached = min(usage.cached_tokens or 0, usage.prompt_tokens)
    uncached = usage.prompt_tokens - cached
    input_usd = (uncached * price.input + cached * price.cached_input) / PER_TOKENS
    return input_usd, output_tokens * price.output / PER_TOKENS


def call_cost_parts(usage: Usage, price: Price) -> tuple[float, float] | None:
    """(input USD, output USD) of one call, or None when its counts are incomplete (see call_cost).

    The per-request fee is on the input side: it is charged for sending the request, whatever
    comes back, and this way every figure built from the two parts includes it.
    """
    parts = _token_parts(usage, price)
    return None if parts is None else (parts[0] + price.per_request, parts[1])


def call_cost(usage: Usage, price: Price) -> float | None:
    """USD for one call, or None when the reply did not report prompt and completion counts.

    Cached prompt tokens are billed at the cached price and the rest of the prompt at the input
    price. Reasoning tokens are billed as output: OpenAI already counts them inside
    `completion_tokens`, so they are not added again (providers that leave them out are handled
    by `billed_output_tokens`). The price's per-request fee is added. A partial count gives None
    rather than an understated cost. Cached tokens above the prompt count (a malformed reply) are
    capped at it.
    """
    parts = call_cost_parts(usage, price)
    return None if parts is None else parts[0] + parts[1]


@dataclass(frozen=True)
class CallCost:
    """The cost of one call, how it was reached, and the API's own figure beside it.

    `input_usd`/`output_usd` are the token parts (None for a reported cost, which comes as one
    sum); `request_usd` is the per-request fee; `usd` is everything. `reported_usd` is what the
    API said it billed, kept beside a computed cost so a report can show both when they differ.
    """

    usd: float
    source: PriceSource
    input_usd: float | None = None
    output_usd: float | None = None
    request_usd: float = 0.0
    reported_usd: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "usd": self.usd,
            "source": self.source.to_dict(),
            "input_usd": self.input_usd,
            "output_usd": self.output_usd,
            "request_usd": self.request_usd,
            "reported_usd": self.reported_usd,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CallCost:
        return cls(
            usd=float(data["usd"]),
            source=PriceSource.from_dict(data["source"]),
            input_usd=_optional_float(data.get("input_usd")),
            output_usd=_optional_float(data.get("output_usd")),
            request_usd=float(data.get("request_usd", 0.0)),
            reported_usd=_optional_float(data.get("reported_usd")),
        )


def cost_of_call(usage: Usage, price: Price | None) -> CallCost | None:
    """What one call cost: computed from `price` when it can be, else the API's reported cost.

    A price wins over a reported cost because the project chose it (a negotiated rate, a cloud's
    markup) and because the table prices both models of a comparison the same way; the reported
    figure is kept beside it. None when neither is known: unknown, never free.
    """
    parts = None if price is None else _token_parts(usage, price)
    if price is not None and parts is not None:
        return CallCost(
            usd=parts[0] + parts[1] + price.per_request,
            source=price.source,
            input_usd=parts[0],
            output_usd=parts[1],
            request_usd=price.per_request,
            reported_usd=usage.reported_cost_usd,
        )
    if usage.reported_cost_usd is not None:
        return CallCost(usd=usage.reported_cost_usd, source=REPORTED, reported_usd=usage.reported_cost_usd)
    return None


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)
