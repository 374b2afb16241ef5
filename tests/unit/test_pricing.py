"""Price lookup, cost of a call and validation of a project's price overrides."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest

from pytest_llmgate.pricing import (
    REPORTED,
    CallCost,
    Price,
    PriceSource,
    PriceTable,
    billed_output_tokens,
    call_cost,
    call_cost_parts,
    canonical,
    cost_of_call,
    undated,
)
from pytest_llmgate.reply import Usage
from pytest_llmgate.response import parse_chat_completion

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "responses"


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


# -- where a price came from ------------------------------------------------------------------


def test_builtin_prices_say_they_come_from_the_dated_table(table: PriceTable) -> None:
    source = table.prices["gpt-4o"].source

    assert source == PriceSource("builtin", checked="2026-11-23")
    assert source.describe() == "built-in price table, checked 2026-11-23"


def test_overridden_prices_say_where_they_were_set(table: PriceTable) -> None:
    project = table.merged(
        {"gpt-4o": {"output": 12}, "local": {"input": 1, "output": 2}}, origin="llmgate.yaml"
    )

    assert project.prices["gpt-4o"].source.describe() == "price set in llmgate.yaml"
    assert project.prices["local"].source == PriceSource("target", origin="llmgate.yaml")
    assert project.prices["gpt-5"].source.kind == "builtin"  # untouched entries keep theirs
    assert table.merged({"x": {"input": 1, "output": 1}}).prices["x"].source.describe() == (
        "price set for the target"
    )
    assert REPORTED.describe() == "cost reported by the API"


def test_price_equality_ignores_the_source(table: PriceTable) -> None:
    assert table.prices["gpt-4o"] == Price(2.50, 1.25, 10.00, source=PriceSource("target", origin="x"))


def test_price_source_round_trips_and_rejects_unknown_kinds() -> None:
    source = PriceSource("builtin", checked="2026-11-23")

    assert PriceSource.from_dict(source.to_dict()) == source
    with pytest.raises(ValueError, match="kind must be builtin, target or reported, got 'guess'"):
        PriceSource.from_dict({"kind": "guess"})


# -- per-request fees -------------------------------------------------------------------------


def test_per_request_fee_is_part_of_every_cost_figure(table: PriceTable) -> None:
    price = table.merged({"sonar": {"input": 1, "output": 1, "per_request": 0.005}}).lookup("sonar")
    assert price is not None
    assert price.per_request == 0.005
    usage = Usage(prompt_tokens=8, completion_tokens=92, total_tokens=100)

    parts = call_cost_parts(usage, price)
    cost = cost_of_call(usage, price)

    # 100 tokens at $1 per 1M is $0.0001; the fee of $0.005 is added once per call.
    assert call_cost(usage, price) == pytest.approx(0.0051, rel=1e-12)
    assert parts == pytest.approx((0.000008 + 0.005, 0.000092))  # the fee rides on the input side
    assert cost is not None
    assert (cost.usd, cost.input_usd, cost.output_usd, cost.request_usd) == pytest.approx(
        (0.0051, 0.000008, 0.000092, 0.005)
    )


def test_per_request_fee_defaults_to_zero_and_survives_partial_overrides(table: PriceTable) -> None:
    assert table.prices["gpt-4o"].per_request == 0.0
    fee = table.merged({"gpt-4o": {"per_request": 0.01}})
    assert fee.prices["gpt-4o"] == Price(2.50, 1.25, 10.00, per_request=0.01)
    assert fee.merged({"gpt-4o": {"output": 11}}).prices["gpt-4o"].per_request == 0.01


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"input": 1, "output": 1, "per_request": -0.1}, "field 'per_request' must be finite and >= 0"),
        ({"input": 1, "output": 1, "per_request": "5c"}, "field 'per_request' must be a number"),
        ({"input": 1, "output": 1, "per_call": 1}, "unknown field 'per_call' (expected one of input, "
         "cached_input, output, per_request, example)"),
    ],
)  # fmt: skip
def test_per_request_fee_is_validated(table: PriceTable, entry: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match="price for model 'm'") as excinfo:
        table.merged({"m": entry})
    assert message in str(excinfo.value)


# -- router and cloud spellings ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("openai/gpt-4o", "gpt-4o"),
        ("openrouter/openai/gpt-4o-mini", "gpt-4o-mini"),
        ("gpt-35-turbo", "gpt-3.5-turbo"),
        ("gpt-35-turbo-16k", "gpt-3.5-turbo-16k"),
        ("azure/gpt-35-turbo-0125", "gpt-3.5-turbo-0125"),
        ("gpt-4o", "gpt-4o"),
        ("gpt-4.1-mini", "gpt-4.1-mini"),
        ("o4-mini", "o4-mini"),
        ("meta-llama/Llama-3.3-70B-Instruct", "Llama-3.3-70B-Instruct"),
    ],
)
def test_canonical_spells_ids_as_the_vendor_does(model: str, expected: str) -> None:
    assert canonical(model) == expected


@pytest.mark.parametrize(
    ("requested", "reported", "priced_as"),
    [
        ("openai/gpt-4o", None, "gpt-4o"),
        ("openai/gpt-5-mini", "openai/gpt-5-mini", "gpt-5-mini"),
        ("my-deployment", "gpt-35-turbo", "gpt-3.5-turbo"),  # an Azure deployment name
        ("gpt-35-turbo", "gpt-35-turbo-0125", "gpt-3.5-turbo"),
        ("azure/gpt-4o", "gpt-4o-2024-11-20", "gpt-4o"),
        ("openrouter/openai/gpt-4.1-nano-2025-04-14", None, "gpt-4.1-nano"),
    ],
)
def test_lookup_matches_provider_prefixed_and_azure_ids(
    table: PriceTable, requested: str, reported: str | None, priced_as: str
) -> None:
    found = table.find(requested, reported)

    assert found is not None
    assert found == (priced_as, table.prices[priced_as])
    assert table.lookup(requested, reported) == table.prices[priced_as]


def test_a_price_written_for_the_routers_id_wins_over_the_vendors(table: PriceTable) -> None:
    project = table.merged({"openai/gpt-4o": {"input": 3, "output": 12}}, origin="llm_cases.yaml")

    assert project.find("openai/gpt-4o") == ("openai/gpt-4o", Price(3, 3, 12))
    assert project.find("gpt-4o") == ("gpt-4o", table.prices["gpt-4o"])


def test_prefixed_ids_of_unknown_models_stay_unpriced(table: PriceTable) -> None:
    assert table.find("meta-llama/Llama-3.3-70B-Instruct") is None
    assert table.lookup("groq/compound", "groq/compound") is None
    assert table.lookup("minimax/minimax-m2:free") is None


# -- reasoning tokens left out of completion_tokens -------------------------------------------


@pytest.mark.parametrize(
    ("usage", "billed"),
    [
        pytest.param(Usage(12, 1, 241, 2, 228), 229, id="xai-reasoning-beside-completion"),
        pytest.param(Usage(30, 3, 73), 43, id="gemini-thoughts-only-in-total"),
        pytest.param(Usage(17, 1515, 1532, None, 704), 1515, id="openai-reasoning-inside-completion"),
        pytest.param(Usage(10, 5, 12), 5, id="total-below-the-sum"),
        pytest.param(Usage(None, 1, None, None, 50), 50, id="no-total-reasoning-above-completion"),
        pytest.param(Usage(None, 9, None, None, 4), 9, id="no-total-reasoning-inside"),
        pytest.param(Usage(10, None, 20), None, id="no-completion-count"),
    ],
)
def test_billed_output_tokens_add_reasoning_the_provider_left_out(usage: Usage, billed: int | None) -> None:
    assert billed_output_tokens(usage) == billed


def test_computed_xai_cost_matches_what_xai_billed(table: PriceTable) -> None:
    """The parsed usage and the reasoning rule together reproduce xAI's own bill to the tick."""
    usage = parse_chat_completion((FIXTURES / "chat_xai_cost_ticks.json").read_bytes()).usage
    price = table.merged({"grok-3-mini": {"input": 0.30, "cached_input": 0.075, "output": 0.50}}).lookup(
        "grok-3-mini"
    )
    assert price is not None

    cost = cost_of_call(usage, price)

    # 16 uncached * 0.30 + 4 cached * 0.075 + (1 + 100 reasoning) * 0.50 = 55.6 USD per 1M tokens.
    assert cost is not None
    assert cost.usd == pytest.approx(0.0000556, rel=1e-9)
    assert cost.reported_usd == pytest.approx(cost.usd, rel=1e-9)
    assert cost.source.kind == "target"


# -- computed, reported, or unknown -----------------------------------------------------------


def test_reported_cost_is_used_when_the_model_has_no_price(table: PriceTable) -> None:
    usage = parse_chat_completion((FIXTURES / "chat_perplexity_cost.json").read_bytes()).usage
    assert table.lookup("sonar") is None

    cost = cost_of_call(usage, table.lookup("sonar"))

    assert cost == CallCost(usd=0.0051, source=REPORTED, reported_usd=0.0051)
    assert cost.source.describe() == "cost reported by the API"


def test_reported_cost_is_shown_beside_a_computed_one(table: PriceTable) -> None:
    reply = parse_chat_completion((FIXTURES / "chat_openrouter_cost.json").read_bytes())
    price = table.lookup("openai/gpt-4o-mini", reply.model)

    cost = cost_of_call(reply.usage, price)

    # 1000 * 0.15 + 500 * 0.60 = 450 USD per 1M tokens: OpenRouter passes OpenAI's price through.
    assert cost is not None
    assert cost.usd == pytest.approx(0.00045, rel=1e-12)
    assert cost.source == PriceSource("builtin", checked="2026-11-23")
    assert cost.reported_usd == 0.00045


def test_price_wins_over_a_different_reported_cost(table: PriceTable) -> None:
    usage = Usage(prompt_tokens=1000, completion_tokens=0, total_tokens=1000, reported_cost_usd=0.5)

    cost = cost_of_call(usage, table.lookup("gpt-4o"))

    assert cost is not None
    assert cost.usd == pytest.approx(0.0025)  # 1000 prompt tokens at $2.50 per 1M
    assert (cost.reported_usd, cost.source.kind) == (0.5, "builtin")


def test_reported_cost_fills_in_when_the_counts_are_incomplete(table: PriceTable) -> None:
    usage = Usage(prompt_tokens=100, reported_cost_usd=0.0007)

    assert cost_of_call(usage, table.lookup("gpt-4o")) == CallCost(0.0007, REPORTED, reported_usd=0.0007)


@pytest.mark.parametrize("usage", [Usage(), Usage(prompt_tokens=5, completion_tokens=5)])
def test_cost_is_unknown_without_price_or_reported_cost(usage: Usage) -> None:
    assert cost_of_call(usage, None) is None


def test_content_filtered_azure_reply_is_billed_at_the_gpt35_price(table: PriceTable) -> None:
    reply = parse_chat_completion((FIXTURES / "chat_azure_content_filter.json").read_bytes())
    price = table.lookup("my-azure-deployment", reply.model)
    assert price is not None

    # 13 prompt * 0.50 + 21 completion * 1.50 = 38 USD per 1M tokens, though no text came back.
    assert call_cost(reply.usage, price) == pytest.approx(0.000038, rel=1e-12)


def test_call_cost_round_trips(table: PriceTable) -> None:
    cost = cost_of_call(Usage(10, 5, 15, reported_cost_usd=0.1), table.lookup("gpt-4o"))
    assert cost is not None

    assert CallCost.from_dict(cost.to_dict()) == cost
