"""`file://` references and cases from data files (CSV, JSONL, JSON, YAML) in promptfoo's conventions.

A reference is resolved against the case file's folder and must stay inside the project root: a
case file from a pull request must not read `/etc/passwd` or `~/.ssh` into a prompt. What a file
becomes depends on its extension, so a suite moved from promptfoo reads the same:

    .json .yaml .yml      data (a mapping, a list, a schema)
    .jinja .j2            a template, rendered with the case's vars
    anything else         text (.txt, .md, .sql, ...)

CSV rows follow promptfoo: every column is a var, except the `__` columns: `__expected`,
`__expected1`, ... hold assertions in promptfoo's string form (`icontains: paris`), `__description`
names the case (its id is the description slugified and made unique), `__threshold` is the case's
`threshold`, `__metric` the `metric` of the row's assertions, `__metadata:tags` adds tags. A
column we do not understand is an error naming it, never a var that nothing reads.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

FILE_PREFIX = "file://"
DATA_SUFFIXES = (".json", ".yaml", ".yml")
TEMPLATE_SUFFIXES = (".jinja", ".j2")
CASE_DATA_SUFFIXES = (".csv", ".jsonl", ".json", ".yaml", ".yml")
MAX_FILE_BYTES = 20_000_000  # a referenced file is read whole at collection

Kind = Literal["text", "data", "template"]


class FileRefError(Exception):
    """A `file://` reference or a data file is wrong; `path`/`line` locate it when known."""

    def __init__(self, message: str, path: Path | None = None, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.line = line


@dataclass(frozen=True)
class Loaded:
    """The content of a referenced file and what its extension says it is."""

    value: Any
    kind: Kind
    path: Path


def is_reference(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(FILE_PREFIX)


def resolve(reference: str, base_dir: Path, root: Path) -> Path:
    """The file a `file://` reference names, checked to exist and to lie inside `root`."""
    raw = reference[len(FILE_PREFIX) :].strip()
    if not raw:
        raise FileRefError(f"{reference!r} names no file; write file://path/relative/to/the/case/file")
    path = Path(raw).expanduser()
    if not path.is_absolute():
        path = base_dir / path
    resolved = path.resolve()
    boundary = root.resolve()
    if not resolved.is_relative_to(boundary):
        raise FileRefError(
            f"{reference} resolves to {resolved}, outside the project root {boundary}; "
            "move the file into the project (a case file may not read files elsewhere)"
        )
    if not resolved.is_file():
        raise FileRefError(f"{reference}: no such file {resolved} (paths are relative to the case file)")
    return resolved


def read_text(path: Path) -> str:
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise FileRefError(f"{path} is larger than {MAX_FILE_BYTES:,} bytes", path)
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise FileRefError(f"cannot read {path}: {exc}", path) from exc


def load(reference: str, base_dir: Path, root: Path) -> Loaded:
    """Read a referenced file as text, data or template according to its extension."""
    path = resolve(reference, base_dir, root)
    text = read_text(path)
    suffix = path.suffix.lower()
    if suffix == ".json":
        return Loaded(_json(text, path), "data", path)
    if suffix in (".yaml", ".yml"):
        return Loaded(_yaml(text, path), "data", path)
    if suffix in TEMPLATE_SUFFIXES:
        return Loaded(text, "template", path)
    return Loaded(text, "text", path)


def _json(text: str, path: Path) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise FileRefError(f"invalid JSON: {exc.msg}", path, exc.lineno) from exc


def _yaml(text: str, path: Path) -> Any:
    # The case file's own loader: line numbers, no duplicate keys, bounded alias expansion.
    from pytest_llmgate.cases import load_yaml_with_lines
    from pytest_llmgate.errors import CaseFileError

    try:
        return load_yaml_with_lines(text, path)
    except CaseFileError as exc:
        raise FileRefError(exc.message, path, exc.line) from exc


# --- cases from data files ---------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One case read from a data file, as a case mapping; `label` says where it came from."""

    case: dict[str, Any]
    path: Path
    line: int | None
    label: str  # "row 3" (CSV: counting the header as row 1) or "item 3"
    derived_id: bool  # the id was made from the description or the position, and may be suffixed


def load_rows(reference: str, base_dir: Path, root: Path) -> list[Row]:
    """The cases of a `cases: file://...` data file."""
    path = resolve(reference, base_dir, root)
    suffix = path.suffix.lower()
    if suffix not in CASE_DATA_SUFFIXES:
        raise FileRefError(
            f"{reference}: cases can be read from {', '.join(CASE_DATA_SUFFIXES)} files, "
            f"not {suffix or 'a file without extension'}"
        )
    text = read_text(path)
    if suffix == ".csv":
        return list(_csv_rows(text, path))
    if suffix == ".jsonl":
        items: list[tuple[Any, int | None]] = []
        for number, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    items.append((json.loads(line), number))
                except json.JSONDecodeError as exc:
                    raise FileRefError(f"invalid JSON on line {number}: {exc.msg}", path, number) from exc
    else:
        document = _json(text, path) if suffix == ".json" else _yaml(text, path)
        if isinstance(document, dict) and isinstance(document.get("cases"), list):
            document = document["cases"]
        if not isinstance(document, list):
            raise FileRefError("a case data file must hold a list of cases", path, 1)
        items = [(item, getattr(item, "line", None)) for item in document]
    return [_mapping_row(item, path, line, position) for position, (item, line) in enumerate(items, 1)]


def _mapping_row(item: Any, path: Path, line: int | None, position: int) -> Row:
    label = f"item {position}"
    if not isinstance(item, dict):
        raise FileRefError(f"{label} must be a case mapping like {{vars: ..., assert: ...}}", path, line)
    case = dict(item)
    derived = "id" not in case
    if derived:
        case["id"] = slug(case.get("description")) or f"{path.stem}-{position}"
    return Row(case, path, line, label, derived)


def slug(text: Any) -> str:
    """A case id from a description: `What is 2+2?` -> `what-is-2-2`."""
    if not isinstance(text, str):
        return ""
    return re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-._")[:80].strip("-._")


def _csv_rows(text: str, path: Path) -> Iterator[Row]:
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        raise FileRefError("the CSV file is empty; it needs a header row of var names", path, 1) from None
    except csv.Error as exc:
        raise FileRefError(f"invalid CSV: {exc}", path, 1) from exc
    header = [name.strip() for name in header]
    for column, name in enumerate(header, 1):
        _check_column(name, column, path)
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise FileRefError(f"column {name!r} appears twice in the header", path, 1)
        seen.add(name)
    line = reader.line_num + 1
    number = 1
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise FileRefError(f"invalid CSV in row {number + 1}: {exc}", path, line) from exc
        start, line = line, reader.line_num + 1
        number += 1
        if not any(value.strip() for value in values):
            continue
        label = f"row {number}"
        if len(values) > len(header):
            raise FileRefError(
                f"{label} has {len(values)} values but the header names {len(header)} columns", path, start
            )
        row = dict(zip(header, values + [""] * (len(header) - len(values)), strict=True))
        yield _csv_case(row, path, start, label, number)


def _check_column(name: str, column: int, path: Path) -> None:
    if not name:
        raise FileRefError(f"column {column} has no name in the header", path, 1)
    if not name.startswith("__"):
        return
    if re.fullmatch(r"__expected\d*|__description|__threshold|__metric", name) or name in (
        "__metadata:tags",
        "__metadata:tag",
    ):
        return
    if name.startswith("__metadata:"):
        raise FileRefError(
            f"column {name!r}: only __metadata:tags is read (tags become pytest markers); "
            "rename the column or drop it",
            path,
            1,
        )
    raise FileRefError(
        f"column {name!r} is not supported (read: __expected, __expected1..., __description, "
        "__threshold, __metric, __metadata:tags; other columns are vars and may not start with '__')",
        path,
        1,
    )


def _csv_case(row: dict[str, str], path: Path, line: int, label: str, number: int) -> Row:
    variables: dict[str, Any] = {}
    asserts: list[dict[str, Any]] = []
    case: dict[str, Any] = {}
    metric: str | None = None
    for name, value in row.items():
        if name.startswith("__expected"):
            try:
                entry = parse_expected(value)
            except ValueError as exc:
                raise FileRefError(f"{label}, column {name}: {exc}", path, line) from None
            if entry is not None:
                asserts.append(entry)
        elif name == "__description":
            if value.strip():
                case["description"] = value.strip()
        elif name == "__threshold":
            if value.strip():
                case["threshold"] = _threshold(value, f"{label}, column {name}", path, line)
        elif name == "__metric":
            if value.strip():
                metric = value.strip()
        elif name.startswith("__metadata:"):
            tags = [tag.strip() for tag in value.split(",") if tag.strip()]
            if tags:
                case["tags"] = tags
        else:
            variables[name] = value
    if metric is not None:  # promptfoo: the row's assertions report under this named metric
        asserts = [entry if "metric" in entry else {**entry, "metric": metric} for entry in asserts]
    case["id"] = slug(case.get("description")) or f"{path.stem}-{number}"
    if variables:
        case["vars"] = variables
    if asserts:
        case["assert"] = asserts
    return Row(case, path, line, label, derived_id=True)


def csv_threshold(value: str) -> float | None:
    """promptfoo's `__threshold` cell: the score (0 to 1) the row's weighted assertions must
    reach; None when the cell is not such a score."""
    try:
        threshold = float(value)
    except ValueError:
        return None
    return threshold if 0.0 <= threshold <= 1.0 else None  # nan is not


def _threshold(value: str, where: str, path: Path, line: int) -> float:
    threshold = csv_threshold(value)
    if threshold is None:
        raise FileRefError(f"{where}: {value.strip()!r} is not a score from 0 to 1", path, line)
    return threshold


# --- promptfoo's assertion strings -------------------------------------------------------------

_EXPECTED = re.compile(
    r"^(?P<type>(?:not-)?[a-z][a-z0-9-]*)(?:\((?P<threshold>[^)]*)\))?:(?P<value>.*)$", re.S
)
_LIST_KINDS = ("contains-any", "icontains-any", "contains-all", "icontains-all")
_JAVASCRIPT = ("javascript", "fn", "eval")
_ALIASES = {"grader": "llm-rubric"}
# promptfoo assertion types this project does not (yet) have: named so that `latency: 500` is a
# clear error rather than a reply expected to equal the text "latency: 500".
PROMPTFOO_ONLY_KINDS = frozenset(
    {
        "answer-relevance", "bleu", "classifier", "context-faithfulness", "context-recall",
        "context-relevance", "conversation-relevance", "cost", "factuality", "g-eval", "gleu",
        "guardrails", "is-html", "is-xml", "contains-xml", "contains-html", "is-valid-function-call",
        "is-valid-openai-function-call", "latency", "meteor", "model-graded-closedqa",
        "model-graded-factuality", "moderation", "perplexity", "perplexity-score", "pi", "rouge-n",
        "ruby", "select-best", "max-score", "webhook", "contains-sql", "tool-call-f1",
        "trace-span-count", "trace-span-duration", "trace-error-spans", "search-rubric",
    }
)  # fmt: skip


def parse_expected(text: str) -> dict[str, Any] | None:
    """One promptfoo assertion string (`icontains: paris`, `similar(0.8): ...`, `is-json`) as an
    `assert:` entry; a bare value means `equals`. None for an empty cell. ValueError when the
    string names a kind that cannot run here."""
    from pytest_llmgate.assertions import REGISTRY, load_kinds

    load_kinds()
    stripped = text.strip()
    if not stripped:
        return None
    if stripped.startswith(FILE_PREFIX):
        target = stripped[len(FILE_PREFIX) :]
        if ".py" in target:
            return {"type": "python", "value": stripped}
        raise ValueError(
            f"{stripped}: only Python files can be assertions (JavaScript is not supported); "
            "use file://checks.py:function"
        )
    match = _EXPECTED.match(stripped)
    if match is None:
        # No `kind:` prefix: a kind that takes no value (`is-json`), else the expected reply.
        base = stripped.removeprefix("not-")
        if base in REGISTRY and " " not in stripped:
            return {"type": stripped}
        return {"type": "equals", "value": stripped}
    candidate = match.group("type")
    negation = "not-" if candidate.startswith("not-") else ""
    base = _ALIASES.get(candidate.removeprefix("not-"), candidate.removeprefix("not-"))
    if base in _JAVASCRIPT:
        raise ValueError(
            f"{candidate}: JavaScript assertions are not supported; write the check in Python "
            "(python: file://checks.py:function)"
        )
    if base not in REGISTRY:
        if base in PROMPTFOO_ONLY_KINDS:
            raise ValueError(f"promptfoo's {base!r} assertion is not supported here")
        return {"type": "equals", "value": stripped}  # `note: ...` is a reply, not a kind
    entry: dict[str, Any] = {"type": negation + base}
    value = match.group("value").strip()
    threshold = match.group("threshold")
    if threshold is not None:
        try:
            entry["threshold"] = float(threshold)
        except ValueError:
            raise ValueError(f"{candidate}({threshold}): the threshold must be a number") from None
    if base == "python":
        if not value.startswith(FILE_PREFIX) and ":" not in value and not value.endswith(".py"):
            raise ValueError(
                f"inline Python expressions ({stripped!r}) are not supported; "
                "use python: file://checks.py:function"
            )
    if base in _LIST_KINDS:
        entry["value"] = [item.strip() for item in next(csv.reader([value])) if item.strip()]
    elif value:
        entry["value"] = _number(value) if base == "max-length" else value
    return entry


def _number(text: str) -> Any:
    try:
        number = float(text)
    except ValueError:
        return text
    return int(number) if number.is_integer() else number
