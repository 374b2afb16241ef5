"""End to end: several candidates compared with one baseline in one run (issue 12).

Real pytest sessions on real YAML files against the loopback OpenAI simulator: record two
candidates at once, stop the server, replay offline (also under xdist), select one candidate
with `-k`, and read the per-candidate verdicts, gates and report columns. One candidate keeps
the ids it always had. Judge calls are counted, priced and kept out of the models' costs.
"""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path

import jsonschema
import pytest

from pytest_llmgate.simulator import OpenAISimulator

from .conftest import DEAD_BASE_URL

pytestmark = pytest.mark.usefixtures("fake_credentials")

CANDIDATES = ("--llm-candidate=gpt-5.5", "--llm-candidate=o4-mini")
# o4-mini is cheaper than gpt-4o; gpt-5.5 costs what gpt-4o costs (USD per 1M tokens).
CASE_FILE = """\
baseline: gpt-4o
gate: {max_latency_increase: null}
pricing:
  gpt-4o: {input: 2.5, output: 10.0}
  gpt-5.5: {input: 2.5, output: 10.0}
  o4-mini: {input: 1.0, output: 4.0}
cases:
  - id: alpha
    prompt: "Invoice ALPHA from ACME"
    assert: [{type: contains, value: ACME}]
  - id: beta
    prompt: "Invoice BETA from ACME"
    assert: [{type: contains, value: ACME}]
  - id: gamma
    prompt: "Invoice GAMMA from ACME"
    assert: [{type: contains, value: ACME}]
"""
CASES = ("alpha", "beta", "gamma")
GATES = ("quality", "cost", "latency", "tokens", "drift")


@pytest.fixture(autouse=True)
def offline_tiktoken(monkeypatch: pytest.MonkeyPatch, tiktoken_cache_dir: Path) -> None:
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tiktoken_cache_dir))


@pytest.fixture
def recorded(pytester: pytest.Pytester, openai_server: OpenAISimulator) -> pytest.RunResult:
    """Both candidates recorded in one run: gpt-5.5 never names the vendor, o4-mini always does."""
    pytester.makefile(".yaml", llm_multi=CASE_FILE)
    openai_server.add_rule(model="gpt-5.5", content="I cannot tell")
    openai_server.add_rule(content="ACME")
    result = pytester.runpytest(
        *CANDIDATES, "--llm-record-mode=once", f"--llm-base-url={openai_server.base_url}", "-v"
    )
    calls: dict[str | None, int] = {}
    for request in openai_server.requests:
        calls[request.model] = calls.get(request.model, 0) + 1
    # The baseline is asked once per case, however many candidates share its answer.
    assert calls == {"gpt-4o": 3, "gpt-5.5": 3, "o4-mini": 3}
    openai_server.stop()
    return result


def replay(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest(f"--llm-base-url={DEAD_BASE_URL}", *args)


def verdicts(result: pytest.RunResult) -> dict[str, str]:
    """Item name -> PASSED/FAILED/SKIPPED from `-v` lines (each listed once), with or without xdist."""
    local = re.compile(r"^llm_multi\.yaml::(\S+) (PASSED|FAILED|SKIPPED)\b")
    distributed = re.compile(r"^\[gw\d+\] \[ *\d+%\] (PASSED|FAILED|SKIPPED) llm_multi\.yaml::(\S+)")
    found: dict[str, str] = {}
    for line in result.outlines:
        if match := local.match(line):
            name, verdict = match.groups()
        elif match := distributed.match(line):
            verdict, name = match.groups()
        else:
            continue
        assert name not in found, f"{name} listed twice"
        found[name] = verdict
    return found


def expected_verdicts() -> dict[str, str]:
    items = {f"{case}[gpt-5.5]": "FAILED" for case in CASES}  # regressions fail their items
    items.update({f"{case}[o4-mini]": "PASSED" for case in CASES})
    # gpt-5.5 passed no case: its cost per success is unbounded; and it writes more tokens.
    items.update({"gate[cost][gpt-5.5]": "FAILED", "gate[latency][gpt-5.5]": "SKIPPED"})
    items.update({"gate[tokens][gpt-5.5]": "FAILED"})
    items.update({"gate[quality][gpt-5.5]": "PASSED", "gate[drift][gpt-5.5]": "PASSED"})
    items.update({f"gate[{gate}][o4-mini]": "PASSED" for gate in GATES})
    items["gate[latency][o4-mini]"] = "SKIPPED"  # switched off in the case file
    return items


def test_two_candidates_get_their_own_items_gates_and_verdicts(
    pytester: pytest.Pytester, recorded: pytest.RunResult
) -> None:
    replayed = replay(pytester, *CANDIDATES, "-v")
    distributed = replay(pytester, *CANDIDATES, "-v", "-n", "2")
    for result in (recorded, replayed, distributed):
        assert result.ret == pytest.ExitCode.TESTS_FAILED
        result.assert_outcomes(passed=9, failed=5, skipped=2)
        assert verdicts(result) == expected_verdicts()
        result.stdout.fnmatch_lines(
            [
                "*= llmgate: gpt-5.5, o4-mini vs gpt-4o =*",
                "gpt-4o (baseline) * 3 * 100% *",
                "gpt-5.5 (candidate) * 3 * 0% *",
                "o4-mini (candidate) * 3 * 100% *",
            ]
        )
        # A failing gate names its candidate, as its item id does.
        result.stdout.fnmatch_lines(["gate[[]cost][[]gpt-5.5] failed: gpt-5.5 passed no case*"])
    # Under xdist the controller judged each candidate's gates over that candidate's results.
    distributed.stdout.fnmatch_lines(["*FAILED llm_multi.yaml::gate[[]cost][[]gpt-5.5]*"])


def test_k_selects_one_candidates_cases_and_gates(
    pytester: pytest.Pytester, recorded: pytest.RunResult
) -> None:
    only_o4 = replay(pytester, *CANDIDATES, "-v", "-k", "o4-mini")
    assert only_o4.ret == pytest.ExitCode.OK
    only_o4.assert_outcomes(passed=7, skipped=1, deselected=8)  # the 3 cases and 5 gates of gpt-5.5
    assert set(verdicts(only_o4)) == {name for name in expected_verdicts() if "[o4-mini]" in name}

    only_gpt = replay(pytester, *CANDIDATES, "-v", "-k", "gpt-5.5 and not gate")
    only_gpt.assert_outcomes(failed=3, deselected=13)
    assert verdicts(only_gpt) == {f"{case}[gpt-5.5]": "FAILED" for case in CASES}


def test_one_candidate_keeps_the_ids_and_summary_it_always_had(
    pytester: pytest.Pytester, recorded: pytest.RunResult
) -> None:
    result = replay(pytester, "--llm-candidate=o4-mini", "-v")
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=7, skipped=1)
    assert verdicts(result) == {
        **{case: "PASSED" for case in CASES},
        **{f"gate[{gate}]": "PASSED" for gate in GATES},
        "gate[latency]": "SKIPPED",
    }
    result.stdout.fnmatch_lines(["*= llmgate: o4-mini vs gpt-4o =*", "o4-mini (candidate) *"])
    assert "[o4-mini]" not in result.stdout.str()


def test_reports_have_a_column_and_a_verdict_per_candidate(
    pytester: pytest.Pytester, recorded: pytest.RunResult
) -> None:
    replay(pytester, *CANDIDATES, "--llm-report=out/report.json", "--llm-report=out/report.md")
    data = json.loads((pytester.path / "out/report.json").read_text())
    schema = json.loads(resources.files("pytest_llmgate").joinpath("data/report.schema.json").read_text())
    jsonschema.validate(data, schema)

    assert data["candidates"] == ["gpt-5.5", "o4-mini"]
    assert data["verdict"]["status"] == "BLOCKED"
    assert [(pair["candidate"], pair["status"]) for pair in data["comparisons"]] == [
        ("gpt-5.5", "BLOCKED"),
        ("o4-mini", "PASSED"),
    ]
    assert data["comparisons"][0]["failed_gates"] == [
        "llm_multi.yaml::gate[cost][gpt-5.5]",
        "llm_multi.yaml::gate[tokens][gpt-5.5]",
    ]
    assert [(model["model"], model["role"], model["cases"]) for model in data["models"]] == [
        ("gpt-4o", "baseline", 3),  # the shared baseline run counted once per case
        ("gpt-5.5", "candidate", 3),
        ("o4-mini", "candidate", 3),
    ]
    assert sorted((case["case_id"], case["candidate"]["model"]) for case in data["cases"]) == sorted(
        (case, model) for case in CASES for model in ("gpt-5.5", "o4-mini")
    )
    assert {gate["candidate"] for gate in data["gates"]} == {"gpt-5.5", "o4-mini"}
    # Routing chooses among all three models: o4-mini is as good and the cheapest.
    routing = data["routing"]
    assert routing["default"]["model"] == "o4-mini"
    assert [route["model"] for route in routing["default"]["models"]] == ["gpt-4o", "gpt-5.5", "o4-mini"]
    assert [blend["name"] for blend in routing["blends"]] == [
        "routed",
        "all baseline",
        "all gpt-5.5",
        "all o4-mini",
    ]
    routed, all_o4 = routing["blends"][0], routing["blends"][3]
    assert routed["cost_usd"] == all_o4["cost_usd"]
    assert routed["passed"] == 3

    markdown = (pytester.path / "out/report.md").read_text()
    verdict = markdown.splitlines()[0]
    assert verdict.startswith("## ❌ BLOCKED: gpt-5.5: BLOCKED, cost per successful task unbounded")
    assert "; o4-mini: PASSED, " in verdict
    for row in (
        "| `gpt-4o` | baseline | 3 |",
        "| `gpt-5.5` | candidate | 3 |",
        "| `o4-mini` | candidate | 3 |",
    ):
        assert row in markdown
    assert "| tag | cases | gpt-4o quality |" not in markdown  # no tags: no tag table
    assert "`llm_multi.yaml::gate[cost][gpt-5.5]`" in markdown


RUBRIC_FILE = """\
baseline: gpt-4o
gate: {max_latency_increase: null}
pricing:
  gpt-4o: {input: 2.5, output: 10.0}
  gpt-5.5: {input: 2.5, output: 10.0}
  judge-model: {input: 1000.0, output: 1000.0}
cases:
  - id: poem
    prompt: "Write about the sea"
    assert:
      - {type: llm-rubric, value: "The text is about the sea."}
"""


def test_judge_calls_are_counted_priced_and_kept_out_of_the_models_costs(
    pytester: pytest.Pytester, openai_server: OpenAISimulator
) -> None:
    pytester.makefile(".yaml", llm_rubric=RUBRIC_FILE)
    openai_server.add_rule(model="judge-model", content='{"pass": true, "score": 1, "reason": "ok"}')
    openai_server.add_rule(content="Waves roll in.")
    args = ("--llm-candidate=gpt-5.5", "--llm-judge=judge-model", "--llm-report=report.json")
    result = pytester.runpytest(*args, "--llm-record-mode=once", f"--llm-base-url={openai_server.base_url}")
    result.assert_outcomes(passed=5, skipped=1)
    # Two model calls and two judge calls (one per graded reply): all counted, all billed.
    assert sum(request.model == "judge-model" for request in openai_server.requests) == 2
    result.stdout.fnmatch_lines(["llmgate: 4/4 calls, 0 errors, 0 retries, $* spent, * s"])
    data = json.loads((pytester.path / "report.json").read_text())
    samples = [data["cases"][0][role]["samples"][0] for role in ("baseline", "candidate")]
    assert [sample["judge_calls"] for sample in samples] == [1, 1]
    judge_cost = sum(sample["judge_cost_usd"] for sample in samples)
    assert judge_cost > 0
    assert data["judge"] == {"calls": 2, "cost_usd": pytest.approx(judge_cost)}
    for model, sample in zip(data["models"], samples, strict=True):
        assert model["cost_usd"] == pytest.approx(sample["cost_usd"])  # the judge's cost is not in it
    model_cost = sum(sample["cost_usd"] for sample in samples)
    spent = re.search(r"\$(\d+\.\d+) spent", result.stdout.str())
    assert spent is not None
    assert float(spent.group(1)) == pytest.approx(model_cost + judge_cost, abs=1e-4)
    result.stdout.fnmatch_lines(["judge: 2 calls, $* (llm-rubric grading; not in any model's $/success)"])

    openai_server.stop()
    replayed = replay(pytester, *args)
    replayed.assert_outcomes(passed=5, skipped=1)
    replayed.stdout.fnmatch_lines(["judge: 2 calls, $* (llm-rubric grading; not in any model's $/success)"])


def test_ini_llm_candidates_lists_them_and_the_flag_wins(
    pytester: pytest.Pytester, recorded: pytest.RunResult
) -> None:
    pytester.makeini("[pytest]\nllm_candidates =\n    gpt-5.5\n    o4-mini\n")
    from_ini = replay(pytester, "-v")
    from_ini.assert_outcomes(passed=9, failed=5, skipped=2)
    assert verdicts(from_ini) == expected_verdicts()
    flag_wins = replay(pytester, "--llm-candidate=o4-mini", "-v")
    flag_wins.assert_outcomes(passed=7, skipped=1)
    assert "alpha" in verdicts(flag_wins)


def test_files_naming_different_baselines_are_summarised_apart(
    pytester: pytest.Pytester, openai_server: OpenAISimulator
) -> None:
    pytester.makefile(".yaml", llm_multi=CASE_FILE)
    pytester.makefile(
        ".yaml",
        llm_small=CASE_FILE.replace("baseline: gpt-4o\n", "baseline: gpt-4o-mini\n").replace(
            "pricing:\n", "pricing:\n  gpt-4o-mini: {input: 0.15, output: 0.6}\n"
        ),
    )
    openai_server.add_rule(model="gpt-4o-mini", content="no idea")
    openai_server.add_rule(content="ACME")
    result = pytester.runpytest(
        "--llm-candidate=o4-mini", "--llm-record-mode=once", f"--llm-base-url={openai_server.base_url}"
    )
    # o4-mini improves on gpt-4o-mini (not a failure); gpt-4o-mini passed nothing: no cost gate there
    result.assert_outcomes(passed=13, skipped=3)
    result.stdout.fnmatch_lines(
        [
            "*= llmgate: o4-mini vs gpt-4o, gpt-4o-mini =*",
            "gpt-4o (baseline) * 3 * 100% *",
            "gpt-4o-mini (baseline) * 3 * 0% *",
            "o4-mini vs gpt-4o * 3 * 100% *",
            "o4-mini vs gpt-4o-mini * 3 * 100% *",
        ]
    )


@pytest.mark.parametrize("concurrency", ["1", "8"])
def test_the_baseline_is_called_once_per_case_with_or_without_the_prefetch_pool(
    pytester: pytest.Pytester, openai_server: OpenAISimulator, concurrency: str
) -> None:
    pytester.makefile(".yaml", llm_multi=CASE_FILE)
    openai_server.add_rule(content="ACME")
    # Record mode `all` calls the API for every run it makes: a baseline run per candidate item
    # would show here as 6 baseline calls (mode `once` would replay the first recording).
    result = pytester.runpytest(
        *CANDIDATES,
        "--llm-record-mode=all",
        f"--llm-base-url={openai_server.base_url}",
        f"--llm-concurrency={concurrency}",
    )
    result.assert_outcomes(passed=14, skipped=2)
    asked = [request.model for request in openai_server.requests]
    assert sorted(asked) == sorted(["gpt-4o", "gpt-5.5", "o4-mini"] * 3)
    result.stdout.fnmatch_lines(["llmgate: 9/9 calls, 0 errors, 0 retries, $* spent, * s"])


WORKER_STATE = """
from pytest_llmgate.keys import STATE_KEY

def pytest_sessionfinish(session):
    state = session.config.stash.get(STATE_KEY, None)
    worker = getattr(session.config, "workerinput", {}).get("workerid", "main")
    if state is not None:
        with open(f"shared-{worker}.txt", "w") as out:
            out.write(str(state.shared_cassettes))
"""


@pytest.mark.parametrize(
    ("args", "expected"),
    [((), {"main": "False"}), (("-n", "2"), {"main": "False", "gw0": "True", "gw1": "True"})],
)
def test_xdist_workers_lock_the_cassettes_they_record(
    pytester: pytest.Pytester, openai_server: OpenAISimulator, args: tuple[str, ...], expected: dict[str, str]
) -> None:
    """A case's candidate items may go to different workers, each running the shared baseline:
    workers lock each cassette while they record it (cassettes.cassette_lock; tested with two
    recorders in tests/unit/test_cassette_format.py), one process shares runs in memory."""
    pytester.makefile(".yaml", llm_multi=CASE_FILE)
    pytester.makeconftest(WORKER_STATE)
    openai_server.add_rule(content="ACME")
    pytester.runpytest(
        *CANDIDATES, "--llm-record-mode=once", f"--llm-base-url={openai_server.base_url}", *args
    ).assert_outcomes(passed=14, skipped=2)
    found = {
        path.stem.removeprefix("shared-"): path.read_text() for path in pytester.path.glob("shared-*.txt")
    }
    assert found == expected
