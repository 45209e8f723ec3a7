"""The ledger of replies a provider did not take (migration 0012): what is late, not what it says.

When Twilio or Telegram answers 5xx, 429 or nothing at all past the sender's own retries, a
conversation's replies wait in its encrypted reply route (``Route.undelivered``: the only
place an address and a text may wait, promise 1) and a row here says that they wait:

- ``delayed_replies``: the channel, the pseudonymous conversation id while its replies wait
  (cleared once they are delivered or dropped), when the first one was delayed, when to try
  next, how many tries, the lease of the Rasa process trying (``lease_owner``, a random id,
  until ``lease_until``), how many parts were delivered late, and how it ended
  (``delivered``, or ``dropped`` with a reason). Never a text, a number or a chat id.

One waiting row per conversation (a unique index over the waiting rows' conversation ids):
Rasa replicas that each fail for the same conversation share it. A replica takes a row by a
conditional UPDATE of its lease, so two replicas never send the same waiting replies at once
(``channels.redelivery``). The console reads the counts (``summary``) and whether a case's
conversation has replies waiting (``waiting_since``). Finished rows are deleted after
``KEEP_FINISHED``; a conversation's erasure deletes its rows at once.

Synchronous SQLAlchemy, like the other stores; the channels call it in a thread.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Callable, Optional

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bot.storage import Base, aware_utc as _aware, utcnow

DELAY_STATES = ("waiting", "delivered", "dropped")
# why waiting replies were dropped: the route was gone (expired, erased, lost with an
# in-memory cache), the provider refused them (the number opted out, the bot was blocked), or
# they waited longer than the deployment's retention.undelivered_reply_minutes
DROP_REASONS = ("no_route", "refused", "too_late")
KEEP_FINISHED = dt.timedelta(days=2)  # the console shows the last 24 hours


class DelayedReply(Base):
    __tablename__ = "delayed_replies"

    id = sa.Column(sa.Integer, primary_key=True)
    channel = sa.Column(sa.String(16), nullable=False)
    conversation_id = sa.Column(sa.String(64), nullable=True)  # None once finished
    state = sa.Column(sa.String(9), nullable=False)
    reason = sa.Column(sa.String(12), nullable=True)
    delayed_at = sa.Column(sa.DateTime(timezone=True), nullable=False)
    next_attempt_at = sa.Column(sa.DateTime(timezone=True), nullable=False)
    attempts = sa.Column(sa.Integer, nullable=False, default=0)
    lease_owner = sa.Column(sa.String(32), nullable=True)
    lease_until = sa.Column(sa.DateTime(timezone=True), nullable=True)
    finished_at = sa.Column(sa.DateTime(timezone=True), nullable=True)
    parts = sa.Column(sa.Integer, nullable=False, default=0)  # delivered late

    __table_args__ = (
        sa.CheckConstraint(f"state IN {DELAY_STATES}", name="state"),
        sa.CheckConstraint(f"reason IS NULL OR reason IN {DROP_REASONS}", name="reason"),
        sa.Index("ix_delayed_replies_waiting", "conversation_id", unique=True,
                 sqlite_where=sa.text("state = 'waiting'"),
                 postgresql_where=sa.text("state = 'waiting'")),
        sa.Index("ix_delayed_replies_due", "state", "channel", "next_attempt_at"),
        sa.Index("ix_delayed_replies_finished", "finished_at"),
    )


@dataclass(frozen=True)
class Waiting:
    """A waiting row a process has just taken."""

    id: int
    conversation_id: str
    delayed_at: dt.datetime
    attempts: int


@dataclass(frozen=True)
class DelaySummary:
    """What the console shows: per channel, replies waiting now (conversations) and since
    when; over the last day, conversations whose replies arrived late, the longest wait, and
    those whose replies were dropped."""

    waiting: dict[str, int]
    oldest: dict[str, dt.datetime]
    delivered_late: dict[str, int]
    longest: dict[str, dt.timedelta]
    dropped: dict[str, int]

    @property
    def channels(self) -> list[str]:
        return sorted(set(self.waiting) | set(self.delivered_late) | set(self.dropped))


class DelayedReplies:
    """The ledger on one database."""

    def __init__(self, sessions: "sessionmaker[Session]",
                 clock: Callable[[], dt.datetime] = utcnow) -> None:
        self._sessions = sessions
        self._clock = clock

    def note(self, channel: str, conversation_id: str, retry_in: float) -> bool:
        """Says that ``conversation_id`` has replies waiting (a row, unless one waits already);
        its next try in ``retry_in`` seconds. True when this made the row."""
        now = self._clock()
        try:
            with self._sessions.begin() as session:
                exists = session.execute(
                    sa.select(DelayedReply.id).where(DelayedReply.state == "waiting",
                                                     DelayedReply.conversation_id == conversation_id)
                ).first()
                if exists is not None:
                    return False
                session.add(DelayedReply(channel=channel, conversation_id=conversation_id,
                                         state="waiting", delayed_at=now, attempts=0,
                                         next_attempt_at=now + dt.timedelta(seconds=retry_in),
                                         parts=0))
            return True
        except IntegrityError:  # another replica made it meanwhile
            return False

    def due(self, channel: str, limit: int = 50) -> list[int]:
        """Ids of the channel's waiting rows whose time has come and that nobody holds."""
        now = self._clock()
        with self._sessions() as session:
            return list(session.execute(
                sa.select(DelayedReply.id)
                .where(DelayedReply.state == "waiting", DelayedReply.channel == channel,
                       DelayedReply.next_attempt_at <= now,
                       sa.or_(DelayedReply.lease_until.is_(None), DelayedReply.lease_until < now))
                .order_by(DelayedReply.next_attempt_at).limit(limit)).scalars())

    def take(self, row_id: int, owner: str, lease_seconds: float) -> Optional[Waiting]:
        """Takes the row for ``owner`` until the lease ends; None when another process holds
        it or it is no longer waiting (one conditional UPDATE: never two at once)."""
        now = self._clock()
        with self._sessions.begin() as session:
            taken = session.execute(
                sa.update(DelayedReply)
                .where(DelayedReply.id == row_id, DelayedReply.state == "waiting",
                       sa.or_(DelayedReply.lease_until.is_(None), DelayedReply.lease_until < now))
                .values(lease_owner=owner, lease_until=now + dt.timedelta(seconds=lease_seconds))
                .execution_options(synchronize_session=False))
            if taken.rowcount != 1:
                return None
            row = session.execute(
                sa.select(DelayedReply.conversation_id, DelayedReply.delayed_at,
                          DelayedReply.attempts).where(DelayedReply.id == row_id)).one()
        if row.conversation_id is None:
            return None
        return Waiting(row_id, row.conversation_id, _aware(row.delayed_at), row.attempts)

    def again(self, row_id: int, owner: str, retry_in: float, parts: int = 0) -> bool:
        """Gives a taken row back for a try in ``retry_in`` seconds (``parts`` delivered
        meanwhile); False when the lease was lost to another process."""
        now = self._clock()
        return self._write(row_id, owner, attempts=DelayedReply.attempts + 1,
                           parts=DelayedReply.parts + parts,
                           next_attempt_at=now + dt.timedelta(seconds=retry_in))

    def finish(self, row_id: int, owner: str, parts: int = 0,
               reason: Optional[str] = None) -> bool:
        """Ends a taken row: delivered (``reason`` None) or dropped for ``reason``; the
        conversation id goes."""
        if reason is not None and reason not in DROP_REASONS:
            raise ValueError(f"reason must be one of {', '.join(DROP_REASONS)}")
        return self._write(row_id, owner, state="dropped" if reason else "delivered",
                           reason=reason, conversation_id=None, finished_at=self._clock(),
                           attempts=DelayedReply.attempts + 1, parts=DelayedReply.parts + parts)

    def _write(self, row_id: int, owner: str, **values) -> bool:
        with self._sessions.begin() as session:
            done = session.execute(
                sa.update(DelayedReply)
                .where(DelayedReply.id == row_id, DelayedReply.lease_owner == owner,
                       DelayedReply.state == "waiting")
                .values(lease_owner=None, lease_until=None, **values)
                .execution_options(synchronize_session=False))
            return done.rowcount == 1

    def forget(self, conversation_id: str) -> int:
        """A conversation's erasure: its waiting row goes (the replies went with the route)."""
        with self._sessions.begin() as session:
            return session.execute(
                sa.delete(DelayedReply).where(DelayedReply.conversation_id == conversation_id)
                .execution_options(synchronize_session=False)).rowcount

    def waiting_since(self, conversation_id: str) -> Optional[tuple[str, dt.datetime]]:
        """(channel, since when) when the conversation has replies waiting, else None."""
        with self._sessions() as session:
            row = session.execute(
                sa.select(DelayedReply.channel, DelayedReply.delayed_at)
                .where(DelayedReply.state == "waiting",
                       DelayedReply.conversation_id == conversation_id)).first()
        return None if row is None else (row.channel, _aware(row.delayed_at))

    def waiting_for_case(self, case_id: int) -> Optional[dt.datetime]:
        """Since when replies to a case's conversation wait for the provider, or None (the
        console shows it without the conversation id)."""
        from bot.cases.models import Case

        with self._sessions() as session:
            since = session.execute(
                sa.select(DelayedReply.delayed_at)
                .join(Case, Case.conversation_id == DelayedReply.conversation_id)
                .where(Case.id == case_id, DelayedReply.state == "waiting")).scalar()
        return _aware(since)

    def summary(self, window: dt.timedelta = dt.timedelta(hours=24)) -> DelaySummary:
        now = self._clock()
        waiting: dict[str, int] = {}
        oldest: dict[str, dt.datetime] = {}
        late: dict[str, int] = {}
        longest: dict[str, dt.timedelta] = {}
        dropped: dict[str, int] = {}
        with self._sessions() as session:
            for channel, count, first in session.execute(
                    sa.select(DelayedReply.channel, sa.func.count(),
                              sa.func.min(DelayedReply.delayed_at))
                    .where(DelayedReply.state == "waiting").group_by(DelayedReply.channel)):
                waiting[channel], oldest[channel] = count, _aware(first)
            for channel, state, delayed_at, finished_at in session.execute(
                    sa.select(DelayedReply.channel, DelayedReply.state, DelayedReply.delayed_at,
                              DelayedReply.finished_at)
                    .where(DelayedReply.state != "waiting",
                           DelayedReply.finished_at >= now - window)):
                if state == "dropped":
                    dropped[channel] = dropped.get(channel, 0) + 1
                    continue
                late[channel] = late.get(channel, 0) + 1
                wait = _aware(finished_at) - _aware(delayed_at)
                longest[channel] = max(longest.get(channel, dt.timedelta(0)), wait)
        return DelaySummary(waiting, oldest, late, longest, dropped)

    def purge(self) -> int:
        """Deletes finished rows older than ``KEEP_FINISHED``."""
        with self._sessions.begin() as session:
            return session.execute(
                sa.delete(DelayedReply).where(DelayedReply.state != "waiting",
                                              DelayedReply.finished_at < self._clock() - KEEP_FINISHED)
                .execution_options(synchronize_session=False)).rowcount
