"""JSON and extraction kinds, the JSONPath subset and the normalizers."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_llmgate.assertions import AssertionResult
from pytest_llmgate.assertions.structured import (
    Step,
    json_candidates,
    parse_date,
    parse_json_path,
    parse_number,
    same_value,
)

from .helpers import config_error, run

INVOICE = {"vendor": "ACME Corp", "total": 1234.5, "date": "2024-03-05", "items": [{"sku": "A-1", "qty": 2}]}
FENCED = "Here is the data:\n```json\n" + json.dumps(INVOICE) + "\n```\nAnything else?"
PROSE = 'Sure! The answer is {"vendor": "ACME Corp", "total": 1234.5} - hope that helps.'
SCHEMA = {
    "type": "object",
    "required": ["vendor", "total"],
    "properties": {"vendor": {"type": "string"}, "total": {"type": "number"}},
}


# --- finding JSON ------------------------------------------------------------------------------


def test_json_is_found_whole_then_fenced_then_in_prose() -> None:
    assert next(json_candidates(json.dumps(INVOICE))) == INVOICE
    assert next(json_candidates(FENCED)) == INVOICE
    assert next(json_candidates(PROSE)) == {"vendor": "ACME Corp", "total": 1234.5}
    assert list(json_candidates("see [1] and {broken: json}")) == []


# --- is-json -----------------------------------------------------------------------------------


def test_is_json_passes_on_a_json_reply_and_its_negation_fails() -> None:
    assert run({"type": "is-json"}, '  {"a": 1}\n').passed
    assert not run({"type": "not-is-json"}, '{"a": 1}').passed


def test_is_json_fails_on_fenced_json_with_an_excerpt() -> None:
    result = run({"type": "is-json"}, FENCED)
    assert not result.passed
    assert result.reason.startswith('is-json: the reply is not JSON: "Here is the data:')
    assert run({"type": "not-is-json"}, FENCED).passed


def test_is_json_with_a_schema_names_the_violation() -> None:
    assert run({"type": "is-json", "value": SCHEMA}, json.dumps(INVOICE)).passed
    result = run({"type": "is-json", "value": SCHEMA}, '{"vendor": "ACME", "total": "lots"}')
    assert not result.passed
    assert result.reason == "is-json: schema violation at $.total: 'lots' is not of type 'number'"


def test_schemas_of_older_drafts_are_checked_by_their_own_draft() -> None:
    draft4 = {"$schema": "http://json-schema.org/draft-04/schema#", "type": "integer", "minimum": 1}
    assert run({"type": "is-json", "value": draft4}, "3").passed
    assert not run({"type": "is-json", "value": draft4}, "0").passed
    error = config_error({"type": "is-json", "value": {**draft4, "exclusiveMinimum": 5}})
    assert error.field == "value"  # a number is not a draft-04 exclusiveMinimum (that is a bool)


@pytest.mark.parametrize("kind", ["is-json", "contains-json"])
@pytest.mark.parametrize("schema", [{"type": "nope"}, {"properties": {"a": {"minimum": "zero"}}}, "object"])
def test_an_invalid_schema_is_a_config_error_on_value(kind: str, schema: Any) -> None:
    error = config_error({"type": kind, "value": schema})
    assert error.field == "value"


# --- contains-json -----------------------------------------------------------------------------


@pytest.mark.parametrize("text", [FENCED, PROSE, json.dumps([1, 2])])
def test_contains_json_finds_json_in_fences_prose_or_whole(text: str) -> None:
    assert run({"type": "contains-json"}, text).passed
    assert not run({"type": "not-contains-json"}, text).passed


def test_contains_json_fails_without_json() -> None:
    result = run({"type": "contains-json"}, "No data, see [1].")
    assert not result.passed
    assert result.reason == 'contains-json: no JSON object found in "No data, see [1]."'
    assert run({"type": "not-contains-json"}, "No data, see [1].").passed


def test_contains_json_with_a_schema_passes_when_any_candidate_validates() -> None:
    text = 'First {"x": 1}, then {"vendor": "ACME", "total": 3}.'
    assert run({"type": "contains-json", "value": SCHEMA}, text).passed
    result = run({"type": "contains-json", "value": SCHEMA}, 'Only {"vendor": 1}')
    assert not result.passed
    assert "none matches the schema" in result.reason


# --- json-path ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "entry",
    [
        {"path": "$.vendor", "equals": "ACME Corp"},
        {"path": "$['vendor']", "contains": "ACME"},
        {"path": "$.total", "equals": 1234.5},
        {"path": "$.total", "approx": 1234.4, "tolerance": 0.2},
        {"path": "$.date", "matches": r"^\d{4}-\d{2}-\d{2}$"},
        {"path": "$.items[0].sku", "equals": "A-1"},
        {"path": "$.items[-1].qty", "equals": 2.0},
        {"path": "$.items[*].sku", "equals": ["A-1"]},
        {"path": "$.items[*].qty", "contains": 2},
        {"path": "$..sku", "matches": "^A-"},
        {"path": "$.items[0]", "contains": {"sku": "A-1"}},
        {"path": "$.*", "contains": "ACME Corp"},
    ],
)
def test_json_path_passes(entry: dict[str, Any]) -> None:
    result = run({"type": "json-path", **entry}, FENCED)
    assert result.passed, result.reason
    assert not run({"type": "not-json-path", **entry}, FENCED).passed


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ({"path": "$.total", "equals": 1243.5}, "json-path $.total equals 1243.5: got 1234.5"),
        ({"path": "$.total", "approx": 1234}, "off by 0.5 > 1e-06"),
        ({"path": "$.vendor", "matches": "^Globex"}, "'ACME Corp' does not match"),
        ({"path": "$.vendor", "contains": "Globex"}, "not in 'ACME Corp'"),
        ({"path": "$.missing", "equals": 1}, "nothing at $.missing in"),
        ({"path": "$.items[5].sku", "equals": "A-1"}, "nothing at"),
        ({"path": "$.total", "equals": "1234.5"}, "got 1234.5"),
        ({"path": "$.items", "approx": 1}, "is not a number"),
    ],
)
def test_json_path_fails_with_what_it_found(entry: dict[str, Any], reason: str) -> None:
    result = run({"type": "json-path", **entry}, FENCED)
    assert not result.passed
    assert reason in result.reason
    assert run({"type": "not-json-path", **entry}, FENCED).passed


def test_json_path_on_a_reply_without_json_fails() -> None:
    result = run({"type": "json-path", "path": "$.a", "equals": 1}, "no json here")
    assert not result.passed
    assert 'no JSON found in the reply: "no json here"' in result.reason


def test_json_path_equals_does_not_take_true_for_one() -> None:
    assert not run({"type": "json-path", "path": "$.a", "equals": 1}, '{"a": true}').passed


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        ({"path": "vendor", "equals": 1}, "path"),
        ({"path": "$.items[?(@.qty > 1)]", "equals": 1}, "path"),
        ({"path": "$.items[0:2]", "equals": 1}, "path"),
        ({"path": "$.", "equals": 1}, "path"),
        ({"equals": 1}, "path"),
        ({"path": "$.a"}, None),
        ({"path": "$.a", "equals": 1, "contains": 1}, "contains"),
        ({"path": "$.a", "matches": "(x"}, "matches"),
        ({"path": "$.a", "matches": 5}, "matches"),
        ({"path": "$.a", "approx": "five"}, "approx"),
        ({"path": "$.a", "approx": 5, "tolerance": -1}, "tolerance"),
        ({"path": "$.a", "equals": 5, "tolerance": 1}, "tolerance"),
        ({"path": "$.a", "equals": 5, "value": 1}, "value"),
    ],
)
def test_json_path_bad_configuration(entry: dict[str, Any], field: str | None) -> None:
    assert config_error({"type": "json-path", **entry}).field == field


_KEYS = st.from_regex(r"[A-Za-z_][A-Za-z0-9_-]{0,6}", fullmatch=True)
_STEPS = st.one_of(
    _KEYS.map(lambda key: Step("key", key=key)),
    st.text(alphabet="ab .'\"$*[]", max_size=5).map(lambda key: Step("key", key=key)),
    st.integers(-5, 5).map(lambda index: Step("index", index=index)),
    st.just(Step("wild")),
    _KEYS.map(lambda key: Step("deep", key=key)),
)


def _render(step: Step) -> str:
    if step.kind == "index":
        return f"[{step.index}]"
    if step.kind == "wild":
        return "[*]"
    if step.kind == "deep":
        return f"..{step.key}"
    return "['" + step.key.replace("\\", "\\\\").replace("'", "\\'") + "']"


@given(st.lists(_STEPS, max_size=5))
def test_json_path_parser_reads_back_every_path_it_supports(steps: list[Step]) -> None:
    text = "$" + "".join(_render(step) for step in steps)
    assert parse_json_path(text).steps == tuple(steps)


def test_json_path_dot_and_bracket_forms_agree() -> None:
    assert parse_json_path("$.a.b[0].*").steps == parse_json_path("$['a'][\"b\"][ 0 ][*]").steps


# --- fields ------------------------------------------------------------------------------------

EXTRACTED = {
    "vendor": "  ACME Corp ",
    "total": "$1,234.50",
    "date": "March 5, 2024",
    "address": {"city": "Berlin", "zip": "10115"},
    "items": [{"sku": "A-1", "qty": "2"}],
}


def test_fields_pass_with_normalizers() -> None:
    entry = {
        "type": "fields",
        "value": {
            "vendor": "acme corp",
            "total": 1234.5,
            "date": "2024-03-05",
            "address.city": "berlin",
            "address": {"zip": 10115},
            "items": [{"sku": "A-1", "qty": 2}],
        },
        "normalize": {
            "vendor": ["trim", "casefold"],
            "total": "number",
            "date": "date",
            "address": "casefold",
        },
    }
    result = run(entry, json.dumps(EXTRACTED))
    assert result.passed, result.reason
    assert result.reason == "fields: 7/7 right"  # nested keys and list items count one each
    assert not run({**entry, "type": "not-fields"}, json.dumps(EXTRACTED)).passed


def test_fields_fail_lists_the_wrong_fields_and_scores_the_fraction_right() -> None:
    entry = {
        "type": "fields",
        "value": {"vendor": "ACME Corp", "total": 1243.5, "date": "2024-03-05", "po": "PO-1"},
        "normalize": ["number", "date"],
    }
    result = run(entry, json.dumps(EXTRACTED))
    assert not result.passed
    assert result.score == 0.5
    assert result.reason == (
        "fields: 2/4 right, need 100%: total: expected 1243.5, got '$1,234.50'; po: expected 'PO-1', missing"
    )
    negated = run({**entry, "type": "not-fields"}, json.dumps(EXTRACTED))
    assert negated.passed
    assert negated.score == 0.5


def test_fields_threshold_allows_some_wrong_fields() -> None:
    entry = {"type": "fields", "value": {"a": 1, "b": 2, "c": 3, "d": 4}, "threshold": 0.75}
    result = run(entry, '{"a": 1, "b": 2, "c": 3, "d": 5}')
    assert result.passed
    assert result.score == 0.75
    assert "wrong: d: expected 4, got 5" in result.reason


def test_fields_default_comparison_trims_and_compares_numbers_numerically() -> None:
    assert run({"type": "fields", "value": {"a": "x", "n": 12.5}}, '{"a": " x ", "n": "12.50"}').passed
    assert not run({"type": "fields", "value": {"a": "x"}}, '{"a": "X"}').passed
    assert not run({"type": "fields", "value": {"n": 1234.5}}, '{"n": "1,234.50"}').passed


def test_fields_on_output_that_is_not_an_object_fails() -> None:
    assert not run({"type": "fields", "value": {"a": 1}}, "[1, 2]").passed
    assert "no JSON found" in run({"type": "fields", "value": {"a": 1}}, "nothing").reason


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        ({"value": [1, 2]}, "value"),
        ({"value": {}}, "value"),
        ({}, "value"),
        ({"value": {"a": 1}, "normalize": "lowercase"}, "normalize"),
        ({"value": {"a": 1}, "normalize": {"b": "trim"}}, "normalize"),
        ({"value": {"a": 1}, "normalize": {"a": [1]}}, "normalize"),
        ({"value": {"a": 1}, "threshold": 1.5}, "threshold"),
    ],
)
def test_fields_bad_configuration(entry: dict[str, Any], field: str) -> None:
    assert config_error({"type": "fields", **entry}).field == field


# --- normalizers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("1234.5", 1234.5),
        ("1,234.50", 1234.5),
        ("$1,234.50", 1234.5),
        ("-$1,234.50", -1234.5),
        ("$-5", -5.0),
        ("(1,234.50)", -1234.5),
        ("USD 12", 12.0),
        ("12 EUR", 12.0),
        ("€1.234,50", 1234.5),
        ("1 234,50", 1234.5),
        ("3,5", 3.5),
        ("1,234", 1234.0),
        ("1.234.567", 1234567.0),
        ("12%", 12.0),
        ("+7", 7.0),
        (42, 42.0),
    ],
)
def test_parse_number(text: Any, number: float) -> None:
    assert parse_number(text) == number


@pytest.mark.parametrize("text", ["", "abc", "1,2,3", "--5", "$", True, None, "1.2.3"])
def test_parse_number_refuses_what_is_not_a_number(text: Any) -> None:
    assert parse_number(text) is None


@given(st.floats(min_value=-1e12, max_value=1e12, allow_nan=False), st.sampled_from(["", "$", "€"]))
def test_parse_number_reads_formatted_amounts(amount: float, symbol: str) -> None:
    rounded = round(amount, 2)
    text = f"{'-' if rounded < 0 else ''}{symbol}{abs(rounded):,.2f}"
    assert parse_number(text) == pytest.approx(rounded, abs=0.005)


@pytest.mark.parametrize(
    ("text", "order", "iso"),
    [
        ("2024-03-05", None, "2024-03-05"),
        ("2024-03-05T10:30:00Z", None, "2024-03-05"),
        ("2024/3/5", None, "2024-03-05"),
        ("March 5, 2024", None, "2024-03-05"),
        ("Mar 5th 2024", None, "2024-03-05"),
        ("5 March 2024", None, "2024-03-05"),
        ("Tuesday, 5th of March, 2024", None, "2024-03-05"),
        ("Sept. 30, 2024", None, "2024-09-30"),
        ("05/03/2024", None, None),
        ("05/03/2024", "dmy", "2024-03-05"),
        ("05/03/2024", "mdy", "2024-05-03"),
        ("31.12.2024", "dmy", "2024-12-31"),
        ("February 30, 2024", None, None),
        ("Smarch 5, 2024", None, None),
    ],
)
def test_parse_date(text: str, order: str | None, iso: str | None) -> None:
    assert parse_date(text, order) == iso


def test_same_value_applies_normalizers_to_both_sides() -> None:
    assert same_value("05/03/2024", "March 5, 2024", ["date-dmy"])
    assert same_value("05/03/2024", "May 3, 2024", ["date-mdy"])
    assert not same_value("05/03/2024", "March 5, 2024", ["date"])
    assert same_value("ACME", "acme", ["casefold"])
    assert not same_value(True, 1)


# Where a failed check found something wrong, for the HTML report to show beside the field


def test_fields_say_where_each_wrong_field_is() -> None:
    reply = '{"vendor": "ACME", "lines": [{"sku": "a/1", "qty": 2}], "total": 41}'
    result = run(
        {"type": "fields", "value": {"vendor": "ACME", "total": 42, "lines.0.qty": 3, "currency": "EUR"}},
        reply,
    )
    assert not result.passed
    assert result.at == (
        ("/total", "total: expected 42, got 41"),
        ("/lines/0/qty", "lines.0.qty: expected 3, got 2"),
        ("/currency", "currency: expected 'EUR', missing"),
    )


def test_a_literal_dotted_key_and_pointer_escapes() -> None:
    reply = '{"a.b": 1, "x/y": {"m~n": 5}}'
    result = run({"type": "fields", "value": {"a.b": 2, "x/y.m~n": 6}}, reply)
    assert result.at == (("/a.b", "a.b: expected 2, got 1"), ("/x~1y/m~0n", "x/y.m~n: expected 6, got 5"))


def test_json_path_says_where_for_a_definite_path_only() -> None:
    reply = '{"items": [{"price": 5}, {"price": 7}]}'
    wrong = run({"type": "json-path", "path": "$.items[-1].price", "equals": 8}, reply)
    assert wrong.at == (("/items/1/price", "$.items[-1].price equals 8: got 7"),)
    missing = run({"type": "json-path", "path": "$.items[5].price", "equals": 8}, reply)
    assert missing.at == (("/items/5/price", "$.items[5].price: nothing here"),)
    wildcard = run({"type": "json-path", "path": "$.items[*].price", "equals": 8}, reply)
    assert not wildcard.passed
    assert wildcard.at == ()


def test_passing_and_negated_checks_say_nowhere() -> None:
    reply = '{"total": 41}'
    assert run({"type": "fields", "value": {"total": 41}}, reply).at == ()
    # a threshold met with one field wrong passes: nothing to mark
    assert run({"type": "fields", "value": {"total": 40, "x": None}, "threshold": 0.0}, reply).at == ()
    negated = run({"type": "not-json-path", "path": "$.total", "equals": 42}, reply)
    assert negated.passed
    assert negated.at == ()


def test_where_survives_the_result_dict() -> None:
    result = run({"type": "fields", "value": {"total": 42}}, '{"total": 41}')
    data = result.to_dict()
    assert data["at"] == [{"pointer": "/total", "message": "total: expected 42, got 41"}]
    assert AssertionResult.from_dict(data) == result
    del data["at"]  # results written before locations were kept
    assert AssertionResult.from_dict(data).at == ()
