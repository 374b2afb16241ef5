"""End to end: the suite gates gate[quality|cost|latency|tokens|drift] of a case file.

Real pytest sessions on real YAML files against the loopback OpenAI simulator: record, stop the
server, replay offline, and check the verdicts, the exact messages, the exit codes, the
`llmgate.yaml` / case file / `--llm-gate` precedence and the same verdicts under xdist.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from pytest_llmgate.gate import FAILED, PRICE_EXAMPLE, GateCheck
from pytest_llmgate.items import gate_failure_text
from pytest_llmgate.metrics import format_usd
from pytest_llmgate.simulator import OpenAISimulator, count_tokens

from .conftest import DEAD_BASE_URL

pytestmark = pytest.mark.usefixtures("fake_credentials")

GATES = ("quality", "cost", "latency", "tokens", "drift")
# gpt-5.5 priced like gpt-4o: the cost gate then sees only what the candidate does differently.
SAME_PRICE = "pricing:\n  gpt-5.5: {input: 2.5, cached_input: 1.25, output: 10.0}\n"
# Latency of calls that take a few ms is noise; suites not about latency switch its gate off.
NO_LATENCY_GATE = "gate: {max_latency_increase: null}\n"
XFAIL_REASON = "regressed; judged at suite level by gate[quality]"


@pytest.fixture(autouse=True)
def offline_tiktoken(monkeypatch: pytest.MonkeyPatch, tiktoken_cache_dir: Path) -> None:
    """Local token counts work offline, so no run tries (and notes) a vocabulary download."""
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tiktoken_cache_dir))


def case_file(*cases: str, header: str = NO_LATENCY_GATE + SAME_PRICE) -> str:
    """A case file on baseline gpt-4o; each case asks for the vendor and must name ACME."""
    body = "".join(
        f'  - id: {case}\n    prompt: "Invoice {case.upper()} from ACME"\n'
        "    assert: [{type: contains, value: ACME}]\n"
        for case in cases
    )
    return f"baseline: gpt-4o\n{header}cases:\n{body}"


def numbered(count: int) -> list[str]:
    return [f"case-{index:02d}" for index in range(count)]


def record(
    pytester: pytest.Pytester, server: OpenAISimulator, *args: str, candidate: str = "gpt-5.5"
) -> pytest.RunResult:
    return pytester.runpytest(
        f"--llm-candidate={candidate}", "--llm-record-mode=once", f"--llm-base-url={server.base_url}", *args
    )


def replay(pytester: pytest.Pytester, *args: str, candidate: str = "gpt-5.5") -> pytest.RunResult:
    return pytester.runpytest(f"--llm-candidate={candidate}", f"--llm-base-url={DEAD_BASE_URL}", *args)


def gate_verdicts(result: pytest.RunResult, file: str) -> dict[str, str]:
    """Gate name -> PASSED/FAILED/SKIPPED from `-v` lines; each gate must be listed exactly once."""
    pattern = re.compile(rf"^{re.escape(file)}::gate\[(\w+)\] (PASSED|FAILED|SKIPPED)\b")
    found = [match.groups() for line in result.outlines if (match := pattern.match(line))]
    names = [name for name, _ in found]
    assert sorted(names) == sorted(GATES), f"gate lines of {file} in -v output: {found}"
    return dict(found)


def literal(patterns: list[str]) -> list[str]:
    """fnmatch patterns in which `[` and `]` are literal (gate[cost]), `*` and `?` still wildcards."""
    return [re.sub(r"[\[\]]", lambda match: f"[{match.group()}]", pattern) for pattern in patterns]


def expect_lines(result: pytest.RunResult, patterns: list[str], *, consecutive: bool = False) -> None:
    """`stdout.fnmatch_lines` with literal brackets: each pattern matches a whole line, in order."""
    result.stdout.fnmatch_lines(literal(patterns), consecutive=consecutive)


def failure_lines(name: str, summary: str, *details: str) -> list[str]:
    """A gate failure as the item prints it, wrapped at 100 columns (the wrapping: test_items.py)."""
    return gate_failure_text(GateCheck(name, FAILED, summary, details)).splitlines()


def p95_pairs(result: pytest.RunResult) -> list[tuple[int, int]]:
    """(baseline p95, candidate p95) in ms from each gate[latency] failure headline."""
    headline = re.compile(r"^gate\[latency\] failed: p95 (\d+) ms -> (\d+) ms")
    return [
        (int(match.group(1)), int(match.group(2)))
        for line in result.outlines
        if (match := headline.match(line))
    ]


def junit_cases(path: Path) -> dict[tuple[str, str], ET.Element]:
    """(classname, name) -> <testcase>; a duplicate entry fails the test."""
    cases: dict[tuple[str, str], ET.Element] = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        key = (case.get("classname", ""), case.get("name", ""))
        assert key not in cases, f"{key} reported twice in {path.name}"
        cases[key] = case
    return cases


def junit_verdict(case: ET.Element) -> str:
    for tag, verdict in (("failure", "FAILED"), ("error", "ERROR"), ("skipped", "SKIPPED")):
        if case.find(tag) is not None:
            return verdict
    return "PASSED"


# --- latency --------------------------------------------------------------------------------


def test_slower_candidate_fails_gate_latency_only(
    pytester: pytest.Pytester, openai_server: OpenAISimulator
) -> None:
    pytester.makefile(".yaml", llm_speed=case_file("a", "b", "c", header=SAME_PRICE))
    openai_server.latency_ms = {"gpt-4o": 20, "gpt-5.5": 120}
    openai_server.add_rule(content="ACME")

    recorded = record(pytester, openai_server, "-v")
    openai_server.stop()
    replayed = replay(pytester, "-v")

    for result in (recorded, replayed):
        assert result.ret == pytest.ExitCode.TESTS_FAILED  # every case passed; the gate fails the run
        result.assert_outcomes(passed=7, failed=1)
        assert gate_verdicts(result, "llm_speed.yaml") == {
            "quality": "PASSED",
            "cost": "PASSED",
            "latency": "FAILED",
            "tokens": "PASSED",
            "drift": "PASSED",
        }
        expect_lines(
            result,
            [
                "*_ llm gate: llm_speed.yaml::gate[latency] _*",
                "gate[latency] failed: p95 * ms -> * ms (+*%): "
                "the increase exceeds max_latency_increase +50%",
                "  gpt-4o: mean * ms, p50 * ms, p95 * ms, p99 * ms, max * ms over 3 calls",
                "  gpt-5.5: mean * ms, p50 * ms, p95 * ms, p99 * ms, max * ms over 3 calls",
            ],
        )
    # Replay judges the latency measured at record time (stored to 0.1 ms, hence +-1 ms shown).
    [(base_recorded, cand_recorded)] = p95_pairs(recorded)
    [(base_replayed, cand_replayed)] = p95_pairs(replayed)
    assert abs(base_recorded - base_replayed) <= 1
    assert abs(cand_recorded - cand_replayed) <= 1
    assert cand_replayed >= 120  # the simulated latency is a floor; overheads only add to it


def test_absolute_p95_limit_and_switching_the_relative_one_off(
    pytester: pytest.Pytester, openai_server: OpenAISimulator
) -> None:
    pytester.makefile(".yaml", llm_speed=case_file("a", "b", header=SAME_PRICE))
    openai_server.latency_ms = {"gpt-4o": 20, "gpt-5.5": 120}
    openai_server.add_rule(content="ACME")
    record(pytester, openai_server).assert_outcomes(passed=6, failed=1)
    openai_server.stop()

    relative_off = ("--llm-gate", "max_latency_increase=null")
    too_slow = replay(pytester, *relative_off, "--llm-gate", "max_p95_latency_ms=100")
    too_slow.assert_outcomes(passed=6, failed=1)
    expect_lines(
        too_slow, ["gate[latency] failed: p95 * ms -> * ms (+*%): gpt-5.5 p95 exceeds max_p95_latency_ms 100"]
    )
    fast_enough = replay(pytester, *relative_off, "--llm-gate", "max_p95_latency_ms=5000")
    fast_enough.assert_outcomes(passed=7)
    assert fast_enough.ret == pytest.ExitCode.OK


# --- tokens and cost ------------------------------------------------------------------------


def test_verbose_candidate_fails_gate_tokens_and_gate_cost(
    pytester: pytest.Pytester, openai_server: OpenAISimulator
) -> None:
    pytester.makefile(".yaml", llm_verbose=case_file("a", "b", "c"))
    wordy = "Certainly! The vendor of this invoice is ACME, a company that sells many fine products."
    openai_server.add_rule(model="gpt-5.5", content=wordy)
    openai_server.add_rule(content="ACME")
    record(pytester, openai_server)
    openai_server.stop()

    result = replay(pytester, "-v")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=5, failed=2, skipped=1)
    assert gate_verdicts(result, "llm_verbose.yaml") == {
        "quality": "PASSED",
        "cost": "FAILED",
        "latency": "SKIPPED",
        "tokens": "FAILED",
        "drift": "PASSED",
    }
    wordy_tokens = count_tokens(wordy)  # "ACME" is one token to the simulator
    inflation = f"{wordy_tokens - 1:+.1%}"
    expect_lines(
        result,
        [
            # Calls this cheap cost fractions of a cent: 3 significant digits, not "$0.00004".
            "gate[cost] failed: cost per successful task $0.0000350 -> $0.000205 (+485.7%) exceeds",
            "    max_cost_increase +25%",
            "  gpt-4o: total $0.000105, 3/3 cases passed, per "
            "successful task $0.0000350, per case $0.0000350",
            "  gpt-5.5: total $0.000615, 3/3 cases passed, per successful task $0.000205, per case $0.000205",
            "  raise the limit with --llm-gate max_cost_increase=N if the price is worth it",
        ],
        consecutive=True,
    )
    expect_lines(
        result,
        [
            *failure_lines(
                "tokens",
                f"output-token inflation {inflation} (gpt-5.5 vs gpt-4o) "
                f"exceeds max_output_token_inflation +30%",
                f"completion tokens: gpt-4o 3, gpt-5.5 {3 * wordy_tokens}",
            ),
        ],
        consecutive=True,
    )
    expect_lines(result, [f"output-token inflation: {inflation} (candidate vs baseline completion tokens)"])


def test_cached_and_reasoning_tokens_are_priced_exactly(
    pytester: pytest.Pytester, openai_server: OpenAISimulator
) -> None:
    """1000 prompt tokens of which 800 cached, 500 completion tokens of which 400 reasoning."""
    # USD per 1M tokens: cached tokens at the cached price, the other 200 at the input price;
    # the 400 reasoning tokens are inside the 500 completion tokens, billed once as output.
    expected = (200 * 10.0 + 800 * 1.0 + 500 * 100.0) / 1e6
    assert expected == pytest.approx(0.0528)
    baseline_cost = (200 * 2.5 + 800 * 1.25 + 500 * 10.0) / 1e6  # gpt-4o's built-in price
    pytester.makefile(
        ".yaml",
        llm_cached=f"""\
baseline: gpt-4o
{NO_LATENCY_GATE}pricing:
  gpt-5.5: {{input: 10.0, cached_input: 1.0, output: 100.0}}
cases:
  - id: over
    prompt: "Invoice OVER from ACME"
    budgets: {{cost_usd: 0.0527}}
    assert: [{{type: contains, value: ACME}}]
  - id: under
    prompt: "Invoice UNDER from ACME"
    budgets: {{cost_usd: 0.0529}}
    assert: [{{type: contains, value: ACME}}]
""",
    )
    usage = {"prompt_tokens": 1000, "cached_tokens": 800, "completion_tokens": 500, "reasoning_tokens": 400}
    openai_server.add_rule(content="ACME", usage=usage)
    record(pytester, openai_server)
    openai_server.stop()

    result = replay(pytester, "-v")
    result.assert_outcomes(passed=4, failed=2, skipped=1)
    expect_lines(result, ["llm_cached.yaml::over FAILED*", "llm_cached.yaml::under PASSED*"])
    expect_lines(
        result, [f"case 'over': gpt-5.5 broke a budget: cost_usd: measured ${expected:.6f} > limit $0.052700"]
    )
    assert f"${expected:.6f}" == "$0.052800"
    assert (format_usd(baseline_cost), format_usd(expected)) == ("$0.00650", "$0.0528")
    expect_lines(
        result,
        failure_lines(
            "cost",
            f"cost per successful task $0.00650 -> $0.0528 ({expected / baseline_cost - 1:+.1%}) "
            "exceeds max_cost_increase +25%",
            "gpt-4o: total $0.0130, 2/2 cases passed, per successful task $0.00650, per case $0.00650",
            "gpt-5.5: total $0.1056, 2/2 cases passed, per successful task $0.0528, per case $0.0528",
        ),
    )
    # $/1k in = input USD per 1000 prompt tokens; $/1k out = output USD per 1000 completion tokens.
    expect_lines(
        result,
        [
            "gpt-4o (baseline)    2      100%  100.0    *  $0.00150  $0.0100   $0.00650   0",
            "gpt-5.5 (candidate)  2      100%  100.0    *  $0.00280  $0.1000   $0.0528    0",
        ],
    )


def test_model_without_a_price_warns_shows_na_and_skips_gate_cost(
    pytester: pytest.Pytester, openai_server: OpenAISimulator
) -> None:
    pytester.makefile(".yaml", llm_unpriced=case_file("a", "b", header=NO_LATENCY_GATE))
    openai_server.add_rule(content="ACME")
    # Two warnings: no price, and no tokenizer known for my-model-x.
    record(pytester, openai_server, candidate="my-model-x").assert_outcomes(passed=5, skipped=2, warnings=2)
    openai_server.stop()

    result = replay(pytester, "-v", "-rs", candidate="my-model-x")
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=5, skipped=2, warnings=2)
    reason = (
        "not judged: cost unknown for my-model-x (no price, or calls without usage); add it under "
        "pricing: in llmgate.yaml, e.g. my-model-x: {input: 2.5, cached_input: 1.25, output: 10.0}"
    )
    expect_lines(result, ["llm_unpriced.yaml::gate[cost] SKIPPED (not judged: cost unknown*"])
    warning = (
        "no price for model 'my-model-x': cost shown as unknown (never 0), gate[cost] skipped; add to "
        "llmgate.yaml: pricing: {my-model-x: {input: 2.5, cached_input: 1.25, output: 10.0}} "
        "(USD per 1M tokens)"
    )
    assert len(warning) < 200
    assert PRICE_EXAMPLE in warning
    assert PRICE_EXAMPLE in reason  # one example, the same everywhere
    # Located at the case file, not at the plugin's own code.
    expect_lines(
        result,
        [
            "*= warnings summary =*",
            "llm_unpriced.yaml:1",
            f"  {pytester.path / 'llm_unpriced.yaml'}:1: LlmGateWarning: {warning}",
        ],
    )
    assert "items.py" not in result.stdout.str()
    expect_lines(
        result,
        [
            "my-model-x (candidate)  2      100%  100.0    *  n/a       n/a       n/a         0",
            "cost of my-model-x: unknown (no price for it, or calls without usage); shown as n/a, never 0",
        ],
    )
    expect_lines(result, [f"SKIPPED [1] *: {reason}"])
    assert "$0.00000" not in result.stdout.str()  # unknown is never shown as free

    # Doing what the message says makes the gate judge the cost.
    pytester.makefile(".yaml", llmgate="pricing:\n  my-model-x: {input: 1.0, output: 4.0}\n")
    priced = replay(pytester, "-v", candidate="my-model-x")
    priced.assert_outcomes(passed=6, skipped=1)
    expect_lines(priced, ["llm_unpriced.yaml::gate[cost] PASSED*"])
    assert "no price for model" not in priced.stdout.str()


def test_skipped_gate_points_at_the_case_file_not_the_plugin(
    pytester: pytest.Pytester, openai_server: OpenAISimulator
) -> None:
    """The -rs line of a skipped gate names its case file, with or without xdist."""
    pytester.makefile(".yaml", llm_unpriced=case_file("a", header=NO_LATENCY_GATE))
    openai_server.add_rule(content="ACME")
    record(pytester, openai_server, candidate="my-model-x")
    openai_server.stop()
    for xdist in ((), ("-n", "2")):
        result = replay(pytester, "-rs", *xdist, candidate="my-model-x")
        skipped = [line for line in result.outlines if line.startswith("SKIPPED [1] ")]
        assert len(skipped) == 2, skipped
        assert all(line.startswith("SKIPPED [1] llm_unpriced.yaml:") for line in skipped), (xdist, skipped)


# --- quality --------------------------------------------------------------------------------


def test_a_few_regressions_by_chance_pass_gate_quality(
    pytester: pytest.Pytester, openai_server: OpenAISimulator
) -> None:
    pytester.makefile(".yaml", llm_quality=case_file(*numbered(20)))
    for case in numbered(2):
        openai_server.add_rule(model="gpt-5.5", contains=case.upper(), content="none")
    openai_server.add_rule(content="ACME")
    record(pytester, openai_server)
    openai_server.stop()

    result = replay(pytester, "-v")
    # The two regressed cases fail their own items (per_case: fail, the default)...
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=22, failed=2, skipped=1)
    expect_lines(result, ["llm_quality.yaml::case-00 FAILED*", "llm_quality.yaml::case-01 FAILED*"])
    # ...but two of twenty is no evidence that the candidate is worse.
    assert gate_verdicts(result, "llm_quality.yaml")["quality"] == "PASSED"
    # The p-value once, then what it means: twenty cases this spread out cannot see 2 points.
    expect_lines(
        result,
        [
            "  PASSED  llm_quality.yaml::gate[quality]: quality -10.0 points (100.0 -> 90.0), p = 0.35: "
            "20 cases",
            "            cannot detect a 2-point drop at alpha 0.05; about * are needed",
        ],
        consecutive=True,
    )


def test_many_regressions_fail_gate_quality_and_per_case_report_xfails_them(
    pytester: pytest.Pytester, openai_server: OpenAISimulator
) -> None:
    cases = case_file(*numbered(20)).replace("  - id: case-00\n", "  - id: case-00\n    critical: true\n")
    pytester.makefile(".yaml", llm_quality=cases)
    for case in numbered(8):
        openai_server.add_rule(model="gpt-5.5", contains=case.upper(), content="none")
    openai_server.add_rule(content="ACME")
    record(pytester, openai_server)
    openai_server.stop()

    result = replay(pytester, "-v", "-rx", "--llm-gate", "per_case=report")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    # 12 passing cases + gate[tokens] + gate[drift]; the critical case, gate[quality] and
    # gate[cost] (cost per successful task: 20 vs 12 successes) fail; 7 regressions xfail.
    result.assert_outcomes(passed=14, failed=3, xfailed=7, skipped=1)
    assert gate_verdicts(result, "llm_quality.yaml") == {
        "quality": "FAILED",
        "cost": "FAILED",
        "latency": "SKIPPED",
        "tokens": "PASSED",
        "drift": "PASSED",
    }
    expect_lines(
        result,
        [f"XFAIL llm_quality.yaml::case-{index:02d} - {XFAIL_REASON}" for index in range(1, 8)],
        consecutive=True,
    )
    expect_lines(
        result,
        [
            "*_ llm case: case-00 _*",
            "case 'case-00' (critical: its regression always fails): "
            "regression: gpt-5.5 fails where gpt-4o passes",
            "  FAIL contains 'ACME': not found in \"none\"",
        ],
    )
    expect_lines(
        result,
        [
            "gate[quality] failed: quality -40.0 points (100.0 -> 60.0), p = 0.006: significant drop",
            "  quality 100.0 -> 60.0 (-40.0 points, 95% CI *) over 20 cases; Wilcoxon p = 0.006",
            "      (significant at alpha 0.05); pass/fail: 8 regressed, 0 improved, McNemar p = 0.0078",
            "  regressed cases: case-00, case-01, case-02, case-03, case-04, case-05, case-06, case-07",
            "  the drop exceeds max_quality_drop 2 and is significant "
            "at alpha 0.05; fix the regressed cases or",
            "      raise the threshold with --llm-gate max_quality_drop=N",
        ],
        consecutive=True,
    )
    # 20 cases at $0.00004 against 12 successes: $0.0000667 each, which shows the +66.7% beside it
    # (five decimals showed "$0.00004 -> $0.00007", which does not).
    expect_lines(
        result,
        [
            "gate[cost] failed: cost per successful task $0.0000400 -> $0.0000667 (+66.7%) exceeds",
            "    max_cost_increase +25%",
            "  gpt-4o: total $0.000800, 20/20 cases passed, per "
            "successful task $0.0000400, per case $0.0000400",
            "  gpt-5.5: total $0.000800, 12/20 cases passed, per "
            "successful task $0.0000667, per case $0.0000400",
        ],
        consecutive=True,
    )


# --- repeats --------------------------------------------------------------------------------


def test_repeats_record_one_interaction_per_sample_and_pass_rate_judges_them(
    pytester: pytest.Pytester, openai_server: OpenAISimulator
) -> None:
    pytester.makefile(
        ".yaml",
        llm_flaky=f"""\
baseline: gpt-4o
{NO_LATENCY_GATE}{SAME_PRICE}cases:
  - id: tolerant
    prompt: "Invoice TOLERANT from ACME"
    pass_rate: 0.6
    assert: [{{type: contains, value: ACME}}]
  - id: strict
    prompt: "Invoice STRICT from ACME"
    assert: [{{type: contains, value: ACME}}]
""",
    )
    # The candidate's first sample of each case misses; the other two are right.
    openai_server.add_rule(model="gpt-5.5", contains="TOLERANT", content="none", times=1)
    openai_server.add_rule(model="gpt-5.5", contains="STRICT", content="none", times=1)
    openai_server.add_rule(content="ACME")
    cases_only = ("-m", "not llm_gate", "-v")

    recorded = record(pytester, openai_server, "--llm-repeat", "3", *cases_only)
    assert len(openai_server.requests) == 12  # 2 cases x 2 models x 3 samples
    for case in ("tolerant", "strict"):
        for model in ("gpt-4o", "gpt-5.5"):
            path = pytester.path / "cassettes" / "llm_flaky" / case / f"{model}.yaml"
            assert len(yaml.safe_load(path.read_text())["interactions"]) == 3, path
    openai_server.stop()
    replayed = replay(pytester, "--llm-repeat", "3", *cases_only)

    for result in (recorded, replayed):
        result.assert_outcomes(passed=1, failed=1, deselected=5)
        expect_lines(result, ["llm_flaky.yaml::tolerant PASSED*", "llm_flaky.yaml::strict FAILED*"])
        expect_lines(
            result,
            [
                "case 'strict': regression: gpt-5.5 fails where gpt-4o passes",
                "  sample 1: FAIL contains 'ACME': not found in \"none\"",
                "  gpt-5.5 output: 'none'",
            ],
            consecutive=True,
        )
        expect_lines(result, ["samples passed: gpt-4o 100% of 6, gpt-5.5 67% of 6"])
        assert "did not replay" not in result.stdout.str()
    assert len(openai_server.requests) == 12  # replay sent nothing

    # Replayed without --llm-repeat 3, only the first sample of each cassette is judged (and the
    # verdict changes): the summary says which cassettes had more, and what to do.
    for xdist in ((), ("-n", "2")):
        fewer = replay(pytester, *cases_only, *xdist)
        outcomes = fewer.parseoutcomes()
        assert (outcomes.get("passed", 0), outcomes.get("failed", 0)) == (0, 2), xdist
        notes = sorted(line for line in fewer.outlines if line.startswith("replay: cassettes/"))
        assert [note[:84] for note in notes] == [
            f"replay: cassettes/llm_flaky/{case}/{model}.yaml: 2 of 3 recorded answers not replayed"[:84]
            for case in ("strict", "tolerant")
            for model in ("gpt-4o", "gpt-5.5")
        ], xdist
        assert all(len(note) <= 100 for note in notes)
        expect_lines(
            fewer,
            ["replay: re-record with --llm-record-mode=all or pass the --llm-repeat they were recorded with"],
        )


# --- where thresholds come from -------------------------------------------------------------


def test_threshold_precedence_llmgate_yaml_then_case_file_then_cli(
    pytester: pytest.Pytester, openai_server: OpenAISimulator
) -> None:
    pytester.makefile(
        ".yaml",
        llmgate=f"gate:\n  max_output_token_inflation: 0.1\n  max_latency_increase: null\n{SAME_PRICE}",
    )
    pytester.makefile(".yaml", llm_words=case_file("words", header=""))
    openai_server.add_rule(model="gpt-4o", content="ACME Corp Ltd Inc Co")  # 5 completion tokens
    openai_server.add_rule(model="gpt-5.5", content="ACME Corp Ltd Inc Co Bros")  # 6: +20%

    from_project = record(pytester, openai_server, "-v")
    from_project.assert_outcomes(passed=4, failed=1, skipped=1)
    assert gate_verdicts(from_project, "llm_words.yaml")["latency"] == "SKIPPED"  # null in llmgate.yaml
    expect_lines(
        from_project,
        [
            "gate[tokens] failed: output-token inflation +20.0% (gpt-5.5 vs gpt-4o) exceeds",
            "    max_output_token_inflation +10%",
            "  completion tokens: gpt-4o 5, gpt-5.5 6",
        ],
        consecutive=True,
    )
    openai_server.stop()

    cli_over_project = replay(pytester, "-v", "--llm-gate", "max_output_token_inflation=0.25")
    assert cli_over_project.ret == pytest.ExitCode.OK
    assert gate_verdicts(cli_over_project, "llm_words.yaml")["tokens"] == "PASSED"

    pytester.makefile(
        ".yaml", llm_words=case_file("words", header="gate: {max_output_token_inflation: 0.5}\n")
    )
    file_over_project = replay(pytester, "-v")
    assert file_over_project.ret == pytest.ExitCode.OK
    assert gate_verdicts(file_over_project, "llm_words.yaml")["tokens"] == "PASSED"

    cli_over_file = replay(pytester, "--llm-gate", "max_output_token_inflation=0.15")
    assert cli_over_file.ret == pytest.ExitCode.TESTS_FAILED
    expect_lines(
        cli_over_file,
        [
            "gate[tokens] failed: output-token inflation +20.0% (gpt-5.5 vs gpt-4o) exceeds",
            "    max_output_token_inflation +15%",
        ],
        consecutive=True,
    )


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        (
            "max_cost_increase=abc",
            "ERROR: --llm-gate: gate setting max_cost_increase must be a number >= 0, got 'abc'",
        ),
        (
            "max_cost_increase",
            "ERROR: --llm-gate 'max_cost_increase': expected KEY=VALUE, "
            "e.g. --llm-gate max_cost_increase=0.4",
        ),
        (
            "max_cost_incrase=0.3",
            "ERROR: --llm-gate: unknown gate setting 'max_cost_incrase' "
            "(did you mean 'max_cost_increase'?); allowed: max_quality_drop, *",
        ),
        (
            "per_case=maybe",
            "ERROR: --llm-gate: gate setting per_case must be one of fail, report, got 'maybe'",
        ),
        ("alpha=1.5", "ERROR: --llm-gate: gate setting alpha must be between 0 and 1, got 1.5"),
    ],
)
def test_bad_llm_gate_flag_is_a_usage_error_naming_the_flag(
    pytester: pytest.Pytester, flag: str, message: str
) -> None:
    pytester.makefile(".yaml", llm_words=case_file("words"))
    result = replay(pytester, "--llm-gate", flag)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(literal([message]))
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            "gate:\n  max_output_token_inflation: lots\n",
            "ERROR: */llmgate.yaml:2: field 'gate': gate setting max_output_token_inflation "
            "must be a number >= 0, got 'lots'",
        ),
        (
            "gates:\n  max_cost_increase: 0.1\n",
            "ERROR: */llmgate.yaml: field 'gates': unknown key 'gates' (did you mean 'gate'?); "
            "allowed: models, pricing, gate, gate_scope, encodings, context_windows, production",
        ),
        (
            "pricing:\n  my-model: {input: 1.0}\n",
            "ERROR: */llmgate.yaml*: field 'pricing': price for model 'my-model': missing field 'output'*",
        ),
        ("gate: [1, 2\n", "ERROR: */llmgate.yaml:*: invalid YAML: *"),
    ],
    ids=["bad-value", "unknown-key", "bad-price", "bad-yaml"],
)
def test_bad_llmgate_yaml_is_a_usage_error_naming_the_file(
    pytester: pytest.Pytester, content: str, message: str
) -> None:
    pytester.makefile(".yaml", llm_words=case_file("words"))
    pytester.makefile(".yaml", llmgate=content)
    result = replay(pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(literal([message]))
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


# --- xdist and JUnit ------------------------------------------------------------------------


MIXED_EXPECTED = {
    "llm_mixed.yaml": {
        "quality": "PASSED",  # one case of six regressed: no evidence
        "cost": "FAILED",
        "latency": "FAILED",
        "tokens": "FAILED",
        "drift": "PASSED",
    },
    "llm_calm.yaml": {
        "quality": "PASSED",
        "cost": "FAILED",
        "latency": "SKIPPED",  # switched off in this file
        "tokens": "FAILED",
        "drift": "PASSED",
    },
}


def record_mixed_suite(pytester: pytest.Pytester, server: OpenAISimulator) -> None:
    """Two files; the candidate is slower and wordier everywhere and loses case-00 of llm_mixed."""
    pytester.makefile(".yaml", llm_mixed=case_file(*numbered(6), header=SAME_PRICE))
    pytester.makefile(".yaml", llm_calm=case_file("calm-a", "calm-b"))
    server.latency_ms = {"gpt-4o": 20, "gpt-5.5": 120}
    server.add_rule(model="gpt-5.5", contains="CASE-00", content="I could not find a vendor.")
    server.add_rule(model="gpt-5.5", content="The vendor of this invoice is ACME, as stated at its top.")
    server.add_rule(content="ACME")
    record(pytester, server)
    server.stop()


def test_xdist_gives_the_same_gate_verdicts_once_each_in_verbose_and_junit(
    pytester: pytest.Pytester, openai_server: OpenAISimulator
) -> None:
    record_mixed_suite(pytester, openai_server)
    runs = {
        mode: replay(pytester, "-v", f"--junitxml=junit-{mode}.xml", *xdist)
        for mode, xdist in (("alone", ()), ("n2", ("-n", "2")))
    }
    for mode, result in runs.items():
        assert result.ret == pytest.ExitCode.TESTS_FAILED, mode
        # 8 cases (case-00 regressed) and 2 x 5 gates.
        result.assert_outcomes(passed=11, failed=6, skipped=1)
        for file, expected in MIXED_EXPECTED.items():
            assert gate_verdicts(result, file) == expected, (mode, file)

        junit = junit_cases(pytester.path / f"junit-{mode}.xml")
        assert len(junit) == 18, (mode, sorted(junit))
        assert junit_verdict(junit[("llm_mixed.yaml", "case-00")]) == "FAILED"
        for file, expected in MIXED_EXPECTED.items():
            verdicts = {gate: junit_verdict(junit[(file, f"gate[{gate}]")]) for gate in GATES}
            assert verdicts == expected, (mode, file)
        failure = junit[("llm_mixed.yaml", "gate[latency]")].find("failure")
        assert failure is not None
        assert failure.get("message", "").startswith("gate[latency] failed: p95 ")
        skipped = junit[("llm_calm.yaml", "gate[latency]")].find("skipped")
        assert skipped is not None
        assert skipped.get("message") == "switched off (both latency limits are null)"
    # Both replays judge the same recorded latencies: the same numbers, not only the same verdicts.
    assert p95_pairs(runs["alone"]) == p95_pairs(runs["n2"])


@pytest.mark.parametrize("xdist", [(), ("-n", "2")], ids=["alone", "n2"])
def test_junit_gate_entries_carry_the_gate_numbers_as_properties(
    pytester: pytest.Pytester, openai_server: OpenAISimulator, xdist: tuple[str, ...]
) -> None:
    record_mixed_suite(pytester, openai_server)
    replay(pytester, "--junitxml=junit.xml", *xdist)
    junit = junit_cases(pytester.path / "junit.xml")
    gate = junit[("llm_mixed.yaml", "gate[tokens]")]
    properties = {prop.get("name"): prop.get("value") for prop in gate.iter("property")}
    assert properties.get("llm_gate_status") == "failed", properties
    assert properties.get("llm_max_output_token_inflation") == "0.3"
    assert "llm_output_token_inflation" in properties
