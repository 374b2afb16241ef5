"""Calls to an OpenAI-compatible chat-completions endpoint through the official `openai` SDK.

One SDK client per session, its HTTP traffic routed through `RecordingTransport` so each call is
replayed from or recorded to the cassette its thread has open. The body is parsed by our own
parser (`response.parse_chat_completion`), so every failure the SDK or the server can produce
(error status, timeout, garbage body, a bare JSONDecodeError, a missing recording) ends as a
`CallError` with a kind and a one-line message, never as a traceback.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import httpx2

from pytest_llmgate.recording import RecordingMissing, RecordingTransport
from pytest_llmgate.reply import Reply
from pytest_llmgate.response import ApiError, ResponseError, parse_chat_completion

# Sent when no key is configured: replay needs none, and local servers (vLLM, Ollama) ignore it.
PLACEHOLDER_KEY = "llmgate-no-key"


class CallError(Exception):
    """A model call that produced no usable reply. `kind` groups errors for reports."""

    def __init__(self, kind: str, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.status = status


@dataclass(frozen=True)
class ClientSettings:
    base_url: str | None = None
    api_key: str | None = None
    timeout_s: float = 60.0
    max_retries: int = 2

    @classmethod
    def from_environment(cls, base_url: str | None, timeout_s: float, max_retries: int) -> ClientSettings:
        return cls(
            base_url=base_url or os.environ.get("OPENAI_BASE_URL") or None,
            api_key=os.environ.get("OPENAI_API_KEY") or None,
            timeout_s=timeout_s,
            max_retries=max_retries,
        )

    def secrets(self) -> tuple[str, ...]:
        """Values that must never be written to a cassette, a report or a log."""
        values = [self.api_key, os.environ.get("OPENAI_ORG_ID"), os.environ.get("OPENAI_PROJECT_ID")]
        return tuple(value for value in values if value)


class ModelClient:
    """A reusable SDK client; cheap per call, built once per session."""

    def __init__(self, settings: ClientSettings) -> None:
        from openai import OpenAI

        self.settings = settings
        http_client = httpx2.Client(transport=RecordingTransport(), timeout=settings.timeout_s)
        kwargs: dict[str, Any] = {
            "api_key": settings.api_key or PLACEHOLDER_KEY,
            "timeout": settings.timeout_s,
            "max_retries": settings.max_retries,
            "http_client": http_client,
        }
        if settings.base_url:
            kwargs["base_url"] = settings.base_url
        self._client = OpenAI(**kwargs)

    @property
    def base_url(self) -> str:
        return str(self._client.base_url)

    def close(self) -> None:
        self._client.close()

    def complete(self, request: dict[str, Any]) -> Reply:
        """Send one chat completion request; return the parsed reply or raise CallError."""
        import openai

        try:
            raw = self._client.chat.completions.with_raw_response.create(**request)
            http = raw.http_response
            body = http.read()
        except RecordingMissing:
            raise
        except openai.APIStatusError as exc:
            raise _status_error(exc.response) from None
        except openai.APITimeoutError:
            raise CallError(
                "timeout", f"no answer within {self.settings.timeout_s:g} s (raise it with --llm-timeout)"
            ) from None
        except openai.APIConnectionError as exc:
            missing = _find_cause(exc, RecordingMissing)
            if missing is not None:
                raise missing from None
            cause = exc.__cause__ or exc
            raise CallError(
                "connection", f"cannot reach {self.base_url}: {type(cause).__name__}: {cause}"
            ) from None
        except TypeError as exc:
            raise CallError("config", f"chat.completions.create rejected the case's params: {exc}") from None
        except Exception as exc:  # the SDK can surface bare exceptions (e.g. JSONDecodeError)
            missing = _find_cause(exc, RecordingMissing)
            if missing is not None:
                raise missing from None
            raise CallError("sdk", f"{type(exc).__name__}: {exc}") from None
        try:
            return parse_chat_completion(
                body, status=http.status_code, content_type=http.headers.get("content-type")
            )
        except ApiError as exc:
            raise CallError("api", str(exc), status=exc.status) from None
        except ResponseError as exc:
            raise CallError("response", str(exc), status=http.status_code) from None


def _status_error(response: httpx2.Response) -> CallError:
    try:
        parse_chat_completion(
            response.read(), status=response.status_code, content_type=response.headers.get("content-type")
        )
    except ApiError as exc:
        return CallError("api", str(exc), status=response.status_code)
    except ResponseError as exc:
        return CallError("api", str(exc), status=response.status_code)
    return CallError("api", f"HTTP {response.status_code}", status=response.status_code)


def _find_cause(exc: BaseException, kind: type[RecordingMissing]) -> RecordingMissing | None:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None
