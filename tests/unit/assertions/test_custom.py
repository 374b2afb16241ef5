"""The `python` escape hatch: loading, calling, interpreting results, and errors that read well."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from pytest_llmgate.assertions import AssertionContext
from pytest_llmgate.reply import Reply, Usage

from .helpers import config_error, run

CHECKS = """
def has_total(output, context):
    return "total" in output

def scored(output, context):
    return len(output) / 10

def verdict(output, context):
    return {"pass": output.startswith("ok"), "score": 0.8, "reason": "looked at\\nthe start"}

def score_only(output, context):
    return {"score": 0.4, "reason": "partial"}

def echo_context(output, context):
    assert context["case_id"] == "case-9"
    assert context["model"] == "gpt-x"
    assert context["vars"] == {"city": "Paris"}
    assert context["reply"]["finish_reason"] == "stop"
    assert context["raw"] == {"id": "chatcmpl-1"}
    assert context["messages"] == [{"role": "user", "content": "hi"}]
    return True

def explode(output, context):
    raise ValueError("bad\\noutput")

def wrong_shape(output, context):
    return "yes"

def out_of_range(output, context):
    return 3

def get_assert(output, context):
    return True
"""


@pytest.fixture
def case_dir(tmp_path: Path) -> Path:
    (tmp_path / "checks").mkdir()
    (tmp_path / "checks" / "invoice.py").write_text(textwrap.dedent(CHECKS))
    (tmp_path / "local_mod.py").write_text("def ok(output, context):\n    return True\n")
    return tmp_path


def check(case_dir: Path, function: str, reply: Reply | str, kind: str = "python", **extra: Any) -> Any:
    entry = {"type": kind, "value": f"checks/invoice.py:{function}", **extra}
    return run(entry, reply, base_dir=case_dir)


def test_a_bool_result(case_dir: Path) -> None:
    passed = check(case_dir, "has_total", "the total is 5")
    assert passed.passed
    assert passed.reason == "checks/invoice.py:has_total returned True"
    assert not check(case_dir, "has_total", "nothing").passed
    assert check(case_dir, "has_total", "nothing", kind="not-python").passed


def test_a_number_is_a_score_passing_at_the_threshold(case_dir: Path) -> None:
    result = check(case_dir, "scored", "abcdefg")
    assert result.passed
    assert result.score == pytest.approx(0.7)
    assert result.reason == "checks/invoice.py:scored scored 0.7 >= 0.5"
    low = check(case_dir, "scored", "abcdefg", threshold=0.8)
    assert not low.passed
    assert low.reason == "checks/invoice.py:scored scored 0.7 < 0.8"
    negated = check(case_dir, "scored", "abcdefg", kind="not-python", threshold=0.8)
    assert negated.passed
    assert negated.score == pytest.approx(0.3)


def test_a_dict_result(case_dir: Path) -> None:
    result = check(case_dir, "verdict", "ok then")
    assert (result.passed, result.score) == (True, 0.8)
    assert result.reason == "checks/invoice.py:verdict: looked at the start"
    assert not check(case_dir, "verdict", "no").passed
    partial = check(case_dir, "score_only", "x")
    assert not partial.passed
    assert partial.reason == "checks/invoice.py:score_only scored 0.4 < 0.5: partial"


def test_the_context_dict(case_dir: Path) -> None:
    context = AssertionContext(
        case_id="case-9", model="gpt-x", vars={"city": "Paris"}, messages=[{"role": "user", "content": "hi"}]
    )
    reply = Reply(text="x", finish_reason="stop", usage=Usage(total_tokens=3), raw={"id": "chatcmpl-1"})
    result = run({"type": "python", "value": "checks/invoice.py:echo_context"}, reply, context, case_dir)
    assert result.passed, result.reason


@pytest.mark.parametrize("kind", ["python", "not-python"])
def test_an_exception_fails_the_assertion_and_its_negation_naming_function_and_line(
    case_dir: Path, kind: str
) -> None:
    result = check(case_dir, "explode", "x", kind=kind)
    assert not result.passed
    assert (
        result.reason == f"{kind}: checks/invoice.py:explode raised ValueError: bad output (at invoice.py:24)"
    )


@pytest.mark.parametrize(
    ("function", "reason"),
    [
        ("wrong_shape", "returned 'yes'; expected a bool, a score in [0, 1] or {pass, score, reason}"),
        ("out_of_range", "returned score 3.0, outside [0, 1]"),
    ],
)
def test_a_result_of_the_wrong_shape_fails(case_dir: Path, function: str, reason: str) -> None:
    result = check(case_dir, function, "x")
    assert not result.passed
    assert reason in result.reason


def test_module_references_and_promptfoo_file_urls(case_dir: Path) -> None:
    assert run({"type": "python", "value": "operator:is_not"}, "x").passed  # is_not(output, context) is True
    assert not run({"type": "python", "value": "operator:is_"}, "x").passed
    assert run({"type": "python", "value": "local_mod:ok"}, "x", base_dir=case_dir).passed
    assert run({"type": "python", "value": "file://checks/invoice.py"}, "x", base_dir=case_dir).passed


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("checks/invoice.py", None),
        ("no_colon_here", "'module:function' or 'path/to/file.py:function'"),
        ("checks/missing.py:f", "cannot load 'checks/missing.py': FileNotFoundError: no file"),
        ("checks/invoice.py:nope", "'checks/invoice.py' has no function 'nope'"),
        ("checks/invoice.py:CHECKS-1", "is not a function name"),
        ("surely_not_a_module_xyz:f", "cannot load 'surely_not_a_module_xyz': ModuleNotFoundError"),
        ("json:JSONDecodeError.msg", "is not a function name"),
        ("json:decoder", "json:decoder is not callable"),
        (5, "needs value"),
    ],
)
def test_bad_references_are_config_errors_on_value(case_dir: Path, value: Any, message: str | None) -> None:
    if message is None:  # a bare file means promptfoo's default function, get_assert
        assert run({"type": "python", "value": value}, "x", base_dir=case_dir).passed
        return
    error = config_error({"type": "python", "value": value}, base_dir=case_dir)
    assert error.field == "value"
    assert message in error.message


def test_a_file_that_fails_to_import_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("import surely_not_a_module_xyz\n")
    error = config_error({"type": "python", "value": "broken.py:f"}, base_dir=tmp_path)
    assert error.field == "value"
    assert "ModuleNotFoundError: No module named 'surely_not_a_module_xyz'" in error.message
