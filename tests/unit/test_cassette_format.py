"""Cassettes are written as JSON text (valid YAML, read with json.loads); older YAML ones still
replay, and the JSON path keeps every guarantee of the YAML one (issue 17)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_llmgate.cassettes import (
    TOKEN_COUNTS_KEY,
    CorruptCassetteError,
    dump_cassette_text,
    kept_token_counts,
    load_cassette_data,
)
from pytest_llmgate.client import ClientSettings, ModelClient
from pytest_llmgate.recording import Recorder, _SafeYamlSerializer
from pytest_llmgate.replay import ReplayCassettes, ReplayClient
from pytest_llmgate.secrets import Scrubber
from pytest_llmgate.simulator import OpenAISimulator

DEAD_BASE_URL = "http://127.0.0.1:9/v1"
# Text YAML may not hold unescaped (C1 control, U+FFFE) beside text it may (accents, emoji).
AWKWARD = "Café \u0085 \x80\x9f \ufffe \U0001f600 \u2028 & *alias <b>"
KEY_SHAPED = "-".join(("sk", "proj", "ABCDEFGHIJKLMNOPQRSTUVWX"))


def _cassette(body: str = '{"usage": {"prompt_tokens": 3}}', latency: str = "12.5") -> dict[str, Any]:
    return {
        "version": 1,
        "interactions": [
            {
                "request": {
                    "method": "POST",
                    "uri": "https://llmgate.invalid/chat/completions",
                    "body": "{}",
                },
                "response": {
                    "status": {"code": 200, "message": "OK"},
                    "headers": {"x-llmgate-latency-ms": [latency]},
                    "body": {"string": body},
                },
            }
        ],
    }


@pytest.fixture
def client(openai_server: OpenAISimulator) -> Iterator[ModelClient]:
    model_client = ModelClient(
        ClientSettings(base_url=openai_server.base_url, api_key="sk-unit", max_retries=0)
    )
    yield model_client
    model_client.close()


def test_a_recorded_cassette_is_json_that_yaml_reads_the_same(
    tmp_path: Path, openai_server: OpenAISimulator, client: ModelClient
) -> None:
    openai_server.add_rule(content=AWKWARD)
    path = tmp_path / "c.yaml"
    request = {"model": "gpt-4o", "messages": [{"role": "user", "content": AWKWARD}]}
    with Recorder("once").use(path):
        client.complete(dict(request))
    text = path.read_text(encoding="utf-8")
    as_json = json.loads(text)
    assert yaml.safe_load(text) == as_json  # any YAML reader sees the same cassette
    assert "Café" in text  # readable, not \u-escaped
    # Escaped: YAML refuses these raw or reads them as line breaks inside a string.
    assert not {"\x85", "\x80", "\ufffe", "\u2028"} & set(text)
    recorded = as_json["interactions"][0]
    assert json.loads(recorded["request"]["body"])["messages"][0]["content"] == AWKWARD
    with ReplayCassettes().use(path):
        assert ReplayClient(DEAD_BASE_URL).complete(dict(request)).text == AWKWARD


def test_a_yaml_cassette_of_an_older_version_still_replays(
    tmp_path: Path, openai_server: OpenAISimulator, client: ModelClient
) -> None:
    openai_server.add_rule(content="from an old cassette")
    path = tmp_path / "c.yaml"
    request = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
    with Recorder("once").use(path):
        client.complete(dict(request))
    data = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(yaml.safe_dump(data, sort_keys=True), encoding="utf-8")  # as older versions wrote
    assert not path.read_text(encoding="utf-8").lstrip().startswith("{")
    with ReplayCassettes().use(path):
        assert ReplayClient(DEAD_BASE_URL).complete(dict(request)).text == "from an old cassette"
    sdk = ModelClient(ClientSettings(base_url=DEAD_BASE_URL, max_retries=0, timeout_s=5))
    with Recorder("none").use(path):
        assert sdk.complete(dict(request)).text == "from an old cassette"
    sdk.close()


def test_a_body_json_cannot_hold_is_written_as_yaml() -> None:
    cassette = _cassette()
    cassette["interactions"][0]["response"]["body"]["string"] = b"\xff\xfe not utf-8"
    text = _SafeYamlSerializer.serialize(cassette)
    assert not text.startswith("{")
    assert yaml.safe_load(text)["interactions"][0]["response"]["body"]["string"] == b"\xff\xfe not utf-8"
    with pytest.raises(TypeError):
        dump_cassette_text(cassette)


def test_json_cassettes_are_checked_like_yaml_ones(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    good = dump_cassette_text(_cassette())
    assert load_cassette_data(good, path)["interactions"][0]["response"]["status"]["code"] == 200
    for bad, detail in (
        (_cassette(latency="NaN"), "recorded latency x-llmgate-latency-ms: 'NaN'"),
        (_cassette(latency="-5"), "recorded latency x-llmgate-latency-ms: '-5'"),
        (_cassette(body='{"usage": {"prompt_tokens": -3}}'), "recorded usage.prompt_tokens is -3"),
    ):
        with pytest.raises(CorruptCassetteError, match=detail):
            load_cassette_data(dump_cassette_text(bad), path)
    with pytest.raises(CorruptCassetteError, match="no 'interactions' list"):
        load_cassette_data('{"version": 1}', path)
    # JSON whose numbers are not finite is refused as text too (json.loads accepts NaN).
    with pytest.raises(CorruptCassetteError, match="not a finite number"):
        load_cassette_data(good.replace('"12.5"', "NaN"), path)


def test_text_that_only_looks_like_json_falls_back_to_yaml_and_its_guards(tmp_path: Path) -> None:
    """`{` starts a YAML flow mapping too: what json rejects still goes through the alias guard."""
    bomb = "{a: &a [x, x], b: *a, interactions: []}"
    with pytest.raises(CorruptCassetteError, match=r"line 1: YAML alias \*a"):
        load_cassette_data(bomb, tmp_path / "c.yaml")
    flow = "{interactions: [], version: 1}"  # YAML flow style, not JSON
    assert load_cassette_data(flow, tmp_path / "c.yaml") == {"interactions": [], "version": 1}
    with pytest.raises(CorruptCassetteError, match="nested too deeply"):
        load_cassette_data('{"a": ' + "[" * 100_000, tmp_path / "c.yaml")


def test_a_recorded_body_holding_a_redacted_key_still_matches(
    tmp_path: Path, openai_server: OpenAISimulator, client: ModelClient
) -> None:
    """The fast path compares bodies as stored; a prompt with a key-shaped string was stored
    redacted, so it differs as stored and matches only scrubbed, as before."""
    openai_server.add_rule(content="ok")
    path = tmp_path / "c.yaml"
    request = {"model": "gpt-4o", "messages": [{"role": "user", "content": f"my key is {KEY_SHAPED}"}]}
    with Recorder("once").use(path):
        client.complete(dict(request))
    assert KEY_SHAPED not in path.read_text(encoding="utf-8")
    with ReplayCassettes().use(path):
        assert ReplayClient(DEAD_BASE_URL, scrubber=Scrubber()).complete(dict(request)).text == "ok"
    other = {"model": "gpt-4o", "messages": [{"role": "user", "content": "my key is something else"}]}
    with ReplayCassettes().use(path), pytest.raises(Exception, match="body changed"):
        ReplayClient(DEAD_BASE_URL, scrubber=Scrubber()).complete(dict(other))


def test_kept_token_counts_are_read_and_checked(tmp_path: Path) -> None:
    """A kept count stands in for tiktoken's, so only whole numbers 0..10^9 under text keys pass."""
    path = tmp_path / "c.yaml"
    key = "o200k_base:v1:" + "0" * 32
    good = {**_cassette(), "metadata": {TOKEN_COUNTS_KEY: {key: 24}}}
    assert kept_token_counts(path, load_cassette_data(dump_cassette_text(good), path)) == {key: 24}
    assert kept_token_counts(path, _cassette()) == {}  # recorded before counts were kept
    assert kept_token_counts(path, {**_cassette(), "metadata": {"other": 1}}) == {}
    for bad in (-1, 1.5, True, "24", None, 10**9 + 1):
        data = {**_cassette(), "metadata": {TOKEN_COUNTS_KEY: {key: bad}}}
        with pytest.raises(CorruptCassetteError, match=f"is {bad!r}, not a whole number from 0 to 10"):
            load_cassette_data(dump_cassette_text(data), path)
    for metadata, detail in (
        ([1], "metadata is list, not a mapping"),
        ({TOKEN_COUNTS_KEY: [3]}, "is not a mapping"),
    ):
        with pytest.raises(CorruptCassetteError, match=detail):
            load_cassette_data(dump_cassette_text({**_cassette(), "metadata": metadata}), path)


@pytest.mark.parametrize(("shared", "calls"), [(True, 1), (False, 2)])
def test_workers_sharing_cassettes_record_one_and_replay_it(
    tmp_path: Path, openai_server: OpenAISimulator, client: ModelClient, shared: bool, calls: int
) -> None:
    """Two xdist workers running the same baseline (several candidates of one case): with
    `shared`, the second waits for the first one's recording and replays it instead of calling
    (and billing) the model again. Without it (one process, where runs are shared in memory),
    both call: the premise the lock is for."""
    import threading

    openai_server.add_rule(content="hello")
    openai_server.latency_ms = 500.0  # both are in flight together without the lock
    both = threading.Barrier(2)
    path = tmp_path / "case" / "gpt-4o.yaml"
    request = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
    texts: list[str] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            both.wait(5)  # neither opens the cassette before the other is ready to
            with Recorder("once", shared=shared).use(path):
                texts.append(client.complete(dict(request)).text)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert errors == []
    assert texts == ["hello", "hello"]
    assert len(openai_server.requests) == calls
