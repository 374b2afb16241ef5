"""End to end: a loopback server that echoes the key in headers and bodies, and nothing written or
printed by the record run or the replay run carries the key, the organisation, a token, or the
last 8 characters of any of them."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from pytest_llmgate.simulator import OpenAISimulator

from .conftest import DEAD_BASE_URL, FAKE_KEY, FAKE_ORG, files_containing

pytestmark = pytest.mark.usefixtures("fake_credentials")

# Assembled at run time so that repository secret scanners stay quiet. The token is not
# credential-shaped: only scrubbing by value (its variable ends in _TOKEN) can catch it.
PROXY_TOKEN = "".join(("acmeproxy", "FAKETOKEN", "llmgate9876zyx"))
USER_WRITTEN_KEY = "-".join(("sk", "proj", "USERWROTEthisKEYinPROMPT0123"))
MASKED_KEY = f"sk-proj-{'*' * 24}{FAKE_KEY[-8:]}"
SECRETS = (FAKE_KEY, FAKE_ORG, PROXY_TOKEN)

CASES = f"""\
baseline: gpt-4o
cases:
  - id: echoed
    prompt: "Invoice ECHO from ACME"
    assert: [{{type: contains, value: ACME}}]
  - id: escaped
    prompt: "Invoice ESCAPED from ACME"
    assert: [{{type: contains, value: ACME}}]
  - id: rejected
    prompt: "Invoice REJECTED from ACME"
    assert: [{{type: contains, value: ACME}}]
  - id: key-in-prompt
    prompt: "Is {USER_WRITTEN_KEY} a key? Answer for ACME."
    assert: [{{type: contains, value: ACME}}]
"""

ECHO_HEADERS = {
    "x-echo-auth": FAKE_KEY,  # a header not on the name list, carrying the key
    "llm_provider-openai-organization": FAKE_ORG,  # a proxy forwarding the organisation
    "x-echo-token": PROXY_TOKEN,
    "x-echo-masked": MASKED_KEY,
}


def completion_body(content_json: str) -> str:
    """A chat completion whose content is given as JSON text (so it can hold escapes)."""
    body = {
        "id": "chatcmpl-echo",
        "object": "chat.completion",
        "created": 0,
        "model": "gpt-5.5",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "@"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 9, "total_tokens": 18},
    }
    return json.dumps(body).replace('"@"', content_json)


def script_echoing_server(server: OpenAISimulator) -> None:
    echoed = f"{FAKE_KEY} is your key, {FAKE_ORG} your org, {PROXY_TOKEN} your token, {MASKED_KEY}"
    server.add_rule(model="gpt-4o", contains="ECHO", content=f"ACME. {echoed}", headers=ECHO_HEADERS)
    server.add_rule(model="gpt-5.5", contains="ECHO", content=f"No vendor. {echoed}", headers=ECHO_HEADERS)
    # The key JSON-escaped in the body: a naive scrubber of the raw bytes misses it, while the
    # parsed reply (what reports and failure messages show) holds it verbatim.
    escaped = json.dumps(f"No vendor. {FAKE_KEY}").replace("-", "\\u002d")
    server.add_rule(model="gpt-5.5", contains="ESCAPED", body=completion_body(escaped), headers=ECHO_HEADERS)
    rejection = {
        "error": {
            "message": f"Incorrect API key provided: {MASKED_KEY}. You sent {FAKE_KEY} via {PROXY_TOKEN}.",
            "type": "invalid_request_error",
            "code": "invalid_api_key",
        }
    }
    server.add_rule(
        model="gpt-5.5", contains="REJECTED", status=401, body=json.dumps(rejection), headers=ECHO_HEADERS
    )


def run(pytester: pytest.Pytester, name: str, base_url: str, *args: str) -> pytest.RunResult:
    return pytester.runpytest(
        "--llm-candidate=gpt-5.5",
        f"--llm-base-url={base_url}",
        f"--junitxml={name}/junit.xml",
        f"--llm-report={name}/report.md",
        f"--llm-report={name}/report.json",
        f"--llm-report={name}/report.html",
        f"--llm-report={name}/routing.yaml",
        "-rA",
        "-v",
        *args,
    )


def failures(junit: Path) -> dict[str, str]:
    """Each testcase name -> the text of its failure or error ('' when it passed)."""
    result = {}
    for case in ET.parse(junit).iter("testcase"):
        problems = [child for child in case if child.tag in ("failure", "error")]
        result[str(case.get("name"))] = " ".join(
            f"{child.get('message', '')} {child.text or ''}" for child in problems
        )
    return result


@pytest.mark.parametrize("xdist", [(), ("-n", "2")], ids=["no-xdist", "xdist"])
def test_no_written_file_and_no_output_carries_an_echoed_secret(
    pytester: pytest.Pytester,
    openai_server: OpenAISimulator,
    monkeypatch: pytest.MonkeyPatch,
    xdist: tuple[str, ...],
) -> None:
    monkeypatch.setenv("ACME_PROXY_TOKEN", PROXY_TOKEN)
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(pytester.path / "step-summary.md"))
    pytester.makefile(".yaml", llm_secrets=CASES)
    script_echoing_server(openai_server)

    recorded = run(pytester, "record", openai_server.base_url, "--llm-record-mode=once", *xdist)
    assert openai_server.requests[0].headers["authorization"] == f"Bearer {FAKE_KEY}"  # the key was used
    openai_server.stop()
    replayed = run(pytester, "replay", DEAD_BASE_URL, *xdist)

    # Each secret, its last 8 characters, and its first 12 (an excerpt cut short in the middle).
    needles = tuple(part for secret in SECRETS for part in (secret, secret[-8:], secret[:12]))
    assert files_containing(pytester.path, *needles) == []
    for result in (recorded, replayed):
        output = result.stdout.str() + result.stderr.str()
        assert [needle for needle in needles if needle in output] == []
    # What was echoed did reach the outputs, scrubbed: the failure of the echoing case says so.
    assert "REDACTED" in failures(pytester.path / "record/junit.xml")["echoed"]
    assert "REDACTED" in recorded.stdout.str()
    assert "Incorrect API key provided: REDACTED." in failures(pytester.path / "record/junit.xml")["rejected"]

    # Headers kept, their values scrubbed; the escaped key in the body scrubbed too.
    cassette = yaml.safe_load((pytester.path / "cassettes/llm_secrets/escaped/gpt-5.5.yaml").read_text())
    response = cassette["interactions"][0]["response"]
    assert response["headers"]["x-echo-auth"] == ["REDACTED"]
    assert response["headers"]["llm_provider-openai-organization"] == ["REDACTED"]
    assert response["headers"]["x-echo-masked"] == ["REDACTED"]
    assert "REDACTED" in response["body"]["string"]
    assert "FAKEKEY" not in response["body"]["string"]

    # The key-shaped string the user wrote is redacted in the recording, and the case replays.
    prompt_cassettes = pytester.path / "cassettes/llm_secrets/key-in-prompt"
    assert files_containing(prompt_cassettes, USER_WRITTEN_KEY) == []
    assert "REDACTED" in (prompt_cassettes / "gpt-4o.yaml").read_text()
    assert failures(pytester.path / "record/junit.xml")["key-in-prompt"] == ""
    assert failures(pytester.path / "replay/junit.xml")["key-in-prompt"] == ""
    assert "stale" not in replayed.stdout.str()


def test_debug_logs_of_the_sdk_are_scrubbed_in_reports_log_files_and_live_logging(
    pytester: pytest.Pytester, openai_server: OpenAISimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The SDK logs each response's headers at DEBUG; a failing case shows its captured logs.
    monkeypatch.setenv("ACME_PROXY_TOKEN", PROXY_TOKEN)
    script_echoing_server(openai_server)
    pytester.makefile(".yaml", llm_invoices=CASES)
    result = run(
        pytester,
        "logs",
        openai_server.base_url,
        "--llm-record-mode=once",
        "--log-level=DEBUG",
        "--log-file=logs/debug.log",
        "--log-file-level=DEBUG",
        "-o",
        "log_cli=true",
        "--log-cli-level=DEBUG",
    )
    log = (pytester.path / "logs" / "debug.log").read_text()
    assert "x-echo-auth" in log  # the headers were logged ...
    output = result.stdout.str() + result.stderr.str()
    assert "x-echo-auth" in output
    for secret in SECRETS:
        for text in (log, output):
            assert secret not in text  # ... and scrubbed
            assert secret[-8:] not in text
    assert files_containing(pytester.path, *SECRETS, *(secret[-8:] for secret in SECRETS)) == []
