"""Imported calls as a case file and baseline cassettes, written whole or not at all.

The case file is rendered as text (so that each generated assertion can carry a comment saying
where it came from: a reviewer edits rather than writes), every case is validated by the same
parser pytest collects with, and the baseline's cassette is made from the request the loaded case
will really send (`Case.request_for`), so the replay matches by construction. All files are first
written to temporary files beside their targets and renamed only when every one of them is ready.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pytest_llmgate.cases import VAR_REFERENCE, parse_case_file
from pytest_llmgate.cassettes import LATENCY_HEADER, cassette_path
from pytest_llmgate.errors import CaseFileError
from pytest_llmgate.importers.convert import Converted
from pytest_llmgate.importers.redact import find_secrets
from pytest_llmgate.reply import Reply

CHAT_URI = "https://api.openai.com/v1/chat/completions"
MAX_FIELDS = 25  # scalar leaves a generated `fields` check lists; more is noise to review
MAX_FIELD_TEXT = 80  # longer strings are prose a candidate may word differently
GENERATED = "generated from the production answer"


class UnsafeOutput(Exception):
    """Something about to be written still holds a secret, or the output exists: nothing written."""


@dataclass
class Draft:
    """One case to write: the first call of a distinct request, and how often it was seen."""

    id: str
    first: Converted
    count: int = 1
    tags: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)


def case_id(converted: Converted, key: str, taken: set[str]) -> str:
    """A readable, stable id: the start of the last user message, plus a hash of the request."""
    import hashlib

    text = ""
    for message in reversed(converted.request.get("messages") or []):
        if isinstance(message, Mapping) and message.get("role") == "user":
            content = message.get("content")
            text = content if isinstance(content, str) else json.dumps(content)
            break
    words = re.findall(r"[a-z0-9]+", text.lower())[:5]
    slug = "-".join(words)[:40].strip("-") or "case"
    digest = hashlib.sha1(key.encode()).hexdigest()
    for size in (6, 10, 40):
        candidate = f"{slug}-{digest[:size]}"
        if candidate not in taken:
            taken.add(candidate)
            return candidate
    raise AssertionError("sha1 collision")  # pragma: no cover


def tag_name(tag: str) -> str | None:
    """A log's tag as a case tag (an identifier: it becomes a pytest marker)."""
    name = re.sub(r"\W", "_", tag.strip())
    if not name:
        return None
    return f"t_{name}" if name[0].isdigit() else name


# -- assertions ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Suggestion:
    """A generated assertion, its comment, and whether it is active or left commented out."""

    assertion: dict[str, Any]
    comment: str
    active: bool = True


def suggest_assertions(reply: Reply) -> list[Suggestion]:
    """Checks a reviewer can start from, chosen by what production answered."""
    suggestions: list[Suggestion] = []
    if reply.tool_calls:
        for call in reply.tool_calls:
            try:
                arguments = call.parsed_arguments()
            except ValueError:
                arguments = None
            value: dict[str, Any] = {"name": call.name}
            if isinstance(arguments, dict) and arguments:
                value["arguments"] = arguments
            suggestions.append(
                Suggestion(
                    {"type": "tool-call", "value": value},
                    f"{GENERATED}: it called {call.name}; keep the arguments that must not change",
                )
            )
    elif reply.refusal:
        suggestions.append(
            Suggestion({"type": "refusal"}, f"{GENERATED}: it refused; keep only if refusing is right")
        )
    else:
        parsed = _json_reply(reply.text)
        if parsed is not None:
            suggestions.append(Suggestion({"type": "is-json"}, f"{GENERATED}: it replied with JSON"))
            leaves = dict(list(_scalar_leaves(parsed))[:MAX_FIELDS]) if isinstance(parsed, dict) else {}
            if leaves:
                suggestions.append(
                    Suggestion(
                        {"type": "fields", "value": leaves},
                        f"{GENERATED}: its short scalar fields; drop those that may rightly differ",
                    )
                )
        elif reply.text.strip():
            suggestions.append(Suggestion({"type": "not-refusal"}, f"{GENERATED}: it answered (no refusal)"))
            excerpt = " ".join(reply.text.split())
            excerpt = excerpt if len(excerpt) <= 300 else excerpt[:299] + "…"
            suggestions.append(
                Suggestion(
                    {
                        "type": "pairwise",
                        "value": "Answers the user's request correctly and completely; when both do, "
                        "the more concise answer is better.",
                    },
                    f"{GENERATED}: the judge compares the candidate with the baseline (the production "
                    "answer), both orders; wins/ties/losses are reported, the verdict is not changed",
                )
            )
            suggestions.append(
                Suggestion(
                    {"type": "factuality", "value": excerpt},
                    "suggested: the production answer as the reference; keep it where its facts are "
                    "the right ones",
                    active=False,
                )
            )
    if reply.finish_reason in ("stop", "tool_calls"):
        suggestions.append(
            Suggestion(
                {"type": "not-finish-reason", "value": "length"},
                f"{GENERATED}: it was not cut off by the token limit",
            )
        )
    return suggestions


def _json_reply(text: str) -> Any:
    stripped = text.strip()
    if not stripped or stripped[0] not in "{[":
        return None
    try:
        value = json.loads(stripped)
    except ValueError:
        return None
    return value if isinstance(value, dict | list) else None


def _scalar_leaves(value: Any, prefix: str = "") -> Any:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _scalar_leaves(item, f"{prefix}{key}.")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _scalar_leaves(item, f"{prefix}{index}.")
    elif isinstance(value, bool | int | float) or (
        isinstance(value, str) and len(value) <= MAX_FIELD_TEXT and "\n" not in value
    ):
        yield prefix[:-1], value


# -- rendering -----------------------------------------------------------------------------------


def _literal_vars(messages: Sequence[Mapping[str, Any]]) -> dict[str, str] | str:
    """`vars` that keep `{{name}}` in a message literally (the case file would substitute it).

    Each name maps to its own spelling, so substitution writes back the same text; a name spelt two
    ways (`{{x}}` and `{{ x }}`) cannot be kept and is returned as a reason instead.
    """
    spellings: dict[str, set[str]] = {}
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            for match in VAR_REFERENCE.finditer(content):
                spellings.setdefault(match.group(1), set()).add(match.group(0))
    result: dict[str, str] = {}
    for name, spelt in spellings.items():
        if len(spelt) > 1:
            return (
                f"the prompt writes the template variable {name!r} in two ways ({', '.join(sorted(spelt))})"
            )
        result[name] = next(iter(spelt))
    return result


def _dump(value: Any) -> list[str]:
    text = yaml.safe_dump(value, sort_keys=False, allow_unicode=True, default_flow_style=False, width=100)
    return text.rstrip("\n").split("\n")


def _list_item(value: Any, indent: int, comment_out: bool = False) -> list[str]:
    pad = " " * indent
    lines = _dump(value)
    out = [f"{pad}- {lines[0]}"] + [f"{pad}  {line}" for line in lines[1:]]
    return [f"{pad}# {line[indent:]}" for line in out] if comment_out else out


def render_case(draft: Draft) -> list[str] | str:
    """The YAML lines of one case under `cases:`, or why the request cannot be a case."""
    request = draft.first.request
    body: dict[str, Any] = {"id": draft.id}
    seen = "once" if draft.count == 1 else f"{draft.count} times"
    body["description"] = f"production traffic, seen {seen} (first at {draft.sources[0]})"
    body["messages"] = request["messages"]
    if request.get("tools"):
        body["tools"] = request["tools"]
    params = {key: value for key, value in request.items() if key not in ("model", "messages", "tools")}
    if params:
        body["params"] = params
    if draft.tags:
        body["tags"] = draft.tags
    literal = _literal_vars(request["messages"])
    if isinstance(literal, str):
        return literal
    if literal:
        body["vars"] = literal
    if draft.count > 1:
        body["weight"] = draft.count  # seen N times: it counts N times in the quality score
    lines = _list_item(body, 2)
    suggestions = suggest_assertions(draft.first.reply)
    lines.append("    assert:" if any(s.active for s in suggestions) else "    assert: []")
    for suggestion in suggestions:
        lines.append(f"      # {suggestion.comment}")
        lines.extend(_list_item(suggestion.assertion, 6, comment_out=not suggestion.active))
    return lines


def render_file(baseline: str, sources: Sequence[str], cases: Sequence[list[str]]) -> str:
    header = [
        f"# Imported from production traffic by `llmgate import traffic` ({_names(sources)}).",
        "# The baseline's answers are the production answers (cassettes/ beside this file): only the",
        "# candidate is called. Assertions marked 'generated' were chosen from those answers: edit them.",
        f"baseline: {json.dumps(baseline)}",
        "cases:",
    ]
    return "\n".join(header + [line for case in cases for line in case]) + "\n"


def _names(sources: Sequence[str]) -> str:
    shown = ", ".join(sources[:3])
    return shown if len(sources) <= 3 else f"{shown} and {len(sources) - 3} more"


def validate_case(output: Path, baseline: str, lines: list[str]) -> str | None:
    """The collection error this case would raise, or None: bad cases are skipped, not written."""
    text = f"baseline: {json.dumps(baseline)}\ncases:\n" + "\n".join(lines) + "\n"
    try:
        parse_case_file(text, output)
    except CaseFileError as exc:
        where = f" (field {exc.field})" if exc.field else ""
        return f"cannot become a case{where}: {exc.message}"
    return None


# -- cassettes and writing -----------------------------------------------------------------------


def cassette_text(request: Mapping[str, Any], completion: Mapping[str, Any], latency_ms: float | None) -> str:
    """A vcrpy cassette with one interaction: this request, answered 200 with `completion`."""
    headers: dict[str, list[str]] = {"content-type": ["application/json"]}
    if latency_ms is not None:
        headers[LATENCY_HEADER] = [f"{latency_ms:.1f}"]
    data = {
        "interactions": [
            {
                "request": {
                    "body": json.dumps(request, ensure_ascii=False, separators=(",", ":")),
                    "headers": {"content-type": ["application/json"]},
                    "method": "POST",
                    "uri": CHAT_URI,
                },
                "response": {
                    "body": {"string": json.dumps(completion, ensure_ascii=False, indent=2) + "\n"},
                    "headers": headers,
                    "status": {"code": 200, "message": "OK"},
                },
            }
        ],
        "version": 1,
    }
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=True, width=120)


def cassette_files(
    output: Path, text: str, cassette_dir: Path, drafts: Mapping[str, Draft]
) -> dict[Path, str]:
    """The baseline cassette of every case of the case file `text` (to be written at `output`)."""
    case_file = parse_case_file(text, output)
    baseline = case_file.baseline or ""
    files: dict[Path, str] = {}
    for case in case_file.cases:
        draft = drafts[case.id]
        request = case.request_for(baseline)
        path = cassette_path(cassette_dir, output.stem, case.id, baseline)
        files[path] = cassette_text(request, draft.first.completion, draft.first.call.latency_ms)
    return files


def write_all(files: Mapping[Path, str]) -> None:
    """Every file or none: temporary files first, then renames (the case file last, by order given).

    Refuses (UnsafeOutput) when any text still holds a credential-shaped string.
    """
    for path, text in files.items():
        leaked = find_secrets(text)
        if leaked:
            raise UnsafeOutput(
                f"{path}: {len(leaked)} credential-shaped value(s) survived redaction; nothing was written. "
                "Add a --redact PATTERN that covers them"
            )
    temps: list[tuple[str, Path]] = []
    try:
        for path, text in files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            temps.append((temp, path))
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                stream.write(text)
                stream.flush()
                os.fsync(stream.fileno())
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(temp, 0o666 & ~umask)
        for temp, path in temps:
            os.replace(temp, path)
    finally:
        for temp, _ in temps:
            with contextlib.suppress(OSError):
                os.unlink(temp)
