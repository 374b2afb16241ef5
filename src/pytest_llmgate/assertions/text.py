"""Text kinds (equals, contains and friends, regex, levenshtein, similar, word-count, max-length)
and the small text helpers every kind's reasons share (excerpts, fenced blocks).

All text kinds judge `reply.text`. Values are checked once in `prepare`, so a regex that does not
compile or a list given where a string is needed is a collection error, not a failed case.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Sequence
from typing import Any

from pytest_llmgate.assertions.base import (
    AssertionConfigError,
    AssertionContext,
    AssertionSpec,
    Verdict,
    register,
)
from pytest_llmgate.reply import Reply

EXCERPT_CHARS = 80
DEFAULT_LEVENSHTEIN_THRESHOLD = 5
DEFAULT_SIMILAR_THRESHOLD = 0.75

# A fence opens with ``` (optionally a language tag) at the start of a line and closes with the next
# ```; an unclosed fence runs to the end of the reply (a reply cut off by max_tokens).
_FENCE = re.compile(r"(?:^|\n)[ \t]*```[ \t]*([A-Za-z0-9_+.#-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)


# --- helpers shared by the kind modules -------------------------------------------------------


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """A quoted, one-line excerpt of `text` for reasons: the first `limit` characters, escaped."""
    cut = text if len(text) <= limit else text[:limit] + "..."
    return json.dumps(cut, ensure_ascii=False)


def label(spec: AssertionSpec) -> str:
    """`contains 'ACME'`: the kind (not the `not-` type: evaluate wraps a negated reason in
    `not (...)` itself) and the value where it is short."""
    if spec.value is None or isinstance(spec.value, (dict, list)):
        return spec.kind
    text = str(spec.value)
    return f"{spec.kind} {text!r}" if len(text) <= 40 else f"{spec.kind} {text[:37]!r}..."


def show(value: Any, limit: int = 60) -> str:
    """A short repr of a value for reasons (`1234.5`, `'ACME'`, `{'a': 1}`)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """Every ``` fenced block of a reply as (language tag in lower case, body)."""
    return [(match.group(1).lower(), match.group(2)) for match in _FENCE.finditer(text)]


def first_block(text: str, languages: Sequence[str]) -> str | None:
    """The body of the first fenced block tagged with one of `languages` ("" = untagged), or None."""
    for language, body in fenced_blocks(text):
        if language in languages:
            return body
    return None


def levenshtein(a: str, b: str, limit: int | None = None) -> int:
    """Edit distance between `a` and `b`; with `limit`, any distance above it is reported as limit + 1.

    The limit bounds the work to a diagonal band of width 2 * limit + 1, so comparing two long
    replies against a small threshold stays linear instead of quadratic.
    """
    if len(a) < len(b):
        a, b = b, a
    if limit is not None and len(a) - len(b) > limit:
        return limit + 1
    if not b:
        return len(a)
    band = len(a) if limit is None else limit
    big = len(a) + len(b) + 1
    previous = [j if j <= band else big for j in range(len(b) + 1)]
    for i in range(1, len(a) + 1):
        low, high = max(1, i - band), min(len(b), i + band)
        current = [big] * (len(b) + 1)
        current[0] = i if i <= band else big
        for j in range(low, high + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
        if limit is not None and min(current[low - 1 : high + 1]) > limit:
            return limit + 1
        previous = current
    distance = previous[len(b)]
    return distance if limit is None or distance <= limit else limit + 1


# --- configuration helpers ---------------------------------------------------------------------


def _string_value(spec: AssertionSpec) -> str:
    """The value as a string: strings as they are, numbers as written (`42`, `1.5`)."""
    value = spec.value
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise AssertionConfigError(f"{spec.kind} needs a string value, got {show(value)}", "value")


def _string_list(spec: AssertionSpec) -> tuple[str, ...]:
    """A list of strings; like promptfoo, a single string is split on commas."""
    value = spec.value
    if isinstance(value, str):
        items = [part.strip() for part in value.split(",") if part.strip()]
    elif isinstance(value, list):
        items = []
        for item in value:
            if isinstance(item, bool) or not isinstance(item, (str, int, float)):
                raise AssertionConfigError(
                    f"{spec.kind} needs a list of strings, got item {show(item)}", "value"
                )
            items.append(str(item))
    else:
        raise AssertionConfigError(f"{spec.kind} needs a list of strings, got {show(value)}", "value")
    if not items:
        raise AssertionConfigError(f"{spec.kind} needs at least one string", "value")
    return tuple(items)


def _int_option(spec: AssertionSpec, key: str, raw: Any) -> int:
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or raw != int(raw) or raw < 0:
        raise AssertionConfigError(f"{key} of {spec.kind} must be a whole number >= 0, got {show(raw)}", key)
    return int(raw)


# --- equals, contains family, starts-with ------------------------------------------------------


def _prepare_equals(spec: AssertionSpec) -> Any:
    value = spec.value
    if isinstance(value, (dict, list)):
        return value
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    return _string_value(spec)


@register("equals", prepare=_prepare_equals, value_required=True)
def check_equals(spec: AssertionSpec, reply: Reply, context: AssertionContext) -> Verdict:
    """Exact text match; a mapping or list value compares the reply parsed as JSON instead."""
    expected = spec.prepared
    if isinstance(expected, (dict, list)):
        try:
            actual = json.loads(reply.text)
        except json.JSONDecodeError:
            return Verdict.of(False, f"{spec.kind}: the reply is not JSON: {excerpt(reply.text)}")
        if actual == expected:
            return Verdict.of(True, f"{spec.kind}: the reply's JSON equals the expected value")
        return Verdict.of(False, f"{spec.kind}: expected {show(expected)}, got {excerpt(reply.text)}")
    if reply.text == expected:
        return Verdict.of(True, f"{label(spec)}: equal")
    hint = " (equal after trimming whitespace)" if reply.text.strip() == expected else ""
    return Verdict.of(False, f"{label(spec)}: got {excerpt(reply.text)}{hint}")


@register("contains", prepare=_string_value, value_required=True)
def check_contains(spec: AssertionSpec, reply: Reply, context: AssertionContext) -> Verdict:
    return _contains(spec, reply.text, spec.prepared, fold=False)


@register("icontains", prepare=_string_value, value_required=True)
def check_icontains(spec: AssertionSpec, reply: Reply, context: AssertionContext) -> Verdict:
    return _contains(spec, reply.text, spec.prepared, fold=True)


def _contains(spec: AssertionSpec, text: str, needle: str, *, fold: bool) -> Verdict:
    haystack = text.casefold() if fold else text
    at = haystack.find(needle.casefold() if fold else needle)
    if at >= 0:
        return Verdict.of(True, f"{label(spec)}: found at offset {at}")
    return Verdict.of(False, f"{label(spec)}: not found in {excerpt(text)}")


def _found(text: str, needles: Sequence[str], fold: bool) -> list[str]:
    haystack = text.casefold() if fold else text
    return [needle for needle in needles if (needle.casefold() if fold else needle) in haystack]


def _any(spec: AssertionSpec, text: str, fold: bool) -> Verdict:
    needles: tuple[str, ...] = spec.prepared
    found = _found(text, needles, fold)
    if found:
        return Verdict.of(True, f"{spec.kind}: found {show(found[0])}")
    return Verdict.of(False, f"{spec.kind}: none of {show(list(needles))} found in {excerpt(text)}")


def _all(spec: AssertionSpec, text: str, fold: bool) -> Verdict:
    needles: tuple[str, ...] = spec.prepared
    found = _found(text, needles, fold)
    missing = [needle for needle in needles if needle not in found]
    score = len(found) / len(needles)
    if not missing:
        return Verdict(True, score, f"{spec.kind}: all {len(needles)} found")
    return Verdict(
        False,
        score,
        f"{spec.kind}: missing {show(missing)} ({len(found)}/{len(needles)} found) in {excerpt(text)}",
    )


@register("contains-any", prepare=_string_list, value_required=True)
def check_contains_any(spec: AssertionSpec, reply: Reply, context: AssertionContext) -> Verdict:
    return _any(spec, reply.text, fold=False)


@register("icontains-any", prepare=_string_list, value_required=True)
def check_icontains_any(spec: AssertionSpec, reply: Reply, context: AssertionContext) -> Verdict:
    return _any(spec, reply.text, fold=True)


@register("contains-all", prepare=_string_list, value_required=True)
def check_contains_all(spec: AssertionSpec, reply: Reply, context: AssertionContext) -> Verdict:
    """Score is the fraction found, so a candidate that finds more of them scores higher."""
    return _all(spec, reply.text, fold=False)


@register("icontains-all", prepare=_string_list, value_required=True)
def check_icontains_all(spec: AssertionSpec, reply: Reply, context: AssertionContext) -> Verdict:
    return _all(spec, reply.text, fold=True)


@register("starts-with", prepare=_string_value, value_required=True)
def check_starts_with(spec: AssertionSpec, reply: Reply, context: AssertionContext) -> Verdict:
    if reply.text.startswith(spec.prepared):
        return Verdict.of(True, f"{label(spec)}: it does")
    return Verdict.of(False, f"{label(spec)}: the reply starts {excerpt(reply.text, 40)}")


# --- regex -------------------------------------------------------------------------------------


def _prepare_regex(spec: AssertionSpec) -> re.Pattern[str]:
    pattern = _string_value(spec)
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise AssertionConfigError(f"regex {pattern!r} does not compile: {exc}", "value") from exc


@register("regex", prepare=_prepare_regex, value_required=True)
def check_regex(spec: AssertionSpec, reply: Reply, context: AssertionContext) -> Verdict:
    """`re.search`: the pattern may match anywhere; anchor it with ^...$ for a whole-reply match."""
    match = spec.prepared.search(reply.text)
    if match:
        return Verdict.of(True, f"{label(spec)}: matched {excerpt(match.group(0), 40)}")
    return Verdict.of(False, f"{label(spec)}: no match in {excerpt(reply.text)}")


# --- levenshtein, similar ----------------------------------------------------------------------


def _prepare_levenshtein(spec: AssertionSpec) -> tuple[str, int]:
    threshold = DEFAULT_LEVENSHTEIN_THRESHOLD if spec.threshold is None else spec.threshold
    return _string_value(spec), _int_option(spec, "threshold", threshold)


@register("levenshtein", prepare=_prepare_levenshtein, value_required=True)
def check_levenshtein(spec: AssertionSpec, reply: Reply, context: AssertionContext) -> Verdict:
    """Edit distance (insert, delete, substitute one character) <= threshold (default 5)."""
    expected, limit = spec.prepared
    distance = levenshtein(reply.text, expected, limit)
    if distance <= limit:
        return Verdict.of(True, f"{label(spec)}: distance {distance} <= {limit}")
    return Verdict.of(False, f"{label(spec)}: distance > {limit} for {excerpt(reply.text)}")


def _prepare_similar(spec: AssertionSpec) -> tuple[tuple[str, ...], float]:
    values = _string_list(spec) if isinstance(spec.value, list) else (_string_value(spec),)
    threshold = DEFAULT_SIMILAR_THRESHOLD if spec.threshold is None else spec.threshold
    if not 0.0 <= threshold <= 1.0:
        raise AssertionConfigError(
            f"threshold of similar must be within [0, 1], got {threshold}", "threshold"
        )
    return values, threshold


def similarity(a: str, b: str) -> float:
    """difflib's ratio after case folding and collapsing whitespace, in [0, 1]."""
    left, right = " ".join(a.casefold().split()), " ".join(b.casefold().split())
    if not left and not right:
        return 1.0
    return difflib.SequenceMatcher(None, left, right, autojunk=False).ratio()


@register("similar", prepare=_prepare_similar, value_required=True)
def check_similar(spec: AssertionSpec, reply: Reply, context: AssertionContext) -> Verdict:
    """String similarity, not embeddings: catches rewording of a few words, not paraphrase.

    With a list value the best match counts; the score is that similarity.
    """
    values, threshold = spec.prepared
    best = max(similarity(reply.text, value) for value in values)
    label = f"{spec.kind}: similarity {best:.2f}"
    if best >= threshold:
        return Verdict(True, best, f"{label} >= {threshold:g}")
    return Verdict(False, best, f"{label} < {threshold:g} for {excerpt(reply.text)}")


# --- word-count, max-length --------------------------------------------------------------------


def _prepare_word_count(spec: AssertionSpec) -> tuple[int | None, int | None]:
    if spec.value is not None:
        if "min" in spec.options or "max" in spec.options:
            raise AssertionConfigError("word-count takes either value (an exact count) or min/max", "value")
        exact = _int_option(spec, "value", spec.value)
        return exact, exact
    low = None if spec.options.get("min") is None else _int_option(spec, "min", spec.options["min"])
    high = None if spec.options.get("max") is None else _int_option(spec, "max", spec.options["max"])
    if low is None and high is None:
        raise AssertionConfigError("word-count needs min, max or both (or value: an exact count)", "min")
    if low is not None and high is not None and low > high:
        raise AssertionConfigError(f"word-count min {low} is above max {high}", "max")
    return low, high


@register("word-count", fields=("min", "max"), prepare=_prepare_word_count)
def check_word_count(spec: AssertionSpec, reply: Reply, context: AssertionContext) -> Verdict:
    """Words are runs of non-whitespace, as `str.split()` sees them ("don't" is one word)."""
    low, high = spec.prepared
    count = len(reply.text.split())
    bounds = f"{low}" if low == high else f"[{'-' if low is None else low}, {'-' if high is None else high}]"
    inside = (low is None or count >= low) and (high is None or count <= high)
    if inside:
        return Verdict.of(True, f"{spec.kind}: {count} words within {bounds}")
    return Verdict.of(False, f"{spec.kind}: {count} words, expected {bounds}: {excerpt(reply.text)}")


def _prepare_max_length(spec: AssertionSpec) -> int:
    return _int_option(spec, "value", spec.value)


@register("max-length", prepare=_prepare_max_length, value_required=True)
def check_max_length(spec: AssertionSpec, reply: Reply, context: AssertionContext) -> Verdict:
    """Length in characters (code points), not tokens or bytes."""
    limit: int = spec.prepared
    length = len(reply.text)
    if length <= limit:
        return Verdict.of(True, f"{spec.kind}: {length} characters <= {limit}")
    return Verdict.of(False, f"{spec.kind}: {length} characters > {limit}: {excerpt(reply.text)}")


def is_finite_number(value: Any) -> bool:
    """A JSON number that is not a bool, NaN or infinite."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
