"""The `llmgate` console script: commands that build or inspect a suite without running pytest.

Only argument parsing and printing live here; the work is in `pytest_llmgate.importers`, so the
command and its tests share one implementation.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pytest_llmgate.importers.pipeline import TrafficOptions, import_traffic
from pytest_llmgate.importers.promptfoo import PromptfooOptions, import_promptfoo
from pytest_llmgate.importers.traffic import parse_time

DESCRIPTION = """\
pytest-llmgate's command line. The gate itself runs in pytest (pytest --llm-candidate=MODEL);
these commands build the suite it runs.
"""

TRAFFIC_DESCRIPTION = """\
Turn production traffic into a case file whose baseline is what production really answered.

Every distinct request becomes a case (messages, tools and params as sent; duplicates are
folded and counted); the most frequent model becomes the file's baseline: and each production
answer becomes the baseline's recording, so only the candidate is ever called. Assertions are
generated from the answers (a tool call -> tool-call, JSON -> is-json and fields, text ->
not-refusal), each marked with a comment for a reviewer to edit.

Sources, recognised by content (any mix, gzip allowed):
  - JSON Lines, one call per line: {"request": {...}, "response": {...}, "latency_ms": 812,
    "created": "2025-05-01T12:00:00Z", "tags": ["billing"], "id": "..."}
    (request: a chat completions or Responses body; response: its answer)
  - OpenAI Batch API input and output files (paired by custom_id)
  - the JSON export of stored chat completions ({"data": [...]} with each one's messages)
  - vcrpy cassettes (YAML or JSON) of your application's tests
  - OpenTelemetry GenAI spans as OTLP JSON (gen_ai.* attributes, message content captured)

Redaction is on by default, in requests and answers alike, with consistent placeholders (the
same email is [EMAIL_1] everywhere): API keys and tokens, emails, phone numbers, card numbers
(Luhn-checked), IBANs, IP addresses. Credentials are replaced even with --no-redact.
Bad input is reported with file and line and skipped; files are written whole or not at all.
"""

TRAFFIC_EPILOG = """\
examples:
  llmgate import traffic logs/calls-*.jsonl -o tests/llm/llm_traffic.yaml --sample 200 --seed 1
  llmgate import traffic batch_input.jsonl batch_output.jsonl -o tests/llm/llm_batch.yaml
  llmgate import traffic spans.json --since 2025-05-01 --tag checkout -o tests/llm/llm_checkout.yaml
then:
  pytest tests/llm/llm_traffic.yaml --llm-candidate=gpt-5.5 --llm-record-mode=once

exit status: 0 when a file was written, 1 when nothing could be imported, 2 on a usage error.
"""


PROMPTFOO_DESCRIPTION = """\
Convert a promptfoo suite (promptfooconfig.yaml) into a case file that pytest runs as is.

  prompts              -> prompts: (every case runs with each), or defaults.prompt when one
  tests (inline)       -> cases (list-valued vars expand as in promptfoo; description -> id)
  tests: file://x.csv  -> - file://x.csv when it reads as promptfoo's CSV, else its rows inline
  tests: .json/.yaml   -> cases inline
  defaultTest          -> defaults (vars; its assert goes first in every case's)
  assert               -> the same kinds (value, threshold, weight, metric), the graders
                          (llm-rubric, factuality, g-eval, ...); latency and cost -> budgets
  threshold (a test's) -> the case's threshold
  providers            -> the file's baseline: (the first) and models: targets; openai:chat,
                          openai:responses, azure, openrouter, groq, ollama and other
                          OpenAI-compatible ones, with base_url and api_key_env; config
                          temperature, max_tokens, response_format, ... -> params; tools -> tools

Not converted, each listed here and left as a '# not converted: ...' comment at its place:
JavaScript assertions, transforms, other providers (anthropic, bedrock, vertex, http, scripts),
assertion kinds this project does not have, and keys with no equivalent. A literal apiKey is
never written. Every case is checked with the parser pytest uses; one that would not collect is
commented out with the reason. Files are written whole or not at all.
"""

PROMPTFOO_EPILOG = """\
examples:
  llmgate import promptfoo promptfooconfig.yaml -o tests/llm/
  llmgate import promptfoo evals/promptfooconfig.yaml -o tests/llm/llm_qa.yaml --project-file llmgate.yaml
then:
  pytest tests/llm/llm_promptfoo.yaml --llm-candidate=MODEL --llm-record-mode=once

exit status: 0 when the files were written, 1 when nothing could be written, 2 on a usage error.
"""


def _time(text: str) -> float:
    try:
        return parse_time(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date or time; use e.g. 2025-05-01 or 2025-05-01T12:00:00Z"
        ) from None


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def _pattern(text: str) -> str:
    try:
        compiled = re.compile(text)
    except re.error as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a regular expression: {exc}") from None
    if compiled.match(""):
        raise argparse.ArgumentTypeError(f"{text!r} matches the empty string; it would redact nothing useful")
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="llmgate", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    importer = commands.add_parser(
        "import",
        help="build case files from production traffic or a promptfoo suite",
        description="Build case files from what already exists: production traffic, a promptfoo suite.",
    )
    kinds = importer.add_subparsers(dest="kind", metavar="KIND", required=True)
    traffic = kinds.add_parser(
        "traffic",
        help="production calls (JSONL, Batch API files, stored completions, cassettes, OTel spans)",
        description=TRAFFIC_DESCRIPTION,
        epilog=TRAFFIC_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    traffic.add_argument("sources", nargs="+", type=Path, metavar="SOURCE", help="files of traffic")
    traffic.add_argument(
        "-o",
        "--output",
        type=Path,
        required=True,
        metavar="FILE",
        help="the case file to write, e.g. tests/llm/llm_traffic.yaml (name it llm_*.yaml to be collected)",
    )
    traffic.add_argument(
        "--cassette-dir",
        type=Path,
        metavar="DIR",
        help="where the baseline recordings go (default: cassettes/ beside FILE, where pytest looks; "
        "pass the same DIR to pytest --llm-cassette-dir)",
    )
    traffic.add_argument(
        "--model", metavar="MODEL", help="import the calls to MODEL (default: the most frequent)"
    )
    traffic.add_argument(
        "--sample", type=_positive, metavar="N", help="keep N distinct requests, stratified by model and tag"
    )
    traffic.add_argument("--seed", type=int, default=0, metavar="S", help="seed of --sample (default 0)")
    traffic.add_argument(
        "--since",
        type=_time,
        metavar="TIME",
        help="only calls at or after TIME (ISO date/time or epoch seconds)",
    )
    traffic.add_argument("--until", type=_time, metavar="TIME", help="only calls before TIME")
    traffic.add_argument(
        "--tag",
        action="append",
        default=[],
        metavar="TAG",
        help="only calls with this tag (repeatable: any of them)",
    )
    traffic.add_argument(
        "--redact",
        action="append",
        default=[],
        type=_pattern,
        metavar="PATTERN",
        help="also replace what this regular expression matches (repeatable)",
    )
    traffic.add_argument(
        "--no-redact",
        action="store_true",
        help="keep personal data (emails, phones, cards, IBANs, IPs); credentials are still replaced",
    )
    traffic.add_argument("--force", action="store_true", help="replace FILE if it exists")
    _add_promptfoo_command(kinds)
    _add_report_command(commands)
    return parser


def _add_report_command(commands: Any) -> None:
    """`llmgate report run.json -o run.html`: a stored run rendered again, nothing run."""
    report = commands.add_parser(
        "report",
        help="render a JSON report again as HTML, Markdown, JSON or the routing table",
        description="Render a run's JSON report (pytest --llm-report=run.json) in any format, "
        "without running anything: the report is a function of the JSON.",
        epilog="example:\n  llmgate report run.json -o run.html -o run.md "
        "--compare-report main.json\n\nexit status: 0 when written, 1 when the JSON cannot be read.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    report.add_argument("source", type=Path, metavar="RUN_JSON", help="a JSON report of a run")
    report.add_argument(
        "-o",
        "--output",
        action="append",
        type=_report_path,
        required=True,
        metavar="FILE",
        help="the report to write, its format by suffix: .html, .md, .json, .yaml (repeatable)",
    )
    report.add_argument(
        "--compare-report",
        type=Path,
        metavar="PREVIOUS_JSON",
        help="also show what changed since this earlier run's JSON report",
    )


def _report_path(text: str) -> Path:
    from pytest_llmgate.report.formats import report_format

    try:
        report_format(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).replace("--llm-report", "-o")) from None
    return Path(text)


def _render_reports(args: argparse.Namespace) -> int:
    import dataclasses

    from pytest_llmgate.report.formats import render_report
    from pytest_llmgate.report.reload import ReportFileError, load_report
    from pytest_llmgate.report.since import PreviousReportError, load_previous, run_delta

    try:
        report = load_report(args.source)
        if args.compare_report is not None:
            previous = load_previous(args.compare_report)
            report = dataclasses.replace(report, since=run_delta(previous, report.results, report.summaries))
    except (ReportFileError, PreviousReportError) as exc:
        print(f"llmgate report: {exc}", file=sys.stderr)
        return 1
    for path in args.output:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render_report(report, path), encoding="utf-8")
        print(f"llmgate report: {path}")
    return 0


def _add_promptfoo_command(kinds: Any) -> None:
    promptfoo = kinds.add_parser(
        "promptfoo",
        help="a promptfoo suite (promptfooconfig.yaml)",
        description=PROMPTFOO_DESCRIPTION,
        epilog=PROMPTFOO_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    promptfoo.add_argument("config", type=Path, metavar="CONFIG", help="the suite's promptfooconfig.yaml")
    promptfoo.add_argument(
        "-o",
        "--output",
        type=Path,
        required=True,
        metavar="PATH",
        help="a folder (the file is llm_promptfoo.yaml in it) or the case file, e.g. tests/llm/llm_qa.yaml",
    )
    promptfoo.add_argument(
        "--project-file",
        type=Path,
        metavar="FILE",
        help="write the targets (models:) to FILE, a new llmgate.yaml at pytest's rootdir, instead of "
        "the top of the case file",
    )
    promptfoo.add_argument("--force", action="store_true", help="replace files that exist")


def _import_promptfoo(args: argparse.Namespace) -> int:
    result = import_promptfoo(
        PromptfooOptions(
            config=args.config, output=args.output, project_file=args.project_file, force=args.force
        )
    )
    for line in result.lines():
        print(line)
    return 1 if result.error else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "report":
        return _render_reports(args)
    if args.command == "import" and args.kind == "traffic":
        if args.since is not None and args.until is not None and args.since >= args.until:
            parser.error("--since must be earlier than --until")
        report = import_traffic(
            TrafficOptions(
                sources=tuple(args.sources),
                output=args.output,
                cassette_dir=args.cassette_dir,
                model=args.model,
                sample=args.sample,
                seed=args.seed,
                since=args.since,
                until=args.until,
                tags=tuple(args.tag),
                redact=not args.no_redact,
                patterns=tuple(args.redact),
                force=args.force,
            )
        )
        for line in report.lines():
            print(line)
        return 1 if report.error else 0
    if args.command == "import" and args.kind == "promptfoo":
        return _import_promptfoo(args)
    parser.error(f"unknown command {args.command} {getattr(args, 'kind', '')}")  # pragma: no cover
    return 2  # pragma: no cover


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
