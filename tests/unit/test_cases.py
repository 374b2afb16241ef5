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
    # The line of the misspelt key (6), not the case's `- id:` line (4).
    assert text.startswith("tests/llm/llm_invoices.yaml:6: case 'typo': field 'asert': unknown key 'asert'")
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
        (
            "cases:\n  - id: a\n    prompt: 'hi {{name}}'\n",
            "prompt",
            "'name' is undefined (vars defined: none",
        ),
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


def test_a_case_id_with_a_trailing_newline_is_refused() -> None:
    # `id: "greet\n"` once passed a `$`-anchored pattern, naming an item and a folder with a newline
    error = error_of('cases:\n  - id: "greet\\n"\n    prompt: x\n')
    assert error.field == "id"
    assert error.line == 2
    assert "'greet\\n'" in str(error)


def test_a_case_id_too_long_for_a_folder_name_is_refused_at_collection() -> None:
    assert parse(f"cases:\n  - id: {'a' * 255}\n    prompt: x\n")  # the longest name a file system takes
    error = error_of(f"cases:\n  - id: {'a' * 256}\n    prompt: x\n")
    assert error.field == "id"
    assert "256 characters; at most 255" in str(error)


def test_merge_keys_are_overridden_by_the_mappings_own_keys() -> None:
    text = """\
cases:
  - &base
    id: base
    prompt: Say hi
    params: &params {temperature: 0, max_tokens: 50}
    tags: [smoke]
  - <<: *base
    id: derived
    params:
      <<: *params
      temperature: 1
"""
    base, derived = parse_case_file(text, Path("llm_merge.yaml")).cases
    assert derived.id == "derived"
    assert dict(derived.params) == {"temperature": 1, "max_tokens": 50}
    assert derived.tags == base.tags == ("smoke",)
    assert derived.messages == base.messages


def test_several_merged_mappings_the_first_wins_and_own_keys_win_over_all() -> None:
    text = """\
cases:
  - id: a
    prompt: x
    params:
      <<: [{temperature: 0, seed: 1}, {temperature: 1, top_p: 0.5}]
      seed: 7
"""
    (case,) = parse_case_file(text, Path("llm_merge.yaml")).cases
    assert dict(case.params) == {"temperature": 0, "top_p": 0.5, "seed": 7}


def test_a_key_given_twice_beside_a_merge_is_still_a_duplicate() -> None:
    error = error_of(
        "defaults: {params: &p {temperature: 0}}\n"
        "cases:\n  - id: a\n    prompt: x\n    params:\n      <<: *p\n      seed: 1\n      seed: 2\n"
    )
    assert error.line == 8
    assert "duplicate key 'seed'" in str(error)


def test_a_recursive_alias_is_a_clear_error() -> None:
    error = error_of("cases:\n  - id: a\n    prompt: x\n    vars: &v {self: *v}\n")
    assert "refers to a node that contains it" in str(error)


# --- templates, file:// references, prompts: matrix, full defaults ------------------------------


def in_project(tmp_path: Path, text: str, **files: str) -> list[object]:
    """The cases of `text` as tmp_path/llm_x.yaml, with `files` (name -> content) beside it."""
    for name, content in files.items():
        path = tmp_path / name.replace("__", "/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
    return list(parse_case_file(text, tmp_path / "llm_x.yaml", tmp_path).cases)


def test_prompts_matrix_runs_every_case_with_every_prompt(tmp_path: Path) -> None:
    text = """\
prompts:
  - "Q: {{ q }}"
  - file://prompts/Brief.txt
  - {id: chat, messages: [{role: user, content: "{{ q | upper }}"}]}
cases:
  - {id: one, vars: {q: hi}}
  - {id: own, prompt: "mine {{ q }}", vars: {q: yo}}
"""
    cases = in_project(tmp_path, text, **{"prompts__Brief.txt": "Briefly: {{ q }}"})
    assert [(case.id, case.messages[-1]["content"]) for case in cases] == [  # type: ignore[attr-defined]
        ("one[prompt-1]", "Q: hi"),
        ("one[brief]", "Briefly: hi"),
        ("one[chat]", "HI"),
        ("own", "mine yo"),
    ]


@pytest.mark.parametrize(
    ("prompts", "message"),
    [
        ("[{id: a, prompt: x}, {id: a, prompt: y}]", "two prompts get the id 'a'"),
        ("[{id: 'a b', prompt: x}]", "needs an 'id' of letters"),
        ("[{id: a}]", "needs exactly one of 'prompt' or 'messages'"),
        ("[{id: a, prompt: x, label: y}]", "unknown key in prompts[0] 'label'"),
        ("[]", "prompts must be a non-empty list"),
    ],
)
def test_prompts_mistakes(prompts: str, message: str) -> None:
    error = error_of(f"prompts: {prompts}\ncases: [{{id: c}}]\n")
    assert message in error.message
    assert error.field == ("label" if "label" in message else "prompts")


def test_prompts_and_a_default_prompt_do_not_mix() -> None:
    error = error_of("prompts: [x]\ndefaults: {prompt: y}\ncases: [{id: c}]\n")
    assert "not both" in error.message


def test_a_case_without_any_prompt_says_where_one_can_come_from() -> None:
    assert "or a file-level prompts: list" in error_of("cases: [{id: c}]\n").message


def test_defaults_carry_prompt_overrides_and_assertions_appended_after() -> None:
    text = """\
defaults:
  prompt: "Hello {{ name }}"
  overrides:
    gpt-5.5: {params: {temperature: 0}, system: "Be brief"}
  assert: [{type: contains, value: "{{ name }}"}]
cases:
  - id: a
    vars: {name: Ada}
    overrides:
      gpt-5.5: {params: {seed: 1}}
    assert: [{type: icontains, value: hello}]
"""
    (case,) = parse(text).cases  # type: ignore[attr-defined]
    assert case.messages == ({"role": "user", "content": "Hello Ada"},)
    assert [spec.type for spec in case.assertions] == ["contains", "icontains"]
    assert case.assertions[0].value == "Ada"
    request = case.request_for("gpt-5.5")
    assert (request["seed"], request["temperature"]) == (1, 0)
    assert request["messages"][0] == {"role": "system", "content": "Be brief"}


def test_file_references_in_every_field(tmp_path: Path) -> None:
    schema = '{"type": "object", "properties": {"city": {"enum": ["{{ city }}"]}}}'
    tools = '[{"type": "function", "function": {"name": "find", "description": "Find {{ city }}"}}]'
    text = """\
cases:
  - id: a
    system: file://system.md
    messages: file://chat.yaml
    tools: file://tools.json
    vars:
      city: Paris
      notes: file://notes.txt
      letter: file://letter.j2
      cfg: file://cfg.yaml
    assert:
      - {type: is-json, value: file://schema.json}
      - {type: contains, value: file://expected.txt}
"""
    (case,) = in_project(
        tmp_path,
        text,
        **{
            "system.md": "You know {{ city }}.",
            "chat.yaml": "- role: user\n"
            "  content: 'Go to {{ city }}: {{ notes }} / {{ letter }} / {{ cfg.k }}'\n",
            "tools.json": tools,
            "notes.txt": "{{ not rendered }}",
            "letter.j2": "Dear {{ city }}",
            "cfg.yaml": "k: [1, 2]\n",
            "schema.json": schema,
            "expected.txt": "{{ city }}",
        },
    )
    assert case.messages == (  # type: ignore[attr-defined]
        {"role": "system", "content": "You know Paris."},
        {"role": "user", "content": "Go to Paris: {{ not rendered }} / Dear Paris / [1, 2]"},
    )
    assert case.tools[0]["function"]["description"] == "Find Paris"  # type: ignore[attr-defined]
    assert case.assertions[0].value["properties"]["city"]["enum"] == ["Paris"]  # type: ignore[attr-defined]
    assert case.assertions[1].value == "Paris"  # type: ignore[attr-defined]


def test_python_code_and_references_are_not_rendered(tmp_path: Path) -> None:
    checks = "def ok(output, context):\n    return True\n"
    text = """\
cases:
  - id: a
    prompt: hi
    assert:
      - {type: python, value: "file://checks.py:ok"}
      - type: python-tests
        value: |
          def test_braces():
              assert f"{{'{{'}}" == "{"
"""
    (case,) = in_project(tmp_path, text, **{"checks.py": checks})
    assert "{{'{{'}}" in case.assertions[1].value  # type: ignore[attr-defined]


def test_a_missing_file_names_case_and_field(tmp_path: Path) -> None:
    with pytest.raises(CaseFileError) as info:
        in_project(tmp_path, "cases:\n  - id: a\n    prompt: hi\n    vars: {x: file://gone.txt}\n")
    # The line of `vars:` (its value is a flow mapping on that line), not the `- id:` line (2).
    assert (info.value.line, info.value.case_id, info.value.field) == (4, "a", "vars.x")
    assert "no such file" in info.value.message


def test_a_matrix_id_too_long_for_a_folder_is_refused() -> None:
    long_id = "c" * 250
    error = error_of(f"prompts: [{{id: longer, prompt: x}}]\ncases: [{{id: {long_id}}}]\n")
    assert error.field == "id"
    assert "shorten the case or prompt id" in error.message


def test_a_whole_assert_list_from_a_file(tmp_path: Path) -> None:
    text = "cases:\n  - id: a\n    prompt: hi\n    vars: {w: hello}\n    assert: file://checks.yaml\n"
    (case,) = in_project(tmp_path, text, **{"checks.yaml": "- {type: icontains, value: '{{ w }}'}\n"})
    assert [(spec.type, spec.value) for spec in case.assertions] == [("icontains", "hello")]  # type: ignore[attr-defined]


def test_errors_point_at_the_offending_key_even_nested_and_in_flow_style() -> None:
    error = error_of(
        """\
cases:
  - id: nested
    prompt: hi
    overrides:
      gpt-5.5:
        params:
          temperature: hot
    repeat: 0
"""
    )
    assert (error.line, error.field) == (8, "repeat")
    error = error_of("cases:\n  - id: flow\n    prompt: hi\n\n    pass_rate: 7\n")
    assert (error.line, error.field) == (5, "pass_rate")


def test_a_misspelt_param_is_caught_at_collection_with_a_suggestion_and_its_line() -> None:
    error = error_of("cases:\n  - id: t\n    prompt: hi\n    params:\n      temprature: 0\n")
    assert (error.line, error.case_id, error.field) == (5, "t", "params.temprature")
    assert "unknown parameter 'temprature' (did you mean 'temperature'?)" in error.message
    assert "params: {extra_body: {temprature: ...}}" in error.message
    error = error_of(
        "cases:\n  - id: o\n    prompt: hi\n    overrides:\n      gpt-5.5:\n        params:\n"
        "          max_output_token: 5\n"
    )
    assert (error.line, error.field) == (7, "overrides.gpt-5.5.params.max_output_token")
    assert "(did you mean 'max_output_tokens'?)" in error.message


def test_params_of_both_wire_formats_and_vendor_fields_in_extra_body_are_accepted() -> None:
    text = (
        "baseline: gpt-4o\ncases:\n  - id: ok\n    prompt: hi\n    params:\n"
        "      max_output_tokens: 5\n      reasoning: {effort: low}\n      seed: 1\n"
        "      extra_body: {top_k: 5}\n"
    )
    case = parse_case_file(text, Path("llm_x.yaml")).cases[0]
    assert case.params["extra_body"] == {"top_k": 5}


# --- assertion specs shared between cases -------------------------------------------------------


def test_cases_with_the_same_assertion_entry_share_one_spec_equal_to_a_fresh_parse() -> None:
    from pytest_llmgate.assertions import parse_assertion

    text = "cases:\n" + "".join(
        f"  - id: c{n}\n    prompt: x\n    assert:\n"
        "      - {type: icontains, value: acme}\n      - {type: regex, value: 'a+b', weight: 2}\n"
        for n in range(3)
    )
    path = Path("tests/llm/llm_x.yaml")
    first, *others = parse_case_file(text, path).cases
    for other in others:
        assert all(mine is theirs for mine, theirs in zip(first.assertions, other.assertions, strict=True))
    assert first.assertions == (
        parse_assertion({"type": "icontains", "value": "acme"}, base_dir=path.parent),
        parse_assertion({"type": "regex", "value": "a+b", "weight": 2}, base_dir=path.parent),
    )


def test_equal_values_of_different_types_are_not_one_assertion() -> None:
    # 1, 1.0 and true are equal (and hash alike) in Python, but compare replies with different text.
    text = "cases:\n" + "".join(
        f"  - id: c{n}\n    prompt: x\n    assert: [{{type: equals, value: {value}}}]\n"
        for n, value in enumerate(["1", "1.0", "true", "'1'"])
    )
    prepared = [case.assertions[0].prepared for case in parse_case_file(text, Path("llm_x.yaml")).cases]
    assert prepared == ["1", "1.0", "true", "1"]


def test_an_entry_rendered_with_each_cases_vars_is_its_own_assertion() -> None:
    text = (
        "defaults:\n  assert: [{type: icontains, value: '{{who}}'}]\n"
        "cases:\n  - id: a\n    prompt: x\n    vars: {who: ann}\n"
        "  - id: b\n    prompt: x\n    vars: {who: bob}\n"
    )
    a, b = parse_case_file(text, Path("llm_x.yaml")).cases
    assert (a.assertions[0].value, b.assertions[0].value) == ("ann", "bob")


def test_an_invalid_entry_is_reported_for_the_case_it_is_in_however_often_it_repeats() -> None:
    text = "cases:\n" + "".join(
        f"  - id: c{n}\n    prompt: x\n    assert: [{{type: regex, value: {value}}}]\n"
        for n, value in enumerate(["ok", "ok", "'('"])
    )
    error = error_of(text)
    assert (error.case_id, error.line, error.field) == ("c2", 10, "assert[0].value")


@pytest.mark.parametrize(
    ("entry", "shared"),
    [
        ({"type": "icontains", "value": "acme", "weight": 2, "metric": None}, True),
        ({"type": "icontains", "value": "{{who}}"}, False),  # rendered with each case's vars
        ({"type": "llm-rubric", "value": "file://rubric.txt"}, False),  # read from a file
        ({"type": "python", "value": "checks.py:ok"}, False),  # loads a module per entry
        ({"type": "not-python", "value": "checks.py:ok"}, False),
        ({"type": "python-tests", "value": "def test_x(): pass"}, False),
        ({"type": "contains-any", "value": ["a", "b"]}, False),  # a list may be changed
        ({"type": "fields", "value": {"a": 1}}, False),
        ({"type": 3}, False),
        ({1: "x", "type": "equals"}, False),
        ("icontains: acme", False),
    ],
)
def test_which_entries_may_share_a_spec(entry: object, shared: bool) -> None:
    from pytest_llmgate.cases import _spec_key

    assert (_spec_key(entry) is not None) == shared
