"""Run cases ahead of pytest on a bounded pool of threads, while pytest still reports item by item.

pytest runs one item at a time; a model call spends most of its time waiting on the network.
The prefetcher is handed every case the session (or this xdist worker) will run, in run order,
and works through them with `concurrency` threads; each item then only collects its result.

Threads are daemons: on Ctrl-C the process exits without waiting for calls in flight. That loses
nothing already recorded, because a cassette is written atomically and only after its calls all
succeeded (see recording.py); an interrupted case simply has no recording yet.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from typing import Generic, TypeVar

Result = TypeVar("Result")


class Prefetcher(Generic[Result]):
    """Runs submitted jobs on up to `concurrency` daemon threads, first submitted first started.

    `result(key, job)` returns the job's result, moving it to the front of the queue when no
    worker has started it yet (so an item never waits behind the queue for its own work).
    """

    def __init__(
        self,
        concurrency: int,
        name: str = "llmgate",
        group: Callable[[Hashable], Hashable] | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        self.concurrency = concurrency
        self._name = name
        # Jobs of one group (a model) take about as long as each other: the mean seconds of each
        # group's finished jobs order the last jobs of the queue, longest first (see `_next`).
        self._group = group
        self._seconds: dict[Hashable, tuple[float, int]] = {}
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._queue: deque[Hashable] = deque()
        self._jobs: dict[Hashable, Callable[[], Result]] = {}
        self._futures: dict[Hashable, Future[Result]] = {}
        self._threads: list[threading.Thread] = []
        self._closed = False
        self._urgent = False  # the front of the queue is a job an item waits for

    def submit(self, key: Hashable, job: Callable[[], Result]) -> None:
        """Queue `job` under `key` unless that key was already submitted (idempotent)."""
        with self._lock:
            if self._closed or key in self._futures:
                return
            self._futures[key] = Future()
            self._jobs[key] = job
            self._queue.append(key)
            if len(self._threads) < self.concurrency:
                thread = threading.Thread(
                    target=self._work, name=f"{self._name}-{len(self._threads)}", daemon=True
                )
                self._threads.append(thread)
                thread.start()
            self._wake.notify()

    def result(self, key: Hashable, job: Callable[[], Result]) -> Result:
        """The result of `key`; a job still waiting in the queue (or never submitted) goes first.

        The asking thread only waits: running the job itself would put one call more in flight
        than `concurrency` allows.
        """
        self.submit(key, job)
        with self._lock:
            future = self._futures.get(key)
            if future is None or future.cancelled():  # closed before it ran: nobody else will
                future = self._futures[key] = Future()
                inline = True
            else:
                inline = False
                if key in self._jobs:  # queued, not started: move it to the front
                    self._queue.remove(key)
                    self._queue.appendleft(key)
                    self._urgent = True
        if inline:
            self._run(future, job)
        return future.result()

    def __contains__(self, key: Hashable) -> bool:
        """Whether `key` was submitted (or asked for) already."""
        with self._lock:
            return key in self._futures

    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    def close(self) -> None:
        """Drop queued jobs and let the threads end; running jobs finish on their own."""
        with self._lock:
            self._closed = True
            for key in self._queue:
                self._futures[key].cancel()
                self._jobs.pop(key, None)
            self._queue.clear()
            self._wake.notify_all()

    def _work(self) -> None:
        while True:
            with self._lock:
                while not self._queue and not self._closed:
                    self._wake.wait()
                if self._closed:
                    return
                key = self._next()
                job = self._jobs.pop(key)
                future = self._futures[key]
            started = time.monotonic()
            self._run(future, job)
            if self._group is not None:
                self._learn(self._group(key), time.monotonic() - started)

    def _next(self) -> Hashable:
        """The next job (under the lock): first come, first served, but for the last few.

        With no more jobs behind them than threads to run them, the slowest are started first
        (longest processing time first): a slow model's call started last would keep the run
        going on its own while the other threads sit idle. A job an item is waiting for (moved
        to the front by `result`) still goes first, and jobs of no known duration keep their order.
        """
        if self._group is None or len(self._queue) > 2 * self.concurrency or self._urgent:
            self._urgent = False
            return self._queue.popleft()
        best, best_seconds = 0, -1.0
        for index, key in enumerate(self._queue):
            mean = self._seconds.get(self._group(key))
            seconds = mean[0] if mean is not None else -1.0
            if seconds > best_seconds:
                best, best_seconds = index, seconds
        key = self._queue[best]
        del self._queue[best]
        return key

    def _learn(self, group: Hashable, seconds: float) -> None:
        with self._lock:
            mean, count = self._seconds.get(group, (0.0, 0))
            self._seconds[group] = ((mean * count + seconds) / (count + 1), count + 1)

    @staticmethod
    def _run(future: Future[Result], job: Callable[[], Result]) -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(job())
        except BaseException as exc:  # the item re-raises it on its own thread
            future.set_exception(exc)
