"""The pre-upgrade checklist: the questions a team settles before switching models, answered from
what the run measured.

Fourteen items with stable names (documented in the README, read by scripts from the JSON
report): each is ✓ (`ok`), ✗ (`fail`) or not measured (`unknown`), with the number it rests on
and what to do. The checklist judges nothing the gates do not already judge: it is the reading
list of a decision, so an item that cannot be measured from this run says so rather than pass.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pytest_llmgate.gate import FAILED, PASSED
from pytest_llmgate.metrics import format_usd
from pytest_llmgate.model.params import ADAPTED_NOTE
from pytest_llmgate.ratelimits import LOW_HEADROOM, Exposure
from pytest_llmgate.ratelimits import exposure as ratelimit_exposure
from pytest_llmgate.results import ModelRun, Sample

if TYPE_CHECKING:
    from pytest_llmgate.report.model import RunReport

OK, FAIL, UNKNOWN = "ok", "fail", "unknown"
MARK = {OK: "✓", FAIL: "✗", UNKNOWN: "not measured"}
IMPORTED_PREFIX = "production traffic"  # the description `llmgate import traffic` gives a case
REPLAY_NOTE = "replay:"
MIN_CASES_FOR_QUALITY = 30  # below this a paired test rarely detects a few points' drop
DEFAULT_INFLATION = 0.3
DEFAULT_COST_INCREASE = 0.25

ITEM_NAMES = (
    "tokenizer-alignment",
    "context-headroom",
    "output-length",
    "verbosity",
    "cost-tracking",
    "cost-per-success",
    "timeouts",
    "retry-storms",
    "fallback-routing",
    "quality-on-own-tasks",
    "real-traffic-share",
    "reproducibility",
    "parameter-changes",
    "ab-readiness",
)


@dataclass(frozen=True)
class ChecklistItem:
    name: str  # one of ITEM_NAMES
    title: str
    status: str  # ok, fail or unknown
    value: str  # the number it rests on, as text
    action: str  # what to do (for ✓: what keeps it so)

    @property
    def mark(self) -> str:
        return MARK[self.status]

    def line(self) -> str:
        return f"{self.mark} {self.name}: {self.value}; {self.action}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "status": self.status,
            "value": self.value,
            "action": self.action,
        }


def checklist(report: RunReport) -> tuple[ChecklistItem, ...]:
    """The fourteen items, in ITEM_NAMES order."""
    items = (
        _tokenizer(report),
        _context(report),
        _output_length(report),
        _verbosity(report),
        _cost_tracking(report),
        _cost_per_success(report),
        _timeouts(report),
        _retries(report),
        _fallback(report),
        _quality(report),
        _traffic(report),
        _reproducibility(report),
        _params(report),
        _ab(report),
    )
    assert tuple(item.name for item in items) == ITEM_NAMES
    return items


def failing_lines(report: RunReport) -> Iterator[str]:
    """The terminal's part: one line per ✗ item (the full table is in the Markdown and HTML)."""
    for item in checklist(report):
        if item.status == FAIL:
            yield f"checklist ✗ {item.name}: {item.value}; {item.action}"


def _judged_runs(report: RunReport) -> list[ModelRun]:
    """The model under test on each case: the candidate, else the baseline."""
    return [result.candidate or result.baseline for result in report.results]


def _gate(report: RunReport, name: str) -> tuple[str, str] | None:
    """(worst status, summary) of the gates called `name`; None when none was judged."""
    checks = [check for _, check in report.gates if check.name == name and check.status in (PASSED, FAILED)]
    if not checks:
        return None
    failed = [check for check in checks if check.status == FAILED]
    chosen = failed[0] if failed else checks[0]
    return chosen.status, chosen.summary


def _tokenizer(report: RunReport) -> ChecklistItem:
    title = "Tokenizer alignment"
    gate = _gate(report, "drift")
    if gate is None:
        return ChecklistItem(
            "tokenizer-alignment",
            title,
            UNKNOWN,
            "gate[drift] not judged",
            "run with a candidate and recorded usage so gate[drift] compares prompt tokens",
        )
    status, summary = gate
    if status == FAILED:
        return ChecklistItem(
            "tokenizer-alignment",
            title,
            FAIL,
            summary,
            "re-measure prompt budgets and context limits with the candidate's tokenizer",
        )
    return ChecklistItem("tokenizer-alignment", title, OK, summary, "keep gate[drift] on for prompt changes")


def _context(report: RunReport) -> ChecklistItem:
    title = "Context-window headroom"
    breaches = sum(
        breach.budget == "context_window" for run in _judged_runs(report) for breach in run.breaches
    )
    known = [
        sample.reply.usage.prompt_tokens
        for run in _judged_runs(report)
        for sample in run.samples
        if sample.reply is not None and sample.reply.usage.prompt_tokens is not None
    ]
    if breaches:
        return ChecklistItem(
            "context-headroom",
            title,
            FAIL,
            f"{breaches} call(s) over the context window",
            "shorten those prompts or lower max_tokens (see the cases over budget context_window)",
        )
    if not known:
        return ChecklistItem(
            "context-headroom", title, UNKNOWN, "no prompt token counts", "record with usage reported"
        )
    return ChecklistItem(
        "context-headroom",
        title,
        OK,
        f"largest prompt {max(known)} tokens, no call over the window",
        "set context_windows in llmgate.yaml for models the built-in table lacks",
    )


def _output_length(report: RunReport) -> ChecklistItem:
    title = "Output-length control"
    unlimited = sum(result.max_tokens is None for result in report.results)
    replies = [
        sample.reply for run in _judged_runs(report) for sample in run.samples if sample.reply is not None
    ]
    if not replies:
        return ChecklistItem("output-length", title, UNKNOWN, "no replies", "run the cases")
    cut = sum(reply.finish_reason == "length" for reply in replies)
    value = (
        f"{unlimited} of {len(report.results)} cases without a max-token limit; "
        f"{cut / len(replies):.0%} of replies cut at length"
    )
    if cut or unlimited:
        return ChecklistItem(
            "output-length",
            title,
            FAIL,
            value,
            "set max_tokens (max_completion_tokens for reasoning models) and raise it where replies are cut",
        )
    return ChecklistItem("output-length", title, OK, value, "keep a max-token limit on every case")


def _verbosity(report: RunReport) -> ChecklistItem:
    title = "Verbosity (output-token inflation)"
    inflations = [pair.inflation for pair in report.pairs if pair.inflation is not None]
    if report.inflation is not None:
        inflations = [report.inflation]
    if not inflations:
        return ChecklistItem(
            "verbosity", title, UNKNOWN, "no candidate or no token counts", "run with --llm-candidate"
        )
    worst = max(inflations)
    limit = report.settings.max_output_token_inflation
    limit = DEFAULT_INFLATION if limit is None else limit
    if worst > limit:
        return ChecklistItem(
            "verbosity",
            title,
            FAIL,
            f"output tokens {worst:+.1%} (limit +{limit:.0%})",
            "ask for brevity in the prompt or lower max_tokens; longer replies cost and wait more",
        )
    return ChecklistItem("verbosity", title, OK, f"output tokens {worst:+.1%}", "no action")


def _cost_tracking(report: RunReport) -> ChecklistItem:
    title = "Cost tracking"
    sources = sorted(
        {
            sample.price_source
            for result in report.results
            for run in result.runs
            for sample in run.samples
            if sample.price_source
        }
    )
    if report.unpriced:
        return ChecklistItem(
            "cost-tracking",
            title,
            FAIL,
            f"no price for {', '.join(report.unpriced)}",
            "add the price under pricing: in llmgate.yaml (input, cached_input, output per 1M tokens)",
        )
    if not sources:
        return ChecklistItem("cost-tracking", title, UNKNOWN, "no priced call", "record with usage reported")
    return ChecklistItem(
        "cost-tracking",
        title,
        OK,
        "every model priced (" + "; ".join(sources) + ")",
        "check cached_input and reasoning-token prices when the vendor changes them",
    )


def _cost_per_success(report: RunReport) -> ChecklistItem:
    title = "Cost per successful task"
    from pytest_llmgate.report.model import cost_change

    changes = [cost_change(pair.summaries) for pair in report.pairs]
    known = [change for change in changes if change is not None]
    if not known:
        return ChecklistItem(
            "cost-per-success",
            title,
            UNKNOWN,
            "unknown (no candidate, no price, or no case passed)",
            "price both models and run with --llm-candidate",
        )
    worst = max(known)
    limit = report.settings.max_cost_increase
    limit = DEFAULT_COST_INCREASE if limit is None else limit
    value = f"{worst:+.0%} per successful task"
    if worst > limit:
        return ChecklistItem(
            "cost-per-success",
            title,
            FAIL,
            f"{value} (limit +{limit:.0%})",
            "budget for it, or route the tags where the candidate is not better to the baseline",
        )
    return ChecklistItem("cost-per-success", title, OK, value, "no action")


def _timeouts(report: RunReport) -> ChecklistItem:
    title = "Timeout configuration"
    candidates = [summary for summary in report.summaries if summary.role == "candidate"]
    measured = [summary for summary in candidates if summary.latency.p99 is not None]
    if report.production_timeout_s is None:
        return ChecklistItem(
            "timeouts",
            title,
            UNKNOWN,
            "no production timeout declared",
            "declare it in llmgate.yaml: production: {timeout_s: 30}",
        )
    if not measured:
        return ChecklistItem("timeouts", title, UNKNOWN, "no candidate latency", "run with --llm-candidate")
    worst = max(measured, key=lambda summary: summary.latency.p99 or 0.0)
    p99 = worst.latency.p99 or 0.0
    timeout_ms = report.production_timeout_s * 1000
    value = f"{worst.model} p99 {p99:.0f} ms vs production timeout {timeout_ms:.0f} ms"
    if p99 >= timeout_ms * 0.8:
        return ChecklistItem(
            "timeouts",
            title,
            FAIL,
            value,
            "raise the production timeout or stream; within 80% of it, slow calls will time out",
        )
    return ChecklistItem("timeouts", title, OK, value, "no action")


def _retries(report: RunReport) -> ChecklistItem:
    title = "Retry-storm exposure"
    retries = sum(summary.retries for summary in report.summaries)
    limited = sum(
        1
        for result in report.results
        for run in result.runs
        for sample in run.samples
        if sample.error is not None and ("429" in sample.error or "rate limit" in sample.error.lower())
    )
    calls = sum(len(run.samples) for result in report.results for run in result.runs)
    value = f"{retries} retries and {limited} rate-limited calls (429) in {calls} calls"
    exposures = _exposures(report)
    if exposures:
        if report.production_concurrency:
            at = f"at concurrency {report.production_concurrency} (production)"
        elif report.run_concurrency:
            at = f"at concurrency {report.run_concurrency} (this run's)"
        else:
            at = "concurrency unknown"
        value += f"; {at}: " + "; ".join(exposure.describe() for exposure in exposures)
    else:
        value += "; no rate-limit headers recorded for the candidate"
    if limited or retries > max(1, calls // 20):
        return ChecklistItem(
            "retry-storms",
            title,
            FAIL,
            value,
            "lower the concurrency below the rate-limit headers; cap retries, with backoff",
        )
    for exposure in exposures:
        fitting = exposure.fitting_concurrency()
        over = " and ".join(exposure.over)
        if fitting == 0:
            return ChecklistItem(
                "retry-storms",
                title,
                FAIL,
                value,
                f"{exposure.model} would exceed its {over} limit even with one call in flight: "
                "raise the account's limits before switching",
            )
        if fitting is not None:
            at_once = "1 call" if fitting == 1 else f"{fitting} calls"
            return ChecklistItem(
                "retry-storms",
                title,
                FAIL,
                value,
                f"{exposure.model} would exceed its {over} limit: run at most {at_once} at once "
                f"(production: {{concurrency: {fitting}}} in llmgate.yaml to check that) or raise "
                "the account's limits before switching",
            )
    for exposure in exposures:
        if exposure.low_headroom:
            return ChecklistItem(
                "retry-storms",
                title,
                FAIL,
                value,
                f"{exposure.model}'s account had under {LOW_HEADROOM:.0%} of a limit left at every "
                "answer while this run was recorded: raise its limits or spread the load before "
                "switching (or re-record at a quieter time if other traffic shares the account)",
            )
    return ChecklistItem("retry-storms", title, OK, value, "no action")


def _exposures(report: RunReport) -> list[Exposure]:
    """Each candidate's recorded rate limits against the checklist's concurrency (ratelimits.py):
    the question is whether switching to it would hit them (the baseline serves today)."""
    samples: dict[str, list[Sample]] = {}
    for result in report.results:
        if result.candidate is not None:
            samples.setdefault(result.candidate.model, []).extend(result.candidate.samples)
    found = []
    for model, taken in samples.items():
        answered = [sample for sample in taken if sample.reply is not None]
        usages = [sample.reply.usage for sample in answered if sample.reply is not None]
        exposure = ratelimit_exposure(
            model,
            [sample.rate_limit for sample in taken if sample.rate_limit is not None],
            [(sample.latency_ms, sample.attempts) for sample in answered],
            [
                usage.prompt_tokens + usage.completion_tokens
                for usage in usages
                if usage.prompt_tokens is not None and usage.completion_tokens is not None
            ],
            report.concurrency or 0,  # 0: unknown, no demand computed
        )
        if exposure is not None:
            found.append(exposure)
    return found


def _fallback(report: RunReport) -> ChecklistItem:
    title = "Fallback routing"
    if report.routing is None:
        return ChecklistItem("fallback-routing", title, UNKNOWN, "no candidate", "run with --llm-candidate")
    routes = len(report.routing.routes)
    return ChecklistItem(
        "fallback-routing",
        title,
        OK,
        f"routing table of {routes} tag route(s), default {report.routing.default.model}",
        "export it with --llm-report=routing.yaml and keep the baseline as the fallback",
    )


def _quality(report: RunReport) -> ChecklistItem:
    title = "Quality on your own tasks"
    comparisons = [pair.comparison for pair in report.pairs if pair.comparison is not None]
    if not comparisons:
        return ChecklistItem(
            "quality-on-own-tasks", title, UNKNOWN, "no paired comparison", "run with --llm-candidate"
        )
    alpha = report.settings.alpha
    worst = min(comparisons, key=lambda comparison: comparison.difference)
    value = (
        f"{worst.cases} cases, quality {worst.difference:+.1f} (p = {worst.wilcoxon_p:.2g}), "
        f"{len(report.tags)} tags"
    )
    gate = _gate(report, "quality")
    if (gate is not None and gate[0] == FAILED) or (worst.difference < 0 and worst.significant(alpha)):
        return ChecklistItem(
            "quality-on-own-tasks",
            title,
            FAIL,
            value,
            "read the regressions; route the tags that got worse to the baseline",
        )
    if worst.cases < MIN_CASES_FOR_QUALITY:
        return ChecklistItem(
            "quality-on-own-tasks",
            title,
            FAIL,
            value + f"; under {MIN_CASES_FOR_QUALITY} cases",
            f"add cases (llmgate import traffic) until each tag has {MIN_CASES_FOR_QUALITY} or more",
        )
    return ChecklistItem("quality-on-own-tasks", title, OK, value, "no action")


def _traffic(report: RunReport) -> ChecklistItem:
    title = "Real-traffic share"
    if not report.results:
        return ChecklistItem("real-traffic-share", title, UNKNOWN, "no cases", "add cases")
    imported = sum(result.description.startswith(IMPORTED_PREFIX) for result in report.results)
    share = imported / len(report.results)
    value = f"{imported} of {len(report.results)} cases imported from production ({share:.0%})"
    if imported == 0:
        return ChecklistItem(
            "real-traffic-share",
            title,
            FAIL,
            value,
            "import a sample: llmgate import traffic logs.jsonl -o tests/llm/llm_traffic.yaml --sample 200",
        )
    return ChecklistItem("real-traffic-share", title, OK, value, "refresh the import as traffic changes")


def _reproducibility(report: RunReport) -> ChecklistItem:
    title = "Reproducibility"
    samples = [sample for result in report.results for run in result.runs for sample in run.samples]
    if not samples:
        return ChecklistItem("reproducibility", title, UNKNOWN, "no calls", "run the cases")
    replayed = sum(sample.replayed for sample in samples)
    stale = len({note for result in report.results for note in result.notes if note.startswith(REPLAY_NOTE)})
    value = f"{replayed} of {len(samples)} calls replayed from cassettes; {stale} stale cassette(s)"
    if stale:
        return ChecklistItem(
            "reproducibility",
            title,
            FAIL,
            value,
            "re-record the stale cassettes: pytest --llm-record-mode=all on those files",
        )
    if replayed < len(samples):
        return ChecklistItem(
            "reproducibility",
            title,
            OK,
            value,
            "commit the cassettes so CI replays this run offline (--llm-record-mode=none)",
        )
    return ChecklistItem("reproducibility", title, OK, value, "no action")


def _params(report: RunReport) -> ChecklistItem:
    title = "Parameter changes"
    adapted = list(
        dict.fromkeys(
            note.removeprefix(ADAPTED_NOTE).partition("=")[0]  # "gpt-5.5: temperature"
            for result in report.results
            for note in result.notes
            if note.startswith(ADAPTED_NOTE)
        )
    )
    if adapted:
        shown = ", ".join(adapted[:5]) + (f" and {len(adapted) - 5} more" if len(adapted) > 5 else "")
        return ChecklistItem(
            "parameter-changes",
            title,
            FAIL,
            f"{len(adapted)} adapted for the candidate: {shown}",
            "review them (HTML report, Adapted parameters); send as written with --llm-param-policy=strict",
        )
    return ChecklistItem("parameter-changes", title, OK, "no parameter adapted", "no action")


def _ab(report: RunReport) -> ChecklistItem:
    title = "A/B readiness"
    if report.routing is None or not report.routing.blends:
        return ChecklistItem("ab-readiness", title, UNKNOWN, "no routing blend", "run with --llm-candidate")
    routed = next((blend for blend in report.routing.blends if blend.name == "routed"), None)
    blend = routed or report.routing.blends[-1]
    cost = "n/a" if blend.cost_per_success is None else format_usd(blend.cost_per_success)
    quality = "n/a" if blend.quality is None else f"{blend.quality:.1f}"
    return ChecklistItem(
        "ab-readiness",
        title,
        OK,
        f"{blend.name}: quality {quality}, {cost} per successful task over {blend.cases} cases",
        "start the A/B with the routed split and compare these figures live",
    )


def rows(report: RunReport) -> Sequence[Sequence[str]]:
    """(mark, item, value, what to do) per item: the Markdown and HTML table's rows."""
    return [[item.mark, item.name, item.value, item.action] for item in checklist(report)]
