"""What the dialogue and the Rasa server need from the hand-off, once per process.

``cases_for(url)`` gives the ``Cases`` of a database whose schema is current, else None (the
hand-off is then reported unavailable, as before the cases existed). ``HandOff`` answers the
two questions the dialogue asks: may a person be connected at all (the cases tables exist and
the deployment has at least one active caseworker account), and is anyone on shift now (within
the deployment's hours of cover and signed in to the console).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from typing import Optional
from zoneinfo import ZoneInfo

from bot.cases.queue import Cases
from bot.deployment import Deployment
from bot.settings import Settings


@lru_cache(maxsize=8)
def _engine(url: str):
    from bot.storage import make_engine

    return make_engine(url)


_STORES: dict[tuple[str, type], object] = {}


def store_for(kind: type, url: str, settings: Optional[Settings] = None):
    """``kind(sessions, route keys)`` on ``url`` (``Cases``, ``Subscribers``), or None when
    the database is not migrated.

    Kept per process once the schema is current (every message of a hand-off asks; the schema
    check reads the migration files); a database not yet migrated is checked again next time.
    A new route key needs a restart anyway (see *What an operator must do*).
    """
    from bot.privacy.keys import load_secrets
    from bot.storage import SchemaError, require_current, session_factory

    if (url, kind) in _STORES:
        return _STORES[url, kind]
    engine = _engine(url)
    try:
        require_current(engine)
    except SchemaError:
        return None
    settings = settings or Settings.from_env()
    store = kind(session_factory(engine), load_secrets(settings.secrets_file).fernet())
    _STORES[url, kind] = store
    return store


def cases_for(url: str, settings: Optional[Settings] = None) -> Optional[Cases]:
    """The cases on ``url`` with the deployment's route key, or None when not migrated."""
    return store_for(Cases, url, settings)


@dataclass(frozen=True)
class HandOff:
    """The hand-off as the dialogue sees it on one database."""

    cases: Cases
    url: str

    @classmethod
    def of(cls, url: str, settings: Optional[Settings] = None) -> Optional["HandOff"]:
        """None when a person cannot be connected here (no cases tables, no caseworker)."""
        cases = cases_for(url, settings)
        if cases is None or not cls._users(url).active_names():
            return None
        return cls(cases, url)

    @staticmethod
    def _users(url: str):
        from console.users import Users
        from bot.storage import session_factory

        return Users(session_factory(_engine(url)))

    def on_shift(self, deployment: Deployment, now: dt.datetime) -> bool:
        """Within the hours of cover and somebody signed in to the console."""
        return deployment.human_cover.is_covered(now) and self._users(self.url).signed_in_count() > 0


# A case's hold ends this long after the end of the shift of cover the person was told of
# ("a caseworker will write to you from Mon 08:00"): time for a reply begun at the end of that
# shift, and for the hourly housekeeping. Then the ordinary idle times apply again.
HOLD_MARGIN = dt.timedelta(hours=1)
# In a bot message's metadata (``connect``): the reply route of the conversation is kept until
# this time (ISO 8601), for the channel's ``Gateway.remember_turn``.
ROUTE_HOLD = "hold_route_until"


def hold_for(deployment: Deployment, now: dt.datetime) -> dt.datetime:
    """Until when a case opened at ``now`` keeps what a caseworker's reply needs (the case and
    the reply route, not the conversation's events): the end of the next shift of cover
    starting after ``now`` (``HumanCover.keep_until``), plus ``HOLD_MARGIN``. A promise
    of "a caseworker will write to you from <the next opening>" must be keepable (GPC guide,
    004 line 1116: "DO NOT ... make false promises")."""
    return deployment.human_cover.keep_until(now) + HOLD_MARGIN


def hold_note(deployment: Deployment, moment: dt.datetime) -> str:
    """For ``helpline check``: the longest gap in the hours of cover and the longest a waiting
    case is then held, against the retention times ("" when there is no gap)."""
    cover = deployment.human_cover
    gap = cover.longest_gap(moment)
    if gap is None:
        return ""
    starts = [start for start, _ in cover.periods(moment, days=7)]
    longest = max(hold_for(deployment, start) - start for start in starts)
    zone = ZoneInfo(cover.timezone)
    hours = lambda span: f"{span.total_seconds() / 3600:g} h"  # noqa: E731
    return (f"hours of cover: the longest gap is {hours(gap[1] - gap[0])} "
            f"({gap[0].astimezone(zone):%a %H:%M} to {gap[1].astimezone(zone):%a %H:%M}, "
            f"{cover.timezone}); a case waiting for a caseworker keeps its row and reply route "
            f"up to {hours(longest)} (the end of the next shift + {hours(HOLD_MARGIN)}), "
            f"conversations go after {deployment.retention.conversation_idle_hours} h idle")


def route_hold(until: Optional[dt.datetime]) -> dict:
    """The metadata telling the channel to keep the reply route until ``until``."""
    return {ROUTE_HOLD: until.isoformat()} if until is not None else {}


def route_hold_of(messages) -> Optional[dt.datetime]:
    """The latest ``ROUTE_HOLD`` among a turn's bot messages, or None."""
    times = []
    for message in messages:
        value = (message.get("metadata") or {}).get(ROUTE_HOLD)
        try:
            moment = dt.datetime.fromisoformat(value) if isinstance(value, str) else None
        except ValueError:
            moment = None
        if moment is not None and moment.tzinfo is not None:
            times.append(moment)
    return max(times, default=None)


# In the case's transcript when the provider refuses a reply because the person's number
# opted out (Twilio error 21610, after STOP, END, QUIT...): caseworkers read it in the console.
REPLIES_BLOCKED = ("The person's number blocks replies from this line: it sent STOP or another "
                   "opt-out word to the SMS provider. Nothing reaches them until they write "
                   "START; your last reply will go out with the answer to their next message.")


async def replies_blocked(conversation_id: str, text: str) -> bool:
    """For the SMS channel, when the provider refused ``text`` because the person's number
    opted out: the open case (if any) says so, and a caseworker's reply that was refused goes
    out again after the person's next message. False where there is no open case."""
    import asyncio

    cases = await asyncio.to_thread(cases_for, Settings.from_env().database_url)
    if cases is None:
        return False
    if await asyncio.to_thread(cases.block_replies, conversation_id, REPLIES_BLOCKED) is None:
        return False
    await asyncio.to_thread(cases.undeliver, conversation_id, text)
    return True


async def requeue_reply(conversation_id: str, text: str) -> bool:
    """For a channel that could not deliver a message pushed to ``conversation_id``: if it was
    a caseworker's reply, it goes out again with the answer to the person's next message
    (``Cases.undeliver``). False where there is no such reply or no cases tables."""
    import asyncio

    cases = await asyncio.to_thread(cases_for, Settings.from_env().database_url)
    if cases is None:
        return False
    return await asyncio.to_thread(cases.undeliver, conversation_id, text)
