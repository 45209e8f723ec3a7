"""Opening hours in the directory's notation, and whether a service is open at a moment.

Notation (case-insensitive; ``;`` between parts): ``24/7``; or day groups with time ranges,
``mon-fri 08:00-16:00; sat 09:00-12:00``, ``mon,wed,fri 08:00-12:00 14:00-17:00``. Days are
``mon tue wed thu fri sat sun``; ``24:00`` ends at midnight; an empty text means unknown.
Times are the service's local time.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Optional

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_RANGE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")


class HoursError(ValueError):
    """Opening hours that cannot be read; the message says which part."""


@dataclass(frozen=True)
class OpeningHours:
    """Weekday index (0 = Monday) -> time ranges; ``always`` for 24/7; nothing = unknown."""

    ranges: tuple[tuple[tuple[dt.time, dt.time], ...], ...] = ((),) * 7
    always: bool = False

    @property
    def known(self) -> bool:
        return self.always or any(self.ranges)

    def is_open(self, local: dt.datetime) -> Optional[bool]:
        """Whether open at ``local`` (the service's local time); None when hours are unknown."""
        if self.always:
            return True
        if not self.known:
            return None
        now = local.time()
        return any(start <= now < end for start, end in self.ranges[local.weekday()])


def _days(text: str) -> list[int]:
    days: list[int] = []
    for part in text.split(","):
        if "-" in part:
            first, _, last = part.partition("-")
            if first not in DAYS or last not in DAYS:
                raise HoursError(f"unknown day in {part!r} (use {' '.join(DAYS)})")
            a, b = DAYS.index(first), DAYS.index(last)
            days += list(range(a, b + 1)) if a <= b else list(range(a, 7)) + list(range(0, b + 1))
        elif part in DAYS:
            days.append(DAYS.index(part))
        else:
            raise HoursError(f"unknown day {part!r} (use {' '.join(DAYS)})")
    return days


def _time(hours: str, minutes: str) -> dt.time:
    return dt.time.max if hours == "24" else dt.time(int(hours), int(minutes))


def parse_hours(text: str) -> OpeningHours:
    """Reads opening hours; raises HoursError naming the part it cannot read."""
    cleaned = " ".join((text or "").lower().split())
    if not cleaned:
        return OpeningHours()
    if cleaned in {"24/7", "24h", "always"}:
        return OpeningHours(always=True)
    table: list[list[tuple[dt.time, dt.time]]] = [[] for _ in DAYS]
    for part in filter(None, (p.strip() for p in cleaned.split(";"))):
        words = part.split(" ")
        if len(words) < 2:
            raise HoursError(f"{part!r}: expected days then times, e.g. 'mon-fri 08:00-16:00'")
        days = _days(words[0])
        for span in words[1:]:
            match = _RANGE.match(span)
            if not match:
                raise HoursError(f"{span!r}: expected HH:MM-HH:MM")
            start, end = _time(*match.group(1, 2)), _time(*match.group(3, 4))
            if end <= start:
                raise HoursError(f"{span!r}: the range ends before it starts")
            for day in days:
                table[day].append((start, end))
    return OpeningHours(ranges=tuple(tuple(sorted(r)) for r in table))
