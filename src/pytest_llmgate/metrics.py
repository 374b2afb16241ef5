"""What a set of case results says about each model: latency, tokens, cost and quality.

Pure functions over `CaseResult`s, shared by the gates and every report, so the terminal table,
the JSON report and the gate verdicts can never disagree about a number.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pytest_llmgate.results import CaseResult, ModelRun
from pytest_llmgate.stats import mean, percentile, sign_test, weighted_mean


def format_usd(value: float | None) -> str:
    """Dollars as every gate message and the terminal table show them.

    3 significant digits below $0.01 (a cheap call costs $0.0000412, and "$0.00004 -> $0.00007"
    could not show the +66.7% printed beside it), 4 decimals from $0.01; "unknown" for None,
    never $0.
    """
    if value is None:
        return "unknown"
    if value == 0:
        return "$0.0000"
    sign = "-" if value < 0 else ""
    magnitude = abs(value)
    if magnitude >= 0.01:
        return f"{sign}${magnitude:.4f}"
    rounded = float(f"{magnitude:.3g}")  # rounded first: 0.0099996 shows as $0.0100, not $0.01000
    if rounded >= 0.01:
        return f"{sign}${rounded:.4f}"
    decimals = 2 - math.floor(math.log10(rounded))
    return f"{sign}${rounded:.{decimals}f}"


def plural(count: int, noun: str, plural_form: str | None = None) -> str:
    """`1 case`, `2 cases`: a count with its noun in the right number."""
    return f"{count} {noun if count == 1 else plural_form or noun + 's'}"


@dataclass(frozen=True)
class Latency:
    """Latency over all answered calls of a model, in ms (recorded latency on replay)."""

    calls: int
    mean: float | None
    p50: float | None
    p95: float | None
    p99: float | None
    max: float | None

    @classmethod
    def of(cls, values: Sequence[float]) -> Latency:
        return cls(
            calls=len(values),
            mean=mean(values),
            p50=percentile(values, 50),
            p95=percentile(values, 95),
            p99=percentile(values, 99),
            max=max(values) if values else None,
        )


@dataclass(frozen=True)
class ModelSummary:
    """What the reports say of one model over the cases of a session (or of one tag)."""

    model: str
    role: str
    cases: int
    passed: int
    quality: float | None  # 0-100, mean case score over the cases without errors
    latency: Latency
    prompt_tokens: int | None
    completion_tokens: int | None
    errors: int
    samples: int
    sample_passes: int
    retries: int = 0
    cost_usd: float | None = None  # None: some answered call has no known price or no usage
    input_cost_usd: float | None = None
    output_cost_usd: float | None = None
    versus: str | None = None  # a candidate's baseline, set when the results have several
    ttft: Latency = Latency(0, None, None, None, None, None)  # time to first token, streamed calls

    @property
    def label(self) -> str:
        """E.g. "gpt-5.5 (candidate)"; among several baselines "gpt-5.5 vs gpt-4o" (short: the
        terminal table's first column gives way to the numbers, and the baseline must show)."""
        if self.versus is not None:
            return f"{self.model} vs {self.versus}"
        return f"{self.model} ({self.role})"

    @property
    def cost_per_success(self) -> float | None:
        """Total cost over cases passed: what one successful task costs, failures included."""
        if self.cost_usd is None or not self.passed:
            return None
        return self.cost_usd / self.passed

    @property
    def cost_per_case(self) -> float | None:
        if self.cost_usd is None or not self.cases:
            return None
        return self.cost_usd / self.cases

    @property
    def input_cost_per_1k(self) -> float | None:
        return _per_1k(self.input_cost_usd, self.prompt_tokens)

    @property
    def output_cost_per_1k(self) -> float | None:
        return _per_1k(self.output_cost_usd, self.completion_tokens)

    @property
    def pass_rate(self) -> float | None:
        """Share of cases the model passed (each case by its own `pass_rate` over its samples)."""
        return self.passed / self.cases if self.cases else None

    @property
    def sample_pass_rate(self) -> float | None:
        """Share of individual samples that passed: differs from `pass_rate` under repeats."""
        return self.sample_passes / self.samples if self.samples else None

    # Kept for callers of the first table: mean and p95 by their old names.
    @property
    def mean_latency_ms(self) -> float | None:
        return self.latency.mean

    @property
    def p95_latency_ms(self) -> float | None:
        return self.latency.p95


def _per_1k(cost: float | None, tokens: int | None) -> float | None:
    if cost is None or not tokens:
        return None
    return cost / tokens * 1000


def _sum_or_none(values: Sequence[float | None]) -> float | None:
    """The exact-rounded sum (math.fsum: the same whatever the order, so an xdist run, whose
    results arrive in any order, reports the same cents), or None if any value is unknown."""
    if any(value is None for value in values):
        return None
    return math.fsum(value for value in values if value is not None)


def summarise(role: str, runs: Sequence[ModelRun]) -> ModelSummary:
    samples = [sample for run in runs for sample in run.samples]
    answered = [sample for sample in samples if sample.reply is not None]
    judged = [run for run in runs if not run.errored]
    # Weighted by each case's `weight` (1 unless set), as gate[quality] weighs it.
    quality = weighted_mean([run.score for run in judged], [run.weight for run in judged])

    def total(field: str) -> int | None:
        counts = [getattr(sample.reply.usage, field) for sample in answered if sample.reply is not None]
        known = [count for count in counts if count is not None]
        return sum(known) if known else None

    return ModelSummary(
        model=runs[0].model if runs else "?",
        role=role,
        cases=len(runs),
        passed=sum(run.passed for run in runs),
        quality=None if quality is None else 100.0 * quality,
        latency=Latency.of([sample.latency_ms for sample in answered]),
        prompt_tokens=total("prompt_tokens"),
        completion_tokens=total("completion_tokens"),
        errors=sum(run.errored for run in runs),
        samples=len(samples),
        sample_passes=sum(sample.passed for sample in samples),
        retries=sum(max(0, sample.attempts - 1) for sample in samples),
        cost_usd=_sum_or_none([sample.cost_usd for sample in answered]),
        input_cost_usd=_sum_or_none([sample.input_cost_usd for sample in answered]),
        output_cost_usd=_sum_or_none([sample.output_cost_usd for sample in answered]),
        ttft=Latency.of([sample.ttft_ms for sample in answered if sample.ttft_ms is not None]),
    )


def pairs_of(results: Sequence[CaseResult]) -> list[tuple[str, str | None]]:
    """Each distinct (baseline, candidate) model pair of the results, in order of appearance."""
    return list(
        dict.fromkeys(
            (result.baseline.model, result.candidate.model if result.candidate else None)
            for result in results
        )
    )


def baseline_runs(results: Sequence[CaseResult], model: str | None = None) -> list[ModelRun]:
    """The baseline runs of `results` (of `model` only, if given), each case's once: several
    candidates' results of a case share one baseline run."""
    runs: dict[tuple[str, str, str], ModelRun] = {}
    for result in results:
        if model is None or result.baseline.model == model:
            key = (result.file_nodeid or result.file, result.case_id, result.baseline.model)
            runs.setdefault(key, result.baseline)
    return list(runs.values())


def model_summaries(
    results: Sequence[CaseResult],
    summariser: Callable[[str, Sequence[ModelRun]], ModelSummary] = summarise,
) -> list[ModelSummary]:
    """One summary per baseline model (each case once), then one per (baseline, candidate) pair.

    Results of files naming different baselines are never merged under one baseline's name; a
    candidate compared with several baselines gets a summary per baseline (`versus`).
    `summariser` is `summarise`, or a report's memo of it (`report.memo.Memo.summarise`).
    """
    if not results:
        return []
    pairs = pairs_of(results)
    baselines = list(dict.fromkeys(base for base, _ in pairs))
    summaries = [summariser("baseline", baseline_runs(results, base)) for base in baselines]
    for base, cand in pairs:
        if cand is None:
            continue
        runs = [
            result.candidate
            for result in results
            if result.candidate is not None
            and result.candidate.model == cand
            and result.baseline.model == base
        ]
        summary = summariser("candidate", runs)
        summaries.append(summary if len(baselines) == 1 else dataclasses.replace(summary, versus=base))
    return summaries


@dataclass(frozen=True)
class JudgeSummary:
    """The llm-rubric judge's calls over the run: billed, but no graded model's cost."""

    calls: int
    cost_usd: float | None  # None: some judge call has no known price


def judge_summary(results: Sequence[CaseResult]) -> JudgeSummary | None:
    """The judge's calls and cost over every run (a shared baseline run once); None without any."""
    runs = baseline_runs(results) + [result.candidate for result in results if result.candidate]
    samples = [sample for run in runs for sample in run.samples if sample.judge_calls]
    # The pairwise grader's calls are the judge's too (one grading per case and candidate).
    pairwise = [result.pairwise for result in results if result.pairwise and result.pairwise.judge_calls]
    if not samples and not pairwise:
        return None
    return JudgeSummary(
        calls=sum(sample.judge_calls for sample in samples) + sum(p.judge_calls for p in pairwise),
        cost_usd=_sum_or_none(
            [sample.judge_cost_usd for sample in samples] + [p.judge_cost_usd for p in pairwise]
        ),
    )


def unpriced_models(results: Sequence[CaseResult]) -> list[str]:
    """Models with an answered call whose cost is unknown, in order of first appearance."""
    models: list[str] = []
    for result in results:
        for run in result.runs:
            if run.model not in models and any(
                sample.reply is not None and sample.cost_usd is None for sample in run.samples
            ):
                models.append(run.model)
    return models


def completion_tokens(run: ModelRun) -> int | None:
    """Completion tokens over the run's samples, None when any answered sample lacks a count."""
    counts = [sample.reply.usage.completion_tokens if sample.reply else None for sample in run.samples]
    if not counts or any(count is None for count in counts):
        return None
    return sum(count for count in counts if count is not None)


def output_token_inflation(results: Sequence[CaseResult]) -> float | None:
    """Candidate completion tokens / baseline's - 1, over the cases where both reported counts.

    Per sample on average, so a case repeated three times weighs as much as one run once.
    """
    baseline_total = candidate_total = 0.0
    for result in results:
        if result.candidate is None:
            continue
        baseline = completion_tokens(result.baseline)
        candidate = completion_tokens(result.candidate)
        if baseline is None or candidate is None:
            continue
        baseline_total += baseline / len(result.baseline.samples)
        candidate_total += candidate / len(result.candidate.samples)
    if baseline_total == 0:
        return None
    return candidate_total / baseline_total - 1.0


def tags_of(results: Sequence[CaseResult]) -> list[str]:
    """Every tag used by the results, sorted; untagged cases are grouped as "(untagged)"."""
    tags = {tag for result in results for tag in result.tags}
    ordered = sorted(tags)
    if any(not result.tags for result in results):
        ordered.append(UNTAGGED)
    return ordered


UNTAGGED = "(untagged)"


def results_with_tag(results: Sequence[CaseResult], tag: str) -> list[CaseResult]:
    if tag == UNTAGGED:
        return [result for result in results if not result.tags]
    return [result for result in results if tag in result.tags]


@dataclass(frozen=True)
class MetricSummary:
    """One named metric (`metric:` on assertions) of one (baseline, candidate) pair.

    Means are 0-100 like the quality score, over the cases that have the metric and no error,
    each case weighted by its `weight`; `difference` is the paired mean of candidate minus
    baseline over the cases both models have it.
    """

    name: str
    baseline_model: str
    candidate_model: str | None
    baseline: float | None
    candidate: float | None
    cases: int  # cases with the metric (paired ones when there is a candidate)
    difference: float | None


def metric_value(run: ModelRun, name: str) -> float | None:
    """The run's score on metric `name`, 0-1: the mean over its answered samples of the mean of
    that metric's assertions; None when the run has none of them or erred."""
    if run.errored:
        return None
    per_sample = []
    for sample in run.samples:
        scores = [result.score for result in sample.assertions if result.metric == name]
        if scores:
            per_sample.append(math.fsum(scores) / len(scores))
    return mean(per_sample)


def metric_names(results: Sequence[CaseResult]) -> list[str]:
    """Every named metric of the results, in order of first appearance."""
    names: dict[str, None] = {}
    for result in results:
        for run in result.runs:
            for sample in run.samples:
                for check in sample.assertions:
                    if check.metric is not None:
                        names.setdefault(check.metric)
    return list(names)


def metric_summaries(results: Sequence[CaseResult]) -> list[MetricSummary]:
    """Each named metric per (baseline, candidate) pair of the results; [] when none is named."""
    names = metric_names(results)
    summaries: list[MetricSummary] = []
    for base, cand in pairs_of(results) if names else []:
        mine = [
            result
            for result in results
            if result.baseline.model == base
            and (result.candidate.model if result.candidate else None) == cand
        ]
        for name in names:
            rows = [
                (
                    metric_value(result.baseline, name),
                    metric_value(result.candidate, name) if result.candidate else None,
                    result.weight,
                )
                for result in mine
            ]
            base_rows = [(value, weight) for value, _, weight in rows if value is not None]
            cand_rows = [(value, weight) for _, value, weight in rows if value is not None]
            paired = [(c - b, w) for b, c, w in rows if b is not None and c is not None]

            def points(pairs: Sequence[tuple[float, float]]) -> float | None:
                value = weighted_mean([v for v, _ in pairs], [w for _, w in pairs])
                return None if value is None else 100.0 * value

            summaries.append(
                MetricSummary(
                    name=name,
                    baseline_model=base,
                    candidate_model=cand,
                    baseline=points(base_rows),
                    candidate=points(cand_rows) if cand is not None else None,
                    cases=len(paired) if cand is not None else len(base_rows),
                    difference=points(paired) if cand is not None else None,
                )
            )
    return summaries


@dataclass(frozen=True)
class PairwiseSummary:
    """The `pairwise` grader's wins, ties and losses of a candidate against its baseline, over
    the cases of one tag (or all of them), with the sign test's p-value (ties left out)."""

    tag: str  # a tag, or ALL_CASES
    baseline_model: str
    candidate_model: str
    wins: int
    ties: int
    losses: int
    unjudged: int  # cases with a pairwise entry the judge could not grade

    @property
    def p_value(self) -> float:
        return sign_test(self.wins, self.losses)


ALL_CASES = "(all cases)"


def pairwise_summaries(results: Sequence[CaseResult]) -> list[PairwiseSummary]:
    """Per (baseline, candidate) pair: all cases, then each tag; [] when no case has pairwise."""
    graded = [result for result in results if result.pairwise is not None and result.candidate is not None]
    summaries: list[PairwiseSummary] = []
    for base, cand in pairs_of(graded):
        assert cand is not None
        mine = [
            result
            for result in graded
            if result.baseline.model == base
            and result.candidate is not None
            and result.candidate.model == cand
        ]
        for tag in (ALL_CASES, *tags_of(mine)):
            subset = mine if tag == ALL_CASES else results_with_tag(mine, tag)
            outcomes = [result.pairwise.outcome for result in subset if result.pairwise is not None]
            summaries.append(
                PairwiseSummary(
                    tag=tag,
                    baseline_model=base,
                    candidate_model=cand,
                    wins=outcomes.count("win"),
                    ties=outcomes.count("tie"),
                    losses=outcomes.count("loss"),
                    unjudged=outcomes.count(None),
                )
            )
    return summaries
