"""Cassettes and case files from an untrusted pull request: alias bombs, impossible numbers,
another model's answers, symlinks out of the project, and what a killed run leaves behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_llmgate.cases import Case, load_case_file, parse_case_file
from pytest_llmgate.cassettes import (
    CorruptCassetteError,
    UnsafeCassettePath,
    _resolve_below,
    check_cassette_path,
    create_temp_beside,
    remove_stale_temps,
)
from pytest_llmgate.client import ClientSettings, ModelClient
from pytest_llmgate.errors import CaseFileError
from pytest_llmgate.recording import Recorder
from pytest_llmgate.replay import ReplayCassettes, ReplayClient
from pytest_llmgate.results import Outcome
from pytest_llmgate.runner import RunPlan, combine, run_model
from pytest_llmgate.simulator import OpenAISimulator

DEAD_BASE_URL = "http://127.0.0.1:9/v1"
FAST_ENOUGH_S = 2.0  # "well under a second" on an idle machine; generous for a loaded 2-core box
CASE_FILE = """\
baseline: gpt-4o
cases:
  - id: greet
    prompt: Say hello
    budgets: {latency_ms: 100}
    assert: [{type: icontains, value: hello}]
"""


def answer(model: str, text: str = "hello there", usage: str | None = None) -> str:
    """A chat completion body as the API writes it; `usage` is spliced in raw (NaN, -3, 1e999)."""
    body = json.dumps(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1,
            "model": model,
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
            ],
            "usage": "USAGE",
        }
    )
    return body.replace('"USAGE"', usage or '{"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}')


def cassette_text(request: dict[str, Any], body: str, latency: str = "12.5") -> str:
    """A cassette as the recorder writes it: one POST and its answer with the recorded latency."""
    return yaml.safe_dump(
        {
            "version": 1,
            "interactions": [
                {
                    "request": {
                        "body": json.dumps(request),
                        "headers": {"content-type": ["application/json"]},
                        "method": "POST",
                        "uri": "http://127.0.0.1:9/v1/chat/completions",
                    },
                    "response": {
                        "body": {"string": body},
                        "headers": {
                            "content-type": ["application/json"],
                            "x-llmgate-latency-ms": [latency],
                        },
                        "status": {"code": 200, "message": "OK"},
                    },
                }
            ],
        }
    )


@pytest.fixture
def case(tmp_path: Path) -> Case:
    path = tmp_path / "llm_hostile.yaml"
    path.write_text(CASE_FILE)
    return load_case_file(path).cases[0]


def plan_for(case: Case) -> RunPlan:
    return RunPlan(baseline="gpt-4o", project_root=case.path.parent)


def write_cassette(case: Case, model: str, text: str) -> Path:
    path = plan_for(case).cassette_for(case, model)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def replay(case: Case, model: str = "gpt-4o") -> Any:
    """The case replayed offline on `model` alone, as a CaseResult (budgets bind that model)."""
    run = run_model(case, model, plan_for(case), ReplayClient(DEAD_BASE_URL), ReplayCassettes(), True)
    return combine(case, run, None)


def alias_bomb(levels: int = 9, width: int = 9) -> str:
    """The billion-laughs document: `width ** levels` strings from a few hundred bytes."""
    lines = ['l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in range(1, levels + 1):
        lines.append(f"l{level}: &l{level} [" + ", ".join([f"*l{level - 1}"] * width) + "]")
    return "\n".join(lines)


# Alias bombs


def bomb_cassette(case: Case) -> Path:
    """A cassette whose anchors sit in a top-level key and whose header value is the bomb."""
    text = cassette_text(case.request_for("gpt-4o"), answer("gpt-4o"))
    text = text.replace(
        "      x-llmgate-latency-ms:", "      x-bomb:\n      - *l9\n      x-llmgate-latency-ms:"
    )
    anchors = "\n".join("  " + line for line in alias_bomb().splitlines())
    return write_cassette(case, "gpt-4o", f"laughs:\n{anchors}\n{text}")


def test_an_alias_bomb_in_a_cassette_is_one_clear_error_in_well_under_a_second(case: Case) -> None:
    path = bomb_cassette(case)
    assert "*l8" in path.read_text()  # the bomb really is in the header values
    started = time.perf_counter()
    result = replay(case)
    elapsed = time.perf_counter() - started
    assert elapsed < FAST_ENOUGH_S
    assert result.outcome == Outcome.ERROR
    (sample,) = result.baseline.samples
    assert sample.error_kind == "recording"
    assert "CorruptCassetteError" in (sample.error or "")
    assert str(path.relative_to(case.path.parent)) in (sample.error or "") or str(path) in (
        sample.error or ""
    )
    assert "YAML alias" in (sample.error or "")
    assert "delete it and record it again" in (sample.error or "")


def test_an_alias_bomb_is_refused_by_the_recording_side_too(case: Case, tmp_path: Path) -> None:
    path = bomb_cassette(case)
    started = time.perf_counter()
    with pytest.raises(CorruptCassetteError, match=r"line \d+: YAML alias \*l"), Recorder("once").use(path):
        pass
    assert time.perf_counter() - started < FAST_ENOUGH_S


def test_an_alias_bomb_in_a_case_files_vars_is_one_collection_error_naming_file_and_line() -> None:
    bomb = "\n".join("      " + line for line in alias_bomb().splitlines())
    text = f"baseline: gpt-4o\ncases:\n  - id: greet\n    prompt: 'Say {{{{l9}}}}'\n    vars:\n{bomb}\n"
    started = time.perf_counter()
    with pytest.raises(CaseFileError) as caught:
        parse_case_file(text, Path("llm_bomb.yaml"))
    assert time.perf_counter() - started < FAST_ENOUGH_S
    rendered = caught.value.render()
    assert rendered.startswith("llm_bomb.yaml:")
    assert "alias bomb" in rendered
    assert int(rendered.split(":")[1]) > 5  # the line of an alias that crossed the limit


def test_case_files_may_still_share_blocks_through_anchors() -> None:
    text = """\
baseline: gpt-4o
defaults:
  tags: &tags [greeting, smoke]
cases:
  - id: a
    prompt: Say hello
    vars: {shared: &shared {who: world, n: 3}}
  - id: b
    prompt: Say hello to {{who}}
    vars: *shared
    tags: *tags
"""
    cases = parse_case_file(text, Path("llm_x.yaml")).cases
    assert cases[1].vars == {"who": "world", "n": 3}
    assert cases[1].messages[-1]["content"] == "Say hello to world"
    assert cases[1].tags == ("greeting", "smoke")


# Impossible recorded numbers


@pytest.mark.parametrize("latency", ["nan", "NaN", "inf", "-inf", "-5", "fast"])
def test_a_recorded_latency_that_is_not_a_finite_number_at_least_zero_is_corrupt(
    case: Case, latency: str
) -> None:
    path = write_cassette(
        case, "gpt-4o", cassette_text(case.request_for("gpt-4o"), answer("gpt-4o"), latency)
    )
    result = replay(case)
    assert result.outcome == Outcome.ERROR  # not PASSED: nan compares false with every budget
    (sample,) = result.baseline.samples
    assert sample.error_kind == "recording"
    assert f"interaction 1: recorded latency x-llmgate-latency-ms: {latency!r}" in (sample.error or "")
    assert path.name in (sample.error or "")
    with pytest.raises(CorruptCassetteError, match="x-llmgate-latency-ms"), Recorder("once").use(path):
        pass


def test_a_finite_recorded_latency_still_judges_the_budget(case: Case) -> None:
    write_cassette(case, "gpt-4o", cassette_text(case.request_for("gpt-4o"), answer("gpt-4o"), "250"))
    result = replay(case)
    assert result.outcome == Outcome.BUDGET
    assert result.baseline.samples[0].latency_ms == 250.0


@pytest.mark.parametrize(
    ("usage", "field"),
    [
        ('{"prompt_tokens": NaN, "completion_tokens": 3}', "usage.prompt_tokens"),
        ('{"prompt_tokens": 5, "completion_tokens": -3}', "usage.completion_tokens"),
        ('{"prompt_tokens": 5, "completion_tokens": 1e999}', "usage.completion_tokens"),
        (
            '{"prompt_tokens": 5, "prompt_tokens_details": {"cached_tokens": -1}}',
            "usage.prompt_tokens_details",
        ),
    ],
)
def test_a_recorded_token_count_that_is_not_a_finite_number_at_least_zero_is_corrupt(
    case: Case, usage: str, field: str
) -> None:
    write_cassette(case, "gpt-4o", cassette_text(case.request_for("gpt-4o"), answer("gpt-4o", usage=usage)))
    result = replay(case)
    assert result.outcome == Outcome.ERROR
    assert f"interaction 1: recorded {field}" in (result.baseline.samples[0].error or "")


# Another model's answers


def test_a_recording_answering_as_another_model_fails_the_case_and_says_so(case: Case) -> None:
    write_cassette(case, "gpt-4o", cassette_text(case.request_for("gpt-4o"), answer("gpt-4o-mini")))
    result = replay(case)
    assert result.outcome == Outcome.ERROR
    (sample,) = result.baseline.samples
    assert sample.error_kind == "model-mismatch"
    assert sample.cost_usd is None  # never priced as the model it claims to be
    assert (sample.error or "").startswith("gpt-4o's recording answers as gpt-4o-mini (")
    assert "re-record it with --llm-record-mode=all" in (sample.error or "")


def test_a_dated_snapshot_of_the_model_is_the_model(case: Case) -> None:
    write_cassette(case, "gpt-4o", cassette_text(case.request_for("gpt-4o"), answer("gpt-4o-2024-08-06")))
    assert replay(case).outcome == Outcome.PASSED


def test_a_live_answer_from_another_model_fails_the_same_way_and_replays_the_same(
    case: Case, openai_server: OpenAISimulator
) -> None:
    openai_server.add_rule(content="hello", response_model="gpt-3.5-turbo")
    client = ModelClient(ClientSettings(base_url=openai_server.base_url, api_key="sk-unit"))
    try:
        live = run_model(case, "gpt-4o", plan_for(case), client, Recorder("once"), True)
    finally:
        client.close()
    assert live.samples[0].error_kind == "model-mismatch"
    assert "gpt-3.5-turbo answered" in (live.samples[0].error or "")
    assert plan_for(case).cassette_for(case, "gpt-4o").is_file()  # what the endpoint said is kept
    replayed = replay(case).baseline.samples[0]
    assert replayed.error_kind == "model-mismatch"
    assert "gpt-4o's recording answers as gpt-3.5-turbo" in (replayed.error or "")


# Symlinks out of the project


def test_a_cassette_that_is_a_symlink_out_of_the_project_is_neither_read_nor_followed(
    case: Case, tmp_path_factory: pytest.TempPathFactory
) -> None:
    outside = tmp_path_factory.mktemp("outside") / "secret.yaml"
    outside.write_text(cassette_text(case.request_for("gpt-4o"), answer("gpt-4o")))
    link = plan_for(case).cassette_root(case) / "llm_hostile" / "greet" / "gpt-4o.yaml"
    link.parent.mkdir(parents=True)
    link.symlink_to(outside)
    result = replay(case)
    assert result.outcome == Outcome.ERROR  # the answer outside would have passed
    error = result.baseline.samples[0].error or ""
    assert error.startswith("UnsafeCassettePath: cassette ")
    assert f"symlink to {outside.resolve()}" in error
    assert "refusing to read or write it" in error


def test_a_cassette_folder_linked_out_of_the_project_gets_no_recording(
    case: Case, tmp_path_factory: pytest.TempPathFactory, openai_server: OpenAISimulator
) -> None:
    outside = tmp_path_factory.mktemp("outside")
    root = plan_for(case).cassette_root(case)
    root.mkdir()
    (root / "llm_hostile").symlink_to(outside, target_is_directory=True)
    openai_server.add_rule(content="hello")
    client = ModelClient(ClientSettings(base_url=openai_server.base_url, api_key="sk-unit"))
    try:
        run = run_model(case, "gpt-4o", plan_for(case), client, Recorder("once"), True)
    finally:
        client.close()
    assert "UnsafeCassettePath" in (run.samples[0].error or "")
    assert list(outside.rglob("*")) == []  # nothing written through the link
    assert openai_server.requests == []  # and nothing billed for a recording that cannot be kept


def test_links_inside_the_project_and_an_explicit_folder_elsewhere_are_fine(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "shared").mkdir(parents=True)
    (project / "cassettes").symlink_to(project / "shared", target_is_directory=True)
    check_cassette_path(project / "cassettes" / "f" / "c" / "m.yaml", project / "cassettes", project)
    elsewhere = tmp_path / "ci-cassettes"
    check_cassette_path(elsewhere / "f" / "c" / "m.yaml", elsewhere, project)
    (elsewhere / "f").mkdir(parents=True)
    (elsewhere / "f" / "c").symlink_to(project, target_is_directory=True)
    with pytest.raises(UnsafeCassettePath, match="outside"):
        check_cassette_path(elsewhere / "f" / "c" / "m.yaml", elsewhere, project)


def test_resolving_below_a_resolved_root_agrees_with_realpath(tmp_path: Path) -> None:
    """The per-root shortcut of check_cassette_path gives realpath's answer for every layout: plain
    folders, missing ones, a linked root, a linked file folder, case folder or cassette, a
    dangling link, a link chain, a path not under the root."""
    outside = tmp_path / "outside"
    (outside / "deep").mkdir(parents=True)
    (outside / "m.yaml").write_text("{}")
    layouts: list[tuple[Path, Path]] = []
    for index, link in enumerate(("", "root", "file", "case", "cassette", "dangling", "chain")):
        project = tmp_path / f"p{index}"
        root = project / "cassettes"
        if link == "root":
            project.mkdir()
            root.symlink_to(outside, target_is_directory=True)
        else:
            (root / "f").mkdir(parents=True)
        if link == "file":
            (root / "g").symlink_to(outside, target_is_directory=True)
        if link == "case":
            (root / "f" / "c").symlink_to(outside / "deep", target_is_directory=True)
        if link == "cassette":
            (root / "f" / "c").mkdir()
            (root / "f" / "c" / "m.yaml").symlink_to(outside / "m.yaml")
        if link == "dangling":
            (root / "f" / "c").symlink_to(tmp_path / "nowhere", target_is_directory=True)
        if link == "chain":
            (root / "f" / "hop").symlink_to(outside, target_is_directory=True)
            (root / "f" / "c").symlink_to(root / "f" / "hop" / "deep", target_is_directory=True)
        for folder in ("f", "g", "missing"):
            layouts.append((root / folder / "c" / "m.yaml", root))
        layouts.append((tmp_path / "elsewhere" / "m.yaml", root))
    for path, root in layouts:
        assert _resolve_below(str(path), str(root)) == os.path.realpath(path), path


# Temporary files and modes


@pytest.fixture
def umask() -> Iterator[None]:
    previous = os.umask(0o022)
    yield
    os.umask(previous)


@pytest.mark.usefixtures("umask")
def test_cassettes_are_created_like_any_other_file(tmp_path: Path, openai_server: OpenAISimulator) -> None:
    openai_server.add_rule(content="hello")
    client = ModelClient(ClientSettings(base_url=openai_server.base_url, api_key="sk-unit"))
    path = tmp_path / "folder" / "gpt-4o.yaml"
    try:
        with Recorder("once").use(path):
            client.complete({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]})
    finally:
        client.close()
    assert path.stat().st_mode & 0o777 == 0o644  # not mkstemp's 0600
    os.umask(0o002)
    handle, name = create_temp_beside(tmp_path / "other.yaml")
    os.close(handle)
    assert os.stat(name).st_mode & 0o777 == 0o664


def killed_writer(folder: Path) -> str:
    """The temporary file a process left when SIGKILL hit it mid-write."""
    code = (
        "import os, signal, sys\n"
        "from pathlib import Path\n"
        "from pytest_llmgate.cassettes import create_temp_beside\n"
        "handle, name = create_temp_beside(Path(sys.argv[1]) / 'gpt-4o.yaml')\n"
        "os.write(handle, b'interactions: [half')\n"
        "print(name, flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    process = subprocess.run(
        [sys.executable, "-c", code, str(folder)], capture_output=True, text=True, timeout=60
    )
    assert process.returncode == -signal.SIGKILL
    return process.stdout.strip()


def test_the_next_run_removes_what_a_killed_run_left_but_not_a_live_writers_file(
    tmp_path: Path, openai_server: OpenAISimulator
) -> None:
    folder = tmp_path / "cassettes" / "llm_x" / "c0"
    folder.mkdir(parents=True)
    left = killed_writer(folder)
    assert Path(left).is_file()
    assert Path(left).parent == folder
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) as busy:
        try:
            live_writer = folder / f".gpt-4o.judge-gpt-4o.yaml.{busy.pid}.0123abcd.tmp"
            live_writer.write_text("in progress")
            unrelated = folder / "notes.tmp"
            unrelated.write_text("not ours")
            openai_server.add_rule(content="hello")
            client = ModelClient(ClientSettings(base_url=openai_server.base_url, api_key="sk-unit"))
            try:
                with Recorder("once").use(folder / "gpt-4o.yaml"):
                    client.complete({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]})
            finally:
                client.close()
            assert not Path(left).exists()
            assert live_writer.exists()  # a concurrent worker's write in progress is left alone
            assert unrelated.exists()  # not named as ours
        finally:
            busy.kill()
    assert sorted(path.name for path in folder.iterdir() if not path.name.startswith(".gpt-4o.judge")) == [
        "gpt-4o.yaml",
        "notes.tmp",
    ]


def test_old_style_temporary_files_go_only_when_older_than_the_session(tmp_path: Path) -> None:
    old, new = tmp_path / ".gpt-4o.yaml.k3j_x9a2.tmp", tmp_path / ".gpt-5.yaml.p0q_r8s1.tmp"
    old.write_text("x")
    new.write_text("x")
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    assert remove_stale_temps(tmp_path, started=time.time() - 60) == [old.name]
    assert new.exists()
