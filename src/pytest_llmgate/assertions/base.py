"""The assertion registry: how a kind is declared, configured, checked, negated and scored.

A kind is one pure function `check(spec, reply, context) -> Verdict`, registered under its
promptfoo name with `@register(...)`. Configuration is validated once, at collection time, by
`parse_assertion`, so a typo or a regex that does not compile is a collection error naming the
file, the case and the field, raised before any model is called.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_llmgate.reply import Reply

NEGATION_PREFIX = "not-"
COMMON_FIELDS = frozenset({"type", "value", "weight", "threshold", "metric"})
METRIC_NAME_CHARS = 80


class AssertionConfigError(ValueError):
    """An assertion entry is wrong; `field` names the offending key (None: the entry as a whole)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class CheckError(Exception):
    """A check could not judge the reply (no judge configured, a custom function that crashed).

    Its message is the whole reason. Raised instead of returning a failing Verdict so that the
    `not-` form fails too: not being able to judge is no evidence either way.
    """


@dataclass(frozen=True)
class AssertionSpec:
    """One validated assertion entry of a case.

    `options` holds the kind's own keys (e.g. `path`, `equals` of json-path); `prepared` is what
    the kind's `prepare` function computed from the configuration (a compiled regex, a schema
    validator, a loaded function) so that checking does no parsing.
    """

    type: str
    kind: str
    negate: bool = False
    value: Any = None
    weight: float = 1.0
    threshold: float | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    prepared: Any = None
    base_dir: Path | None = None
    metric: str | None = None  # promptfoo's named metric: the reports average it per model

    @property
    def metric_only(self) -> bool:
        """`weight: 0`: evaluated and reported, but it neither fails the case nor moves its score."""
        return self.weight == 0

    def describe(self) -> str:
        """A short label for messages: the type and, where short, the value."""
        if self.value is None or isinstance(self.value, (dict, list)):
            return self.type
        text = str(self.value)
        return f"{self.type} {text!r}" if len(text) <= 40 else f"{self.type} {text[:37]!r}..."


@dataclass(frozen=True)
class Verdict:
    """What a kind's check says before negation."""

    passed: bool
    score: float
    reason: str
    # Where in a JSON reply the check found something wrong: (JSON Pointer, what is wrong there),
    # e.g. ("/total", "expected 42, got 41"); the HTML report shows each beside that field.
    at: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, passed: bool, reason: str, at: tuple[tuple[str, str], ...] = ()) -> Verdict:
        return cls(passed=passed, score=1.0 if passed else 0.0, reason=reason, at=at)


@dataclass(frozen=True)
class AssertionResult:
    """The outcome of one assertion on one reply, after negation."""

    type: str
    passed: bool
    score: float
    reason: str
    weight: float = 1.0
    metric: str | None = None
    # A failed check's findings in a JSON reply: (JSON Pointer, what is wrong there); see Verdict.
    at: tuple[tuple[str, str], ...] = ()

    @property
    def counts(self) -> bool:
        """Whether it can fail the case: a weight-0 assertion is a metric only (promptfoo's meaning)."""
        return self.weight > 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "passed": self.passed,
            "score": self.score,
            "reason": self.reason,
            "weight": self.weight,
            "metric": self.metric,
            "at": [{"pointer": pointer, "message": message} for pointer, message in self.at],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AssertionResult:
        return cls(
            at=tuple((str(item["pointer"]), str(item["message"])) for item in data.get("at") or ()),
            type=data["type"],
            passed=bool(data["passed"]),
            score=float(data["score"]),
            reason=data.get("reason", ""),
            weight=float(data.get("weight", 1.0)),
            metric=data.get("metric"),
        )


Judge = Callable[[str], str]


@dataclass(frozen=True)
class AssertionContext:
    """What a check may know beyond the reply.

    `judge` sends one prompt to the judge model (recorded and replayed like any call) and returns
    the judge's reply text; it is None where no judge is configured.
    """

    case_id: str
    model: str
    case_file: Path | None = None
    tools: Sequence[Mapping[str, Any]] = ()
    vars: Mapping[str, Any] = field(default_factory=dict)
    messages: Sequence[Mapping[str, Any]] = ()
    judge: Judge | None = None


CheckFn = Callable[[AssertionSpec, Reply, AssertionContext], Verdict]
PrepareFn = Callable[[AssertionSpec], Any]


@dataclass(frozen=True)
class Kind:
    name: str
    check: CheckFn
    prepare: PrepareFn | None = None
    fields: frozenset[str] = frozenset()
    value_required: bool = False


REGISTRY: dict[str, Kind] = {}


def register(
    name: str,
    *,
    fields: Sequence[str] = (),
    prepare: PrepareFn | None = None,
    value_required: bool = False,
) -> Callable[[CheckFn], CheckFn]:
    """Register `check` as the assertion kind `name` (its `not-` form comes for free)."""

    def decorator(check: CheckFn) -> CheckFn:
        existing = REGISTRY.get(name)
        # The same function registering again is its module being re-imported (pytester's
        # in-process runs restore sys.modules but not this registry): the new one replaces it.
        if existing is not None and _origin(existing.check) != _origin(check):
            raise ValueError(f"assertion kind {name!r} is registered twice")
        REGISTRY[name] = Kind(
            name=name,
            check=check,
            prepare=prepare,
            fields=frozenset(fields),
            value_required=value_required,
        )
        return check

    return decorator


def _origin(check: CheckFn) -> tuple[str, str]:
    return getattr(check, "__module__", ""), getattr(check, "__qualname__", repr(check))


def _number(entry: Mapping[str, Any], key: str, default: float | None) -> float | None:
    raw = entry.get(key, default)
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or math.isnan(float(raw)):
        raise AssertionConfigError(f"{key} must be a number, got {raw!r}", field=key)
    return float(raw)


def parse_assertion(entry: Any, base_dir: Path | None = None) -> AssertionSpec:
    """Validate one `assert:` entry into a spec, or raise AssertionConfigError naming the field."""
    import sys

    from pytest_llmgate.assertions import KIND_MODULES, load_kinds

    # A suite parses thousands of entries: once every kind module is imported (looked up in
    # sys.modules), load_kinds' import_module calls would only cost time.
    if not all(f"{__package__}.{name}" in sys.modules for name in KIND_MODULES):
        load_kinds()
    if not isinstance(entry, Mapping):
        raise AssertionConfigError(f"an assertion must be a mapping with a 'type', got {entry!r}")
    raw_type = entry.get("type")
    if not isinstance(raw_type, str) or not raw_type:
        raise AssertionConfigError("an assertion needs a 'type' (e.g. contains, regex, is-json)", "type")
    negate = raw_type.startswith(NEGATION_PREFIX)
    kind_name = raw_type[len(NEGATION_PREFIX) :] if negate else raw_type
    kind = REGISTRY.get(kind_name)
    if kind is None:
        known = ", ".join(sorted(REGISTRY))
        raise AssertionConfigError(f"unknown assertion type {raw_type!r}; known types: {known}", "type")
    unknown = sorted(set(entry) - COMMON_FIELDS - kind.fields)
    if unknown:
        allowed = ", ".join(sorted(COMMON_FIELDS | kind.fields))
        raise AssertionConfigError(
            f"unknown key {unknown[0]!r} for assertion {raw_type!r}; allowed keys: {allowed}", unknown[0]
        )
    if kind.value_required and entry.get("value") is None:
        raise AssertionConfigError(f"assertion {raw_type!r} needs a 'value'", "value")
    weight = _number(entry, "weight", 1.0)
    assert weight is not None
    if weight < 0:
        raise AssertionConfigError(f"weight must be >= 0, got {weight}", "weight")
    metric = entry.get("metric")
    if metric is not None and (
        not isinstance(metric, str) or not metric.strip() or len(metric) > METRIC_NAME_CHARS
    ):
        raise AssertionConfigError(
            f"metric must be a name of 1 to {METRIC_NAME_CHARS} characters, got {metric!r}", "metric"
        )
    configured: dict[str, Any] = {
        "metric": metric.strip() if metric is not None else None,
        "type": raw_type,
        "kind": kind_name,
        "negate": negate,
        "value": entry.get("value"),
        "weight": weight,
        "threshold": _number(entry, "threshold", None),
        "options": {key: entry[key] for key in entry if key in kind.fields},
        "base_dir": base_dir,
    }
    spec = AssertionSpec(**configured)
    if kind.prepare is not None:  # what prepare computes joins the spec it was computed from
        spec = AssertionSpec(**configured, prepared=kind.prepare(spec))
    return spec


def evaluate(spec: AssertionSpec, reply: Reply, context: AssertionContext) -> AssertionResult:
    """Run one assertion; an exception inside a check is a failure with its reason, never a crash."""
    kind = REGISTRY[spec.kind]
    try:
        verdict = kind.check(spec, reply, context)
    except CheckError as exc:
        return AssertionResult(
            spec.type, False, 0.0, one_line(f"{spec.type}: {exc}"), spec.weight, spec.metric
        )
    except Exception as exc:  # a check must not take the session down
        verdict = Verdict(False, 0.0, one_line(f"{spec.type} raised {type(exc).__name__}: {exc}"))
        if spec.negate:
            # An error is not evidence of absence: a negated assertion that errors fails too.
            return AssertionResult(spec.type, False, 0.0, verdict.reason, spec.weight, spec.metric)
    score = float(verdict.score)
    score = 0.0 if math.isnan(score) else min(1.0, max(0.0, score))
    reason = one_line(verdict.reason)
    if spec.negate:
        return AssertionResult(
            spec.type, not verdict.passed, 1.0 - score, f"not ({reason})", spec.weight, spec.metric
        )
    at = () if verdict.passed else tuple((pointer, one_line(message)) for pointer, message in verdict.at)
    return AssertionResult(spec.type, verdict.passed, score, reason, spec.weight, spec.metric, at)


def json_pointer(parts: Sequence[str | int]) -> str:
    """The JSON Pointer (RFC 6901) of a path of keys and indexes: ["a/b", 0] -> "/a~1b/0"."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in parts)


def one_line(text: str) -> str:
    """Reasons are one line in every report: runs of whitespace (newlines included) become one space."""
    return " ".join(text.split())


def case_score(results: Sequence[AssertionResult]) -> float:
    """Weighted mean score in [0, 1]; a case with no assertions (or zero total weight) scores 1."""
    total_weight = sum(result.weight for result in results)
    if total_weight <= 0:
        return 1.0
    return sum(result.score * result.weight for result in results) / total_weight


def sample_passes(results: Sequence[AssertionResult], threshold: float | None = None) -> bool:
    """Whether one reply passes its case's assertions.

    Without a case threshold every assertion that counts (weight > 0) must pass. With one, the
    weighted score decides (promptfoo's test-level threshold): a failed low-weight check is then
    outweighed by the rest, which is what the author asked for by setting it.
    """
    if threshold is not None:
        return case_score(results) >= threshold - 1e-9
    return all(result.passed for result in results if result.counts)
