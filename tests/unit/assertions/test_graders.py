"""factuality, model-graded-closedqa, g-eval and pairwise, with a judge that is a plain function
of its prompt (the recorded judge calls are tested end to end in tests/plugin)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from pytest_llmgate.assertions import (
    AssertionConfigError,
    AssertionContext,
    CheckError,
    evaluate,
    parse_assertion,
)
from pytest_llmgate.assertions.graders import (
    FACTUALITY_CATEGORIES,
    judge_pairwise,
    parse_category,
    parse_score,
    parse_winner,
    parse_yes_no,
)
from pytest_llmgate.reply import Reply

QUESTION = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of France?"}]


def context(judge: Callable[[str], str] | None, asked: list[str] | None = None) -> AssertionContext:
    def recording(prompt: str) -> str:
        if asked is not None:
            asked.append(prompt)
        assert judge is not None
        return judge(prompt)

    return AssertionContext("c", "m", messages=QUESTION, judge=recording if judge else None)


def run(entry: dict[str, object], text: str, judge: Callable[[str], str] | None) -> tuple[bool, float, str]:
    result = evaluate(parse_assertion(entry), Reply(text=text), context(judge))
    return result.passed, result.score, result.reason


# --- factuality ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("category", "passed"), [("A", True), ("B", True), ("C", True), ("D", False), ("E", True)]
)
def test_factuality_passes_all_but_a_disagreement_by_default(category: str, passed: bool) -> None:
    verdict = run(
        {"type": "factuality", "value": "Paris"},
        "Paris.",
        lambda _: f'{{"category": "{category}", "reason": "compared"}}',
    )
    assert verdict[0] is passed
    assert verdict[2] == f"factuality: judge says ({category}) {FACTUALITY_CATEGORIES[category]}: compared"


def test_factuality_prompt_has_question_expert_and_submission_and_a_pass_set_is_configurable() -> None:
    asked: list[str] = []
    spec = parse_assertion({"type": "factuality", "value": "Paris", "pass_categories": ["C"]})
    result = evaluate(
        spec, Reply(text="It is Paris, on the Seine."), context(lambda _: '{"category": "B"}', asked)
    )
    assert not result.passed
    (prompt,) = asked
    assert "[Question]: Capital of France?" in prompt
    assert "[Expert]: Paris" in prompt
    assert "[Submission]: It is Paris, on the Seine." in prompt
    with pytest.raises(AssertionConfigError, match="'F' is not a category"):
        parse_assertion({"type": "factuality", "value": "x", "pass_categories": ["A", "F"]})


def test_unreadable_judge_answers_fail_both_forms() -> None:
    for kind in ("factuality", "not-factuality"):
        passed, _, reason = run({"type": kind, "value": "Paris"}, "Paris", lambda _: "I think it is fine")
        assert not passed
        assert "could not read a {category, reason} JSON verdict (A-E) from the judge" in reason


def test_parsers() -> None:
    assert parse_category('Sure: {"category": "(D)", "reason": "x"}') == ("D", "x")
    assert parse_category("(B) The submitted answer ...") == ("B", "")
    assert parse_category("maybe") is None
    assert parse_yes_no("The task asks...\nIt does.\nY\nY") is True
    assert parse_yes_no("reasoning\nN") is False
    assert parse_yes_no("no letter at the end here") is None
    assert parse_score('{"score": 7, "reason": "ok"}') == (0.7, "ok")
    assert parse_score('{"score": "12"}') == (1.0, "")
    assert parse_score('{"score": "high"}') is None
    assert parse_winner('{"winner": "b", "reason": "r"}') == ("B", "r")
    assert parse_winner('{"winner": "Tie"}') == ("tie", "")
    assert parse_winner('{"winner": "C"}') is None


# --- closedqa, g-eval ---------------------------------------------------------------------------


def test_closedqa_reads_the_final_letter() -> None:
    asked: list[str] = []
    spec = parse_assertion({"type": "model-graded-closedqa", "value": "names a city"})
    judge = context(lambda _: "The reply names Paris.\nY\nY", asked)
    result = evaluate(spec, Reply(text="Paris"), judge)
    assert result.passed
    assert result.reason == "model-graded-closedqa: judge says Y: The reply names Paris."
    assert "[Criterion]: names a city" in asked[0]
    assert "[Task]: Capital of France?" in asked[0]
    assert not run({"type": "model-graded-closedqa", "value": "x"}, "Paris", lambda _: "Nope.\nN")[0]


def test_geval_scores_0_to_1_with_a_threshold() -> None:
    asked: list[str] = []
    entry = {"type": "g-eval", "value": "Coherence", "steps": ["Read it", "Rate it"]}
    result = evaluate(parse_assertion(entry), Reply(text="Paris"), context(lambda _: '{"score": 6}', asked))
    assert (result.passed, result.score) == (False, 0.6)  # default threshold 0.7
    assert result.reason == "g-eval: score 0.6 (below threshold 0.7)"
    assert "1. Read it\n2. Rate it" in asked[0]
    assert run({**entry, "threshold": 0.5}, "Paris", lambda _: '{"score": 6}')[0]
    with pytest.raises(AssertionConfigError, match="steps must be a list"):
        parse_assertion({"type": "g-eval", "value": "x", "steps": [1]})


def test_no_judge_is_a_failure_that_says_how_to_set_one() -> None:
    passed, _, reason = run({"type": "g-eval", "value": "x"}, "Paris", None)
    assert not passed
    assert reason == "g-eval: no judge configured: set --llm-judge"


# --- pairwise -----------------------------------------------------------------------------------


def pairwise_judge(rule: Callable[[str, str], str]) -> Callable[[str], str]:
    """A judge deciding from the two replies as shown: rule(reply_a, reply_b) -> A/B/tie."""

    def judge(prompt: str) -> str:
        first = prompt.split("<reply_a>\n", 1)[1].split("\n</reply_a>", 1)[0]
        second = prompt.split("<reply_b>\n", 1)[1].split("\n</reply_b>", 1)[0]
        return f'{{"winner": "{rule(first, second)}", "reason": "{rule(first, second)} is better"}}'

    return judge


def test_pairwise_asks_twice_with_the_order_swapped() -> None:
    baseline, candidate = Reply(text="Paris."), Reply(text="Paris, on the Seine.")
    always_longer = pairwise_judge(lambda a, b: "A" if len(a) > len(b) else "B")
    votes, _ = judge_pairwise(always_longer, "helpful", "Capital?", baseline, candidate)
    assert votes == (1, 1)  # the candidate wins in both orders
    votes, _ = judge_pairwise(pairwise_judge(lambda a, b: "A"), "helpful", "Capital?", baseline, candidate)
    assert votes == (-1, 1)  # a judge that always prefers the first reply: cancels out
    votes, _ = judge_pairwise(pairwise_judge(lambda a, b: "tie"), "helpful", "Capital?", baseline, candidate)
    assert votes == (0, 0)
    with pytest.raises(CheckError, match="could not read"):
        judge_pairwise(lambda _: "dunno", "helpful", "Capital?", baseline, candidate)


def test_pairwise_has_no_negated_form() -> None:
    with pytest.raises(AssertionConfigError, match="pairwise has no not- form"):
        parse_assertion({"type": "not-pairwise"})
