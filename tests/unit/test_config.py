"""Gate thresholds and llmgate.yaml: validation with file and line, and the precedence of layers."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_llmgate.config import GateSettingError, GateSettings, ProjectConfig, parse_cli_gate
from pytest_llmgate.errors import CaseFileError


def test_defaults_match_the_documented_thresholds() -> None:
    gate = GateSettings()
    assert (gate.max_quality_drop, gate.alpha, gate.max_cost_increase) == (2.0, 0.05, 0.25)
    assert (gate.max_latency_increase, gate.max_output_token_inflation, gate.per_case) == (0.5, 0.3, "fail")
    assert gate.max_p95_latency_ms is None


def test_layers_override_in_order_and_null_switches_a_check_off() -> None:
    gate = GateSettings().merged({"max_cost_increase": 0.5}, "llmgate.yaml")
    gate = gate.merged({"max_cost_increase": None, "per_case": "report"}, "llm_x.yaml")
    assert gate.max_cost_increase is None
    assert gate.per_case == "report"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"max_quality_dorp": 1},
            "unknown gate setting 'max_quality_dorp' (did you mean 'max_quality_drop'?)",
        ),
        ({"alpha": 1.5}, "alpha must be between 0 and 1"),
        ({"max_cost_increase": "cheap"}, "must be a number >= 0"),
        ({"per_case": "warn"}, "per_case must be one of fail, report"),
        ({"alpha": None}, "must be a number >= 0"),
    ],
)
def test_bad_gate_settings_name_the_source_and_line(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(GateSettingError, match=r"^llmgate\.yaml:7: ") as info:
        GateSettings().merged(overrides, "llmgate.yaml", 7)
    assert message in str(info.value)


def test_cli_gate_assignments_are_parsed_and_validated() -> None:
    assert parse_cli_gate(["max_cost_increase=0.4", "max_p95_latency_ms=null"]) == {
        "max_cost_increase": "0.4",
        "max_p95_latency_ms": None,
    }
    assert (
        GateSettings().merged(parse_cli_gate(["max_cost_increase=0.4"]), "--llm-gate").max_cost_increase
        == 0.4
    )
    with pytest.raises(GateSettingError, match="expected KEY=VALUE"):
        parse_cli_gate(["max_cost_increase"])
    with pytest.raises(GateSettingError, match="unknown gate setting"):
        parse_cli_gate(["speed=1"])


def test_project_file_is_optional(tmp_path: Path) -> None:
    assert ProjectConfig.load(tmp_path) == ProjectConfig()


def test_project_file_holds_pricing_gate_encodings_and_windows(tmp_path: Path) -> None:
    (tmp_path / "llmgate.yaml").write_text(
        "pricing:\n  my-model: {input: 1.0, output: 2.0}\n"
        "gate:\n  max_quality_drop: 5\n"
        "encodings:\n  my-model: cl100k_base\n"
        "context_windows:\n  my-model: 4096\n"
    )
    project = ProjectConfig.load(tmp_path)
    assert project.pricing["my-model"] == {"input": 1.0, "output": 2.0}
    assert project.gate == {"max_quality_drop": 5}
    assert project.gate_line == 4
    assert project.encodings == {"my-model": "cl100k_base"}
    assert project.context_windows == {"my-model": 4096}


def test_production_declares_a_timeout_and_a_concurrency_either_alone(tmp_path: Path) -> None:
    (tmp_path / "llmgate.yaml").write_text("production: {timeout_s: 30, concurrency: 16}\n")
    project = ProjectConfig.load(tmp_path)
    assert (project.production_timeout_s, project.production_concurrency) == (30.0, 16)
    (tmp_path / "llmgate.yaml").write_text("production: {concurrency: 4}\n")
    project = ProjectConfig.load(tmp_path)
    assert (project.production_timeout_s, project.production_concurrency) == (None, 4)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("pricng: {}\n", "unknown key 'pricng' (did you mean 'pricing'?)"),
        ("gate:\n  alpha: 2\n", "alpha must be between 0 and 1"),
        ("pricing:\n  m: {input: 1}\n", "missing field 'output'"),
        ("context_windows: {m: -1}\n", "positive number of tokens"),
        ("encodings: {m: 3}\n", "tiktoken encoding name"),
        ("gate: [1]\n", "gate must be a mapping"),
        ("gate:\n  alpha: 0.1\n  alpha: 0.2\n", "duplicate key 'alpha'"),
        ("production: {concurrency: 0}\n", "production.concurrency must be a whole number >= 1"),
        ("production: {concurrency: 2.5}\n", "production.concurrency must be a whole number >= 1"),
        ("production: {concurrency: true}\n", "production.concurrency must be a whole number >= 1"),
        ("production: {timeout_s: 0}\n", "production.timeout_s must be a number of seconds > 0"),
        ("production: {timout_s: 30}\n", "production must be a mapping with timeout_s"),
        ("production: {}\n", "e.g. production: {timeout_s: 30, concurrency: 16}"),
        ("production: 30\n", "production must be a mapping"),
    ],
)
def test_bad_project_file_names_file_and_problem(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "llmgate.yaml").write_text(text)
    with pytest.raises(CaseFileError) as info:
        ProjectConfig.load(tmp_path)
    assert str(tmp_path / "llmgate.yaml") in info.value.render()
    assert message in info.value.render()
