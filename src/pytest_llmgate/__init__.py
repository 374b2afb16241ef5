"""pytest-llmgate: gate an LLM model upgrade on your own prompt cases, baseline vs candidate."""

from __future__ import annotations

__version__ = "0.1.0"
