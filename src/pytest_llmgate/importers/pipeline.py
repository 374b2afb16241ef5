"""`llmgate import traffic` as a function: sources in, a case file and baseline cassettes out.

Read, filter (time, tags), redact, convert, fold duplicates, pick the baseline model, sample,
render, validate, write. Each step drops what it cannot use with a `Problem`, and the
`ImportReport` counts what was imported, folded as a duplicate and skipped, so the command's
summary accounts for every call of the input.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pytest_llmgate.cassettes import display_path
from pytest_llmgate.importers import writer
from pytest_llmgate.importers.convert import Converted, Unconvertible, convert
from pytest_llmgate.importers.redact import Redactor
from pytest_llmgate.importers.traffic import Call, Problem, read_sources


@dataclass(frozen=True)
class TrafficOptions:
    sources: tuple[Path, ...]
    output: Path
    cassette_dir: Path | None = None  # None: cassettes/ beside the output file, as pytest looks
    model: str | None = None  # None: the most frequent model
    sample: int | None = None
    seed: int = 0
    since: float | None = None
    until: float | None = None
    tags: tuple[str, ...] = ()
    redact: bool = True
    patterns: tuple[str, ...] = ()
    force: bool = False


@dataclass
class ImportReport:
    imported: int = 0  # cases written
    duplicates: int = 0  # calls folded into an earlier identical request
    skipped: int = 0  # calls (or files) that could not be imported, each with a Problem
    filtered: int = 0  # calls left out by --since/--until/--tag
    unsampled: int = 0  # distinct requests left out by --sample
    problems: list[Problem] = field(default_factory=list)
    redaction: str = ""
    baseline: str | None = None
    written: list[Path] = field(default_factory=list)
    error: str | None = None  # set when nothing was written

    def skip(self, problem: Problem, calls: int = 1) -> None:
        self.problems.append(problem)
        self.skipped += calls

    def lines(self) -> list[str]:
        """The summary: the skipped inputs first, then the counts, then what was written."""
        lines = [f"skipped {problem}" for problem in self.problems]
        counts = f"{self.imported} imported, {self.duplicates} duplicate, {self.skipped} skipped"
        extra = [
            f"{count} {what}"
            for count, what in ((self.filtered, "filtered out"), (self.unsampled, "not sampled"))
            if count
        ]
        lines.append(f"llmgate import traffic: {counts}" + (f" ({', '.join(extra)})" if extra else ""))
        if self.redaction:
            lines.append(self.redaction)
        if self.error:
            lines.append(f"error: {self.error}")
        elif self.written:
            case_file = self.written[-1]
            lines.append(
                f"wrote {display_path(case_file)} (baseline {self.baseline}) and "
                f"{len(self.written) - 1} baseline recording(s)"
            )
            lines.append(
                f"next: pytest {display_path(case_file)} --llm-candidate=MODEL --llm-record-mode=once "
                "(only the candidate is called)"
            )
        return lines


def import_traffic(options: TrafficOptions) -> ImportReport:
    report = ImportReport()
    if options.output.exists() and not options.force:
        report.error = f"{display_path(options.output)} exists; pass --force to replace it"
        return report
    calls, problems = read_sources(options.sources)
    redactor = Redactor.from_options(personal_data=options.redact, patterns=options.patterns)
    for problem in problems:
        report.skip(Problem(problem.where, redactor.text(problem.reason)))
    calls = _filtered(calls, options, report)
    converted: list[Converted] = []
    for call in calls:
        redacted = Call(
            where=call.where,
            request=redactor.value(dict(call.request)),
            response=redactor.value(call.response),
            endpoint=call.endpoint,
            status=call.status,
            latency_ms=call.latency_ms,
            created=call.created,
            tags=call.tags,
            id=call.id,
        )
        try:
            converted.append(convert(redacted))
        except Unconvertible as exc:
            report.skip(Problem(call.where, redactor.text(str(exc))))
    report.redaction = redactor.summary()
    if not converted:
        report.error = "no call could be imported; nothing was written"
        return report
    baseline = options.model or Counter(item.model for item in converted).most_common(1)[0][0]
    report.baseline = baseline
    others = Counter(item.model for item in converted if item.model != baseline)
    for model, count in sorted(others.items()):
        first = next(item for item in converted if item.model == model)
        report.skip(
            Problem(
                first.call.where,
                f"{count} call(s) to {model} left out: this file's baseline is {baseline}; "
                f"import them into another file with --model {model}",
            ),
            calls=count,
        )
    drafts = _fold([item for item in converted if item.model == baseline], report)
    drafts = _sampled(drafts, options, report)
    rendered: list[list[str]] = []
    kept: dict[str, writer.Draft] = {}
    for draft in drafts:
        lines = writer.render_case(draft)
        reason = lines if isinstance(lines, str) else writer.validate_case(options.output, baseline, lines)
        if reason is not None:
            report.skip(Problem(draft.sources[0], reason), calls=draft.count)
            report.duplicates -= draft.count - 1
            continue
        assert not isinstance(lines, str)
        rendered.append(lines)
        kept[draft.id] = draft
    if not rendered:
        report.error = "no request could become a case; nothing was written"
        return report
    sources = [display_path(path) for path in options.sources]
    text = writer.render_file(baseline, sources, rendered)
    cassette_dir = options.cassette_dir or options.output.parent / "cassettes"
    files = writer.cassette_files(options.output, text, cassette_dir, kept)
    files[options.output] = text  # last: renamed after every cassette is in place
    try:
        writer.write_all(files)
    except (writer.UnsafeOutput, OSError) as exc:
        report.error = str(exc)
        return report
    report.imported = len(rendered)
    report.written = list(files)
    return report


def _filtered(calls: list[Call], options: TrafficOptions, report: ImportReport) -> list[Call]:
    kept = []
    wanted = set(options.tags)
    for call in calls:
        if options.since is not None or options.until is not None:
            if call.created is None:
                report.filtered += 1
                continue
            if options.since is not None and call.created < options.since:
                report.filtered += 1
                continue
            if options.until is not None and call.created >= options.until:
                report.filtered += 1
                continue
        if wanted and not wanted.intersection(call.tags):
            report.filtered += 1
            continue
        kept.append(call)
    return kept


def normalised_key(converted: Converted) -> str:
    """Requests that send the same JSON (key order aside) are one case."""
    return json.dumps(converted.request, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _fold(converted: Sequence[Converted], report: ImportReport) -> list[writer.Draft]:
    drafts: dict[str, writer.Draft] = {}
    taken: set[str] = set()
    for item in converted:
        key = normalised_key(item)
        draft = drafts.get(key)
        if draft is None:
            draft = drafts[key] = writer.Draft(writer.case_id(item, key, taken), item)
        else:
            draft.count += 1
            report.duplicates += 1
        draft.sources.append(item.call.where)
        for tag in item.call.tags:
            name = writer.tag_name(tag)
            if name and name not in draft.tags:
                draft.tags.append(name)
    return list(drafts.values())


def _sampled(drafts: list[writer.Draft], options: TrafficOptions, report: ImportReport) -> list[writer.Draft]:
    """`--sample N` distinct requests, spread over (model, first tag) strata in proportion to size.

    Largest-remainder allocation keeps the total exactly N; a seeded generator makes the choice
    repeatable; the chosen cases keep their order in the input.
    """
    if options.sample is None or options.sample >= len(drafts):
        return drafts
    strata: dict[tuple[str, str], list[int]] = {}
    for index, draft in enumerate(drafts):
        strata.setdefault((draft.first.model, draft.tags[0] if draft.tags else ""), []).append(index)
    total, wanted = len(drafts), options.sample
    shares = {key: wanted * len(members) / total for key, members in strata.items()}
    quota = {key: int(share) for key, share in shares.items()}
    remainder = wanted - sum(quota.values())
    for key in sorted(strata, key=lambda key: (-(shares[key] - quota[key]), key))[:remainder]:
        quota[key] += 1
    rng = random.Random(options.seed)
    chosen: set[int] = set()
    for key in sorted(strata):
        chosen.update(rng.sample(strata[key], quota[key]))
    report.unsampled = total - len(chosen)
    return [draft for index, draft in enumerate(drafts) if index in chosen]
