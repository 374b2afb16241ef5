"""Case files: the documented format parses, and every mistake names file, line, case and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_llmgate.budgets import Budgets
from pytest_llmgate.cases import parse_case_file
from pytest_llmgate.errors import CaseFileError

ISSUE_EXAMPLE = """\
baseline: gpt-4o
defaults:
  system: You extract invoice fields. Reply with JSON only.
  params: {temperature: 0, max_tokens: 300}
  tags: [extraction]
  budgets: {latency_ms: 2000, output_tokens: 300}
cases:
  - id: acme-total
    prompt: "Invoice from ACME Corp. Total due: $1,234.50"
    vars: {}
    assert:
      - type: is-json
      - type: contains
        value: ACME
      - type: regex
        value: "1,?234\\\\.5"
        weight: 2
    overrides:
      gpt-5.5: {system: "Reply with compact JSON only. No prose."}
"""


def parse(text: str) -> object:
    return parse_case_file(text, Path("tests/llm/llm_invoices.yaml"))


def error_of(text: str) -> CaseFileError:
    with pytest.raises(CaseFileError) as excinfo:
        parse(text)
    return excinfo.value


def test_issue_example_parses_into_one_case() -> None:
    case_file = parse_case_file(ISSUE_EXAMPLE, Path("llm_invoices.yaml"))
    assert case_file.baseline == "gpt-4o"
    (case,) = case_file.cases
    assert case.id == "acme-total"
    assert case.line == 8
    assert case.tags == ("extraction",)
    assert case.budgets == Budgets(latency_ms=2000.0, output_tokens=300.0)
    assert [spec.type for spec in case.assertions] == ["is-json", "contains", "regex"]
    assert case.assertions[2].weight == 2.0


def test_request_for_applies_the_models_override_only_to_that_model() -> None:
    (case,) = parse_case_file(ISSUE_EXAMPLE, Path("llm_invoices.yaml")).cases
    baseline = case.request_for("gpt-4o")
    candidate = case.request_for("gpt-5.5")
    assert baseline == {
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "You extract invoice fields. Reply with JSON only."},
            {"role": "user", "content": "Invoice from ACME Corp. Total due: $1,234.50"},
        ],
        "temperature": 0,
        "max_tokens": 300,
    }
    assert candidate["model"] == "gpt-5.5"
    assert candidate["messages"][0] == {
        "role": "system",
        "content": "Reply with compact JSON only. No prose.",
    }
    assert candidate["messages"][1] == baseline["messages"][1]


def test_defaults_merge_mappings_key_by_key_and_add_tags_and_assertions() -> None:
    case_file = parse(
        """\
defaults:
  params: {temperature: 0, max_tokens: 100}
  tags: [extraction]
  assert: [{type: contains, value: a}]
cases:
  - id: one
    prompt: hi
    params: {max_tokens: 5}
    tags: [critical_path, extraction]
    assert: [{type: contains, value: b}]
"""
    )
    (case,) = case_file.cases  # type: ignore[attr-defined]
    assert case.params == {"temperature": 0, "max_tokens": 5}
    assert case.tags == ("extraction", "critical_path")
    assert [spec.value for spec in case.assertions] == ["a", "b"]


def test_vars_are_substituted_in_system_prompt_and_messages() -> None:
    case_file = parse(
        """\
defaults:
  system: "You work for {{company}}."
cases:
  - id: chat
    vars: {company: ACME, n: 3}
    messages:
      - {role: user, content: "List {{ n }} products of {{company}}"}
"""
    )
    (case,) = case_file.cases  # type: ignore[attr-defined]
    assert case.request_for("m")["messages"] == [
        {"role": "system", "content": "You work for ACME."},
        {"role": "user", "content": "List 3 products of ACME"},
    ]


def test_unknown_case_key_names_file_line_case_key_and_suggestion() -> None:
    error = error_of(
        """\
cases:
  - id: ok
    prompt: hi
  - id: typo
    prompt: hi
    asert: [{type: contains, value: x}]
"""
    )
    text = str(error)
    assert text.startswith("tests/llm/llm_invoices.yaml:4: case 'typo': field 'asert': unknown key 'asert'")
    assert "(did you mean 'assert'?)" in text


def test_unknown_top_level_key_is_an_error() -> None:
    error = error_of("baseline: gpt-4o\ncasses:\n  - id: a\n    prompt: hi\n")
    assert error.field == "casses"
    assert "did you mean 'cases'?" in str(error)


def test_unknown_key_in_an_override_is_an_error() -> None:
    error = error_of(
        """\
cases:
  - id: a
    prompt: hi
    overrides:
      gpt-5.5: {sytem: be brief}
"""
    )
    assert error.case_id == "a"
    assert error.field == "overrides.gpt-5.5.sytem"
    assert "did you mean 'system'?" in str(error)


def test_unknown_assertion_type_is_a_collection_error_naming_the_field() -> None:
    error = error_of(
        """\
cases:
  - id: a
    prompt: hi
    assert:
      - type: contains
        value: x
      - type: contians
        value: y
"""
    )
    assert error.case_id == "a"
    assert error.field == "assert[1].type"
    assert error.line == 7
    assert "unknown assertion type 'contians'" in str(error)


def test_regex_that_does_not_compile_is_a_collection_error() -> None:
    error = error_of("cases:\n  - id: a\n    prompt: hi\n    assert: [{type: regex, value: '(unclosed'}]\n")
    assert error.field == "assert[0].value"


@pytest.mark.parametrize(
    ("text", "field", "fragment"),
    [
        ("cases:\n  - id: a\n", "prompt", "exactly one of 'prompt'"),
        (
            "cases:\n  - id: a\n    prompt: x\n    messages: [{role: user, content: y}]\n",
            "prompt",
            "exactly one",
        ),
        ("cases:\n  - id: a\n    prompt: 'hi {{name}}'\n", "vars", "uses {{name}} but vars has no 'name'"),
        ("cases:\n  - id: a\n    prompt: hi\n    tags: [has space]\n", "tags", "identifiers"),
        (
            "cases:\n  - id: a\n    prompt: hi\n    budgets: {latency: 5}\n",
            "budgets.latency",
            "unknown budget",
        ),
        (
            "cases:\n  - id: a\n    prompt: hi\n    budgets: {latency_ms: -1}\n",
            "budgets.latency_ms",
            "positive",
        ),
        ("cases:\n  - id: a\n    prompt: hi\n    params: {model: x}\n", "params", "may not set 'model'"),
        ("cases:\n  - id: a\n    messages: [{role: robot, content: y}]\n", "messages", "role 'robot'"),
        ("cases:\n  - id: a\n    prompt: hi\n    tools: [{type: function}]\n", "tools", "tools[0]"),
        ("cases:\n  - id: 'has space'\n    prompt: hi\n", "id", "letters, digits"),
    ],
)
def test_case_mistakes_name_the_field(text: str, field: str, fragment: str) -> None:
    error = error_of(text)
    assert error.field == field
    assert fragment in str(error)


def test_duplicate_case_ids_point_at_the_first_definition() -> None:
    error = error_of("cases:\n  - id: a\n    prompt: x\n  - id: a\n    prompt: y\n")
    assert error.line == 4
    assert "first defined on line 2" in str(error)


def test_duplicate_yaml_keys_are_refused_with_their_line() -> None:
    error = error_of("cases:\n  - id: a\n    prompt: x\n    prompt: y\n")
    assert error.line == 4
    assert "duplicate key 'prompt'" in str(error)


def test_invalid_yaml_gives_the_line() -> None:
    error = error_of("cases:\n  - id: a\n    prompt: [unclosed\n")
    assert error.line is not None
    assert "invalid YAML" in str(error)


@pytest.mark.parametrize("text", ["", "cases: []\n", "- just a list\n", "baseline: gpt-4o\n"])
def test_files_without_cases_explain_the_format(text: str) -> None:
    error = error_of(text)
    assert "cases" in str(error)


def test_yaml_tags_that_build_python_objects_are_refused() -> None:
    error = error_of("cases:\n  - id: a\n    prompt: !!python/object/apply:os.system ['echo pwned']\n")
    assert "invalid YAML" in str(error)
