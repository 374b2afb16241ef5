"""A `RunReport` rebuilt from its JSON report, so `llmgate report run.json -o run.html` re-renders
any format without running anything.

The JSON carries every case result (`CaseResult.to_dict`), every gate check, the settings and
the stamps; everything else a report shows is derived from those by `build_report`, exactly as
the session derived it. So a report rendered from the JSON is the report the session wrote.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from pytest_llmgate.config import GateSettings
from pytest_llmgate.gate import GateCheck
from pytest_llmgate.report.model import RunReport, build_report
from pytest_llmgate.report.since import RunDelta
from pytest_llmgate.results import CaseResult


class ReportFileError(ValueError):
    """The JSON report cannot be read back; the message names the file and what to do."""


def load_report(path: Path) -> RunReport:
    """The run a JSON report (`--llm-report=run.json`) describes."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReportFileError(
            f"{path}: cannot read it as JSON ({exc}); pass a report written by pytest --llm-report=run.json"
        ) from None
    try:
        return report_from_dict(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise ReportFileError(
            f"{path}: not a pytest-llmgate JSON report this version can read ({type(exc).__name__}: {exc}); "
            "write it again with pytest --llm-report=run.json"
        ) from None


def report_from_dict(data: Mapping[str, Any]) -> RunReport:
    """The inverse of `json_report.report_dict` (up to what `build_report` derives)."""
    if not isinstance(data, Mapping) or "cases" not in data or "gates" not in data:
        raise ValueError("no cases or gates")
    results = [CaseResult.from_dict(_case(item)) for item in data["cases"]]
    gates = {item["nodeid"]: GateCheck.from_dict(item) for item in data["gates"]}
    settings = GateSettings.from_dict(data.get("settings") or {})
    created = datetime.fromisoformat(str(data["created"]).replace("Z", "+00:00"))
    production = data.get("production") or {}
    since = data.get("since")
    return build_report(
        results,
        gates,
        baseline=data.get("baseline"),
        candidate=data.get("candidate"),
        settings=settings,
        created=created,
        plugin_version=str((data.get("plugin") or {}).get("version", "?")),
        not_run=list(data["not_run"]) if data.get("interrupted") else None,
        production_timeout_s=production.get("timeout_s") if isinstance(production, Mapping) else None,
        production_concurrency=_whole(production.get("concurrency"))
        if isinstance(production, Mapping)
        else None,
        run_concurrency=_whole(data.get("concurrency")),
        since=RunDelta.from_dict(since) if isinstance(since, Mapping) else None,
    )


def _whole(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 1 else None


_DERIVED_CASE_KEYS = ("blocking", "route")
_DERIVED_RUN_KEYS = ("cost_usd", "errored")


def _case(item: Mapping[str, Any]) -> dict[str, Any]:
    """A case entry without the fields the JSON report adds to `CaseResult.to_dict()`."""
    case = {key: value for key, value in item.items() if key not in _DERIVED_CASE_KEYS}
    for role in ("baseline", "candidate"):
        run = case.get(role)
        if isinstance(run, Mapping):
            case[role] = {key: value for key, value in run.items() if key not in _DERIVED_RUN_KEYS}
    return case
