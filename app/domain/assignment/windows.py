"""R2.2: a rule's active time window — weekdays and hours in its timezone (Asia/Shanghai by default)."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo


def parse_clock(value: str) -> time:
    """HH:MM; "24:00" is the end of the day."""
    if value == "24:00":
        return time.max
    return time.fromisoformat(value)


def _bounds(window: dict[str, Any]) -> tuple[set[int], time, time]:
    weekdays = set(window.get("weekdays") or range(1, 8))
    return weekdays, parse_clock(window.get("start", "00:00")), parse_clock(window.get("end", "24:00"))


def is_open(window: dict[str, Any] | None, tz: ZoneInfo, now: datetime) -> bool:
    """None means always open. Hours are [start, end) local time; an end before start spans midnight."""
    if not window:
        return True
    weekdays, start, end = _bounds(window)
    local = now.astimezone(tz)
    clock = local.time().replace(tzinfo=None)
    if start <= end:
        return local.isoweekday() in weekdays and start <= clock < end
    # overnight window: the part after midnight belongs to the previous day's window
    if clock >= start:
        return local.isoweekday() in weekdays
    return clock < end and (local - timedelta(days=1)).isoweekday() in weekdays


def next_open(window: dict[str, Any] | None, tz: ZoneInfo, now: datetime) -> datetime:
    """The first moment at or after `now` when the window is open (UTC), searching up to 8 days ahead."""
    if is_open(window, tz, now):
        return now
    assert window is not None
    _, start, _ = _bounds(window)
    local = now.astimezone(tz)
    for days in range(0, 9):
        day = (local + timedelta(days=days)).date()
        candidate = datetime.combine(day, start, tzinfo=tz)
        if candidate >= local and is_open(window, tz, candidate):
            return candidate.astimezone(now.tzinfo)
    raise ValueError(f"window {window} never opens")
