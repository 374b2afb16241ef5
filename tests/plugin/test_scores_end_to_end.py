"""End to end (issue 14, part B): a promptfoo-style suite with a weight-0 metric and a pairwise
grader, recorded against the loopback simulator and replayed offline with identical verdicts;
the other graders and a case threshold through real sessions.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_llmgate.simulator import OpenAISimulator

from .test_promptfoo_style_suite import CSV, SCHEMA, literal, record, replay, script, verdicts

pytestmark = pytest.mark.usefixtures("fake_credentials")

JUDGE = "--llm-judge=judge-model"
CANDIDATE = "--llm-candidate=gpt-5.5"


@pytest.fixture(autouse=True)
def offline_tiktoken(monkeypatch: pytest.MonkeyPatch, tiktoken_cache_dir: Path) -> None:
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tiktoken_cache_dir))


SUITE = """\
baseline: gpt-4o
prompts:
  - file://prompts/brief.txt
  - id: chat
    messages:
      - {role: system, content: "You answer in a {{ style.tone }} tone."}
      - {role: user, content: "{{ question | upper }}"}
defaults:
  vars:
    style: {tone: formal}
  assert:
    - {type: icontains, value: "{{ expected }}"}
    - {type: contains, value: Paris, weight: 0, metric: mentions-paris}
    - {type: pairwise, value: "The reply answers correctly and adds useful detail."}
cases:
  - file://tests.csv
  - id: city-json
    prompt: "Give {{ question }} as JSON"
    vars: {question: the city of Paris, expected: paris}
    assert:
      - {type: is-json, value: file://schemas/city.json}
"""

SEINE = "THE CAPITAL OF FRANCE IS PARIS, ON THE SEINE."


def write_suite(pytester: pytest.Pytester) -> None:
    (pytester.path / "prompts").mkdir()
    (pytester.path / "prompts" / "brief.txt").write_text("Answer briefly: {{ question }}")
    (pytester.path / "schemas").mkdir()
    (pytester.path / "schemas" / "city.json").write_text(json.dumps(SCHEMA))
    (pytester.path / "tests.csv").write_text(CSV)
    pytester.makefile(".yaml", llm_suite=SUITE)


def script_judge(server: OpenAISimulator) -> None:
    """The judge prefers the reply that names the Seine, and Berlin over Munich, whatever the order;
    anything else is a tie. Added before the models' rules, which would match its prompts too."""
    for reply in (SEINE, "The capital is Berlin."):
        for slot, winner in (("reply_a", "A"), ("reply_b", "B")):
            server.add_rule(
                model="judge-model",
                contains=f"<{slot}>\n{reply}",
                content=json.dumps({"winner": winner, "reason": f"{winner} is right"}),
            )
    server.add_rule(model="judge-model", content='{"winner": "tie", "reason": "the same"}')


EXPECTED = {
    "france-capital[brief]": "PASSED",
    "france-capital[chat]": "PASSED",  # its weight-0 `contains: Paris` fails (PARIS): a metric only
    "germany-capital[brief]": "PASSED",
    "germany-capital[chat]": "FAILED",
    "city-json": "FAILED",
}
PAIRWISE = {
    "france-capital[brief]": "tie",
    "france-capital[chat]": "win",
    "germany-capital[brief]": "tie",  # same reply twice: the judge's taste for slot A cancels out
    "germany-capital[chat]": "loss",
    "city-json": "tie",
}
SUMMARY = [
    "metrics (mean score 0-100; candidate minus baseline over the same cases):",
    "  mentions-paris: gpt-4o 40.0 -> gpt-5.5 40.0 (+0.0 points over 5 paired cases)",
    "pairwise, gpt-5.5 vs gpt-4o (the judge compared both replies, in both orders):",
    "  (all cases): 1 win, 3 ties, 1 loss; sign test p = 1",
]


def test_suite_with_a_metric_and_pairwise_records_and_replays_with_identical_verdicts(
    pytester: pytest.Pytester, openai_server: OpenAISimulator
) -> None:
    write_suite(pytester)
    script_judge(openai_server)
    openai_server.add_rule(model="gpt-5.5", contains="FRANCE", content=SEINE)
    script(openai_server)
    report = pytester.path / "report.json"
    recorded = record(pytester, openai_server, CANDIDATE, JUDGE, f"--llm-report={report}")
    recorded_verdicts = verdicts(recorded)
    assert {name: verdict for name, verdict in recorded_verdicts.items() if "gate[" not in name} == EXPECTED
    recorded.stdout.fnmatch_lines(SUMMARY)
    data = json.loads(report.read_text())
    assert {case["case_id"]: case["pairwise"]["outcome"] for case in data["cases"]} == PAIRWISE
    chat = next(case for case in data["cases"] if case["case_id"] == "france-capital[chat]")
    metric = [check for check in chat["candidate"]["samples"][0]["assertions"] if check["metric"]]
    assert metric == [
        {
            "type": "contains",
            "passed": False,
            "score": 0.0,
            "reason": f"contains 'Paris': not found in \"{SEINE}\"",
            "weight": 0.0,
            "metric": "mentions-paris",
            "at": [],
        }
    ]
    # Twice per case: both orders.
    judged = [request for request in openai_server.requests if request.model == "judge-model"]
    assert len(judged) == 2 * len(PAIRWISE)
    folder = pytester.path / "cassettes" / "llm_suite" / "france-capital[chat]"
    assert (folder / "gpt-5.5-vs-gpt-4o.pairwise-judge-model.yaml").is_file()
    openai_server.stop()
    for workers in ([], ["-n", "2"]):
        replayed = replay(pytester, CANDIDATE, JUDGE, *workers)
        assert verdicts(replayed) == recorded_verdicts, workers
        assert replayed.ret == recorded.ret == pytest.ExitCode.TESTS_FAILED
        replayed.stdout.fnmatch_lines(SUMMARY)


def test_a_missing_pairwise_recording_is_said_not_judged_and_changes_no_verdict(
    pytester: pytest.Pytester, openai_server: OpenAISimulator
) -> None:
    pytester.makefile(
        ".yaml",
        llm_pair="""\
baseline: gpt-4o
cases:
  - id: hello
    prompt: Say hello
    assert: [{type: pairwise}]
""",
    )
    openai_server.add_rule(model="judge-model", content='{"winner": "tie"}')
    record(pytester, openai_server, CANDIDATE, JUDGE, "-k", "hello").assert_outcomes(passed=1)
    pairwise = next((pytester.path / "cassettes" / "llm_pair" / "hello").glob("*.pairwise-*.yaml"))
    pairwise.unlink()
    openai_server.stop()
    result = replay(pytester, CANDIDATE, JUDGE, "-k", "hello")
    result.stdout.fnmatch_lines(["*(all cases): 0 wins, 0 ties, 0 losses, 1 not judged; sign test p = 1*"])
    assert result.ret == pytest.ExitCode.OK


def test_graders_and_a_case_threshold_through_a_session(
    pytester: pytest.Pytester, openai_server: OpenAISimulator
) -> None:
    pytester.makefile(
        ".yaml",
        llm_graded="""\
baseline: gpt-4o
cases:
  - id: capital
    prompt: What is the capital of France?
    assert:
      - {type: factuality, value: "Paris is the capital of France."}
      - {type: model-graded-closedqa, value: names a city}
      - {type: g-eval, value: Coherence, threshold: 0.8}
  - id: lenient
    prompt: Name a colour
    threshold: 0.6
    assert:
      - {type: icontains, value: blue, weight: 2}
      - {type: icontains, value: red}
""",
    )
    openai_server.add_rule(model="gpt-4o", contains="France", content="Paris.")
    openai_server.add_rule(model="gpt-4o", contains="colour", content="Blue.")
    openai_server.add_rule(
        model="judge-model", contains="[Expert]", content='{"category": "A", "reason": "subset"}'
    )
    openai_server.add_rule(model="judge-model", contains="[Criterion]", content="It names Paris.\nY\nY")
    openai_server.add_rule(
        model="judge-model", contains="Evaluation steps", content='{"score": 7, "reason": "terse"}'
    )
    result = record(pytester, openai_server, JUDGE)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            literal("*case 'capital': gpt-4o fails the case*"),
            "*FAIL g-eval: score 0.7 (below threshold 0.8): terse*",
        ]
    )
    assert (
        pytester.path / "cassettes" / "llm_graded" / "capital" / "gpt-4o.judge-judge-model.yaml"
    ).is_file()
    openai_server.stop()
    replay(pytester, JUDGE).assert_outcomes(passed=1, failed=1)
