"""parse_response against the 21 real `/v1/responses` interactions of the shared corpus.

Every one must parse into a reply or fail with one clear error. The corpus lives beside the
repository (`<repo>/../shared/real-openai`) and is not shipped with it; without it this module is
skipped. Its INDEX.json, written independently of our parser, is the oracle for usage numbers,
models, refusals and tool calls.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from pytest_llmgate.model.responses import first_content_offset, parse_response
from pytest_llmgate.response import ApiError, ResponseError

from .test_real_openai import header

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "real-openai"

if not CORPUS.is_dir():
    pytest.skip(f"real OpenAI corpus not found at {CORPUS}", allow_module_level=True)


def interaction(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


FILES = sorted(
    path
    for path in CORPUS.glob("*.json")
    if path.name != "INDEX.json" and urlsplit(interaction(path)["request"]["uri"]).path.endswith("/responses")
)
INDEX_PATH = CORPUS / "INDEX.json"
INDEX: dict[str, dict[str, Any]] = (
    {entry["file"]: entry for entry in json.loads(INDEX_PATH.read_text(encoding="utf-8"))["files"]}
    if INDEX_PATH.is_file()
    else {}
)


def test_the_corpus_has_the_21_responses_interactions() -> None:
    assert len(FILES) == 21


@pytest.mark.parametrize("path", FILES, ids=[path.stem for path in FILES])
def test_responses_interaction(path: Path) -> None:
    response = interaction(path)["response"]
    status, body = response["status"], response["body"] or ""
    content_type = header(response["headers"], "content-type")
    oracle = INDEX.get(path.name, {})

    if status >= 400:
        with pytest.raises(ApiError) as info:
            parse_response(body, status, content_type)
        assert info.value.status == status
        assert info.value.code
        assert info.value.message.strip()
        assert info.value.body_excerpt == ""  # the API's own message is all we repeat
        return
    if oracle.get("responses_status") == "queued":
        with pytest.raises(ResponseError, match="remove `background: true`") as queued:
            parse_response(body, status, content_type)
        assert not isinstance(queued.value, ApiError)
        return

    reply = parse_response(body, status, content_type)

    assert reply.raw
    tokens = {key: value for key, value in reply.usage.to_dict().items() if key != "reported_cost_usd"}
    assert all(value is None or type(value) is int for value in tokens.values()), tokens
    assert "encrypted_content" not in json.dumps(reply.to_dict())
    if not oracle:
        return
    assert reply.model == oracle["model"]
    assert bool(reply.tool_calls) == oracle["has_tool_calls"]
    assert all(call.name and call.id and call.id.startswith("call_") for call in reply.tool_calls)
    assert bool(reply.refusal) == oracle["refusal"]
    assert bool(reply.text) != (oracle["refusal"] or oracle["has_tool_calls"])
    usage = oracle["usage"]
    assert reply.usage.prompt_tokens == usage["input_tokens"]
    assert reply.usage.completion_tokens == usage["output_tokens"]
    assert reply.usage.total_tokens == usage["total_tokens"]
    assert reply.usage.cached_tokens == usage["cached_tokens"]
    assert reply.usage.reasoning_tokens == usage["reasoning_tokens"]
    expected_finish = (
        "length"
        if oracle["responses_status"] == "incomplete"
        else "tool_calls"
        if oracle["has_tool_calls"]
        else "stop"
    )
    assert reply.finish_reason == expected_finish
    if "reasoning" in (oracle.get("responses_output_item_types") or ()):
        assert reply.usage.reasoning_tokens
    if oracle["streaming"]:
        offset = first_content_offset(body.encode())
        assert offset is not None
        assert 0 < offset < len(body.encode())


def test_a_reasoning_summary_is_kept() -> None:
    [path] = [path for path in FILES if "reasoning_summary" in path.name]
    response = interaction(path)["response"]

    reply = parse_response(response["body"], response["status"], None)

    assert reply.reasoning_summary is not None
    assert reply.reasoning_summary.startswith("**Generating factorial function**")
