"""parse_chat_completion against real OpenAI traffic recorded by public projects' cassettes.

The corpus lives beside the repository (`<repo>/../shared/real-openai`), read-only and not shipped
with it; without it this module is skipped. Its INDEX.json, when present, is used as an oracle
written independently of our parser (model, usage numbers, finish reasons, refusals).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from pytest_llmgate.reply import Reply
from pytest_llmgate.response import EXCERPT_CHARS, ApiError, ResponseError, parse_chat_completion

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "real-openai"

if not CORPUS.is_dir():
    pytest.skip(f"real OpenAI corpus not found at {CORPUS}", allow_module_level=True)

FILES = sorted(path for path in CORPUS.glob("*.json") if path.name != "INDEX.json")
INDEX_PATH = CORPUS / "INDEX.json"
INDEX: dict[str, dict[str, Any]] = (
    {entry["file"]: entry for entry in json.loads(INDEX_PATH.read_text(encoding="utf-8"))["files"]}
    if INDEX_PATH.is_file()
    else {}
)
TOOL_CALL_IN_BODY = re.compile(r'"(?:tool_calls|function_call)"\s*:\s*[\[{]')


def header(headers: dict[str, Any], name: str) -> str | None:
    """A header's first value; cassettes spell names in Title-Case or lowercase, values as lists."""
    for key, value in headers.items():
        if key.lower() == name:
            if isinstance(value, list):
                return str(value[0]) if value else None
            return str(value)
    return None


def load(path: Path) -> tuple[str, int, str, str | None]:
    """(endpoint path, status, body, content type) of one recorded interaction."""
    interaction = json.loads(path.read_text(encoding="utf-8"))
    response = interaction["response"]
    endpoint = urlsplit(interaction["request"]["uri"]).path
    return endpoint, response["status"], response["body"] or "", header(response["headers"], "content-type")


def parse(path: Path) -> Reply:
    _, status, body, content_type = load(path)
    return parse_chat_completion(body, status=status, content_type=content_type)


def test_corpus_is_not_empty() -> None:
    assert FILES, f"no interaction files in {CORPUS}"


@pytest.mark.parametrize("path", FILES, ids=[path.stem for path in FILES])
def test_interaction(path: Path) -> None:
    endpoint, status, body, _ = load(path)
    if endpoint.endswith("/chat/completions"):
        check_chat_completion(path, status, body)
    elif endpoint.endswith("/responses"):
        check_responses_api(path, status)
    else:
        pytest.skip(f"endpoint {endpoint} is neither /chat/completions nor /responses")


def check_chat_completion(path: Path, status: int, body: str) -> None:
    if status >= 400:
        check_api_error(path, status)
    elif not body.strip():
        with pytest.raises(ResponseError, match="body is empty") as info:
            parse(path)
        assert not isinstance(info.value, ApiError)
    else:
        check_reply(parse(path), body, INDEX.get(path.name, {}))


def check_api_error(path: Path, status: int) -> None:
    with pytest.raises(ApiError) as info:
        parse(path)

    error = info.value
    assert error.status == status
    assert error.message.strip()
    assert error.code
    assert error.body_excerpt == ""  # the API's own message is all we repeat (401s quote the key)
    assert error.message in str(error)


def check_responses_api(path: Path, status: int) -> None:
    if status >= 400:
        check_api_error(path, status)
        return
    with pytest.raises(ResponseError, match="not a chat completion") as info:
        parse(path)
    assert not isinstance(info.value, ApiError)
    assert "pytest-llmgate calls /chat/completions" in str(info.value)
    assert len(info.value.body_excerpt) <= EXCERPT_CHARS


def check_reply(reply: Reply, body: str, oracle: dict[str, Any]) -> None:
    usage = reply.usage.to_dict()
    assert isinstance(reply.text, str)
    assert all(value is None or type(value) is int for value in usage.values()), usage
    assert reply.raw
    if TOOL_CALL_IN_BODY.search(body) or oracle.get("has_tool_calls"):
        assert reply.tool_calls
        assert all(call.name for call in reply.tool_calls)
    else:
        assert reply.tool_calls == ()
    if not oracle:
        return
    assert reply.model == oracle["model"]
    assert reply.finish_reason in oracle["finish_reasons"]
    assert bool(reply.refusal) == oracle["refusal"]
    if oracle["usage_present"]:
        for name in (
            "prompt_tokens",
            "completion_tokens",
            "total_tokens",
            "cached_tokens",
            "reasoning_tokens",
        ):
            assert usage[name] == oracle["usage"][name], name
    else:
        assert set(usage.values()) == {None}
    if oracle["has_reasoning_tokens"]:
        assert reply.usage.reasoning_tokens
    if reply.finish_reason == "length" and reply.usage.reasoning_tokens == reply.usage.completion_tokens:
        assert reply.text == ""  # the whole budget went to reasoning
