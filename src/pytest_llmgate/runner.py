"""Run one case on the baseline and the candidate and decide its verdict.

For each model: open its cassette, make the calls (replayed or live), then judge each reply with
the case's assertions and budgets. Assertions run after the model's cassette is closed, so an
llm-rubric judge can open a cassette of its own.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol

from pytest_llmgate.assertions import AssertionContext, case_score, evaluate
from pytest_llmgate.assertions.base import CheckError, Judge
from pytest_llmgate.assertions.graders import JUDGED_KINDS, PAIRWISE, judge_pairwise, task_text
from pytest_llmgate.budgets import BudgetBreach, check_budgets
from pytest_llmgate.cases import Case
from pytest_llmgate.cassettes import (
    Exchange,
    RecordingMissing,
    cassette_path,
    check_cassette_path,
    display_path,
    model_file_name,
)
from pytest_llmgate.drift import LocalCount, Tokenizers, check_context_window, context_window_for
from pytest_llmgate.model.params import ADAPTED_NOTE, adapt_params, explain_refusal
from pytest_llmgate.model.targets import Target
from pytest_llmgate.pricing import REPORTED, PriceTable, call_cost_parts, canonical, undated
from pytest_llmgate.ratelimits import RateLimit
from pytest_llmgate.reply import Reply
from pytest_llmgate.resilience import CallError
from pytest_llmgate.results import LOSS, TIE, WIN, CaseResult, ModelRun, Outcome, Pairwise, Sample

EXCERPT_CHARS = 200


class Client(Protocol):
    """What runs a model call: `client.ModelClient` (live, recording) or `replay.ReplayClient`."""

    def complete(self, request: dict[str, Any], target: Target | None = None) -> Reply: ...


class CassetteSessionLike(Protocol):
    """An open cassette. It may also have `notes` (a list of str, see `replay.ReplaySession`):
    said once it is closed, they join the model run's notes. Optional, so read with getattr."""

    exchanges: list[Exchange]
    keep: bool

    @property
    def token_counts(self) -> Mapping[str, int]:
        """Local prompt-token counts the cassette keeps, by `drift.count_key`."""

    def keep_token_count(self, key: str, tokens: int) -> None:
        """Keep a count made now in the cassette, if it is written anyway."""


class Cassettes(Protocol):
    """What opens a case's cassette: `recording.Recorder` or `replay.ReplayCassettes`."""

    def use(self, path: Path) -> AbstractContextManager[CassetteSessionLike]: ...


@dataclass(frozen=True)
class RunPlan:
    """Who runs and where recordings live; resolved once per session."""

    baseline: str
    candidate: str | None = None
    cassette_dir: Path | None = None  # None: `cassettes/` beside each case file
    samples: int = 1
    judge: str | None = None
    prices: PriceTable | None = None  # None: costs are not computed
    tokenizers: Tokenizers | None = None  # None: no local token counts
    context_windows: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    project_root: Path | None = None  # symlinks may not lead out of it; None: the case file's folder
    targets: Mapping[str, Target] = field(default_factory=lambda: MappingProxyType({}))
    param_policy: str | None = None  # --llm-param-policy: wins over the target's and the file's
    file_param_policy: str | None = None  # the case file's `param_policy:`

    def policy_for(self, target: Target) -> str:
        """adapt or strict: the command line's, else the target's, else the file's, else adapt."""
        return self.param_policy or target.param_policy or self.file_param_policy or "adapt"

    def target(self, name: str) -> Target:
        """The target a model name stands for (a bare one when no `models:` entry declares it)."""
        return self.targets.get(name) or Target.bare(name)

    def cassette_root(self, case: Case) -> Path:
        return self.cassette_dir if self.cassette_dir is not None else case.path.parent / "cassettes"

    def cassette_for(self, case: Case, model: str) -> Path:
        """The cassette of `case` for `model`; UnsafeCassettePath if a symlink leads out of bounds."""
        root = self.cassette_root(case)
        path = cassette_path(root, case.path.stem, case.id, model)
        check_cassette_path(path, root, self.project_root or case.path.parent)
        return path


@dataclass
class _Call:
    reply: Reply | None
    latency_ms: float
    replayed: bool
    error: str | None = None
    error_kind: str | None = None
    attempts: int = 1
    ttft_ms: float | None = None
    rate_limit: RateLimit | None = None  # the last rate-limit headers among the call's answers


def call_model(case: Case, model: str, plan: RunPlan, client: Client, recorder: Cassettes) -> list[_Call]:
    """Make `plan.samples` calls of `case` to `model` through its cassette."""
    return _call_model(case, model, plan, client, recorder)[0]


def _call_model(
    case: Case,
    model: str,
    plan: RunPlan,
    client: Client,
    recorder: Cassettes,
    count: Callable[[Mapping[str, int]], LocalCount] | None = None,
) -> tuple[list[_Call], tuple[str, ...], LocalCount | None]:
    """The calls, the notes the cassette left when it closed (e.g. answers not replayed), and
    `count` called with the counts the cassette keeps (None when the cassette could not be used).

    A count made here (not read from the cassette) is kept in it when it is written anyway.
    """
    target = plan.target(model)
    policy = plan.policy_for(target)
    request, adaptations = adapt_params(
        request_for(case, target), api=target.api, reasoning=target.is_reasoning, policy=policy
    )
    # Said on the case and in every report: the candidate was not sent what the case wrote.
    adapted = tuple(f"{ADAPTED_NOTE}{target.name}: {adaptation.describe()}" for adaptation in adaptations)
    calls: list[_Call] = []
    notes: tuple[str, ...] = ()
    local: LocalCount | None = None
    called = False  # every call was made: an exception now comes from saving the cassette
    try:
        path = plan.cassette_for(case, model)
        with recorder.use(path) as session:
            for _ in range(plan.samples):
                before = len(session.exchanges)
                try:
                    reply = client.complete(request, target)
                    error: CallError | RecordingMissing | None = None
                except (CallError, RecordingMissing) as exc:
                    reply, error = None, exc
                exchanges = session.exchanges[before:]
                latency = sum(exchange.latency_ms for exchange in exchanges)
                replayed = bool(exchanges) and all(exchange.replayed for exchange in exchanges)
                limits = [exchange.rate_limit for exchange in exchanges if exchange.rate_limit is not None]
                rate_limit = limits[-1] if limits else None
                if error is None:
                    attempts = max(1, len(exchanges))
                    mismatch = model_mismatch(target, reply, path, replayed)
                    if mismatch is None:
                        ttft = exchanges[-1].ttft_ms if exchanges else None
                        calls.append(
                            _Call(
                                reply,
                                latency,
                                replayed,
                                attempts=attempts,
                                ttft_ms=ttft,
                                rate_limit=rate_limit,
                            )
                        )
                        continue
                    # The recording is kept: it is what the endpoint said, and replays fail the same.
                    calls.append(
                        _Call(
                            None,
                            latency,
                            replayed,
                            mismatch,
                            "model-mismatch",
                            attempts,
                            rate_limit=rate_limit,
                        )
                    )
                    break
                # An answer that would come again (a 400 for the case's params, a 404 for the
                # model) is recorded, so a replay gives the verdict the live run gave.
                session.keep = is_permanent(error)
                kind, message = describe_failure(error)
                if isinstance(error, CallError) and error.status == 400:
                    fix = explain_refusal(error.message, error.code, error.param, target.name, policy=policy)
                    message = message if fix is None else f"{fix} (the API said: {message})"
                # Every request of a failed call was billed: its retries count as a reply's do.
                attempts = max(1, len(exchanges), error.attempts if isinstance(error, CallError) else 0)
                calls.append(_Call(None, latency, replayed, message, kind, attempts, rate_limit=rate_limit))
                break  # a failed call makes the rest of this model's samples pointless
            if count is not None:
                local = count(session.token_counts)
                if local.counted and local.key is not None and local.tokens is not None and session.keep:
                    session.keep_token_count(local.key, local.tokens)
            called = True
        notes = tuple(getattr(session, "notes", ()))
    except Exception as exc:  # an unsafe path, a corrupt cassette or a failing save
        message = f"{type(exc).__name__}: {exc}"
        if called and calls:
            # The save failed after the calls: the last call is the one that fails, counted once.
            last = calls[-1]
            calls[-1] = dataclasses.replace(
                last, reply=None, error=last.error or message, error_kind=last.error_kind or "recording"
            )
        else:
            calls.append(_Call(None, 0.0, False, message, "recording"))
    return calls, adapted + notes, local


PERMANENT_STATUSES = frozenset({400, 404, 422})
"""Error statuses that the same request gets again: recorded, so replays give the same verdict."""


def is_permanent(error: CallError | RecordingMissing) -> bool:
    return isinstance(error, CallError) and error.kind == "api" and error.status in PERMANENT_STATUSES


def request_for(case: Case, target: Target) -> dict[str, Any]:
    """The `create()` arguments of `case` for `target`: the target's params under the case's own
    (the case wins), and the model id the target sends."""
    request = {**target.params, **case.request_for(target.name)}
    request["model"] = target.model
    return request


def _same_model(asked: str, answered: str) -> bool:
    """`gpt-4o` may answer as `gpt-4o-2024-08-06`, `openai/gpt-4o` as `gpt-4o`, `llama3` as
    `llama3:latest`: the same model spelt by a router, a snapshot date or a local server."""

    def plain(model: str) -> str:
        return undated(canonical(model.removesuffix(":latest")))

    return answered == asked or undated(answered) == asked or plain(answered) == plain(asked)


def model_mismatch(target: Target, reply: Reply | None, path: Path, replayed: bool) -> str | None:
    """Why a reply from another model than the target's cannot stand for it; None when it can.

    The reply may name the model or a dated snapshot of it (`gpt-4o` answers as
    `gpt-4o-2024-08-06`). Anything else would be judged and priced as the target while being
    another model's answer: a hand-edited or swapped cassette, or an endpoint that routed the call
    elsewhere. An Azure deployment is named by its URL, not by the model it serves: not checked.
    """
    model = target.model
    answered = reply.model if reply is not None else None
    if not answered or target.azure is not None or _same_model(model, answered):
        return None
    if replayed:
        return (
            f"{model}'s recording answers as {answered} ({display_path(path)}), not as {model} or a "
            f"dated snapshot of it; re-record it with --llm-record-mode=all against an endpoint "
            f"serving {model}"
        )
    return (
        f"{model} was asked but {answered} answered, not {model} or a dated snapshot of it (the "
        f"endpoint routed the call to another model); point --llm-base-url at an endpoint serving {model}"
    )


def describe_failure(error: CallError | RecordingMissing) -> tuple[str, str]:
    """(error kind, one-line message) of a call that produced no reply."""
    if isinstance(error, RecordingMissing):
        return f"recording-{error.reason}", f"{error.detail}: {display_path(error.path)}"
    return error.kind, error.message


@dataclass(frozen=True)
class _Judging:
    """What judging a model's replies needs besides the case: prices and the local token count."""

    prices: PriceTable | None = None
    local_prompt_tokens: int | None = None
    context_window: int | None = None


def judge_reply(
    case: Case,
    model: str,
    call: _Call,
    with_budgets: bool,
    judge: Judge | None = None,
    judging: _Judging | None = None,
) -> Sample:
    """Apply the case's assertions (and, for the model under test, its budgets) to one call."""
    judging = judging or _Judging()
    if call.reply is None:
        return Sample(
            reply=None,
            latency_ms=call.latency_ms,
            replayed=call.replayed,
            error=call.error,
            error_kind=call.error_kind,
            attempts=call.attempts,
            rate_limit=call.rate_limit,
        )
    request = case.request_for(model)
    context = AssertionContext(
        case_id=case.id,
        model=model,
        case_file=case.path,
        tools=request.get("tools", ()),
        vars=case.vars,
        messages=tuple(request["messages"]),
        judge=judge,
    )
    # pairwise needs both models' replies: graded once per case by run_pairwise, not here.
    results = tuple(evaluate(spec, call.reply, context) for spec in case.assertions if spec.kind != PAIRWISE)
    price = judging.prices.lookup(model, call.reply.model) if judging.prices is not None else None
    parts = call_cost_parts(call.reply.usage, price) if price is not None else None
    # What the API reported it billed: the cost when there is no price, shown beside it otherwise.
    reported = call.reply.usage.reported_cost_usd
    source = price.source.describe() if parts is not None and price is not None else None
    if source is None and reported is not None:
        source = REPORTED.describe()
    breaches: list[BudgetBreach] = []
    unchecked: list[str] = []
    if with_budgets:
        breaches, unchecked = check_budgets(
            case.budgets,
            call.latency_ms,
            call.reply.usage,
            reported if parts is None else sum(parts),
            call.ttft_ms,
        )
        breach = _context_window_breach(request, call.reply.usage.prompt_tokens, judging)
        if breach is not None:
            breaches.append(breach)
    return Sample(
        input_cost_usd=None if parts is None else parts[0],
        output_cost_usd=None if parts is None else parts[1],
        reply=call.reply,
        latency_ms=call.latency_ms,
        replayed=call.replayed,
        assertions=results,
        score=case_score(results),
        breaches=tuple(breaches),
        notes=tuple(unchecked),
        attempts=call.attempts,
        reported_cost_usd=reported,
        ttft_ms=call.ttft_ms,
        price_source=source,
        threshold=case.threshold,
        rate_limit=call.rate_limit,
    )


def _context_window_breach(
    request: Mapping[str, object], reported_prompt_tokens: int | None, judging: _Judging
) -> BudgetBreach | None:
    """The prompt (as the API counted it, else tiktoken's count) plus max_tokens must fit the window."""
    prompt_tokens = (
        reported_prompt_tokens if reported_prompt_tokens is not None else judging.local_prompt_tokens
    )
    if prompt_tokens is None or judging.context_window is None:
        return None
    reserved = request.get("max_completion_tokens", request.get("max_tokens"))
    max_tokens = reserved if isinstance(reserved, int) and not isinstance(reserved, bool) else None
    if check_context_window(prompt_tokens, max_tokens, judging.context_window) is None:
        return None
    return BudgetBreach(
        "context_window", float(judging.context_window), float(prompt_tokens + (max_tokens or 0))
    )


class JudgeFailed(Exception):
    """The judge model could not be called; the sample is an error, not a failed assertion."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


def run_model(
    case: Case,
    model: str,
    plan: RunPlan,
    client: Client,
    recorder: Cassettes,
    judged_budgets: bool,
) -> ModelRun:
    """Call `model` for every sample of `case` and judge the replies (a unit of work on its own)."""
    tokenizers, target = plan.tokenizers, plan.target(model)

    def count(known: Mapping[str, int]) -> LocalCount:
        assert tokenizers is not None
        return tokenizers.local_count(target.model, request_for(case, target), known)

    calls, cassette_notes, local = _call_model(
        case, model, plan, client, recorder, count if tokenizers is not None else None
    )
    if local is None and tokenizers is not None:
        local = count({})
    local_tokens, encoding, note = (local.tokens, local.encoding, local.note) if local else (None, None, None)
    judging = _Judging(
        plan.prices, local_tokens, context_window_for(plan.target(model).model, plan.context_windows)
    )

    def model_run(samples: tuple[Sample, ...]) -> ModelRun:
        return ModelRun(
            model,
            samples,
            required_pass_rate=case.pass_rate,
            local_prompt_tokens=local_tokens,
            encoding=encoding,
            notes=((note,) if note else ()) + cassette_notes,
            weight=case.weight,
        )

    if not any(spec.kind in JUDGED_KINDS for spec in case.assertions):
        return model_run(
            tuple(judge_reply(case, model, call, judged_budgets, None, judging) for call in calls)
        )
    # The judge's calls go to a cassette of their own, one per graded model, so baseline and
    # candidate are graded by the same judge model and prompt and each grading replays alone.
    judge_model = plan.judge or plan.baseline
    failures: list[JudgeFailed] = []
    samples: list[Sample] = []
    judge_costs: list[float | None] = []  # one per judge reply of the sample being graded
    try:
        path = plan.cassette_for(case, f"{model}.judge-{judge_model}")
        with recorder.use(path) as session:

            def judge(prompt: str) -> str:
                judge_target = plan.target(judge_model)
                request = {
                    **judge_target.params,
                    "model": judge_target.model,
                    "messages": [{"role": "user", "content": prompt}],
                    "temperature": 0,
                }
                try:
                    reply = client.complete(request, judge_target)
                    judge_costs.append(_judge_cost(plan.prices, judge_model, reply))
                    return reply.text
                except (CallError, RecordingMissing) as exc:
                    kind, message = describe_failure(exc)
                    failure = JudgeFailed(kind, f"judge {judge_model}: {message}")
                session.keep = False
                failures.append(failure)
                raise failure

            for call in calls:
                before = len(failures)
                judge_costs.clear()
                sample = judge_reply(case, model, call, judged_budgets, judge, judging)
                if judge_costs:  # judge calls bill money too: kept apart from the graded model's cost
                    known = [cost for cost in judge_costs if cost is not None]
                    sample = dataclasses.replace(
                        sample,
                        judge_calls=len(judge_costs),
                        judge_cost_usd=sum(known) if len(known) == len(judge_costs) else None,
                    )
                if len(failures) > before:
                    failure = failures[-1]
                    sample = dataclasses.replace(
                        sample, error=failure.message, error_kind=failure.kind, assertions=(), score=0.0
                    )
                samples.append(sample)
    except Exception as exc:  # a corrupt judge cassette or a failing save
        samples.append(Sample(None, 0.0, False, error=f"{type(exc).__name__}: {exc}", error_kind="recording"))
    return model_run(tuple(samples))


def _judge_cost(prices: PriceTable | None, judge_model: str, reply: Reply) -> float | None:
    """USD of one judge call; None when the judge model has no price or the reply no usage."""
    price = prices.lookup(judge_model, reply.model) if prices is not None else None
    parts = call_cost_parts(reply.usage, price) if price is not None else None
    return None if parts is None else sum(parts)


PAIRWISE_NOTE = "pairwise not judged: "


def run_pairwise(
    case: Case,
    plan: RunPlan,
    client: Client,
    recorder: Cassettes,
    baseline: ModelRun,
    candidate: ModelRun | None,
) -> Pairwise | None:
    """The `pairwise` grader of `case`: the judge compares the candidate's reply with the
    baseline's, twice with the order swapped; None when the case has no pairwise entry.

    Run once per case after both models (it needs both replies), on the first sample of each,
    with the judge's calls in a cassette of their own (`<candidate>-vs-<baseline>.pairwise-<judge>`)
    so that it replays like any judge call. It never changes the case's verdict: a failure to
    judge is recorded on the result and said in its notes.
    """
    specs = [spec for spec in case.assertions if spec.kind == PAIRWISE]
    if not specs or candidate is None:
        return None
    first = [run.samples[0].reply if run.samples else None for run in (baseline, candidate)]
    missing = [run.model for run, reply in zip((baseline, candidate), first, strict=True) if reply is None]
    if missing:
        return Pairwise(None, error=f"no reply from {' and '.join(missing)} to compare")
    baseline_reply, candidate_reply = first
    assert baseline_reply is not None
    assert candidate_reply is not None
    judge_model = plan.judge or plan.baseline
    judge_target = plan.target(judge_model)
    costs: list[float | None] = []
    task = task_text(case.request_for(baseline.model)["messages"])
    try:
        path = plan.cassette_for(case, f"{candidate.model}-vs-{baseline.model}.pairwise-{judge_model}")
        with recorder.use(path) as session:

            def judge(prompt: str) -> str:
                reply = client.complete(_judge_request(judge_target, prompt), judge_target)
                costs.append(_judge_cost(plan.prices, judge_model, reply))
                return reply.text

            votes: list[int] = []
            reasons: list[str] = []
            try:
                for spec in specs:
                    more, reason = judge_pairwise(judge, spec.prepared, task, baseline_reply, candidate_reply)
                    votes.extend(more)
                    reasons.append(reason)
            except (CallError, RecordingMissing, CheckError) as exc:
                session.keep = False
                detail = describe_failure(exc)[1] if not isinstance(exc, CheckError) else str(exc)
                return Pairwise(None, error=f"judge {judge_model}: {detail}", judge_calls=len(costs))
    except Exception as exc:  # a corrupt judge cassette or a failing save
        return Pairwise(None, error=f"{type(exc).__name__}: {exc}", judge_calls=len(costs))
    total = sum(votes)
    known = [cost for cost in costs if cost is not None]
    return Pairwise(
        WIN if total > 0 else LOSS if total < 0 else TIE,
        votes=tuple(votes),
        reason=" | ".join(reason for reason in reasons if reason),
        judge_calls=len(costs),
        judge_cost_usd=sum(known) if len(known) == len(costs) else None,
    )


def _judge_request(judge_target: Target, prompt: str) -> dict[str, Any]:
    """One judge call: the judge's params, its model, the prompt, temperature 0."""
    return {
        **judge_target.params,
        "model": judge_target.model,
        "messages": [{"role": "user", "content": prompt}],
        "temperature": 0,
    }


def run_case(
    case: Case,
    plan: RunPlan,
    client: Client,
    recorder: Cassettes,
) -> CaseResult:
    """Run `case` on the baseline and the candidate; budgets bind the model under test only.

    The model under test is the candidate when there is one, else the baseline (a plain LLM
    test suite).
    """
    baseline = run_model(case, plan.baseline, plan, client, recorder, judged_budgets=plan.candidate is None)
    candidate = None
    if plan.candidate is not None:
        candidate = run_model(case, plan.candidate, plan, client, recorder, judged_budgets=True)
    pairwise = run_pairwise(case, plan, client, recorder, baseline, candidate)
    return combine(case, baseline, candidate, pairwise)


def combine(
    case: Case, baseline: ModelRun, candidate: ModelRun | None, pairwise: Pairwise | None = None
) -> CaseResult:
    """The case's result from its two model runs (which may have run on different threads)."""
    outcome, message = decide(case, baseline, candidate)
    notes: list[str] = []
    for run in (baseline,) if candidate is None else (baseline, candidate):
        for note in (*run.notes, *(note for sample in run.samples for note in sample.notes)):
            if note not in notes:
                notes.append(note)
    if pairwise is not None and pairwise.error is not None:
        notes.append(PAIRWISE_NOTE + pairwise.error)
    return CaseResult(
        pairwise=pairwise,
        prompt=tuple(_prompt_messages(case, baseline.model)),
        description=case.description or "",
        max_tokens=_max_tokens(case, baseline.model),
        critical=case.critical,
        notes=tuple(notes),
        file=case.path.name,
        case_id=case.id,
        tags=case.tags,
        baseline=baseline,
        candidate=candidate,
        outcome=outcome,
        message=message,
    )


def _prompt_messages(case: Case, model: str) -> list[dict[str, Any]]:
    """The messages as sent to `model`, role and content only (tool results and images are
    summarised by their content as the API took it)."""
    return [
        {"role": str(message.get("role", "")), "content": message.get("content")}
        for message in case.request_for(model)["messages"]
    ]


def _max_tokens(case: Case, model: str) -> int | None:
    """The output limit the case sends, under whichever name the wire API uses."""
    request = case.request_for(model)
    for key in ("max_tokens", "max_completion_tokens", "max_output_tokens"):
        value = request.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def decide(case: Case, baseline: ModelRun, candidate: ModelRun | None) -> tuple[str, str]:
    """The verdict table of the README, as code."""
    errors = [
        f"{run.model}: {sample.error}"
        for run in ((baseline,) if candidate is None else (baseline, candidate))
        for sample in run.samples
        if sample.error is not None
    ]
    if errors:
        return Outcome.ERROR, "\n".join(errors)
    subject = candidate if candidate is not None else baseline
    budget_lines = [f"{subject.model} broke a budget: {breach.describe()}" for breach in subject.breaches]
    if candidate is None:
        if not baseline.passed:
            return Outcome.FAILED, failure_message(baseline, f"{baseline.model} fails the case")
        if budget_lines:
            return Outcome.BUDGET, "\n".join(budget_lines)
        return Outcome.PASSED, ""
    if baseline.passed and not candidate.passed:
        text = failure_message(
            candidate, f"regression: {candidate.model} fails where {baseline.model} passes"
        )
        if budget_lines:
            text += "\n" + "\n".join(budget_lines)
        return Outcome.REGRESSION, text
    if budget_lines:
        return Outcome.BUDGET, "\n".join(budget_lines)
    if baseline.passed:
        return Outcome.PASSED, ""
    if candidate.passed:
        return Outcome.IMPROVEMENT, f"improvement: {candidate.model} passes where {baseline.model} fails"
    return Outcome.ALREADY_FAILING, failure_message(
        candidate, f"already failing on baseline: {baseline.model} and {candidate.model} both fail"
    )


def failure_message(run: ModelRun, headline: str) -> str:
    lines = [headline]
    for index, sample in enumerate(run.samples):
        # Weight-0 assertions are metrics only: they never explain a failure.
        failing = [result for result in sample.assertions if not result.passed and result.counts]
        if sample.passed or not failing:
            continue
        prefix = f"  sample {index + 1}: " if len(run.samples) > 1 else "  "
        if sample.threshold is not None:
            lines.append(
                f"{prefix}FAIL score {sample.score:.2f} below the case threshold {sample.threshold:g}"
            )
        for result in failing:
            lines.append(f"{prefix}FAIL {result.reason}")
        if sample.reply is not None:
            lines.append(f"  {run.model} output: {excerpt(sample.reply)}")
    return "\n".join(lines)


def excerpt(reply: Reply, limit: int = EXCERPT_CHARS) -> str:
    """The reply as one short line: its text, else its tool calls, else its finish reason."""
    if reply.text:
        text = " ".join(reply.text.split())
    elif reply.tool_calls:
        text = "; ".join(f"{call.name}({call.arguments})" for call in reply.tool_calls)
    elif reply.refusal:
        text = f"refusal: {reply.refusal}"
    else:
        text = f"(empty reply, finish_reason={reply.finish_reason})"
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


__all__ = ["RunPlan", "call_model", "decide", "excerpt", "model_file_name", "run_case"]
