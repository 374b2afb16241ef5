"""What changed since an earlier run (`--llm-compare-report previous.json`): per model and per case.

The earlier run is read from its JSON report only (no recordings, no case files), so any stored
report works: main's last nightly, the run before a prompt change. Per model: quality, cost per
successful task and p95 latency, before and after; per case: the verdicts that flipped. The
result is plain data (`to_dict`/`from_dict`) so a report rebuilt from its JSON shows it again.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_llmgate.metrics import ModelSummary
from pytest_llmgate.results import CaseResult

GOOD_OUTCOMES = ("passed", "improvement")
FLIPS_SHOWN = 20  # per-case flips a report lists before "and N more" (the JSON keeps them all)


class PreviousReportError(ValueError):
    """The earlier report cannot be read; the message names the file and what to pass instead."""


def load_previous(path: Path) -> dict[str, Any]:
    """An earlier run's JSON report (`--llm-report=run.json`), checked enough to compare with."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PreviousReportError(
            f"--llm-compare-report {path}: cannot read it as JSON ({exc}); pass a report written "
            "by --llm-report=run.json"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("models"), list) or "cases" not in data:
        raise PreviousReportError(
            f"--llm-compare-report {path}: not a pytest-llmgate JSON report (no models or cases); "
            "pass a report written by --llm-report=run.json"
        )
    return data


@dataclass(frozen=True)
class ModelChange:
    """One model's headline numbers in the earlier run and in this one (None: not measured)."""

    model: str
    role: str
    quality_before: float | None
    quality_after: float | None
    cost_per_success_before: float | None
    cost_per_success_after: float | None
    p95_before: float | None
    p95_after: float | None

    @property
    def quality_change(self) -> float | None:
        return _difference(self.quality_after, self.quality_before)

    @property
    def cost_change(self) -> float | None:
        """Relative change of cost per successful task; None when either side is unknown or 0."""
        before, after = self.cost_per_success_before, self.cost_per_success_after
        if before is None or after is None or before == 0:
            return None
        return after / before - 1

    @property
    def p95_change(self) -> float | None:
        return _difference(self.p95_after, self.p95_before)


@dataclass(frozen=True)
class Flip:
    """A case whose verdict went from good to bad or back (passed/improvement vs the rest)."""

    case: str  # file::case_id
    model: str  # the model the verdict is about (the candidate, else the baseline)
    before: str
    after: str

    @property
    def worse(self) -> bool:
        return self.before in GOOD_OUTCOMES and self.after not in GOOD_OUTCOMES


@dataclass(frozen=True)
class RunDelta:
    """The comparison of this run with an earlier one."""

    previous_created: str
    previous_verdict: str
    models: tuple[ModelChange, ...]
    flips: tuple[Flip, ...]
    new_cases: int  # cases this run has and the earlier one did not
    gone_cases: int  # and the other way round

    @property
    def worse(self) -> tuple[Flip, ...]:
        return tuple(flip for flip in self.flips if flip.worse)

    @property
    def better(self) -> tuple[Flip, ...]:
        return tuple(flip for flip in self.flips if not flip.worse)

    def lines(self) -> list[str]:
        """One line per model and one summary of the flips, for the terminal and the Markdown."""
        lines = []
        for change in self.models:
            lines.append(
                f"{change.model} ({change.role}): quality {_num(change.quality_before, '.1f')} -> "
                f"{_num(change.quality_after, '.1f')}, $/success {_pct(change.cost_change)}, "
                f"p95 {_num(change.p95_before, '.0f')} -> {_num(change.p95_after, '.0f')} ms"
            )
        lines.append(
            f"verdict flips: {len(self.worse)} worse, {len(self.better)} better"
            + (f"; {self.new_cases} new cases" if self.new_cases else "")
            + (f"; {self.gone_cases} cases gone" if self.gone_cases else "")
        )
        return lines

    def to_dict(self) -> dict[str, Any]:
        return {
            "previous_created": self.previous_created,
            "previous_verdict": self.previous_verdict,
            "models": [
                {
                    "model": change.model,
                    "role": change.role,
                    "quality_before": change.quality_before,
                    "quality_after": change.quality_after,
                    "cost_per_success_before": change.cost_per_success_before,
                    "cost_per_success_after": change.cost_per_success_after,
                    "p95_before": change.p95_before,
                    "p95_after": change.p95_after,
                }
                for change in self.models
            ],
            "flips": [
                {"case": flip.case, "model": flip.model, "before": flip.before, "after": flip.after}
                for flip in self.flips
            ],
            "new_cases": self.new_cases,
            "gone_cases": self.gone_cases,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunDelta:
        return cls(
            previous_created=str(data.get("previous_created", "")),
            previous_verdict=str(data.get("previous_verdict", "")),
            models=tuple(
                ModelChange(
                    model=item["model"],
                    role=item["role"],
                    quality_before=_float(item.get("quality_before")),
                    quality_after=_float(item.get("quality_after")),
                    cost_per_success_before=_float(item.get("cost_per_success_before")),
                    cost_per_success_after=_float(item.get("cost_per_success_after")),
                    p95_before=_float(item.get("p95_before")),
                    p95_after=_float(item.get("p95_after")),
                )
                for item in data.get("models", [])
            ),
            flips=tuple(
                Flip(item["case"], item["model"], item["before"], item["after"])
                for item in data.get("flips", [])
            ),
            new_cases=int(data.get("new_cases", 0)),
            gone_cases=int(data.get("gone_cases", 0)),
        )


def run_delta(
    previous: Mapping[str, Any], results: Sequence[CaseResult], summaries: Sequence[ModelSummary]
) -> RunDelta:
    """This run's numbers against the earlier report's, model by model (matched by name and role)."""
    earlier = {
        (item.get("model"), item.get("role")): item
        for item in previous.get("models", [])
        if isinstance(item, Mapping)
    }
    changes = []
    for summary in summaries:
        before = earlier.get((summary.model, summary.role), {})
        latency = before.get("latency_ms") if isinstance(before.get("latency_ms"), Mapping) else {}
        changes.append(
            ModelChange(
                model=summary.model,
                role=summary.role,
                quality_before=_float(before.get("quality")),
                quality_after=summary.quality,
                cost_per_success_before=_float(before.get("cost_per_success")),
                cost_per_success_after=summary.cost_per_success,
                p95_before=_float(latency.get("p95")) if isinstance(latency, Mapping) else None,
                p95_after=summary.latency.p95,
            )
        )
    then: dict[tuple[str, str], str] = {}
    for item in previous.get("cases", []):
        if isinstance(item, Mapping):
            then[(f"{item.get('file')}::{item.get('case_id')}", _judged_model(item))] = str(
                item.get("outcome")
            )
    now = {(f"{result.file}::{result.case_id}", _judged(result)): result.outcome for result in results}
    flips = tuple(
        Flip(case, model, then[(case, model)], outcome)
        for (case, model), outcome in now.items()
        if (case, model) in then and (then[(case, model)] in GOOD_OUTCOMES) != (outcome in GOOD_OUTCOMES)
    )
    verdict = previous.get("verdict")
    return RunDelta(
        previous_created=str(previous.get("created", "")),
        previous_verdict=str(verdict.get("line", "")) if isinstance(verdict, Mapping) else "",
        models=tuple(changes),
        flips=tuple(sorted(flips, key=lambda flip: (not flip.worse, flip.case, flip.model))),
        new_cases=len(set(now) - set(then)),
        gone_cases=len(set(then) - set(now)),
    )


def _judged(result: CaseResult) -> str:
    return (result.candidate or result.baseline).model


def _judged_model(item: Mapping[str, Any]) -> str:
    run = item.get("candidate") or item.get("baseline") or {}
    return str(run.get("model", "")) if isinstance(run, Mapping) else ""


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _difference(after: float | None, before: float | None) -> float | None:
    return None if after is None or before is None else after - before


def _num(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.0%}"
