"""The end of a session: the terminal summary, the `--llm-report` files, and the suite gates an
xdist controller judges once its workers are done; and the case tags `pytest --markers` lists.

Apart from the hooks (`plugin.py`) because only a run that collected case files needs it: the
entry module every pytest run imports stays small (under PYTHONDONTWRITEBYTECODE pytest parses
it again for assertion rewriting on every start).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from pytest_llmgate.options import Settings
    from pytest_llmgate.plugin import ResultCollector
    from pytest_llmgate.session import LlmSession


def report_deferred_gates(collector: ResultCollector, session: pytest.Session) -> None:
    """Judge the gates the workers deferred and report each through the normal report hooks."""
    from pytest_llmgate.config import GateSettings
    from pytest_llmgate.gate import FAILED, PASSED
    from pytest_llmgate.items import gate_failure_text, gate_properties, judge_gate

    state = collector.state
    hook = session.config.hook
    for nodeid, spec in collector.deferred.items():
        check = judge_gate(
            session,
            spec["gate"],
            spec["scope"],
            spec["files"],
            GateSettings.from_dict(spec["settings"]),
            spec.get("candidate"),
        )
        state.gate_checks[nodeid] = check
        location = (spec["location"][0], spec["location"][1], spec["location"][2])
        hook.pytest_runtest_logstart(nodeid=nodeid, location=location)
        longrepr: Any = None
        if check.status == FAILED:
            longrepr = state.scrubber.text(gate_failure_text(check))
        elif check.status != PASSED:
            longrepr = (str(session.config.rootpath / location[0]), 1, f"Skipped: {check.summary}")
        for when, outcome in (("setup", "passed"), ("call", check.status), ("teardown", "passed")):
            report = pytest.TestReport(
                nodeid=nodeid,
                location=location,
                keywords={},
                outcome=outcome,  # type: ignore[arg-type]
                longrepr=longrepr if when == "call" else None,
                when=when,  # type: ignore[arg-type]
                # junitxml reads the properties from the teardown report, the terminal from call
                user_properties=state.scrubber.value(gate_properties(check)),
            )
            hook.pytest_runtest_logreport(report=report)
        hook.pytest_runtest_logfinish(nodeid=nodeid, location=location)


def write_summary(collector: ResultCollector, terminalreporter: Any, config: pytest.Config) -> None:
    """The llmgate section of pytest's terminal summary, then the report files."""
    from pytest_llmgate.report.terminal import summary_lines

    state = collector.state
    settings = state.settings
    # Every baseline the case files named, not the first result's: files may differ.
    baselines = list(dict.fromkeys(result.baseline.model for result in state.results))
    baseline = ", ".join(baselines) or settings.baseline or "?"
    candidates = ", ".join(settings.candidates)
    title = f"llmgate: {candidates} vs {baseline}" if candidates else f"llmgate: {baseline}"
    terminalreporter.write_sep("=", title)
    report: Any = None
    try:
        # Built once: the summary ends with its checklist and verdict, the report files are it.
        report = build_run_report(collector)
        lines = list(
            summary_lines(
                state.results,
                verbose=config.get_verbosity() >= 0,
                gates=state.gate_checks,
                not_run=collector.not_run(),
                report=report,
            )
        )
    except Exception as exc:  # a report bug must not hide the test outcomes or change the exit code
        lines = [f"llmgate: the summary could not be written ({type(exc).__name__}: {exc}); please report it"]
    if state.live and not hasattr(config, "workerinput"):
        lines.append(state.progress.line())
    scrub = state.scrubber.text  # a reply that echoed the key is quoted in the summary
    for line in lines:
        # Markup follows pytest's own colour settings (--color, NO_COLOR, a pipe).
        terminalreporter.write_line(scrub(line), **_markup(line))
    for line in write_reports(collector, report):
        terminalreporter.write_line(scrub(line))


def report_inputs(state: LlmSession, workers: int = 1) -> dict[str, Any]:
    """What the summary and the reports take besides the results: gate settings, the
    production timeout and concurrency (llmgate.yaml), the run's concurrency and the earlier run
    (--llm-compare-report). The run's concurrency is --llm-concurrency in each of `workers`
    processes (xdist's -n)."""
    from pytest_llmgate.items import resolve_gate
    from pytest_llmgate.report.since import load_previous

    path = state.settings.compare_report
    return {
        "settings": resolve_gate(state),
        "production_timeout_s": state.project.production_timeout_s,
        "production_concurrency": state.project.production_concurrency,
        "run_concurrency": state.settings.concurrency * workers,
        "previous": None if path is None else load_previous(path),
    }


def build_run_report(collector: ResultCollector) -> Any:
    """The run's report (`report.model.RunReport`), from which the summary's ending and every
    report file are rendered."""
    from pytest_llmgate.report.model import build_report

    state = collector.state
    return build_report(
        state.results,
        state.gate_checks,
        candidate=", ".join(state.settings.candidates) or None,
        not_run=collector.not_run(),
        # Live, each xdist worker keeps --llm-concurrency calls in flight; a replay makes none,
        # and its report must not depend on how it was spread over workers.
        **report_inputs(state, _xdist_workers(collector.config) if state.live else 1),
    )


def _xdist_workers(config: pytest.Config) -> int:
    """The xdist workers of this run (`-n`; xdist turns `auto` into a number), else 1."""
    workers = getattr(config.option, "numprocesses", None)
    return workers if isinstance(workers, int) and workers > 0 else 1


def write_reports(collector: ResultCollector, report: Any = None) -> list[str]:
    """Write every --llm-report file (and the GitHub step summary); one line per file written.

    `report` is the one the summary was written from (None: build it here). A failure to
    write is said, never raised: the run's verdict is the tests' exit code.
    """
    state = collector.state
    settings = state.settings
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if not settings.reports and not step_summary:
        return []
    from pytest_llmgate.report.formats import render_format, render_report

    lines: list[str] = []
    try:
        report = report if report is not None else build_run_report(collector)
    except Exception as exc:
        return [f"llmgate: reports not written ({type(exc).__name__}: {exc}); please report it"]
    for path in settings.reports:
        try:
            write_atomically(path, render_report(report, path, state.scrubber))
            lines.append(f"llmgate report: {path}")
        except Exception as exc:
            lines.append(f"llmgate: cannot write {path}: {type(exc).__name__}: {exc}")
    if step_summary:
        try:
            with open(step_summary, "a", encoding="utf-8") as handle:
                handle.write(render_format(report, "markdown", state.scrubber) + "\n")
        except OSError as exc:
            lines.append(f"llmgate: cannot append to $GITHUB_STEP_SUMMARY ({step_summary}): {exc}")
    return lines


_MARKUP = {"  FAILED ": "red", "  PASSED ": "green", "  SKIPPED ": "yellow", "regressions (": "red"}


def _markup(line: str) -> dict[str, bool]:
    for prefix, colour in _MARKUP.items():
        if line.startswith(prefix):
            return {colour: True, "bold": prefix.startswith("  FAILED")}
    return {}


def write_atomically(path: Path, text: str) -> None:
    """Write `text` to `path` through a temporary file and a rename: never a half-written report."""
    from pytest_llmgate.cassettes import create_temp_beside

    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = create_temp_beside(path)  # as any file is made (umask), not mkstemp's 0600
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def register_tags(config: pytest.Config, settings: Settings) -> None:
    """Case tags as markers in `pytest --markers`, which collects nothing: the case files under
    the command line's paths (else testpaths, else the rootdir) are read for their tags."""
    import yaml

    roots = [Path(str(arg).split("::")[0]) for arg in config.args] or [settings.rootdir]
    tags: dict[str, None] = {}
    for root in roots:
        root = root if root.is_absolute() else settings.invocation_dir / root
        paths = (
            [root]
            if root.is_file()
            else [p for pattern in settings.file_patterns for p in root.rglob(pattern)]
        )
        for path in sorted(paths):
            if any(part.startswith(".") or part in ("node_modules", "venv") for part in path.parts[-4:-1]):
                continue
            try:
                document = yaml.safe_load(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, yaml.YAMLError):
                continue  # a broken file is reported when it is collected
            cases = document.get("cases") if isinstance(document, dict) else None
            for case in cases if isinstance(cases, list) else ():
                for tag in case.get("tags") or () if isinstance(case, dict) else ():
                    if isinstance(tag, str):
                        tags[tag] = None
    for tag in tags:
        config.addinivalue_line("markers", f"{tag}: llm case tag")
