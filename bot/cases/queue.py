"""Cases and their queue: opening, claiming, the encrypted transcript, transfer, closing.

``Cases`` works on the project's database (``bot.storage``) and one ``MultiFernet``: the
deployment's route key, which wraps each case's own transcript key. Everything here is
synchronous SQLAlchemy (call it from a thread in async code); nothing connects at import.

- The queue is the waiting cases, most urgent first (emergency, high, medium, low, none: a
  person who asked directly), then the longest waiting.
- ``claim`` is one conditional UPDATE (``... WHERE status = 'waiting'``): of two caseworkers
  claiming the same case at once, exactly one gets it, on SQLite and PostgreSQL alike.
- A case's transcript is readable only by its caseworker or a supervisor, and only until the
  case closes: closing deletes the case's key, so the stored texts are then noise, before any
  purge deletes them. A quick exit or "forget me" (``bot.privacy.erasure``) destroys the key
  and the texts of the conversation's open case at once.
- The audit log records who claimed, opened, replied to, transferred and closed which case;
  never what was said.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Callable, Iterable, Optional

import sqlalchemy as sa
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy.orm import Session, sessionmaker

from bot.cases.models import LEVELS, OUTCOMES, AuditEntry, Case, CaseKey, CaseMessage
from bot.triage import NEED_CATEGORIES

CHANNELS = ("sms", "telegram", "webchat", "helpline")
LANGUAGES = ("en", "fr", "ar", "es")
_CODE = re.compile(r"^[A-Za-z0-9_\-]{1,40}$")
_USER = re.compile(r"^[a-z0-9_.\-]{2,64}$")
MAX_MESSAGE_CHARS = 2000
PERSON = "person"  # the actor of what the person does (leaving, erasing)
ASSISTANT = "assistant"  # the actor of what the system does on its own (expiry)
# Why a case closed without a caseworker, in the audit log's detail column.
ENDED_BY_PERSON = "ended_by_person"  # quick exit or "forget me"
EXPIRED = "expired"  # the conversation was deleted for idleness


class CaseError(ValueError):
    """A request the cases refuse: an unknown value, a case not in the right state."""


class CapReached(CaseError):
    """The channel opened as many new cases in the last hour as the deployment allows."""


class NotAllowed(PermissionError):
    """The user may not do this to this case."""


class AlreadyTaken(CaseError):
    """Somebody else claimed the case first."""


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@dataclass(frozen=True)
class CaseView:
    """A case as the console and the dialogue see it (closed sets and times only)."""

    id: int
    conversation_id: str
    channel: str
    language: str
    triage_level: str
    needs: tuple[str, ...]
    area: Optional[str]
    status: str
    caseworker: Optional[str]
    outcome: Optional[str]
    created_at: dt.datetime
    claimed_at: Optional[dt.datetime]
    closed_at: Optional[dt.datetime]
    # a waiting person was told when a caseworker would write: kept open until then
    held_until: Optional[dt.datetime] = None

    @classmethod
    def of(cls, row: Case) -> "CaseView":
        return cls(row.id, row.conversation_id, row.channel, row.language, row.triage_level,
                   tuple(n for n in (row.needs or "").split(",") if n), row.area, row.status,
                   row.caseworker, row.outcome, _aware(row.created_at), _aware(row.claimed_at),
                   _aware(row.closed_at), _aware(row.held_until))


@dataclass(frozen=True)
class Line:
    """One message of a transcript."""

    author: str
    at: dt.datetime
    text: str


@dataclass(frozen=True)
class User:
    """Who asks: a caseworker, or a supervisor (who may read and move any case)."""

    name: str
    supervisor: bool = False


def _aware(moment: Optional[dt.datetime]) -> Optional[dt.datetime]:
    """SQLite gives naive datetimes back; every time stored here is UTC."""
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=dt.timezone.utc)
    return moment


def check_user_name(name: str) -> str:
    if not isinstance(name, str) or not _USER.match(name):
        raise CaseError("a user name is 2 to 64 characters: a-z, 0-9, dot, dash, underscore")
    return name


class Cases:
    """The hand-off's cases on one database."""

    def __init__(self, sessions: "sessionmaker[Session]", fernet: MultiFernet,
                 clock: Callable[[], dt.datetime] = utcnow) -> None:
        self._sessions = sessions
        self._fernet = fernet
        self._clock = clock

    # -- the dialogue's side ------------------------------------------------------------

    def now(self) -> dt.datetime:
        """The time by this store's clock (UTC)."""
        return self._clock()

    def open(self, conversation_id: str, channel: str, language: str, triage_level: str,
             needs: Iterable[str] = (), area: Optional[str] = None,
             held_until: Optional[dt.datetime] = None,
             cap: Optional[int] = None) -> CaseView:
        """A waiting case for the conversation, or its case still open (never two).

        ``held_until``: the person is told when a caseworker will write; until this time the
        case is not expired for idleness (``expire_idle``), nor its conversation's reply route
        (``bot.privacy.routes``), though the conversation's events are. Asked again, an open
        case keeps the later of the two times.

        ``cap``: at most this many new cases on ``channel`` in the last hour (counted in the
        same transaction; two requests at the same instant may pass it by one).

        Raises:
            CapReached: the channel is at its cap.
            CaseError: naming the value outside its closed set.
        """
        needs = tuple(sorted(set(needs)))
        problems = [
            f"{name} {value!r} is not one of {allowed}" for name, value, allowed in (
                ("channel", channel, CHANNELS), ("language", language, LANGUAGES),
                ("triage level", triage_level, LEVELS))
            if value not in allowed
        ]
        problems += [f"need {n!r} is not a need category" for n in needs if n not in NEED_CATEGORIES]
        if area is not None and not _CODE.match(str(area)):
            problems.append("area must be a place code (letters, digits, - and _)")
        if not isinstance(conversation_id, str) or not _CODE.match(conversation_id[:40]) \
                or len(conversation_id) > 64:
            problems.append("conversation_id must be the conversation's pseudonym")
        if held_until is not None and (not isinstance(held_until, dt.datetime)
                                       or held_until.tzinfo is None):
            problems.append("held_until must be a time with its time zone")
        if problems:
            raise CaseError("; ".join(problems))
        if held_until is not None:
            held_until = held_until.astimezone(dt.timezone.utc)  # every time stored is UTC
        with self._sessions.begin() as session:
            existing = self._open_row(session, conversation_id)
            if existing is not None:
                if held_until is not None and (existing.held_until is None
                                               or _aware(existing.held_until) < held_until):
                    existing.held_until = held_until
                return CaseView.of(existing)
            if cap is not None and self._opened_last_hour(session).get(channel, 0) >= cap:
                raise CapReached(f"{channel} opened {cap} new cases in the last hour")
            row = Case(conversation_id=conversation_id, channel=channel, language=language,
                       triage_level=triage_level, urgency=LEVELS.index(triage_level),
                       needs=",".join(needs), area=area, status="waiting",
                       created_at=self._clock(), held_until=held_until)
            session.add(row)
            session.flush()
            session.add(CaseKey(case_id=row.id,
                                wrapped_key=self._fernet.encrypt(Fernet.generate_key())))
            return CaseView.of(row)

    def _opened_last_hour(self, session: Session) -> dict[str, int]:
        since = self._clock() - dt.timedelta(hours=1)
        rows = session.execute(sa.select(Case.channel, sa.func.count()).where(
            Case.created_at >= since).group_by(Case.channel)).all()
        return {channel: count for channel, count in rows}

    def at_cap(self, cap: int) -> dict[str, int]:
        """The channels that opened ``cap`` or more new cases in the last hour, with their
        count (for the console's warning)."""
        with self._sessions() as session:
            return {channel: count for channel, count
                    in sorted(self._opened_last_hour(session).items()) if count >= cap}

    def open_case_for(self, conversation_id: str) -> Optional[CaseView]:
        """The conversation's waiting or active case, if it has one."""
        with self._sessions() as session:
            row = self._open_row(session, conversation_id)
            return None if row is None else CaseView.of(row)

    def record(self, case_id: int, author: str, text: str, user: Optional[User] = None) -> int:
        """Adds a message to an open case's transcript (a caseworker's only on their case);
        returns its id. A caseworker's reply waits, undelivered, for ``take_replies``.

        Raises:
            CaseError: a closed case, an empty or too long text, an unknown author.
            NotAllowed: a caseworker writing to a case that is not theirs.
        """
        if author not in ("person", "caseworker", "assistant"):
            raise CaseError(f"author {author!r} is not person, caseworker or assistant")
        if not isinstance(text, str) or not text.strip() or len(text) > MAX_MESSAGE_CHARS:
            raise CaseError(f"a message is 1 to {MAX_MESSAGE_CHARS} characters")
        with self._sessions.begin() as session:
            row = self._row(session, case_id)
            if row.status == "closed":
                raise CaseError(f"case {case_id} is closed")
            if author == "caseworker":
                if user is None:
                    raise CaseError("a caseworker's message needs the caseworker")
                self._check_owner(row, user)
                self._audit(session, user.name, "replied", case_id)
            key = self._key(session, case_id)
            message = CaseMessage(case_id=case_id, author=author, at=self._clock(),
                                  body=key.encrypt(text.encode("utf-8")),
                                  delivered=author != "caseworker")
            session.add(message)
            session.flush()
            return message.id

    def take_replies(self, conversation_id: str) -> list[str]:
        """The caseworker's replies not yet sent to the conversation, oldest first, now marked
        sent (Rasa's lock serialises a conversation's actions, so none goes out twice)."""
        with self._sessions.begin() as session:
            row = self._open_row(session, conversation_id)
            if row is None:
                return []
            waiting = session.execute(
                sa.select(CaseMessage).where(CaseMessage.case_id == row.id,
                                             CaseMessage.author == "caseworker",
                                             CaseMessage.delivered.is_(False))
                .order_by(CaseMessage.id.asc())
            ).scalars().all()
            if not waiting:
                return []
            key = self._key(session, row.id)
            for message in waiting:
                message.delivered = True
            return [key.decrypt(m.body).decode("utf-8") for m in waiting]

    def undeliver(self, conversation_id: str, text: str) -> bool:
        """A caseworker's reply taken for the conversation could not reach it (its channel had
        no reply route: e.g. a Rasa restart emptied an in-memory cache): it is marked not sent
        again, for the answer to the person's next message. False when no such reply."""
        with self._sessions.begin() as session:
            row = self._open_row(session, conversation_id)
            if row is None:
                return False
            sent = session.execute(
                sa.select(CaseMessage).where(CaseMessage.case_id == row.id,
                                             CaseMessage.author == "caseworker",
                                             CaseMessage.delivered.is_(True))
                .order_by(CaseMessage.id.desc()).limit(20)
            ).scalars().all()
            key = self._key(session, row.id)
            for message in sent:
                if key.decrypt(message.body).decode("utf-8") == text:
                    message.delivered = False
                    return True
            return False

    def withdraw(self, message_id: int) -> None:
        """Deletes a caseworker's reply that could not be handed to the assistant."""
        with self._sessions.begin() as session:
            session.execute(sa.delete(CaseMessage).where(
                CaseMessage.id == message_id, CaseMessage.author == "caseworker",
                CaseMessage.delivered.is_(False)))

    def note(self, conversation_id: str, note: str) -> Optional[int]:
        """Adds ``note`` (the assistant's words, no content of the person's) to the transcript
        of the conversation's open case, unless it is already the last thing there; the
        case's id, or None when there is no open case."""
        with self._sessions.begin() as session:
            row = self._open_row(session, conversation_id)
            if row is None:
                return None
            key = self._key(session, row.id)
            last = session.execute(
                sa.select(CaseMessage).where(CaseMessage.case_id == row.id)
                .order_by(CaseMessage.id.desc()).limit(1)).scalars().first()
            if not (last is not None and last.author == "assistant"
                    and key.decrypt(last.body).decode("utf-8") == note):
                session.add(CaseMessage(case_id=row.id, author="assistant", at=self._clock(),
                                        body=key.encrypt(note.encode("utf-8")), delivered=True))
            return row.id

    def block_replies(self, conversation_id: str, note: str) -> Optional[int]:
        """The provider refused a reply because the person's number opted out: the open case
        is marked (counted in the figures) and ``note`` goes into its transcript; the case's
        id, or None when there is no open case."""
        case_id = self.note(conversation_id, note)
        if case_id is not None:
            with self._sessions.begin() as session:
                session.get(Case, case_id).replies_blocked = True
        return case_id

    def escalate(self, conversation_id: str, note: str) -> Optional[int]:
        """An emergency during a hand-off: the open case becomes the most urgent, with ``note``
        (the assistant's words, no content of the person's) in its transcript."""
        with self._sessions.begin() as session:
            row = self._open_row(session, conversation_id)
            if row is None:
                return None
            row.triage_level, row.urgency = "emergency", LEVELS.index("emergency")
            session.add(CaseMessage(case_id=row.id, author="assistant", at=self._clock(),
                                    body=self._key(session, row.id).encrypt(note.encode("utf-8")),
                                    delivered=True))
            return row.id

    def end_by_person(self, conversation_id: str) -> Optional[int]:
        """Quick exit or "forget me": the open case closes, its key and texts are destroyed.

        Returns the case's id (so a caseworker can be told), or None when there was none.
        """
        with self._sessions.begin() as session:
            row = self._open_row(session, conversation_id)
            if row is None:
                return None
            self._end(session, row, PERSON, ENDED_BY_PERSON)
            return row.id

    def expire(self, conversation_id: str) -> Optional[int]:
        """The conversation was deleted for idleness: its open case closes the same way, the
        audit saying why. Returns the case's id, or None when there was none."""
        with self._sessions.begin() as session:
            row = self._open_row(session, conversation_id)
            if row is None:
                return None
            self._end(session, row, ASSISTANT, EXPIRED)
            return row.id

    def held(self, conversation_id: str, at: dt.datetime) -> bool:
        """Whether the conversation has an open case held beyond ``at`` (see ``open``): its
        conversation's events may go, but not the case nor the reply route."""
        case = self.open_case_for(conversation_id)
        return case is not None and case.held_until is not None and case.held_until > at

    def expire_idle(self, idle_hours: float) -> list[int]:
        """Closes every open case with nothing new (opened, taken, a message either way) for
        ``idle_hours`` and no longer held (``open``): its conversation is gone or going (the
        tracker store deletes idle conversations; a Redis tracker store expires them unseen),
        so nobody could answer. Returns the ids of the cases closed."""
        now = self._clock()
        cutoff = now - dt.timedelta(hours=idle_hours)
        last_message = (sa.select(CaseMessage.case_id, sa.func.max(CaseMessage.at).label("at"))
                        .group_by(CaseMessage.case_id).subquery())
        with self._sessions.begin() as session:
            rows = session.execute(
                sa.select(Case, last_message.c.at)
                .outerjoin(last_message, last_message.c.case_id == Case.id)
                .where(Case.status.in_(("waiting", "active")))
                .with_for_update(of=Case)
            ).all()
            ended = []
            for row, last in rows:
                moments = [_aware(m) for m in (row.created_at, row.claimed_at, last) if m]
                if row.held_until is not None and _aware(row.held_until) > _aware(now):
                    continue  # the person was told a caseworker would write by then
                if max(moments) < _aware(cutoff):
                    self._end(session, row, ASSISTANT, EXPIRED)
                    ended.append(row.id)
            return ended

    async def erase(self, conversation_id: str) -> None:
        """For ``bot.privacy.erasure``: what a quick exit does to the conversation's case."""
        import asyncio

        await asyncio.to_thread(self.end_by_person, conversation_id)

    # -- the console's side -------------------------------------------------------------

    def queue(self) -> list[CaseView]:
        """Waiting cases, most urgent first, then the longest waiting."""
        with self._sessions() as session:
            rows = session.execute(
                sa.select(Case).where(Case.status == "waiting")
                .order_by(Case.urgency.desc(), Case.created_at.asc(), Case.id.asc())
            ).scalars().all()
            return [CaseView.of(r) for r in rows]

    def mine(self, user: User) -> list[CaseView]:
        """The user's active cases (a supervisor: every active case), oldest claim first."""
        with self._sessions() as session:
            query = sa.select(Case).where(Case.status == "active")
            if not user.supervisor:
                query = query.where(Case.caseworker == user.name)
            rows = session.execute(query.order_by(Case.claimed_at.asc())).scalars().all()
            return [CaseView.of(r) for r in rows]

    def claim(self, case_id: int, user: User) -> CaseView:
        """Takes a waiting case. Exactly one of several simultaneous claims succeeds.

        Raises:
            AlreadyTaken: the case is no longer waiting.
        """
        check_user_name(user.name)
        with self._sessions.begin() as session:
            self._row(session, case_id)  # CaseError for an unknown case
            taken = session.execute(
                sa.update(Case).where(Case.id == case_id, Case.status == "waiting")
                .values(status="active", caseworker=user.name, claimed_at=self._clock())
                .execution_options(synchronize_session=False)
            ).rowcount
            if taken != 1:
                raise AlreadyTaken(f"case {case_id} is no longer waiting")
            self._audit(session, user.name, "claimed", case_id)
        return self.case(case_id, user, audit=False)

    def case(self, case_id: int, user: User, audit: bool = True) -> CaseView:
        """The case, for its caseworker or a supervisor (a waiting case: for anyone)."""
        with self._sessions.begin() as session:
            row = self._row(session, case_id)
            if row.status != "waiting":
                self._check_owner(row, user)
            if audit:
                self._audit(session, user.name, "opened", case_id)
            return CaseView.of(row)

    def transcript(self, case_id: int, user: User) -> list[Line]:
        """The case's messages, oldest first.

        Raises:
            NotAllowed: for anyone but its caseworker or a supervisor.
            CaseError: once the case is closed (its key is gone).
        """
        with self._sessions() as session:
            row = self._row(session, case_id)
            self._check_owner(row, user)
            key = self._key(session, case_id)
            lines = session.execute(
                sa.select(CaseMessage).where(CaseMessage.case_id == case_id)
                .order_by(CaseMessage.at.asc(), CaseMessage.id.asc())
            ).scalars().all()
            return [Line(m.author, _aware(m.at), key.decrypt(m.body).decode("utf-8"))
                    for m in lines]

    def transfer(self, case_id: int, user: User, to: str) -> CaseView:
        """Hands an active case to a colleague (by its caseworker or a supervisor)."""
        check_user_name(to)
        with self._sessions.begin() as session:
            row = self._row(session, case_id)
            if row.status != "active":
                raise CaseError(f"case {case_id} is not active")
            self._check_owner(row, user)
            if to == row.caseworker:
                raise CaseError(f"case {case_id} is already with {to}")
            row.caseworker = to
            self._audit(session, user.name, "transferred", case_id, to)
            return CaseView.of(row)

    def close(self, case_id: int, user: User, outcome: str) -> CaseView:
        """Closes an active case with its outcome; the transcript's key is destroyed."""
        if outcome not in OUTCOMES:
            raise CaseError(f"outcome {outcome!r} is not one of {OUTCOMES}")
        with self._sessions.begin() as session:
            row = self._row(session, case_id)
            if row.status != "active":
                raise CaseError(f"case {case_id} is not active")
            self._check_owner(row, user)
            self._close_row(session, row, outcome)
            self._audit(session, user.name, "closed", case_id, outcome)
            return CaseView.of(row)

    def audit(self, case_id: Optional[int] = None) -> list[AuditEntry]:
        with self._sessions() as session:
            query = sa.select(AuditEntry).order_by(AuditEntry.id.asc())
            if case_id is not None:
                query = query.where(AuditEntry.case_id == case_id)
            return list(session.execute(query).scalars().all())

    def purge(self, closed_days: int) -> int:
        """Deletes cases closed more than ``closed_days`` ago with their transcripts."""
        cutoff = self._clock() - dt.timedelta(days=closed_days)
        with self._sessions.begin() as session:
            old = session.execute(
                sa.select(Case.id).where(Case.status == "closed", Case.closed_at < cutoff)
            ).scalars().all()
            if old:
                session.execute(sa.delete(CaseMessage).where(CaseMessage.case_id.in_(old)))
                session.execute(sa.delete(CaseKey).where(CaseKey.case_id.in_(old)))
                session.execute(sa.delete(Case).where(Case.id.in_(old)))
            return len(old)

    def reencrypt_keys(self) -> int:
        """Re-wraps every open case's key with the newest route key (``helpline secrets
        retire`` does it before dropping the old keys, else their transcripts would be lost).
        Returns how many; a key no current route key opens is left as it is."""
        count = 0
        with self._sessions.begin() as session:
            for row in session.execute(sa.select(CaseKey)).scalars():
                try:
                    row.wrapped_key = self._fernet.rotate(row.wrapped_key)
                except InvalidToken:
                    continue
                count += 1
        return count

    # -- inside -------------------------------------------------------------------------

    @staticmethod
    def _open_row(session: Session, conversation_id: str) -> Optional[Case]:
        return session.execute(
            sa.select(Case).where(Case.conversation_id == conversation_id,
                                  Case.status.in_(("waiting", "active")))
        ).scalars().first()

    @staticmethod
    def _row(session: Session, case_id: int) -> Case:
        row = session.get(Case, case_id) if isinstance(case_id, int) else None
        if row is None:
            raise CaseError(f"there is no case {case_id!r}")
        return row

    def _key(self, session: Session, case_id: int) -> Fernet:
        wrapped = session.get(CaseKey, case_id)
        if wrapped is None:
            raise CaseError(f"case {case_id}'s transcript is destroyed (the case is closed)")
        try:
            return Fernet(self._fernet.decrypt(wrapped.wrapped_key))
        except InvalidToken:
            raise CaseError(f"case {case_id}'s key cannot be opened with the current keys") from None

    @staticmethod
    def _check_owner(row: Case, user: User) -> None:
        if not user.supervisor and row.caseworker != user.name:
            raise NotAllowed(f"case {row.id} is not {user.name}'s")

    def _end(self, session: Session, row: Case, actor: str, detail: str) -> None:
        """Closes an open case nobody in the console closed: no contact, texts deleted."""
        self._close_row(session, row, "no_contact")
        session.execute(sa.delete(CaseMessage).where(CaseMessage.case_id == row.id))
        self._audit(session, actor, "closed", row.id, detail)

    def _close_row(self, session: Session, row: Case, outcome: str) -> None:
        row.status, row.outcome, row.closed_at = "closed", outcome, self._clock()
        session.execute(sa.delete(CaseKey).where(CaseKey.case_id == row.id))

    def _audit(self, session: Session, actor: str, action: str, case_id: int,
               detail: Optional[str] = None) -> None:
        session.add(AuditEntry(at=self._clock(), actor=actor, action=action, case_id=case_id,
                               detail=detail))
