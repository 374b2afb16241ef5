"""Command-line flags and ini settings, resolved once into a frozen `Settings`."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple

import pytest

RECORD_MODES = ("none", "once", "new_episodes", "all")
# `config.GATE_SCOPES` and `model.params.POLICIES` (a unit test keeps them equal): this module is
# imported by every pytest run, case files or not, and importing `config` would bring the price
# table and its YAML parser.
GATE_SCOPES = ("session", "file")
PARAM_POLICIES = ("adapt", "strict")
DEFAULT_FILE_PATTERNS = ("llm_*.yaml", "llm_*.yml")


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return value


def _ini_or_flag(config: pytest.Config, name: str, parse: Any, default: Any) -> Any:
    """The flag's value, else the ini value parsed like the flag (a bad one is a UsageError)."""
    value = config.getoption(name)
    if value is not None:
        return value
    text = config.getini(name)
    if not text:
        return default
    try:
        return parse(str(text).strip())
    except argparse.ArgumentTypeError as exc:
        raise pytest.UsageError(f"ini {name} = {text!r}: {exc}") from None


def _model_limit(text: str) -> tuple[str, int]:
    model, sep, limit = text.rpartition("=")
    if not sep or not model.strip():
        raise argparse.ArgumentTypeError(f"expected MODEL=N, e.g. gpt-5.5=4, got {text!r}")
    return model.strip(), _positive_int(limit)


def _compare_report(text: str) -> Path:
    """An earlier run's JSON report, read now so that a wrong path fails before any model is called."""
    from pytest_llmgate.report.since import PreviousReportError, load_previous

    path = Path(text).absolute()
    try:
        load_previous(path)
    except PreviousReportError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return path


def _report_path(text: str) -> str:
    from pytest_llmgate.report.formats import report_format

    try:
        report_format(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _model_name(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("a model name cannot be empty")
    return text.strip()


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("llmgate", "pytest-llmgate: gate an LLM model upgrade")
    group.addoption(
        "--llm-candidate",
        type=_model_name,
        action="append",
        default=None,
        metavar="MODEL",
        help="model to compare with the baseline (e.g. gpt-5.5); repeatable: each candidate is compared "
        "with the baseline on the same cases; wins over ini llm_candidates; without any, cases run "
        "on the baseline only",
    )
    group.addoption(
        "--llm-baseline",
        type=_model_name,
        default=None,
        metavar="MODEL",
        help="baseline model; wins over ini llm_baseline and a case file's 'baseline:'",
    )
    group.addoption(
        "--llm-judge",
        type=_model_name,
        default=None,
        metavar="MODEL",
        help="model that grades llm-rubric assertions (default: ini llm_judge, else the baseline)",
    )
    group.addoption(
        "--llm-base-url",
        default=None,
        metavar="URL",
        help="OpenAI-compatible endpoint (default: $OPENAI_BASE_URL, else OpenAI). Key from $OPENAI_API_KEY.",
    )
    group.addoption(
        "--llm-record-mode",
        choices=RECORD_MODES,
        default=None,
        help="vcrpy record mode: none (default: replay only, never calls the API), once, new_episodes, all",
    )
    group.addoption(
        "--llm-param-policy",
        choices=PARAM_POLICIES,
        default=None,
        help="parameters a reasoning model refuses (max_tokens, temperature, stop, ...): adapt (default: "
        "translate or leave them out, and say so) or strict (send them as written); wins over a "
        "target's and a file's param_policy",
    )
    group.addoption(
        "--llm-cassette-dir",
        default=None,
        metavar="DIR",
        help="where recordings live (default: cassettes/ beside each case file)",
    )
    group.addoption(
        "--llm-strict",
        action="store_true",
        default=False,
        help="fail cases that fail on both models instead of reporting them as xfailed",
    )
    group.addoption(
        "--llm-timeout",
        type=_positive_float,
        default=None,
        metavar="SECONDS",
        help="timeout of one model call (default 60)",
    )
    group.addoption(
        "--llm-repeat",
        type=_positive_int,
        default=None,
        metavar="N",
        help="samples per model per case (default 1); a case's own 'repeat:' wins",
    )
    group.addoption(
        "--llm-gate",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a suite gate threshold, e.g. --llm-gate max_cost_increase=0.4 "
        "(repeatable; 'null' switches a check off; see llmgate.yaml gate:)",
    )
    group.addoption(
        "--llm-gate-scope",
        choices=GATE_SCOPES,
        default=None,
        help="session (default): one set of gate items judged on every case of the run; file: one set "
        "per case file. Wins over ini llm_gate_scope and llmgate.yaml gate_scope:",
    )
    group.addoption(
        "--llm-concurrency",
        type=_positive_int,
        default=None,
        metavar="N",
        help="model calls in flight at once in live runs (default 8; per xdist worker)",
    )
    group.addoption(
        "--llm-model-concurrency",
        type=_model_limit,
        action="append",
        default=[],
        metavar="MODEL=N",
        help="at most N calls in flight to MODEL (repeatable), e.g. --llm-model-concurrency gpt-5.5=4",
    )
    group.addoption(
        "--llm-max-retries",
        type=_non_negative_int,
        default=None,
        metavar="N",
        help="retries of a call after 429, 5xx, timeouts or connection errors (default 3; counted, reported)",
    )
    group.addoption(
        "--llm-time-limit",
        type=_positive_float,
        default=None,
        metavar="SECONDS",
        help="overall limit for all model calls of the run; calls after it fail at once",
    )
    group.addoption(
        "--llm-max-retry-wait",
        type=_positive_float,
        default=None,
        metavar="SECONDS",
        help="longest Retry-After a call waits for (default 60); a server asking for longer fails "
        "the call at once, not retried (ini llm_max_retry_wait)",
    )
    group.addoption(
        "--llm-max-response-bytes",
        type=_positive_int,
        default=None,
        metavar="N",
        help="largest response body read (default 10485760, 10 MiB); a larger one fails the call and "
        "is not recorded (ini llm_max_response_bytes)",
    )
    group.addoption(
        "--llm-report",
        type=_report_path,
        action="append",
        default=[],
        metavar="PATH",
        help="write a report; the suffix picks the format: .md (PR comment), .json (schema in the "
        "package), .html (self-contained), .yaml (routing table). Repeatable. Markdown is also "
        "appended to $GITHUB_STEP_SUMMARY when set",
    )
    group.addoption(
        "--llm-compare-report",
        type=_compare_report,
        default=None,
        metavar="PREVIOUS_JSON",
        help="the JSON report of an earlier run (e.g. main's last nightly): the reports add what "
        "changed since then per model and the cases whose verdict flipped",
    )
    parser.addini("llm_baseline", "baseline model for llm_*.yaml cases", default=None)
    parser.addini(
        "llm_candidates",
        "candidate models compared with the baseline (space- or line-separated)",
        type="args",
        default=[],
    )
    parser.addini(
        "llm_judge", "model that grades llm-rubric assertions (default: the baseline)", default=None
    )
    parser.addini(
        "llm_files",
        "glob patterns of case files",
        type="args",
        default=list(DEFAULT_FILE_PATTERNS),
    )
    parser.addini("llm_record_mode", "default record mode (none, once, new_episodes, all)", default="none")
    parser.addini("llm_gate_scope", "suite gates judged per session (default) or per case file", default=None)
    parser.addini(
        "llm_max_retry_wait", "longest Retry-After waited for, in seconds (default 60)", default=None
    )
    parser.addini(
        "llm_max_response_bytes", "largest response body read, in bytes (default 10485760)", default=None
    )


class Settings(NamedTuple):
    """What the flags and ini values say, checked once at configure time.

    A named tuple, not a frozen dataclass: every pytest run imports this module, case files or
    not, and making a 23-field dataclass (its generated methods compiled at import) was 2 ms of
    the 5 ms the plugin added to such a run (bench_scale.py's start-up row).
    """

    candidates: tuple[str, ...]
    baseline: str | None
    judge: str | None
    base_url: str | None
    record_mode: str
    cassette_dir: Path | None
    strict: bool
    timeout_s: float
    file_patterns: tuple[str, ...]
    rootdir: Path
    invocation_dir: Path
    repeat: int = 1
    gate_overrides: Mapping[str, Any] = MappingProxyType({})
    concurrency: int = 8
    model_concurrency: tuple[tuple[str, int], ...] = ()
    max_retries: int = 3
    time_limit_s: float | None = None
    reports: tuple[Path, ...] = ()
    compare_report: Path | None = None  # --llm-compare-report: an earlier run's JSON report
    max_retry_wait_s: float = 60.0
    max_response_bytes: int = 10 * 1024 * 1024
    param_policy: str | None = None  # None: each target's, then each file's, then adapt
    gate_scope: str | None = None  # None: llmgate.yaml's gate_scope, else session

    @property
    def candidate(self) -> str | None:
        """The first candidate, or None: for code that compares one candidate (the common case)."""
        return self.candidates[0] if self.candidates else None

    @property
    def several_candidates(self) -> bool:
        """Whether items and gates carry a `[candidate]` suffix (one candidate keeps plain ids)."""
        return len(self.candidates) > 1

    @classmethod
    def from_config(cls, config: pytest.Config) -> Settings:
        record_mode = config.getoption("llm_record_mode") or config.getini("llm_record_mode") or "none"
        if record_mode not in RECORD_MODES:
            raise pytest.UsageError(
                f"ini llm_record_mode = {record_mode!r} is not a record mode; "
                f"use one of {', '.join(RECORD_MODES)}"
            )
        cassette_dir = config.getoption("llm_cassette_dir")
        invocation_dir = config.invocation_params.dir
        patterns = tuple(config.getini("llm_files") or DEFAULT_FILE_PATTERNS)
        gate_overrides = _gate_overrides(list(config.getoption("llm_gate") or []))
        return cls(
            candidates=_candidates(config),
            baseline=config.getoption("llm_baseline") or (config.getini("llm_baseline") or None),
            judge=config.getoption("llm_judge") or (config.getini("llm_judge") or None),
            base_url=config.getoption("llm_base_url"),
            record_mode=record_mode,
            cassette_dir=(invocation_dir / cassette_dir) if cassette_dir else None,
            strict=bool(config.getoption("llm_strict")),
            timeout_s=config.getoption("llm_timeout") or 60.0,
            file_patterns=patterns,
            rootdir=config.rootpath,
            invocation_dir=invocation_dir,
            repeat=config.getoption("llm_repeat") or 1,
            gate_overrides=gate_overrides,
            concurrency=config.getoption("llm_concurrency") or 8,
            model_concurrency=tuple(config.getoption("llm_model_concurrency") or ()),
            max_retries=_option_or(config.getoption("llm_max_retries"), 3),
            time_limit_s=config.getoption("llm_time_limit"),
            reports=tuple(invocation_dir / path for path in config.getoption("llm_report") or ()),
            compare_report=config.getoption("llm_compare_report"),
            max_retry_wait_s=_ini_or_flag(config, "llm_max_retry_wait", _positive_float, 60.0),
            max_response_bytes=_ini_or_flag(
                config, "llm_max_response_bytes", _positive_int, 10 * 1024 * 1024
            ),
            param_policy=config.getoption("llm_param_policy"),
            gate_scope=_gate_scope(config),
        )


def _gate_overrides(assignments: list[str]) -> dict[str, Any]:
    """`--llm-gate KEY=VALUE` flags, validated (a bad one is a UsageError before collection)."""
    if not assignments:
        return {}  # no flag: nothing to validate, and no gate settings module to import
    from pytest_llmgate.config import GateSettingError, parse_cli_gate

    try:
        return parse_cli_gate(assignments)
    except GateSettingError as exc:
        raise pytest.UsageError(str(exc)) from None


def _candidates(config: pytest.Config) -> tuple[str, ...]:
    """--llm-candidate (repeatable), else ini llm_candidates; each model once, in order given."""
    given = config.getoption("llm_candidate")
    if not given:
        given = []
        for text in config.getini("llm_candidates") or ():
            try:
                given.append(_model_name(str(text)))
            except argparse.ArgumentTypeError as exc:
                raise pytest.UsageError(f"ini llm_candidates: {exc}") from None
    return tuple(dict.fromkeys(given))


def _gate_scope(config: pytest.Config) -> str | None:
    """--llm-gate-scope, else ini llm_gate_scope; None leaves it to llmgate.yaml (then session)."""
    scope = config.getoption("llm_gate_scope") or (str(config.getini("llm_gate_scope") or "").strip() or None)
    if scope is not None and scope not in GATE_SCOPES:
        raise pytest.UsageError(
            f"ini llm_gate_scope = {scope!r} is not a gate scope; use one of {', '.join(GATE_SCOPES)}"
        )
    return scope


def _option_or(value: int | None, default: int) -> int:
    return default if value is None else value
