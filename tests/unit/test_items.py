"""What a failed gate item prints: its summary and details, wrapped to the terminal's width."""

from __future__ import annotations

from pytest_llmgate.gate import FAILED, GateCheck
from pytest_llmgate.items import gate_failure_text
from pytest_llmgate.report.terminal import WIDTH


def test_gate_failure_text_wraps_at_100_columns_with_indented_continuations() -> None:
    check = GateCheck(
        "drift",
        FAILED,
        "prompt tokens gpt-4o 28 -> gpt-5.5 36 (+28.6%; observed from recorded usage over 2 cases) "
        "exceeds the allowed drift of 5.0%; raise max_prompt_token_drift if this change is expected",
        (
            "observed (API usage): 28 -> 36 tokens (+28.6%) over 2 cases",
            "warning: gpt-4o: local token counts are off by 21.4% on average against the API's usage "
            "(local 34 vs reported 28 over 2 cases, tolerance 10%); locally computed prompt-token "
            "budgets and context-window truncation for this model are unreliable",
        ),
    )
    assert gate_failure_text(check).splitlines() == [
        "gate[drift] failed: prompt tokens gpt-4o 28 -> gpt-5.5 36 "
        "(+28.6%; observed from recorded usage over",
        "    2 cases) exceeds the allowed drift of 5.0%; raise max_prompt_token_drift if this change is",
        "    expected",
        "  observed (API usage): 28 -> 36 tokens (+28.6%) over 2 cases",
        "  warning: gpt-4o: local token counts are off by 21.4% on average against the API's usage (local 34",
        "      vs reported 28 over 2 cases, tolerance 10%); locally computed prompt-token budgets and",
        "      context-window truncation for this model are unreliable",
    ]


def test_gate_failure_text_keeps_flags_and_paths_whole() -> None:
    flag = "--llm-gate=max_cost_increase=0.5"
    path = "cassettes/" + "very-long-directory-name/" * 5 + "gpt-4o.yaml"
    check = GateCheck("cost", FAILED, "x " * 40 + flag, (f"see {path}",))
    lines = gate_failure_text(check).splitlines()
    assert lines[1].strip() == flag  # moved whole to the next line, not split at a hyphen
    assert lines[-1] == f"      {path}"  # longer than the width: a line of its own, unbroken
    assert all(len(line) <= WIDTH for line in lines if path not in line)
