"""Shared helpers: build an assertion from a YAML-like entry, run it, or capture its config error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pytest_llmgate.assertions import (
    AssertionConfigError,
    AssertionContext,
    AssertionResult,
    evaluate,
    parse_assertion,
)
from pytest_llmgate.reply import Reply

CONTEXT = AssertionContext(case_id="case-1", model="gpt-test")


def run(
    entry: dict[str, Any],
    reply: Reply | str,
    context: AssertionContext = CONTEXT,
    base_dir: Path | None = None,
) -> AssertionResult:
    """Parse `entry` as a case file would and evaluate it on `reply` (a string is the reply text)."""
    spec = parse_assertion(entry, base_dir=base_dir)
    return evaluate(spec, Reply(text=reply) if isinstance(reply, str) else reply, context)


def config_error(entry: dict[str, Any], base_dir: Path | None = None) -> AssertionConfigError:
    with pytest.raises(AssertionConfigError) as excinfo:
        parse_assertion(entry, base_dir=base_dir)
    return excinfo.value
