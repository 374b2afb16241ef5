"""llm-rubric: the judge prompt, reading the judge's verdict, and every way a judge can go wrong."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from pytest_llmgate.assertions import AssertionContext
from pytest_llmgate.assertions.rubric import JUDGE_PROMPT, judge_prompt, parse_judgement
from pytest_llmgate.reply import Reply, ToolCall

from .helpers import config_error, run

RUBRIC = {"type": "llm-rubric", "value": "The reply is polite and names the capital of France."}


def judged_by(answer: str, prompts: list[str] | None = None) -> AssertionContext:
    def judge(prompt: str) -> str:
        if prompts is not None:
            prompts.append(prompt)
        return answer

    return AssertionContext(case_id="case-1", model="gpt-test", judge=judge)


def test_the_judge_gets_the_fixed_prompt_with_rubric_and_output() -> None:
    prompts: list[str] = []
    result = run(
        RUBRIC, "Paris, of course!", judged_by('{"pass": true, "score": 0.9, "reason": "ok"}', prompts)
    )
    assert result.passed
    (prompt,) = prompts
    assert prompt == JUDGE_PROMPT.format(rubric=RUBRIC["value"], output="Paris, of course!")
    assert '{"pass": true or false, "score": a number from 0 to 1' in prompt


def test_tool_calls_are_shown_to_the_judge() -> None:
    reply = Reply(text="", tool_calls=(ToolCall(name="get_weather", arguments='{"city": "Paris"}'),))
    assert '- get_weather({"city": "Paris"})' in judge_prompt("calls the weather tool", reply)


@pytest.mark.parametrize(
    ("answer", "passed", "score"),
    [
        ('{"pass": true, "score": 0.9, "reason": "Polite and correct."}', True, 0.9),
        ('```json\n{"pass": false, "score": 0.2, "reason": "Rude."}\n```', False, 0.2),
        ('My verdict: {"pass": "PASS", "reason": "fine"} - done.', True, 1.0),
        ('{"pass": false, "score": "0.1"}', False, 0.1),
        ('{"pass": true, "score": 7}', True, 1.0),
    ],
)
def test_the_judges_verdict_is_read_from_json_fences_or_prose(
    answer: str, passed: bool, score: float
) -> None:
    result = run(RUBRIC, "Paris.", judged_by(answer))
    assert (result.passed, result.score) == (passed, score)
    negated = run({**RUBRIC, "type": "not-llm-rubric"}, "Paris.", judged_by(answer))
    assert negated.passed is not passed


def test_the_reason_quotes_the_judge() -> None:
    result = run(
        RUBRIC, "Go away.", judged_by('{"pass": false, "score": 0.1, "reason": "The reply\\nis rude."}')
    )
    assert result.reason == "llm-rubric: judge says fail (score 0.1): The reply is rude."


def test_a_threshold_needs_the_score_too() -> None:
    answer = '{"pass": true, "score": 0.6, "reason": "mostly"}'
    assert run(RUBRIC, "Paris.", judged_by(answer)).passed
    result = run({**RUBRIC, "threshold": 0.8}, "Paris.", judged_by(answer))
    assert not result.passed
    assert result.reason == "llm-rubric: judge says pass (score 0.6, below threshold 0.8): mostly"


@pytest.mark.parametrize("kind", ["llm-rubric", "not-llm-rubric"])
@pytest.mark.parametrize(
    "answer",
    ["I think it is fine.", '{"verdict": "pass"}', '{"pass": "maybe"}', '{"pass": true, "score": "high"}'],
)
def test_an_unreadable_verdict_fails_both_ways_quoting_the_judge(kind: str, answer: str) -> None:
    result = run({**RUBRIC, "type": kind}, "Paris.", judged_by(answer))
    assert not result.passed
    assert "could not read a {pass, score, reason} JSON verdict from the judge" in result.reason
    assert answer[:10].replace('"', '\\"') in result.reason


def test_a_long_unreadable_verdict_is_cut() -> None:
    result = run(RUBRIC, "Paris.", judged_by("blah " * 200))
    assert len(result.reason) < 320
    assert result.reason.endswith('..."')


@pytest.mark.parametrize("kind", ["llm-rubric", "not-llm-rubric"])
def test_without_a_judge_the_assertion_fails_saying_how_to_configure_one(kind: str) -> None:
    result = run({**RUBRIC, "type": kind}, "Paris.")
    assert not result.passed
    assert result.reason == f"{kind}: no judge configured: set --llm-judge"


def test_a_judge_that_raises_fails_the_assertion() -> None:
    def broken(prompt: str) -> str:
        raise ConnectionError("judge is down")

    judge: Callable[[str], str] = broken
    context = AssertionContext(case_id="case-1", model="gpt-test", judge=judge)
    result = run(RUBRIC, "Paris.", context)
    assert not result.passed
    assert result.reason == "llm-rubric: the judge call failed: ConnectionError: judge is down"


def test_parse_judgement_returns_none_for_non_json() -> None:
    assert parse_judgement("") is None


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        ({"value": ""}, "value"),
        ({"value": ["a"]}, "value"),
        ({}, "value"),
        ({"value": "x", "threshold": 5}, "threshold"),
    ],
)
def test_bad_configuration(entry: dict[str, object], field: str) -> None:
    assert config_error({"type": "llm-rubric", **entry}).field == field
