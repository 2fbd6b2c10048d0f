"""Maintenance windows: a cron expression for each window's start, a duration and a time zone.

Downloads may happen at any time; installs only inside a window (or after the deadline, see
``deadlines``). The window handed to a device is the one open now, else the next one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from suture.scheduler.errors import InvalidInputError

MAX_DURATION_S = 7 * 24 * 3600


@dataclass(frozen=True)
class Window:
    """``[not_before, not_after)`` in unix seconds."""

    not_before: int
    not_after: int

    def contains(self, when: int) -> bool:
        return self.not_before <= when < self.not_after


#: The window used when a rollout sets none: always open.
ALWAYS = Window(0, 2**32 - 1)


@dataclass(frozen=True)
class WindowPolicy:
    cron: str
    duration_s: int
    tz: str = "UTC"

    def __post_init__(self) -> None:
        validate(self.cron, self.duration_s, self.tz)

    def window_at(self, now: int) -> Window:
        """The window open at ``now``, else the next one to open."""
        zone = ZoneInfo(self.tz)
        local_now = datetime.fromtimestamp(now, UTC).astimezone(zone)
        # croniter's get_prev is strict: start one minute after now's minute so that a start at
        # exactly now's minute counts as the latest start.
        base = local_now.replace(second=0, microsecond=0) + timedelta(minutes=1)
        latest = croniter(self.cron, base).get_prev(datetime)
        start = int(latest.timestamp())
        if start <= now < start + self.duration_s:
            return Window(start, start + self.duration_s)
        nxt = croniter(self.cron, local_now).get_next(datetime)
        start = int(nxt.timestamp())
        return Window(start, start + self.duration_s)


def validate(cron: str, duration_s: int, tz: str) -> None:
    """Raise ``InvalidInputError`` unless the window definition is usable."""
    if not isinstance(cron, str) or len(cron) > 128 or not croniter.is_valid(cron):
        raise InvalidInputError(f"invalid cron expression {cron!r} (five fields: m h dom mon dow)")
    if len(cron.split()) != 5:
        raise InvalidInputError(f"cron expression {cron!r} must have five fields")
    if not 60 <= duration_s <= MAX_DURATION_S:
        raise InvalidInputError(f"window duration must be 60..{MAX_DURATION_S} seconds")
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidInputError(f"unknown time zone {tz!r}") from exc
