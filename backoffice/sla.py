"""Service levels: business hours, the three clocks of a ticket (first response, next response,
resolution), their targets per ticket type and priority, and how long a ticket has waited.

A clock counts business time only, and not while the ticket waits for the customer (its pause
intervals). A clock is ``warning`` once ``warn_at`` of its target is used, ``breached`` after
it; a stopped clock is ``met`` or ``met_late``.

Pure functions over datetimes; the ticket desk supplies the facts and the SLA monitor acts on
the results.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

MAX_DAYS_SCANNED = 800
"""Business-time sums walk day by day; more than two years between two instants is a data error."""

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
CLOCKS = ("first_response", "next_response", "resolution")


@dataclass(frozen=True, slots=True)
class BusinessHours:
    """Opening hours per weekday in the shop's time zone, with holidays and make-up workdays (调休)."""

    timezone: str = "Asia/Shanghai"
    weekly: tuple[tuple[tuple[time, time], ...], ...] = ((),) * 7
    """Monday first; each day a tuple of (start, end); ``time(0)`` as the end means midnight."""
    holidays: frozenset[date] = frozenset()
    workdays: frozenset[date] = frozenset()
    """Weekend days worked as a weekday (they get Monday's hours)."""

    @classmethod
    def always(cls, timezone: str = "Asia/Shanghai") -> BusinessHours:
        return cls(timezone, ((((time(0), time(0)),),) * 7))

    def day_intervals(self, day: date) -> list[tuple[datetime, datetime]]:
        if day in self.holidays:
            return []
        hours = self.weekly[0] if day in self.workdays else self.weekly[day.weekday()]
        zone = ZoneInfo(self.timezone)
        out: list[tuple[datetime, datetime]] = []
        for start, end in hours:
            begin = datetime.combine(day, start, zone)
            finish = (
                datetime.combine(day + timedelta(days=1), time(0), zone)
                if end == time(0)
                else (datetime.combine(day, end, zone))
            )
            out.append((begin.astimezone(UTC), finish.astimezone(UTC)))
        return out

    def seconds_between(self, start: datetime, end: datetime) -> float:
        """Business seconds in ``[start, end)``; zero when ``end`` is not after ``start``."""
        if end <= start:
            return 0.0
        zone = ZoneInfo(self.timezone)
        day = start.astimezone(zone).date() - timedelta(days=1)
        last = end.astimezone(zone).date()
        total = 0.0
        for _ in range(MAX_DAYS_SCANNED):
            if day > last:
                break
            for begin, finish in self.day_intervals(day):
                overlap = (min(finish, end) - max(begin, start)).total_seconds()
                if overlap > 0:
                    total += overlap
            day += timedelta(days=1)
        return total

    def add(self, start: datetime, seconds: float) -> datetime:
        """The instant ``seconds`` of business time after ``start``."""
        zone = ZoneInfo(self.timezone)
        day = start.astimezone(zone).date() - timedelta(days=1)
        left = max(0.0, seconds)
        for _ in range(MAX_DAYS_SCANNED):
            for begin, finish in self.day_intervals(day):
                begin = max(begin, start)
                if finish <= begin:
                    continue
                span = (finish - begin).total_seconds()
                if left <= span:
                    return begin + timedelta(seconds=left)
                left -= span
            day += timedelta(days=1)
        raise ValueError("no business hours within two years: check the SLA calendar")


@dataclass(frozen=True, slots=True)
class Targets:
    """Minutes of business time; None means no target for that clock."""

    first_response: int | None
    next_response: int | None
    resolution: int | None

    def minutes(self, clock: str) -> int | None:
        value: int | None = getattr(self, clock)
        return value


@dataclass(frozen=True, slots=True)
class SlaFacts:
    """What a ticket records for its clocks."""

    created_at: datetime
    first_response_at: datetime | None = None
    awaiting_since: datetime | None = None
    """The customer wrote again and nobody has answered since: the next-response clock runs."""
    resolved_at: datetime | None = None
    pauses: tuple[tuple[datetime, datetime | None], ...] = ()
    """Intervals spent waiting for the customer; an open interval is a pause still going on."""


@dataclass(frozen=True, slots=True)
class Clock:
    name: str
    state: str
    """running, warning, breached, paused, met, met_late"""
    target_seconds: float
    elapsed_seconds: float
    started_at: datetime
    stopped_at: datetime | None
    due_at: datetime | None
    """When it will breach (running clocks not paused)."""

    @property
    def remaining_seconds(self) -> float:
        return self.target_seconds - self.elapsed_seconds

    def as_dict(self) -> dict[str, object]:
        return {
            "clock": self.name,
            "state": self.state,
            "target_minutes": round(self.target_seconds / 60),
            "elapsed_minutes": round(self.elapsed_seconds / 60, 1),
            "remaining_minutes": round(self.remaining_seconds / 60, 1),
            "started_at": self.started_at.isoformat(),
            "stopped_at": self.stopped_at.isoformat() if self.stopped_at else None,
            "due_at": self.due_at.isoformat() if self.due_at else None,
        }


def _paused_business_seconds(
    hours: BusinessHours, pauses: Sequence[tuple[datetime, datetime | None]], start: datetime, end: datetime
) -> float:
    total = 0.0
    for begin, finish in pauses:
        lo, hi = max(begin, start), min(finish or end, end)
        total += hours.seconds_between(lo, hi)
    return total


def measure(
    hours: BusinessHours, name: str, target_minutes: int, start: datetime, stop: datetime | None,
    pauses: Sequence[tuple[datetime, datetime | None]], now: datetime, warn_at: float,
) -> Clock:  # fmt: skip
    end = stop or now
    elapsed = hours.seconds_between(start, end) - _paused_business_seconds(hours, pauses, start, end)
    target = float(target_minutes * 60)
    due: datetime | None = None
    paused = stop is None and any(finish is None and begin <= now for begin, finish in pauses)
    if stop is not None:
        state = "met" if elapsed <= target else "met_late"
    elif elapsed > target:
        state = "breached"
    elif paused:
        state = "paused"
    else:
        state = "warning" if elapsed >= warn_at * target else "running"
        due = hours.add(now, target - elapsed)
    return Clock(name, state, target, max(0.0, elapsed), start, stop, due)


def clocks(facts: SlaFacts, targets: Targets, hours: BusinessHours, now: datetime, warn_at: float = 0.8) -> list[Clock]:
    out: list[Clock] = []
    if targets.first_response is not None:
        out.append(
            measure(hours, "first_response", targets.first_response, facts.created_at, facts.first_response_at,
                    facts.pauses, now, warn_at)
        )  # fmt: skip
    if targets.next_response is not None and facts.first_response_at is not None and facts.awaiting_since is not None:
        out.append(
            measure(hours, "next_response", targets.next_response, facts.awaiting_since, None, facts.pauses, now,
                    warn_at)
        )  # fmt: skip
    if targets.resolution is not None:
        out.append(
            measure(hours, "resolution", targets.resolution, facts.created_at, facts.resolved_at, facts.pauses, now,
                    warn_at)
        )  # fmt: skip
    return out


def format_duration(seconds: float, language: str = "zh") -> str:
    """An age people read at a glance: 3天2小时, 2小时15分钟, 5分钟, 刚刚 (or the English)."""
    minutes = int(max(0.0, seconds) // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if language == "zh":
        if days:
            return f"{days}天{hours}小时" if hours else f"{days}天"
        if hours:
            return f"{hours}小时{mins}分钟" if mins else f"{hours}小时"
        return f"{mins}分钟" if mins else "刚刚"
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {mins} min" if mins else f"{hours} h"
    return f"{mins} min" if mins else "just now"
