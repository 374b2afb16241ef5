"""The routing recommendation: which model per tag, why, and the blended numbers of that routing."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from pytest_llmgate.report.routing import (
    BASELINE,
    CANDIDATE,
    DEFAULT_ROUTE,
    Route,
    recommend_routing,
    routing_yaml,
)
from pytest_llmgate.results import CaseResult

from .results_factory import case, sample, upgrade_suite


def _routes(results: list[CaseResult], alpha: float = 0.05) -> dict[str, tuple[str, str]]:
    routing = recommend_routing(results, alpha)
    assert routing is not None
    return {route.tag: (route.role, route.reason) for route in (*routing.routes, routing.default)}


def test_significantly_better_candidate_gets_the_tag_cheaper_baseline_keeps_the_other() -> None:
    routes = _routes(upgrade_suite())
    # six cases +50 points each: exact Wilcoxon p = 2 / 2**6 = 0.031 < 0.05
    assert routes["reasoning"] == (CANDIDATE, "+50.0 quality, significant (p = 0.031)")
    # 0, 0, 0, 0, -100: one non-zero difference is no evidence (p = 1); cost per successful task
    # $0.015 / 5 = $0.003 against $0.025 / 4 = $0.00625: the baseline is 52% cheaper
    assert routes["extraction"] == (
        BASELINE,
        "no significant quality difference (-20.0, p = 1), 52% cheaper per successful task",
    )
    # all 11 cases: +18.2 points but p = 0.36; $0.0066 vs $0.0073 per success: 10% cheaper
    assert routes[DEFAULT_ROUTE] == (
        BASELINE,
        "no significant quality difference (+18.2, p = 0.36), 10% cheaper per successful task",
    )


def test_blended_numbers_serve_each_case_by_its_route() -> None:
    routing = recommend_routing(upgrade_suite())
    assert routing is not None
    routed, baseline, candidate = routing.blends
    assert [blend.name for blend in routing.blends] == ["routed", "all baseline", "all candidate"]
    # reasoning on gpt-5.5 (6 x $0.008, 1320 ms), extraction on gpt-4o (5 x $0.003, 300 ms)
    assert (routed.cases, routed.passed, routed.quality) == (11, 11, pytest.approx(100.0))
    assert routed.cost_usd == pytest.approx(0.063)
    assert routed.cost_per_success == pytest.approx(0.063 / 11)
    assert routed.latency_mean_ms == pytest.approx((6 * 1320 + 5 * 300) / 11)
    assert routed.latency_p95_ms == pytest.approx(1320)
    assert (baseline.passed, baseline.quality) == (5, pytest.approx(800 / 11))
    assert baseline.cost_per_success == pytest.approx(0.0066)
    assert (candidate.passed, candidate.quality) == (10, pytest.approx(1000 / 11))
    assert candidate.cost_per_success == pytest.approx(0.0073)
    assert routed.cost_per_success < min(baseline.cost_per_success or 0, candidate.cost_per_success or 0)


def test_significantly_worse_candidate_keeps_the_baseline_even_when_cheaper() -> None:
    cheap = (0.0001, 0.0001)
    results = [
        case(f"c{i}", sample(True), sample(False, score=0.2, cost=cheap), tags=("summaries",))
        for i in range(6)
    ]
    role, reason = _routes(results)["summaries"]
    assert role == BASELINE
    assert reason == "-80.0 quality, significant (p = 0.031)"


def test_no_price_routes_to_the_faster_model_at_p95() -> None:
    results = [
        case(
            f"c{i}",
            sample(True, latency=1000, cost=None),
            sample(True, latency=250, cost=None),
            tags=("chat",),
        )
        for i in range(3)
    ]
    assert _routes(results)[DEFAULT_ROUTE] == (
        CANDIDATE,
        "no significant quality difference (+0.0, p = 1), cost unknown, 75% faster at p95",
    )


def test_no_evidence_either_way_stays_on_the_baseline() -> None:
    results = [case(f"c{i}", sample(True), sample(True), tags=("chat",)) for i in range(3)]
    role, reason = _routes(results)["chat"]
    assert role == BASELINE
    assert reason.endswith("same cost per successful task, latency no different: no evidence to switch")


def test_candidate_passing_nothing_is_never_cheaper() -> None:
    # two cases are too few for significance; the candidate is cheaper per call but passed none
    results = [
        case(f"c{i}", sample(True), sample(False, cost=(0.0001, 0.0001)), tags=("math",)) for i in range(2)
    ]
    assert _routes(results)["math"] == (
        BASELINE,
        "no significant quality difference (-100.0, p = 0.5), cand passed none of these cases",
    )


def test_alpha_decides_what_counts_as_significant() -> None:
    # p = 0.031 >= 0.01: not significant, so cost decides, and the baseline passed no reasoning case
    assert _routes(upgrade_suite(), alpha=0.01)["reasoning"] == (
        CANDIDATE,
        "no significant quality difference (+50.0, p = 0.031), gpt-4o passed none of these cases",
    )


def test_a_case_with_several_tags_is_served_by_its_first_tag_untagged_by_the_default() -> None:
    better = [case(f"b{i}", sample(False), sample(True), tags=("hard",)) for i in range(6)]
    both = case("both", sample(True, latency=10), sample(True, latency=20), tags=("hard", "easy"))
    easy = case("easy", sample(True, latency=10), sample(True, latency=20), tags=("easy",))
    untagged = case("plain", sample(True, latency=10), sample(True, latency=20))
    routing = recommend_routing([*better, both, easy, untagged])
    assert routing is not None
    assert {route.tag: route.role for route in routing.routes} == {"easy": BASELINE, "hard": CANDIDATE}
    assert routing.route_for(both).tag == "hard"
    assert routing.route_for(easy).tag == "easy"
    assert routing.route_for(untagged).tag == DEFAULT_ROUTE
    routed = routing.blend("routed")
    # 6 "hard" and "both" on the candidate (20 ms for "both"), "easy" on the baseline, "plain" by default
    default_latency = 20.0 if routing.default.role == CANDIDATE else 10.0
    expected = (6 * 100 + 20 + 10 + default_latency) / 9
    assert routed.latency_mean_ms == pytest.approx(expected)


def test_routing_yaml_is_a_routing_table_with_the_reasons_as_comments() -> None:
    routing = recommend_routing(upgrade_suite())
    assert routing is not None
    text = routing_yaml(routing)
    assert yaml.safe_load(text) == {
        "routes": {"extraction": "gpt-4o", "reasoning": "gpt-5.5"},
        "default": "gpt-4o",
    }
    assert text.splitlines()[0] == "# pytest-llmgate routing recommendation: gpt-5.5 vs gpt-4o, alpha 0.05"
    assert "# reasoning: candidate (gpt-5.5), +50.0 quality, significant (p = 0.031)" in text.splitlines()


def test_routing_yaml_quotes_awkward_tags() -> None:
    results = [case(f"c{i}", sample(True), sample(True), tags=("yes", "a: b")) for i in range(2)]
    routing = recommend_routing(results)
    assert routing is not None
    assert yaml.safe_load(routing_yaml(routing))["routes"] == {"yes": "base", "a: b": "base"}


def test_no_candidate_no_routing() -> None:
    result = case("a", sample(True), sample(True))
    baseline_only = CaseResult(result.file, "a", (), result.baseline, None, "passed")
    assert recommend_routing([baseline_only]) is None


# --- several candidates: the route chooses among all models ----------------------------------


def _three_models(
    per_model: dict[str, tuple[bool, float, tuple[float, float]]], count: int = 6, tag: str = "chat"
) -> list[CaseResult]:
    """`count` cases on baseline "base" (passes, score 0.5, $0.002, 500 ms) with each candidate
    answering as `per_model` says: (passes, score, cost); results of a case share its baseline run."""
    results = []
    for i in range(count):
        base = sample(True, score=0.5, latency=500, cost=(0.001, 0.001))
        first = None
        for model, (passed, score, cost) in per_model.items():
            result = case(
                f"c{i}", base, sample(passed, score=score, cost=cost), tags=(tag,), cand_model=model
            )
            if first is not None:
                result = dataclasses.replace(result, baseline=first.baseline)
            first = first or result
            results.append(result)
    return results


def test_the_significantly_better_candidate_with_the_larger_gain_wins() -> None:
    results = _three_models({"good": (True, 0.8, (0.01, 0.01)), "best": (True, 1.0, (0.02, 0.02))})
    routing = recommend_routing(results)
    assert routing is not None
    route = routing.routes[0]
    assert (route.role, route.model, route.reason) == (
        CANDIDATE,
        "best",
        "+50.0 quality, significant (p = 0.031)",
    )
    assert [summary.model for summary in route.models] == ["base", "good", "best"]
    assert route.baseline.cases == 6  # the shared baseline run counted once per case
    assert routing.candidate == "good, best"


def test_a_significantly_worse_candidate_drops_out_and_the_cheapest_of_the_rest_wins() -> None:
    # "worse" is the cheapest of all but significantly worse; "cheap" is as good and cheaper than base
    results = _three_models({"worse": (False, 0.0, (0.0001, 0.0001)), "cheap": (True, 0.5, (0.0005, 0.0005))})
    route = _route(results, "chat")
    assert (route.role, route.model) == (CANDIDATE, "cheap")
    assert route.reason == (
        "no significant quality difference (+0.0, p = 1), 50% cheaper per successful task"
    )


def test_every_candidate_significantly_worse_keeps_the_baseline() -> None:
    results = _three_models({"bad": (False, 0.0, (0.0, 0.0001)), "worse": (False, 0.1, (0.0, 0.0001))})
    route = _route(results, "chat")
    assert (route.role, route.model, route.significant) == (BASELINE, "base", True)
    assert route.reason == "-40.0 quality, significant (p = 0.031)"  # the least bad candidate's numbers


def test_blends_serve_each_case_by_its_routed_model_and_each_candidate_alone() -> None:
    results = _three_models({"same": (True, 0.5, (0.001, 0.001)), "cheap": (True, 0.5, (0.0005, 0.0005))})
    routing = recommend_routing(results)
    assert routing is not None
    assert [blend.name for blend in routing.blends] == ["routed", "all baseline", "all same", "all cheap"]
    routed, base, same, cheap = routing.blends
    assert routing.default.model == "cheap"
    assert (routed.cases, routed.cost_usd) == (6, pytest.approx(6 * 0.001))
    assert routed == dataclasses.replace(cheap, name="routed")
    assert base.cost_usd == same.cost_usd == pytest.approx(6 * 0.002)
    assert "no significant quality difference (same +0.0, p = 1; cheap +0.0, p = 1)" in routing.default.reason


def test_results_of_different_baselines_get_no_routing() -> None:
    other = [
        dataclasses.replace(result, baseline=dataclasses.replace(result.baseline, model="other"))
        for result in upgrade_suite()[:2]
    ]
    assert recommend_routing([*upgrade_suite(), *other]) is None


def _route(results: list[CaseResult], tag: str) -> Route:
    routing = recommend_routing(results)
    assert routing is not None
    return next(route for route in routing.routes if route.tag == tag)
