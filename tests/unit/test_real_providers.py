"""parse_chat_completion against real traffic of OpenAI-compatible providers other than OpenAI.

The corpus lives beside the repository (`<repo>/../shared/real-providers`), read-only and not
shipped with it; without it this module is skipped (tests/unit/test_response.py proves each shape
on fixtures of our own). Two oracles written independently of the parser: the last usage object
found in each body by a plain walk of its JSON, and a table of the cache, reasoning and cost
numbers read off the recordings by hand.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_llmgate.pricing import PriceTable, cost_of_call
from pytest_llmgate.response import ApiError

from .test_real_openai import load, parse

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "real-providers"

if not CORPUS.is_dir():
    pytest.skip(f"real providers corpus not found at {CORPUS}", allow_module_level=True)

FILES = sorted(path for path in CORPUS.glob("*.json") if path.name != "INDEX.json")
INDEX_PATH = CORPUS / "INDEX.json"
INDEX: dict[str, dict[str, Any]] = (
    {entry["file"]: entry for entry in json.loads(INDEX_PATH.read_text(encoding="utf-8"))["files"]}
    if INDEX_PATH.is_file()
    else {}
)

# file number -> (cached_tokens, reasoning_tokens, reported_cost_usd) as the recording states them;
# a file not listed reports none of the three.
QUIRKS: dict[str, tuple[int | None, int | None, float | None]] = {
    "005": (0, 0, None),  # Azure stream, usage in a last chunk with choices []
    "006": (0, 576, None),
    "007": (0, 0, None),
    "015": (0, 415, None),  # DeepSeek: prompt_cache_hit_tokens and prompt_tokens_details agree
    "016": (512, 60, None),
    "018": (0, None, None),
    "019": (224, None, None),  # Mistral prompt cache
    "023": (0, None, None),  # Together: top-level usage.cached_tokens
    "025": (0, None, None),
    "026": (None, 704, None),  # OpenRouter, recorded without usage accounting: no cost in it
    "027": (0, 0, None),
    "043": (0, 427, None),
    "044": (0, None, None),
    "047": (0, 0, None),
    "049": (0, 0, None),
    "050": (2, 228, 1_176_500 * 1e-10),  # xAI: cost_in_usd_ticks, reasoning beside completion
    "054": (None, 963, None),  # Groq: usage and x_groq.usage in the last chunk
    "057": (10, 22, None),  # Moonshot: top-level usage.cached_tokens
}


def json_objects(body: str) -> list[dict[str, Any]]:
    """The body's JSON object, or each `data:` line's object of an event stream."""
    if body.lstrip().startswith("{"):
        return [json.loads(body)]
    lines = (line.removeprefix("data:").strip() for line in body.splitlines() if line.startswith("data:"))
    return [json.loads(line) for line in lines if line.startswith("{")]


def last_reported_usage(body: str) -> dict[str, Any] | None:
    """The last usage object in the body: `usage`, or Groq's `x_groq.usage`."""
    found = None
    for obj in json_objects(body):
        usage = obj.get("usage") or (obj.get("x_groq") or {}).get("usage")
        if isinstance(usage, dict):
            found = usage
    return found


def is_error(path: Path, status: int) -> bool:
    return status >= 400 or "error" in INDEX.get(path.name, {}).get("category", "")


def test_corpus_is_not_empty_and_indexed() -> None:
    assert FILES, f"no interaction files in {CORPUS}"
    if INDEX:
        assert set(INDEX) == {path.name for path in FILES}


@pytest.mark.parametrize("path", FILES, ids=[path.stem for path in FILES])
def test_interaction(path: Path) -> None:
    endpoint, status, body, _ = load(path)
    assert endpoint.endswith("/chat/completions"), endpoint
    if is_error(path, status):
        with pytest.raises(ApiError) as info:
            parse(path)
        assert info.value.message.strip()
        assert info.value.body_excerpt == ""  # the API's own message is all we repeat
        if status >= 400:
            assert info.value.status == status
        return

    reply = parse(path)

    usage = reply.usage
    reported = last_reported_usage(body)
    if reported is None:
        assert set(usage.to_dict().values()) == {None}
    else:
        counts = (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens)
        assert counts == (reported["prompt_tokens"], reported["completion_tokens"], reported["total_tokens"])
    cached, reasoning, cost = QUIRKS.get(path.name[:3], (None, None, None))
    assert (usage.cached_tokens, usage.reasoning_tokens) == (cached, reasoning)
    assert usage.reported_cost_usd == (None if cost is None else pytest.approx(cost, rel=1e-12))
    assert isinstance(reply.text, str)
    assert reply.model


def test_azure_content_filter_is_a_billed_reply_without_text() -> None:
    """The crash this replaces: "the chat completion has no choices[0].message"."""
    [path] = [
        path for path in FILES if INDEX.get(path.name, {}).get("category") == "azure:chat:content_filter"
    ]
    reply = parse(path)

    assert (reply.text, reply.finish_reason, reply.tool_calls) == ("", "content_filter", ())
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (15, 19)
    price = PriceTable.builtin().lookup("openllmetry-testing", reply.model)  # Azure's `gpt-35-turbo`
    cost = cost_of_call(reply.usage, price)
    assert cost is not None
    assert cost.usd == pytest.approx((15 * 0.50 + 19 * 1.50) / 1e6, rel=1e-12)


def test_groq_stream_usage_only_in_x_groq_is_read() -> None:
    [path] = [path for path in FILES if "x_groq_usage" in path.name]

    usage = parse(path).usage

    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (18, 73, 91)


@pytest.mark.parametrize(
    ("number", "priced_as"),
    [
        ("026", "gpt-5-mini"),  # OpenRouter's openai/gpt-5-mini
        ("047", "gpt-3.5-turbo"),  # LiteLLM proxy, gpt-3.5-turbo-0125
        ("049", "gpt-4o-mini"),  # Portkey, dated snapshot
        ("007", "gpt-4o"),  # Azure deployment gpt-4o, dated snapshot reported
    ],
)
def test_reported_model_ids_find_their_builtin_price(number: str, priced_as: str) -> None:
    [path] = [path for path in FILES if path.name.startswith(number)]
    reply = parse(path)
    assert reply.model is not None
    table = PriceTable.builtin()

    found = table.find(reply.model, reply.model)

    assert found is not None
    assert found[0] == priced_as
