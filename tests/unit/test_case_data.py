"""file:// references and case data files (CSV in promptfoo's conventions, JSONL, JSON, YAML)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_llmgate.cases import parse_case_file
from pytest_llmgate.datafiles import FileRefError, load, load_rows, parse_expected
from pytest_llmgate.errors import CaseFileError


@pytest.mark.parametrize(
    ("text", "entry"),
    [
        ("contains: foo", {"type": "contains", "value": "foo"}),
        ("icontains-any: a, b,c", {"type": "icontains-any", "value": ["a", "b", "c"]}),
        ('contains-all: "x, y",z', {"type": "contains-all", "value": ["x, y", "z"]}),
        ("not-contains: secret", {"type": "not-contains", "value": "secret"}),
        ("is-json", {"type": "is-json"}),
        ("not-is-json", {"type": "not-is-json"}),
        ("similar(0.8): a cat", {"type": "similar", "value": "a cat", "threshold": 0.8}),
        ("grader: is polite", {"type": "llm-rubric", "value": "is polite"}),
        ("llm-rubric: is polite", {"type": "llm-rubric", "value": "is polite"}),
        ("max-length: 20", {"type": "max-length", "value": 20}),
        ("regex: ^\\d+$", {"type": "regex", "value": "^\\d+$"}),
        ("Paris", {"type": "equals", "value": "Paris"}),
        ("Paris: the capital", {"type": "equals", "value": "Paris: the capital"}),
        (
            "note: lowercase words are a reply",
            {"type": "equals", "value": "note: lowercase words are a reply"},
        ),
        ("file://checks.py:get_assert", {"type": "python", "value": "file://checks.py:get_assert"}),
        ("python: file://checks.py:ok", {"type": "python", "value": "file://checks.py:ok"}),
        ("icontains: {{ expected }}", {"type": "icontains", "value": "{{ expected }}"}),
    ],
)
def test_promptfoo_assertion_strings(text: str, entry: dict[str, object]) -> None:
    assert parse_expected(text) == entry


def test_an_empty_cell_is_no_assertion() -> None:
    assert parse_expected("  ") is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "javascript: output.length > 3",
            "JavaScript assertions are not supported; write the check in Python",
        ),
        ("fn: x => true", "JavaScript assertions are not supported"),
        ("file://check.js", "only Python files can be assertions"),
        ("latency: 500", "promptfoo's 'latency' assertion is not supported here"),
        ("python: output == 'x'", "inline Python expressions"),
        ("similar(high): x", "the threshold must be a number"),
    ],
)
def test_assertion_strings_that_cannot_run_here(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_expected(text)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_load_by_extension(tmp_path: Path) -> None:
    write(tmp_path / "a.txt", "{{ kept }}")
    write(tmp_path / "b.json", '{"x": [1]}')
    write(tmp_path / "c.yaml", "x: [1]\n")
    write(tmp_path / "d.j2", "Hi {{ name }}")
    write(tmp_path / "e.sql", "SELECT 1;")
    kinds = {
        name: load(f"file://{name}", tmp_path, tmp_path)
        for name in ("a.txt", "b.json", "c.yaml", "d.j2", "e.sql")
    }
    assert {name: (loaded.kind, loaded.value) for name, loaded in kinds.items()} == {
        "a.txt": ("text", "{{ kept }}"),
        "b.json": ("data", {"x": [1]}),
        "c.yaml": ("data", {"x": [1]}),
        "d.j2": ("template", "Hi {{ name }}"),
        "e.sql": ("text", "SELECT 1;"),
    }


def test_references_may_not_leave_the_root(tmp_path: Path) -> None:
    root = tmp_path / "project"
    write(tmp_path / "secret.txt", "x")
    write(root / "suite" / "ok.txt", "x")
    assert load("file://../suite/ok.txt", root / "suite", root).value == "x"
    with pytest.raises(FileRefError, match="outside the project root"):
        load("file://../../secret.txt", root / "suite", root)
    (root / "link.txt").symlink_to(tmp_path / "secret.txt")
    with pytest.raises(FileRefError, match="outside the project root"):
        load("file://link.txt", root, root)
    with pytest.raises(FileRefError, match="no such file"):
        load("file://nope.txt", root, root)


def test_csv_rows_follow_promptfoo(tmp_path: Path) -> None:
    write(
        tmp_path / "tests.csv",
        "question,__expected,__expected2,__description,__metadata:tags\n"
        'What is 2+2?,equals: 4,"icontains-any: four,4",Simple sum,"math, smoke"\n'
        "\n"
        "What is 2+2?,4,,Simple sum,\n"
        "Hello,,,,\n",
    )
    rows = load_rows("file://tests.csv", tmp_path, tmp_path)
    assert [(row.label, row.line, row.case["id"]) for row in rows] == [
        ("row 2", 2, "simple-sum"),
        ("row 4", 4, "simple-sum"),
        ("row 5", 5, "tests-5"),
    ]
    assert rows[0].case == {
        "id": "simple-sum",
        "description": "Simple sum",
        "tags": ["math", "smoke"],
        "vars": {"question": "What is 2+2?"},
        "assert": [{"type": "equals", "value": "4"}, {"type": "icontains-any", "value": ["four", "4"]}],
    }
    assert "assert" not in rows[2].case


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("q,__thresholds", "column '__thresholds' is not supported"),
        ("q,__metadata:category", "only __metadata:tags is read"),
        ("q,q", "column 'q' appears twice"),
        ("q,", "column 2 has no name"),
    ],
)
def test_csv_columns_that_would_be_misread_are_errors(tmp_path: Path, header: str, message: str) -> None:
    write(tmp_path / "t.csv", f"{header}\nx,y\n")
    with pytest.raises(FileRefError, match=message) as info:
        load_rows("file://t.csv", tmp_path, tmp_path)
    assert info.value.line == 1


def test_jsonl_and_yaml_rows_are_case_mappings(tmp_path: Path) -> None:
    write(tmp_path / "t.jsonl", json.dumps({"vars": {"q": "a"}, "description": "First one"}) + "\n\n"
          + json.dumps({"id": "given", "vars": {"q": "b"}}) + "\n")  # fmt: skip
    rows = load_rows("file://t.jsonl", tmp_path, tmp_path)
    assert [(row.case["id"], row.line, row.derived_id) for row in rows] == [
        ("first-one", 1, True),
        ("given", 3, False),
    ]
    write(tmp_path / "t.yaml", "- vars: {q: a}\n- id: x\n  vars: {q: b}\n")
    rows = load_rows("file://t.yaml", tmp_path, tmp_path)
    assert [(row.case["id"], row.line) for row in rows] == [("t-1", 1), ("x", 2)]


def test_cases_from_a_csv_file_in_a_case_file(tmp_path: Path) -> None:
    write(
        tmp_path / "data" / "tests.csv",
        "city,__expected,__description\nParis,icontains: {{ city }},Same\nRome,,Same\n",
    )
    text = """\
defaults:
  prompt: "Name the country of {{ city }}"
cases:
  - id: same
    prompt: inline case first
  - file://data/tests.csv
"""
    cases = parse_case_file(text, tmp_path / "llm_cities.yaml", tmp_path).cases
    assert [case.id for case in cases] == ["same", "same-2", "same-3"]
    assert cases[1].messages == ({"role": "user", "content": "Name the country of Paris"},)
    assert cases[1].assertions[0].value == "Paris"
    assert cases[1].path == tmp_path / "llm_cities.yaml"  # cassettes stay beside the case file's


def test_an_error_in_a_csv_row_names_the_data_file_and_row(tmp_path: Path) -> None:
    write(tmp_path / "tests.csv", "city,__expected\nParis,contains: x\nRome,icontains: {{ country }}\n")
    text = "defaults: {prompt: '{{ city }}'}\ncases: file://tests.csv\n"
    with pytest.raises(CaseFileError) as info:
        parse_case_file(text, tmp_path / "llm_x.yaml", tmp_path)
    error = info.value
    assert (error.path, error.line, error.case_id, error.field) == (
        tmp_path / "tests.csv",
        3,
        "tests-3",
        "assert[0].value",
    )
    assert error.message.startswith("row 3: 'country' is undefined (vars defined: city)")


def test_an_empty_data_file_is_an_error(tmp_path: Path) -> None:
    write(tmp_path / "t.jsonl", "\n")
    with pytest.raises(CaseFileError, match="holds no cases"):
        parse_case_file("defaults: {prompt: x}\ncases: [file://t.jsonl]\n", tmp_path / "llm_x.yaml", tmp_path)


def test_csv_threshold_and_metric_columns_follow_promptfoo(tmp_path: Path) -> None:
    """`__threshold` is the case's passing score; `__metric` names the row's assertions' metric
    (an assertion's own metric wins; the JSON/YAML row form can give one)."""
    write(
        tmp_path / "tests.csv",
        "q,__expected,__expected2,__threshold,__metric\n"
        "a,icontains: x,equals: y,0.5,Accuracy\n"
        "b,icontains: x,,,\n",
    )
    rows = load_rows("file://tests.csv", tmp_path, tmp_path)
    assert rows[0].case["threshold"] == 0.5
    assert [entry["metric"] for entry in rows[0].case["assert"]] == ["Accuracy", "Accuracy"]
    assert "threshold" not in rows[1].case
    assert "metric" not in rows[1].case["assert"][0]
    for bad in ("high", "1.5", "-0.1", "nan"):
        write(tmp_path / "bad.csv", f"q,__expected,__threshold\na,icontains: x,{bad}\n")
        with pytest.raises(
            FileRefError, match=f"row 2, column __threshold: '{bad}' is not a score from 0 to 1"
        ):
            load_rows("file://bad.csv", tmp_path, tmp_path)


def test_a_csv_rows_threshold_and_metric_reach_its_case(tmp_path: Path) -> None:
    write(tmp_path / "tests.csv", "city,__expected,__threshold,__metric\nParis,icontains: paris,0.75,Geo\n")
    text = "defaults: {prompt: 'Capital: {{ city }}'}\ncases: file://tests.csv\n"
    [case] = parse_case_file(text, tmp_path / "llm_geo.yaml", tmp_path).cases
    assert case.threshold == 0.75
    assert [spec.metric for spec in case.assertions] == ["Geo"]
