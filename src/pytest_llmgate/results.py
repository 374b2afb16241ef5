"""Results of running cases, as plain versioned data.

A `CaseResult` serialises to a dict (`to_dict`/`from_dict`) that rides on pytest's TestReport to
the xdist controller and feeds the reports, so the terminal summary of a distributed run sees
exactly what a local run sees.

The objects are frozen, so the verdicts derived from their fields (a sample's and a run's
`passed`, a run's `errored`, `pass_rate` and `score`) are computed once, when the object is made,
into fields that take no argument and that equality, hashing and `repr` leave out (`replace` and
`from_dict` compute them again). The end of a 2,000-case run asks each run's verdict dozens of
times (every summary, tag, pair and route), which cost more than writing the reports. Computed
in `__post_init__`, not on first use: an attribute added later would unshare the instance's
attribute dict, which costs 2.8 kB a case.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pytest_llmgate.assertions import AssertionResult, sample_passes
from pytest_llmgate.budgets import BudgetBreach
from pytest_llmgate.ratelimits import RateLimit
from pytest_llmgate.reply import Reply

RESULT_SCHEMA_VERSION = 2


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
    input_cost_usd: float | None = None  # None: no price for the model or no usage reported
    output_cost_usd: float | None = None
    # llm-rubric grading of this reply: calls to the judge model and their cost (None: unpriced).
    # Billed like any call, but not the graded model's cost (see metrics.judge_summary).
    judge_calls: int = 0
    judge_cost_usd: float | None = None
    # What the API said the call cost (OpenRouter, Perplexity, xAI): the cost when no price is known.
    reported_cost_usd: float | None = None
    ttft_ms: float | None = None  # streamed calls: time to the first content, as recorded
    # Where the cost's price came from (pricing.PriceSource.describe()): a report says how far
    # to trust a number that a stale built-in table or a typo in llmgate.yaml could have made.
    price_source: str | None = None
    threshold: float | None = None  # the case's `threshold`: its weighted score decides instead
    rate_limit: RateLimit | None = None  # what the answer's rate-limit headers said (ratelimits.py)
    passed: bool = field(init=False, repr=False, compare=False)  # derived: see the module docstring

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "passed", self.error is None and sample_passes(self.assertions, self.threshold)
        )

    @property
    def cost_usd(self) -> float | None:
        """From the price when there is one, else what the API reported; None: unknown, never 0."""
        if self.input_cost_usd is None or self.output_cost_usd is None:
            return self.reported_cost_usd
        return self.input_cost_usd + self.output_cost_usd

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
            "input_cost_usd": self.input_cost_usd,
            "output_cost_usd": self.output_cost_usd,
            "cost_usd": self.cost_usd,
            "judge_calls": self.judge_calls,
            "judge_cost_usd": self.judge_cost_usd,
            "reported_cost_usd": self.reported_cost_usd,
            "ttft_ms": self.ttft_ms,
            "price_source": self.price_source,
            "threshold": self.threshold,
            "rate_limit": self.rate_limit.to_dict() if self.rate_limit is not None else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Sample:
        rate_limit = data.get("rate_limit")
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
            input_cost_usd=_optional_float(data.get("input_cost_usd")),
            output_cost_usd=_optional_float(data.get("output_cost_usd")),
            judge_calls=int(data.get("judge_calls", 0)),
            judge_cost_usd=_optional_float(data.get("judge_cost_usd")),
            reported_cost_usd=_optional_float(data.get("reported_cost_usd")),
            ttft_ms=_optional_float(data.get("ttft_ms")),
            price_source=data.get("price_source"),
            threshold=_optional_float(data.get("threshold")),
            rate_limit=RateLimit.from_dict(rate_limit) if isinstance(rate_limit, dict) else None,
        )


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


@dataclass(frozen=True)
class ModelRun:
    """All samples of one model on one case; it passes when enough samples pass (`pass_rate`)."""

    model: str
    samples: tuple[Sample, ...]
    required_pass_rate: float = 1.0
    local_prompt_tokens: int | None = None  # tiktoken's count of the request; None when unknown
    encoding: str | None = None  # the tiktoken encoding that count used
    notes: tuple[str, ...] = ()  # e.g. why there is no local count
    weight: float = 1.0  # the case's `weight` in the suite's quality score (a duplicate counts N)
    # Derived from the samples (see the module docstring).
    errored: bool = field(init=False, repr=False, compare=False)
    pass_rate: float = field(init=False, repr=False, compare=False)
    passed: bool = field(init=False, repr=False, compare=False)
    score: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        samples = self.samples
        errored = any(sample.error is not None for sample in samples)
        pass_rate = sum(sample.passed for sample in samples) / len(samples) if samples else 0.0
        # A small epsilon: 2/3 must meet a pass_rate written as 0.6667 or 0.666...
        passed = bool(samples) and not errored and pass_rate >= self.required_pass_rate - 1e-9
        score = sum(sample.score for sample in samples) / len(samples) if samples else 0.0
        object.__setattr__(self, "errored", errored)
        object.__setattr__(self, "pass_rate", pass_rate)
        object.__setattr__(self, "passed", passed)
        object.__setattr__(self, "score", score)

    @property
    def breaches(self) -> tuple[BudgetBreach, ...]:
        return tuple(breach for sample in self.samples for breach in sample.breaches)

    @property
    def cost_usd(self) -> float | None:
        """USD of the answered samples, None when any of them cannot be priced."""
        total = 0.0
        for sample in self.samples:
            if sample.reply is None:
                continue
            cost = sample.cost_usd
            if cost is None:
                return None
            total += cost
        return total

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "samples": [sample.to_dict() for sample in self.samples],
            "required_pass_rate": self.required_pass_rate,
            "pass_rate": self.pass_rate,
            "passed": self.passed,
            "score": self.score,
            "local_prompt_tokens": self.local_prompt_tokens,
            "encoding": self.encoding,
            "notes": list(self.notes),
            "weight": self.weight,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelRun:
        local = data.get("local_prompt_tokens")
        return cls(
            model=data["model"],
            samples=tuple(Sample.from_dict(item) for item in data["samples"]),
            required_pass_rate=float(data.get("required_pass_rate", 1.0)),
            local_prompt_tokens=None if local is None else int(local),
            encoding=data.get("encoding"),
            notes=tuple(data.get("notes", [])),
            weight=float(data.get("weight", 1.0)),
        )


WIN, TIE, LOSS = "win", "tie", "loss"


@dataclass(frozen=True)
class Pairwise:
    """The `pairwise` grader's verdict on one case: the candidate's reply against the baseline's.

    The judge sees both replies twice, once in each order; `votes` holds its two readings from
    the candidate's side (+1 candidate better, 0 tie, -1 baseline better), and `outcome` is the
    sign of their sum, so a judge that always prefers the first reply records a tie.
    """

    outcome: str | None  # win/tie/loss for the candidate; None when it could not be judged
    votes: tuple[int, ...] = ()
    reason: str = ""
    error: str | None = None
    judge_calls: int = 0
    judge_cost_usd: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "votes": list(self.votes),
            "reason": self.reason,
            "error": self.error,
            "judge_calls": self.judge_calls,
            "judge_cost_usd": self.judge_cost_usd,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Pairwise:
        return cls(
            outcome=data.get("outcome"),
            votes=tuple(int(vote) for vote in data.get("votes", [])),
            reason=data.get("reason", ""),
            error=data.get("error"),
            judge_calls=int(data.get("judge_calls", 0)),
            judge_cost_usd=_optional_float(data.get("judge_cost_usd")),
        )


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
    file_nodeid: str = ""  # the case file's pytest node id: gates group cases by it
    critical: bool = False
    # The messages sent (system and conversation, templates rendered), as {"role", "content"}:
    # a reviewer judging two replies needs the question they answer.
    prompt: tuple[dict[str, Any], ...] = ()
    description: str = ""  # the case's own; "production traffic, ..." for an imported case
    max_tokens: int | None = None  # the output limit sent (max_tokens and its aliases), if any
    pairwise: Pairwise | None = None  # the `pairwise` grader's verdict, when the case has one

    @property
    def weight(self) -> float:
        """The case's weight in the suite's quality score (its model runs carry it)."""
        return self.baseline.weight

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
            "file_nodeid": self.file_nodeid,
            "critical": self.critical,
            "prompt": [dict(message) for message in self.prompt],
            "description": self.description,
            "max_tokens": self.max_tokens,
            "pairwise": self.pairwise.to_dict() if self.pairwise is not None else None,
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
            file_nodeid=data.get("file_nodeid", ""),
            critical=bool(data.get("critical", False)),
            prompt=tuple(dict(message) for message in data.get("prompt", [])),
            description=str(data.get("description") or ""),
            max_tokens=None if data.get("max_tokens") is None else int(data["max_tokens"]),
            pairwise=Pairwise.from_dict(data["pairwise"]) if data.get("pairwise") is not None else None,
        )


def result_order(result: CaseResult) -> tuple[str, str, str]:
    """Results are kept in node order, not arrival order, so every number is the same run to run.

    Here, not in `items`, so an xdist controller that only gathers results imports no collector.
    """
    return (result.file_nodeid, result.case_id, result.candidate.model if result.candidate else "")
