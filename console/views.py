"""What the console's pages and JSON show of a case: plain words, never the conversation id.

Everything the pages and the API send about a case goes through ``summary``: the case
number, closed-set values put into words, the coarse area's name, times. The pseudonymous
conversation id, the only link to the person, is left out on purpose.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Mapping, Optional
from zoneinfo import ZoneInfo

from bot.cases.queue import CaseView, Line

LEVEL_WORDS = {
    "emergency": "Emergency: immediate danger was signalled",
    "high": "High: the answers point to serious risk",
    "medium": "Medium: the answers point to some risk",
    "low": "Low: the answers point to little risk",
    "none": "Not assessed: the person asked to talk to someone",
}
LEVEL_SHORT = {"emergency": "Emergency", "high": "High", "medium": "Medium", "low": "Low",
               "none": "Not assessed"}
LANGUAGE_NAMES = {"en": "English", "fr": "French", "ar": "Arabic", "es": "Spanish"}
CHANNEL_NAMES = {"sms": "SMS", "telegram": "Telegram", "webchat": "Web chat",
                 "helpline": "Helpline app"}
STATUS_WORDS = {"waiting": "Waiting", "active": "Active", "closed": "Closed"}
OUTCOME_WORDS = {"referred": "Referred to a service", "information_given": "Information given",
                 "no_contact": "No contact", "other": "Other"}
AUTHOR_WORDS = {"person": "Person", "caseworker": "Caseworker", "assistant": "Assistant"}


def duration(seconds: float) -> str:
    """``12 min``, ``2 h 05 min``, ``3 days``."""
    minutes = max(0, int(seconds // 60))
    if minutes < 1:
        return "less than a minute"
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    return f"{hours // 24} days"


class Describer:
    """Puts cases into words for one caseworker's language, with place names if known."""

    def __init__(self, categories: Mapping[str, Mapping[str, str]], timezone: str = "UTC",
                 places: Optional[Any] = None) -> None:
        """``places``: a ``bot.services.places.Gazetteer`` (or None: areas shown as codes)."""
        self.categories = categories
        self.zone = ZoneInfo(timezone)
        self.places = places

    def need_name(self, need: str, language: str) -> str:
        names = self.categories.get(need) or {}
        return names.get(language) or names.get("en") or need.replace("_", " ")

    def area_name(self, area: Optional[str], language: str) -> Optional[str]:
        if not area:
            return None
        place = self.places.places.get(area) if self.places is not None else None
        return place.name_in(language) if place is not None else area

    def clock(self, moment: Optional[dt.datetime]) -> Optional[str]:
        return moment.astimezone(self.zone).strftime("%H:%M") if moment else None

    def summary(self, case: CaseView, language: str, now: dt.datetime) -> dict[str, Any]:
        """The case as the pages and the API show it (no conversation id)."""
        waited_until = case.claimed_at or case.closed_at or now
        return {
            "number": case.id,
            "url": f"/cases/{case.id}",
            "status": case.status,
            "status_text": STATUS_WORDS[case.status],
            "level": case.triage_level,
            "level_short": LEVEL_SHORT[case.triage_level],
            "level_text": LEVEL_WORDS[case.triage_level],
            "needs": [self.need_name(n, language) for n in case.needs],
            "area": self.area_name(case.area, language),
            "language": case.language,
            "language_name": LANGUAGE_NAMES.get(case.language, case.language),
            "channel": CHANNEL_NAMES.get(case.channel, case.channel),
            "caseworker": case.caseworker,
            "outcome": OUTCOME_WORDS.get(case.outcome) if case.outcome else None,
            "opened_at": self.clock(case.created_at),
            "waited": duration((waited_until - case.created_at).total_seconds()),
            "taken_at": self.clock(case.claimed_at),
            "taken_for": (duration((now - case.claimed_at).total_seconds())
                          if case.claimed_at and case.status == "active" else None),
        }

    def line(self, line: Line, me: str) -> dict[str, Any]:
        return {"author": line.author, "who": AUTHOR_WORDS.get(line.author, line.author),
                "at": self.clock(line.at), "text": line.text}
