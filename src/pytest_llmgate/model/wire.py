"""What a request is on the wire, independent of where it is sent: the operation it calls and
the JSON body the SDK sends for a case's keyword arguments.

Recording and replay match on these two and never on the host, port or base path, so a suite
recorded against an Azure deployment, a `/openai/v1` proxy or a simulator on a random port
replays with no `--llm-base-url`, and re-recording elsewhere does not rewrite the cassettes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

OPERATIONS = ("chat/completions", "responses")
CANONICAL_HOST = "llmgate.invalid"
"""The host every recorded URI is given (RFC 2606 reserves `.invalid`): cassettes keep no host."""

# SDK keyword arguments that are not part of the JSON body.
EXTRA_KEYS = ("extra_headers", "extra_query", "extra_body", "timeout")


def operation_of(path: str) -> str | None:
    """The operation a URL path calls (`/openai/deployments/x/chat/completions` -> chat/completions)."""
    trimmed = path.rstrip("/")
    for operation in OPERATIONS:
        if trimmed == f"/{operation}" or trimmed.endswith(f"/{operation}"):
            return operation
    return None


def canonical_uri(uri: str) -> str:
    """`https://llmgate.invalid/<operation>?<query>`: the URI a cassette stores for a request."""
    parts = urlsplit(uri)
    operation = operation_of(parts.path)
    path = f"/{operation}" if operation is not None else parts.path
    return urlunsplit(("https", CANONICAL_HOST, path, parts.query, ""))


def request_body(request: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON body the SDK sends for `request` (a `create(**request)` kwargs dict): the SDK-only
    keys dropped and `extra_body` merged in, as the SDK does."""
    body = {key: value for key, value in request.items() if key not in EXTRA_KEYS}
    extra = request.get("extra_body")
    if isinstance(extra, Mapping):
        body.update(extra)
    return body
