"""How a case item's report crosses from an xdist worker to the controller: its result dict and
JUnit properties as JSON text, given back unchanged; any other report left as it is."""

from __future__ import annotations

import copy
import json
import math

from pytest_llmgate.keys import LLM_MARKER, REPORT_ATTRIBUTE
from pytest_llmgate.plugin import PACKED_PROPERTIES, PACKED_RESULT, pack_for_transport, unpack_from_transport
from pytest_llmgate.report.junit import case_properties
from pytest_llmgate.results import CaseResult

from .results_factory import case, sample


def serialized(
    properties: list[tuple[str, object]], result: dict[str, object] | None = None
) -> dict[str, object]:
    """A report as pytest serializes it for xdist (the fields that matter here)."""
    data: dict[str, object] = {
        "nodeid": "llm_a.yaml::c0",
        "when": "call" if result is not None else "teardown",
        "keywords": {"c0": 1, LLM_MARKER: 1, "llm_a.yaml": 1},
        "user_properties": properties,
    }
    if result is not None:
        data[REPORT_ATTRIBUTE] = result
    return data


def round_trip(data: dict[str, object]) -> dict[str, object]:
    pack_for_transport(data)
    wire = json.loads(json.dumps(data))  # what survives transport is plain data (execnet's own types)
    unpack_from_transport(wire)
    return wire


def test_a_case_report_crosses_as_two_strings_and_comes_back_equal() -> None:
    result = case("c0", (sample(), sample(False, cost=None)), sample(latency=12.5), tags=("billing",))
    properties = case_properties(result)
    original = serialized(properties, result.to_dict())
    packed = copy.deepcopy(original)
    pack_for_transport(packed)
    assert isinstance(packed[PACKED_RESULT], str)
    assert isinstance(packed[PACKED_PROPERTIES], str)
    assert REPORT_ATTRIBUTE not in packed
    assert packed["user_properties"] == []

    back = round_trip(copy.deepcopy(original))
    assert back[REPORT_ATTRIBUTE] == original[REPORT_ATTRIBUTE]
    assert back["user_properties"] == properties
    assert all(type(pair) is tuple for pair in back["user_properties"])
    assert [type(value) for _, value in back["user_properties"]] == [type(value) for _, value in properties]
    assert CaseResult.from_dict(back[REPORT_ATTRIBUTE]) == result  # type: ignore[arg-type]


def test_the_teardown_report_carries_the_same_properties() -> None:
    properties = case_properties(case("c0", sample(), sample()))
    assert round_trip(serialized(properties))["user_properties"] == properties


def test_non_finite_numbers_come_back() -> None:
    back = round_trip(serialized([("llm_score", math.inf), ("llm_latency_ms", -math.inf)]))
    assert back["user_properties"] == [("llm_score", math.inf), ("llm_latency_ms", -math.inf)]


def test_properties_json_would_change_are_left_for_execnet() -> None:
    for properties in (
        [("llm_tags", ("a", "b"))],  # a tuple would come back a list
        [("llm_raw", b"bytes")],
        [("llm_map", {1: "one"})],  # an int key would come back a string
    ):
        data = serialized(list(properties))
        pack_for_transport(data)
        assert PACKED_PROPERTIES not in data
        assert data["user_properties"] == properties


def test_reports_of_other_tests_are_left_as_they_are() -> None:
    data = serialized([("x", 1)], {"not": "ours"})
    data["keywords"] = {"test_plain": 1}
    before = copy.deepcopy(data)
    pack_for_transport(data)
    assert data == before
    unpack_from_transport(data)
    assert data == before
