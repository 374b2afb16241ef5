"""The JSON report (`--llm-report=report.json`): the whole run as versioned, documented data.

Its shape is `pytest_llmgate/data/report.schema.json` (JSON Schema draft 2020-12), and
`schema_version` changes whenever a field is renamed, removed or changes meaning. Each entry of
`cases` is `CaseResult.to_dict()` (with its own `version`) plus a few derived fields, so
`CaseResult.from_dict` reads a report's cases back and any report can be rendered again from it.

The output is deterministic: keys sorted, cases and gates in the order of the `RunReport`, floats
that are not finite written as null; the same results give byte-identical text except `created`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from importlib import resources
from typing import Any

from pytest_llmgate.comparison import CONFIDENCE, QualityComparison
from pytest_llmgate.metrics import ModelSummary
from pytest_llmgate.report.checklist import checklist
from pytest_llmgate.report.model import PairReport, RunReport, TagReport, case_blocks
from pytest_llmgate.report.routing import Blend, Route, Routing, routing_yaml
from pytest_llmgate.report.scores import json_scores
from pytest_llmgate.results import CaseResult, ModelRun

SCHEMA_VERSION = 3
SCHEMA_RESOURCE = "report.schema.json"


def load_schema() -> dict[str, Any]:
    """The JSON Schema of the report, as shipped in the package."""
    text = (
        resources.files("pytest_llmgate")
        .joinpath("data")
        .joinpath(SCHEMA_RESOURCE)
        .read_text(encoding="utf-8")
    )
    schema: dict[str, Any] = json.loads(text)
    return schema


def render_json(report: RunReport) -> str:
    """The report as JSON text, ending with a newline."""
    return dumps(_report_data(report)) + "\n"


def report_dict(report: RunReport) -> dict[str, Any]:
    """The report as plain data, exactly as `render_json` writes it."""
    plain: dict[str, Any] = _plain(_report_data(report))
    return plain


def _report_data(report: RunReport) -> dict[str, Any]:
    """The report's data before `_plain` (tuples, non-finite floats): `dumps` makes it plain as it
    writes, so a 2,000-case report is walked once, not twice."""
    alpha = report.settings.alpha
    data = {
        "schema_version": SCHEMA_VERSION,
        "created": report.created,
        "plugin": {"name": "pytest-llmgate", "version": report.plugin_version},
        "baseline": report.baseline,
        "candidate": report.candidate,
        "candidates": list(report.candidates),
        "comparisons": [pair_dict(pair, alpha) for pair in report.pairs],
        "judge": None
        if report.judge is None
        else {"calls": report.judge.calls, "cost_usd": report.judge.cost_usd},
        "settings": report.settings.to_dict(),
        "verdict": {
            "status": report.status,
            "line": report.verdict,
            "failed_gates": list(report.failed_gates),
            "failed_cases": [
                {"file": result.file, "case_id": result.case_id, "outcome": result.outcome}
                for result in report.failed_cases
            ],
        },
        "models": [summary_dict(summary) for summary in report.summaries],
        "output_token_inflation": report.inflation,
        "quality_comparison": comparison_dict(report.comparison, alpha),
        "outcomes": report.outcome_counts(),
        "unpriced_models": list(report.unpriced),
        "tags": [tag_dict(tag, alpha, report.pairs) for tag in report.tags],
        "routing": routing_dict(report.routing),
        "gates": [{"nodeid": nodeid, **check.to_dict()} for nodeid, check in report.gates],
        "cases": [case_dict(result, report) for result in report.results],
        "interrupted": report.interrupted,
        "not_run": list(report.not_run),
        "production": {
            "timeout_s": report.production_timeout_s,
            "concurrency": report.production_concurrency,
        },
        "concurrency": report.run_concurrency,
        "since": None if report.since is None else report.since.to_dict(),
        "checklist": [item.to_dict() for item in checklist(report)],
        **json_scores(report.results),
    }
    return data


def summary_dict(summary: ModelSummary) -> dict[str, Any]:
    latency = summary.latency
    return {
        "model": summary.model,
        "role": summary.role,
        "cases": summary.cases,
        "passed": summary.passed,
        "pass_rate": summary.pass_rate,
        "errors": summary.errors,
        "samples": summary.samples,
        "sample_passes": summary.sample_passes,
        "sample_pass_rate": summary.sample_pass_rate,
        "retries": summary.retries,
        "quality": summary.quality,
        "latency_ms": {
            "calls": latency.calls,
            "mean": latency.mean,
            "p50": latency.p50,
            "p95": latency.p95,
            "p99": latency.p99,
            "max": latency.max,
        },
        "ttft_ms": {
            "calls": summary.ttft.calls,
            "mean": summary.ttft.mean,
            "p50": summary.ttft.p50,
            "p95": summary.ttft.p95,
            "p99": summary.ttft.p99,
            "max": summary.ttft.max,
        },
        "prompt_tokens": summary.prompt_tokens,
        "completion_tokens": summary.completion_tokens,
        "cost_usd": summary.cost_usd,
        "input_cost_usd": summary.input_cost_usd,
        "output_cost_usd": summary.output_cost_usd,
        "cost_per_success": summary.cost_per_success,
        "cost_per_case": summary.cost_per_case,
        "input_cost_per_1k": summary.input_cost_per_1k,
        "output_cost_per_1k": summary.output_cost_per_1k,
        "versus": summary.versus,
    }


def pair_dict(pair: PairReport, alpha: float) -> dict[str, Any]:
    return {
        "baseline": pair.baseline,
        "candidate": pair.candidate,
        "status": pair.status,
        "line": pair.verdict,
        "failed_gates": list(pair.failed_gates),
        "failed_cases": [f"{result.file}::{result.case_id}" for result in pair.failed_cases],
        "models": [summary_dict(summary) for summary in pair.summaries],
        "quality_comparison": comparison_dict(pair.comparison, alpha),
        "output_token_inflation": pair.inflation,
    }


def comparison_dict(comparison: QualityComparison | None, alpha: float) -> dict[str, Any] | None:
    if comparison is None:
        return None
    return {
        **comparison.numbers(),
        "confidence": CONFIDENCE,
        "alpha": alpha,
        "significant": comparison.significant(alpha),
    }


def tag_dict(tag: TagReport, alpha: float, pairs: tuple[PairReport, ...] = ()) -> dict[str, Any]:
    return {
        "tag": tag.tag,
        "cases": tag.cases,
        "models": [summary_dict(summary) for summary in tag.summaries],
        "quality_comparison": comparison_dict(tag.comparison, alpha),
        "comparisons": [
            {
                "baseline": pair.baseline,
                "candidate": pair.candidate,
                "quality_comparison": comparison_dict(comparison, alpha),
            }
            for pair, comparison in zip(pairs, tag.comparisons, strict=False)
        ],
    }


def _route_side(summary: ModelSummary) -> dict[str, Any]:
    return {
        "model": summary.model,
        "quality": summary.quality,
        "cost_per_success": summary.cost_per_success,
        "p95_ms": summary.latency.p95,
    }


def route_dict(route: Route) -> dict[str, Any]:
    return {
        "tag": route.tag,
        "cases": route.cases,
        "role": route.role,
        "model": route.model,
        "reason": route.reason,
        "significant": route.significant,
        "quality_difference": route.quality_difference,
        "wilcoxon_p": route.wilcoxon_p,
        "baseline": _route_side(route.baseline),
        "candidate": _route_side(route.candidate),
        "models": [_route_side(summary) for summary in route.models],
    }


def blend_dict(blend: Blend) -> dict[str, Any]:
    return {
        "name": blend.name,
        "cases": blend.cases,
        "passed": blend.passed,
        "pass_rate": blend.pass_rate,
        "quality": blend.quality,
        "cost_usd": blend.cost_usd,
        "cost_per_success": blend.cost_per_success,
        "latency_mean_ms": blend.latency_mean_ms,
        "latency_p95_ms": blend.latency_p95_ms,
    }


def routing_dict(routing: Routing | None) -> dict[str, Any] | None:
    if routing is None:
        return None
    return {
        "alpha": routing.alpha,
        "baseline": routing.baseline,
        "candidate": routing.candidate,
        "routes": [route_dict(route) for route in routing.routes],
        "default": route_dict(routing.default),
        "blends": [blend_dict(blend) for blend in routing.blends],
        "yaml": routing_yaml(routing),
    }


def _run_dict(run: ModelRun, data: dict[str, Any]) -> dict[str, Any]:
    """`data`, the run's `to_dict()` inside its case's, plus the run's cost and error flag."""
    data["cost_usd"] = run.cost_usd
    data["errored"] = run.errored
    return data


def case_dict(result: CaseResult, report: RunReport) -> dict[str, Any]:
    """`CaseResult.to_dict()` plus each run's cost and whether the case blocks the upgrade."""
    data = result.to_dict()
    data["baseline"] = _run_dict(result.baseline, data["baseline"])
    if result.candidate is not None:
        data["candidate"] = _run_dict(result.candidate, data["candidate"])
    data["blocking"] = case_blocks(result, report.settings)
    data["route"] = None if report.routing is None else report.routing.route_for(result).model
    return data


def dumps(value: Any) -> str:
    """`json.dumps(_plain(value), sort_keys=True, indent=2, ensure_ascii=False)`, byte for byte.

    The standard library writes indented JSON with its pure-Python encoder (its C encoder cannot
    indent), whose generators hand every piece of text up through each level of nesting: 0.3 s
    for the 9 MB of a 2,000-case report. This appends the same text to one list, making the data
    plain (`_plain`) on the way, and reuses what repeats from case to case: each key's text and
    the sorted order of each set of keys. `tests/unit/test_report_json.py` checks it against
    `json.dumps`.
    """
    out: list[str] = []
    _Writer(out).write(value, 0)
    return "".join(out)


_encode_string = json.encoder.encode_basestring  # the C function json.dumps uses (ensure_ascii=False)


class _Writer:
    """One `dumps` call: its output and what it has learnt about the keys so far."""

    def __init__(self, out: list[str]) -> None:
        self.out = out
        self.newlines: list[str] = []  # per level: a newline and its indent
        self.prefixes: list[dict[str, str]] = []  # per level: key -> ',\n  "key": '
        self.orders: dict[tuple[Any, ...], list[str]] = {}  # a dict's keys -> them sorted

    def write(self, value: Any, level: int) -> None:
        """Append `value` at nesting `level`; the scalars in a container are written in its loop
        (a call per value would cost a third of the time)."""
        out = self.out
        while len(self.newlines) <= level + 1:
            self.newlines.append("\n" + "  " * len(self.newlines))
            self.prefixes.append({})
        if isinstance(value, Mapping):
            if not value:
                out.append("{}")
                return
            keys = None
            if type(value) is dict:
                shape = tuple(value)
                keys = self.orders.get(shape)
                if keys is None and all(type(key) is str for key in shape):
                    keys = self.orders[shape] = sorted(shape)
            if keys is None:  # as `_plain` makes it: keys as text
                value = {str(key): item for key, item in value.items()}
                keys = sorted(value)
            prefixes = self.prefixes[level + 1]
            inner = self.newlines[level + 1]
            start = len(out)
            for key in keys:
                prefix = prefixes.get(key)
                if prefix is None:
                    prefix = prefixes[key] = "," + inner + _encode_string(key) + ": "
                out.append(prefix)
                item = value[key]
                kind = type(item)
                if kind is str:
                    out.append(_encode_string(item))
                elif item is None:
                    out.append("null")
                elif kind is float:
                    out.append(repr(item) if math.isfinite(item) else "null")
                elif item is True:
                    out.append("true")
                elif item is False:
                    out.append("false")
                elif kind is int:
                    out.append(repr(item))
                else:
                    self.write(item, level + 1)
            out[start] = "{" + out[start][1:]
            out.append(self.newlines[level] + "}")
        elif isinstance(value, list | tuple):
            if not value:
                out.append("[]")
                return
            inner = self.newlines[level + 1]
            separator = "," + inner
            start = len(out)
            for item in value:
                out.append(separator)
                kind = type(item)
                if kind is str:
                    out.append(_encode_string(item))
                elif item is None:
                    out.append("null")
                elif kind is float:
                    out.append(repr(item) if math.isfinite(item) else "null")
                elif item is True:
                    out.append("true")
                elif item is False:
                    out.append("false")
                elif kind is int:
                    out.append(repr(item))
                else:
                    self.write(item, level + 1)
            out[start] = "[" + inner
            out.append(self.newlines[level] + "]")
        elif value is None:
            out.append("null")
        elif value is True:
            out.append("true")
        elif value is False:
            out.append("false")
        elif isinstance(value, int):
            out.append(int.__repr__(value))
        elif isinstance(value, float):
            out.append(float.__repr__(value) if math.isfinite(value) else "null")
        else:  # text, and what `_plain` writes as text
            out.append(_encode_string(value if isinstance(value, str) else str(value)))


def _plain(value: Any) -> Any:
    """JSON-ready data: tuples as lists, non-finite floats as null, unknown objects as text."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return str(value)
