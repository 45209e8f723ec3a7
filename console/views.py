"""What the console's pages and JSON show of a case: plain words, never the conversation id.

Everything the pages and the API send about a case goes through ``summary``: the case
number, closed-set values put into words, the coarse area's name, times. The pseudonymous
conversation id, the only link to the person, is left out on purpose.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Mapping, Optional
from zoneinfo import ZoneInfo

from bot.cases.queue import ASSISTANT, ENDED_BY_PERSON, EXPIRED, PERSON, CaseView, Line
from console.users import LOCK_FIRST_MINUTES, LOCK_MAX_MINUTES, MAX_FAILURES

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
# Why a case closed without a caseworker (``console.audit.AuditLog.closed_by``).
CLOSED_WORDS = {
    ENDED_BY_PERSON: "The person ended the conversation (quick exit or “forget me”); the "
                       "messages were deleted.",
    EXPIRED: "The conversation was deleted after a long silence, so the case closed by "
               "itself; the messages were deleted.",
}
# The audit page: what a user did to a case, what ended a case nobody closed in the console,
# and what happened to an account.
ENDED_WORDS = {
    ENDED_BY_PERSON: "ended the conversation (quick exit or “forget me”): the case closed and "
                     "its messages were deleted",
    EXPIRED: "closed the case: the conversation was deleted after a long silence",
}
CASE_ACTION_WORDS = {
    "claimed": "took the case", "opened": "opened the case", "replied": "replied",
    "transferred": "handed the case to {detail}", "closed": "closed the case: {outcome}",
    "released": "put the case back in the queue",
}
SIGN_IN_WORDS = {
    "signed_in": "signed in",
    "refused": "sign-in refused (wrong password, locked or disabled account)",
    "locked_out": f"sign-in refused; the account is locked after {MAX_FAILURES} more failures "
                  f"in a row ({LOCK_FIRST_MINUTES} min the first time, twice as long each "
                  f"time after, at most {LOCK_MAX_MINUTES} min)",
    "signed_out": "signed out",
    "expired": "session timed out",
    "created": "account created (helpline users add)",
    "disabled": "account disabled, signed out everywhere (helpline users disable)",
    "enabled": "account enabled (helpline users enable)",
    "password_set": "password set, signed out everywhere (helpline users password)",
    "unlocked": "lock-out ended by a supervisor (audit page or helpline users unlock)",
}


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

    def stamp(self, moment: dt.datetime) -> str:
        """Date and time in the hotline's time zone: ``2026-11-26 09:05``."""
        return moment.astimezone(self.zone).strftime("%Y-%m-%d %H:%M")

    def audit_entry(self, entry: Any) -> dict[str, Any]:
        """A line of the audit page (a ``console.audit.Entry``) in plain words."""
        if entry.kind == "sign_in":
            return {"kind": "Sign-in", "at": self.stamp(entry.at), "case": None,
                    "who": entry.who or "A name that is no user (not kept)",
                    "what": SIGN_IN_WORDS.get(entry.what, entry.what)}
        who, what = entry.who, CASE_ACTION_WORDS.get(entry.what, entry.what)
        if entry.what == "closed" and entry.detail in ENDED_WORDS and who in (PERSON, ASSISTANT):
            who = "The person" if who == PERSON else "The assistant"
            what = ENDED_WORDS[entry.detail]
        else:
            what = what.format(detail=entry.detail or "",
                               outcome=OUTCOME_WORDS.get(entry.detail or "", entry.detail or ""))
        return {"kind": "Case", "at": self.stamp(entry.at), "case": entry.case, "who": who,
                "what": what}

    def line(self, line: Line, me: str) -> dict[str, Any]:
        return {"author": line.author, "who": AUTHOR_WORDS.get(line.author, line.author),
                "at": self.clock(line.at), "text": line.text}
