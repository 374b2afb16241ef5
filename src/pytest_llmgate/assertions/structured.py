"""JSON and extraction kinds: is-json, contains-json, json-path, fields (extraction accuracy);
plus JSON finding, a JSONPath subset and the value normalizers they use.

Finding JSON in a reply (json-path, fields, contains-json): the whole reply, else the first ```json
(or untagged) fenced block, else the first `{...}` object in the prose. Arrays count when they are
the whole reply or a fenced block, not in prose, where `[1]` is more often a citation than data.

JSONPath subset: `$` (the root), `.key`, `['key']` / `["key"]`, `[0]` and `[-1]`, `[*]` and `.*`
(every element or value), `..key` (key at any depth). Anything else (filters, slices, unions) is a
collection error. A path without `*` or `..` names one value; with them it names the list of every
value it reaches, and `equals`/`contains` apply to that list, `matches`/`approx` to each element.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_llmgate.assertions.base import (
    AssertionConfigError,
    AssertionContext,
    AssertionSpec,
    Verdict,
    json_pointer,
    register,
)
from pytest_llmgate.assertions.text import excerpt, fenced_blocks, show
from pytest_llmgate.reply import Reply

DEFAULT_TOLERANCE = 1e-6
JSON_FENCE_LANGUAGES = ("json", "jsonc", "")
# Scanning prose tries a decode at each "{"; a cap keeps a pathological reply cheap.
MAX_PROSE_ATTEMPTS = 200
_NOTHING = object()


# --- finding JSON ------------------------------------------------------------------------------


def json_candidates(text: str) -> Iterator[Any]:
    """Every JSON value a reply offers, best first: whole reply, fenced blocks, objects in prose."""
    whole = _loads(text)
    if whole is not _NOTHING:
        yield whole
    for language, body in fenced_blocks(text):
        if language in JSON_FENCE_LANGUAGES:
            value = _loads(body)
            if value is not _NOTHING:
                yield value
    decoder = json.JSONDecoder()
    start, attempts = text.find("{"), 0
    while start >= 0 and attempts < MAX_PROSE_ATTEMPTS:
        attempts += 1
        try:
            value, end = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            start = text.find("{", start + 1)
            continue
        yield value
        start = text.find("{", end)


def parse_json_output(text: str) -> Any:
    """The first JSON value the reply offers, or raise ValueError with an excerpt of the reply."""
    for value in json_candidates(text):
        return value
    raise ValueError(f"no JSON found in the reply: {excerpt(text)}")


def _loads(text: str) -> Any:
    try:
        return json.loads(text.strip().lstrip("\ufeff"))
    except ValueError:
        return _NOTHING


# --- schemas -----------------------------------------------------------------------------------


def schema_validator(schema: Any, field: str) -> Any:
    """A jsonschema validator for `schema` under the draft it declares (default: the newest).

    Raises AssertionConfigError naming `field` when the schema itself is invalid. Formats
    (`date`, `email`, ...) are checked where jsonschema has a checker for them.
    """
    from jsonschema import exceptions, validators

    if not isinstance(schema, (dict, bool)):
        raise AssertionConfigError(f"a JSON Schema must be a mapping, got {show(schema)}", field)
    cls = validators.validator_for(schema)
    try:
        cls.check_schema(schema)
    except exceptions.SchemaError as exc:
        where = "/".join(str(part) for part in exc.path)
        raise AssertionConfigError(
            f"invalid JSON Schema{f' at {where}' if where else ''}: {exc.message}", field
        ) from exc
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def schema_problem(validator: Any, instance: Any, root: str = "$") -> str | None:
    """The most relevant validation error as `path: message`, or None when `instance` is valid."""
    from jsonschema.exceptions import best_match

    error = best_match(validator.iter_errors(instance))
    if error is None:
        return None
    where = root + "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in error.path)
    message = error.message if len(error.message) <= 120 else error.message[:117] + "..."
    return f"{where}: {message}"


# --- is-json, contains-json --------------------------------------------------------------------


def _prepare_schema(spec: AssertionSpec) -> Any:
    return None if spec.value is None else schema_validator(spec.value, "value")


@register("is-json", prepare=_prepare_schema)
def check_is_json(spec: AssertionSpec, reply: Reply, context: AssertionContext) -> Verdict:
    """The whole reply is JSON (surrounding whitespace allowed; fences and prose are not)."""
    value = _loads(reply.text)
    if value is _NOTHING:
        return Verdict.of(False, f"{spec.kind}: the reply is not JSON: {excerpt(reply.text)}")
    if spec.prepared is None:
        return Verdict.of(True, f"{spec.kind}: the reply is JSON")
    problem = schema_problem(spec.prepared, value)
    if problem is None:
        return Verdict.of(True, f"{spec.kind}: the reply is JSON and matches the schema")
    return Verdict.of(False, f"{spec.kind}: schema violation at {problem}")


@register("contains-json", prepare=_prepare_schema)
def check_contains_json(spec: AssertionSpec, reply: Reply, context: AssertionContext) -> Verdict:
    """Some JSON object or array in the reply (whole, fenced or in prose) matches; with a schema, any
    candidate that validates passes."""
    candidates = [value for value in json_candidates(reply.text) if isinstance(value, (dict, list))]
    if not candidates:
        return Verdict.of(False, f"{spec.kind}: no JSON object found in {excerpt(reply.text)}")
    if spec.prepared is None:
        return Verdict.of(True, f"{spec.kind}: found {excerpt(json.dumps(candidates[0]), 40)}")
    problems = []
    for value in candidates:
        problem = schema_problem(spec.prepared, value)
        if problem is None:
            return Verdict.of(True, f"{spec.kind}: found JSON matching the schema")
        problems.append(problem)
    return Verdict.of(
        False, f"{spec.kind}: {len(candidates)} JSON value(s) found, none matches the schema: {problems[0]}"
    )


# --- JSONPath subset ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One step of a path: `key` (a name), `index` (a list position), `wild` (all), `deep` (..key)."""

    kind: str
    key: str = ""
    index: int = 0


@dataclass(frozen=True)
class JsonPath:
    text: str
    steps: tuple[Step, ...]

    @property
    def definite(self) -> bool:
        """True when the path names one value (no `*`, no `..`)."""
        return all(step.kind in ("key", "index") for step in self.steps)

    def find(self, document: Any) -> list[Any]:
        nodes = [document]
        for step in self.steps:
            nodes = [found for node in nodes for found in _apply(step, node)]
        return nodes


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_INDEX = re.compile(r"\[\s*(-?\d+)\s*\]")
_QUOTED = re.compile(r"""\[\s*(?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)")\s*\]""")
_WILD_BRACKET = re.compile(r"\[\s*\*\s*\]")


def parse_json_path(text: str) -> JsonPath:
    """Parse the supported subset, or raise ValueError saying where and what is wrong."""
    if not isinstance(text, str) or not text.startswith("$"):
        raise ValueError(f"a JSONPath starts with '$', got {show(text)}")
    steps: list[Step] = []
    at = 1
    while at < len(text):
        rest = text[at:]
        if rest.startswith(".."):
            name = _NAME.match(text, at + 2)
            if name is None:
                raise ValueError(f"expected a key name after '..' at position {at} of {text!r}")
            steps.append(Step("deep", key=name.group(0)))
            at = name.end()
        elif rest.startswith(".*"):
            steps.append(Step("wild"))
            at += 2
        elif rest.startswith("."):
            name = _NAME.match(text, at + 1)
            if name is None:
                raise ValueError(f"expected a key name after '.' at position {at} of {text!r}")
            steps.append(Step("key", key=name.group(0)))
            at = name.end()
        elif match := _INDEX.match(text, at):
            steps.append(Step("index", index=int(match.group(1))))
            at = match.end()
        elif match := _QUOTED.match(text, at):
            raw = match.group(1) if match.group(1) is not None else match.group(2)
            steps.append(Step("key", key=re.sub(r"\\(.)", r"\1", raw)))
            at = match.end()
        elif match := _WILD_BRACKET.match(text, at):
            steps.append(Step("wild"))
            at = match.end()
        else:
            raise ValueError(
                f"unsupported JSONPath syntax at position {at} of {text!r} "
                "(supported: $, .key, ['key'], [0], [*], .*, ..key)"
            )
    return JsonPath(text=text, steps=tuple(steps))


def _apply(step: Step, node: Any) -> list[Any]:
    if step.kind == "key":
        return [node[step.key]] if isinstance(node, dict) and step.key in node else []
    if step.kind == "index":
        if isinstance(node, list) and -len(node) <= step.index < len(node):
            return [node[step.index]]
        return []
    if step.kind == "wild":
        if isinstance(node, dict):
            return list(node.values())
        return list(node) if isinstance(node, list) else []
    return list(_descendants_named(node, step.key))


def _descendants_named(node: Any, key: str) -> Iterator[Any]:
    if isinstance(node, dict):
        if key in node:
            yield node[key]
        for child in node.values():
            yield from _descendants_named(child, key)
    elif isinstance(node, list):
        for child in node:
            yield from _descendants_named(child, key)


# --- json-path ---------------------------------------------------------------------------------

_COMPARATORS = ("equals", "contains", "matches", "approx")


@dataclass(frozen=True)
class PathCheck:
    path: JsonPath
    comparator: str
    expected: Any
    pattern: re.Pattern[str] | None = None
    tolerance: float = DEFAULT_TOLERANCE


def _prepare_json_path(spec: AssertionSpec) -> PathCheck:
    if spec.value is not None:
        raise AssertionConfigError(
            "json-path takes `path` and one of equals, contains, matches, approx; not `value`", "value"
        )
    raw_path = spec.options.get("path")
    if raw_path is None:
        raise AssertionConfigError("json-path needs a `path`, e.g. path: $.invoice.total", "path")
    try:
        path = parse_json_path(raw_path)
    except ValueError as exc:
        raise AssertionConfigError(str(exc), "path") from exc
    given = [name for name in _COMPARATORS if name in spec.options]
    if not given:
        raise AssertionConfigError("json-path needs exactly one of equals, contains, matches, approx", None)
    if len(given) > 1:
        raise AssertionConfigError(
            f"json-path takes exactly one of equals, contains, matches, approx; got {', '.join(given)}",
            given[1],
        )
    comparator = given[0]
    expected = spec.options[comparator]
    if "tolerance" in spec.options and comparator != "approx":
        raise AssertionConfigError("tolerance only goes with approx", "tolerance")
    if comparator == "matches":
        if not isinstance(expected, str):
            raise AssertionConfigError(f"matches needs a regex string, got {show(expected)}", "matches")
        try:
            pattern = re.compile(expected)
        except re.error as exc:
            raise AssertionConfigError(f"regex {expected!r} does not compile: {exc}", "matches") from exc
        return PathCheck(path, comparator, expected, pattern=pattern)
    if comparator == "approx":
        if not _is_number(expected) or not math.isfinite(expected):
            raise AssertionConfigError(f"approx needs a number, got {show(expected)}", "approx")
        tolerance = spec.options.get("tolerance", DEFAULT_TOLERANCE)
        if not _is_number(tolerance) or not tolerance >= 0:
            raise AssertionConfigError(f"tolerance must be a number >= 0, got {show(tolerance)}", "tolerance")
        return PathCheck(path, comparator, float(expected), tolerance=float(tolerance))
    return PathCheck(path, comparator, expected)


@register(
    "json-path",
    fields=("path", *_COMPARATORS, "tolerance"),
    prepare=_prepare_json_path,
)
def check_json_path(spec: AssertionSpec, reply: Reply, context: AssertionContext) -> Verdict:
    check: PathCheck = spec.prepared
    label = f"{spec.kind} {check.path.text} {check.comparator} {show(check.expected, 40)}"
    try:
        document = parse_json_output(reply.text)
    except ValueError as exc:
        return Verdict.of(False, f"{label}: {exc}")
    found = check.path.find(document)
    at: tuple[tuple[str, str], ...] = ()
    if check.path.definite:
        pointer = _definite_pointer(check.path, document)
        if not found:
            return Verdict.of(
                False,
                f"{label}: nothing at {check.path.text} in {excerpt(json.dumps(document))}",
                ((pointer, f"{check.path.text}: nothing here"),),
            )
        node: Any = found[0]
    else:
        node = found
    problem = _compare(check, node)
    if problem is None:
        return Verdict.of(True, f"{label}: yes")
    if check.path.definite:
        at = ((pointer, f"{check.path.text} {check.comparator} {show(check.expected, 40)}: {problem}"),)
    return Verdict.of(False, f"{label}: {problem}", at)


def _definite_pointer(path: JsonPath, document: Any) -> str:
    """The JSON Pointer of a definite path's place in `document` (negative indexes resolved)."""
    parts: list[str | int] = []
    node = document
    for step in path.steps:
        if step.kind == "key":
            parts.append(step.key)
            node = node.get(step.key) if isinstance(node, dict) else None
        else:
            index = step.index + len(node) if isinstance(node, list) and step.index < 0 else step.index
            parts.append(index)
            node = node[index] if isinstance(node, list) and 0 <= index < len(node) else None
    return json_pointer(parts)


def _compare(check: PathCheck, node: Any) -> str | None:
    """None when `node` satisfies the check, else what is wrong."""
    if check.comparator == "equals":
        return None if json_equal(node, check.expected) else f"got {show(node)}"
    if check.comparator == "contains":
        return None if _json_contains(node, check.expected) else f"not in {show(node)}"
    elements = node if (isinstance(node, list) and not check.path.definite) else [node]
    if not elements:
        return "the path matched nothing"
    for element in elements:
        if check.comparator == "matches":
            if not isinstance(element, (str, int, float)) or isinstance(element, bool):
                return f"{show(element)} is not a string"
            assert check.pattern is not None
            if not check.pattern.search(str(element)):
                return f"{show(element)} does not match"
        else:
            if not _is_number(element):
                return f"{show(element)} is not a number"
            if abs(element - check.expected) > check.tolerance:
                return f"got {show(element)}, off by {abs(element - check.expected):g} > {check.tolerance:g}"
    return None


def json_equal(a: Any, b: Any) -> bool:
    """Deep equality where 1 == 1.0 but True is not 1 (Python's == says it is)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[key], b[key]) for key in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if _is_number(a) and _is_number(b):
        return bool(a == b)
    return type(a) is type(b) and bool(a == b)


def _json_contains(node: Any, expected: Any) -> bool:
    if isinstance(node, str):
        return isinstance(expected, (str, int, float)) and str(expected) in node
    if isinstance(node, list):
        return any(json_equal(item, expected) for item in node)
    if isinstance(node, dict):
        if isinstance(expected, dict):
            return json_subset(expected, node) is None
        return isinstance(expected, str) and expected in node
    return False


def json_subset(expected: Any, actual: Any, where: str = "") -> str | None:
    """None when every key and value of `expected` is in `actual` (recursively; extra keys are fine;
    lists must have the same length, element by element), else `where: what differs`."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return f"{where or '$'}: expected an object, got {show(actual)}"
        for key, value in expected.items():
            here = f"{where}.{key}" if where else str(key)
            if key not in actual:
                return f"{here}: missing"
            problem = json_subset(value, actual[key], here)
            if problem:
                return problem
        return None
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return f"{where or '$'}: expected {show(expected)}, got {show(actual)}"
        for position, (item, other) in enumerate(zip(expected, actual, strict=True)):
            problem = json_subset(item, other, f"{where}[{position}]")
            if problem:
                return problem
        return None
    if json_equal(expected, actual):
        return None
    return f"{where or '$'}: expected {show(expected)}, got {show(actual)}"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# --- normalizers -------------------------------------------------------------------------------

_CURRENCY_SYMBOLS = "$€£¥₹₩₽¢"
_LEADING_CURRENCY = re.compile(rf"^(?:[{_CURRENCY_SYMBOLS}]|[A-Z]{{3}}(?=[\s\d.+\-−]))\s*")
_TRAILING_CURRENCY = re.compile(rf"\s*(?:[{_CURRENCY_SYMBOLS}%]|(?<=[\d\s])[A-Z]{{3}})$")
_GROUP_SEPARATORS = re.compile(r"[\s_'’\u00a0\u202f]")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_THOUSANDS = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d*)?")
_EURO_THOUSANDS = re.compile(r"\d{1,3}(?:\.\d{3}){2,}")


def parse_number(value: Any) -> float | None:
    """The number a value spells, or None.

    Accepts JSON numbers and strings like `1234.5`, `1,234.50`, `$1,234.50`, `-$5`, `(1,234.50)`
    (accounting negative), `USD 12`, `12 EUR`, `1 234,50`, `1.234,50` (the separator that comes last
    is the decimal one), `3,5` (a lone comma not followed by 3 digits is decimal) and `12%` (12, not 0.12).
    `1,234` is read the English way, as 1234.
    """
    if _is_number(value):
        return float(value) if math.isfinite(value) else None
    if not isinstance(value, str):
        return None
    text = value.strip()
    negative = False
    if len(text) > 2 and text[0] == "(" and text[-1] == ")":
        negative, text = True, text[1:-1].strip()
    signs = 0
    while True:
        before = text
        text = _LEADING_CURRENCY.sub("", text)
        text = _TRAILING_CURRENCY.sub("", text)
        if text[:1] in ("+", "-", "−"):
            signs += 1
            negative ^= text[0] != "+"
            text = text[1:].lstrip()
        if text == before:
            break
    if signs > 1 or not text:
        return None
    text = _GROUP_SEPARATORS.sub("", text)
    if "," in text and "." in text:
        if text.rfind(",") > text.rfind("."):
            text = text.replace(".", "").replace(",", ".")
        else:
            text = text.replace(",", "")
    elif "," in text:
        if _THOUSANDS.fullmatch(text):
            text = text.replace(",", "")
        elif text.count(",") == 1:
            text = text.replace(",", ".")
        else:
            return None
    elif _EURO_THOUSANDS.fullmatch(text):
        text = text.replace(".", "")
    if not _PLAIN_NUMBER.fullmatch(text):
        return None
    number = float(text)
    return -number if negative else number


_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ),
        start=1,
    )
    for name in names
}
_WEEKDAY = r"(?:(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*\.?,?\s+)?"
_ISO_DATE = re.compile(
    r"(\d{4})[-/](\d{1,2})[-/](\d{1,2})(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:Z|[+-]\d{2}:?\d{2})?)?",
    re.IGNORECASE,
)
_MONTH_FIRST = re.compile(_WEEKDAY + r"([a-z]+)\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})", re.IGNORECASE)
_DAY_FIRST = re.compile(
    _WEEKDAY + r"(\d{1,2})(?:st|nd|rd|th)?\s+(?:of\s+)?([a-z]+)\.?,?\s+(\d{4})", re.IGNORECASE
)
_NUMERIC_DATE = re.compile(r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})")


def parse_date(value: Any, numeric_order: str | None = None) -> str | None:
    """The ISO date (`2024-03-05`) a string spells, or None.

    Always understood: ISO dates and datetimes (the time is dropped), `2024/03/05`, and textual
    dates (`March 5, 2024`, `Mar 5th 2024`, `5 March 2024`, `Tuesday, 5th of March 2024`).
    Numeric day/month dates like `05/03/2024` are ambiguous, so they are read only when
    `numeric_order` says how: "dmy" (5 March) or "mdy" (May 3).
    """
    if not isinstance(value, str):
        return None
    text = value.strip()
    year: int | str
    if match := _ISO_DATE.fullmatch(text):
        year, month, day = match.groups()
    elif match := _MONTH_FIRST.fullmatch(text):
        month_name, day, year = match.groups()
        month = str(_MONTHS.get(month_name.lower(), 0))
    elif match := _DAY_FIRST.fullmatch(text):
        day, month_name, year = match.groups()
        month = str(_MONTHS.get(month_name.lower(), 0))
    elif numeric_order and (match := _NUMERIC_DATE.fullmatch(text)):
        first, second, year = match.groups()
        day, month = (first, second) if numeric_order == "dmy" else (second, first)
    else:
        return None
    try:
        return dt.date(int(year), int(month), int(day)).isoformat()
    except ValueError:
        return None


def _normalize_number(value: Any) -> Any:
    number = parse_number(value)
    return value if number is None else number


NORMALIZERS: dict[str, Callable[[Any], Any]] = {
    "trim": lambda value: value.strip() if isinstance(value, str) else value,
    "casefold": lambda value: value.casefold() if isinstance(value, str) else value,
    "number": _normalize_number,
    "date": lambda value: parse_date(value) or value,
    "date-dmy": lambda value: parse_date(value, "dmy") or value,
    "date-mdy": lambda value: parse_date(value, "mdy") or value,
}


# --- fields (extraction accuracy) --------------------------------------------------------------


@dataclass(frozen=True)
class FieldsCheck:
    expected: Mapping[str, Any]
    normalizers: Mapping[str, tuple[str, ...]]
    threshold: float


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Leaves of nested mappings and lists under dotted paths: {"a": {"b": [1]}} -> {"a.b.0": 1}."""
    if isinstance(value, dict) and value:
        items: Iterator[tuple[str, Any]] = ((str(key), item) for key, item in value.items())
    elif isinstance(value, list) and value:
        items = ((str(position), item) for position, item in enumerate(value))
    else:
        return {prefix: value}
    flat: dict[str, Any] = {}
    for key, item in items:
        flat.update(flatten(item, f"{prefix}.{key}" if prefix else key))
    return flat


def lookup(document: Any, path: str) -> Any:
    """The value at a dotted path, or _NOTHING. A literal key containing dots wins over descent."""
    if path == "":
        return document
    if isinstance(document, dict):
        if path in document:
            return document[path]
        head, _, rest = path.partition(".")
        if head in document and rest:
            return lookup(document[head], rest)
        return _NOTHING
    if isinstance(document, list):
        head, _, rest = path.partition(".")
        if head.isdigit() and int(head) < len(document):
            return lookup(document[int(head)], rest)
    return _NOTHING


def pointer_of(document: Any, path: str) -> str:
    """The JSON Pointer (RFC 6901) of the place `lookup(document, path)` reads, as far as the
    document has it: a missing field's pointer names the missing key under its nearest parent."""
    parts: list[str] = []
    node = document
    while path:
        head, _, rest = path.partition(".")
        if isinstance(node, dict) and path in node:
            parts.append(path)
            break
        if isinstance(node, list) and head.isdigit():
            head = str(int(head))  # `lookup` reads "01" as index 1
        parts.append(head)
        if isinstance(node, dict) and head in node:
            node = node[head]
        elif isinstance(node, list) and head.isdigit() and int(head) < len(node):
            node = node[int(head)]
        else:
            break
        path = rest
    return json_pointer(parts)


def _normalizer_names(raw: Any) -> tuple[str, ...]:
    names = [raw] if isinstance(raw, str) else raw
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise AssertionConfigError(f"normalize takes normalizer names, got {show(raw)}", "normalize")
    for name in names:
        if name not in NORMALIZERS:
            known = ", ".join(NORMALIZERS)
            raise AssertionConfigError(f"unknown normalizer {name!r}; known: {known}", "normalize")
    return tuple(names)


def _prepare_fields(spec: AssertionSpec) -> FieldsCheck:
    if not isinstance(spec.value, dict) or not spec.value:
        raise AssertionConfigError(
            f"fields needs the expected object as value, e.g. {{total: 1234.5}}; got {show(spec.value)}",
            "value",
        )
    expected = flatten(spec.value)
    threshold = 1.0 if spec.threshold is None else spec.threshold
    if not 0.0 <= threshold <= 1.0:
        raise AssertionConfigError(f"threshold of fields must be within [0, 1], got {threshold}", "threshold")
    raw = spec.options.get("normalize")
    per_field: dict[str, tuple[str, ...]] = {}
    if isinstance(raw, dict):
        for key, names in raw.items():
            key = str(key)
            if not any(path == key or path.startswith(key + ".") for path in expected):
                raise AssertionConfigError(
                    f"normalize names field {key!r}, which is not in value; fields: {', '.join(expected)}",
                    "normalize",
                )
            per_field[key] = _normalizer_names(names)
        normalizers = {
            path: tuple(
                name
                for key, names in per_field.items()
                if path == key or path.startswith(key + ".")
                for name in names
            )
            for path in expected
        }
    else:
        everywhere = () if raw is None else _normalizer_names(raw)
        normalizers = {path: everywhere for path in expected}
    return FieldsCheck(expected=expected, normalizers=normalizers, threshold=threshold)


def same_value(expected: Any, actual: Any, normalizers: Sequence[str] = ()) -> bool:
    """Equal after the normalizers; strings are always trimmed; numbers (or numeric strings) compare
    numerically."""
    for name in normalizers:
        expected, actual = NORMALIZERS[name](expected), NORMALIZERS[name](actual)
    if isinstance(expected, str):
        expected = expected.strip()
    if isinstance(actual, str):
        actual = actual.strip()
    left, right = _plain_number(expected), _plain_number(actual)
    if left is not None and right is not None:
        return math.isclose(left, right, rel_tol=1e-9, abs_tol=1e-9)
    return json_equal(expected, actual)


def _plain_number(value: Any) -> float | None:
    if _is_number(value):
        return float(value)
    if isinstance(value, str) and _PLAIN_NUMBER.fullmatch(value):
        return float(value)
    return None


@register("fields", fields=("normalize",), prepare=_prepare_fields, value_required=True)
def check_fields(spec: AssertionSpec, reply: Reply, context: AssertionContext) -> Verdict:
    """Extraction accuracy: the score is the fraction of expected fields the output got right."""
    check: FieldsCheck = spec.prepared
    try:
        document = parse_json_output(reply.text)
    except ValueError as exc:
        return Verdict(False, 0.0, f"{spec.kind}: {exc}")
    if not isinstance(document, dict):
        return Verdict(False, 0.0, f"{spec.kind}: the output is not a JSON object: {excerpt(reply.text)}")
    wrong = []
    at = []
    for path, expected in check.expected.items():
        actual = lookup(document, path)
        if actual is _NOTHING:
            problem = f"expected {show(expected)}, missing"
        elif not same_value(expected, actual, check.normalizers[path]):
            problem = f"expected {show(expected)}, got {show(actual)}"
        else:
            continue
        wrong.append(f"{path}: {problem}")
        at.append((pointer_of(document, path), f"{path}: {problem}"))
    total = len(check.expected)
    score = (total - len(wrong)) / total
    summary = f"{spec.kind}: {total - len(wrong)}/{total} right"
    if score >= check.threshold:
        return Verdict(
            True, score, summary + (f" (>= {check.threshold:g}); wrong: {wrong[0]}" if wrong else "")
        )
    listed = "; ".join(wrong[:5]) + (f"; and {len(wrong) - 5} more" if len(wrong) > 5 else "")
    return Verdict(False, score, f"{summary}, need {check.threshold:.0%}: {listed}", tuple(at))
