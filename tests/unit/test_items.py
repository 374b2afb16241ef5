"""What a failed gate item prints (its summary and details, wrapped to the terminal's width), and
the JUnit properties a case item attaches, scrubbed of secrets."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from pytest_llmgate.gate import FAILED, GateCheck
from pytest_llmgate.items import PropertyScrubber, gate_failure_text, property_scrubber
from pytest_llmgate.report.terminal import WIDTH
from pytest_llmgate.secrets import REDACTED, Scrubber


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


# Assembled at run time so that repository secret scanners stay quiet.
KEY = "-".join(("sk", "proj", "Zq81FAKEitemsKEY0x7Hc2LmWVb9Tn4QsKr"))


class Marked(str):
    """A str subclass: scrubbed as `Scrubber.value` scrubs it, never served from the cache."""


def test_property_scrubber_gives_what_scrubber_value_gives() -> None:
    scrubber = Scrubber((KEY,))
    properties: list[tuple[str, object]] = [
        ("llm_outcome", "passed"),
        ("llm_baseline_model", f"proxy/{KEY}"),  # a secret in a string value
        (f"llm_{KEY}", 1),  # and in a name
        ("llm_baseline_latency_ms", 12.5),
        ("llm_baseline_passed", True),
        ("llm_baseline_cost_usd", None),
        ("llm_candidate_model", Marked(f"m-{KEY}")),
        ("llm_details", {"reply": KEY, "tokens": [1, KEY]}),
    ]
    scrub = PropertyScrubber(scrubber)
    for _ in range(2):  # the second time from the cache
        assert scrub(properties) == scrubber.value(properties)
    assert KEY not in repr(scrub(properties))


def test_property_scrubber_starts_afresh_when_the_session_learns_a_key() -> None:
    config: Any = SimpleNamespace(stash=pytest.Stash())
    secret = "FAKEitemsTARGETsecret42"  # not credential-shaped: scrubbed only once known
    first = Scrubber(())
    assert property_scrubber(config, first)([("model", secret)]) == [("model", secret)]
    assert property_scrubber(config, first) is property_scrubber(config, first)
    learned = first.with_secrets([secret])
    assert property_scrubber(config, learned)([("model", secret)]) == [("model", REDACTED)]
