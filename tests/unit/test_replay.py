"""Replay straight from cassettes gives what a vcrpy replay through the SDK gives, call for call."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_llmgate.cases import Case
from pytest_llmgate.cassettes import CorruptCassetteError, RecordingMissing
from pytest_llmgate.client import CallError, ClientSettings, ModelClient
from pytest_llmgate.recording import Recorder
from pytest_llmgate.replay import ReplayCassettes, ReplayClient
from pytest_llmgate.runner import RunPlan, combine, run_model
from pytest_llmgate.simulator import OpenAISimulator

REQUEST = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Say hi"}], "temperature": 0}
DEAD_BASE_URL = "http://127.0.0.1:9/v1"

Outcome = tuple[str, Any, list[tuple[int, float, bool]]]


@pytest.fixture
def record(openai_server: OpenAISimulator, tmp_path: Path) -> Iterator[Callable[..., Path]]:
    client = ModelClient(ClientSettings(base_url=openai_server.base_url, api_key="sk-unit", max_retries=2))

    def recorder(*requests: dict[str, Any]) -> Path:
        path = tmp_path / "c.yaml"
        with Recorder("once").use(path):
            for request in requests:
                client.complete(dict(request))
        return path

    yield recorder
    client.close()


def both_replays(path: Path, *requests: dict[str, Any]) -> tuple[list[Outcome], list[Outcome]]:
    """Each request replayed through vcrpy + SDK and through ReplayClient: (kind, value, exchanges)."""
    sdk = ModelClient(ClientSettings(base_url=DEAD_BASE_URL, max_retries=0, timeout_s=5))
    paths = [(Recorder("none"), sdk), (ReplayCassettes(), ReplayClient(DEAD_BASE_URL))]
    outcomes: list[list[Outcome]] = []
    for cassettes, client in paths:
        results: list[Outcome] = []
        with cassettes.use(path) as session:  # type: ignore[attr-defined]
            for request in requests:
                before = len(session.exchanges)
                try:
                    reply = client.complete(dict(request))  # type: ignore[attr-defined]
                    outcome: tuple[str, Any] = (
                        "reply",
                        (reply.text, reply.usage, reply.tool_calls, reply.model),
                    )
                except RecordingMissing as exc:
                    outcome = ("missing", (exc.reason, exc.detail))
                except CallError as exc:
                    outcome = ("error", (exc.kind, exc.message, exc.status))
                exchanges = [(e.status, e.latency_ms, e.replayed) for e in session.exchanges[before:]]
                results.append((*outcome, exchanges))
        outcomes.append(results)
    sdk.close()
    return outcomes[0], outcomes[1]


def test_replies_usage_and_recorded_latency_are_the_same(
    openai_server: OpenAISimulator, record: Callable[..., Path]
) -> None:
    openai_server.add_rule(
        content="hello", latency_ms=40, usage={"prompt_tokens": 7, "completion_tokens": 2, "cached_tokens": 3}
    )
    path = record(REQUEST, REQUEST)
    via_sdk, direct = both_replays(path, REQUEST, REQUEST)
    assert direct == via_sdk
    assert direct[0][1][0] == "hello"
    assert direct[0][2][0][1] >= 40  # the latency measured at record time


def test_tool_calls_and_streamed_replies_are_the_same(
    openai_server: OpenAISimulator, record: Callable[..., Path]
) -> None:
    openai_server.add_rule(contains="stream me", content="streamed text")
    openai_server.add_rule(tool_calls=[{"name": "route", "arguments": '{"team": "billing"}'}])
    streamed = {**REQUEST, "stream": True, "stream_options": {"include_usage": True}}
    stream_request = {**streamed, "messages": [{"role": "user", "content": "stream me"}]}
    path = record(REQUEST, stream_request)
    via_sdk, direct = both_replays(path, REQUEST, stream_request)
    assert direct == via_sdk
    assert direct[1][1][0] == "streamed text"


def test_a_recorded_retry_replays_as_one_call_with_two_exchanges(
    openai_server: OpenAISimulator, record: Callable[..., Path]
) -> None:
    openai_server.add_rule(status=429, headers={"Retry-After": "0"}, times=1)
    openai_server.add_rule(content="after the retry")
    path = record(REQUEST)
    via_sdk, direct = both_replays(path, REQUEST)
    assert direct == via_sdk
    assert [exchange[0] for exchange in direct[0][2]] == [429, 200]


def test_missing_stale_and_exhausted_are_told_apart_the_same_way(
    openai_server: OpenAISimulator, record: Callable[..., Path], tmp_path: Path
) -> None:
    openai_server.add_rule(content="hi")
    path = record(REQUEST)
    edited = {**REQUEST, "temperature": 1}
    via_sdk, direct = both_replays(path, REQUEST, REQUEST)
    assert direct == via_sdk
    assert direct[1][:2] == (
        "missing",
        ("exhausted", "the cassette holds 1 interaction(s) and all were replayed"),
    )
    via_sdk, direct = both_replays(path, edited)
    assert direct == via_sdk
    assert direct[0][:2] == ("missing", ("stale", "the request's body changed since it was recorded"))
    via_sdk, direct = both_replays(tmp_path / "absent.yaml", REQUEST)
    assert direct == via_sdk
    assert direct[0][:2] == ("missing", ("missing", "no cassette file"))


def test_a_replay_sends_nothing_and_counts_calls(
    openai_server: OpenAISimulator, record: Callable[..., Path]
) -> None:
    openai_server.add_rule(content="hi")
    path = record(REQUEST)
    sent = len(openai_server.requests)
    client = ReplayClient(openai_server.base_url)
    with ReplayCassettes().use(path):
        assert client.complete(dict(REQUEST)).text == "hi"
    assert len(openai_server.requests) == sent
    assert client.stats.snapshot().calls == 1


def test_a_corrupt_cassette_names_the_file_and_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("interactions: [ {request: \n")
    with (
        pytest.raises(CorruptCassetteError, match="delete it and record it again"),
        ReplayCassettes().use(path),
    ):
        pass


def test_outside_a_cassette_is_a_clear_error() -> None:
    with pytest.raises(CallError, match="open cassette"):
        ReplayClient().complete(dict(REQUEST))


def _unplayed_note(path: Path, unplayed: int, recorded: int) -> str:
    return (
        f"replay: {os.path.relpath(path)}: {unplayed} of {recorded} recorded answers not replayed "
        f"(recorded with --llm-repeat {recorded}?); re-record with --llm-record-mode=all or pass the "
        "same --llm-repeat"
    )


def test_a_cassette_replayed_with_fewer_samples_than_recorded_leaves_a_note(
    openai_server: OpenAISimulator, record: Callable[..., Path]
) -> None:
    openai_server.add_rule(content="hi")
    path = record(REQUEST, REQUEST, REQUEST)  # --llm-repeat 3
    client = ReplayClient(openai_server.base_url)
    with ReplayCassettes().use(path) as session:
        client.complete(dict(REQUEST))
        assert session.notes == []  # said when the cassette closes, not before
    assert session.notes == [_unplayed_note(path, 2, 3)]
    with ReplayCassettes().use(path) as session:
        for _ in range(3):
            client.complete(dict(REQUEST))
    assert session.notes == []


def test_a_recorded_retry_is_not_an_unplayed_sample(
    openai_server: OpenAISimulator, record: Callable[..., Path]
) -> None:
    openai_server.add_rule(status=429, headers={"Retry-After": "0"}, times=1)
    openai_server.add_rule(content="after the retry")
    path = record(REQUEST)  # one call, two interactions: the 429 and the answer
    with ReplayCassettes().use(path) as session:
        ReplayClient(openai_server.base_url).complete(dict(REQUEST))
    assert len(session.exchanges) == 2
    assert session.notes == []


def test_other_requests_left_in_a_cassette_and_failed_calls_leave_no_note(
    openai_server: OpenAISimulator, record: Callable[..., Path]
) -> None:
    openai_server.add_rule(content="hi")
    edited = {**REQUEST, "temperature": 1}
    path = record(REQUEST, edited, edited)  # e.g. an edit recorded by new_episodes
    client = ReplayClient(openai_server.base_url)
    with ReplayCassettes().use(path) as session:
        client.complete(dict(REQUEST))
    assert session.notes == []
    with ReplayCassettes().use(path) as session:
        client.complete(dict(edited))
        session.keep = False  # what the runner does when a later call of the model failed
    assert session.notes == []


def test_the_runner_puts_the_note_on_the_model_run_and_the_case_result(
    openai_server: OpenAISimulator, tmp_path: Path
) -> None:
    openai_server.add_rule(content="hi")
    case = Case(
        id="greet",
        path=tmp_path / "llm_x.yaml",
        line=1,
        messages=({"role": "user", "content": "Say hi"},),
    )
    live = ModelClient(ClientSettings(base_url=openai_server.base_url, api_key="sk-unit"))
    plan = RunPlan(baseline="gpt-4o", cassette_dir=tmp_path / "cassettes", samples=3)
    recorded = run_model(case, "gpt-4o", plan, live, Recorder("once"), judged_budgets=True)
    live.close()
    assert recorded.notes == ()
    replay = ReplayClient(openai_server.base_url)
    fewer = run_model(
        case, "gpt-4o", dataclasses.replace(plan, samples=1), replay, ReplayCassettes(), judged_budgets=True
    )
    path = tmp_path / "cassettes" / "llm_x" / "greet" / "gpt-4o.yaml"
    assert fewer.notes == (_unplayed_note(path, 2, 3),)
    assert combine(case, fewer, None).notes == fewer.notes
    same = run_model(case, "gpt-4o", plan, replay, ReplayCassettes(), judged_budgets=True)
    assert same.notes == ()


@pytest.mark.parametrize("mode", ["none", "once"])
def test_a_vcrpy_replay_notes_answers_it_did_not_replay_like_the_direct_one(
    openai_server: OpenAISimulator, record: Callable[..., Path], mode: str
) -> None:
    openai_server.add_rule(content="hi")
    path = record(REQUEST, REQUEST, REQUEST)  # three samples recorded
    sdk = ModelClient(ClientSettings(base_url=DEAD_BASE_URL, max_retries=0, timeout_s=5))
    with Recorder(mode).use(path) as vcr_session:
        sdk.complete(dict(REQUEST))  # one replayed
    sdk.close()
    direct = ReplayClient(DEAD_BASE_URL)
    with ReplayCassettes().use(path) as direct_session:
        direct.complete(dict(REQUEST))
    assert vcr_session.notes == direct_session.notes
    assert len(vcr_session.notes) == 1
    assert "2 of 3 recorded answers not replayed" in vcr_session.notes[0]
