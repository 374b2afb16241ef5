"""Recording and replay through the real SDK, httpx2 transport and vcrpy against a loopback server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
import yaml

from pytest_llmgate.cassettes import CorruptCassetteError, RecordingMissing, cassette_path, model_file_name
from pytest_llmgate.client import CallError, ClientSettings, ModelClient
from pytest_llmgate.recording import AtomicPersister, Recorder, RecordingTransport
from pytest_llmgate.simulator import OpenAISimulator

# Credential-shaped test values, assembled at run time so repository secret scanners stay quiet.
LEAKED_KEY = "-".join(("sk", "proj", "ABCDEFGHIJKLMNOPQRSTUVWX"))
LEAKED_ORG = "-".join(("org", "ABCDEFGHIJKLMNOPQRSTUV"))
CLIENT_KEY = "-".join(("sk", "secret", "key", "for", "this", "test"))
REQUEST = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Say hi"}]}
DEAD_BASE_URL = "http://127.0.0.1:9/v1"


@pytest.fixture
def client(openai_server: OpenAISimulator) -> Iterator[ModelClient]:
    model_client = ModelClient(
        ClientSettings(base_url=openai_server.base_url, api_key="sk-unit", max_retries=0)
    )
    yield model_client
    model_client.close()


@pytest.fixture
def offline_client() -> Iterator[ModelClient]:
    model_client = ModelClient(
        ClientSettings(base_url=DEAD_BASE_URL, api_key=None, max_retries=0, timeout_s=5)
    )
    yield model_client
    model_client.close()


def test_cassette_path_layout_and_model_names_safe_for_files(tmp_path: Path) -> None:
    assert cassette_path(tmp_path, "llm_invoices", "acme-total", "gpt-5.5") == (
        tmp_path / "llm_invoices" / "acme-total" / "gpt-5.5.yaml"
    )
    assert model_file_name("meta-llama/Llama-3:8b") == "meta-llama__Llama-3_8b"


def test_once_records_then_none_replays_without_the_server(
    tmp_path: Path, openai_server: OpenAISimulator, client: ModelClient, offline_client: ModelClient
) -> None:
    openai_server.add_rule(content="hello from the server", latency_ms=120)
    path = tmp_path / "c.yaml"
    with Recorder("once").use(path) as session:
        live = client.complete(dict(REQUEST))
    assert path.is_file()
    assert session.exchanges[0].replayed is False
    assert session.exchanges[0].latency_ms >= 120
    openai_server.stop()
    with Recorder("none").use(path) as replay_session:
        replayed = offline_client.complete(dict(REQUEST))
    assert replayed == live.__class__(**{**live.__dict__, "raw": replayed.raw})
    assert replayed.text == "hello from the server"
    assert replay_session.exchanges[0].replayed is True
    # The latency of the recording, not of the replay, is what replay reports.
    assert replay_session.exchanges[0].latency_ms == pytest.approx(session.exchanges[0].latency_ms, abs=0.1)


def test_repeated_identical_requests_are_recorded_and_replayed_in_order(
    tmp_path: Path, openai_server: OpenAISimulator, client: ModelClient, offline_client: ModelClient
) -> None:
    openai_server.add_rule(content="first", times=1)
    openai_server.add_rule(content="second", times=1)
    openai_server.add_rule(content="third")
    path = tmp_path / "c.yaml"
    with Recorder("once").use(path):
        texts = [client.complete(dict(REQUEST)).text for _ in range(3)]
    assert texts == ["first", "second", "third"]
    with Recorder("none").use(path):
        assert [offline_client.complete(dict(REQUEST)).text for _ in range(3)] == texts
        with pytest.raises(RecordingMissing) as excinfo:
            offline_client.complete(dict(REQUEST))
    assert excinfo.value.reason == "exhausted"


def test_missing_and_stale_recordings_are_told_apart(
    tmp_path: Path, openai_server: OpenAISimulator, client: ModelClient, offline_client: ModelClient
) -> None:
    path = tmp_path / "c.yaml"
    with Recorder("none").use(path), pytest.raises(RecordingMissing) as missing:
        offline_client.complete(dict(REQUEST))
    assert missing.value.reason == "missing"
    with Recorder("once").use(path):
        client.complete(dict(REQUEST))
    edited = {**REQUEST, "messages": [{"role": "user", "content": "Say hello"}]}
    with Recorder("none").use(path), pytest.raises(RecordingMissing) as stale:
        offline_client.complete(edited)
    assert stale.value.reason == "stale"
    assert "body" in stale.value.detail


def test_a_failed_call_saves_nothing_and_keeps_the_old_recording(
    tmp_path: Path, openai_server: OpenAISimulator, client: ModelClient
) -> None:
    path = tmp_path / "c.yaml"
    openai_server.add_rule(status=500, times=1)
    with Recorder("all").use(path) as session:
        with pytest.raises(CallError) as excinfo:
            client.complete(dict(REQUEST))
        session.keep = False  # what the runner does on a failed call
    assert excinfo.value.status == 500
    assert not path.exists()
    with Recorder("once").use(path):
        client.complete(dict(REQUEST))
    before = path.read_bytes()
    openai_server.add_rule(status=500)
    with Recorder("all").use(path) as session:
        with pytest.raises(CallError):
            client.complete(dict(REQUEST))
        session.keep = False
    assert path.read_bytes() == before


def test_ctrl_c_inside_a_recording_writes_nothing(
    tmp_path: Path, openai_server: OpenAISimulator, client: ModelClient
) -> None:
    path = tmp_path / "c.yaml"

    def interrupted_call() -> None:
        with Recorder("once").use(path):
            client.complete(dict(REQUEST))
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        interrupted_call()
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []


def test_interrupted_write_leaves_the_previous_cassette_and_no_temp_file(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("previous\n")

    class Exploding:
        @staticmethod
        def serialize(data: object) -> str:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        AtomicPersister.save_cassette(path, {"requests": [], "responses": []}, Exploding)
    assert path.read_text() == "previous\n"
    assert [entry.name for entry in tmp_path.iterdir()] == ["c.yaml"]


def test_gzip_bodies_are_stored_decoded_and_secrets_scrubbed(
    tmp_path: Path, openai_server: OpenAISimulator
) -> None:
    openai_server.add_rule(
        content=f"token {LEAKED_KEY} leaked",
        gzip=True,
        headers={"openai-organization": LEAKED_ORG, "set-cookie": "a=b"},
    )
    model_client = ModelClient(
        ClientSettings(base_url=openai_server.base_url, api_key=CLIENT_KEY, max_retries=0)
    )
    path = tmp_path / "c.yaml"
    with Recorder("once", secrets=(CLIENT_KEY,)).use(path):
        reply = model_client.complete(dict(REQUEST))
    model_client.close()
    assert LEAKED_KEY in reply.text  # the live reply is untouched
    text = path.read_text()
    assert "!!binary" not in text
    assert CLIENT_KEY not in text
    assert LEAKED_KEY not in text
    assert LEAKED_ORG not in text
    interaction = yaml.safe_load(text)["interactions"][0]
    assert "REDACTED leaked" in interaction["response"]["body"]["string"]
    headers = {name.lower() for name in interaction["response"]["headers"]}
    assert not headers & {"content-encoding", "set-cookie", "openai-organization"}
    assert "authorization" not in {name.lower() for name in interaction["request"]["headers"]}


def test_a_corrupt_cassette_is_a_clear_error(tmp_path: Path, offline_client: ModelClient) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("interactions: [unclosed\n")
    with pytest.raises(CorruptCassetteError, match=r"cannot be read .*delete it and record it again"):
        Recorder("none").use(path).__enter__()


def test_a_cassette_with_python_tags_is_refused_not_executed(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "c.yaml"
    path.write_text(
        "interactions:\n"
        f"- request: !!python/object/apply:os.system ['touch {marker}']\n"
        "  response: {}\nversion: 1\n"
    )
    with pytest.raises(CorruptCassetteError):
        Recorder("none").use(path).__enter__()
    assert not marker.exists()


def test_unknown_record_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="record mode must be one of none, once, new_episodes, all"):
        Recorder("sometimes")


def test_an_abandoned_session_leaves_no_temporary_file_and_keeps_the_old_cassette(tmp_path: Path) -> None:
    from pytest_llmgate.recording import PendingWrites

    path = tmp_path / "c.yaml"
    path.write_text("interactions: []\nversion: 1\n")
    pending = PendingWrites()
    handle, temp_name = pending.begin(path)  # a pool thread has started writing...
    pending.abandon()  # ...when the session ends (Ctrl-C)
    with os.fdopen(handle, "w") as stream:
        stream.write("half")
    with pytest.raises(FileNotFoundError):
        os.replace(temp_name, path)
    assert [item.name for item in tmp_path.iterdir()] == ["c.yaml"]
    assert path.read_text() == "interactions: []\nversion: 1\n"
    with pytest.raises(RuntimeError, match="the session ended before"):
        pending.begin(path)


# --- secrets scrubbed by value (issue 11) -------------------------------------------------------

PROXY_TOKEN = "".join(("proxy", "FAKETOKEN", "recording42x"))  # not credential-shaped


def test_echoed_secrets_are_scrubbed_by_value_from_headers_bodies_and_the_uri(
    tmp_path: Path, openai_server: OpenAISimulator
) -> None:
    masked = f"sk-proj-{'*' * 12}{LEAKED_KEY[-8:]}"
    openai_server.add_rule(
        content=f"your token {PROXY_TOKEN}, your key {LEAKED_KEY}, masked {masked}",
        headers={
            "x-echo-auth": f"{PROXY_TOKEN}",  # not on the name list
            "llm_provider-openai-organization": LEAKED_ORG,  # a proxy forwarding the org
            "x-echo-masked": masked,
        },
    )
    path = tmp_path / "c.yaml"
    recorder = Recorder("once", secrets=(PROXY_TOKEN, LEAKED_KEY, LEAKED_ORG))
    with recorder.use(path), httpx2.Client(transport=RecordingTransport()) as http:
        response = http.post(
            f"{openai_server.base_url}/chat/completions?api-key={PROXY_TOKEN}&user={LEAKED_ORG}",
            json=REQUEST,
            headers={"x-proxy-auth": PROXY_TOKEN},
        )
    assert PROXY_TOKEN in response.text  # the live answer is untouched
    assert openai_server.requests[0].query == f"api-key={PROXY_TOKEN}&user={LEAKED_ORG}"
    text = path.read_text()
    for part in (PROXY_TOKEN, LEAKED_KEY, LEAKED_ORG, LEAKED_KEY[-8:], PROXY_TOKEN[-8:], "***"):
        assert part not in text
    interaction = yaml.safe_load(text)["interactions"][0]
    assert interaction["request"]["uri"].endswith("/chat/completions?api-key=REDACTED&user=REDACTED")
    assert interaction["request"]["headers"]["x-proxy-auth"] == ["REDACTED"]
    headers = interaction["response"]["headers"]
    assert headers["x-echo-auth"] == headers["llm_provider-openai-organization"] == ["REDACTED"]
    assert headers["x-echo-masked"] == ["REDACTED"]
    body = interaction["response"]["body"]["string"]
    assert body.count("REDACTED") == 3
    length = next(value for name, value in headers.items() if name.lower() == "content-length")
    assert length == [str(len(body.encode()))]


def test_a_key_shaped_string_in_a_prompt_is_redacted_and_still_replays(
    tmp_path: Path, client: ModelClient, offline_client: ModelClient
) -> None:
    from pytest_llmgate.replay import ReplayCassettes, ReplayClient

    prompt = {**REQUEST, "messages": [{"role": "user", "content": f"Is {LEAKED_KEY} a valid key?"}]}
    path = tmp_path / "c.yaml"
    with Recorder("once").use(path):
        live = client.complete(dict(prompt))
    assert LEAKED_KEY not in path.read_text()
    assert "Is REDACTED a valid key?" in path.read_text()
    assert LEAKED_KEY in live.text  # the simulator echoes the prompt
    replayed = live.text.replace(LEAKED_KEY, "REDACTED")
    with Recorder("none").use(path):  # vcrpy through the SDK
        assert offline_client.complete(dict(prompt)).text == replayed
    with ReplayCassettes().use(path):  # straight from the cassette
        assert ReplayClient(DEAD_BASE_URL).complete(dict(prompt)).text == replayed


def test_a_recording_made_before_a_secret_was_configured_still_replays(
    tmp_path: Path, client: ModelClient, offline_client: ModelClient
) -> None:
    """Both sides are compared scrubbed: a cassette written by an older scrubber (or with other
    secrets configured) holds the value the current request's scrubbed form has redacted."""
    from pytest_llmgate.replay import ReplayCassettes, ReplayClient
    from pytest_llmgate.secrets import Scrubber

    prompt = {**REQUEST, "messages": [{"role": "user", "content": f"Route via {PROXY_TOKEN}"}]}
    path = tmp_path / "c.yaml"
    with Recorder("once").use(path):
        client.complete(dict(prompt))
    assert PROXY_TOKEN in path.read_text()
    with Recorder("none", secrets=(PROXY_TOKEN,)).use(path):
        offline_client.complete(dict(prompt))
    with ReplayCassettes().use(path):
        ReplayClient(DEAD_BASE_URL, scrubber=Scrubber((PROXY_TOKEN,))).complete(dict(prompt))
    edited = {**REQUEST, "messages": [{"role": "user", "content": "Route via another proxy"}]}
    with Recorder("none", secrets=(PROXY_TOKEN,)).use(path), pytest.raises(RecordingMissing) as stale:
        offline_client.complete(edited)
    assert stale.value.reason == "stale"
    assert "body" in stale.value.detail


def test_a_recorders_repr_never_shows_its_secrets() -> None:
    assert LEAKED_KEY not in repr(Recorder("once", secrets=(LEAKED_KEY,)))
