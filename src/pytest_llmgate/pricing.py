"""Token prices per model and the cost of one call.

A cost is only ever shown when it is known: an unknown model or a reply without token counts
gives None (callers show "unknown" and warn), never 0.0, because a gate that reads an unknown
cost as free would pass a candidate that is in fact ten times dearer.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from types import MappingProxyType
from typing import Any

import yaml

from pytest_llmgate.reply import Usage

PER_TOKENS = 1_000_000
"""Prices are quoted in USD per this many tokens, as vendors quote them."""

_FIELDS = ("input", "cached_input", "output", "example")
_DATED_SUFFIX = re.compile(r"-(?:\d{4}-\d{2}-\d{2}|(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01]))$")


@dataclass(frozen=True)
class Price:
    """USD per 1M tokens; `example` marks an illustrative price not taken from the vendor's page."""

    input: float
    cached_input: float
    output: float
    example: bool = False


def undated(model: str) -> str:
    """The model id without a snapshot suffix: `gpt-4o-2024-08-06` -> `gpt-4o`, `gpt-4-0613` -> `gpt-4`.

    The API reports the dated snapshot it served, while price pages list the alias.
    """
    return _DATED_SUFFIX.sub("", model)


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
        prices = {name: _parse_entry(str(name), entry, None) for name, entry in data["models"].items()}
        checked = data.get("checked")
        return cls(MappingProxyType(prices), None if checked is None else str(checked))

    def merged(self, overrides: Mapping[str, Mapping[str, Any]]) -> PriceTable:
        """A new table with `overrides` applied (the project's own prices win).

        An override of a known model may give only the fields that change; a new model needs
        `input` and `output`, and its `cached_input` defaults to `input` (the dearer reading, so a
        missing cache price never makes a call look cheaper than it was).
        """
        prices = dict(self.prices)
        for name, entry in overrides.items():
            model = str(name)
            prices[model] = _parse_entry(model, entry, prices.get(model))
        return PriceTable(MappingProxyType(prices), self.checked)

    def lookup(self, requested: str, reported: str | None = None) -> Price | None:
        """The price for a call, or None when the model is unknown.

        Tried in order: the name the case asked for, the (usually dated) id the API reported, then
        the undated prefix of either, so that a project can price one snapshot differently from
        its alias and still get the alias price for snapshots it did not list.
        """
        candidates = [requested]
        if reported:
            candidates.append(reported)
            candidates.append(undated(reported))
        candidates.append(undated(requested))
        for name in candidates:
            price = self.prices.get(name)
            if price is not None:
                return price
        return None


def _number(model: str, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"price for model {model!r}: field {key!r} must be a number, got {value!r}")
    if value < 0 or value != value or value == float("inf"):
        raise ValueError(f"price for model {model!r}: field {key!r} must be finite and >= 0, got {value!r}")
    return float(value)


def _parse_entry(model: str, entry: Any, base: Price | None) -> Price:
    if not isinstance(entry, Mapping):
        raise ValueError(
            f"price for model {model!r} must be a mapping with fields input, cached_input, output; "
            f"got {entry!r}"
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
        )
    return Price(
        _number(model, "input", entry.get("input", base.input)),
        _number(model, "cached_input", entry.get("cached_input", base.cached_input)),
        _number(model, "output", entry.get("output", base.output)),
        example,
    )


def call_cost_parts(usage: Usage, price: Price) -> tuple[float, float] | None:
    """(input USD, output USD) of one call, or None when its counts are incomplete (see call_cost)."""
    if usage.prompt_tokens is None or usage.completion_tokens is None:
        return None
    cached = min(usage.cached_tokens or 0, usage.prompt_tokens)
    uncached = usage.prompt_tokens - cached
    input_usd = (uncached * price.input + cached * price.cached_input) / PER_TOKENS
    return input_usd, usage.completion_tokens * price.output / PER_TOKENS


def call_cost(usage: Usage, price: Price) -> float | None:
    """USD for one call, or None when the reply did not report prompt and completion counts.

    Cached prompt tokens are billed at the cached price and the rest of the prompt at the input
    price. Reasoning tokens are billed as output: the API already counts them inside
    `completion_tokens`, so they are not added again. A partial count gives None rather than an
    understated cost. Cached tokens above the prompt count (a malformed reply) are capped at it.
    """
    parts = call_cost_parts(usage, price)
    return None if parts is None else parts[0] + parts[1]
