"""Text kinds: pass, fail, the `not-` form, and configuration errors naming the field."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_llmgate.assertions import evaluate, parse_assertion
from pytest_llmgate.assertions.text import excerpt, fenced_blocks, levenshtein, similarity
from pytest_llmgate.reply import Reply

from .helpers import CONTEXT, config_error, run

REPLY = "Invoice from ACME Corp. Total due: $1,234.50"


@pytest.mark.parametrize(
    ("entry", "text"),
    [
        ({"type": "equals", "value": "Paris"}, "Paris"),
        ({"type": "equals", "value": 42}, "42"),
        ({"type": "equals", "value": {"a": [1, 2]}}, '{"a": [1, 2]}'),
        ({"type": "contains", "value": "ACME"}, REPLY),
        ({"type": "icontains", "value": "acme corp"}, REPLY),
        ({"type": "contains-any", "value": ["Globex", "ACME"]}, REPLY),
        ({"type": "contains-any", "value": "Globex, ACME"}, REPLY),
        ({"type": "contains-all", "value": ["ACME", "Total"]}, REPLY),
        ({"type": "icontains-any", "value": ["globex", "acme"]}, REPLY),
        ({"type": "icontains-all", "value": ["acme", "TOTAL DUE"]}, REPLY),
        ({"type": "starts-with", "value": "Invoice"}, REPLY),
        ({"type": "regex", "value": r"1,?234\.50"}, REPLY),
        ({"type": "levenshtein", "value": "kitten", "threshold": 3}, "sitting"),
        ({"type": "levenshtein", "value": "colour"}, "color"),
        ({"type": "similar", "value": "The capital of France is Paris."}, "the capital of france is paris"),
        ({"type": "similar", "value": ["nothing alike", "Paris is the capital"]}, "Paris is the capital!"),
        ({"type": "word-count", "min": 3, "max": 10}, REPLY),
        ({"type": "word-count", "value": 2}, "two words"),
        ({"type": "max-length", "value": 44}, REPLY),
    ],
)
def test_passes(entry: dict[str, Any], text: str) -> None:
    result = run(entry, text)
    assert result.passed, result.reason
    assert result.score > 0.9  # similar is graded, every other text kind is 1
    negated = run({**entry, "type": "not-" + entry["type"]}, text)
    assert not negated.passed
    assert negated.reason.startswith("not (")


@pytest.mark.parametrize(
    ("entry", "text", "reason"),
    [
        (
            {"type": "equals", "value": "Paris"},
            "Paris\n",
            "equals 'Paris': got \"Paris\\n\" (equal after trimming",
        ),
        ({"type": "equals", "value": {"a": 1}}, "not json", "the reply is not JSON"),
        (
            {"type": "contains", "value": "Globex"},
            REPLY,
            "contains 'Globex': not found in \"Invoice from ACME",
        ),
        ({"type": "icontains", "value": "globex"}, REPLY, "not found in"),
        ({"type": "contains-any", "value": ["Globex", "Initech"]}, REPLY, "none of ['Globex', 'Initech']"),
        ({"type": "contains-all", "value": ["ACME", "Globex"]}, REPLY, "missing ['Globex'] (1/2 found)"),
        ({"type": "icontains-all", "value": ["acme", "globex"]}, REPLY, "missing ['globex']"),
        ({"type": "icontains-any", "value": ["globex"]}, REPLY, "none of"),
        ({"type": "starts-with", "value": "Total"}, REPLY, 'the reply starts "Invoice from'),
        ({"type": "regex", "value": r"^\d+$"}, REPLY, "no match in"),
        ({"type": "levenshtein", "value": "completely different"}, "x", "distance > 5"),
        ({"type": "similar", "value": "The capital of France is Paris."}, "Bananas are yellow.", "< 0.75"),
        ({"type": "word-count", "max": 3}, REPLY, "7 words, expected [-, 3]"),
        ({"type": "word-count", "min": 10}, REPLY, "7 words, expected [10, -]"),
        ({"type": "max-length", "value": 10}, REPLY, "44 characters > 10"),
    ],
)
def test_fails_with_a_reason_quoting_the_reply(entry: dict[str, Any], text: str, reason: str) -> None:
    result = run(entry, text)
    assert not result.passed
    assert reason in result.reason
    assert "\n" not in result.reason
    assert run({**entry, "type": "not-" + entry["type"]}, text).passed


def test_contains_all_scores_the_fraction_found() -> None:
    result = run({"type": "contains-all", "value": ["ACME", "Total", "Globex", "Initech"]}, REPLY)
    assert result.score == 0.5
    assert (
        run({"type": "not-contains-all", "value": ["ACME", "Total", "Globex", "Initech"]}, REPLY).score == 0.5
    )


def test_similar_scores_the_similarity() -> None:
    result = run({"type": "similar", "value": "abcd", "threshold": 0.5}, "abcx")
    assert result.passed
    assert result.score == pytest.approx(0.75)


def test_the_excerpt_in_a_reason_is_cut_and_on_one_line() -> None:
    result = run({"type": "contains", "value": "zzz"}, "line one\nline two " + "x" * 200)
    assert '"line one\\nline two ' in result.reason
    assert result.reason.endswith('..."')
    assert len(result.reason) < 140


@pytest.mark.parametrize(
    ("entry", "field", "message"),
    [
        ({"type": "equals"}, "value", "needs a 'value'"),
        ({"type": "contains", "value": ["a"]}, "value", "needs a string value"),
        ({"type": "icontains", "value": {"a": 1}}, "value", "needs a string value"),
        ({"type": "starts-with", "value": True}, "value", "needs a string value"),
        ({"type": "contains-any", "value": []}, "value", "at least one"),
        ({"type": "contains-all", "value": [{"a": 1}]}, "value", "list of strings"),
        ({"type": "icontains-all", "value": 3}, "value", "list of strings"),
        ({"type": "icontains-any", "value": " , "}, "value", "at least one"),
        ({"type": "regex", "value": "(unclosed"}, "value", "does not compile"),
        ({"type": "not-regex", "value": "[z-a]"}, "value", "does not compile"),
        ({"type": "levenshtein", "value": "x", "threshold": -1}, "threshold", "whole number >= 0"),
        ({"type": "levenshtein", "value": "x", "threshold": 1.5}, "threshold", "whole number"),
        ({"type": "similar", "value": "x", "threshold": 2}, "threshold", "within [0, 1]"),
        ({"type": "word-count"}, "min", "needs min, max"),
        ({"type": "word-count", "min": 5, "max": 2}, "max", "above max"),
        ({"type": "word-count", "min": "five"}, "min", "whole number"),
        ({"type": "word-count", "value": 3, "max": 4}, "value", "either value"),
        ({"type": "max-length", "value": "ten"}, "value", "whole number"),
        ({"type": "contains", "value": "x", "threshhold": 1}, "threshhold", "unknown key"),
        ({"type": "contains", "value": "x", "weight": "heavy"}, "weight", "must be a number"),
    ],
)
def test_bad_configuration_names_the_field(entry: dict[str, Any], field: str, message: str) -> None:
    error = config_error(entry)
    assert error.field == field
    assert message in error.message


def test_weight_and_threshold_are_accepted_everywhere() -> None:
    spec = parse_assertion({"type": "not-icontains", "value": "x", "weight": 2, "threshold": 0.3})
    result = evaluate(spec, Reply(text="y"), CONTEXT)
    assert result.passed
    assert result.weight == 2.0


def test_fenced_blocks_finds_tagged_untagged_and_unclosed_blocks() -> None:
    text = 'Intro\n```Python\nprint(1)\n```\nthen\n```\nplain\n```\n```json\n{"cut": '
    assert fenced_blocks(text) == [("python", "print(1)\n"), ("", "plain\n"), ("json", '{"cut": ')]


def test_excerpt_quotes_and_escapes() -> None:
    assert excerpt('say "hi"\n') == '"say \\"hi\\"\\n"'
    assert excerpt("abcdef", 3) == '"abc..."'


def _naive_levenshtein(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, left in enumerate(a, 1):
        current = [i]
        for j, right in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (left != right)))
        previous = current
    return previous[-1]


@given(st.text(alphabet="abc", max_size=12), st.text(alphabet="abc", max_size=12), st.integers(0, 6))
def test_banded_levenshtein_agrees_with_the_textbook_one(a: str, b: str, limit: int) -> None:
    exact = _naive_levenshtein(a, b)
    assert levenshtein(a, b) == exact
    assert levenshtein(a, b, limit) == (exact if exact <= limit else limit + 1)


def test_similarity_ignores_case_and_spacing() -> None:
    assert similarity("Hello   World", "hello world") == 1.0
    assert similarity("", "") == 1.0
