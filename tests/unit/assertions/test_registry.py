"""The registry as a whole: every kind is there, documented, and every documented example parses."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_llmgate.assertions import REGISTRY, evaluate, load_kinds, parse_assertion, register
from pytest_llmgate.assertions.base import AssertionSpec, Verdict
from pytest_llmgate.reply import Reply

from .helpers import CONTEXT

README = Path(__file__).parents[3] / "README.md"
KINDS = {
    "equals",
    "contains",
    "icontains",
    "contains-any",
    "contains-all",
    "icontains-any",
    "icontains-all",
    "starts-with",
    "regex",
    "levenshtein",
    "similar",
    "word-count",
    "max-length",
    "is-json",
    "contains-json",
    "json-path",
    "fields",
    "python-compiles",
    "python-tests",
    "is-sql",
    "tool-call",
    "is-valid-openai-tools-call",
    "finish-reason",
    "refusal",
    "is-refusal",
    "python",
    "llm-rubric",
}


def test_every_kind_is_registered() -> None:
    load_kinds()
    assert set(REGISTRY) >= KINDS


def _documented_cases() -> list[dict[str, Any]]:
    text = README.read_text()
    section = text[text.index("\n## Assertions\n") : text.index("\n## The verdict of one case\n")]
    blocks = re.findall(r"```yaml\n(.*?)```", section, re.DOTALL)
    return [case for block in blocks for case in yaml.safe_load(block)["cases"]]


def test_every_kind_has_a_documented_example() -> None:
    documented = {
        entry["type"].removeprefix("not-") for case in _documented_cases() for entry in case["assert"]
    }
    assert KINDS - {"is-refusal"} <= documented


def test_every_documented_example_parses(tmp_path: Path) -> None:
    checks = tmp_path / "checks"
    checks.mkdir()
    (checks / "invoice.py").write_text("def total_matches(output, context):\n    return True\n")
    entries = [entry for case in _documented_cases() for entry in case["assert"]]
    assert len(entries) > 25
    for entry in entries:
        parse_assertion(entry, base_dir=tmp_path)


def test_a_crashing_check_fails_with_a_one_line_reason() -> None:
    def crash(spec: AssertionSpec, reply: Reply, context: object) -> Verdict:
        raise RuntimeError("line one\nline two")

    register("test-crash-kind")(crash)
    try:
        result = evaluate(parse_assertion({"type": "not-test-crash-kind"}), Reply(text="x"), CONTEXT)
    finally:
        del REGISTRY["test-crash-kind"]
    assert not result.passed
    assert result.reason == "not-test-crash-kind raised RuntimeError: line one line two"


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_unknown_keys_are_refused_by_every_kind(kind: str) -> None:
    with pytest.raises(Exception, match="unknown key 'colour'"):
        parse_assertion({"type": kind, "value": "x", "colour": "red"})


def test_parse_assertion_loads_a_kind_module_that_is_not_imported(monkeypatch: pytest.MonkeyPatch) -> None:
    # It skips load_kinds while every kind module is in sys.modules; one missing is imported again.
    import sys

    load_kinds()
    for name, kind in list(REGISTRY.items()):
        monkeypatch.setitem(REGISTRY, name, kind)  # restored afterwards, as the module is
    monkeypatch.delitem(sys.modules, "pytest_llmgate.assertions.text")
    spec = parse_assertion({"type": "contains", "value": "x"})
    assert "pytest_llmgate.assertions.text" in sys.modules
    assert spec.prepared == "x"
