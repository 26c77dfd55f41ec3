"""Progress of a long solve on stderr: best cost over time, as a tqdm bar or as plain lines."""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

from tqdm import tqdm

from backoffice.routing.model import ProgressSink


class ConsoleProgress(ProgressSink):
    """A bar over the time limit with the best cost so far on a terminal; on a pipe or a log
    file, one line per new best cost (at most one a second, and the last one always)."""

    def __init__(self, *, cost_scale: float = 1.0, label: str = "solving", stream: TextIO | None = None) -> None:
        self.cost_scale = cost_scale
        self.label = label
        self.stream = stream or sys.stderr
        self._bar: tqdm[None] | None = None
        self._ticker: threading.Thread | None = None
        self._done = threading.Event()
        self._started = 0.0
        self._last_line = 0.0
        self._pending: tuple[float, int] | None = None

    def started(self, time_limit: float) -> None:
        self._started = time.monotonic()
        if self.stream.isatty():
            self._bar = tqdm(
                total=round(time_limit, 1),
                desc=self.label,
                unit="s",
                file=self.stream,
                bar_format="{desc}: {bar} {n:.0f}/{total:.0f} s{postfix}",
            )
            self._ticker = threading.Thread(target=self._tick, daemon=True)
            self._ticker.start()

    def improved(self, elapsed: float, objective: int) -> None:
        best = objective / self.cost_scale
        if self._bar is not None:
            self._bar.set_postfix_str(f"best {best:,.1f}", refresh=False)
            return
        self._pending = (elapsed, objective)
        if time.monotonic() - self._last_line >= 1.0:
            self._flush()

    def finished(self) -> None:
        self._done.set()
        if self._ticker is not None:
            self._ticker.join(timeout=2)
        if self._bar is not None:
            self._bar.n = min(self._bar.total, round(time.monotonic() - self._started, 1))
            self._bar.close()
        self._flush()

    def _flush(self) -> None:
        if self._pending is None:
            return
        elapsed, objective = self._pending
        self._pending = None
        self._last_line = time.monotonic()
        print(f"{self.label}: {elapsed:7.1f} s  best {objective / self.cost_scale:,.1f}", file=self.stream, flush=True)

    def _tick(self) -> None:
        while not self._done.wait(0.5):
            if self._bar is not None:
                self._bar.n = min(self._bar.total, round(time.monotonic() - self._started, 1))
                self._bar.refresh()
