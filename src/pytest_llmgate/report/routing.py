"""The routing recommendation: per tag, which model to send that traffic to, and what it would cost.

An upgrade rarely helps every kind of task, so besides "switch or not" the reports say, per tag:

1. if the candidate's quality is significantly better (Wilcoxon signed-rank p < alpha on the
   paired case scores, mean difference > 0), route to the candidate;
2. if it is significantly worse (p < alpha, difference < 0), route to the baseline;
3. otherwise (no significant difference, or no case both models answered without errors) route
   to the cheaper model by cost per successful task (a model that passed none of the tag's cases
   costs without bound); when the cost is unknown for either model, or equal, to the faster by
   p95 latency; when that is unknown or equal too, to the baseline: there is no evidence to switch.

The default route (untagged traffic, and tags the suite never saw) applies the same rule to all
cases. The blended numbers serve each case by the model its tag routes to (a case with several
tags by its first tag, an untagged case by the default) and compare that with serving every case
by the baseline and every case by the candidate; they are computed by `metrics.summarise`, the
same code as the model table, over the chosen runs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import yaml

from pytest_llmgate.comparison import compare_quality
from pytest_llmgate.metrics import ModelSummary, model_summaries, results_with_tag, summarise
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
    candidate: ModelSummary

    def describe(self) -> str:
        """E.g. "reasoning: candidate (gpt-5.5), +6.1 quality, significant (p = 0.004)"."""
        return f"{self.tag}: {self.role} ({self.model}), {self.reason}"


@dataclass(frozen=True)
class Blend:
    """The suite's numbers if its cases were served as `name` says."""

    name: str  # "routed", "all baseline" or "all candidate"
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
    candidate: str
    routes: tuple[Route, ...]  # one per real tag, sorted by tag
    default: Route
    blends: tuple[Blend, ...]  # routed, all baseline, all candidate

    def route_for(self, result: CaseResult) -> Route:
        """The route serving a case: its first tag's, else the default."""
        if result.tags:
            for route in self.routes:
                if route.tag == result.tags[0]:
                    return route
        return self.default

    def blend(self, name: str) -> Blend:
        return next(blend for blend in self.blends if blend.name == name)


def recommend_routing(results: Sequence[CaseResult], alpha: float = 0.05) -> Routing | None:
    """The recommendation over the cases both models ran; None without a candidate."""
    paired = [result for result in results if result.candidate is not None]
    if not paired:
        return None
    tags = sorted({tag for result in paired for tag in result.tags})
    routes = tuple(decide(tag, results_with_tag(paired, tag), alpha) for tag in tags)
    default = decide(DEFAULT_ROUTE, paired, alpha)
    routing = Routing(
        alpha=alpha,
        baseline=default.baseline.model,
        candidate=default.candidate.model,
        routes=routes,
        default=default,
        blends=(),
    )
    chosen = [_run(result, routing.route_for(result).role) for result in paired]
    blends = (
        _blend("routed", chosen),
        _blend("all baseline", [result.baseline for result in paired]),
        _blend("all candidate", [_run(result, CANDIDATE) for result in paired]),
    )
    return Routing(alpha, routing.baseline, routing.candidate, routes, default, blends)


def _run(result: CaseResult, role: str) -> ModelRun:
    if role == CANDIDATE and result.candidate is not None:
        return result.candidate
    return result.baseline


def _blend(name: str, runs: Sequence[ModelRun]) -> Blend:
    summary = summarise(name, runs)
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


def decide(tag: str, results: Sequence[CaseResult], alpha: float) -> Route:
    """Apply the rule of this module's docstring to the cases of one tag (all with a candidate)."""
    base, cand = model_summaries(results)
    comparison = compare_quality(results)

    def route(role: str, reason: str, significant: bool = False) -> Route:
        return Route(
            tag=tag,
            cases=len(results),
            role=role,
            model=(cand if role == CANDIDATE else base).model,
            reason=reason,
            significant=significant,
            quality_difference=None if comparison is None else comparison.difference,
            wilcoxon_p=None if comparison is None else comparison.wilcoxon_p,
            baseline=base,
            candidate=cand,
        )

    if comparison is not None and comparison.significant(alpha) and comparison.difference != 0:
        role = CANDIDATE if comparison.difference > 0 else BASELINE
        return route(
            role,
            f"{comparison.difference:+.1f} quality, significant (p = {comparison.wilcoxon_p:.2g})",
            significant=True,
        )
    if comparison is None:
        quality = "quality not compared (no case answered by both without errors)"
    else:
        quality = "no significant quality difference"
        quality += f" ({comparison.difference:+.1f}, p = {comparison.wilcoxon_p:.2g})"
    base_cost, cand_cost = _cost_per_success(base), _cost_per_success(cand)
    if base_cost is not None and cand_cost is not None and base_cost != cand_cost:
        cheaper = CANDIDATE if cand_cost < base_cost else BASELINE
        low, high = sorted((base_cost, cand_cost))
        if math.isinf(high):
            other = base if cheaper == CANDIDATE else cand
            return route(cheaper, f"{quality}, {other.model} passed none of these cases")
        return route(cheaper, f"{quality}, {1 - low / high:.0%} cheaper per successful task")
    if base_cost is None or cand_cost is None:
        cost = "cost unknown"
    elif math.isinf(base_cost):
        cost = "neither passed a case"
    else:
        cost = "same cost per successful task"
    base_p95, cand_p95 = base.latency.p95, cand.latency.p95
    if base_p95 is not None and cand_p95 is not None and base_p95 != cand_p95:
        faster = CANDIDATE if cand_p95 < base_p95 else BASELINE
        low, high = sorted((base_p95, cand_p95))
        return route(faster, f"{quality}, {cost}, {1 - low / high:.0%} faster at p95")
    return route(BASELINE, f"{quality}, {cost}, latency no different: no evidence to switch")


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
