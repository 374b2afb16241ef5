"""The routing recommendation: per tag, which model to send that traffic to, and what it would cost.

An upgrade rarely helps every kind of task, so besides "switch or not" the reports say, per tag:

1. if the candidate's quality is significantly better (Wilcoxon signed-rank p < alpha on the
   paired case scores, mean difference > 0), route to the candidate;
2. if it is significantly worse (p < alpha, difference < 0), route to the baseline;
3. otherwise (no significant difference, or no case both models answered without errors) route
   to the cheaper model by cost per successful task (a model that passed none of the tag's cases
   costs without bound); when the cost is unknown for either model, or equal, to the faster by
   p95 latency; when that is unknown or equal too, to the baseline: there is no evidence to switch.

With several candidates the route chooses among all models: a candidate significantly better
than the baseline wins (the largest difference among several); candidates significantly worse
drop out; the rest and the baseline compete on cost per successful task, then p95 latency, and
a tie keeps the baseline (or the first of the tied, when the baseline is not among them).

The default route (untagged traffic, and tags the suite never saw) applies the same rule to all
cases. The blended numbers serve each case by the model its tag routes to (a case with several
tags by its first tag, an untagged case by the default) and compare that with serving every case
by the baseline and every case by each candidate; they are computed by `metrics.summarise`, the
same code as the model table, over the chosen runs. Results of different baselines get no
recommendation: there is no one model to route away from.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import yaml

from pytest_llmgate.comparison import QualityComparison
from pytest_llmgate.metrics import ModelSummary, baseline_runs, pairs_of, results_with_tag
from pytest_llmgate.report.memo import Memo
from pytest_llmgate.results import CaseResult, ModelRun

BASELINE, CANDIDATE = "baseline", "candidate"
DEFAULT_ROUTE = "(default)"


@dataclass(frozen=True)
class Route:
    """Where one tag's traffic should go, and the evidence for it."""

    tag: str
    cases: int
    role: str  # baseline or candidate
    model: str
    reason: str  # e.g. "+6.1 quality, significant (p = 0.004)"
    significant: bool
    quality_difference: float | None  # candidate - baseline, points; None: not compared
    wilcoxon_p: float | None
    baseline: ModelSummary
    candidate: ModelSummary  # the chosen candidate, else the best one compared with the baseline
    models: tuple[ModelSummary, ...] = ()  # every model that competed: baseline, then candidates

    def describe(self) -> str:
        """E.g. "reasoning: candidate (gpt-5.5), +6.1 quality, significant (p = 0.004)"."""
        return f"{self.tag}: {self.role} ({self.model}), {self.reason}"


@dataclass(frozen=True)
class Blend:
    """The suite's numbers if its cases were served as `name` says."""

    name: str  # "routed", "all baseline", "all candidate" (or "all <model>" with several)
    cases: int
    passed: int
    quality: float | None  # 0-100
    cost_usd: float | None
    latency_mean_ms: float | None
    latency_p95_ms: float | None

    @property
    def pass_rate(self) -> float | None:
        return self.passed / self.cases if self.cases else None

    @property
    def cost_per_success(self) -> float | None:
        if self.cost_usd is None or not self.passed:
            return None
        return self.cost_usd / self.passed


@dataclass(frozen=True)
class Routing:
    """Per-tag routes, the default route and the blended numbers of routing vs each model alone."""

    alpha: float
    baseline: str
    candidate: str  # the candidates, comma-separated when several
    routes: tuple[Route, ...]  # one per real tag, sorted by tag
    default: Route
    blends: tuple[Blend, ...]  # routed, all baseline, then all of each candidate

    def route_for(self, result: CaseResult) -> Route:
        """The route serving a case: its first tag's, else the default."""
        if result.tags:
            for route in self.routes:
                if route.tag == result.tags[0]:
                    return route
        return self.default

    def blend(self, name: str) -> Blend:
        return next(blend for blend in self.blends if blend.name == name)


def recommend_routing(
    results: Sequence[CaseResult], alpha: float = 0.05, memo: Memo | None = None
) -> Routing | None:
    """The recommendation over the cases the candidates ran; None without a candidate or with
    several baselines. `memo`: the report's, which has summarised most of these runs already."""
    paired = [result for result in results if result.candidate is not None]
    if not paired or len({result.baseline.model for result in paired}) > 1:
        return None
    memo = Memo() if memo is None else memo
    candidates = _candidates(paired)
    tags = sorted({tag for result in paired for tag in result.tags})
    routes = tuple(decide(tag, results_with_tag(paired, tag), alpha, memo) for tag in tags)
    default = decide(DEFAULT_ROUTE, paired, alpha, memo)
    routing = Routing(
        alpha=alpha,
        baseline=default.baseline.model,
        candidate=", ".join(candidates),
        routes=routes,
        default=default,
        blends=(),
    )
    by_case: dict[tuple[str, str], dict[str, ModelRun]] = {}
    first: dict[tuple[str, str], CaseResult] = {}
    for result in paired:
        key = (result.file_nodeid or result.file, result.case_id)
        first.setdefault(key, result)
        runs = by_case.setdefault(key, {})
        assert result.candidate is not None
        runs[result.candidate.model] = result.candidate
    chosen = []
    for key, result in first.items():
        route = routing.route_for(result)
        runs = by_case[key]
        chosen.append(runs.get(route.model, result.baseline) if route.role == CANDIDATE else result.baseline)
    blends = [
        _blend("routed", chosen, memo),
        _blend("all baseline", [result.baseline for result in first.values()], memo),
    ]
    for model in candidates:
        name = "all candidate" if len(candidates) == 1 else f"all {model}"
        blends.append(_blend(name, [runs[model] for runs in by_case.values() if model in runs], memo))
    return Routing(alpha, routing.baseline, routing.candidate, routes, default, tuple(blends))


def _candidates(results: Sequence[CaseResult]) -> list[str]:
    return [cand for _, cand in pairs_of(results) if cand is not None]


def _blend(name: str, runs: Sequence[ModelRun], memo: Memo) -> Blend:
    summary = memo.summarise(name, runs)
    return Blend(
        name=name,
        cases=summary.cases,
        passed=summary.passed,
        quality=summary.quality,
        cost_usd=summary.cost_usd,
        latency_mean_ms=summary.latency.mean,
        latency_p95_ms=summary.latency.p95,
    )


def _cost_per_success(summary: ModelSummary) -> float | None:
    """Cost per successful task; infinite when the cost is known but no case passed."""
    if summary.cost_usd is None:
        return None
    return summary.cost_usd / summary.passed if summary.passed else math.inf


@dataclass(frozen=True)
class _Option:
    """A model competing for a tag's traffic; `comparison` is None for the baseline."""

    role: str
    summary: ModelSummary
    comparison: QualityComparison | None


def decide(tag: str, results: Sequence[CaseResult], alpha: float, memo: Memo | None = None) -> Route:
    """Apply the rule of this module's docstring to the cases of one tag (all with a candidate)."""
    memo = Memo() if memo is None else memo
    base = _Option(BASELINE, memo.summarise(BASELINE, baseline_runs(results)), None)
    candidates = []
    for model in _candidates(results):
        mine = [
            result for result in results if result.candidate is not None and result.candidate.model == model
        ]
        runs = [result.candidate for result in mine if result.candidate is not None]
        candidates.append(_Option(CANDIDATE, memo.summarise(CANDIDATE, runs), memo.compare(mine)))
    models = tuple(option.summary for option in (base, *candidates))
    cases = len({(result.file_nodeid or result.file, result.case_id) for result in results})

    def route(chosen: _Option, reason: str, significant: bool = False) -> Route:
        compared = chosen if chosen.comparison is not None or not candidates else _best(candidates)
        comparison = compared.comparison
        return Route(
            tag=tag,
            cases=cases,
            role=chosen.role,
            model=chosen.summary.model,
            reason=reason,
            significant=significant,
            quality_difference=None if comparison is None else comparison.difference,
            wilcoxon_p=None if comparison is None else comparison.wilcoxon_p,
            baseline=base.summary,
            candidate=compared.summary,
            models=models,
        )

    better = [option for option in candidates if _significant(option, alpha) and _difference(option) > 0]
    if better:
        best = _best(better)
        assert best.comparison is not None
        return route(best, _significant_reason(best.comparison), significant=True)
    eligible = [option for option in candidates if not _significant(option, alpha)]
    if candidates and not eligible:  # every candidate significantly worse: the baseline stays
        best = _best(candidates)
        assert best.comparison is not None
        chosen = route(base, _significant_reason(best.comparison), significant=True)
        return chosen
    quality = _quality_phrase(eligible)
    contenders = [base, *eligible]
    costs = [_cost_per_success(option.summary) for option in contenders]
    known = [cost for cost in costs if cost is not None]
    if len(known) == len(costs):
        lowest = min(known)
        cheapest = [option for option, cost in zip(contenders, known, strict=True) if cost == lowest]
        if len(cheapest) == 1:
            others = [
                cost for option, cost in zip(contenders, known, strict=True) if option is not cheapest[0]
            ]
            runner_up = min(others)
            if math.isinf(runner_up):
                losers = ", ".join(option.summary.model for option in contenders if option is not cheapest[0])
                return route(cheapest[0], f"{quality}, {losers} passed none of these cases")
            return route(cheapest[0], f"{quality}, {1 - lowest / runner_up:.0%} cheaper per successful task")
        contenders = cheapest
        if math.isinf(lowest):
            cost = "neither passed a case" if len(cheapest) == 2 else "none passed a case"
        else:
            cost = "same cost per successful task"
    else:
        cost = "cost unknown"
    latencies = [option.summary.latency.p95 for option in contenders]
    measured = [value for value in latencies if value is not None]
    if len(measured) == len(latencies) and len(set(measured)) > 1:
        low = min(measured)
        fastest = [option for option, value in zip(contenders, measured, strict=True) if value == low]
        if len(fastest) == 1:
            high = min(
                value for option, value in zip(contenders, measured, strict=True) if option is not fastest[0]
            )
            return route(fastest[0], f"{quality}, {cost}, {1 - low / high:.0%} faster at p95")
        contenders = fastest
    if base in contenders:
        return route(base, f"{quality}, {cost}, latency no different: no evidence to switch")
    return route(contenders[0], f"{quality}, {cost}, latency no different: the first of the tied")


def _difference(option: _Option) -> float:
    return option.comparison.difference if option.comparison is not None else 0.0


def _significant(option: _Option, alpha: float) -> bool:
    comparison = option.comparison
    return comparison is not None and comparison.significant(alpha) and comparison.difference != 0


def _best(options: Sequence[_Option]) -> _Option:
    """The candidate with the largest quality difference (the first of equals)."""
    return max(options, key=lambda option: -math.inf if option.comparison is None else _difference(option))


def _significant_reason(comparison: QualityComparison) -> str:
    return f"{comparison.difference:+.1f} quality, significant (p = {comparison.wilcoxon_p:.2g})"


def _quality_phrase(candidates: Sequence[_Option]) -> str:
    """Why quality did not decide: one candidate's numbers, or each candidate's by name."""
    compared = [option for option in candidates if option.comparison is not None]
    if not compared:
        return "quality not compared (no case answered by both without errors)"

    def numbers(option: _Option) -> str:
        assert option.comparison is not None
        return f"{option.comparison.difference:+.1f}, p = {option.comparison.wilcoxon_p:.2g}"

    if len(candidates) == 1:
        return f"no significant quality difference ({numbers(compared[0])})"
    return (
        "no significant quality difference ("
        + "; ".join(f"{option.summary.model} {numbers(option)}" for option in compared)
        + ")"
    )


def routing_yaml(routing: Routing) -> str:
    """The routes as a small YAML table for a router's configuration, with the reasons as comments.

    `routes` maps each tag to a model name; `default` serves untagged traffic and unseen tags.
    """
    lines = [
        f"# pytest-llmgate routing recommendation: {routing.candidate} vs {routing.baseline}, "
        f"alpha {routing.alpha:g}",
        *(f"# {_one_line(route.describe())}" for route in (*routing.routes, routing.default)),
    ]
    document = {
        "routes": {route.tag: route.model for route in routing.routes},
        "default": routing.default.model,
    }
    body = yaml.safe_dump(document, sort_keys=False, default_flow_style=False, allow_unicode=True)
    return "\n".join(lines) + "\n" + body


def _one_line(text: str) -> str:
    return " ".join(text.split())
