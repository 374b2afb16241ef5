"""Results of running cases, as plain versioned data.

A `CaseResult` serialises to a dict (`to_dict`/`from_dict`) that rides on pytest's TestReport to
the xdist controller and feeds the reports, so the terminal summary of a distributed run sees
exactly what a local run sees.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pytest_llmgate.assertions import AssertionResult
from pytest_llmgate.budgets import BudgetBreach
from pytest_llmgate.reply import Reply

RESULT_SCHEMA_VERSION = 1


class Outcome:
    """The verdict of one case (see README, "The verdict of one case")."""

    PASSED = "passed"
    IMPROVEMENT = "improvement"
    REGRESSION = "regression"
    ALREADY_FAILING = "already-failing"
    BUDGET = "budget"
    FAILED = "failed"  # no candidate: the baseline failed its own assertions
    ERROR = "error"  # a call could not be made or replayed


@dataclass(frozen=True)
class Sample:
    """One call to one model for one case, and how its reply was judged."""

    reply: Reply | None
    latency_ms: float
    replayed: bool
    error: str | None = None
    error_kind: str | None = None
    assertions: tuple[AssertionResult, ...] = ()
    score: float = 0.0
    breaches: tuple[BudgetBreach, ...] = ()
    notes: tuple[str, ...] = ()
    attempts: int = 1

    @property
    def passed(self) -> bool:
        return self.error is None and all(result.passed for result in self.assertions)

    def to_dict(self) -> dict[str, Any]:
        return {
            "reply": self.reply.to_dict() if self.reply is not None else None,
            "latency_ms": self.latency_ms,
            "replayed": self.replayed,
            "error": self.error,
            "error_kind": self.error_kind,
            "assertions": [result.to_dict() for result in self.assertions],
            "score": self.score,
            "passed": self.passed,
            "breaches": [breach.to_dict() for breach in self.breaches],
            "notes": list(self.notes),
            "attempts": self.attempts,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Sample:
        return cls(
            reply=Reply.from_dict(data["reply"]) if data.get("reply") is not None else None,
            latency_ms=float(data["latency_ms"]),
            replayed=bool(data["replayed"]),
            error=data.get("error"),
            error_kind=data.get("error_kind"),
            assertions=tuple(AssertionResult.from_dict(item) for item in data.get("assertions", [])),
            score=float(data.get("score", 0.0)),
            breaches=tuple(BudgetBreach.from_dict(item) for item in data.get("breaches", [])),
            notes=tuple(data.get("notes", [])),
            attempts=int(data.get("attempts", 1)),
        )


@dataclass(frozen=True)
class ModelRun:
    """All samples of one model on one case."""

    model: str
    samples: tuple[Sample, ...]

    @property
    def errored(self) -> bool:
        return any(sample.error is not None for sample in self.samples)

    @property
    def pass_rate(self) -> float:
        if not self.samples:
            return 0.0
        return sum(sample.passed for sample in self.samples) / len(self.samples)

    @property
    def passed(self) -> bool:
        return bool(self.samples) and all(sample.passed for sample in self.samples)

    @property
    def score(self) -> float:
        if not self.samples:
            return 0.0
        return sum(sample.score for sample in self.samples) / len(self.samples)

    @property
    def breaches(self) -> tuple[BudgetBreach, ...]:
        return tuple(breach for sample in self.samples for breach in sample.breaches)

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "samples": [sample.to_dict() for sample in self.samples]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelRun:
        return cls(model=data["model"], samples=tuple(Sample.from_dict(item) for item in data["samples"]))


@dataclass(frozen=True)
class CaseResult:
    """One case on the baseline and (when given) the candidate, with its verdict."""

    file: str
    case_id: str
    tags: tuple[str, ...]
    baseline: ModelRun
    candidate: ModelRun | None
    outcome: str
    message: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def runs(self) -> tuple[ModelRun, ...]:
        return (self.baseline,) if self.candidate is None else (self.baseline, self.candidate)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": RESULT_SCHEMA_VERSION,
            "file": self.file,
            "case_id": self.case_id,
            "tags": list(self.tags),
            "baseline": self.baseline.to_dict(),
            "candidate": self.candidate.to_dict() if self.candidate is not None else None,
            "outcome": self.outcome,
            "message": self.message,
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CaseResult:
        version = data.get("version")
        if version != RESULT_SCHEMA_VERSION:
            raise ValueError(f"case result version {version!r} is not {RESULT_SCHEMA_VERSION}")
        candidate = data.get("candidate")
        return cls(
            file=data["file"],
            case_id=data["case_id"],
            tags=tuple(data.get("tags", [])),
            baseline=ModelRun.from_dict(data["baseline"]),
            candidate=ModelRun.from_dict(candidate) if candidate is not None else None,
            outcome=data["outcome"],
            message=data.get("message", ""),
            notes=tuple(data.get("notes", [])),
        )
