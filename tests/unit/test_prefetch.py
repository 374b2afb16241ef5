"""The prefetch pool: bounded, in order, results and errors delivered to the item that asks."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from pytest_llmgate.prefetch import Prefetcher


def test_jobs_run_at_most_concurrency_at_once_and_all_results_arrive() -> None:
    lock = threading.Lock()
    running = peak = 0
    release = threading.Event()

    def job(value: int) -> int:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        release.wait(5)
        with lock:
            running -= 1
        return value * 10

    pool: Prefetcher[int] = Prefetcher(3)
    for index in range(10):
        pool.submit(index, lambda index=index: job(index))  # type: ignore[misc]
    for _ in range(500):  # wait (at most 5 s) for the pool to fill up
        if pool.pending() == 7:
            break
        threading.Event().wait(0.01)
    assert pool.pending() == 7  # three started, seven wait their turn
    assert peak == 3
    release.set()
    assert [pool.result(index, lambda: -1) for index in range(10)] == [i * 10 for i in range(10)]
    pool.close()


def test_a_queued_job_that_is_asked_for_jumps_the_queue() -> None:
    blocker = threading.Event()
    order: list[str] = []
    pool: Prefetcher[str] = Prefetcher(1)
    pool.submit("slow", lambda: "slow" if blocker.wait(5) else "timeout")
    for name in ("a", "b", "wanted"):
        pool.submit(name, lambda name=name: order.append(name) or name)  # type: ignore[misc]
    answer: list[str] = []
    asker = threading.Thread(target=lambda: answer.append(pool.result("wanted", lambda: "inline")))
    asker.start()
    for _ in range(500):  # wait until "wanted" is at the front
        if pool.pending() == 3 and pool._queue[0] == "wanted":
            break
        threading.Event().wait(0.01)
    blocker.set()
    asker.join(5)
    assert answer == ["wanted"]  # run by the pool, not inline
    assert pool.result("b", lambda: "inline") == "b"
    assert order[0] == "wanted"
    pool.close()


def test_submit_is_idempotent_and_unknown_keys_run_inline() -> None:
    calls: list[str] = []
    pool: Prefetcher[int] = Prefetcher(2)
    done = threading.Event()

    def job() -> int:
        calls.append("job")
        done.set()
        return 1

    pool.submit("a", job)
    pool.submit("a", job)
    done.wait(5)
    assert pool.result("a", job) == 1
    assert calls == ["job"]
    assert pool.result("never-submitted", lambda: 7) == 7
    pool.close()


def test_an_exception_reaches_the_item_that_asks() -> None:
    pool: Prefetcher[int] = Prefetcher(2)

    def boom() -> int:
        raise RuntimeError("corrupt cassette")

    pool.submit("x", boom)
    with pytest.raises(RuntimeError, match="corrupt cassette"):
        pool.result("x", boom)
    pool.close()


def test_close_drops_queued_jobs_and_result_still_answers() -> None:
    blocker = threading.Event()
    ran: list[int] = []
    pool: Prefetcher[int] = Prefetcher(1)
    pool.submit(0, lambda: int(blocker.wait(5)))
    for index in range(1, 5):
        pool.submit(index, lambda index=index: ran.append(index) or index)  # type: ignore[misc]
    pool.close()
    blocker.set()
    assert pool.pending() == 0
    assert ran == []
    assert pool.result(3, lambda: 33) == 33  # after close, asked-for work runs on the asker


def test_concurrency_must_be_positive() -> None:
    with pytest.raises(ValueError, match="concurrency must be >= 1"):
        Prefetcher(0)


def _run_in_order(prefetcher: Prefetcher[str], keys: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """Submit a blocking job, then `keys` (fast ones return at once, slow ones take 100 ms), release
    the block and return the order in which the jobs started."""
    started: list[tuple[str, int]] = []
    gate = threading.Event()

    def job(key: tuple[str, int]) -> Callable[[], str]:
        def run() -> str:
            if key[0] == "block":
                gate.wait(5)
            started.append(key)
            if key[0] == "slow":
                time.sleep(0.1)
            return f"{key[0]}{key[1]}"

        return run

    for key in [("block", 0), *keys]:
        prefetcher.submit(key, job(key))
    gate.set()
    deadline = time.monotonic() + 5
    while len(started) < len(keys) + 1 and time.monotonic() < deadline:
        time.sleep(0.005)
    assert [prefetcher.result(key, job(key)) for key in keys] == [f"{kind}{index}" for kind, index in keys]
    prefetcher.close()
    return started


def test_the_last_jobs_start_slowest_model_first_so_no_slow_call_runs_on_alone() -> None:
    """Longest processing time first, for the tail only: one thread; the first jobs run in order
    (and teach the prefetcher each model's duration); once no more jobs wait than twice the
    threads, the slow model's go first, so the run does not end on a slow call alone."""
    prefetcher: Prefetcher[str] = Prefetcher(1, group=lambda key: key[0])  # type: ignore[index]
    keys = [("fast", 1), ("slow", 2), ("fast", 3), ("fast", 4), ("slow", 5)]
    assert _run_in_order(prefetcher, keys) == [
        ("block", 0),
        ("fast", 1),
        ("slow", 2),
        ("fast", 3),  # three waiting: in order
        ("slow", 5),  # two waiting: the slow one first
        ("fast", 4),
    ]


def test_without_groups_jobs_start_first_come_first_served() -> None:
    keys = [("fast", 1), ("slow", 2), ("fast", 3), ("fast", 4), ("slow", 5)]
    assert _run_in_order(Prefetcher(1), keys) == [("block", 0), *keys]
