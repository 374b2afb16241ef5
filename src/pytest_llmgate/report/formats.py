"""Which report `--llm-report=PATH` writes, chosen by the file's suffix, and the text it writes.

Kept apart from the renderers so the option's `type=` can check a path (`report_format`) before
collection, and so the plugin needs one call (`render_report`) whatever the format. That call is
also the output boundary where every report is scrubbed of secrets: a reply that echoed the key
during a live run reaches the report model, and the text written must not carry it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import PurePath

from pytest_llmgate.report.model import RunReport
from pytest_llmgate.secrets import Scrubber

FORMATS = {
    ".md": "markdown",
    ".markdown": "markdown",
    ".json": "json",
    ".html": "html",
    ".htm": "html",
    ".yaml": "routing",
    ".yml": "routing",
}


def report_format(path: str | PurePath) -> str:
    """markdown, json, html or routing (the YAML routing table); ValueError for another suffix."""
    suffix = PurePath(path).suffix.lower()
    try:
        return FORMATS[suffix]
    except KeyError:
        known = ", ".join(sorted(FORMATS))
        raise ValueError(
            f"--llm-report {str(path)!r}: cannot tell the format from the suffix {suffix or '(none)'!r}; "
            f"use one of {known}, e.g. --llm-report=report.html"
        ) from None


def render_report(report: RunReport, path: str | PurePath, scrubber: Scrubber | None = None) -> str:
    """The text of the report the suffix of `path` names (UTF-8 when written), scrubbed."""
    return render_format(report, report_format(path), scrubber)


def render_format(report: RunReport, format_name: str, scrubber: Scrubber | None = None) -> str:
    """The report in one of FORMATS' values, scrubbed by `scrubber` (default: this environment's
    secrets and credential-shaped strings, so no caller can write an unscrubbed report)."""
    text = _RENDERERS[format_name](report)
    return (scrubber if scrubber is not None else Scrubber.from_environment()).text(text)


def _markdown(report: RunReport) -> str:
    from pytest_llmgate.report.markdown import render_markdown

    return render_markdown(report)


def _json(report: RunReport) -> str:
    from pytest_llmgate.report.json_report import render_json

    return render_json(report)


def _html(report: RunReport) -> str:
    from pytest_llmgate.report.html import render_html

    return render_html(report)


def _routing(report: RunReport) -> str:
    from pytest_llmgate.report.routing import routing_yaml

    if report.routing is None:
        return "# no routing recommendation: the run had no candidate model (--llm-candidate)\n"
    return routing_yaml(report.routing)


_RENDERERS: dict[str, Callable[[RunReport], str]] = {
    "markdown": _markdown,
    "json": _json,
    "html": _html,
    "routing": _routing,
}
