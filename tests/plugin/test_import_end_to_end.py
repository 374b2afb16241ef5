"""End to end: `llmgate import traffic`, then real pytest sessions on the file it wrote.

The baseline replays the imported production answers with no network; only the candidate is
called (and recorded) against the loopback simulator; no planted secret reaches any file.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_llmgate.cli import main
from pytest_llmgate.simulator import OpenAISimulator

from .conftest import DEAD_BASE_URL, FAKE_KEY, files_containing

pytestmark = pytest.mark.usefixtures("fake_credentials")

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "traffic"
CORPUS = Path(__file__).resolve().parents[3] / "shared" / "real-openai"
PLANTED_EMAIL = "planted.person@example.com"


def planted_line() -> str:
    """A call whose prompt and answer carry the fake key and an email (built at run time)."""
    request = {
        "model": "gpt-4o",
        "messages": [{"role": "user", "content": f"Why does {FAKE_KEY} fail? Write to {PLANTED_EMAIL}."}],
    }
    response = {
        "object": "chat.completion",
        "model": "gpt-4o",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": f"Rotate the key; I told {PLANTED_EMAIL}."},
                "finish_reason": "stop",
            }
        ],
    }
    return json.dumps({"request": request, "response": response, "latency_ms": 300, "tags": ["support"]})


def test_imported_fixture_traffic_gates_the_candidate(
    pytester: pytest.Pytester, openai_server: OpenAISimulator, capsys: pytest.CaptureFixture[str]
) -> None:
    source = pytester.path / "traffic.jsonl"
    source.write_text((FIXTURES / "calls.jsonl").read_text() + planted_line() + "\n")
    assert main(["import", "traffic", str(source), "-o", str(pytester.path / "llm_traffic.yaml")]) == 0
    summary = capsys.readouterr().out
    assert "llmgate import traffic: 6 imported, 1 duplicate, 3 skipped" in summary
    assert f"{source}:5: malformed line" in summary
    source.unlink()  # only what the import wrote is left to search
    assert files_containing(pytester.path, FAKE_KEY, PLANTED_EMAIL, "jane.doe@example.com") == []

    # The candidate routes the ticket elsewhere: one regression; the rest echo and pass.
    openai_server.add_rule(
        model="gpt-5.5",
        contains="charged twice",
        tool_calls=[{"name": "route_ticket", "arguments": {"queue": "refunds", "priority": "urgent"}}],
    )
    openai_server.add_rule(
        model="gpt-5.5",
        contains="Extract vendor",
        content='{"vendor": "ACME Corp", "total": 1234.5, "currency": "EUR", "card": "[CARD_1]"}',
    )
    recorded = pytester.runpytest(
        "--llm-candidate=gpt-5.5",
        "--llm-record-mode=once",
        f"--llm-base-url={openai_server.base_url}",
        "-m",
        "not llm_gate",
        "-p",
        "no:cacheprovider",
    )
    recorded.assert_outcomes(passed=5, failed=1)
    recorded.stdout.fnmatch_lines(
        ["*case 'i-was-charged-twice-call-*': regression: gpt-5.5 fails where gpt-4o passes"]
    )
    # The baseline was replayed: gpt-4o was only asked as the pairwise judge of text answers.
    assert {request.model for request in openai_server.requests if not judging(request)} == {"gpt-5.5"}
    assert len([request for request in openai_server.requests if not judging(request)]) == 6
    openai_server.stop()

    replayed = pytester.runpytest(
        "--llm-candidate=gpt-5.5",
        f"--llm-base-url={DEAD_BASE_URL}",
        "-m",
        "not llm_gate",
        "-p",
        "no:cacheprovider",
    )
    replayed.assert_outcomes(passed=5, failed=1)
    assert files_containing(pytester.path, FAKE_KEY, PLANTED_EMAIL) == []


def test_baseline_alone_replays_offline(pytester: pytest.Pytester) -> None:
    source = FIXTURES / "calls.jsonl"
    assert main(["import", "traffic", str(source), "-o", str(pytester.path / "llm_traffic.yaml")]) == 0
    result = pytester.runpytest(
        f"--llm-base-url={DEAD_BASE_URL}", "--llm-record-mode=none", "-v", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=5)  # cases on the baseline alone; no gates without a candidate
    result.stdout.fnmatch_lines(["*llm_traffic.yaml::how-long-is-the-refund-* PASSED*"])


@pytest.mark.skipif(not CORPUS.is_dir(), reason=f"real OpenAI corpus not found at {CORPUS}")
def test_real_openai_traffic_through_the_console_script(
    pytester: pytest.Pytester, openai_server: OpenAISimulator
) -> None:
    """The corpus's real requests and answers as a JSONL log, imported by the installed script."""
    lines = []
    for path in sorted(CORPUS.glob("[0-9]*.json")):
        interaction = json.loads(path.read_text(encoding="utf-8"))
        lines.append(json.dumps({"request": interaction["request"], "response": interaction["response"]}))
    lines.append(planted_line())
    source = pytester.path / "real.jsonl"
    source.write_text("\n".join(lines) + "\n")
    script = shutil.which("llmgate", path=str(Path(sys.executable).parent))
    assert script, "the llmgate console script is missing: pip install -e ."
    done = subprocess.run(
        [script, "import", "traffic", str(source), "-o", "llm_real.yaml", "--model", "gpt-4o"],
        cwd=pytester.path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "error response (HTTP 401)" in done.stdout
    imported = int(done.stdout.split("llmgate import traffic: ")[1].split(" imported")[0])
    assert imported >= 10
    source.unlink()
    assert files_containing(pytester.path, FAKE_KEY, PLANTED_EMAIL) == []

    baseline = pytester.runpytest(f"--llm-base-url={DEAD_BASE_URL}", "-p", "no:cacheprovider")
    baseline.assert_outcomes(passed=imported)
    candidate = pytester.runpytest(
        "--llm-candidate=gpt-5.5",
        "--llm-record-mode=once",
        f"--llm-base-url={openai_server.base_url}",
        "-m",
        "not llm_gate",
        "-p",
        "no:cacheprovider",
    )
    outcomes = candidate.parseoutcomes()
    assert outcomes.get("passed", 0) + outcomes.get("failed", 0) + outcomes.get("xfailed", 0) == imported
    assert "error" not in outcomes
    assert {request.model for request in openai_server.requests if not judging(request)} == {"gpt-5.5"}
    assert len([request for request in openai_server.requests if not judging(request)]) == imported
    assert files_containing(pytester.path, FAKE_KEY, PLANTED_EMAIL) == []


def judging(request: object) -> bool:
    """Whether a request to the simulator is a grader's (the judge prompt), not a case's."""
    return "You are comparing two replies written by AI models" in json.dumps(getattr(request, "json", None))
