"""Reading production traffic: which format a source is (by content, not by name) and its calls.

Teams keep traffic in whatever their stack writes: a JSONL log of request/response pairs, OpenAI
Batch API input and output files, the JSON export of stored chat completions, the vcrpy cassettes
of their own application tests, or OpenTelemetry GenAI spans. Each becomes a list of `Call`s with
the request body, the response body and what the log knew about latency, time and tags; nothing
here judges whether a call can become a case (see `convert`). Anything unreadable becomes a
`Problem` naming the file and line, so one bad line never stops an import of thousands.
"""

from __future__ import annotations

import gzip
import json
import re
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from pytest_llmgate.importers import otel


@dataclass(frozen=True)
class Call:
    """One model call as a log recorded it; `response` is the decoded JSON body, or SSE text."""

    where: str  # "traffic.jsonl:12", for every message about this call
    request: Mapping[str, Any]
    response: Any
    endpoint: str = "chat"  # "chat" (chat completions) or "responses" (the Responses API)
    status: int = 200
    latency_ms: float | None = None
    created: float | None = None  # seconds since the epoch
    tags: tuple[str, ...] = ()
    id: str | None = None


@dataclass(frozen=True)
class Problem:
    """Input that was skipped, and why: `where` is `file:line` (or the file alone)."""

    where: str
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


def read_sources(paths: Iterable[Path]) -> tuple[list[Call], list[Problem]]:
    """Every call found in `paths`, in order, and the problems met on the way.

    Batch API output lines are paired with input lines of any given file by `custom_id`, so the
    input and output files can be passed in any order.
    """
    calls: list[Call] = []
    problems: list[Problem] = []
    batch_inputs: dict[str, tuple[str, Mapping[str, Any]]] = {}
    batch_outputs: list[tuple[str, Mapping[str, Any]]] = []
    for path in paths:
        name = str(path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            problems.append(Problem(name, f"cannot read: {exc.strerror or exc}"))
            continue
        if data[:2] == b"\x1f\x8b":
            try:
                data = gzip.decompress(data)
            except (OSError, EOFError, zlib.error) as exc:
                problems.append(Problem(name, f"not a readable gzip file: {exc}"))
                continue
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            problems.append(Problem(name, f"not UTF-8 text ({exc.reason} at byte {exc.start})"))
            continue
        _read_text(name, text, calls, problems, batch_inputs, batch_outputs)
    for where, line in batch_outputs:
        custom_id = str(line["custom_id"])
        paired = batch_inputs.pop(custom_id, None)
        if paired is None:
            problems.append(
                Problem(where, f"batch output {custom_id!r} has no request: pass the batch input file too")
            )
            continue
        _batch_call(where, paired[1], line, calls, problems)
    for custom_id, (where, _) in batch_inputs.items():
        problems.append(
            Problem(where, f"batch request {custom_id!r} has no response: pass the batch output file too")
        )
    return calls, problems


def _read_text(
    name: str,
    text: str,
    calls: list[Call],
    problems: list[Problem],
    batch_inputs: dict[str, tuple[str, Mapping[str, Any]]],
    batch_outputs: list[tuple[str, Mapping[str, Any]]],
) -> None:
    stripped = text.strip()
    if not stripped:
        problems.append(Problem(name, "the file is empty"))
        return
    if stripped[0] in "{[":
        try:
            document = json.loads(stripped)
        except ValueError:
            document = None  # JSON Lines, or broken JSON: read line by line below
        if isinstance(document, dict) and _is_line_record(document):
            _read_line(name, document, calls, problems, batch_inputs, batch_outputs)
            return
        if document is not None:
            _read_document(name, document, calls, problems)
            return
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            where = f"{name}:{number}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                problems.append(Problem(where, f"malformed line, not JSON ({exc.msg} at column {exc.colno})"))
                continue
            if not isinstance(record, dict):
                problems.append(Problem(where, f"expected a JSON object per line, got {_kind(record)}"))
                continue
            _read_line(where, record, calls, problems, batch_inputs, batch_outputs)
        return
    try:
        document = yaml.load(text, Loader=_NoAliasLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{name}:{mark.line + 1}" if mark is not None else name
        problems.append(
            Problem(where, f"unknown format: not JSON, JSON Lines or a YAML cassette ({_one_line(exc)})")
        )
        return
    if isinstance(document, dict) and isinstance(document.get("interactions"), list):
        _read_cassette(name, document["interactions"], calls, problems)
        return
    problems.append(Problem(name, _UNKNOWN))


def _read_line(
    where: str,
    record: Mapping[str, Any],
    calls: list[Call],
    problems: list[Problem],
    batch_inputs: dict[str, tuple[str, Mapping[str, Any]]],
    batch_outputs: list[tuple[str, Mapping[str, Any]]],
) -> None:
    if "custom_id" in record and "body" in record:
        batch_inputs[str(record["custom_id"])] = (where, record)
    elif "custom_id" in record and ("response" in record or "error" in record):
        batch_outputs.append((where, record))
    else:
        _read_record(where, record, calls, problems)


_UNKNOWN = (
    "unknown format: expected JSON Lines of {request, response}, OpenAI Batch input/output, a stored "
    "chat completions export, a vcrpy cassette or OTLP JSON spans (see llmgate import traffic --help)"
)


class _NoAliasLoader(yaml.SafeLoader):
    """Safe loading without aliases: a cassette from somewhere else must not expand to gigabytes."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            raise yaml.MarkedYAMLError(
                problem="YAML aliases are not accepted",
                problem_mark=self.peek_event().start_mark,  # type: ignore[no-untyped-call]
            )
        return super().compose_node(parent, index)


def _is_line_record(document: Mapping[str, Any]) -> bool:
    """A one-line JSONL file parses as one JSON object: read it as a line, not as a document."""
    return "custom_id" in document or (
        "request" in document and "response" in document and "interactions" not in document
    )


def _read_document(name: str, document: Any, calls: list[Call], problems: list[Problem]) -> None:
    if isinstance(document, dict) and "resourceSpans" in document:
        otel.read_spans(name, document, calls, problems)
    elif isinstance(document, dict) and isinstance(document.get("interactions"), list):
        _read_cassette(name, document["interactions"], calls, problems)
    elif isinstance(document, dict) and isinstance(document.get("data"), list):
        _read_stored(name, document["data"], calls, problems)
    elif isinstance(document, list) and all(isinstance(item, dict) for item in document):
        if all("request" in item and "response" in item for item in document):
            for index, item in enumerate(document, start=1):
                _read_record(f"{name}: item {index}", item, calls, problems)
        else:
            _read_stored(name, document, calls, problems)
    else:
        problems.append(Problem(name, _UNKNOWN))


def _read_record(where: str, record: Mapping[str, Any], calls: list[Call], problems: list[Problem]) -> None:
    """A JSONL line: `{request, response, latency_ms?, ttft_ms?, created?, tags?, id?}`, or a span."""
    if "resourceSpans" in record:
        otel.read_spans(where, record, calls, problems)
        return
    if "request" not in record or "response" not in record:
        if record.get("object") == "chat.completion":
            _read_stored(where, [record], calls, problems)
            return
        keys = ", ".join(sorted(map(str, record))[:8]) or "none"
        problems.append(
            Problem(where, f"unknown record: expected 'request' and 'response' keys (found: {keys})")
        )
        return
    request, endpoint, problem = _request_body(record["request"])
    if problem:
        problems.append(Problem(where, problem))
        return
    response, status, headers, problem = _response_body(record["response"])
    if problem:
        problems.append(Problem(where, problem))
        return
    latency = _number(record.get("latency_ms"))
    if latency is None:
        latency = _header_latency(headers)
    tags = record.get("tags") or ()
    if isinstance(tags, str):
        tags = (tags,)
    created = _timestamp(record.get("created"))
    if created is None and isinstance(response, Mapping):
        created = _timestamp(response.get("created") or response.get("created_at"))
    calls.append(
        Call(
            where=where,
            request=request,
            response=response,
            endpoint=endpoint,
            status=status,
            latency_ms=latency,
            created=created,
            tags=tuple(str(tag) for tag in tags if isinstance(tag, str | int)),
            id=str(record["id"]) if record.get("id") is not None else None,
        )
    )


def _request_body(raw: Any) -> tuple[dict[str, Any], str, str | None]:
    """(body, endpoint, problem): a bare request body, or an HTTP envelope `{method, uri, body}`."""
    endpoint, deployment = "chat", None
    if isinstance(raw, Mapping) and "body" in raw and not ("messages" in raw or "input" in raw):
        uri = str(raw.get("uri") or raw.get("url") or "")
        found = _DEPLOYMENT.search(uri)
        deployment = found.group(1) if found else None
        endpoint, problem = _endpoint(uri)
        if problem:
            return {}, endpoint, problem
        raw = raw["body"]
        if isinstance(raw, bytes):
            raw = raw.decode("utf-8", errors="replace")
        if isinstance(raw, str):
            try:
                raw = json.loads(raw)
            except ValueError:
                return {}, endpoint, "the request body is not JSON"
    if raw is None:
        return {}, endpoint, "the request has no body"
    if not isinstance(raw, Mapping):
        return {}, endpoint, f"the request must be a JSON object, got {_kind(raw)}"
    if "input" in raw and "messages" not in raw:
        endpoint = "responses"
    body = dict(raw)
    if not isinstance(body.get("model"), str) and deployment:
        body["model"] = deployment  # Azure names the deployment in the URL, not the body
    if not isinstance(body.get("model"), str):
        return {}, endpoint, "the request names no model"
    return body, endpoint, None


_DEPLOYMENT = re.compile(r"/deployments/([^/?#]+)/")


def _endpoint(uri: str) -> tuple[str, str | None]:
    path = urlsplit(uri).path.rstrip("/") if uri else ""
    if not path or path.endswith("/chat/completions"):
        return "chat", None
    if path.endswith("/responses"):
        return "responses", None
    return "chat", f"not a chat call ({path}); only chat completions and Responses calls are imported"


def _response_body(raw: Any) -> tuple[Any, int, Mapping[str, Any], str | None]:
    """(body, status, headers, problem): a bare response body, or an envelope `{status, headers, body}`."""
    status = 200
    headers: Mapping[str, Any] = {}
    if isinstance(raw, Mapping) and "body" in raw and "choices" not in raw and "output" not in raw:
        status_value = raw.get("status", raw.get("status_code", 200))
        if isinstance(status_value, Mapping):
            status_value = status_value.get("code", 200)
        status = (
            int(status_value) if isinstance(status_value, int | str) and str(status_value).isdigit() else 200
        )
        headers = raw.get("headers") or {}
        raw = raw["body"]
        if isinstance(raw, Mapping) and "string" in raw:
            raw = raw["string"]
        raw = _decode_body(raw, headers)
    if status >= 400:
        return None, status, headers, f"error response (HTTP {status}): there is no answer to import"
    if isinstance(raw, str):
        stripped = raw.strip()
        if not stripped:
            return None, status, headers, "the response body is empty"
        if stripped[0] in "{[":
            try:
                raw = json.loads(stripped)
            except ValueError:
                return None, status, headers, "the response body is not JSON"
        elif not stripped.startswith(("data:", "event:", ":")):
            return None, status, headers, "the response body is neither JSON nor an event stream"
    elif not isinstance(raw, Mapping):
        return None, status, headers, f"the response must be a JSON object, got {_kind(raw)}"
    if isinstance(raw, Mapping) and "error" in raw and raw.get("error") and "choices" not in raw:
        return None, status, headers, "error response: there is no answer to import"
    return raw, status, headers, None


def _decode_body(raw: Any, headers: Mapping[str, Any]) -> Any:
    if not isinstance(raw, bytes):
        return raw
    encoding = str(_header(headers, "content-encoding") or "").lower()
    try:
        if "gzip" in encoding or raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        elif "deflate" in encoding:
            raw = zlib.decompress(raw)
    except (OSError, EOFError, zlib.error):
        return ""
    return raw.decode("utf-8", errors="replace")


def _header(headers: Mapping[str, Any], name: str) -> str | None:
    for key, value in headers.items():
        if str(key).lower() == name:
            if isinstance(value, list):
                return str(value[0]) if value else None
            return str(value)
    return None


def _header_latency(headers: Mapping[str, Any]) -> float | None:
    """The latency a recording kept: llmgate's own header, else the server's processing time."""
    for name in ("x-llmgate-latency-ms", "openai-processing-ms"):
        value = _number(_header(headers, name))
        if value is not None:
            return value
    return None


def _read_cassette(name: str, interactions: list[Any], calls: list[Call], problems: list[Problem]) -> None:
    for index, item in enumerate(interactions, start=1):
        where = f"{name}: interaction {index}"
        if not isinstance(item, Mapping) or not isinstance(item.get("request"), Mapping):
            problems.append(Problem(where, "not a vcrpy interaction (no request)"))
            continue
        _read_record(
            where, {"request": item["request"], "response": item.get("response") or {}}, calls, problems
        )


def _read_stored(name: str, items: list[Any], calls: list[Call], problems: list[Problem]) -> None:
    """Stored chat completions: completion objects carrying their `messages` (and request params).

    The list endpoint returns completions and `/messages` returns their input; an export joins
    them, as `messages` (or `input_messages`) on each completion, with `metadata` as tags.
    """
    for index, item in enumerate(items, start=1):
        where = f"{name}: item {index}" if ":" not in name else name
        if not isinstance(item, Mapping) or item.get("object") != "chat.completion":
            problems.append(
                Problem(where, "unknown record: expected a stored chat completion (object: chat.completion)")
            )
            continue
        messages = item.get("messages", item.get("input_messages"))
        if isinstance(messages, Mapping):
            messages = messages.get("data")
        if not isinstance(messages, list) or not messages:
            problems.append(
                Problem(
                    where, "stored completion without its input messages: export them with the completion"
                )
            )
            continue
        request: dict[str, Any] = {
            "model": item.get("request_model") or item.get("model"),
            "messages": messages,
        }
        for key in (
            "tools",
            "temperature",
            "top_p",
            "max_tokens",
            "max_completion_tokens",
            "response_format",
            "tool_choice",
            "seed",
        ):
            if key in item:
                request[key] = item[key]
        for key, value in (item.get("request") or {}).items():
            request.setdefault(key, value)
        if not isinstance(request["model"], str):
            problems.append(Problem(where, "the stored completion names no model"))
            continue
        response = {
            key: value
            for key, value in item.items()
            if key not in ("messages", "input_messages", "request", "request_model", "metadata")
        }
        metadata = item.get("metadata") or {}
        tags = (
            tuple(str(value) for value in metadata.values() if isinstance(value, str))
            if isinstance(metadata, Mapping)
            else ()
        )
        calls.append(
            Call(
                where=where,
                request=request,
                response=response,
                created=_timestamp(item.get("created")),
                tags=tags,
                id=str(item.get("id")) if item.get("id") else None,
            )
        )


def _batch_call(
    where: str,
    request_line: Mapping[str, Any],
    output: Mapping[str, Any],
    calls: list[Call],
    problems: list[Problem],
) -> None:
    if output.get("error"):
        problems.append(
            Problem(where, f"batch request {output['custom_id']!r} failed: {_one_line(output['error'])}")
        )
        return
    envelope = {"uri": request_line.get("url", ""), "body": request_line.get("body")}
    request, endpoint, problem = _request_body(envelope)
    if problem:
        problems.append(Problem(where, problem))
        return
    response_envelope = output.get("response") or {}
    response, status, _, problem = _response_body(
        {"status": response_envelope.get("status_code", 200), "body": response_envelope.get("body")}
    )
    if problem:
        problems.append(Problem(where, problem))
        return
    calls.append(
        Call(
            where=where,
            request=request,
            response=response,
            endpoint=endpoint,
            status=status,
            created=_timestamp(response.get("created")) if isinstance(response, Mapping) else None,
            id=str(output["custom_id"]),
        )
    )


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number >= 0 and number == number and number != float("inf") else None


def parse_time(value: str) -> float:
    """Seconds since the epoch from `2024-05-01`, `2024-05-01T12:00:00Z` or a number; ValueError else."""
    text = value.strip()
    try:
        return float(text)
    except ValueError:
        pass
    moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def _timestamp(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value) / 1000.0 if value > 1e11 else float(value)  # milliseconds past 5138 AD
    if isinstance(value, str):
        try:
            return parse_time(value)
        except ValueError:
            return None
    return None


def _kind(value: Any) -> str:
    names: dict[type, str] = {dict: "an object", list: "a list", str: "a string"}
    return names.get(type(value), type(value).__name__)


def _one_line(value: Any) -> str:
    return " ".join(str(value).split())[:200]
