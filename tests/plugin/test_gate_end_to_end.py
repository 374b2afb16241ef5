"""End to end: real pytest sessions on real YAML files against a real loopback OpenAI server.

Record once against the server, stop it, replay offline, and get the same verdicts.
"""

from __future__ import annotations

import shlex

import pytest
import yaml

from pytest_llmgate.simulator import OpenAISimulator

from .conftest import DEAD_BASE_URL, FAKE_KEY, FAKE_ORG, files_containing

pytestmark = pytest.mark.usefixtures("fake_credentials")

CASES = """\
baseline: gpt-4o
defaults:
  system: Name the vendor of the invoice.
  tags: [extraction]
cases:
  - id: stable
    prompt: "Invoice STABLE from ACME"
    assert: [{type: contains, value: ACME}]
  - id: regressed
    prompt: "Invoice REGRESSED from Globex"
    assert: [{type: contains, value: Globex}]
  - id: improved
    prompt: "Invoice IMPROVED from Initech"
    assert: [{type: contains, value: Initech}]
  - id: hopeless
    prompt: "Invoice HOPELESS from Umbrella"
    tags: [hard]
    assert: [{type: contains, value: Umbrella}]
"""


def script_models(server: OpenAISimulator) -> None:
    """gpt-5.5 loses REGRESSED, gpt-4o loses IMPROVED, both lose HOPELESS; others echo the prompt."""
    server.add_rule(model="gpt-5.5", contains="REGRESSED", content="I could not find a vendor.")
    server.add_rule(model="gpt-4o", contains="IMPROVED", content="No vendor here.")
    server.add_rule(contains="HOPELESS", content="Unknown.")


def cases_only(args: tuple[str, ...]) -> tuple[str, ...]:
    """These tests judge cases; the suite gates (tested in test_suite_gates.py) are deselected."""
    return args if "-m" in args else ("-m", "not llm_gate", *args)


def record(pytester: pytest.Pytester, server: OpenAISimulator, *args: str) -> pytest.RunResult:
    return pytester.runpytest(
        "--llm-candidate=gpt-5.5",
        "--llm-record-mode=once",
        f"--llm-base-url={server.base_url}",
        *cases_only(args),
    )


def replay(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest("--llm-candidate=gpt-5.5", f"--llm-base-url={DEAD_BASE_URL}", *cases_only(args))


def test_record_then_replay_offline_gives_identical_verdicts(
    pytester: pytest.Pytester, openai_server: OpenAISimulator
) -> None:
    pytester.makefile(".yaml", llm_invoices=CASES)
    script_models(openai_server)

    recorded = record(pytester, openai_server, "-v")
    recorded.assert_outcomes(passed=2, failed=1, xfailed=1)
    assert len(openai_server.requests) == 8  # 4 cases x 2 models
    openai_server.stop()

    replayed = replay(pytester, "-v")
    replayed.assert_outcomes(passed=2, failed=1, xfailed=1)
    for result in (recorded, replayed):
        result.stdout.fnmatch_lines(
            [
                "*llm_invoices.yaml::stable PASSED*",
                "*llm_invoices.yaml::regressed FAILED*",
                "*llm_invoices.yaml::improved PASSED*",
                "*llm_invoices.yaml::hopeless XFAIL*already failing on baseline*",
            ]
        )
    assert len(openai_server.requests) == 8  # replay sent nothing
    for model in ("gpt-4o", "gpt-5.5"):
        for case in ("stable", "regressed", "improved", "hopeless"):
            assert (pytester.path / "cassettes" / "llm_invoices" / case / f"{model}.yaml").is_file()


def test_regression_message_lists_the_failing_assertion_and_the_candidates_output(
    pytester: pytest.Pytester, openai_server: OpenAISimulator
) -> None:
    pytester.makefile(".yaml", llm_invoices=CASES)
    script_models(openai_server)
    result = record(pytester, openai_server)
    result.stdout.fnmatch_lines(
        [
            "*case 'regressed': regression: gpt-5.5 fails where gpt-4o passes",
            "*FAIL contains*Globex*",
            "*gpt-5.5 output: 'I could not find a vendor.'",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*llmgate: gpt-5.5 vs gpt-4o*",
            "*gpt-4o (baseline)*4*",
            "*gpt-5.5 (candidate)*4*",
            "*regressions (1):*",
            "*llm_invoices.yaml::regressed: regression*",
            "*improvements (1):*",
            "*llm_invoices.yaml::improved: improvement: gpt-5.5 passes where gpt-4o fails*",
        ]
    )


def test_llm_strict_fails_cases_that_fail_on_both_models(
    pytester: pytest.Pytester, openai_server: OpenAISimulator
) -> None:
    pytester.makefile(".yaml", llm_invoices=CASES)
    script_models(openai_server)
    record(pytester, openai_server).assert_outcomes(passed=2, failed=1, xfailed=1)
    replay(pytester, "--llm-strict").assert_outcomes(passed=2, failed=2)


def test_without_a_candidate_cases_fail_on_their_own_assertions(
    pytester: pytest.Pytester, openai_server: OpenAISimulator
) -> None:
    pytester.makefile(".yaml", llm_invoices=CASES)
    script_models(openai_server)
    result = pytester.runpytest("--llm-record-mode=once", f"--llm-base-url={openai_server.base_url}")
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines(["*case 'improved': gpt-4o fails the case*"])
    assert {request.model for request in openai_server.requests} == {"gpt-4o"}


def test_selection_by_name_and_by_tag_marker(
    pytester: pytest.Pytester, openai_server: OpenAISimulator
) -> None:
    pytester.makefile(".yaml", llm_invoices=CASES)
    script_models(openai_server)
    record(pytester, openai_server)
    openai_server.stop()
    replay(pytester, "-k", "stable").assert_outcomes(passed=1, deselected=8)
    replay(pytester, "-m", "hard").assert_outcomes(xfailed=1, deselected=8)
    replay(pytester, "-m", "extraction and not hard").assert_outcomes(passed=2, failed=1, deselected=6)


def test_missing_recording_names_case_model_and_the_command_to_record_it(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", llm_invoices=CASES)
    result = replay(pytester, "-k", "stable")
    result.assert_outcomes(failed=1, deselected=8)
    result.stdout.fnmatch_lines(
        [
            "*case 'stable' could not be judged:",
            "*gpt-4o: no recording (no cassette file: cassettes/llm_invoices/stable/gpt-4o.yaml);"
            " --llm-record-mode=none does not call the API",
            "*Record it: pytest llm_invoices.yaml::stable --llm-baseline=gpt-4o --llm-candidate=gpt-5.5"
            f" --llm-base-url={DEAD_BASE_URL} --llm-record-mode=once",
        ]
    )
    assert "Traceback" not in result.stdout.str()
    assert "vcr" not in result.stdout.str().lower().replace("--llm-record", "")


def test_the_record_hint_keeps_the_flags_that_decide_what_is_recorded(
    pytester: pytest.Pytester, openai_server: OpenAISimulator
) -> None:
    """Pasted as printed, the hint records what this run looked for: 3 samples, this judge, this
    endpoint, this parameter policy; the same replay then passes."""
    pytester.makefile(".yaml", llm_invoices=CASES)
    flags = (
        "--llm-repeat=3",
        "--llm-judge=gpt-4o",
        "--llm-param-policy=strict",
        f"--llm-base-url={openai_server.base_url}",
    )
    result = pytester.runpytest("--llm-candidate=gpt-5.5", *cases_only(("-k", "stable", *flags)))
    result.assert_outcomes(failed=1, deselected=8)  # 3 other cases, 5 gates
    hint = next(line for line in result.outlines if "Record it: " in line).split("Record it: ", 1)[1]
    command = shlex.split(hint)
    assert command[:2] == ["pytest", "llm_invoices.yaml::stable"]
    assert set(flags) <= set(command)
    recorded = pytester.runpytest(*command[1:])
    recorded.assert_outcomes(passed=1)
    assert len(openai_server.requests) == 6  # 3 samples of each model
    openai_server.stop()
    again = pytester.runpytest("--llm-candidate=gpt-5.5", *cases_only(("-k", "stable", *flags)))
    again.assert_outcomes(passed=1, deselected=8)


def test_editing_a_prompt_makes_its_recording_stale(
    pytester: pytest.Pytester, openai_server: OpenAISimulator
) -> None:
    pytester.makefile(".yaml", llm_invoices=CASES)
    record(pytester, openai_server)
    openai_server.stop()
    pytester.makefile(
        ".yaml", llm_invoices=CASES.replace("Invoice STABLE from ACME", "Invoice STABLE by ACME")
    )
    result = replay(pytester, "-k", "stable")
    result.assert_outcomes(failed=1, deselected=8)
    result.stdout.fnmatch_lines(
        [
            "*gpt-4o: the recording is stale (the request's body changed since it was recorded*",
            "*Record it: pytest llm_invoices.yaml::stable *--llm-record-mode=all",
        ]
    )


def test_rerecording_with_mode_all_replaces_a_stale_cassette(
    pytester: pytest.Pytester, openai_server: OpenAISimulator
) -> None:
    pytester.makefile(".yaml", llm_invoices=CASES)
    record(pytester, openai_server, "-k", "stable")
    edited = CASES.replace("Invoice STABLE from ACME", "Invoice STABLE by ACME")
    pytester.makefile(".yaml", llm_invoices=edited)
    pytester.runpytest(
        "--llm-candidate=gpt-5.5",
        "--llm-record-mode=all",
        f"--llm-base-url={openai_server.base_url}",
        "-k",
        "stable",
    ).assert_outcomes(passed=1, deselected=8)
    cassette = yaml.safe_load((pytester.path / "cassettes/llm_invoices/stable/gpt-4o.yaml").read_text())
    assert len(cassette["interactions"]) == 1
    assert "by ACME" in cassette["interactions"][0]["request"]["body"]
    openai_server.stop()
    replay(pytester, "-k", "stable").assert_outcomes(passed=1, deselected=8)


def test_no_secret_reaches_a_cassette_from_requests_or_responses(
    pytester: pytest.Pytester, openai_server: OpenAISimulator
) -> None:
    pytester.makefile(".yaml", llm_invoices=CASES)
    leaky_headers = {
        "openai-organization": FAKE_ORG,
        "openai-project": "proj_FAKEPROJECTllmgate0123",
        "Set-Cookie": "__cf_bm=FAKECOOKIEllmgate; path=/",
    }
    openai_server.add_rule(
        contains="STABLE", content=f"ACME. Your key is {FAKE_KEY} in org {FAKE_ORG}", headers=leaky_headers
    )
    openai_server.add_rule(headers=leaky_headers)
    record(pytester, openai_server, "--junitxml=report.xml")
    sent = openai_server.requests[0].headers
    assert sent["authorization"] == f"Bearer {FAKE_KEY}"  # the key was really used...
    assert sent["openai-organization"] == FAKE_ORG
    junit = (pytester.path / "report.xml").read_text()
    assert junit.count("<testcase ") == 4
    # ...and is nowhere in what the run wrote, the JUnit report included.
    assert files_containing(pytester.path, FAKE_KEY, FAKE_ORG, "FAKEPROJECT", "FAKECOOKIE") == []
    cassette = (pytester.path / "cassettes/llm_invoices/stable/gpt-4o.yaml").read_text()
    assert "REDACTED" in cassette
    assert "authorization" not in cassette.lower()
    assert "set-cookie" not in cassette.lower()


def test_latency_measured_at_record_time_decides_budgets_on_replay(
    pytester: pytest.Pytester, openai_server: OpenAISimulator
) -> None:
    pytester.makefile(
        ".yaml",
        llm_slow="""\
baseline: gpt-4o
cases:
  - id: slow
    prompt: hello
    budgets: {latency_ms: 200}
""",
    )
    openai_server.add_rule(model="gpt-5.5", latency_ms=300)
    recorded = record(pytester, openai_server)
    recorded.assert_outcomes(failed=1)
    recorded.stdout.fnmatch_lines(["*gpt-5.5 broke a budget: latency_ms: measured * ms > limit 200 ms*"])
    cassette = yaml.safe_load((pytester.path / "cassettes/llm_slow/slow/gpt-5.5.yaml").read_text())
    stored = float(cassette["interactions"][0]["response"]["headers"]["x-llmgate-latency-ms"][0])
    assert stored >= 300
    openai_server.stop()
    replayed = replay(pytester)
    replayed.assert_outcomes(failed=1)
    replayed.stdout.fnmatch_lines([f"*latency_ms: measured {stored:.0f} ms > limit 200 ms*"])


def test_output_token_budget_is_checked_on_the_candidate(
    pytester: pytest.Pytester, openai_server: OpenAISimulator
) -> None:
    pytester.makefile(
        ".yaml",
        llm_tokens="""\
baseline: gpt-4o
cases:
  - id: wordy
    prompt: hello
    budgets: {output_tokens: 50}
""",
    )
    openai_server.add_rule(model="gpt-4o", content="hi", usage={"completion_tokens": 80})
    openai_server.add_rule(model="gpt-5.5", content="hi", usage={"completion_tokens": 51})
    result = record(pytester, openai_server)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*gpt-5.5 broke a budget: output_tokens: measured 51 tokens > limit 50 tokens*"]
    )


def test_broken_case_file_is_a_collection_error_with_file_and_line(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", llm_bad="baseline: gpt-4o\ncases:\n  - id: a\n    prompt: hi\n    asert: []\n")
    result = replay(pytester)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(
        ["*llm_bad.yaml:5: case 'a': field 'asert': unknown key 'asert' (did you mean 'assert'?)*"]
    )


def test_a_file_without_a_baseline_says_how_to_set_one(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", llm_nobase="cases:\n  - id: a\n    prompt: hi\n")
    result = pytester.runpytest()
    result.stdout.fnmatch_lines(["*no baseline model*--llm-baseline=gpt-4o*"])


def test_baseline_option_wins_over_the_file(
    pytester: pytest.Pytester, openai_server: OpenAISimulator
) -> None:
    pytester.makefile(".yaml", llm_invoices=CASES)
    result = pytester.runpytest(
        "--llm-baseline=gpt-4.1",
        "--llm-record-mode=once",
        f"--llm-base-url={openai_server.base_url}",
        "-k",
        "stable",
    )
    result.assert_outcomes(passed=1, deselected=3)
    assert [request.model for request in openai_server.requests] == ["gpt-4.1"]


def test_llm_files_ini_changes_which_files_are_collected(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nllm_files = prompts_*.yaml\n")
    pytester.makefile(".yaml", prompts_x="baseline: m\ncases:\n  - id: a\n    prompt: hi\n")
    pytester.makefile(".yaml", llm_y="baseline: m\ncases:\n  - id: b\n    prompt: hi\n")
    result = pytester.runpytest("--collect-only", "-q")
    result.stdout.fnmatch_lines(["prompts_x.yaml::a"])
    assert "llm_y.yaml" not in result.stdout.str()


def test_xdist_workers_results_reach_the_summary(
    pytester: pytest.Pytester, openai_server: OpenAISimulator
) -> None:
    pytester.makefile(".yaml", llm_invoices=CASES)
    script_models(openai_server)
    record(pytester, openai_server)
    openai_server.stop()
    result = replay(pytester, "-n", "2")
    result.assert_outcomes(passed=2, failed=1, xfailed=1)
    result.stdout.fnmatch_lines(
        [
            "*llmgate: gpt-5.5 vs gpt-4o*",
            "*gpt-4o (baseline)*4*50%*",
            "*gpt-5.5 (candidate)*4*50%*",
            "*regressions (1):*",
        ]
    )


def test_help_lists_the_options(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(["*--llm-candidate=MODEL*", "*--llm-record-mode=*", "*llm_files*"])


def test_bad_record_mode_fails_before_collection(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--llm-record-mode=sometimes")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*invalid choice: 'sometimes'*"])


def test_llm_rubric_judge_calls_are_recorded_to_their_own_cassette_and_replayed(
    pytester: pytest.Pytester, openai_server: OpenAISimulator
) -> None:
    pytester.makefile(
        ".yaml",
        llm_rubric="""\
baseline: gpt-4o
cases:
  - id: polite
    prompt: "A customer asks where their parcel is."
    assert:
      - type: llm-rubric
        value: "Answers the question and is polite."
""",
    )
    openai_server.add_rule(model="gpt-4o", content="Kindly check the tracking link; it arrives Monday.")
    openai_server.add_rule(model="gpt-5.5", content="Figure it out yourself, rude answer.")
    openai_server.add_rule(
        model="judge-model", contains="rude answer", content='{"pass": false, "score": 0.1, "reason": "rude"}'
    )
    openai_server.add_rule(model="judge-model", content='{"pass": true, "score": 0.9, "reason": "polite"}')
    args = ("--llm-judge=judge-model", "-v")
    recorded = record(pytester, openai_server, *args)
    recorded.assert_outcomes(failed=1)
    recorded.stdout.fnmatch_lines(["*regression: gpt-5.5 fails where gpt-4o passes*", "*FAIL *rude*"])
    judge_prompts = [
        request.json["messages"][0]["content"]
        for request in openai_server.requests
        if request.model == "judge-model"
    ]
    assert len(judge_prompts) == 2  # one grading per model, with the same rubric in the same prompt
    assert all("Answers the question and is polite." in prompt for prompt in judge_prompts)
    folder = pytester.path / "cassettes" / "llm_rubric" / "polite"
    assert sorted(path.name for path in folder.iterdir()) == [
        "gpt-4o.judge-judge-model.yaml",
        "gpt-4o.yaml",
        "gpt-5.5.judge-judge-model.yaml",
        "gpt-5.5.yaml",
    ]
    openai_server.stop()
    replay(pytester, *args).assert_outcomes(failed=1)


def test_streamed_replies_are_recorded_parsed_and_replayed(
    pytester: pytest.Pytester, openai_server: OpenAISimulator
) -> None:
    pytester.makefile(
        ".yaml",
        llm_stream="""\
baseline: gpt-4o
defaults:
  params: {stream: true, stream_options: {include_usage: true}}
cases:
  - id: streamed
    prompt: "Name the capital of France."
    budgets: {output_tokens: 20}
    assert: [{type: contains, value: Paris}]
""",
    )
    openai_server.add_rule(content="The capital of France is Paris.", usage={"completion_tokens": 7})
    record(pytester, openai_server).assert_outcomes(passed=1)
    assert openai_server.requests[0].json["stream"] is True
    openai_server.stop()
    replayed = replay(pytester)
    replayed.assert_outcomes(passed=1)
    replayed.stdout.fnmatch_lines(["*gpt-5.5 (candidate)*1*100%*"])
