"""Each case's numbers as JUnit properties (`--junitxml`), for CI dashboards that read only JUnit.

The plugin adds them to the case item's `user_properties`, which pytest writes as
`<property name="llm_candidate_latency_ms" value="812.0"/>`. Names are `llm_<role>_<number>`
with role `baseline` or `candidate`; a number that is unknown (no usage, no price) is left out,
never written as 0, like the gate items' properties.
"""

from __future__ import annotations

from collections.abc import Sequence

from pytest_llmgate.results import CaseResult, ModelRun, Sample
from pytest_llmgate.stats import mean


def case_properties(result: CaseResult) -> list[tuple[str, object]]:
    """The case's outcome, then per model: model, latency, tokens, cost, score and pass rate."""
    properties: list[tuple[str, object]] = [("llm_outcome", result.outcome)]
    if result.tags:
        properties.append(("llm_tags", ",".join(result.tags)))
    properties.extend(run_properties("baseline", result.baseline))
    if result.candidate is not None:
        properties.extend(run_properties("candidate", result.candidate))
    return properties


def run_properties(role: str, run: ModelRun) -> list[tuple[str, object]]:
    """One model's numbers on a case: latency is the mean over its answered samples, ms.

    Tokens and cost are totals over the samples (what the case cost); score (0-1) and pass rate
    are over the samples too.
    """
    answered = [sample for sample in run.samples if sample.reply is not None]
    values: list[tuple[str, object | None]] = [
        ("model", run.model),
        ("latency_ms", mean([sample.latency_ms for sample in answered])),
        ("prompt_tokens", _total(answered, "prompt_tokens")),
        ("completion_tokens", _total(answered, "completion_tokens")),
        ("cost_usd", run.cost_usd if answered else None),
        ("score", run.score),
        ("pass_rate", run.pass_rate),
        ("passed", run.passed),
        ("samples", len(run.samples)),
    ]
    errors = sum(sample.error is not None for sample in run.samples)
    if errors:
        values.append(("errors", errors))
    return [(f"llm_{role}_{name}", _clean(value)) for name, value in values if value is not None]


def _clean(value: object) -> object:
    """A float without its binary noise: 0.0006425, not 0.0006425000000000001 (12 significant
    digits are more than any price or latency has)."""
    return float(f"{value:.12g}") if isinstance(value, float) else value


def _total(samples: Sequence[Sample], field: str) -> int | None:
    """A usage count summed over the samples; None when any lacks it (a partial sum understates)."""
    counts: list[int | None] = [
        getattr(sample.reply.usage, field) if sample.reply is not None else None for sample in samples
    ]
    known = [count for count in counts if count is not None]
    if not counts or len(known) < len(counts):
        return None
    return sum(known)
