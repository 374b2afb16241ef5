"""Benchmark: a live run against the loopback simulator, its replay, and peak memory.

Against the simulator with 300 ms (baseline) and 480 ms (candidate) latency:

1. live: N cases x 2 models recorded at --llm-concurrency 16, beside the ideal time
   (calls x mean latency / concurrency);
2. replay of the same suite from its cassettes, beside a plain pytest run of 2N trivial tests
   (the same number of recorded calls);
3. replay of a 5N-case suite, and the peak RSS of both replays (memory must grow with the
   results kept for the summary, not with anything per case beyond them).

Every pytest run is a fresh process (`python -m pytest`), as in CI; timings include pytest's
start-up. Peak memory is the child's own `ru_maxrss` from `os.wait4`. The children may write
bytecode (PYTHONDONTWRITEBYTECODE is dropped from their environment, as most machines run):
without it pytest re-rewrites the assertions of every plugin module on every start, which costs
each run about half a second here and says nothing about this plugin. One warm-up run fills
those caches before anything is timed.

    python benchmarks/bench_live_replay.py [--cases 200] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from pytest_llmgate.simulator import OpenAISimulator

BASELINE, CANDIDATE = "gpt-4o", "gpt-5.5"
LATENCY_MS = {BASELINE: 300.0, CANDIDATE: 480.0}
DEAD_BASE_URL = "http://127.0.0.1:9/v1"


@dataclass(frozen=True)
class Run:
    seconds: float
    peak_rss_mb: float
    exit_code: int
    tail: str


def write_suite(folder: Path, cases: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f"baseline: {BASELINE}", "cases:"]
    for index in range(cases):
        lines += [
            f"  - id: case-{index:05d}",
            f'    prompt: "Extract the vendor of invoice {index} from ACME Corp, total {index * 7} EUR."',
            "    tags: [extraction]",
            "    assert:",
            "      - {type: icontains, value: acme}",
            "      - {type: max-length, value: 2000}",
        ]
    (folder / "llm_bench.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_trivial(folder: Path, tests: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "test_trivial.py").write_text(
        "import pytest\n\n\n"
        f"@pytest.mark.parametrize('index', range({tests}))\n"
        "def test_trivial(index):\n    assert index >= 0\n",
        encoding="utf-8",
    )


BARE_SDK = """
import sys, concurrent.futures, openai
base_url, cases, concurrency = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
client = openai.OpenAI(base_url=base_url, api_key="bench", max_retries=0)
def call(job):
    index, model = job
    prompt = f"Extract the vendor of invoice {index} from ACME Corp, total {index * 7} EUR."
    client.chat.completions.create(model=model, messages=[{"role": "user", "content": prompt}])
jobs = [(index, model) for index in range(cases) for model in ("gpt-4o", "gpt-5.5")]
with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
    list(pool.map(call, jobs))
"""


def run_bare_sdk(base_url: str, cases: int, concurrency: int) -> float:
    """The floor for a live run: the openai SDK alone on a thread pool, process start included."""
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", BARE_SDK, base_url, str(cases), str(concurrency)],
        check=True,
        env=_environment(),
    )
    return time.perf_counter() - started


def _environment() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}


def run_pytest(folder: Path, *args: str) -> Run:
    # Hypothesis is a test dependency of this repo, not of the plugin; its pytest plugin imports
    # all of hypothesis at the end of every session (~0.3 s), so it is off for every run here.
    command = [
        sys.executable,
        "-m",
        "pytest",
        str(folder),
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:hypothesispytest",
        *args,
    ]
    environment = _environment()
    started = time.perf_counter()
    process = subprocess.Popen(
        command, cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=environment
    )
    assert process.stdout is not None
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    tail = "\n".join(output.strip().splitlines()[-3:])
    return Run(seconds, usage.ru_maxrss / 1024, process.returncode, tail)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=3, help="live runs; the median is reported")
    parser.add_argument("--large", type=int, default=0, help="cases of the large replay (default 5x --cases)")
    args = parser.parse_args()
    large = args.large or 5 * args.cases
    calls = 2 * args.cases
    ideal = args.cases * sum(LATENCY_MS.values()) / 1000 / args.concurrency

    with tempfile.TemporaryDirectory() as temp, OpenAISimulator(latency_ms=LATENCY_MS) as server:
        root = Path(temp)
        suite, big, trivial = root / "suite", root / "big", root / "trivial"
        write_suite(suite, args.cases)
        write_suite(big, large)
        write_trivial(trivial, calls)
        common = [f"--llm-candidate={CANDIDATE}", "-m", "not llm_gate"]
        run_pytest(trivial, "--collect-only")  # warm-up: bytecode and assertion-rewrite caches
        run_pytest(suite, *common, "--collect-only")

        # Live runs vary by a few percent on a shared machine: the median of --repeat runs, each
        # recording into an empty cassette folder, and the same count of bare-SDK runs beside them.
        lives: list[Run] = []
        bares: list[float] = []
        for _ in range(args.repeat):
            shutil.rmtree(suite / "cassettes", ignore_errors=True)
            lives.append(
                run_pytest(
                    suite,
                    *common,
                    "--llm-record-mode=once",
                    f"--llm-base-url={server.base_url}",
                    f"--llm-concurrency={args.concurrency}",
                )
            )
            bares.append(run_bare_sdk(server.base_url, args.cases, args.concurrency))
        requests = len(server.requests) // args.repeat - calls  # the bare SDK's calls are counted too
        live = sorted(lives, key=lambda run: run.seconds)[len(lives) // 2]
        bare = statistics.median(bares)
        replay = run_pytest(suite, *common, f"--llm-base-url={DEAD_BASE_URL}")
        replay_again = run_pytest(suite, *common, f"--llm-base-url={DEAD_BASE_URL}")
        plain = run_pytest(trivial)
        plain_again = run_pytest(trivial)

        server.latency_ms = 0.0  # the large suite is recorded fast; only its replay is measured
        big_record = run_pytest(
            big,
            *common,
            "--llm-record-mode=once",
            f"--llm-base-url={server.base_url}",
            "--llm-concurrency=16",
        )
        big_replay = run_pytest(big, *common, f"--llm-base-url={DEAD_BASE_URL}")

    for name, run in (
        ("live", live),
        ("replay", replay),
        ("plain", plain),
        ("large record", big_record),
        ("large replay", big_replay),
    ):
        if run.exit_code != 0:
            print(f"{name} run failed (exit {run.exit_code}):\n{run.tail}", file=sys.stderr)
            return 1
    best_replay = min(replay.seconds, replay_again.seconds)
    best_plain = min(plain.seconds, plain_again.seconds)
    per_case_kb = (big_replay.peak_rss_mb - replay.peak_rss_mb) * 1024 / (large - args.cases)
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    print(
        f"live: {args.cases} cases x 2 models = {requests} requests at concurrency {args.concurrency}, "
        f"median of {args.repeat} runs ({', '.join(f'{run.seconds / ideal:.3f}x' for run in lives)})"
    )
    print(
        f"  measured {live.seconds:.2f} s, ideal {ideal:.2f} s -> "
        f"{live.seconds / ideal:.3f}x ideal (target <= 1.15x)"
    )
    print(
        f"  the bare openai SDK on {args.concurrency} threads: {bare:.2f} s -> {bare / ideal:.3f}x ideal "
        f"(median of {args.repeat})"
    )
    print(f"replay: {calls} recorded calls in {best_replay:.2f} s (best of 2)")
    print(
        f"  plain pytest, {calls} trivial tests: {best_plain:.2f} s -> "
        f"{best_replay / best_plain:.2f}x (target <= 2x)"
    )
    print(f"large replay: {large} cases in {big_replay.seconds:.2f} s")
    print(
        f"peak RSS: replay of {args.cases} cases {replay.peak_rss_mb:.1f} MB, of {large} cases "
        f"{big_replay.peak_rss_mb:.1f} MB -> {per_case_kb:.1f} KB per extra case; "
        f"plain pytest {plain.peak_rss_mb:.1f} MB"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
