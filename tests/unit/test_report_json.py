"""The JSON report: valid against its shipped schema, complete, deterministic, readable back."""

from __future__ import annotations

import dataclasses
import json
import random
from datetime import datetime, timezone
from typing import Any

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_llmgate.report.json_report import (
    SCHEMA_VERSION,
    _plain,
    dumps,
    load_schema,
    render_json,
    report_dict,
)
from pytest_llmgate.report.model import build_report
from pytest_llmgate.results import CaseResult, Outcome, Sample

from .results_factory import (
    UPGRADE_CREATED,
    case,
    sample,
    two_candidate_report,
    upgrade_report,
    upgrade_suite,
)


def _validator() -> jsonschema.Draft202012Validator:
    schema = load_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _validate(data: Any) -> None:
    errors = sorted(_validator().iter_errors(data), key=lambda error: list(error.absolute_path))
    assert not errors, "\n".join(f"{list(error.absolute_path)}: {error.message}" for error in errors)


def test_the_report_validates_against_the_shipped_schema() -> None:
    data = json.loads(render_json(upgrade_report()))
    assert data["schema_version"] == SCHEMA_VERSION == 3
    _validate(data)


def test_the_schema_is_strict_about_unknown_fields() -> None:
    data = json.loads(render_json(upgrade_report()))
    data["cases"][0]["baseline"]["samples"][0]["surprise"] = 1
    with pytest.raises(jsonschema.ValidationError, match="surprise"):
        jsonschema.validate(data, load_schema(), cls=jsonschema.Draft202012Validator)
    del data["cases"][0]["baseline"]["samples"][0]["surprise"]
    data["verdict"]["status"] = "MAYBE"
    assert not _validator().is_valid(data)


def test_verdict_summaries_and_routing_carry_the_numbers() -> None:
    data = report_dict(upgrade_report())
    assert data["verdict"] == {
        "status": "BLOCKED",
        "line": (
            "BLOCKED: gpt-5.5 vs gpt-4o, p95 latency 1320 ms (+65%), 1 case regressed, "
            "quality +18.2 (p = 0.36)"
        ),
        "failed_gates": ["llm_x.yaml::gate[latency]"],
        "failed_cases": [{"file": "llm_x.yaml", "case_id": "e5", "outcome": "regression"}],
    }
    assert (data["baseline"], data["candidate"], data["created"]) == (
        "gpt-4o",
        "gpt-5.5",
        "2025-06-01T12:00:00Z",
    )
    base, cand = data["models"]
    assert (base["model"], base["role"], base["cases"], base["passed"]) == ("gpt-4o", "baseline", 11, 5)
    assert base["cost_per_success"] == pytest.approx(0.0066)
    assert cand["cost_per_success"] == pytest.approx(0.0073)
    assert cand["latency_ms"]["p95"] == pytest.approx(1320)
    assert cand["quality"] == pytest.approx(1000 / 11)
    assert data["output_token_inflation"] == pytest.approx(122 / 110 - 1)
    assert data["quality_comparison"]["regressed"] == 1
    assert data["quality_comparison"]["improved"] == 6
    assert data["quality_comparison"]["significant"] is False
    assert data["outcomes"] == {"improvement": 6, "passed": 4, "regression": 1}
    assert [tag["tag"] for tag in data["tags"]] == ["extraction", "reasoning"]
    routing = data["routing"]
    assert {route["tag"]: route["model"] for route in routing["routes"]} == {
        "extraction": "gpt-4o",
        "reasoning": "gpt-5.5",
    }
    assert routing["default"]["model"] == "gpt-4o"
    assert routing["blends"][0]["name"] == "routed"
    assert routing["blends"][0]["cost_per_success"] == pytest.approx(0.063 / 11)
    assert "routes:\n  extraction: gpt-4o\n  reasoning: gpt-5.5\ndefault: gpt-4o\n" in routing["yaml"]
    assert [gate["nodeid"] for gate in data["gates"]][2] == "llm_x.yaml::gate[latency]"
    assert data["gates"][2]["status"] == "failed"
    assert data["gates"][2]["metrics"]["latency_increase"] == pytest.approx(0.65)


def test_every_case_sample_assertion_usage_and_cost_is_there() -> None:
    data = report_dict(upgrade_report())
    e5 = next(item for item in data["cases"] if item["case_id"] == "e5")
    assert e5["outcome"] == "regression"
    assert e5["blocking"] is True
    assert e5["route"] == "gpt-4o"
    cand_sample = e5["candidate"]["samples"][0]
    assert cand_sample["assertions"] == [
        {
            "type": "contains",
            "passed": False,
            "score": 0.0,
            "reason": "not found",
            "weight": 1.0,
            "metric": None,
            "at": [],
        }
    ]
    assert cand_sample["latency_ms"] == 400.0
    assert cand_sample["reply"]["usage"]["prompt_tokens"] == 100
    assert cand_sample["reply"]["text"].startswith('Total: <script>alert("x")</script>')
    assert cand_sample["cost_usd"] == pytest.approx(0.005)
    assert e5["candidate"]["cost_usd"] == pytest.approx(0.005)
    assert e5["baseline"]["passed"] is True


def test_cases_read_back_as_case_results() -> None:
    results = upgrade_suite()
    data = json.loads(render_json(upgrade_report(results)))
    assert [CaseResult.from_dict(item) for item in data["cases"]] == sorted(
        results, key=lambda result: result.case_id
    )


def test_same_results_give_byte_identical_json_except_created() -> None:
    results = upgrade_suite()
    first = render_json(upgrade_report(results))
    shuffled = results[:]
    random.Random(7).shuffle(shuffled)
    report = upgrade_report(results)
    second = render_json(build_report(shuffled, dict(reversed(report.gates)), created=UPGRADE_CREATED))
    assert first == second
    later = build_report(
        results, dict(report.gates), created=datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    )
    diff = [
        (old, new)
        for old, new in zip(first.splitlines(), render_json(later).splitlines(), strict=True)
        if old != new
    ]
    assert diff == [('  "created": "2025-06-01T12:00:00Z",', '  "created": "2030-01-02T03:04:05Z",')]
    assert first.endswith("}\n")


def test_unknown_numbers_errors_and_a_baseline_only_run_validate_too() -> None:
    errored = Sample(None, 0.0, False, error="HTTP 500", error_kind="api")
    results = [
        case("a", sample(True, cost=None, prompt=None, completion=None), sample(True, cost=None)),
        case("b", errored, sample(True), tags=("t",)),
    ]
    data = report_dict(build_report(results, {}))
    _validate(data)
    assert data["models"][0]["cost_usd"] is None
    assert data["unpriced_models"] == ["base", "cand"]
    assert data["cases"][1]["baseline"]["samples"][0]["reply"] is None
    baseline_only = [CaseResult("f.yaml", "a", (), results[0].baseline, None, Outcome.PASSED)]
    only = report_dict(build_report(baseline_only, {}))
    _validate(only)
    assert only["candidate"] is None
    assert only["routing"] is None
    assert only["quality_comparison"] is None
    assert len(only["models"]) == 1


def test_non_finite_numbers_are_written_as_null() -> None:
    results = upgrade_suite()
    report = upgrade_report(results)
    gates = dict(report.gates)
    quality = gates["llm_x.yaml::gate[quality]"]
    gates["llm_x.yaml::gate[quality]"] = type(quality)(
        quality.name, quality.status, quality.summary, metrics={"difference": float("nan"), "x": float("inf")}
    )
    data = json.loads(render_json(build_report(results, gates, created=UPGRADE_CREATED)))
    _validate(data)
    assert data["gates"][0]["metrics"] == {"difference": None, "x": None}


def test_several_candidates_validate_with_a_comparison_and_columns_each() -> None:
    data = report_dict(two_candidate_report())
    errors = sorted(jsonschema.Draft202012Validator(load_schema()).iter_errors(data), key=str)
    assert not errors
    assert data["candidates"] == ["gpt-5.5", "o4-mini"]
    assert data["candidate"] == "gpt-5.5, o4-mini"
    assert [(pair["candidate"], pair["status"]) for pair in data["comparisons"]] == [
        ("gpt-5.5", "BLOCKED"),
        ("o4-mini", "PASSED"),
    ]
    assert data["comparisons"][0]["failed_cases"] == ["llm_x.yaml::e5"]
    assert [model["model"] for model in data["comparisons"][1]["models"]] == ["gpt-4o", "o4-mini"]
    assert [model["model"] for model in data["models"]] == ["gpt-4o", "gpt-5.5", "o4-mini"]
    assert len(data["cases"]) == 22
    assert {gate["candidate"] for gate in data["gates"]} == {"gpt-5.5", "o4-mini"}
    assert [len(tag["comparisons"]) for tag in data["tags"]] == [2, 2]
    assert data["quality_comparison"] is None
    assert data["judge"] is None


def test_judge_calls_are_a_field_of_their_own() -> None:
    results = upgrade_suite()
    judged = [
        dataclasses.replace(
            result,
            baseline=dataclasses.replace(
                result.baseline,
                samples=tuple(
                    dataclasses.replace(item, judge_calls=1, judge_cost_usd=0.25)
                    for item in result.baseline.samples
                ),
            ),
        )
        for result in results
    ]
    data = report_dict(upgrade_report(judged))
    assert not list(jsonschema.Draft202012Validator(load_schema()).iter_errors(data))
    assert data["judge"] == {"calls": 11, "cost_usd": pytest.approx(2.75)}
    assert data["cases"][0]["baseline"]["samples"][0]["judge_calls"] == 1
    # The baseline's own cost stays what its calls cost.
    assert data["models"][0]["cost_usd"] == pytest.approx(
        report_dict(upgrade_report())["models"][0]["cost_usd"]
    )


# The writer: the standard library's indented JSON, written faster (issue 17)


def _stdlib(value: Any) -> str:
    return json.dumps(_plain(value), sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False)


class _Text(str):
    """A str subclass, as a StrEnum member is: written by its value, its key by str()."""


_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=8)
    | st.sampled_from(["", "\x00", '"\\', "</script>", "é ☃ \u2028", _Text("sub")])
    | st.datetimes(timezones=st.none())  # not JSON: written as its text, as `_plain` does
)
_keys = st.text(max_size=4) | st.integers(-3, 3) | st.booleans() | st.just(_Text("k"))
_data = st.recursive(
    _scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.lists(children, max_size=3).map(tuple)
        | st.dictionaries(_keys, children, max_size=4)
    ),
    max_leaves=30,
)


@given(_data)
def test_the_writer_writes_what_json_dumps_writes_byte_for_byte(value: Any) -> None:
    assert dumps(value) == _stdlib(value)


def test_the_writer_learns_key_orders_without_mixing_them_up() -> None:
    value = [{"b": 1, "a": [2, {"b": {}, "a": []}]}, {"a": 1, "b": 2}, {"b": 1, "a": 2}, {1: "x", "1": "y"}]
    assert dumps(value) == _stdlib(value)
    deep = {"x": 1.5}
    for _ in range(40):  # deeper than the indents it keeps ready
        deep = {"x": [deep, float("nan")]}
    assert dumps(deep) == _stdlib(deep)


def test_a_whole_report_is_written_as_json_dumps_writes_it() -> None:
    for report in (upgrade_report(), two_candidate_report()):
        assert render_json(report) == _stdlib(report_dict(report)) + "\n"
