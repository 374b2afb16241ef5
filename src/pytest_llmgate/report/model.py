"""The one `RunReport` every report format renders, and the one-line verdict at its top.

Built once from the results the session already collected (no second run), so the Markdown, the
JSON and the HTML report can never disagree about a number: each format is a pure function of a
`RunReport`. Cases and gates are put in a stable order here (cases by file and id, gates by file
and gate), because an xdist run collects them in whatever order the workers finish.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone

from pytest_llmgate import __version__
from pytest_llmgate.comparison import QualityComparison
from pytest_llmgate.config import GateSettings
from pytest_llmgate.gate import FAILED, GATE_NAMES, GateCheck
from pytest_llmgate.metrics import (
    JudgeSummary,
    ModelSummary,
    format_usd,
    judge_summary,
    model_summaries,
    output_token_inflation,
    pairs_of,
    results_with_tag,
    tags_of,
    unpriced_models,
)
from pytest_llmgate.report.memo import Memo
from pytest_llmgate.report.routing import Routing, recommend_routing
from pytest_llmgate.report.since import RunDelta, run_delta
from pytest_llmgate.results import CaseResult, ModelRun, Outcome

PASSED_VERDICT, BLOCKED_VERDICT, INTERRUPTED_VERDICT = "PASSED", "BLOCKED", "INTERRUPTED"
NOT_RUN_SHOWN = 10  # node ids a one-line message names before "and N more"

BLOCKING_OUTCOMES = (Outcome.REGRESSION, Outcome.BUDGET, Outcome.FAILED, Outcome.ERROR)
"""Outcomes that fail a case item under the default settings, so they block the upgrade.

`already-failing` does not: the baseline fails it too, so it says nothing against the candidate.
A regression of a non-critical case under `per_case: report` does not either: its item is an
xfail and gate[quality] judges it (see `case_blocks`).
"""


@dataclass(frozen=True)
class TagReport:
    """One tag's slice of the run: its cases, each model's summary and the paired comparison."""

    tag: str
    cases: int
    summaries: tuple[ModelSummary, ...]
    comparison: QualityComparison | None  # None with several candidates: see `comparisons`
    comparisons: tuple[QualityComparison | None, ...] = ()  # one per pair of the run, in order


@dataclass(frozen=True)
class PairReport:
    """One (baseline, candidate) comparison of the run: with several candidates (or case files
    naming different baselines) each is judged, and says PASSED or BLOCKED, on its own."""

    baseline: str
    candidate: str | None
    label: str  # how the verdict line names it: the candidate, or "candidate vs baseline"
    results: tuple[CaseResult, ...]
    summaries: tuple[ModelSummary, ...]
    comparison: QualityComparison | None
    inflation: float | None
    gates: tuple[tuple[str, GateCheck], ...]
    failed_gates: tuple[str, ...]
    failed_cases: tuple[CaseResult, ...]
    status: str
    verdict: str  # e.g. "gpt-5.5: BLOCKED, quality -20.0 (p = 0.031)"


@dataclass(frozen=True)
class RunReport:
    """Everything a report shows, computed once."""

    results: tuple[CaseResult, ...]
    gates: tuple[tuple[str, GateCheck], ...]  # (gate node id, check), by file then gate
    baseline: str
    candidate: str | None
    created: str  # ISO 8601, UTC
    plugin_version: str
    settings: GateSettings
    summaries: tuple[ModelSummary, ...]
    comparison: QualityComparison | None
    inflation: float | None
    unpriced: tuple[str, ...]
    tags: tuple[TagReport, ...]
    routing: Routing | None
    failed_gates: tuple[str, ...]  # node ids
    failed_cases: tuple[CaseResult, ...]
    verdict: str  # the one line, e.g. "gpt-5.5 vs gpt-4o: BLOCKED, cost per successful task +42%, ..."
    status: str = field(default=PASSED_VERDICT)  # PASSED, BLOCKED or INTERRUPTED
    interrupted: bool = False  # the session was stopped (Ctrl-C) before every item ran
    not_run: tuple[str, ...] = ()  # node ids of the cases and gates an interrupted session never ran
    pairs: tuple[PairReport, ...] = ()  # each (baseline, candidate) judged on its own
    judge: JudgeSummary | None = None  # the llm-rubric judge's calls and cost; None without any
    production_timeout_s: float | None = None  # llmgate.yaml `production: {timeout_s}`
    production_concurrency: int | None = None  # llmgate.yaml `production: {concurrency}`
    run_concurrency: int | None = None  # the run's --llm-concurrency, times its xdist workers

    @property
    def concurrency(self) -> int | None:
        """The calls in flight the checklist holds against the rate limits: production's, if
        declared, else the run's."""
        return self.production_concurrency or self.run_concurrency

    since: RunDelta | None = None  # what changed since an earlier run (--llm-compare-report)

    @property
    def candidates(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(pair.candidate for pair in self.pairs if pair.candidate is not None))

    @property
    def several(self) -> bool:
        """Whether the run compared more than one (baseline, candidate) pair."""
        return len(self.pairs) > 1

    def column(self, summary: ModelSummary) -> str:
        """How a table heads a model's columns: its role for one pair, else its name."""
        if not self.several:
            return summary.role
        return summary.model + (f" vs {summary.versus}" if summary.versus is not None else "")

    def inflation_of(self, summary: ModelSummary) -> float | None:
        """The output-token inflation of a candidate's row (of its pair with its baseline)."""
        if len(self.pairs) <= 1:
            return self.inflation
        for pair in self.pairs:
            if pair.candidate == summary.model and summary in pair.summaries:
                return pair.inflation
        return None

    @property
    def blocked(self) -> bool:
        """Anything but PASSED: an interrupted run cannot pass an upgrade it did not finish judging."""
        return self.status != PASSED_VERDICT

    @property
    def title(self) -> str:
        return f"{self.candidate} vs {self.baseline}" if self.candidate else self.baseline

    def summary(self, role: str) -> ModelSummary | None:
        return next((summary for summary in self.summaries if summary.role == role), None)

    def outcome_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for result in self.results:
            counts[result.outcome] = counts.get(result.outcome, 0) + 1
        return dict(sorted(counts.items()))


def build_report(
    results: Sequence[CaseResult],
    gates: Mapping[str, GateCheck],
    *,
    baseline: str | None = None,
    candidate: str | None = None,
    settings: GateSettings | None = None,
    created: datetime | None = None,
    plugin_version: str = __version__,
    not_run: Sequence[str] | None = None,
    production_timeout_s: float | None = None,
    previous: Mapping[str, object] | None = None,
    since: RunDelta | None = None,
    production_concurrency: int | None = None,
    run_concurrency: int | None = None,
) -> RunReport:
    """The report of a session: `gates` maps a gate item's node id to its check.

    `baseline` and `candidate` default to the models of the results; `settings` gives the alpha of
    the routing recommendation and `per_case` (the session-wide settings: a file's own `gate:`
    applies to its gate items, which are already judged); `created` defaults to now. `not_run`
    is given when the session was interrupted: the node ids of the items that never ran.
    `previous` is the JSON report of an earlier run to compare with (or `since`, the comparison
    already made, when a report is rebuilt from its JSON).
    """
    settings = settings or GateSettings()
    ordered = tuple(sorted(results, key=lambda result: (result.file_nodeid or result.file, result.case_id)))
    if baseline is None:
        baseline = _distinct([result.baseline.model for result in ordered]) or "?"
    if candidate is None:
        candidate = _distinct([result.candidate.model for result in ordered if result.candidate is not None])
    stamp = (created or datetime.now(timezone.utc)).astimezone(timezone.utc)
    gate_items = tuple(sorted(gates.items(), key=_gate_order))
    memo = Memo()  # the run, its pair, a tag of every case and the default route: one summary
    summaries = tuple(model_summaries(ordered, memo.summarise))
    pairs = build_pairs(ordered, gate_items, settings, memo)
    several = len(pairs) > 1
    # Over the whole run only when it compares one pair: mixing candidates would mean nothing.
    comparison = None if several else memo.compare(ordered)
    failed_gates = tuple(nodeid for nodeid, check in gate_items if check.status == FAILED)
    failed_cases = tuple(result for result in ordered if case_blocks(result, settings))
    status = BLOCKED_VERDICT if failed_gates or failed_cases else PASSED_VERDICT
    if not_run is not None:
        status = INTERRUPTED_VERDICT
    tags = tuple(
        TagReport(
            tag,
            len({(result.file_nodeid or result.file, result.case_id) for result in subset}),
            tuple(model_summaries(subset, memo.summarise)),
            None if several else memo.compare(subset),
            tuple(memo.compare(pair_results(subset, pair)) for pair in pairs) if several else (),
        )
        for tag in tags_of(ordered)
        for subset in [results_with_tag(ordered, tag)]
    )
    title = f"{candidate} vs {baseline}" if candidate else baseline
    if several:
        verdict = f"{status}: " + "; ".join(pair.verdict for pair in pairs)
        if not_run is not None:
            verdict = f"{status}: {title} ({interruption_text(len(ordered), not_run)}); " + "; ".join(
                pair.verdict for pair in pairs
            )
    else:
        verdict = verdict_line(
            title if not_run is None else f"{title} ({interruption_text(len(ordered), not_run)})",
            status,
            [check for _, check in gate_items if check.status == FAILED],
            failed_cases,
            comparison,
            summaries,
            gate_ids=[nodeid for nodeid, check in gate_items if check.status == FAILED],
        )
    if since is None and previous is not None:
        since = run_delta(previous, ordered, summaries)
    return RunReport(
        production_timeout_s=production_timeout_s,
        production_concurrency=production_concurrency,
        run_concurrency=run_concurrency,
        since=since,
        pairs=pairs,
        judge=judge_summary(ordered),
        results=ordered,
        gates=gate_items,
        baseline=baseline,
        candidate=candidate,
        created=stamp.replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        plugin_version=plugin_version,
        settings=settings,
        summaries=summaries,
        comparison=comparison,
        # One pair's results are all the results, in order: its inflation is the run's.
        inflation=None if several or not pairs else pairs[0].inflation,
        unpriced=tuple(unpriced_models(ordered)),
        tags=tags,
        routing=recommend_routing(ordered, settings.alpha, memo),
        failed_gates=failed_gates,
        failed_cases=failed_cases,
        verdict=verdict,
        status=status,
        interrupted=not_run is not None,
        not_run=tuple(not_run or ()),
    )


def pair_results(
    results: Sequence[CaseResult], pair: PairReport | tuple[str, str | None]
) -> list[CaseResult]:
    """The results of one (baseline, candidate) pair."""
    base, cand = (pair.baseline, pair.candidate) if isinstance(pair, PairReport) else pair
    return [
        result
        for result in results
        if result.baseline.model == base
        and (result.candidate.model if result.candidate is not None else None) == cand
    ]


def build_pairs(
    results: Sequence[CaseResult],
    gates: Sequence[tuple[str, GateCheck]],
    settings: GateSettings,
    memo: Memo | None = None,
) -> tuple[PairReport, ...]:
    """Each (baseline, candidate) pair with its own gates, failing cases, status and verdict."""
    memo = Memo() if memo is None else memo
    pairs = pairs_of(results)
    one_baseline = len({base for base, _ in pairs}) == 1
    file_baselines = {result.file_nodeid or result.file: result.baseline.model for result in results}
    reports = []
    for base, cand in pairs:
        mine = tuple(pair_results(results, (base, cand)))
        pair_gates = tuple(
            (nodeid, check)
            for nodeid, check in gates
            if (check.candidate or _only_candidate(pairs)) == cand
            and file_baselines.get(nodeid.rsplit("::", 1)[0], base) == base
        )
        failed_gates = tuple(nodeid for nodeid, check in pair_gates if check.status == FAILED)
        failed_cases = tuple(result for result in mine if case_blocks(result, settings))
        status = BLOCKED_VERDICT if failed_gates or failed_cases else PASSED_VERDICT
        summaries = tuple(model_summaries(mine, memo.summarise))
        comparison = memo.compare(mine)
        label = (cand or base) if one_baseline else (f"{cand} vs {base}" if cand else base)
        verdict = verdict_line(
            label,
            status,
            [check for _, check in pair_gates if check.status == FAILED],
            failed_cases,
            comparison,
            summaries,
            gate_ids=list(failed_gates),
            status_first=len(pairs) == 1,
        )
        reports.append(
            PairReport(
                baseline=base,
                candidate=cand,
                label=label,
                results=mine,
                summaries=summaries,
                comparison=comparison,
                inflation=output_token_inflation(mine),
                gates=pair_gates,
                failed_gates=failed_gates,
                failed_cases=failed_cases,
                status=status,
                verdict=verdict,
            )
        )
    return tuple(reports)


def _only_candidate(pairs: Sequence[tuple[str, str | None]]) -> str | None:
    """The candidate when the run had one (a gate without `candidate` is then its)."""
    candidates = {cand for _, cand in pairs}
    return candidates.pop() if len(candidates) == 1 else None


def interruption_text(finished: int, not_run: Sequence[str]) -> str:
    """E.g. "stopped after 3 cases; 37 cases and 5 gates did not run": what the numbers cover."""
    gates = sum(1 for nodeid in not_run if is_gate_nodeid(nodeid))
    cases = len(not_run) - gates
    missing = [f"{cases} case{'s' * (cases != 1)}"] if cases or not gates else []
    if gates:
        missing.append(f"{gates} gate{'s' * (gates != 1)}")
    return f"stopped after {finished} case{'s' * (finished != 1)}; {' and '.join(missing)} did not run"


def is_gate_nodeid(nodeid: str) -> bool:
    """A suite gate's node id (`file.yaml::gate[cost]`); case ids cannot contain brackets."""
    return nodeid.rsplit("::", 1)[-1].startswith("gate[")


def not_run_line(not_run: Sequence[str], limit: int = NOT_RUN_SHOWN) -> str:
    """The node ids that did not run, the first `limit` of them named."""
    named = ", ".join(not_run[:limit])
    more = f" and {len(not_run) - limit} more" if len(not_run) > limit else ""
    return f"not run: {named}{more}"


def case_blocks(result: CaseResult, settings: GateSettings) -> bool:
    """Whether the case's outcome fails its item (and so blocks the upgrade)."""
    if result.outcome not in BLOCKING_OUTCOMES:
        return False
    if result.outcome == Outcome.REGRESSION and settings.per_case == "report":
        return result.critical
    return True


def _distinct(models: Sequence[str]) -> str | None:
    unique = list(dict.fromkeys(models))
    return ", ".join(unique) if unique else None


def _gate_order(item: tuple[str, GateCheck]) -> tuple[str, str, int, str]:
    """By candidate (when several ran), then file, then gate."""
    nodeid, check = item
    prefix = nodeid.rsplit("::", 1)[0] if "::" in nodeid else ""
    rank = GATE_NAMES.index(check.name) if check.name in GATE_NAMES else len(GATE_NAMES)
    return check.candidate or "", prefix, rank, nodeid


def summary_key(summary: ModelSummary) -> tuple[str, str, str | None]:
    """What identifies a model's row across tags: its name, role and (among several) baseline."""
    return (summary.model, summary.role, summary.versus)


def verdict_line(
    title: str,
    status: str,
    failed: Sequence[GateCheck],
    failed_cases: Sequence[CaseResult],
    comparison: QualityComparison | None,
    summaries: Sequence[ModelSummary],
    gate_ids: Sequence[str] = (),
    status_first: bool = True,
) -> str:
    """E.g. "BLOCKED: gpt-5.5 vs gpt-4o, cost per successful task +42%, quality +1.1 (p = 0.38)".

    The status comes first (a reader of a PR comment stops at the first word); the pairs of a
    run with several candidates say theirs after their name ("gpt-5.5: BLOCKED, ...") inside a
    line that starts with the run's. `gate_ids` are the failed checks' node ids, in the same
    order, so a number quoted from the worst of several files names that file.

    BLOCKED names each failed gate's headline number (the worst file's, when several files failed
    the same gate) and the failing cases; the quality difference over all cases always follows,
    and a PASSED line adds the change in cost per successful task, the number an upgrade is
    usually argued about.
    """
    parts: list[str] = []
    by_name: dict[str, list[GateCheck]] = {}
    where: dict[int, str] = {}
    for index, check in enumerate(failed):
        by_name.setdefault(check.name, []).append(check)
        if index < len(gate_ids):
            where[id(check)] = gate_ids[index].rsplit("::", 1)[0].rsplit("/", 1)[-1]
    for name in sorted(by_name, key=lambda name: (*GATE_NAMES, name).index(name)):
        checks = by_name[name]
        worst = max(checks, key=_badness)
        text = gate_headline(worst)
        if len(checks) > 1:
            named = where.get(id(worst))
            text += (
                f" in {named} (worst of {len(checks)} files)" if named else f" (worst of {len(checks)} files)"
            )
        parts.append(text)
    if failed_cases:
        counts: dict[str, int] = {}
        for result in failed_cases:
            counts[result.outcome] = counts.get(result.outcome, 0) + 1
        parts.extend(
            f"{count} case{'s' if count != 1 else ''} {_OUTCOME_WORDS.get(outcome, outcome)}"
            for outcome, count in counts.items()
        )
    if "quality" not in by_name and comparison is not None:
        parts.append(f"quality {comparison.difference:+.1f} (p = {comparison.wilcoxon_p:.2g})")
    change = cost_change(summaries)
    if status == PASSED_VERDICT and change is not None:
        parts.append(f"cost per successful task {change:+.0%}")
    if len(summaries) == 1:
        only = summaries[0]
        parts.append(f"{only.passed}/{only.cases} cases passed")
    head = f"{status}: {title}" if status_first else f"{title}: {status}"
    return head + "".join(f", {part}" for part in parts)


_OUTCOME_WORDS = {
    Outcome.REGRESSION: "regressed",
    Outcome.BUDGET: "over budget",
    Outcome.FAILED: "failed",
    Outcome.ERROR: "errored",
}


def cost_change(summaries: Sequence[ModelSummary]) -> float | None:
    """Candidate / baseline cost per successful task - 1, None when either is unknown or zero."""
    if len(summaries) != 2:
        return None
    base, cand = summaries[0].cost_per_success, summaries[1].cost_per_success
    if base is None or cand is None or base == 0:
        return None
    return cand / base - 1


def _number(metrics: Mapping[str, object], key: str) -> float | None:
    value = metrics.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _badness(check: GateCheck) -> float:
    """How far a failed check is from passing, to pick the file a verdict names."""
    metrics = check.metrics
    if check.name == "quality":
        difference = _number(metrics, "difference")
        return -difference if difference is not None else 0.0
    if check.name == "cost":
        increase = _number(metrics, "cost_increase")
        return math.inf if increase is None else increase  # None: the candidate passed no case
    if check.name == "latency":
        return _number(metrics, "latency_increase") or _number(metrics, "candidate_p95_ms") or 0.0
    if check.name == "tokens":
        return _number(metrics, "output_token_inflation") or 0.0
    if check.name == "drift":
        ratio = _drift_ratio(check)
        return abs(ratio - 1) if ratio is not None else 0.0
    return 0.0


def _drift_ratio(check: GateCheck) -> float | None:
    basis = check.metrics.get("basis")
    return _number(check.metrics, f"{basis}_ratio") if isinstance(basis, str) else None


def gate_headline(check: GateCheck) -> str:
    """The number a failed (or any) gate is about, in a few words; its summary when unknown."""
    metrics = check.metrics
    if check.name == "quality":
        difference, p = _number(metrics, "difference"), _number(metrics, "wilcoxon_p")
        if difference is not None and p is not None:
            return f"quality {difference:+.1f} (p = {p:.2g})"
    elif check.name == "cost":
        increase = _number(metrics, "cost_increase")
        if increase is not None:
            return f"cost per successful task {increase:+.0%}"
        if check.status == FAILED:
            return "cost per successful task unbounded (the candidate passed no case)"
    elif check.name == "latency":
        p95 = _number(metrics, "candidate_p95_ms")
        increase = _number(metrics, "latency_increase")
        if p95 is not None:
            return f"p95 latency {p95:.0f} ms" + (f" ({increase:+.0%})" if increase is not None else "")
    elif check.name == "tokens":
        inflation = _number(metrics, "output_token_inflation")
        if inflation is not None:
            return f"output tokens {inflation:+.0%}"
    elif check.name == "drift":
        ratio = _drift_ratio(check)
        if ratio is not None:
            return f"prompt-token drift {ratio - 1:+.1%}"
    return f"gate[{check.name}] {check.status}: {check.summary}"


# Number formats shared by the Markdown and HTML reports ("n/a" for unknown, never 0).


def number(value: float | None, spec: str) -> str:
    return "n/a" if value is None or not math.isfinite(value) else format(value, spec)


def percent(value: float | None, spec: str = ".0%") -> str:
    return number(value, spec)


def money(value: float | None) -> str:
    """Dollars as the gate messages and the terminal write them (`metrics.format_usd`): one format
    in every report, so "$0.00068" and "$0.000685" never stand for the same number."""
    return "n/a" if value is None or not math.isfinite(value) else format_usd(value)


def plural(count: int, word: str) -> str:
    """ "1 regression", "3 improvements", "2 budget breaches", "2 already-failing"."""
    if count == 1:
        return f"{count} {_SINGULAR.get(word, word)}"
    if word in _PLURALS:
        return f"{count} {_PLURALS[word]}"
    if word.endswith(("ed", "-failing")):
        return f"{count} {word}"
    return f"{count} {word}es" if word.endswith(("s", "x", "ch", "sh")) else f"{count} {word}s"


_SINGULAR = {Outcome.BUDGET: "budget breach"}
_PLURALS = {Outcome.BUDGET: "budget breaches"}


def outcome_counts_text(counts: Mapping[str, int]) -> str:
    """E.g. "3 improvements, 1 regression, 7 passed"."""
    return ", ".join(plural(count, outcome) for outcome, count in counts.items())


def judged_run(result: CaseResult) -> ModelRun:
    """The run a case's verdict is about: an errored run, else the candidate, else the baseline."""
    for run in result.runs:
        if run.errored:
            return run
    return result.candidate if result.candidate is not None else result.baseline


def failing_checks(run: ModelRun) -> list[str]:
    """What failed in a run, one line each: call errors, failing assertions, budget breaches."""
    lines: list[str] = []
    for index, sample in enumerate(run.samples):
        prefix = f"sample {index + 1}: " if len(run.samples) > 1 else ""
        if sample.error is not None:
            lines.append(f"{prefix}{sample.error_kind or 'call'} error: {sample.error}")
        failed = [check for check in sample.assertions if not check.passed]
        lines.extend(f"{prefix}{check_text(check.type, check.reason)}" for check in failed)
        lines.extend(f"{prefix}budget {breach.describe()}" for breach in sample.breaches)
    return lines


def check_text(kind: str, reason: str) -> str:
    """ "fields: missing total", never "fields: fields: missing total" when the reason names it."""
    return reason if reason.startswith(f"{kind}:") else f"{kind}: {reason}"


def reply_excerpt(run: ModelRun, limit: int = 160) -> str:
    """The first failing (else first) sample's reply on one line, clipped to `limit` characters."""
    chosen = next((sample for sample in run.samples if not sample.passed or sample.breaches), None)
    if chosen is None and run.samples:
        chosen = run.samples[0]
    if chosen is None or chosen.reply is None:
        return ""
    reply = chosen.reply
    calls = " ".join(f"{call.name}({call.arguments})" for call in reply.tool_calls)
    text = reply.text or reply.refusal or calls
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def ttft_line(summaries: Sequence[ModelSummary]) -> str | None:
    """Time to first token per model, when any call streamed: the wait a user sees first."""
    streamed = [summary for summary in summaries if summary.ttft.calls]
    if not streamed:
        return None
    parts = [
        f"{summary.model} p50 {number(summary.ttft.p50, '.0f')} ms, p95 {number(summary.ttft.p95, '.0f')} ms"
        for summary in streamed
    ]
    return "time to first token (streamed calls): " + "; ".join(parts)
