"""Benchmark: replay at 2,000 cases, across xdist workers, with reports, at start-up (issue 17).

Prints every target of issue 17 beside its measured value:

1. replay of N cases x 2 models (cassettes recorded against the simulator with zero latency)
   beside a plain pytest run of 2N trivial tests, whole process, median of --repeat runs;
2. the same replay with `-n 2`, beside the single process, and two references for what xdist
   itself costs on this machine: plain pytest's own trivial tests with `-n 2` beside one process,
   and N plain tests that each burn as much CPU as a replayed case costs beyond a trivial test
   (a busy loop on process time, calibrated from this run's own replay), with and without `-n 2`;
3. the same replay writing the HTML, JSON and Markdown reports, beside the replay without them,
   and the size of each report;
4. the bootstrap interval of the quality gate at N cases (in process; O(cases) past its budget);
5. a pytest run that collects no case file, with the plugin and with `-p no:llmgate`, in 40
   alternating pairs: the median of the pairs' differences;
6. live: 200 cases x 2 models at --llm-concurrency 16 against the simulator at 300/480 ms,
   beside the ideal (calls x mean latency / concurrency); skipped with --no-live;
7. peak RSS of the replay of N/4 and of N cases: bytes per extra case.

Every pytest run is a fresh `python -m pytest` process (see bench_live_replay.py for why
PYTHONDONTWRITEBYTECODE is dropped and the hypothesis plugin is off).

    python benchmarks/bench_scale.py [--cases 2000] [--repeat 5] [--no-live]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench_live_replay import (
    BASELINE,
    CANDIDATE,
    DEAD_BASE_URL,
    LATENCY_MS,
    Run,
    run_pytest,
    write_suite,
    write_trivial,
)

from pytest_llmgate.simulator import OpenAISimulator

STARTUP_PAIRS = 40
COMMON = (f"--llm-candidate={CANDIDATE}", "-m", "not llm_gate")


def median_run(repeat: int, run: Callable[[], Run]) -> tuple[Run, list[float]]:
    """The median run of `repeat` (by time) and every run's seconds; exits on a failed run."""
    runs = [run() for _ in range(repeat)]
    for one in runs:
        if one.exit_code not in (0, 1):
            sys.exit(f"a run failed (exit {one.exit_code}):\n{one.tail}")
    ordered = sorted(runs, key=lambda one: one.seconds)
    return ordered[len(ordered) // 2], [one.seconds for one in runs]


def record(folder: Path, base_url: str) -> None:
    result = run_pytest(
        folder, *COMMON, "--llm-record-mode=once", f"--llm-base-url={base_url}", "--llm-concurrency=16"
    )
    if result.exit_code != 0:
        sys.exit(f"recording {folder} failed (exit {result.exit_code}):\n{result.tail}")


def replay(folder: Path, *args: str) -> Run:
    return run_pytest(folder, *COMMON, f"--llm-base-url={DEAD_BASE_URL}", *args)


def bootstrap_seconds(cases: int) -> float:
    """The quality gate's interval at `cases` paired differences, in this process."""
    from pytest_llmgate.stats import bootstrap_mean_ci

    rng = random.Random(7)
    differences = [rng.choice((-1.0, 0.0, 0.0, 0.0, 1.0)) * rng.random() for _ in range(cases)]
    started = time.perf_counter()
    bootstrap_mean_ci(differences)
    return time.perf_counter() - started


def write_busy(folder: Path, tests: int, work_ms: float) -> None:
    """`tests` plain tests that each burn `work_ms` of the process's own CPU time: a suite whose
    tests cost what a replayed case costs, with no plugin involved."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "test_busy.py").write_text(
        "import time\n\nimport pytest\n\n\n"
        f"@pytest.mark.parametrize('index', range({tests}))\n"
        "def test_busy(index):\n"
        "    started = time.process_time()\n"
        f"    while time.process_time() - started < {work_ms / 1000!r}:\n"
        "        pass\n",
        encoding="utf-8",
    )


def verdict(met: bool) -> str:
    return "met" if met else "NOT MET"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5, help="runs per measurement; the median counts")
    parser.add_argument("--no-live", action="store_true", help="skip the live run (about a minute)")
    args = parser.parse_args()
    cases, repeat = args.cases, args.repeat
    small = max(cases // 4, 1)

    with tempfile.TemporaryDirectory() as temp, OpenAISimulator(latency_ms=0.0) as server:
        root = Path(temp)
        suite, quarter, trivial, empty, live_suite = (
            root / "suite",
            root / "quarter",
            root / "trivial",
            root / "empty",
            root / "live",
        )
        trivial_n, busy = root / "trivial-n", root / "busy"
        write_suite(suite, cases)
        write_suite(quarter, small)
        write_trivial(trivial, 2 * cases)
        write_trivial(empty, 1)
        write_trivial(trivial_n, cases)
        record(suite, server.base_url)
        record(quarter, server.base_url)
        # Warm-up: bytecode and assertion-rewrite caches of every folder.
        for folder in (suite, quarter, trivial, empty, trivial_n):
            run_pytest(folder, "--collect-only", *(COMMON if folder in (suite, quarter) else ()))

        plain, plain_runs = median_run(repeat, lambda: run_pytest(trivial))
        one, one_runs = median_run(repeat, lambda: replay(suite))
        two, two_runs = median_run(repeat, lambda: replay(suite, "-n", "2"))
        # What xdist itself costs here: plain pytest's own 2N trivial tests with -n 2.
        plain_two, plain_two_runs = median_run(repeat, lambda: run_pytest(trivial, "-n", "2"))
        # And for tests as costly as a replayed case: N plain tests, each burning the CPU a case
        # costs beyond one trivial test (so one process takes about as long as the replay).
        plain_n, _ = median_run(repeat, lambda: run_pytest(trivial_n))
        work_ms = max(0.0, (one.seconds - plain_n.seconds) / cases * 1000)
        write_busy(busy, cases, work_ms)
        run_pytest(busy, "--collect-only")
        busy_one, busy_one_runs = median_run(repeat, lambda: run_pytest(busy))
        busy_two, busy_two_runs = median_run(repeat, lambda: run_pytest(busy, "-n", "2"))
        reports = ("report.html", "report.json", "report.md")
        report_args = [f"--llm-report={root / name}" for name in reports]
        with_reports, report_runs = median_run(repeat, lambda: replay(suite, *report_args))
        sizes = {name: (root / name).stat().st_size for name in reports}
        quarter_run, _ = median_run(1, lambda: replay(quarter))
        # Start-up: a difference of a few ms between runs of about 0.2 to 0.6 s, so measured in
        # alternating pairs (the machine's speed drifts between runs) and the median of the pairs'
        # differences taken.
        bare_runs, plugged_runs = [], []
        for _ in range(STARTUP_PAIRS):
            bare_runs.append(run_pytest(empty, "-p", "no:llmgate").seconds)
            plugged_runs.append(run_pytest(empty).seconds)
        bootstrap = min(bootstrap_seconds(cases) for _ in range(3))

        live = None
        if not args.no_live:
            live_cases, concurrency = 200, 16
            write_suite(live_suite, live_cases)
            server.latency_ms = LATENCY_MS
            ideal = live_cases * sum(LATENCY_MS.values()) / 1000 / concurrency

            def live_run() -> Run:
                shutil.rmtree(live_suite / "cassettes", ignore_errors=True)
                return run_pytest(
                    live_suite,
                    *COMMON,
                    "--llm-record-mode=once",
                    f"--llm-base-url={server.base_url}",
                    f"--llm-concurrency={concurrency}",
                )

            live, live_runs = median_run(repeat, live_run)

    def seconds(runs: list[float]) -> str:
        return ", ".join(f"{value:.2f}" for value in runs)

    ratio = one.seconds / plain.seconds
    per_case = (one.peak_rss_mb - quarter_run.peak_rss_mb) * 1024 * 1024 / (cases - small)
    pairs = zip(plugged_runs, bare_runs, strict=True)
    added_ms = statistics.median(plugged - bare for plugged, bare in pairs) * 1000
    report_cost = with_reports.seconds - one.seconds
    load = os.getloadavg()[0]
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, load {load:.2f}")
    print(f"runs per measurement: {repeat}, median (each run's seconds in brackets)")
    print(f"{'target':<58} {'measured':<34} verdict")
    rows = [
        (
            f"replay {cases} cases x 2 models <= 1.5x plain pytest",
            f"{one.seconds:.2f} s / {plain.seconds:.2f} s = {ratio:.2f}x",
            verdict(ratio <= 1.5),
        ),
        (
            f"-n 2 faster than one process at {cases} cases",
            f"{two.seconds:.2f} s vs {one.seconds:.2f} s",
            verdict(two.seconds < one.seconds),
        ),
        (
            "html + json + md reports add < 1 s",
            f"+{report_cost:.2f} s ({with_reports.seconds:.2f} s)",
            verdict(report_cost < 1.0),
        ),
        (
            "bootstrap interval O(cases)",
            f"{bootstrap * 1000:.1f} ms at {cases} cases",
            verdict(bootstrap < 0.1),
        ),
        (
            "plugin adds <= 20 ms when no case file is collected",
            f"+{added_ms:.0f} ms (of {statistics.median(bare_runs):.3f} s; {STARTUP_PAIRS} pairs)",
            verdict(added_ms <= 20),
        ),
    ]
    if live is not None:
        live_ratio = live.seconds / ideal
        rows.append(
            (
                "live 200 x 2 at concurrency 16 <= 1.12x ideal",
                f"{live.seconds:.2f} s / {ideal:.2f} s = {live_ratio:.3f}x",
                verdict(live_ratio <= 1.12),
            )
        )
    rows.append(
        (
            "memory flat beyond the results (bytes per case)",
            f"{per_case / 1024:.1f} KB per case ({quarter_run.peak_rss_mb:.0f} -> {one.peak_rss_mb:.0f} MB)",
            "see README",
        )
    )
    for target, measured, met in rows:
        print(f"{target:<58} {measured:<34} {met}")
    print()
    print(f"plain pytest, {2 * cases} trivial tests: {seconds(plain_runs)}")
    print(f"replay, one process: {seconds(one_runs)}")
    print(f"replay, -n 2: {seconds(two_runs)}")
    print(
        f"reference: plain pytest, {2 * cases} trivial tests, -n 2: {plain_two.seconds:.2f} s "
        f"({plain_two.seconds / plain.seconds:.2f}x its one process; runs: {seconds(plain_two_runs)})"
    )
    print(
        f"reference: {cases} plain tests burning {work_ms:.2f} ms of CPU each (what a replayed case "
        f"costs beyond a trivial test): one process {busy_one.seconds:.2f} s, -n 2 {busy_two.seconds:.2f} s "
        f"({busy_two.seconds / busy_one.seconds:.2f}x; runs: {seconds(busy_one_runs)} / "
        f"{seconds(busy_two_runs)})"
    )
    print(f"replay with reports: {seconds(report_runs)}")
    print("report sizes: " + ", ".join(f"{name} {size / 1024:.0f} KB" for name, size in sizes.items()))
    print(
        f"no case file, -p no:llmgate then with the plugin, {STARTUP_PAIRS} pairs: median "
        f"{statistics.median(bare_runs):.3f} s and {statistics.median(plugged_runs):.3f} s"
    )
    if live is not None:
        print(f"live runs: {', '.join(f'{value / ideal:.3f}x' for value in live_runs)}")
    print(f"baseline {BASELINE}, candidate {CANDIDATE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
