"""Fixtures for end-to-end sessions: a case directory, fake credentials, and a way to run pytest."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpcore2  # noqa: F401
import httpx2  # noqa: F401
import openai  # noqa: F401
import pytest
import vcr  # noqa: F401

import pytest_llmgate.client
import pytest_llmgate.runner  # noqa: F401
from pytest_llmgate.simulator import OpenAISimulator

# The imports above are for their side effect: pytester's in-process runs restore sys.modules
# afterwards, dropping modules first imported inside a run. Were openai/httpx2 first imported
# there, later tests would get a second copy whose exception classes the first copy does not
# catch. Importing them here, before any run, keeps one copy for the whole session.

# Assembled at run time so that secret scanners of the repository do not flag these fakes.
FAKE_KEY = "-".join(("sk", "proj", "FAKEKEYllmgate0123456789abcdef"))
FAKE_ORG = "-".join(("org", "FAKEORGllmgate0123456789"))
# Nothing listens here (port 9 is "discard"; connections are refused): proves replay is offline.
DEAD_BASE_URL = "http://127.0.0.1:9/v1"


@pytest.fixture(autouse=True)
def file_gate_scope(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Sessions here judge their gates per case file (`llm_x.yaml::gate[cost]`), as these tests
    were written; tests of the default session scope (`llmgate::gate[cost]`) remove this with
    `monkeypatch.delenv("PYTEST_ADDOPTS")` (see test_session_gates.py). Set after pytester's
    setup, which clears PYTEST_ADDOPTS."""
    if "pytester" in request.fixturenames:
        request.getfixturevalue("pytester")
    monkeypatch.setenv("PYTEST_ADDOPTS", "--llm-gate-scope=file")


@pytest.fixture
def fake_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """A known fake key and organisation, so tests can prove neither reaches any file written."""
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    monkeypatch.setenv("OPENAI_ORG_ID", FAKE_ORG)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_PROJECT_ID", raising=False)


def files_containing(root: Path, *needles: str) -> list[str]:
    """Every file under `root` that contains any of `needles` (bytes compare, any encoding)."""
    hits = []
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            if any(needle.encode() in data for needle in needles):
                hits.append(str(path.relative_to(root)))
    return hits


def interrupt_live_run(
    path: Path, server: OpenAISimulator, args: Sequence[str], after_requests: int
) -> tuple[int, str]:
    """A live-recording pytest process in `path`, sent a real SIGINT once `server` has seen
    `after_requests` requests, with calls still in flight: (exit code, output).

    Fails the test, with the run's output, if the run ended by itself before the interrupt.
    """
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "--llm-record-mode=once",
        f"--llm-base-url={server.base_url}",
        *args,
    ]
    process = subprocess.Popen(command, cwd=path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while len(server.requests) < after_requests and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.01)
    if process.poll() is not None:  # ended before the interrupt: show why
        output = process.communicate()[0].decode()
        pytest.fail(f"the run ended by itself (exit {process.returncode}):\n{output}")
    assert server.in_flight > 0  # interrupted with calls in flight
    process.send_signal(signal.SIGINT)
    output = process.communicate(timeout=60)[0].decode()
    return process.returncode, output
