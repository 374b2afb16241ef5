"""The end-of-session summary: the table, unknown costs never zero, gates, tags, width."""

from __future__ import annotations

import dataclasses

from pytest_llmgate.config import GateSettings
from pytest_llmgate.gate import evaluate_gate
from pytest_llmgate.model.params import ADAPTED_NOTE
from pytest_llmgate.report.terminal import WIDTH, adapted_lines, summary_lines

from .results_factory import case, sample, two_candidate_suite, upgrade_suite

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
    # $0.003 per case; the candidate passed one case of two, so it pays $0.006 per success.
    # $/1k in: $0.001 over 100 prompt tokens; $/1k out: $0.002 over 10 completion tokens.
    assert base_row.split()[-4:] == ["$0.0100", "$0.2000", "$0.00300", "0"]
    assert cand_row.split()[-2:] == ["$0.00600", "0"]


def test_cheap_calls_show_three_significant_digits_in_dollars() -> None:
    cheap = (0.00000024, 0.0000002)
    results = [case("a", sample(True, cost=cheap), sample(True, cost=cheap, prompt=1000))]
    lines = list(summary_lines(results))
    base_row = next(line for line in lines if line.startswith("base (baseline)"))
    cand_row = next(line for line in lines if line.startswith("cand (candidate)"))
    # 0.24 micro-dollars over 100 tokens is $0.0000024 per 1k; over 1000 tokens, $0.00000024
    assert base_row.split()[-4:] == ["$0.00000240", "$0.0000200", "$0.000000440", "0"]
    assert cand_row.split()[-4:-2] == ["$0.000000240", "$0.0000200"]


def test_the_table_fits_the_width_with_long_model_names() -> None:
    long_model = "meta-llama/Llama-3.1-405B-Instruct-Turbo-with-a-very-long-deployment-suffix"
    cheap = (0.0000000123, 0.0000000456)
    results = [case("a", sample(True, cost=cheap), sample(False, cost=cheap), base_model=long_model)]
    lines = list(summary_lines(results))
    assert all(len(line) <= WIDTH for line in lines), [line for line in lines if len(line) > WIDTH]
    row = next(line for line in lines if line.startswith("meta-llama/"))
    assert "..." in row
    assert row.split()[-2:] == ["$0.0000000579", "0"]


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
    assert "cases: 1 passed, 1 regression" in lines
    # the summary ends with the checklist's failing items and the verdict line of the reports
    assert lines[-1] == "BLOCKED: cand vs base, 1 case regressed, quality -50.0 (p = 1)"
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


def test_tokenizer_notes_are_one_line_pointing_at_the_warnings() -> None:
    note = "tokenizer: cannot load tiktoken encoding 'o200k_base' (" + "x" * 90 + ")"
    no_count = [
        dataclasses.replace(
            result, notes=(note,), baseline=dataclasses.replace(result.baseline, local_prompt_tokens=None)
        )
        for result in RESULTS
    ]
    lines = list(summary_lines(no_count))
    assert "tokenizer: no local token count for base, cand; see the warnings summary" in lines
    assert not any(line.startswith("warning:") or "o200k_base" in line for line in lines)


def test_replay_notes_are_one_line_each_with_the_fix() -> None:
    notes = tuple(
        f"replay: cassettes/llm_x/{name}/cand.yaml: 2 of 3 recorded answers not replayed (recorded with "
        "--llm-repeat 3?); re-record with --llm-record-mode=all or pass the same --llm-repeat"
        for name in ("a", "b")
    )
    results = [dataclasses.replace(RESULTS[0], notes=notes[:1]), dataclasses.replace(RESULTS[1], notes=notes)]
    lines = [line for line in summary_lines(results) if line.startswith("replay:")]
    assert lines == [
        "replay: cassettes/llm_x/a/cand.yaml: 2 of 3 recorded "
        "answers not replayed (recorded with --llm-re...",
        "replay: cassettes/llm_x/b/cand.yaml: 2 of 3 recorded "
        "answers not replayed (recorded with --llm-re...",
        "replay: re-record with --llm-record-mode=all or pass the --llm-repeat they were recorded with",
    ]
    assert all(len(line) <= WIDTH for line in lines)
    many = [
        dataclasses.replace(RESULTS[0], case_id=str(i), notes=(f"replay: cassettes/{i}.yaml: ...",))
        for i in range(12)
    ]
    lines = [line for line in summary_lines(many) if line.startswith("replay:")]
    assert lines[-2:] == [
        "replay: ... and 2 more cassettes like these",
        "replay: re-record with --llm-record-mode=all or pass the --llm-repeat they were recorded with",
    ]
    assert len(lines) == 12


def test_tag_table_survives_a_tag_whose_cases_all_errored() -> None:
    errored = sample(True)
    errored = type(errored)(None, 0.0, False, error="boom", error_kind="api")
    results = [*RESULTS, case("c", errored, errored, tags=("broken",))]
    broken = next(line for line in summary_lines(results) if line.strip().startswith("broken"))
    assert broken.split()[-1] == "n/a"


def test_several_candidates_have_a_row_each_and_their_regressions_are_named() -> None:
    lines = list(summary_lines(two_candidate_suite()))
    assert [line.split()[0] for line in lines[2:5]] == ["gpt-4o", "gpt-5.5", "o4-mini"]
    assert lines[2].split()[2] == "11"  # the shared baseline counted once per case
    assert "output-token inflation: +10.9% (gpt-5.5 vs gpt-4o completion tokens)" in lines
    assert "output-token inflation: +0.0% (o4-mini vs gpt-4o completion tokens)" in lines
    regressions = lines.index("regressions (1):")
    assert lines[regressions + 1].startswith("  llm_x.yaml::e5[gpt-5.5]:")
    tags = lines.index("by tag (quality and $ per successful task of each model):")
    assert lines[tags + 1].split() == ["tag", "cases", "gpt-4o", "gpt-5.5", "o4-mini"]
    assert lines[tags + 4].split() == [
        "reasoning",
        "6",
        "50.0",
        "n/a",
        "100.0",
        "$0.00800",
        "100.0",
        "$0.00100",
    ]
    assert all(len(line) <= WIDTH for line in lines)


def test_files_with_different_baselines_are_summarised_apart() -> None:
    other = dataclasses.replace(
        case("a", sample(False), sample(True), base_model="mini", cand_model="cand"),
        file="llm_y.yaml",
        file_nodeid="llm_y.yaml",
    )
    lines = list(summary_lines([RESULTS[0], other]))
    rows = [line.split("  ")[0] for line in lines[2:6]]
    assert rows == [
        "base (baseline)",
        "mini (baseline)",
        "cand vs base",
        "cand vs mini",
    ]
    assert next(line for line in lines if line.startswith("base (baseline)")).split()[3] == "100%"
    assert next(line for line in lines if line.startswith("mini (baseline)")).split()[3] == "0%"


def test_judge_calls_get_a_line_of_their_own() -> None:
    judged = dataclasses.replace(
        RESULTS[0],
        candidate=dataclasses.replace(
            RESULTS[0].candidate,
            samples=(dataclasses.replace(sample(True), judge_calls=2, judge_cost_usd=0.004),),
        ),
    )
    lines = list(summary_lines([judged, RESULTS[1]]))
    assert "judge: 2 calls, $0.00400 (llm-rubric grading; not in any model's $/success)" in lines
    unpriced = dataclasses.replace(
        judged,
        candidate=dataclasses.replace(
            RESULTS[0].candidate, samples=(dataclasses.replace(sample(True), judge_calls=1),)
        ),
    )
    assert "judge: 1 call, n/a (llm-rubric grading; not in any model's $/success)" in list(
        summary_lines([unpriced])
    )
    assert not any(line.startswith("judge:") for line in summary_lines(RESULTS))


def test_adapted_params_are_listed_once_per_target_and_parameter() -> None:
    notes = [
        ("gpt-5.5: max_tokens=300 sent as max_completion_tokens (reasoning models take it)",),
        ("gpt-5.5: max_tokens=600 sent as max_completion_tokens (reasoning models take it)",),
        (
            "gpt-5.5: temperature=0 not sent (reasoning models accept only 1)",
            "gpt-5.5: max_tokens=300 sent as max_completion_tokens (reasoning models take it)",
        ),
        ("gpt-5.5: temperature=0 not sent (reasoning models refuse it)", 'o4-mini: stop="x" not sent (r)'),
    ]
    results = [
        dataclasses.replace(result, notes=tuple(ADAPTED_NOTE + note for note in extra))
        for result, extra in zip(upgrade_suite(), notes, strict=False)
    ]
    assert list(adapted_lines(results)) == [
        "params adapted: gpt-5.5: max_tokens=300 (and 1 other value) sent as max_completion_tokens "
        "(reason...",
        "params adapted: gpt-5.5: temperature=0 not sent (reasoning models accept only 1)",
        'params adapted: o4-mini: stop="x" not sent (r)',
        "params adapted: send them as written with --llm-param-policy=strict (see the README)",
    ]
    assert list(adapted_lines(upgrade_suite())) == []
