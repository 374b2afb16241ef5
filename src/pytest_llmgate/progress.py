"""Running totals of a live run (calls done, errors, retries, spend) for a progress line.

Judge calls (llm-rubric) are calls and spend like any other. A baseline run shared by several
candidates' results is counted once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from pytest_llmgate.results import CaseResult


class Progress:
    """Thread-safe counters fed by finished cases; `line()` renders them in one line."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self.started = clock()
        self.expected_calls = 0
        self.calls = 0
        self.errors = 0
        self.retries = 0
        self.spend_usd = 0.0
        self.unpriced_calls = 0
        self._last_shown: float | None = None
        self._counted: set[tuple[str, str, str, str]] = set()  # (file, case, model, role) seen

    def expect(self, calls: int) -> None:
        with self._lock:
            self.expected_calls += calls

    def add(self, result: CaseResult) -> None:
        with self._lock:
            for role, run in zip(("baseline", "candidate"), result.runs, strict=False):
                key = (result.file_nodeid or result.file, result.case_id, run.model, role)
                if key in self._counted:
                    continue
                self._counted.add(key)
                for sample in run.samples:
                    self.calls += 1 + sample.judge_calls
                    if sample.judge_calls and sample.judge_cost_usd is None:
                        self.unpriced_calls += sample.judge_calls
                    elif sample.judge_calls:
                        self.spend_usd += sample.judge_cost_usd or 0.0
                    self.retries += max(0, sample.attempts - 1)
                    if sample.error is not None:
                        self.errors += 1
                    elif sample.cost_usd is None:
                        self.unpriced_calls += 1
                    else:
                        self.spend_usd += sample.cost_usd

    def line(self) -> str:
        with self._lock:
            total = f"/{self.expected_calls}" if self.expected_calls else ""
            text = (
                f"llmgate: {self.calls}{total} calls, {self.errors} errors, {self.retries} retries, "
                f"${self.spend_usd:.4f} spent"
            )
            if self.unpriced_calls:
                text += f" (+{self.unpriced_calls} calls of unknown price)"
            return text + f", {self._clock() - self.started:.0f} s"

    def due(self, every_s: float) -> bool:
        """True at most once per `every_s` seconds (the first time after `every_s` have passed)."""
        now = self._clock()
        with self._lock:
            last = self._last_shown if self._last_shown is not None else self.started
            if now - last < every_s:
                return False
            self._last_shown = now
            return True
