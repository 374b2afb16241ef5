"""Code kinds: python-compiles, python-tests (run in `pytest_llmgate.sandbox`) and is-sql.

The code judged is the first fenced block tagged python (```python, ```py, ```python3) or
untagged, else the whole reply; for is-sql, the first ```sql (or untagged) block, else the reply.

is-sql uses SQLite's own parser, not a dependency: every statement is compiled on an empty
in-memory database whose authorizer denies everything, so nothing ever runs. Syntax errors
("near ...: syntax error", "incomplete input", "unrecognized token") fail; errors SQLite only
finds after parsing ("no such table", "not authorized") mean the syntax is fine. The price is the
dialect: SQLite's. Postgres `::` casts, `ILIKE`, `DISTINCT ON` and T-SQL `TOP` are rejected.
"""

from __future__ import annotations

import signal
import sqlite3
from dataclasses import dataclass

from pytest_llmgate.assertions.base import (
    AssertionConfigError,
    AssertionContext,
    AssertionSpec,
    CheckError,
    Verdict,
    register,
)
from pytest_llmgate.assertions.text import excerpt, first_block, show
from pytest_llmgate.reply import Reply
from pytest_llmgate.sandbox import (
    DEFAULT_TIMEOUT,
    SandboxPolicy,
    SandboxRun,
    SandboxUnavailable,
    collect_test_names,
    run_python_tests,
)

PYTHON_LANGUAGES = ("python", "py", "python3", "")
SQL_LANGUAGES = ("sql", "sqlite", "postgresql", "postgres", "mysql", "")
SQL_SYNTAX_ERRORS = ("syntax error", "incomplete input", "unrecognized token", "parser stack overflow")


def extract_code(text: str, languages: tuple[str, ...] = PYTHON_LANGUAGES) -> str:
    """The first fenced block in one of `languages`, else the whole reply."""
    block = first_block(text, languages)
    return text if block is None else block


# --- python-compiles ---------------------------------------------------------------------------


@register("python-compiles")
def check_python_compiles(spec: AssertionSpec, reply: Reply, context: AssertionContext) -> Verdict:
    """`compile()` only: the code is parsed and byte-compiled, never run."""
    code = extract_code(reply.text)
    if not code.strip():
        return Verdict.of(False, f"{spec.kind}: no code in the reply")
    try:
        compile(code, "<reply>", "exec", dont_inherit=True)
    except SyntaxError as exc:
        line = (exc.text or "").strip()
        return Verdict.of(False, f"{spec.kind}: {exc.msg} at line {exc.lineno}: {excerpt(line, 60)}")
    except (ValueError, MemoryError, RecursionError) as exc:
        return Verdict.of(False, f"{spec.kind}: does not compile: {type(exc).__name__}: {exc}")
    return Verdict.of(True, f"{spec.kind}: {len(code.splitlines())} lines compile")


# --- python-tests ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SuitePlan:
    tests: str
    names: tuple[str, ...]
    timeout: float
    threshold: float | None


def _prepare_python_tests(spec: AssertionSpec) -> SuitePlan:
    if not isinstance(spec.value, str):
        raise AssertionConfigError("python-tests needs the test code as a string value", "value")
    try:
        names = collect_test_names(spec.value)
    except ValueError as exc:
        raise AssertionConfigError(str(exc), "value") from exc
    raw = spec.options.get("timeout", DEFAULT_TIMEOUT)
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not 0 < raw <= 600:
        raise AssertionConfigError(f"timeout must be seconds in (0, 600], got {show(raw)}", "timeout")
    if spec.threshold is not None and not 0.0 <= spec.threshold <= 1.0:
        raise AssertionConfigError(
            f"threshold of python-tests must be within [0, 1], got {spec.threshold}", "threshold"
        )
    return SuitePlan(tests=spec.value, names=names, timeout=float(raw), threshold=spec.threshold)


@register("python-tests", fields=("timeout",), prepare=_prepare_python_tests, value_required=True)
def check_python_tests(spec: AssertionSpec, reply: Reply, context: AssertionContext) -> Verdict:
    """Score = fraction of tests passed; pass when all pass (or score >= threshold)."""
    plan: SuitePlan = spec.prepared
    code = extract_code(reply.text)
    if not code.strip():
        return Verdict(False, 0.0, f"{spec.kind}: no code in the reply (0/{len(plan.names)} passed)")
    try:
        run = run_python_tests(code, plan.tests, SandboxPolicy(timeout=plan.timeout), plan.names)
    except SandboxUnavailable as exc:
        raise CheckError(str(exc)) from exc
    if run.launch_error is not None:
        raise CheckError(f"could not start the sandbox: {run.launch_error}")
    score = run.passed / run.total
    passed = score >= plan.threshold if plan.threshold is not None else run.passed == run.total
    return Verdict(passed, score, _tests_reason(spec.kind, run, plan.timeout))


def _tests_reason(label: str, run: SandboxRun, timeout: float) -> str:
    parts = [f"{label}: {run.passed}/{run.total} passed"]
    if run.timed_out:
        where = f" in {run.running}" if run.running else ""
        parts.append(f"timed out after {timeout:g} s{where}, killed")
    elif run.broken:
        parts.append(run.broken)
    elif run.setup_error:
        parts.append(run.setup_error)
    elif not run.finished:
        parts.append(_exit_description(run))
    failures = [
        f"{outcome.name}: {outcome.error}"
        for outcome in run.outcomes
        if not outcome.passed and outcome.kind not in ("broken", "skipped")
    ]
    parts.extend(failures[:2])
    if len(failures) > 2:
        parts.append(f"{len(failures) - 2} more failed")
    if run.noticed and run.passed < run.total:
        parts.append(
            "the code tried to cheat: "
            + ", ".join(run.noticed[:3])
            + " (in its own process; the tests run in another)"
        )
    if run.blocked and run.passed < run.total:
        parts.append("blocked: " + ", ".join(run.blocked[:3]))
    if run.weaker:
        parts.append("weaker sandbox: " + ", ".join(run.weaker))
    return "; ".join(parts)


def _exit_description(run: SandboxRun) -> str:
    where = f" in {run.running}" if run.running else ""
    code = run.returncode
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        cause = " (CPU time limit)" if name == "SIGXCPU" else ""
        stopped = f"the process was killed by {name}{cause}{where}"
    else:
        stopped = f"the process exited with code {code}{where} before the tests finished"
    tail = run.stderr_tail.strip().splitlines()
    return stopped + (f": {excerpt(tail[-1])}" if tail else "")


# --- is-sql ------------------------------------------------------------------------------------


def _prepare_is_sql(spec: AssertionSpec) -> None:
    if spec.value is not None:
        raise AssertionConfigError(
            "is-sql takes no value: it checks SQLite syntax only (databaseType and allowedTables "
            "are not supported)",
            "value",
        )


def sql_statements(sql: str) -> list[str]:
    """Split on the semicolons SQLite itself would end a statement at (not those in strings)."""
    statements, start = [], 0
    for at, char in enumerate(sql):
        if char == ";" and sqlite3.complete_statement(sql[start : at + 1]):
            statements.append(sql[start : at + 1])
            start = at + 1
    if sql[start:].strip():
        statements.append(sql[start:])
    return statements


def sql_syntax_error(sql: str) -> str | None:
    """The first syntax error in `sql` as SQLite reports it, or None when every statement parses."""
    connection = sqlite3.connect(":memory:")
    try:
        connection.set_authorizer(lambda *args: sqlite3.SQLITE_DENY)
        for statement in sql_statements(sql):
            try:
                connection.execute(statement)
            except sqlite3.Warning:
                continue  # "no statement" (a lone comment) and the like
            except sqlite3.Error as exc:
                message = str(exc)
                if any(marker in message for marker in SQL_SYNTAX_ERRORS):
                    return f"{message} in {excerpt(statement.strip(), 60)}"
    finally:
        connection.close()
    return None


@register("is-sql", prepare=_prepare_is_sql)
def check_is_sql(spec: AssertionSpec, reply: Reply, context: AssertionContext) -> Verdict:
    sql = extract_code(reply.text, SQL_LANGUAGES)
    if not sql.strip():
        return Verdict.of(False, f"{spec.kind}: no SQL in the reply")
    problem = sql_syntax_error(sql)
    if problem is None:
        count = len(sql_statements(sql))
        return Verdict.of(
            True, f"{spec.kind}: {count} statement{' parses' if count == 1 else 's parse'} as SQLite SQL"
        )
    return Verdict.of(False, f"{spec.kind}: {problem}")
