"""Price lookup, cost of a call and validation of a project's price overrides."""

from __future__ import annotations

from importlib import resources

import pytest

from pytest_llmgate.pricing import Price, PriceTable, call_cost, undated
from pytest_llmgate.reply import Usage


@pytest.fixture
def table() -> PriceTable:
    return PriceTable.builtin()


def test_builtin_table_is_found_in_the_installed_package(table: PriceTable) -> None:
    assert resources.files("pytest_llmgate").joinpath("data/prices.yaml").is_file()
    assert table.checked == "2026-11-23"
    assert table.prices["gpt-4o"] == Price(2.50, 1.25, 10.00)
    assert table.prices["gpt-5-nano"] == Price(0.05, 0.005, 0.40)
    assert table.prices["gpt-5.5"].example
    assert not table.prices["gpt-5"].example


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("gpt-4.1-mini-2025-04-14", "gpt-4.1-mini"),
        ("gpt-4-0613", "gpt-4"),
        ("gpt-3.5-turbo-0125", "gpt-3.5-turbo"),
        ("gpt-4o", "gpt-4o"),
        ("o4-mini", "o4-mini"),
        ("model-2048", "model-2048"),  # not a month and day
    ],
)
def test_undated_strips_snapshot_suffixes(model: str, expected: str) -> None:
    assert undated(model) == expected


def test_lookup_prefers_requested_then_reported_then_undated_prefix() -> None:
    table = PriceTable.builtin().merged(
        {
            "my-alias": {"input": 1, "output": 2},
            "gpt-4o-2024-05-13": {"input": 5, "cached_input": 5, "output": 15},
        }
    )
    # The requested name wins over the reported id.
    assert table.lookup("my-alias", "gpt-4o-2024-05-13") == Price(1, 1, 2)
    # An unknown requested name falls back to the reported dated id, listed exactly.
    assert table.lookup("unlisted", "gpt-4o-2024-05-13") == Price(5, 5, 15)
    # A dated id that is not listed falls back to its undated prefix.
    assert table.lookup("unlisted", "gpt-4o-2024-08-06") == Price(2.50, 1.25, 10.00)
    # So does a dated requested name with no reported id.
    assert table.lookup("gpt-4.1-nano-2025-04-14") == Price(0.10, 0.025, 0.40)


def test_unknown_model_has_no_price(table: PriceTable) -> None:
    assert table.lookup("claude-unknown") is None
    assert table.lookup("claude-unknown", "claude-unknown-20250101") is None
    assert table.lookup("local-llama", None) is None


def test_cost_prices_cached_input_and_counts_reasoning_as_output(table: PriceTable) -> None:
    price = table.lookup("gpt-4o")
    assert price is not None
    usage = Usage(
        prompt_tokens=1000, completion_tokens=500, total_tokens=1500, cached_tokens=400, reasoning_tokens=200
    )
    # 600 uncached * 2.50 + 400 cached * 1.25 + 500 output * 10.00 = 7000 USD per 1M tokens;
    # the 200 reasoning tokens are inside the 500 completion tokens and are not added again.
    assert call_cost(usage, price) == pytest.approx(0.007, rel=1e-12)


def test_cost_of_a_reasoning_model(table: PriceTable) -> None:
    price = table.lookup("o4-mini", "o4-mini-2025-04-16")
    assert price is not None
    usage = Usage(prompt_tokens=2000, completion_tokens=3000, cached_tokens=1000, reasoning_tokens=2500)
    # 1000 * 1.10 + 1000 * 0.275 + 3000 * 4.40 = 14575 USD per 1M tokens.
    assert call_cost(usage, price) == pytest.approx(0.014575, rel=1e-12)


def test_cost_without_cache_information_bills_the_whole_prompt_as_input() -> None:
    usage = Usage(prompt_tokens=1_000_000, completion_tokens=1_000_000)
    assert call_cost(usage, Price(0.15, 0.075, 0.60)) == pytest.approx(0.75)


def test_cost_caps_cached_tokens_at_the_prompt() -> None:
    usage = Usage(prompt_tokens=100, completion_tokens=0, cached_tokens=500)
    assert call_cost(usage, Price(2.0, 1.0, 8.0)) == pytest.approx(100 * 1.0 / 1e6)


@pytest.mark.parametrize(
    "usage",
    [Usage(), Usage(total_tokens=10), Usage(prompt_tokens=10), Usage(completion_tokens=10)],
)
def test_cost_is_unknown_without_counts(usage: Usage) -> None:
    assert call_cost(usage, Price(1.0, 0.5, 2.0)) is None


def test_override_of_a_known_model_keeps_unnamed_fields(table: PriceTable) -> None:
    merged = table.merged({"gpt-4o": {"output": 12}})
    assert merged.prices["gpt-4o"] == Price(2.50, 1.25, 12.0)
    assert table.prices["gpt-4o"].output == 10.00  # the original table is unchanged
    assert merged.checked == table.checked


def test_new_model_without_cached_price_uses_the_input_price(table: PriceTable) -> None:
    merged = table.merged({"local-model": {"input": 0.5, "output": 1.5}})
    assert merged.lookup("local-model") == Price(0.5, 0.5, 1.5)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"new-model": {"output": 1}}, "model 'new-model': missing field 'input'"),
        ({"new-model": {"input": 1}}, "model 'new-model': missing field 'output'"),
        ({"gpt-4o": {"input": "cheap"}}, "model 'gpt-4o': field 'input' must be a number, got 'cheap'"),
        ({"gpt-4o": {"output": -1}}, "model 'gpt-4o': field 'output' must be finite and >= 0, got -1"),
        ({"gpt-4o": {"cached_input": True}}, "model 'gpt-4o': field 'cached_input' must be a number"),
        ({"gpt-4o": {"outptu": 1}}, "model 'gpt-4o': unknown field 'outptu'"),
        ({"gpt-4o": {"example": "yes"}}, "model 'gpt-4o': field 'example' must be true or false"),
        ({"gpt-4o": 2.5}, "model 'gpt-4o' must be a mapping"),
        ({"x": {"input": float("nan"), "output": 1}}, "model 'x': field 'input' must be finite"),
    ],
)
def test_override_validation_names_model_and_field(
    table: PriceTable, overrides: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match="price for model") as excinfo:
        table.merged(overrides)  # type: ignore[arg-type]
    assert message in str(excinfo.value)
