"""Subscribers: who said yes to receiving safety messages, and how to reach them.

``Subscribers`` works on the project's database and one ``MultiFernet`` (the deployment's
route keys, kept outside the database in the secrets file). Synchronous SQLAlchemy: call it
from a thread in async code.

The consent is recorded by the action server, which knows the pseudonymous conversation id,
the language and the coarse area but never the address; the channel (in the Rasa server, where
the reply route holds the address) then ``attach``es the address, encrypted, in the same turn.
``remove`` (unsubscribe, STOP, a permanent delivery failure) and ``erase`` (quick exit, forget
me) delete the row with its address at once. The idle purge of conversations does not touch
subscribers: their consent outlives the conversation.

A consent lasts the deployment's ``campaigns.consent_months``, in calendar months: given on
15 March for 12 months, it lasts until 15 March a year later (a day past the end of a shorter
month is clamped to its last day: 31 January + 1 month = 28 or 29 February). ``consent``
again (the person asks to subscribe while subscribed) renews it from that moment.
``expired`` says whether a subscriber's consent has run out; ``expire`` deletes every such
subscriber with the address (``helpline purge``), and the dispatcher does the same for the
recipients of the messages it claims (``consent_cutoff`` is the instant both compare with).

Before the end, ``helpline campaign remind`` (``bot.campaigns.reminders``) queues one reminder
to each reachable subscriber whose consent ends within a number of days and who was not
reminded since giving it (``due_for_reminder``; ``reminder_due`` is the condition, which the
reminder's queueing repeats when it records ``reminded_at``). A renewal clears
``reminded_at``: the renewed consent gets its own reminder before it ends.
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass
from typing import Callable, Iterable, Optional

import sqlalchemy as sa
from cryptography.fernet import InvalidToken, MultiFernet
from sqlalchemy.orm import Session, sessionmaker

from bot.campaigns.models import SUBSCRIBER_CHANNELS, OutboxMessage, Subscriber

LANGUAGES = ("en", "fr", "ar", "es")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def add_months(moment: dt.datetime, months: int) -> dt.datetime:
    """``moment`` moved by ``months`` calendar months (negative: back), the day clamped to
    the last of the month it lands in; the time of day and time zone are kept."""
    index = moment.year * 12 + (moment.month - 1) + months
    year, month = divmod(index, 12)
    month += 1
    last_day = calendar.monthrange(year, month)[1]
    return moment.replace(year=year, month=month, day=min(moment.day, last_day))


def consent_cutoff(now: dt.datetime, months: int) -> dt.datetime:
    """The instant (UTC) before which a consent given has expired at ``now``: ``now`` less
    ``months`` calendar months. A consent given exactly then is still valid."""
    if months < 1:
        raise ValueError(f"consent lasts at least a month, got {months!r}")
    if now.tzinfo is None:
        now = now.replace(tzinfo=dt.timezone.utc)
    return add_months(now.astimezone(dt.timezone.utc), -months)


def _aware(moment: Optional[dt.datetime]) -> Optional[dt.datetime]:
    """SQLite gives naive datetimes back; all stored times are UTC."""
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=dt.timezone.utc)
    return moment


def reminder_due(months: int, days: int, now: dt.datetime) -> sa.sql.ColumnElement:
    """The condition on ``subscribers`` of a consent reminder due at ``now``: the address
    attached, the consent still valid at ``now`` but run out ``days`` days later (it ends
    within ``days`` days: ``consent_cutoff`` at both instants, so "ends" means exactly what the
    deletion means), and no reminder queued since the consent was given (``reminded_at``
    empty, or older than the consent: a renewal clears it anyway)."""
    if days < 1:
        raise ValueError(f"a reminder comes at least a day before the end, got {days!r}")
    if now.tzinfo is None:
        now = now.replace(tzinfo=dt.timezone.utc)
    return sa.and_(Subscriber.address.is_not(None),
                   Subscriber.channel.in_(SUBSCRIBER_CHANNELS),
                   Subscriber.consented_at >= consent_cutoff(now, months),
                   Subscriber.consented_at < consent_cutoff(now + dt.timedelta(days=days), months),
                   sa.or_(Subscriber.reminded_at.is_(None),
                          Subscriber.reminded_at < Subscriber.consented_at))


class SubscriberError(ValueError):
    """A value outside its closed set."""


@dataclass(frozen=True)
class SubscriberView:
    """A subscriber without the address."""

    id: int
    conversation_id: str
    channel: str
    language: str
    area: Optional[str]
    consented_at: dt.datetime
    reachable: bool  # the address is attached
    reminded_at: Optional[dt.datetime] = None  # the consent reminder queued (this consent)

    @classmethod
    def of(cls, row: Subscriber) -> "SubscriberView":
        return cls(row.id, row.conversation_id, row.channel, row.language, row.area,
                   _aware(row.consented_at), row.address is not None, _aware(row.reminded_at))

    def expires_at(self, months: int) -> dt.datetime:
        """When this consent runs out (``months`` calendar months after it was given)."""
        return add_months(self.consented_at, months)

    def expired(self, months: int, now: dt.datetime) -> bool:
        """Whether the consent is older than ``months`` months at ``now``."""
        return self.consented_at < consent_cutoff(now, months)


class Subscribers:
    """The subscribers on one database."""

    def __init__(self, sessions: "sessionmaker[Session]", fernet: MultiFernet,
                 clock: Callable[[], dt.datetime] = utcnow) -> None:
        self._sessions = sessions
        self._fernet = fernet
        self._clock = clock

    def consent(self, conversation_id: str, channel: str, language: str,
                area: Optional[str] = None) -> SubscriberView:
        """Records a yes (or renews it: new language, area and consent time, no reminder yet
        for the new consent; the address is kept). Raises SubscriberError for a channel or
        language outside the closed sets."""
        if channel not in SUBSCRIBER_CHANNELS:
            raise SubscriberError(f"channel {channel!r} cannot receive campaigns "
                                  f"(only {', '.join(SUBSCRIBER_CHANNELS)})")
        if language not in LANGUAGES:
            raise SubscriberError(f"language {language!r} is not one of {LANGUAGES}")
        with self._sessions.begin() as session:
            row = self._row(session, conversation_id)
            if row is None:
                row = Subscriber(conversation_id=conversation_id, channel=channel)
                session.add(row)
            row.language, row.area, row.consented_at = language, area, self._clock()
            row.reminded_at = None  # the renewed consent gets its own reminder
            session.flush()
            return SubscriberView.of(row)

    def attach(self, conversation_id: str, address: str) -> bool:
        """Stores the encrypted address of a subscriber who consented; False if none did."""
        if not address:
            return False
        with self._sessions.begin() as session:
            row = self._row(session, conversation_id)
            if row is None:
                return False
            row.address = self._fernet.encrypt(address.encode("utf-8"))
            return True

    @staticmethod
    def _forget_refs(session: Session, *condition: sa.sql.ColumnElement) -> None:
        """Clears the provider's message ids (a Twilio MessageSid leads to the number in the
        provider's logs) from the outbox rows of the subscribers about to be deleted: what
        stays of their messages is the campaign's counts, as for every message."""
        chosen = sa.select(Subscriber.id).where(*condition)
        session.execute(sa.update(OutboxMessage).where(OutboxMessage.subscriber_id.in_(chosen))
                        .values(provider_ref=None).execution_options(synchronize_session=False))

    def remove(self, conversation_id: str) -> bool:
        """Deletes the subscriber with the address; False if there was none."""
        with self._sessions.begin() as session:
            self._forget_refs(session, Subscriber.conversation_id == conversation_id)
            deleted = session.execute(
                sa.delete(Subscriber).where(Subscriber.conversation_id == conversation_id))
            return bool(deleted.rowcount)

    def remove_id(self, subscriber_id: int) -> bool:
        """Deletes a subscriber by id (a permanent delivery failure: blocked, invalid)."""
        with self._sessions.begin() as session:
            self._forget_refs(session, Subscriber.id == subscriber_id)
            deleted = session.execute(sa.delete(Subscriber).where(Subscriber.id == subscriber_id))
            return bool(deleted.rowcount)

    async def erase(self, conversation_id: str) -> None:
        """For ``bot.privacy.erasure``: a quick exit or "forget me" also ends a subscription."""
        import asyncio

        await asyncio.to_thread(self.remove, conversation_id)

    def expired(self, subscriber: SubscriberView, months: int) -> bool:
        """Whether ``subscriber``'s consent is older than ``months`` months now."""
        return subscriber.expired(months, self._clock())

    def expire(self, months: int, ids: Optional[Iterable[int]] = None,
               now: Optional[dt.datetime] = None) -> int:
        """Deletes the subscribers (rows and encrypted addresses) whose consent is older than
        ``months`` calendar months at ``now`` (default: the clock); ``ids``: only among these
        (the dispatcher's). Returns how many. The comparison is made in the DELETE itself, so
        a consent renewed meanwhile is kept."""
        cutoff = consent_cutoff(now or self._clock(), months)
        with self._sessions.begin() as session:
            condition = Subscriber.consented_at < cutoff
            if ids is None:
                self._forget_refs(session, condition)
                return session.execute(sa.delete(Subscriber).where(condition)).rowcount or 0
            wanted, count = sorted(set(ids)), 0
            for start in range(0, len(wanted), 500):  # short IN lists for SQLite
                self._forget_refs(session, condition,
                                  Subscriber.id.in_(wanted[start:start + 500]))
                count += session.execute(
                    sa.delete(Subscriber).where(condition,
                                                Subscriber.id.in_(wanted[start:start + 500]))
                ).rowcount or 0
            return count

    def get(self, conversation_id: str) -> Optional[SubscriberView]:
        with self._sessions() as session:
            row = self._row(session, conversation_id)
            return None if row is None else SubscriberView.of(row)

    def address(self, subscriber_id: int) -> Optional[str]:
        """The decrypted address (for the dispatcher only); None if gone or unreadable."""
        with self._sessions() as session:
            token = session.execute(sa.select(Subscriber.address)
                                    .where(Subscriber.id == subscriber_id)).scalar()
        return self.open(token)

    def open(self, token: Optional[bytes]) -> Optional[str]:
        if token is None:
            return None
        try:
            return self._fernet.decrypt(token).decode("utf-8")
        except InvalidToken:
            return None

    def audience(self, languages: Iterable[str], areas: Optional[Iterable[str]] = None,
                 channels: Iterable[str] = SUBSCRIBER_CHANNELS) -> sa.Select:
        """The SELECT of reachable subscribers' ids in these languages and channels, and,
        when ``areas`` is given, whose coarse area is one of these place codes (a campaign
        expands "Borno" into every gazetteer place inside it first)."""
        query = sa.select(Subscriber.id).where(Subscriber.address.is_not(None),
                                               Subscriber.language.in_(list(languages)),
                                               Subscriber.channel.in_(list(channels)))
        if areas is not None:
            query = query.where(Subscriber.area.in_(list(areas)))
        return query

    def due_for_reminder(self, months: int, days: int,
                         now: Optional[dt.datetime] = None) -> sa.Select:
        """The SELECT of the ids of the subscribers a consent reminder is due to at ``now``
        (default: the clock): ``reminder_due``, for consents of ``months`` months."""
        return (sa.select(Subscriber.id)
                .where(reminder_due(months, days, now or self._clock()))
                .order_by(Subscriber.id))

    def count(self, languages: Iterable[str], areas: Optional[Iterable[str]] = None,
              channels: Iterable[str] = SUBSCRIBER_CHANNELS) -> int:
        with self._sessions() as session:
            query = self.audience(languages, areas, channels).subquery()
            return session.execute(sa.select(sa.func.count()).select_from(query)).scalar() or 0

    def reencrypt(self) -> int:
        """Re-encrypts every address with the newest route key (``helpline secrets retire``
        does it before dropping old keys); returns how many."""
        count = 0
        with self._sessions.begin() as session:
            rows = session.execute(sa.select(Subscriber).where(Subscriber.address.is_not(None)))
            for row in rows.scalars():
                try:
                    row.address = self._fernet.rotate(row.address)
                except InvalidToken:
                    continue
                count += 1
        return count

    @staticmethod
    def _row(session: Session, conversation_id: str) -> Optional[Subscriber]:
        return session.execute(
            sa.select(Subscriber).where(Subscriber.conversation_id == conversation_id)
        ).scalars().first()
