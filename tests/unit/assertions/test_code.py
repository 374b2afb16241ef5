"""Code kinds: python-compiles, is-sql, and python-tests as an assertion (its sandbox: test_sandbox.py)."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_llmgate.assertions.code import extract_code, sql_statements, sql_syntax_error

from .helpers import config_error, run

ADD = "Here you go:\n```python\ndef add(a, b):\n    return a + b\n```\nThis adds two numbers."
TESTS = "def test_add():\n    assert add(2, 3) == 5\n\ndef test_negative():\n    assert add(-1, 1) == 0\n"


def test_extract_code_prefers_a_python_block_over_other_languages() -> None:
    text = "```bash\npip install x\n```\n```py\nprint(1)\n```"
    assert extract_code(text) == "print(1)\n"
    assert extract_code("x = 1") == "x = 1"


# --- python-compiles ---------------------------------------------------------------------------


@pytest.mark.parametrize("text", [ADD, "x = 1\nprint(x)\n", "```\nimport os\n```"])
def test_python_compiles_passes(text: str) -> None:
    assert run({"type": "python-compiles"}, text).passed
    assert not run({"type": "not-python-compiles"}, text).passed


def test_python_compiles_fails_with_the_line() -> None:
    result = run({"type": "python-compiles"}, "```python\nx = 1\ndef f(:\n    pass\n```")
    assert not result.passed
    assert result.reason == 'python-compiles: invalid syntax at line 2: "def f(:"'
    assert run({"type": "not-python-compiles"}, "def f(:").passed


def test_python_compiles_never_runs_the_code(tmp_path: Any) -> None:
    marker = tmp_path / "ran"
    assert run({"type": "python-compiles"}, f"open({str(marker)!r}, 'w').write('x')").passed
    assert not marker.exists()


def test_python_compiles_fails_on_an_empty_reply() -> None:
    assert run({"type": "python-compiles"}, "   ").reason == "python-compiles: no code in the reply"


def test_python_compiles_takes_no_value_key_it_does_not_know() -> None:
    assert config_error({"type": "python-compiles", "timeout": 3}).field == "timeout"


# --- is-sql ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT name FROM users WHERE id = 3",
        "```sql\nSELECT u.name, count(*) FROM users u JOIN orders o ON o.user_id = u.id GROUP BY 1;\n```",
        "INSERT INTO t (a, b) VALUES (1, 'x;y'); DELETE FROM t WHERE a = 1; -- done",
        "WITH x AS (SELECT 1 AS n) SELECT n FROM x",
        "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL)",
    ],
)
def test_is_sql_passes_on_sqlite_syntax_even_with_unknown_tables(sql: str) -> None:
    assert run({"type": "is-sql"}, sql).passed
    assert not run({"type": "not-is-sql"}, sql).passed


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("SELECT * FORM users", 'near "FORM": syntax error'),
        ("SELECT a, FROM t", 'near "FROM": syntax error'),
        ("SELECT 1; UPDATE t SET a = 1 WHERE", "incomplete input"),
        ("Sure, here is the query you asked for.", "syntax error"),
        ("SELECT a::int FROM t", "unrecognized token"),
    ],
)
def test_is_sql_fails_on_syntax_errors(sql: str, reason: str) -> None:
    result = run({"type": "is-sql"}, sql)
    assert not result.passed
    assert reason in result.reason
    assert run({"type": "not-is-sql"}, sql).passed


def test_is_sql_never_executes_anything(tmp_path: Any) -> None:
    target = tmp_path / "attached.db"
    assert sql_syntax_error(f"ATTACH DATABASE '{target}' AS x; CREATE TABLE x.t (a)") is None
    assert not target.exists()


def test_sql_statements_split_outside_strings() -> None:
    assert sql_statements("SELECT ';'; SELECT 2") == ["SELECT ';';", " SELECT 2"]


def test_is_sql_takes_no_value() -> None:
    assert config_error({"type": "is-sql", "value": {"databaseType": "MySQL"}}).field == "value"


# --- python-tests (each of these starts one sandboxed process) ---------------------------------


def test_python_tests_pass_when_every_test_passes() -> None:
    result = run({"type": "python-tests", "value": TESTS}, ADD)
    assert result.passed
    assert result.reason == "python-tests: 2/2 passed"
    assert not run({"type": "not-python-tests", "value": TESTS}, ADD).passed


def test_python_tests_score_the_fraction_passed_and_name_the_failure() -> None:
    reply = "def add(a, b):\n    return abs(a) + b\n"
    result = run({"type": "python-tests", "value": TESTS}, reply)
    assert not result.passed
    assert result.score == 0.5
    assert result.reason == (
        "python-tests: 1/2 passed; "
        "test_negative: AssertionError: `assert add(-1, 1) == 0` (test_solution.py:5)"
    )
    assert run({"type": "python-tests", "value": TESTS, "threshold": 0.5}, reply).passed


def test_python_tests_report_code_that_fails_to_import() -> None:
    result = run({"type": "python-tests", "value": TESTS}, "def add(a, b):\n    return a + b\n1 / 0\n")
    assert not result.passed
    assert result.reason == (
        "python-tests: 0/2 passed; the code raised ZeroDivisionError: division by zero (solution.py:3) "
        "before any test ran"
    )


def test_python_tests_support_pytest_raises_and_approx() -> None:
    tests = (
        "import pytest\n"
        "def test_div():\n"
        "    with pytest.raises(ZeroDivisionError, match='division'):\n"
        "        div(1, 0)\n"
        "    assert div(1, 3) == pytest.approx(0.3333333)\n"
    )
    assert run({"type": "python-tests", "value": tests}, "def div(a, b):\n    return a / b\n").passed


def test_python_tests_without_code_fail_without_starting_a_process() -> None:
    result = run({"type": "python-tests", "value": TESTS}, "")
    assert not result.passed
    assert result.reason == "python-tests: no code in the reply (0/2 passed)"


@pytest.mark.parametrize(
    ("entry", "field", "message"),
    [
        ({"value": "x = 1\n"}, "value", "no top-level test_* function"),
        ({"value": "def test_x(:\n"}, "value", "do not parse"),
        ({"value": "def test_x(tmp_path):\n    pass\n"}, "value", "fixtures are not supported"),
        ({"value": "async def test_x():\n    pass\n"}, "value", "async"),
        ({"value": ["def test_x(): pass"]}, "value", "test code as a string"),
        ({"value": TESTS, "timeout": 0}, "timeout", "seconds in (0, 600]"),
        ({"value": TESTS, "timeout": "10s"}, "timeout", "seconds"),
        ({"value": TESTS, "threshold": 2}, "threshold", "within [0, 1]"),
        ({}, "value", "needs a 'value'"),
    ],
)
def test_python_tests_bad_configuration(entry: dict[str, Any], field: str, message: str) -> None:
    error = config_error({"type": "python-tests", **entry})
    assert error.field == field
    assert message in error.message


def test_python_tests_say_when_the_code_ends_its_own_process() -> None:
    reply = "import os\ndef add(a, b):\n    os._exit(3)\n"
    result = run({"type": "python-tests", "value": TESTS}, reply)
    assert not result.passed
    assert result.reason == (
        "python-tests: 0/2 passed; the code ended its process during test_add (exit status 3): "
        "it broke the runner"
    )


def test_python_tests_name_tampering_with_the_code_process_as_a_cheat() -> None:
    reply = "import builtins\nbuiltins.abs = lambda x: 0\ndef add(a, b):\n    return 0\n"
    result = run({"type": "python-tests", "value": TESTS}, reply)
    assert not result.passed
    assert result.reason.endswith(
        "the code tried to cheat: replaced builtins.abs (in its own process; the tests run in another)"
    )
