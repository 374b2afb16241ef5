"""Errors a user can act on: each names the file, the line, the case and what to do."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from pathlib import Path


class LlmGateError(Exception):
    """Base of every error pytest-llmgate raises on purpose."""


class CaseFileError(LlmGateError):
    """A case file is wrong; raised at collection, before any model is called."""

    def __init__(
        self,
        path: Path,
        message: str,
        *,
        line: int | None = None,
        case_id: str | None = None,
        field: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.path = path
        self.line = line
        self.case_id = case_id
        self.field = field
        self.message = message
        self.hint = hint
        super().__init__(self.render())

    def render(self) -> str:
        where = str(self.path) if self.line is None else f"{self.path}:{self.line}"
        parts = [where]
        if self.case_id is not None:
            parts.append(f"case {self.case_id!r}")
        if self.field is not None:
            parts.append(f"field {self.field!r}")
        text = ": ".join(parts) + f": {self.message}"
        if self.hint:
            text += f"\n  {self.hint}"
        return text


class ConfigError(LlmGateError):
    """A command-line option, ini setting or project file is wrong."""


class LlmGateWarning(UserWarning):
    """Something a run could not measure (an unknown price, an unloadable encoding): said, never hidden."""


def did_you_mean(key: object, allowed: Sequence[str]) -> str:
    """` (did you mean 'assert'?)` for a misspelt key, or "" when nothing is close."""
    close = difflib.get_close_matches(str(key), allowed, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
