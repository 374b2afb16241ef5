"""The end-of-session summary: the table, unknown costs never zero, gates, tags, width."""

from __future__ import annotations

from pytest_llmgate.config import GateSettings
from pytest_llmgate.gate import evaluate_gate
from pytest_llmgate.report.terminal import WIDTH, summary_lines

from .results_factory import case, sample

RESULTS = [
    case("a", sample(True, latency=100), sample(True, latency=300), tags=("extraction",)),
    case("b", sample(True, latency=200), sample(False, latency=500), tags=("reasoning",)),
]


def test_table_rows_show_each_models_numbers() -> None:
    lines = list(summary_lines(RESULTS))
    base_row = next(line for line in lines if line.startswith("base (baseline)"))
    cand_row = next(line for line in lines if line.startswith("cand (candidate)"))
    assert base_row.split()[2:7] == ["2", "100%", "100.0", "150", "195"]
    assert cand_row.split()[2:7] == ["2", "50%", "50.0", "400", "490"]
    # $0.003 per case; the candidate passed one case of two, so it pays $0.006 per success
    assert base_row.split()[-2:] == ["0.00300", "0"]
    assert cand_row.split()[-2:] == ["0.00600", "0"]


def test_unknown_price_is_shown_as_unknown_never_zero() -> None:
    results = [case("a", sample(True), sample(True, cost=None))]
    lines = list(summary_lines(results))
    assert any(line.startswith("cost of cand: unknown") for line in lines)
    cand_row = next(line for line in lines if line.startswith("cand (candidate)"))
    assert "n/a" in cand_row
    assert "0.00000" not in cand_row


def test_quiet_summary_keeps_the_table_gates_and_counts_only() -> None:
    gates = {"llm_x.yaml::gate[quality]": evaluate_gate("quality", RESULTS, GateSettings())}
    lines = list(summary_lines(RESULTS, verbose=False, gates=gates))
    assert lines[-1] == "cases: 1 passed, 1 regression"
    assert any(line.startswith("  PASSED  llm_x.yaml::gate[quality]: quality -50.0 points") for line in lines)
    assert not any(line.startswith("regressions") for line in lines)
    assert not any(line.startswith("by tag") for line in lines)
    verbose = list(summary_lines(RESULTS, gates=gates))
    assert "regressions (1):" in verbose
    assert "by tag:" in verbose


def test_tag_breakdown_shows_quality_per_kind_of_task() -> None:
    lines = list(summary_lines(RESULTS))
    extraction = next(line for line in lines if line.strip().startswith("extraction"))
    reasoning = next(line for line in lines if line.strip().startswith("reasoning"))
    assert extraction.split()[1:3] == ["1", "100.0"]
    assert "+0.0" in extraction
    assert "-100.0" in reasoning


def test_every_line_fits_the_width() -> None:
    long_id = "x" * 150
    results = [case(long_id, sample(True), sample(False), tags=("extraction",))]
    gates = {f"llm_{long_id}.yaml::gate[cost]": evaluate_gate("cost", results, GateSettings())}
    for line in summary_lines(results, gates=gates):
        assert len(line) <= WIDTH, line


def test_tag_table_survives_a_tag_whose_cases_all_errored() -> None:
    errored = sample(True)
    errored = type(errored)(None, 0.0, False, error="boom", error_kind="api")
    results = [*RESULTS, case("c", errored, errored, tags=("broken",))]
    broken = next(line for line in summary_lines(results) if line.strip().startswith("broken"))
    assert broken.split()[-1] == "n/a"
