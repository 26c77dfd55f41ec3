"""Where a turn's time goes: each stage's duration and the store round trips of every turn.

A turn is timed from the channel's call to its replies: ``accept`` (the message stored),
``lease`` (the conversation's lock and lease), ``understand`` (the NLU), ``dialogue`` (the bot's
decision, with the store reads and writes the flows make), ``write`` (replies, slots, events and
the message marked processed) and ``total``. Store round trips are counted by pymongo's command
monitoring, attributed to the turn through a context variable (the commands of concurrent turns
are told apart). The figures of recent turns are kept in process and served at ``GET /metrics``
in the Prometheus text format; ``bench/throughput.py`` prints them.

Knows nothing of what a turn does, only when its stages start and end.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections import deque
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field

from pymongo import monitoring

STAGES = ("accept", "lease", "understand", "dialogue", "write", "total")
RECENT = 5000
"""Turns the quantiles are computed over (a sliding window, like a Prometheus summary)."""


@dataclass
class TurnClock:
    """One turn's stages (seconds) and store round trips."""

    started: float = field(default_factory=time.perf_counter)
    seconds: dict[str, float] = field(default_factory=dict)
    round_trips: int = 0

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        began = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - began


_current: ContextVar[TurnClock | None] = ContextVar("turn_clock", default=None)


class _StoreCommands(monitoring.CommandListener):
    """Counts every command a turn sends to the store (registered once, for every client made after)."""

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        clock = _current.get()
        if clock is not None:
            clock.round_trips += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        return None

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        return None


monitoring.register(_StoreCommands())


class TurnTimings:
    """Recent turns' stage durations and round trips, for ``/metrics`` and the bench."""

    def __init__(self, recent: int = RECENT) -> None:
        self.durations: dict[str, deque[float]] = {stage: deque(maxlen=recent) for stage in STAGES}
        self.round_trips: deque[int] = deque(maxlen=recent)
        self.turns = 0
        self.sums: dict[str, float] = dict.fromkeys(STAGES, 0.0)

    @contextlib.contextmanager
    def turn(self) -> Iterator[TurnClock]:
        """Time one turn; stages are marked with :func:`stage` by the code it calls."""
        clock = TurnClock()
        token = _current.set(clock)
        try:
            yield clock
        finally:
            _current.reset(token)
            clock.seconds["total"] = time.perf_counter() - clock.started
            self.turns += 1
            for stage, seconds in clock.seconds.items():
                if stage in self.durations:
                    self.durations[stage].append(seconds)
                    self.sums[stage] += seconds
            self.round_trips.append(clock.round_trips)

    def summary(self) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        for stage, values in self.durations.items():
            if values:
                ordered = sorted(values)
                out[stage] = {
                    "p50_ms": statistics.median(ordered) * 1000,
                    "p95_ms": ordered[int(0.95 * (len(ordered) - 1))] * 1000,
                    "count": float(len(ordered)),
                }
        if self.round_trips:
            trips = sorted(self.round_trips)
            out["round_trips"] = {"p50": statistics.median(trips), "max": float(trips[-1]), "count": float(len(trips))}
        return out

    def prometheus(self) -> str:
        """The Prometheus text exposition of the recent turns."""
        lines = [
            "# HELP aftersales_turn_stage_seconds Duration of a turn's stages (recent turns).",
            "# TYPE aftersales_turn_stage_seconds summary",
        ]
        for stage, values in self.durations.items():
            ordered = sorted(values)
            for quantile in (0.5, 0.95):
                value = ordered[int(quantile * (len(ordered) - 1))] if ordered else 0.0
                lines.append(f'aftersales_turn_stage_seconds{{stage="{stage}",quantile="{quantile}"}} {value:.6f}')
            lines.append(f'aftersales_turn_stage_seconds_sum{{stage="{stage}"}} {self.sums[stage]:.6f}')
            count = self.turns if stage == "total" else len(values)
            lines.append(f'aftersales_turn_stage_seconds_count{{stage="{stage}"}} {count}')
        trips = sorted(self.round_trips)
        lines += [
            "# HELP aftersales_turn_store_round_trips Store commands one turn sent (recent turns).",
            "# TYPE aftersales_turn_store_round_trips summary",
        ]
        for quantile in (0.5, 1.0):
            value = trips[int(quantile * (len(trips) - 1))] if trips else 0
            lines.append(f'aftersales_turn_store_round_trips{{quantile="{quantile}"}} {value}')
        lines.append(f"aftersales_turn_store_round_trips_count {len(trips)}")
        return "\n".join(lines) + "\n"


@contextlib.contextmanager
def stage(name: str) -> Iterator[None]:
    """Mark a stage of the turn being timed (nothing outside a timed turn)."""
    clock = _current.get()
    if clock is None:
        yield
        return
    with clock.stage(name):
        yield
