"""Where cassettes live and what reading one can go wrong: the parts replay and recording share.

No vcrpy, openai or httpx2 here, so that a replay-only run never imports them.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

LATENCY_HEADER = "x-llmgate-latency-ms"
"""Response header under which a recording keeps the latency measured when it was made."""


def model_file_name(model: str) -> str:
    """A file name for a model id: `meta-llama/Llama-3:8b` -> `meta-llama__Llama-3_8b`."""
    name = model.replace("/", "__")
    return re.sub(r"[^A-Za-z0-9._-]", "_", name) or "_"


def cassette_path(cassette_dir: Path, file_stem: str, case_id: str, model: str) -> Path:
    """`<dir>/<file stem>/<case id>/<model>.yaml`: one cassette per case and model."""
    return cassette_dir / file_stem / case_id / f"{model_file_name(model)}.yaml"


class CorruptCassetteError(Exception):
    def __init__(self, path: Path, detail: str) -> None:
        detail = " ".join(detail.split())
        super().__init__(f"cassette {path} cannot be read ({detail}); delete it and record it again")
        self.path = path


class RecordingMissing(Exception):
    """A request has no recording and the record mode forbids making one."""

    def __init__(self, path: Path, reason: str, detail: str = "") -> None:
        self.path = path
        self.reason = reason  # "missing" | "stale" | "exhausted"
        self.detail = detail
        super().__init__(f"{reason} recording {path}: {detail}")


@dataclass
class Exchange:
    """One HTTP round trip made (or replayed) for a model call."""

    status: int
    latency_ms: float
    replayed: bool


def unplayed_note(path: Path, unplayed: int, recorded: int) -> str:
    """The note for a cassette whose recorded answers were not all replayed (fewer samples)."""
    # Path and counts first: the terminal summary clips each note to one line.
    return (
        f"replay: {display_path(path)}: {unplayed} of {recorded} recorded answers not replayed "
        f"(recorded with --llm-repeat {recorded}?); re-record with --llm-record-mode=all or pass "
        "the same --llm-repeat"
    )


def display_path(path: Path) -> str:
    """`path` relative to the working directory when it can be, as people type it."""
    try:
        return os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return str(path)
