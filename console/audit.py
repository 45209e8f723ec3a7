"""What supervisors read on the audit page: the cases' audit log and the sign-in events.

Two tables, one timeline: ``audit_log`` (who claimed, opened, replied to, transferred and
closed which case; ``bot.cases``) and ``sign_in_events`` (``console.models``), newest first,
``PAGE_SIZE`` entries a page, filtered by user name, case number and kind. Neither table holds
message content, an address or a conversation id, and nothing here reads one.

Everything here is synchronous SQLAlchemy (call it from a thread in async code).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Optional

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from bot.cases.models import AuditEntry
# Why a case closed without a caseworker: the audit log's actor and detail of "closed".
from bot.cases.queue import ASSISTANT, ENDED_BY_PERSON, EXPIRED, PERSON
from console.models import SignInEvent

PAGE_SIZE = 100
KINDS = ("all", "cases", "sign-ins")


@dataclass(frozen=True)
class Entry:
    """One line of the timeline: a case action (``case`` set) or a sign-in event."""

    kind: str  # "case" or "sign_in"
    at: dt.datetime
    who: Optional[str]  # a user name, "person", "assistant", or None (a name that is no user)
    what: str  # the case action or the sign-in event
    case: Optional[int]
    detail: Optional[str]


@dataclass(frozen=True)
class Page:
    entries: list[Entry]
    number: int
    pages: int
    total: int


class PageOutOfRange(ValueError):
    """A page after the last one."""

    def __init__(self, number: int, pages: int) -> None:
        super().__init__(f"page {number} of {pages}")
        self.number, self.pages = number, pages


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment.replace(tzinfo=dt.timezone.utc) if moment.tzinfo is None else moment


class AuditLog:
    """Reads the audit tables of one database."""

    def __init__(self, sessions: "sessionmaker[Session]") -> None:
        self._sessions = sessions

    def page(self, number: int = 1, user: Optional[str] = None, case: Optional[int] = None,
             kind: str = "all", size: int = PAGE_SIZE) -> Page:
        """Page ``number`` (from 1) of the timeline, newest first.

        ``user``: only what this user did (a case handed to them included) and their sign-in
        events; ``case``: only that case's actions (no sign-in event then); ``kind``: one of
        ``KINDS``.

        Raises:
            PageOutOfRange: ``number`` is after the last page (page 1 always exists).
            ValueError: a kind not in ``KINDS``.
        """
        if kind not in KINDS:
            raise ValueError(f"kind {kind!r} is not one of {KINDS}")
        parts = []
        if kind in ("all", "cases"):
            query = sa.select(
                sa.literal_column("'case'").label("kind"), AuditEntry.id.label("id"),
                AuditEntry.at.label("at"), AuditEntry.actor.label("who"),
                AuditEntry.action.label("what"), AuditEntry.case_id.label("case_id"),
                AuditEntry.detail.label("detail"))
            if user is not None:
                query = query.where(sa.or_(
                    AuditEntry.actor == user,
                    sa.and_(AuditEntry.action == "transferred", AuditEntry.detail == user)))
            if case is not None:
                query = query.where(AuditEntry.case_id == case)
            parts.append(query)
        if kind in ("all", "sign-ins") and case is None:
            query = sa.select(
                sa.literal_column("'sign_in'").label("kind"), SignInEvent.id.label("id"),
                SignInEvent.at.label("at"), SignInEvent.user_name.label("who"),
                SignInEvent.event.label("what"),
                sa.cast(sa.null(), sa.Integer).label("case_id"),
                sa.cast(sa.null(), sa.String(64)).label("detail"))
            if user is not None:
                query = query.where(SignInEvent.user_name == user)
            parts.append(query)
        if not parts:
            return Page([], 1, 1, 0)
        timeline = (parts[0] if len(parts) == 1 else sa.union_all(*parts)).subquery()
        with self._sessions() as session:
            total = session.execute(sa.select(sa.func.count()).select_from(timeline)).scalar_one()
            pages = max(1, math.ceil(total / size))
            if number > pages:
                raise PageOutOfRange(number, pages)
            rows = session.execute(
                sa.select(timeline)
                .order_by(timeline.c.at.desc(), timeline.c.kind.desc(), timeline.c.id.desc())
                .limit(size).offset((number - 1) * size)).all()
        return Page([Entry(r.kind, _aware(r.at), r.who, r.what, r.case_id, r.detail)
                     for r in rows], number, pages, total)

    def closed_by(self, case_id: int) -> Optional[str]:
        """Why a closed case closed without a caseworker: ``ENDED_BY_PERSON`` (quick exit or
        "forget me"), ``EXPIRED``, or None (a caseworker closed it, or it is not closed)."""
        with self._sessions() as session:
            details = session.execute(
                sa.select(AuditEntry.detail).where(
                    AuditEntry.case_id == case_id, AuditEntry.action == "closed",
                    AuditEntry.actor.in_((PERSON, ASSISTANT)),
                    AuditEntry.detail.in_((ENDED_BY_PERSON, EXPIRED)))
                .order_by(AuditEntry.id.desc()).limit(1)).scalars().all()
        return details[0] if details else None
