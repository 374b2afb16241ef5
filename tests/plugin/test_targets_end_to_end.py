"""Model targets end to end: each model at its own endpoint with its own key, recorded, then
replayed with no server, no base URL and no keys; permanent errors replay as they happened."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from pytest_llmgate.simulator import OpenAISimulator, Rule
from tests.plugin.conftest import files_containing

# Assembled at run time so that secret scanners of the repository do not flag these fakes.
AZURE_KEY = "".join(("azure", "FAKEKEY", "llmgate", "0123456789abcdef"))
GROQ_KEY = "-".join(("gsk", "FAKEKEYllmgate", "fedcba9876543210"))
DEAD = "http://127.0.0.1:9"

CASES = """\
baseline: gpt-4o
cases:
  - id: acme
    prompt: "Invoice from ACME Corp, total 12 EUR"
    assert: [{type: contains, value: ACME}]
  - id: globex
    prompt: "Invoice from Globex, total 7 EUR"
    assert: [{type: contains, value: Globex}]
  - id: initech
    prompt: "Invoice from Initech, total 3 EUR"
    assert: [{type: contains, value: Initech}]
"""


def project_file(base: str) -> str:
    """Baseline on an Azure deployment, candidate behind a `/openai/v1` base path (Groq-style)."""
    return f"""\
models:
  gpt-4o:
    model: gpt-4o
    base_url: {base}
    api_key_env: AZURE_OPENAI_API_KEY
    azure: {{deployment: gpt4o-prod, api_version: "2024-10-21"}}
    headers: {{x-team: search}}
  gpt-5.5:
    model: gpt-5.5
    base_url: {base}/openai/v1
    api_key_env: GROQ_API_KEY
    params: {{seed: 7}}
    price: {{input: 1.0, output: 2.0, per_request: 0.001}}
"""


@pytest.fixture
def no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "OPENAI_ORG_ID",
        "AZURE_OPENAI_API_KEY",
        "GROQ_API_KEY",
    ):
        monkeypatch.delenv(name, raising=False)


def outcomes(result: pytest.RunResult) -> dict[str, str]:
    """node id -> outcome of every case item, read from the JUnit XML the run wrote."""
    lines = [line for line in result.outlines if "::" in line and line.split()[-1].isupper()]
    return {line.split()[0]: line.split()[-1] for line in lines}


@pytest.mark.usefixtures("no_keys")
def test_azure_baseline_and_proxied_candidate_record_then_replay_offline_without_keys(
    pytester: pytest.Pytester, openai_server: OpenAISimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    openai_server.add_rule(Rule(model="gpt-5.5", contains="Globex", content="no vendor found"))
    pytester.makefile(".yaml", llm_invoices=CASES)
    pytester.path.joinpath("llmgate.yaml").write_text(
        project_file(openai_server.base_url.removesuffix("/v1"))
    )
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", AZURE_KEY)
    monkeypatch.setenv("GROQ_API_KEY", GROQ_KEY)

    recorded = pytester.runpytest(
        "--llm-candidate=gpt-5.5",
        "--llm-record-mode=once",
        "-m",
        "not llm_gate",
        "-v",
        "-p",
        "no:cacheprovider",
    )
    recorded.assert_outcomes(passed=2, failed=1)

    # Each model went to its own endpoint, with its own key in its own header.
    azure = [request for request in openai_server.requests if "/deployments/" in request.path]
    proxied = [request for request in openai_server.requests if request.path.startswith("/openai/v1/")]
    assert len(azure) == len(proxied) == 3
    for request in azure:
        assert request.path == "/openai/deployments/gpt4o-prod/chat/completions"
        assert request.query == "api-version=2024-10-21"
        assert request.headers.get("api-key") == AZURE_KEY
        assert request.headers.get("x-team") == "search"
        assert GROQ_KEY not in json.dumps(request.headers)
    for request in proxied:
        assert request.path == "/openai/v1/chat/completions"
        assert request.headers.get("authorization") == f"Bearer {GROQ_KEY}"
        assert "x-team" not in request.headers
        assert request.json["seed"] == 7  # the target's params, under the case's
        assert request.json["model"] == "gpt-5.5"

    # The cassettes keep no host, port or base path.
    cassettes = sorted((pytester.path / "cassettes").rglob("*.yaml"))
    assert len(cassettes) == 6
    for path in cassettes:
        uris = [item["request"]["uri"] for item in yaml.safe_load(path.read_text())["interactions"]]
        assert uris
        assert all(uri.startswith("https://llmgate.invalid/chat/completions") for uri in uris), uris

    # Replay: the server gone, no keys, no base URL, and the project file now pointing elsewhere.
    openai_server.stop()
    monkeypatch.delenv("AZURE_OPENAI_API_KEY")
    monkeypatch.delenv("GROQ_API_KEY")
    pytester.path.joinpath("llmgate.yaml").write_text(project_file(DEAD))
    replayed = pytester.runpytest(
        "--llm-candidate=gpt-5.5", "-m", "not llm_gate", "-v", "-p", "no:cacheprovider"
    )
    replayed.assert_outcomes(passed=2, failed=1)
    assert outcomes(replayed) == outcomes(recorded)
    replayed.stdout.fnmatch_lines(["*regression: gpt-5.5 fails where gpt-4o passes*"])

    assert files_containing(pytester.path, AZURE_KEY, GROQ_KEY, AZURE_KEY[-8:], GROQ_KEY[-8:]) == []
    for text in (recorded.stdout.str(), replayed.stdout.str()):
        assert AZURE_KEY not in text
        assert GROQ_KEY not in text


@pytest.mark.usefixtures("no_keys")
def test_a_live_run_without_a_targets_key_variable_is_a_collection_error_naming_the_fix(
    pytester: pytest.Pytester, openai_server: OpenAISimulator
) -> None:
    pytester.makefile(".yaml", llm_invoices=CASES)
    pytester.path.joinpath("llmgate.yaml").write_text(project_file(openai_server.base_url))
    result = pytester.runpytest("--llm-candidate=gpt-5.5", "--llm-record-mode=once", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(
        [
            "*target 'gpt-4o' (declared at *llmgate.yaml:3) needs its API key in $AZURE_OPENAI_API_KEY*"
            "export AZURE_OPENAI_API_KEY=*--llm-record-mode=none*"
        ]
    )
    assert openai_server.requests == []


@pytest.mark.usefixtures("fake_credentials")
def test_a_permanent_error_is_recorded_and_replays_as_the_same_verdict(
    pytester: pytest.Pytester, openai_server: OpenAISimulator
) -> None:
    openai_server.add_rule(
        Rule(
            model="gpt-5.5",
            status=400,
            body=json.dumps(
                {
                    "error": {
                        "message": "Unsupported parameter: 'stop' is not supported with this model.",
                        "type": "invalid_request_error",
                        "param": "stop",
                        "code": "unsupported_parameter",
                    }
                }
            ),
        )
    )
    pytester.makefile(
        ".yaml", llm_invoices=CASES.replace("cases:", "defaults: {params: {stop: ['\\n\\n']}}\ncases:")
    )
    common = ("--llm-candidate=gpt-5.5", "-m", "not llm_gate", "-p", "no:cacheprovider")
    live = pytester.runpytest(*common, "--llm-record-mode=once", f"--llm-base-url={openai_server.base_url}")
    live.assert_outcomes(failed=3)
    live.stdout.fnmatch_lines(["*gpt-5.5: api error:*'stop' is not supported with this model*"])
    assert len([request for request in openai_server.requests if request.json["model"] == "gpt-5.5"]) == 3
    openai_server.stop()
    replayed = pytester.runpytest(*common, f"--llm-base-url={DEAD}/v1")
    replayed.assert_outcomes(failed=3)
    replayed.stdout.fnmatch_lines(["*gpt-5.5: api error:*'stop' is not supported with this model*"])
    replayed.stdout.no_fnmatch_line("*recording*missing*")


@pytest.mark.usefixtures("fake_credentials")
def test_extra_body_query_and_headers_are_sent_and_replay_without_going_stale(
    pytester: pytest.Pytester, openai_server: OpenAISimulator
) -> None:
    params = "{params: {extra_body: {top_k: 5}, extra_query: {trace: t1}, extra_headers: {x-trace: abc}}}"
    pytester.makefile(".yaml", llm_invoices=CASES.replace("cases:", f"defaults: {params}\ncases:"))
    common = ("--llm-candidate=gpt-5.5", "-m", "not llm_gate", "-p", "no:cacheprovider")
    live = pytester.runpytest(*common, "--llm-record-mode=once", f"--llm-base-url={openai_server.base_url}")
    live.assert_outcomes(passed=3)
    for request in openai_server.requests:
        assert request.json["top_k"] == 5
        assert "extra_body" not in request.json
        assert request.query == "trace=t1"
        assert request.headers.get("x-trace") == "abc"
    openai_server.stop()
    replayed = pytester.runpytest(*common, f"--llm-base-url={DEAD}/v1")
    replayed.assert_outcomes(passed=3)


def test_cassettes_recorded_at_another_host_and_base_path_still_replay(
    pytester: pytest.Pytester, openai_server: OpenAISimulator, tmp_path: Path
) -> None:
    # Recorded behind a proxy's base path; replayed through vcrpy (record mode once) against
    # a different base URL: the request is found by operation and body, not by where it went.
    pytester.makefile(".yaml", llm_invoices=CASES)
    common = ("--llm-candidate=gpt-5.5", "-m", "not llm_gate", "-p", "no:cacheprovider")
    first = pytester.runpytest(
        *common,
        "--llm-record-mode=once",
        f"--llm-base-url={openai_server.base_url.removesuffix('/v1')}/openai/v1",
    )
    first.assert_outcomes(passed=3)
    calls = len(openai_server.requests)
    again = pytester.runpytest(*common, "--llm-record-mode=once", f"--llm-base-url={openai_server.base_url}")
    again.assert_outcomes(passed=3)
    assert len(openai_server.requests) == calls  # all six answers came from the cassettes


@pytest.mark.usefixtures("fake_credentials")
def test_a_targets_concurrency_holds_that_target_back(
    pytester: pytest.Pytester, openai_server: OpenAISimulator
) -> None:
    openai_server.latency_ms = 100
    six = CASES.replace(
        "cases:\n",
        "cases:\n"
        + "".join(
            f'  - id: extra{index}\n    prompt: "Invoice from ACME number {index}"\n'
            f"    assert: [{{type: contains, value: ACME}}]\n"
            for index in range(3)
        ),
    )
    pytester.makefile(".yaml", llm_invoices="models:\n  gpt-5.5: {concurrency: 1}\n" + six)
    result = pytester.runpytest(
        "--llm-candidate=gpt-5.5",
        "--llm-record-mode=once",
        f"--llm-base-url={openai_server.base_url}",
        "--llm-concurrency=6",
        "-m",
        "not llm_gate",
        "-p",
        "no:cacheprovider",
    )
    result.assert_outcomes(passed=6)
    assert openai_server.max_in_flight_by_model["gpt-5.5"] == 1
    assert openai_server.max_in_flight_by_model["gpt-4o"] > 1
