"""Gate thresholds and the project file `llmgate.yaml`: validated once, merged in a fixed order.

Precedence, lowest first: built-in defaults, `llmgate.yaml` at the rootdir, the case file's own
`gate:` (or `defaults: gate:`), then `--llm-gate KEY=VALUE` on the command line. Every layer is
validated with the same code, so a typo fails with the file, line and key wherever it is made.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from pytest_llmgate.errors import CaseFileError, did_you_mean
from pytest_llmgate.model.targets import Targets, parse_targets

PROJECT_FILE = "llmgate.yaml"
PROJECT_KEYS = ("models", "pricing", "gate", "gate_scope", "encodings", "context_windows", "production")
GATE_SCOPES = ("session", "file")
PER_CASE_MODES = ("fail", "report")


@dataclass(frozen=True)
class GateSettings:
    """Thresholds of the suite gates; a threshold set to None (`null` in YAML) switches its check off."""

    max_quality_drop: float = 2.0  # points of the 0-100 quality score
    alpha: float = 0.05  # significance level of the paired test on case scores
    max_cost_increase: float | None = 0.25  # cost per successful task, candidate / baseline - 1
    max_p95_latency_ms: float | None = None
    max_latency_increase: float | None = 0.5  # p95 candidate / baseline - 1
    max_ttft_increase: float | None = 0.5  # p95 time to first token, when the suite streams
    max_output_token_inflation: float | None = 0.3
    max_prompt_token_drift: float = 0.05  # |prompt tokens candidate / baseline - 1|
    per_case: str = "fail"  # fail: a regressed case fails its item; report: gate[quality] decides

    def merged(self, overrides: Mapping[str, Any], source: str, line: int | None = None) -> GateSettings:
        """A copy with `overrides` applied; raises GateSettingError naming `source` on a bad key or value."""
        changes = {key: _gate_value(key, value, source, line) for key, value in overrides.items()}
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GateSettings:
        return cls().merged(data, "gate settings")


GATE_KEYS = tuple(item.name for item in dataclasses.fields(GateSettings))
_NULLABLE = {
    "max_cost_increase",
    "max_p95_latency_ms",
    "max_latency_increase",
    "max_ttft_increase",
    "max_output_token_inflation",
}


class GateSettingError(ValueError):
    """A gate key or value is wrong; the message names where it was written."""


def _gate_value(key: str, value: Any, source: str, line: int | None) -> Any:
    where = f"{source}:{line}" if line else source
    if key not in GATE_KEYS:
        hint = did_you_mean(key, GATE_KEYS)
        raise GateSettingError(
            f"{where}: unknown gate setting {key!r}{hint}; allowed: {', '.join(GATE_KEYS)}"
        )
    if key == "per_case":
        if value not in PER_CASE_MODES:
            raise GateSettingError(
                f"{where}: gate setting per_case must be one of {', '.join(PER_CASE_MODES)}, got {value!r}"
            )
        return value
    if value is None and key in _NULLABLE:
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value or value < 0:
        raise GateSettingError(f"{where}: gate setting {key} must be a number >= 0, got {value!r}")
    if key == "alpha" and not 0 < value < 1:
        raise GateSettingError(f"{where}: gate setting alpha must be between 0 and 1, got {value!r}")
    return float(value)


def parse_cli_gate(assignments: list[str]) -> dict[str, Any]:
    """`--llm-gate KEY=VALUE` flags as a mapping; 'null' or 'none' switches a check off."""
    result: dict[str, Any] = {}
    for text in assignments:
        key, sep, value = text.partition("=")
        if not sep or not key.strip():
            raise GateSettingError(
                f"--llm-gate {text!r}: expected KEY=VALUE, e.g. --llm-gate max_cost_increase=0.4"
            )
        raw = value.strip()
        result[key.strip()] = None if raw.lower() in ("null", "none") else raw
    GateSettings().merged(result, "--llm-gate")  # validate now, before any model is called
    return result


@dataclass(frozen=True)
class ProjectConfig:
    """`llmgate.yaml` at the rootdir: model targets, prices, gate thresholds, encodings, context windows."""

    path: Path | None = None
    pricing: Mapping[str, Mapping[str, Any]] = field(default_factory=lambda: MappingProxyType({}))
    gate: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    gate_line: int | None = None
    encodings: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    context_windows: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    targets: Targets = field(default_factory=Targets)
    production_timeout_s: float | None = None  # `production: {timeout_s}`: the checklist's timeout item
    # `production: {concurrency}`: the calls in flight at once in production, which the checklist
    # holds against the recorded rate limits (else the run's own --llm-concurrency)
    production_concurrency: int | None = None
    gate_scope: str | None = None  # `gate_scope: session | file`; --llm-gate-scope and the ini win

    @classmethod
    def load(cls, rootdir: Path) -> ProjectConfig:
        """The project file under `rootdir`, or an empty config when there is none."""
        path = rootdir / PROJECT_FILE
        if not path.is_file():
            return cls()
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CaseFileError(path, f"cannot read the project file: {exc}") from exc
        return cls.parse(text, path)

    @classmethod
    def parse(cls, text: str, path: Path) -> ProjectConfig:
        from pytest_llmgate.cases import LineDict, load_yaml_with_lines

        document = load_yaml_with_lines(text, path)
        if document is None:
            return cls(path=path)
        if not isinstance(document, Mapping):
            raise CaseFileError(
                path, f"the top level must be a mapping with keys {', '.join(PROJECT_KEYS)}", line=1
            )
        for key in document:
            if key not in PROJECT_KEYS:
                hint = did_you_mean(key, PROJECT_KEYS)
                raise CaseFileError(
                    path, f"unknown key {key!r}{hint}; allowed: {', '.join(PROJECT_KEYS)}", field=str(key)
                )
        gate = document.get("gate") or {}
        gate_line = gate.line if isinstance(gate, LineDict) else None
        if not isinstance(gate, Mapping):
            raise CaseFileError(path, "gate must be a mapping of thresholds", field="gate")
        try:
            GateSettings().merged(gate, str(path), gate_line)
        except GateSettingError as exc:
            raise CaseFileError(path, str(exc).split(": ", 1)[-1], line=gate_line, field="gate") from None
        pricing = validate_pricing(document.get("pricing"), path)
        targets = parse_targets(document.get("models"), path)
        encodings = _string_map(document.get("encodings"), path, "encodings", "a tiktoken encoding name")
        windows = document.get("context_windows") or {}
        if not isinstance(windows, Mapping) or not all(
            isinstance(value, int) and not isinstance(value, bool) and value > 0 for value in windows.values()
        ):
            raise CaseFileError(
                path,
                "context_windows must map a model name to a positive number of tokens, e.g. {gpt-4o: 128000}",
                field="context_windows",
            )
        gate_scope = document.get("gate_scope")
        if gate_scope is not None and gate_scope not in GATE_SCOPES:
            raise CaseFileError(
                path,
                f"gate_scope must be one of {', '.join(GATE_SCOPES)}, got {gate_scope!r}",
                field="gate_scope",
            )
        timeout_s, concurrency = _production(document.get("production"), path)
        return cls(
            gate_scope=gate_scope,
            production_timeout_s=timeout_s,
            production_concurrency=concurrency,
            path=path,
            pricing=MappingProxyType(dict(pricing)),
            gate=MappingProxyType(dict(gate)),
            gate_line=gate_line,
            encodings=MappingProxyType(dict(encodings)),
            context_windows=MappingProxyType({str(key): int(value) for key, value in windows.items()}),
            targets=targets,
        )


def validate_pricing(raw: Any, path: Path) -> Mapping[str, Mapping[str, Any]]:
    """A `pricing:` mapping checked against the built-in table's rules (raises CaseFileError)."""
    from pytest_llmgate.pricing import PriceTable

    if raw is None:
        return {}
    line = getattr(raw, "line", None)
    if not isinstance(raw, Mapping):
        raise CaseFileError(
            path,
            "pricing must map a model to {input, cached_input, output} in USD per 1M tokens",
            line=line,
            field="pricing",
        )
    try:
        PriceTable.builtin().merged(raw)
    except ValueError as exc:
        raise CaseFileError(path, str(exc), line=line, field="pricing") from None
    return {str(key): value for key, value in raw.items()}


def _production(raw: Any, path: Path) -> tuple[float | None, int | None]:
    """`production: {timeout_s: 30, concurrency: 16}`: the timeout the application calls the model
    with and how many calls it has in flight at once, which the pre-upgrade checklist holds the
    candidate's p99 latency and recorded rate limits against. Either may be left out."""
    if raw is None:
        return None, None
    if not isinstance(raw, Mapping) or not raw or set(raw) - {"timeout_s", "concurrency"}:
        raise CaseFileError(
            path,
            f"production must be a mapping with timeout_s (seconds) and/or concurrency (calls in "
            f"flight), got {raw!r}; e.g. production: {{timeout_s: 30, concurrency: 16}}",
            field="production",
        )
    timeout, concurrency = raw.get("timeout_s"), raw.get("concurrency")
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0
    ):
        raise CaseFileError(
            path,
            f"production.timeout_s must be a number of seconds > 0, got {timeout!r}; "
            "e.g. production: {timeout_s: 30}",
            field="production",
        )
    if concurrency is not None and (
        isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1
    ):
        raise CaseFileError(
            path,
            "production.concurrency must be a whole number >= 1 (calls in flight at once), "
            f"got {concurrency!r}; "
            "e.g. production: {concurrency: 16}",
            field="production",
        )
    return (None if timeout is None else float(timeout)), concurrency


def _string_map(raw: Any, path: Path, name: str, what: str) -> Mapping[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping) or not all(isinstance(value, str) and value for value in raw.values()):
        raise CaseFileError(path, f"{name} must map a model name to {what}", field=name)
    return {str(key): value for key, value in raw.items()}
