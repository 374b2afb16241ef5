"""Rate-limit headers read from answers, and a concurrency held against them (ratelimits.py)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from pytest_llmgate.ratelimits import RateLimit, exposure, read_rate_limit
from pytest_llmgate.results import Sample

SHARED = Path(__file__).resolve().parents[3] / "shared"


def test_openai_headers_as_a_cassette_keeps_them() -> None:
    headers = {
        "x-ratelimit-limit-requests": ["5000"],
        "x-ratelimit-limit-tokens": ["160000"],
        "x-ratelimit-remaining-requests": ["4999"],
        "x-ratelimit-remaining-tokens": ["159431"],
        "x-ratelimit-reset-requests": ["12ms"],
        "content-type": ["application/json"],
    }
    limit = read_rate_limit(headers.items())
    assert limit == RateLimit(5000, 160000, 4999, 159431)
    assert limit is not None
    assert limit.headroom == pytest.approx(159431 / 160000)


def test_names_are_case_insensitive_and_a_litellm_proxy_prefix_is_read() -> None:
    assert read_rate_limit([("X-RateLimit-Limit-Requests", "60")]) == RateLimit(requests_per_minute=60)
    proxied = read_rate_limit(
        [
            ("llm_provider-x-ratelimit-limit-tokens", "2000000"),
            ("llm_provider-x-ratelimit-remaining-tokens", "5"),
        ]
    )
    assert proxied == RateLimit(tokens_per_minute=2_000_000, remaining_tokens=5)


def test_mistral_counts_requests_per_10_seconds_and_tokens_per_minute() -> None:
    limit = read_rate_limit(
        [
            ("x-ratelimit-limit-req-10-second", "60"),
            ("x-ratelimit-remaining-req-10-second", "53"),
            ("x-ratelimit-limit-tokens-minute", "2000000"),
            ("x-ratelimit-remaining-tokens-minute", "1999370"),
            ("x-ratelimit-limit-tokens-month", "10000000000"),
        ]
    )
    assert limit == RateLimit(360, 2_000_000, 318, 1_999_370)


def test_azure_sends_only_what_is_left() -> None:
    limit = read_rate_limit(
        [("x-ratelimit-remaining-requests", "99"), ("x-ratelimit-remaining-tokens", "9000")]
    )
    assert limit == RateLimit(remaining_requests=99, remaining_tokens=9000)
    assert limit.headroom is None  # no limit to take a share of


@pytest.mark.parametrize("value", ["-1", "abc", "nan", "inf", "1e400", "1.5", "", "10" * 20, "1_000", "٣"])
def test_a_corrupt_value_is_ignored_not_an_error(value: str) -> None:
    assert read_rate_limit([("x-ratelimit-limit-requests", value)]) is None
    kept = read_rate_limit([("x-ratelimit-limit-requests", value), ("x-ratelimit-limit-tokens", "100")])
    assert kept == RateLimit(tokens_per_minute=100)


def test_answers_without_rate_limit_headers_state_none() -> None:
    assert read_rate_limit([("content-type", "application/json"), ("x-request-id", "req_1")]) is None
    assert read_rate_limit([]) is None


def test_the_headroom_is_the_smallest_share_left() -> None:
    assert RateLimit(100, 1000, 50, 10).headroom == pytest.approx(0.01)
    assert RateLimit(100, None, 50, 10).headroom == pytest.approx(0.5)
    assert RateLimit(0, None, 0, None).headroom is None  # a zero limit has no share


def test_demand_at_a_concurrency_against_the_tightest_limit() -> None:
    # 8 calls in flight, each 500 ms: 960 requests a minute; 1,000 tokens a call: 960,000 tokens.
    found = exposure(
        "gpt-5.5",
        [RateLimit(500, 2_000_000, 499, 1_999_000), RateLimit(800, 30_000_000, 700, 29_000_000)],
        [(400.0, 1), (600.0, 1)],
        [900, 1100],
        concurrency=8,
    )
    assert found is not None
    assert found.requests_per_minute == 500
    assert found.tokens_per_minute == 2_000_000
    assert found.demand_requests == pytest.approx(960.0)
    assert found.demand_tokens == pytest.approx(960_000.0)
    assert found.over == ("requests",)
    assert found.fitting_concurrency() == math.floor(8 * 500 / 960)  # 4
    assert "gpt-5.5: limits 500 requests/min, 2,000,000 tokens/min" in found.describe()
    assert "concurrency 8 asks about 960 requests/min and 960,000 tokens/min" in found.describe()


def test_both_limits_exceeded_the_tighter_ratio_decides() -> None:
    found = exposure("m", [RateLimit(500, 100_000)], [(500.0, 1)], [1000], concurrency=8)
    assert found is not None
    assert found.over == ("requests", "tokens")
    # 960 rpm vs 500 (ratio 0.52); 960,000 tpm vs 100,000 (ratio 0.104): 8 * 0.104 = 0.83 -> 0:
    # not even one call in flight fits
    assert found.fitting_concurrency() == 0


def test_within_limits_nothing_is_over_and_no_concurrency_is_suggested() -> None:
    found = exposure(
        "m", [RateLimit(10_000, 10_000_000, 9_000, 9_000_000)], [(500.0, 1)], [1000], concurrency=8
    )
    assert found is not None
    assert found.over == ()
    assert found.fitting_concurrency() is None
    assert not found.low_headroom


def test_low_headroom_is_flagged_when_even_the_least_loaded_answer_had_under_ten_percent() -> None:
    # the recording's own calls use up the limit as it goes: the best moment counts
    spent_by_the_run = exposure(
        "m",
        [RateLimit(1000, None, 900, None), RateLimit(1000, None, 20, None)],
        [(500.0, 1)],
        [],
        concurrency=1,
    )
    assert spent_by_the_run is not None
    assert not spent_by_the_run.low_headroom
    assert spent_by_the_run.headroom == pytest.approx(0.9)
    found = exposure("m", [RateLimit(1000, None, 50, None)], [(500.0, 1)], [], concurrency=1)
    assert found is not None
    assert found.low_headroom
    assert found.headroom == pytest.approx(0.05)


def test_no_rate_limit_no_exposure_and_no_latency_no_demand() -> None:
    assert exposure("m", [], [(500.0, 1)], [100], concurrency=8) is None
    found = exposure("m", [RateLimit(60)], [], [], concurrency=8)
    assert found is not None
    assert found.demand_requests is None
    assert found.over == ()
    unknown = exposure("m", [RateLimit(60)], [(500.0, 1)], [], concurrency=0)
    assert unknown is not None
    assert unknown.demand_requests is None


def test_a_sample_keeps_its_rate_limit_through_its_dict() -> None:
    sample = Sample(None, 12.0, True, error="HTTP 429", rate_limit=RateLimit(60, None, 0, None))
    data = json.loads(json.dumps(sample.to_dict()))
    assert data["rate_limit"] == {
        "requests_per_minute": 60,
        "tokens_per_minute": None,
        "remaining_requests": 0,
        "remaining_tokens": None,
    }
    assert Sample.from_dict(data) == sample
    # results written before rate limits were read have no such key
    del data["rate_limit"]
    assert Sample.from_dict(data).rate_limit is None


def _recorded_headers() -> list[tuple[Path, dict[str, list[str]]]]:
    found = []
    for folder in ("real-openai", "real-providers"):
        for path in sorted((SHARED / folder).glob("*.json")):
            if path.name == "INDEX.json":
                continue
            headers = (json.loads(path.read_text(encoding="utf-8")).get("response") or {}).get(
                "headers"
            ) or {}
            if any("x-ratelimit-limit-requests" in name.lower() for name in headers):
                found.append((path, headers))
    return found


@pytest.mark.skipif(not SHARED.is_dir(), reason=f"the shared corpus is not at {SHARED}")
def test_every_recorded_limit_in_the_shared_corpus_is_read_as_its_header_says() -> None:
    recorded = _recorded_headers()
    numbers = redacted = 0
    for path, headers in recorded:
        by_name = {name.lower().removeprefix("llm_provider-"): values[0] for name, values in headers.items()}
        limit = read_rate_limit(headers.items())
        if not by_name["x-ratelimit-limit-requests"].isdigit():
            # Some public cassettes replaced the values ("X-RATELIMIT-LIMIT-REQUESTS-XXX"): nothing read.
            assert limit is None, path.name
            redacted += 1
            continue
        numbers += 1
        assert limit is not None, path.name
        assert limit.requests_per_minute == int(by_name["x-ratelimit-limit-requests"]), path.name
        assert limit.tokens_per_minute == int(by_name["x-ratelimit-limit-tokens"]), path.name
        assert limit.remaining_requests == int(by_name["x-ratelimit-remaining-requests"]), path.name
    assert numbers >= 50, numbers  # 58 in the corpus
    assert redacted >= 1, redacted  # 11


def test_retries_count_as_requests() -> None:
    # two calls of 500 ms each, one of them retried once: 3 requests in 1 s of calls in flight
    found = exposure("m", [RateLimit(100)], [(500.0, 1), (500.0, 2)], [1000, 1000], concurrency=1)
    assert found is not None
    assert found.demand_requests == pytest.approx(180.0)
    assert found.demand_tokens == pytest.approx(120_000.0)  # 120 calls a minute, 1,000 tokens each


def test_a_header_sent_twice_is_read_by_neither_a_recording_nor_its_replay() -> None:
    # the live client joins them ("100, 200"); a cassette keeps the values, or the names, apart
    assert read_rate_limit([("x-ratelimit-limit-requests", "100, 200")]) is None
    assert read_rate_limit([("x-ratelimit-limit-requests", ["100", "200"])]) is None
    assert (
        read_rate_limit([("X-RateLimit-Limit-Requests", ["100"]), ("x-ratelimit-limit-requests", ["200"])])
        is None
    )


def test_a_proxys_own_limits_and_its_providers_are_never_mixed() -> None:
    both = read_rate_limit(
        [
            ("llm_provider-x-ratelimit-limit-requests", "10000"),
            ("x-ratelimit-limit-requests", "100"),
            ("llm_provider-x-ratelimit-remaining-requests", "9999"),
            ("x-ratelimit-remaining-requests", "5"),
        ]
    )
    assert both == RateLimit(requests_per_minute=100, remaining_requests=5)
    only_provider = read_rate_limit([("llm_provider-x-ratelimit-limit-requests", "10000")])
    assert only_provider == RateLimit(requests_per_minute=10000)


def test_mistral_requests_per_minute_are_read_too() -> None:
    limit = read_rate_limit(
        [("x-ratelimit-limit-req-minute", "120"), ("x-ratelimit-remaining-req-minute", "119")]
    )
    assert limit == RateLimit(requests_per_minute=120, remaining_requests=119)
