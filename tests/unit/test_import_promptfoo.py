"""`llmgate import promptfoo` as a function: each promptfoo construct, what it becomes, and every
part that cannot be converted listed and left as a comment at its place (never dropped)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_llmgate.assertions.base import COMMON_FIELDS
from pytest_llmgate.cases import CaseFile, parse_case_file
from pytest_llmgate.config import ProjectConfig
from pytest_llmgate.importers.promptfoo import PromptfooOptions, convert_suite, import_promptfoo

# Assembled at run time so that secret scanners of the repository do not flag this fake.
FAKE_KEY = "-".join(("sk", "proj", "PROMPTFOOFAKEKEY0123456789abcdef"))


def write_suite(tmp_path: Path, config: str, **files: str) -> Path:
    for name, text in files.items():
        stem, suffix = name.replace("__", "/").rsplit("_", 1)  # data__t_csv: data/t.csv
        path = tmp_path / "evals" / f"{stem}.{suffix}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    config_path = tmp_path / "evals" / "promptfooconfig.yaml"
    config_path.parent.mkdir(parents=True, exist_ok=True)
    config_path.write_text(textwrap.dedent(config))
    return config_path


def convert(tmp_path: Path, config: str, **files: str) -> tuple[str, CaseFile, list[str]]:
    """The case file's text, the case file as pytest would collect it, and the summary lines."""
    path = write_suite(tmp_path, config, **files)
    written, report = convert_suite(PromptfooOptions(path, tmp_path / "tests" / "llm"))
    output = tmp_path / "tests" / "llm" / "llm_promptfoo.yaml"
    text = written[output]
    output.parent.mkdir(parents=True)  # as writing does: paths like ../../evals/x.py go through it
    return text, parse_case_file(text, output, tmp_path), [str(item) for item in report.not_converted]


def document(text: str) -> Any:
    return yaml.safe_load(text)


SIMPLE = """
prompts: ["Q: {{ q }}"]
providers: [openai:gpt-4o]
tests:
  - vars: {q: hi}
    assert: [ASSERT]
"""


def with_assert(entry: dict[str, Any]) -> str:
    return SIMPLE.replace("ASSERT", json.dumps(entry))


def test_one_prompt_becomes_the_defaults_prompt_and_the_first_provider_the_baseline(tmp_path: Path) -> None:
    text, case_file, notes = convert(tmp_path, with_assert({"type": "icontains", "value": "hi"}))
    assert notes == []
    assert case_file.baseline == "gpt-4o"
    assert [case.id for case in case_file.cases] == ["test-1"]
    assert case_file.cases[0].messages == ({"role": "user", "content": "Q: hi"},)
    assert document(text)["defaults"]["prompt"] == "Q: {{ q }}"


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ({"type": "is-refusal"}, {"type": "refusal"}),
        (
            {"type": "not-contains", "value": "sorry", "weight": 3},
            {"type": "not-contains", "value": "sorry", "weight": 3},
        ),
        (
            {"type": "similar", "value": "hi", "threshold": 0.8},
            {"type": "similar", "value": "hi", "threshold": 0.8},
        ),
        ({"type": "word-count", "value": {"min": 1, "max": 9}}, {"type": "word-count", "min": 1, "max": 9}),
        ({"type": "llm-rubric", "value": "is polite"}, {"type": "llm-rubric", "value": "is polite"}),
        ({"type": "model-graded-factuality", "value": "hi"}, {"type": "factuality", "value": "hi"}),
    ],
)
def test_assertion_kinds_map_to_ours(tmp_path: Path, entry: dict[str, Any], expected: dict[str, Any]) -> None:
    text, case_file, _notes = convert(tmp_path, with_assert(entry))
    assert document(text)["cases"][0]["assert"] == [expected]
    assert case_file.cases[0].assertions[0].type == expected["type"]


def test_latency_and_cost_become_budgets(tmp_path: Path) -> None:
    config = SIMPLE.replace(
        "[ASSERT]",
        "[{type: latency, threshold: 800}, {type: cost, threshold: 0.002}, {type: latency, threshold: 500}]",
    )
    text, case_file, notes = convert(tmp_path, config)
    assert case_file.cases[0].budgets.latency_ms == 500
    assert case_file.cases[0].budgets.cost_usd == 0.002
    assert "# latency 800: converted to budgets.latency_ms" in text
    assert notes == []


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ({"type": "javascript", "value": "output.length < 9"}, "JavaScript does not run here"),
        ({"type": "contains", "value": "x", "transform": "output.trim()"}, "its transform changes the text"),
        ({"type": "rouge-n", "value": "hi"}, "no such assertion kind here"),
        ({"type": "python", "value": "output == 'hi'"}, "inline Python expressions are not supported"),
        ({"type": "javascript", "value": "file://check.js"}, "JavaScript does not run here"),
    ],
)
def test_what_cannot_be_converted_is_listed_and_commented_at_its_place(
    tmp_path: Path, entry: dict[str, Any], reason: str
) -> None:
    config = SIMPLE.replace("[ASSERT]", f"[{{type: icontains, value: hi}}, {json.dumps(entry)}]")
    text, case_file, notes = convert(tmp_path, config)
    assert len(notes) == 1
    assert notes[0].startswith(f"tests[0].assert[1]: {entry['type']}")
    assert reason in notes[0]
    lines = text.splitlines()
    at = lines.index("      - type: icontains")
    assert lines[at + 2].startswith(f"      # not converted: {entry['type']}")
    assert reason in lines[at + 2]
    assert [spec.type for spec in case_file.cases[0].assertions] == ["icontains"]


def test_metric_and_test_threshold_are_kept_where_the_case_file_has_them(tmp_path: Path) -> None:
    config = SIMPLE.replace(
        "[ASSERT]", "[{type: icontains, value: hi, metric: politeness}]\n    threshold: 0.5"
    )
    text, _, notes = convert(tmp_path, config)
    case = document(text)["cases"][0]
    if "metric" in COMMON_FIELDS:
        assert case["assert"][0]["metric"] == "politeness"
    else:
        assert any("metric: politeness" in note for note in notes)
    assert case.get("threshold") == 0.5 or any("threshold: 0.5" in note for note in notes)


def test_python_assertion_file_is_rebased_to_the_case_file(tmp_path: Path) -> None:
    checks = "def get_assert(output, context):\n    return True\n"
    config = SIMPLE.replace("[ASSERT]", "[{type: python, value: 'file://checks/ok.py'}]")
    text, _case_file, notes = convert(tmp_path, config, checks__ok_py=checks)
    assert document(text)["cases"][0]["assert"] == [
        {"type": "python", "value": "file://../../evals/checks/ok.py"}
    ]
    assert notes == []


def test_an_assertion_that_would_not_collect_is_commented_out_with_the_collection_error(
    tmp_path: Path,
) -> None:
    config = SIMPLE.replace("[ASSERT]", "[{type: regex, value: '(unclosed'}, {type: contains, value: hi}]")
    text, case_file, notes = convert(tmp_path, config)
    assert [spec.type for spec in case_file.cases[0].assertions] == ["contains"]
    assert len(notes) == 1
    assert "it would not collect" in notes[0]
    assert "regex" in notes[0]
    assert "# not converted: " in text


def test_a_case_that_would_not_collect_is_commented_out_and_the_rest_kept(tmp_path: Path) -> None:
    config = """
    prompts: ["Q: {{ q }}"]
    providers: [openai:gpt-4o]
    tests:
      - description: fine
        vars: {q: hi}
      - description: no var
        vars: {other: x}
    """
    text, case_file, notes = convert(tmp_path, config)
    assert [case.id for case in case_file.cases] == ["fine"]
    assert len(notes) == 1
    assert notes[0].startswith("tests[1]: case no-var (it would not collect:")
    assert "  # not converted: case no-var (it would not collect:" in text


def test_two_prompts_make_a_matrix_with_labels_files_and_chat_json(tmp_path: Path) -> None:
    config = """
    prompts:
      - file://prompts/brief.txt
      - {id: "Say {{ q }}", label: Loud Voice}
      - '[{"role": "system", "content": "Be short."}, {"role": "user", "content": "{{ q }}"}]'
    providers: [openai:gpt-4o]
    tests: [{vars: {q: hi}}]
    """
    text, case_file, _notes = convert(tmp_path, config, prompts__brief_txt="Brief: {{ q }}")
    assert [case.id for case in case_file.cases] == [
        "test-1[brief]",
        "test-1[loud-voice]",
        "test-1[prompt-3]",
    ]
    assert case_file.cases[2].messages == (
        {"role": "system", "content": "Be short."},
        {"role": "user", "content": "hi"},
    )
    assert document(text)["prompts"][0] == "file://../../evals/prompts/brief.txt"


def test_a_prompt_file_with_separators_holds_several_prompts(tmp_path: Path) -> None:
    config = "prompts: [file://p.txt]\nproviders: [openai:gpt-4o]\ntests: [{vars: {q: hi}}]\n"
    _, case_file, _ = convert(tmp_path, config, p_txt="One {{ q }}\n---\nTwo {{ q }}\n")
    assert [case.messages[0]["content"] for case in case_file.cases] == ["One hi", "Two hi"]


def test_list_valued_vars_expand_into_one_case_per_combination(tmp_path: Path) -> None:
    config = """
    prompts: ["{{ a }} {{ b }}"]
    providers: [openai:gpt-4o]
    tests: [{description: combo, vars: {a: [x, y], b: [1, 2]}}]
    """
    _, case_file, _ = convert(tmp_path, config)
    assert [case.messages[0]["content"] for case in case_file.cases] == ["x 1", "x 2", "y 1", "y 2"]
    assert len({case.id for case in case_file.cases}) == 4


def test_default_test_becomes_defaults_with_its_assertions_first(tmp_path: Path) -> None:
    config = """
    prompts: ["{{ greeting }} {{ q }}"]
    providers: [openai:gpt-4o]
    defaultTest:
      vars: {greeting: Hello}
      assert: [{type: not-icontains, value: sorry}]
      options: {transform: output.trim()}
    tests: [{vars: {q: there}, assert: [{type: contains, value: there}]}]
    """
    text, case_file, notes = convert(tmp_path, config)
    case = case_file.cases[0]
    assert case.messages[0]["content"] == "Hello there"
    assert [spec.type for spec in case.assertions] == ["not-icontains", "contains"]
    assert notes == [
        "defaultTest.options.transform: options.transform: output.trim() (a transform changes the text every "
        "assertion judges; port it into a python assertion)"
    ]
    assert "  # not converted: options.transform: output.trim()" in text


def test_a_promptfoo_csv_is_referenced_as_is(tmp_path: Path) -> None:
    csv_text = "q,__expected,__description\nhi,icontains: hi,Greets\nbye,contains: bye,\n"
    config = "prompts: ['{{ q }}']\nproviders: [openai:gpt-4o]\ntests: file://data/t.csv\n"
    text, case_file, notes = convert(tmp_path, config, data__t_csv=csv_text)
    assert document(text)["cases"] == ["file://../../evals/data/t.csv"]
    assert [case.id for case in case_file.cases] == ["greets", "t-3"]
    assert notes == []


def test_a_csv_the_loader_refuses_is_inlined_row_by_row_with_its_gaps_commented(tmp_path: Path) -> None:
    csv_text = (
        "q,__expected1,__expected2,__prefix\n"
        "hi,icontains: hi,javascript: output.length > 1,\n"
        "bye,contains: bye,,Say:\n"
    )
    config = "prompts: ['{{ q }}']\nproviders: [openai:gpt-4o]\ntests: [file://t.csv]\n"
    text, case_file, notes = convert(tmp_path, config, t_csv=csv_text)
    assert [case.id for case in case_file.cases] == ["t-2", "t-3"]
    assert [spec.type for spec in case_file.cases[0].assertions] == ["icontains"]
    assert notes[0].startswith("t.csv row 2.__expected2: javascript: output.length > 1 (")
    assert notes[1] == "t.csv row 3.__prefix: __prefix: Say: (no equivalent column here)"
    assert "# not converted: javascript: output.length > 1" in text


def test_json_and_yaml_test_files_are_inlined(tmp_path: Path) -> None:
    tests = [{"description": "From JSON", "vars": {"q": "a"}, "assert": [{"type": "is-refusal"}]}]
    config = "prompts: ['{{ q }}']\nproviders: [openai:gpt-4o]\ntests: [file://t.json, file://more.yaml]\n"
    _, case_file, _ = convert(
        tmp_path, config, t_json=json.dumps(tests), more_yaml="- vars: {q: b}\n  description: From YAML\n"
    )
    assert [case.id for case in case_file.cases] == ["from-json", "from-yaml"]
    assert case_file.cases[0].assertions[0].type == "refusal"


def test_openai_compatible_providers_become_targets(tmp_path: Path) -> None:
    config = f"""
    prompts: ["{{{{ q }}}}"]
    providers:
      - id: openai:chat:gpt-4o
        config:
          temperature: 0
          max_tokens: 50
          response_format: file://format.json
          tools: [{{type: function, function: {{name: lookup, parameters: {{type: object}}}}}}]
          apiKey: {FAKE_KEY}
          headers: {{Authorization: Bearer {FAKE_KEY}, x-team: search}}
      - openai:responses:gpt-5.5
      - id: azure:chat:gpt4o-prod
        config: {{apiHost: my-resource.openai.azure.com, apiVersion: "2024-06-01"}}
      - openrouter:openai/gpt-4o-mini
      - ollama:chat:llama3.1
      - id: openai:chat:my-model
        label: local vllm
        config: {{apiBaseUrl: "http://127.0.0.1:8000/v1", apiKeyEnvar: VLLM_KEY}}
      - anthropic:messages:claude-sonnet-4
    tests: [{{vars: {{q: hi}}}}]
    """
    text, case_file, notes = convert(tmp_path, config, format_json='{"type": "json_object"}')
    models = document(text)["models"]
    assert models == {
        "gpt-4o": {
            "headers": {"x-team": "search"},
            "params": {"temperature": 0, "max_tokens": 50, "response_format": {"type": "json_object"}},
        },
        "gpt-5.5": {"api": "responses"},
        "gpt4o-prod": {
            "api_key_env": "AZURE_API_KEY",
            "azure": {"deployment": "gpt4o-prod", "api_version": "2024-06-01"},
            "base_url": "https://my-resource.openai.azure.com",
        },
        "gpt-4o-mini": {
            "model": "openai/gpt-4o-mini",
            "base_url": "https://openrouter.ai/api/v1",
            "api_key_env": "OPENROUTER_API_KEY",
        },
        "llama3.1": {"base_url": "http://localhost:11434/v1"},
        "local-vllm": {
            "model": "my-model",
            "base_url": "http://127.0.0.1:8000/v1",
            "api_key_env": "VLLM_KEY",
        },
    }
    assert case_file.cases[0].tools[0]["function"]["name"] == "lookup"
    assert case_file.targets.resolve("gpt4o-prod").azure is not None
    assert FAKE_KEY not in text
    assert all(FAKE_KEY not in note for note in notes)
    assert any(
        note.startswith("providers[6]: anthropic:messages:claude-sonnet-4 (not an OpenAI-compatible")
        for note in notes
    )
    assert any("apiKey (value not shown)" in note for note in notes)
    assert any("header Authorization (value not shown)" in note for note in notes)
    assert "# not converted: anthropic:messages:claude-sonnet-4" in text


def test_candidate_tools_that_differ_become_an_override(tmp_path: Path) -> None:
    config = """
    prompts: ["{{ q }}"]
    providers:
      - openai:gpt-4o
      - id: openai:gpt-5.5
        config: {tools: [{type: function, function: {name: search, parameters: {type: object}}}]}
    tests: [{vars: {q: hi}}]
    """
    _, case_file, _ = convert(tmp_path, config)
    case = case_file.cases[0]
    assert case.request_for("gpt-4o").get("tools") is None
    assert case.request_for("gpt-5.5")["tools"][0]["function"]["name"] == "search"


def test_project_file_receives_the_targets(tmp_path: Path) -> None:
    path = write_suite(
        tmp_path,
        "prompts: ['{{ q }}']\nproviders: [openai:gpt-4o, openai:gpt-5.5]\ntests: [{vars: {q: a}}]\n",
    )
    project = tmp_path / "llmgate.yaml"
    report = import_promptfoo(PromptfooOptions(path, tmp_path / "tests" / "llm_x.yaml", project_file=project))
    assert report.error is None
    assert report.written == [tmp_path / "tests" / "llm_x.yaml", project]
    assert set(ProjectConfig.parse(project.read_text(), project).targets.declared) == {"gpt-4o", "gpt-5.5"}
    assert "models:" not in report.written[0].read_text()


def test_unreadable_configs_write_nothing(tmp_path: Path) -> None:
    missing = import_promptfoo(PromptfooOptions(tmp_path / "nope.yaml", tmp_path / "out"))
    assert missing.error == f"{tmp_path / 'nope.yaml'}: no such file; pass the suite's promptfooconfig.yaml"
    broken = write_suite(tmp_path, "prompts: [a\n")
    report = import_promptfoo(PromptfooOptions(broken, tmp_path / "out"))
    assert report.error is not None
    assert "not valid YAML" in report.error
    assert not (tmp_path / "out").exists()  # not even the folder


def test_a_suite_where_no_case_collects_is_an_error_and_nothing_is_written(tmp_path: Path) -> None:
    path = write_suite(
        tmp_path, "prompts: ['{{ q }}']\nproviders: [openai:gpt-4o]\ntests: [{vars: {x: 1}}]\n"
    )
    report = import_promptfoo(PromptfooOptions(path, tmp_path / "out"))
    assert report.error is not None
    assert report.error.startswith("the converted suite would not collect:")
    assert "'q' is undefined" in report.error
    assert report.error.endswith("nothing was written")
    assert not (tmp_path / "out").exists()


def test_csv_threshold_and_metric_columns_are_kept(tmp_path: Path) -> None:
    csv_text = "q,__expected,__threshold,__metric\nhi,icontains: hi,0.5,Greeting\n"
    config = "prompts: ['{{ q }}']\nproviders: [openai:gpt-4o]\ntests: file://t.csv\n"
    text, case_file, notes = convert(tmp_path, config, t_csv=csv_text)
    [reference] = document(text)["cases"]
    assert isinstance(reference, str)
    assert reference.startswith("file://")
    assert reference.endswith("t.csv")  # kept as a reference: the loader reads both columns
    [case] = case_file.cases
    assert case.threshold == 0.5
    assert [spec.metric for spec in case.assertions] == ["Greeting"]
    assert notes == []


def test_a_csv_with_a_bad_threshold_is_inlined_with_the_cell_noted(tmp_path: Path) -> None:
    # __metric before the assertion columns: it still names every assertion of its row
    csv_text = "q,__metric,__threshold,__expected\nhi,Greeting,high,icontains: hi\nbye,,0.25,contains: bye\n"
    config = "prompts: ['{{ q }}']\nproviders: [openai:gpt-4o]\ntests: [file://t.csv]\n"
    _, case_file, notes = convert(tmp_path, config, t_csv=csv_text)
    assert [case.threshold for case in case_file.cases] == [None, 0.25]
    assert [spec.metric for spec in case_file.cases[0].assertions] == ["Greeting"]
    assert notes == ["t.csv row 2.__threshold: __threshold: high (not a score from 0 to 1)"]
