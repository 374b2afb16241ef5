"""Assertion kinds: the registry lives in `base`; each module below registers the kinds of one family."""

from __future__ import annotations

import importlib

from pytest_llmgate.assertions.base import (
    REGISTRY,
    AssertionConfigError,
    AssertionContext,
    AssertionResult,
    AssertionSpec,
    CheckError,
    Verdict,
    case_score,
    evaluate,
    parse_assertion,
    register,
    sample_passes,
)

# Modules that register kinds when imported. Adding a family is adding its module here.
KIND_MODULES = ("text", "structured", "code", "tools", "custom", "rubric", "graders")

__all__ = [
    "KIND_MODULES",
    "REGISTRY",
    "AssertionConfigError",
    "AssertionContext",
    "AssertionResult",
    "AssertionSpec",
    "CheckError",
    "Verdict",
    "case_score",
    "evaluate",
    "load_kinds",
    "parse_assertion",
    "register",
    "sample_passes",
]


def load_kinds() -> None:
    """Import every kind module once so the registry is complete (cheap after the first call)."""
    for name in KIND_MODULES:
        importlib.import_module(f"pytest_llmgate.assertions.{name}")
