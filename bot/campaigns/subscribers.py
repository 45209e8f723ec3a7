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
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Callable, Iterable, Optional

import sqlalchemy as sa
from cryptography.fernet import InvalidToken, MultiFernet
from sqlalchemy.orm import Session, sessionmaker

from bot.campaigns.models import SUBSCRIBER_CHANNELS, Subscriber

LANGUAGES = ("en", "fr", "ar", "es")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


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

    @classmethod
    def of(cls, row: Subscriber) -> "SubscriberView":
        consented = row.consented_at
        if consented.tzinfo is None:  # SQLite gives naive datetimes back; all are UTC
            consented = consented.replace(tzinfo=dt.timezone.utc)
        return cls(row.id, row.conversation_id, row.channel, row.language, row.area, consented,
                   row.address is not None)


class Subscribers:
    """The subscribers on one database."""

    def __init__(self, sessions: "sessionmaker[Session]", fernet: MultiFernet,
                 clock: Callable[[], dt.datetime] = utcnow) -> None:
        self._sessions = sessions
        self._fernet = fernet
        self._clock = clock

    def consent(self, conversation_id: str, channel: str, language: str,
                area: Optional[str] = None) -> SubscriberView:
        """Records a yes (or renews it: new language, area and consent time; the address is
        kept). Raises SubscriberError for a channel or language outside the closed sets."""
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

    def remove(self, conversation_id: str) -> bool:
        """Deletes the subscriber with the address; False if there was none."""
        with self._sessions.begin() as session:
            deleted = session.execute(
                sa.delete(Subscriber).where(Subscriber.conversation_id == conversation_id))
            return bool(deleted.rowcount)

    def remove_id(self, subscriber_id: int) -> bool:
        """Deletes a subscriber by id (a permanent delivery failure: blocked, invalid)."""
        with self._sessions.begin() as session:
            deleted = session.execute(sa.delete(Subscriber).where(Subscriber.id == subscriber_id))
            return bool(deleted.rowcount)

    async def erase(self, conversation_id: str) -> None:
        """For ``bot.privacy.erasure``: a quick exit or "forget me" also ends a subscription."""
        import asyncio

        await asyncio.to_thread(self.remove, conversation_id)

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
