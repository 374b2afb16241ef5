"""End to end: `llmgate import promptfoo` on a promptfoo suite, then real pytest sessions on the
files it wrote: recorded against the loopback simulator, replayed offline with the same verdicts.

The suite (tests/fixtures/promptfoo/) has two prompts x (two inline tests + a CSV of two rows),
a defaultTest with vars and an assertion, five assertion kinds and one JavaScript assertion.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pytest_llmgate.cli import main
from pytest_llmgate.simulator import OpenAISimulator

from .conftest import DEAD_BASE_URL

pytestmark = pytest.mark.usefixtures("fake_credentials")

SUITE = Path(__file__).resolve().parents[1] / "fixtures" / "promptfoo"
ITEMS = [
    f"{case}[{prompt}]"
    for case in ("capital-of-france", "reply-length", "italy", "spain")
    for prompt in ("short", "chatty")
]


@pytest.fixture(autouse=True)
def offline_tiktoken(monkeypatch: pytest.MonkeyPatch, tiktoken_cache_dir: Path) -> None:
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tiktoken_cache_dir))


def converted(pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]) -> tuple[Path, str]:
    """The fixture suite copied into the test's project and converted into tests/llm/."""
    shutil.copytree(SUITE, pytester.path / "evals")
    code = main(
        ["import", "promptfoo", str(pytester.path / "evals" / "promptfooconfig.yaml"), "-o", "tests/llm"]
    )
    summary = capsys.readouterr().out
    assert code == 0, summary
    return pytester.path / "tests" / "llm" / "llm_promptfoo.yaml", summary


def test_converted_suite_records_then_replays_with_the_same_verdicts(
    pytester: pytest.Pytester, openai_server: OpenAISimulator, capsys: pytest.CaptureFixture[str]
) -> None:
    case_file, summary = converted(pytester, capsys)
    assert summary.splitlines()[0] == (
        "not converted: tests[0].assert[2]: javascript: output.length < 500 (JavaScript does not run "
        "here; port it to Python: {type: python, value: file://checks.py:fn})"
    )
    assert "llmgate import promptfoo: 8 case(s), 2 prompt(s), 2 target(s), 1 part(s) not converted" in summary
    assert (
        "next: pytest tests/llm/llm_promptfoo.yaml --llm-candidate=gpt-5.5 --llm-record-mode=once" in summary
    )
    text = case_file.read_text()
    # The JavaScript check is a comment at its place, after the two converted ones of its test.
    france = text[text.index("- id: capital-of-france") : text.index("- id: reply-length")]
    assert (
        france.rstrip()
        .splitlines()[-1]
        .strip()
        .startswith("# not converted: javascript: output.length < 500")
    )
    assert "  - file://../../evals/tests.csv" in text

    # The candidate gets Italy wrong: a regression on both prompts; every other item passes.
    openai_server.add_rule(model="gpt-5.5", contains="Italy", content="Rome, of course.")
    recorded = pytester.runpytest(
        "--llm-candidate=gpt-5.5",
        "--llm-record-mode=once",
        f"--llm-base-url={openai_server.base_url}",
        "-m",
        "not llm_gate",
        "-v",
        "-p",
        "no:cacheprovider",
    )
    recorded.assert_outcomes(passed=6, failed=2)
    recorded.stdout.fnmatch_lines(
        [
            "*llm_promptfoo.yaml::capital-of-france?chatty? PASSED*",
            "*llm_promptfoo.yaml::italy?short? FAILED*",
            "*case 'italy?short?': regression: gpt-5.5 fails where gpt-4o passes*",
        ]
    )
    baseline = [request.json for request in openai_server.requests if request.model == "gpt-4o"]
    assert len(baseline) == len(ITEMS)
    # The provider's config became the baseline target's params; defaultTest's var reached the prompt.
    assert {(body["temperature"], body["max_tokens"]) for body in baseline} == {(0, 200)}
    assert {"role": "user", "content": "Answer in a plain style: What is the capital of Spain?\n"} in [
        body["messages"][0] for body in baseline
    ]
    openai_server.stop()

    replayed = pytester.runpytest(
        "--llm-candidate=gpt-5.5",
        f"--llm-base-url={DEAD_BASE_URL}",
        "-m",
        "not llm_gate",
        "-v",
        "-p",
        "no:cacheprovider",
    )
    replayed.assert_outcomes(passed=6, failed=2)
    replayed.stdout.fnmatch_lines(["*llm_promptfoo.yaml::italy?chatty? FAILED*"])


def test_converted_suite_collects_every_prompt_test_pair(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    converted(pytester, capsys)
    result = pytester.runpytest("--collect-only", "-q", "-m", "not llm_gate", "-p", "no:cacheprovider")
    assert result.ret == 0
    collected = sorted(line.split("::", 1)[1] for line in result.outlines if "llm_promptfoo.yaml::" in line)
    assert collected == sorted(ITEMS)


def test_second_import_refuses_to_overwrite_without_force(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    case_file, _ = converted(pytester, capsys)
    case_file.write_text("# edited by hand\n")
    config = str(pytester.path / "evals" / "promptfooconfig.yaml")
    assert main(["import", "promptfoo", config, "-o", "tests/llm"]) == 1
    assert "error: tests/llm/llm_promptfoo.yaml exists; pass --force to replace it" in capsys.readouterr().out
    assert case_file.read_text() == "# edited by hand\n"
    assert main(["import", "promptfoo", config, "-o", "tests/llm", "--force"]) == 0
    assert case_file.read_text().startswith("# Converted from ")


def test_help_of_the_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["import", "promptfoo", "--help"])
    assert exited.value.code == 0
    help_text = " ".join(capsys.readouterr().out.split())  # argparse wraps to the terminal's width
    for expected in (
        "usage: llmgate import promptfoo [-h] -o PATH [--project-file FILE] [--force] CONFIG",
        "# not converted: ...",
        "JavaScript assertions, transforms, other providers",
        "llmgate import promptfoo promptfooconfig.yaml -o tests/llm/",
        "exit status: 0 when the files were written",
    ):
        assert expected in help_text
