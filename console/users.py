"""Caseworkers and their sign-in: argon2 password hashes, lock-out, server-side sessions.

- A password is at least ``MIN_PASSWORD_CHARS`` characters; only its argon2id hash is stored.
- Every ``MAX_FAILURES`` wrong passwords in a row lock the account: for
  ``LOCK_FIRST_MINUTES`` the first time, twice as long each time after, at most
  ``LOCK_MAX_MINUTES`` (the count goes on until a success, a new password or
  ``helpline users unlock``). A correct password during the lock-out is refused too. The
  refusal reads the same whether the user exists, is disabled, is locked or typed a wrong
  password (``SignInRefused``), and an unknown name costs the same argon2 work as a known one.
- An attempt is counted before its password is hashed, by one conditional UPDATE (a
  compare-and-set on the count), so parallel guesses cannot slip past the limit: of 20 wrong
  passwords sent at once, exactly ``MAX_FAILURES`` are checked and the rest are refused as
  locked.
- At most ``hash_slots`` (default: the machine's cores) argon2 hashes run at once
  (``HashGate``), so a flood of sign-ins cannot take every core from the case pages.
- A session is a random token in the browser's cookie; the table keeps its SHA-256, so a copy
  of the database cannot be replayed as a cookie. It ends after ``IDLE_MINUTES`` without a
  request, after ``MAX_HOURS`` in any case, at sign-out, and when the user is disabled.
- Sign-ins, refusals, lock-outs, sign-outs, expired sessions and the changes made with
  ``helpline users`` go to the ``sign_in_events`` table (the supervisors' audit page) and to
  the log, with the user name; never a password, and a name that is not a user is neither
  stored nor logged, as it may be a password typed in the wrong field. No IP address, no
  browser.

Everything here is synchronous SQLAlchemy (call it from a thread in async code). The delays
per client address are the web app's (``console.throttle``): this module never sees an
address.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import re
import secrets
import threading
from dataclasses import dataclass
from typing import Callable, Optional

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy.orm import Session, sessionmaker

from bot.cases.queue import ASSISTANT, PERSON, User
from console.models import LANGUAGES, ROLES, Caseworker, ConsoleSession, SignInEvent

logger = logging.getLogger("console.auth")

MIN_PASSWORD_CHARS = 12
MAX_PASSWORD_CHARS = 1024
MAX_FAILURES = 5
LOCK_FIRST_MINUTES = 1
LOCK_MAX_MINUTES = 15
IDLE_MINUTES = 30
MAX_HOURS = 12
_NAME = re.compile(r"^[a-z0-9_.\-]{2,64}$")
RESERVED_NAMES = (PERSON, ASSISTANT)  # actors of the cases' audit log that are no user
_HASHER = PasswordHasher()
_DUMMY_HASH = _HASHER.hash("not a password of anyone: evens out the time of a refusal")


class UserError(ValueError):
    """A user cannot be created or changed as asked; the message says why."""


class SignInRefused(Exception):
    """Wrong name or password, a disabled or a locked account: one message for all."""


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _aware(moment: Optional[dt.datetime]) -> Optional[dt.datetime]:
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=dt.timezone.utc)
    return moment


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def growing_delay(failures: int, every: int, first_minutes: int, max_minutes: int) -> int:
    """Minutes of delay after the ``failures``-th failure in a row: 0 unless it is a multiple
    of ``every``; then ``first_minutes``, doubled at each further multiple, at most
    ``max_minutes``. 5 failures: 1 min, 10: 2, 15: 4, 20: 8, then the cap."""
    if failures <= 0 or failures % every:
        return 0
    doublings = min(failures // every - 1, 30)
    return min(max_minutes, first_minutes * 2 ** doublings)


def lock_minutes(failures: int) -> int:
    """How long the ``failures``-th wrong password in a row locks an account (0: not)."""
    return growing_delay(failures, MAX_FAILURES, LOCK_FIRST_MINUTES, LOCK_MAX_MINUTES)


class HashGate:
    """At most ``slots`` argon2 hashes at once; ``running``, ``peak`` and ``done`` say how many
    run, ran at most at once, and ran in all (the sign-in flood tests read them)."""

    def __init__(self, slots: int) -> None:
        if slots < 1:
            raise ValueError("hash_slots is at least 1")
        self.slots = slots
        self._semaphore = threading.BoundedSemaphore(slots)
        self._lock = threading.Lock()
        self.running = 0
        self.peak = 0
        self.done = 0

    def __enter__(self) -> "HashGate":
        self._semaphore.acquire()
        with self._lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
        return self

    def __exit__(self, *_exc) -> None:
        with self._lock:
            self.running -= 1
            self.done += 1
        self._semaphore.release()


@dataclass
class Attempt:
    """One sign-in under way (``Users.begin_sign_in``): the hash to check the password
    against (a dummy one for an unknown name or a locked account), whether it was counted,
    the count of failures in a row it makes, and the lock-out it started if it fails."""

    name: Optional[str]
    password_hash: str
    counted: bool = False
    locked: bool = False
    failures: int = 0
    lock_minutes: int = 0
    new_hash: Optional[str] = None  # the password hashed again with today's parameters


@dataclass(frozen=True)
class Account:
    """A caseworker as ``helpline users list`` shows it."""

    name: str
    role: str
    language: str
    locked_until: Optional[dt.datetime]
    created_at: dt.datetime
    last_sign_in: Optional[dt.datetime]
    disabled: bool

    @property
    def supervisor(self) -> bool:
        return self.role == "supervisor"


@dataclass(frozen=True)
class SignedIn:
    """A valid session: who, in which language, and the session's CSRF token."""

    user: User
    language: str
    csrf_token: str


def check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise UserError("a user name is 2 to 64 characters: a-z, 0-9, dot, dash, underscore")
    return name


def check_password(password: str) -> str:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_CHARS:
        raise UserError(f"a password has at least {MIN_PASSWORD_CHARS} characters")
    if len(password) > MAX_PASSWORD_CHARS:
        raise UserError(f"a password has at most {MAX_PASSWORD_CHARS} characters")
    return password


class Users:
    """The console's users and sessions on the project's database."""

    def __init__(self, sessions: "sessionmaker[Session]",
                 clock: Callable[[], dt.datetime] = utcnow,
                 hash_slots: Optional[int] = None) -> None:
        """
        Args:
            sessions: the project's database.
            clock: the time (tests move it).
            hash_slots: how many argon2 hashes may run at once (default: the cores).
        """
        self._sessions = sessions
        self._clock = clock
        self.hashing = HashGate(hash_slots or os.cpu_count() or 1)

    def _hash(self, password: str) -> str:
        with self.hashing:
            return _HASHER.hash(password)

    # -- accounts (the CLI) -------------------------------------------------------------

    def add(self, name: str, password: str, supervisor: bool = False,
            language: str = "en") -> Account:
        """Creates a user.

        Raises:
            UserError: a bad, reserved or taken name, a bad password or language.
        """
        check_name(name)
        if name in RESERVED_NAMES:
            raise UserError(f"{name!r} is reserved: the audit log names the person and the "
                            f"assistant so; choose another user name")
        check_password(password)
        if language not in LANGUAGES:
            raise UserError(f"language {language!r} is not one of {', '.join(LANGUAGES)}")
        with self._sessions.begin() as session:
            if session.get(Caseworker, name) is not None:
                raise UserError(f"there is already a user {name}")
            row = Caseworker(name=name, password_hash=self._hash(password),
                             role=ROLES[1] if supervisor else ROLES[0], language=language,
                             failed_attempts=0, created_at=self._clock())
            session.add(row)
            _event(session, self._clock(), name, "created")
            session.flush()
            account = self._account(row)
        logger.info("user created: %s", name)
        return account

    def account(self, name: str) -> Account:
        """One user.

        Raises:
            UserError: no such user.
        """
        with self._sessions() as session:
            return self._account(self._existing(session, name))

    def list(self) -> list[Account]:
        with self._sessions() as session:
            rows = session.execute(sa.select(Caseworker).order_by(Caseworker.name)).scalars()
            return [self._account(r) for r in rows]

    def active_names(self) -> list[str]:
        """Users who may sign in (not disabled), for the transfer list."""
        with self._sessions() as session:
            return list(session.execute(
                sa.select(Caseworker.name).where(Caseworker.disabled_at.is_(None))
                .order_by(Caseworker.name)).scalars())

    def disable(self, name: str) -> None:
        """The user can no longer sign in; their sessions end now.

        Raises:
            UserError: no such user.
        """
        with self._sessions.begin() as session:
            row = self._existing(session, name)
            if row.disabled_at is None:
                row.disabled_at = self._clock()
                _event(session, row.disabled_at, name, "disabled")
            session.execute(sa.delete(ConsoleSession).where(ConsoleSession.caseworker == name))
        logger.info("user disabled: %s", name)

    def enable(self, name: str) -> bool:
        """The user may sign in again (a lock-out ends too). False: they were not disabled.

        Raises:
            UserError: no such user.
        """
        with self._sessions.begin() as session:
            row = self._existing(session, name)
            was_disabled = row.disabled_at is not None
            row.disabled_at, row.failed_attempts, row.locked_until = None, 0, None
            if was_disabled:
                _event(session, self._clock(), name, "enabled")
        if was_disabled:
            logger.info("user enabled: %s", name)
        return was_disabled

    def set_password(self, name: str, password: str) -> Account:
        """A new password: the lock-out ends and every session of the user ends now.

        Raises:
            UserError: no such user, or a password too short or too long.
        """
        check_password(password)
        with self._sessions.begin() as session:
            row = self._existing(session, name)
            row.password_hash = self._hash(password)
            row.failed_attempts, row.locked_until = 0, None
            session.execute(sa.delete(ConsoleSession).where(ConsoleSession.caseworker == name))
            _event(session, self._clock(), name, "password_set")
            session.flush()
            account = self._account(row)
        logger.info("password set, signed out everywhere: %s", name)
        return account

    def signed_in_count(self) -> int:
        """How many users have a session that has not timed out (for "is anyone on shift")."""
        now = self._clock()
        with self._sessions() as session:
            return session.execute(
                sa.select(sa.func.count(sa.distinct(ConsoleSession.caseworker)))
                .where(ConsoleSession.last_seen > now - dt.timedelta(minutes=IDLE_MINUTES),
                       ConsoleSession.created_at > now - dt.timedelta(hours=MAX_HOURS))
            ).scalar_one()

    # -- sign-in and sessions (the web app) ---------------------------------------------

    def sign_in(self, name: str, password: str) -> tuple[str, SignedIn]:
        """Checks the password and opens a session: returns the cookie's token and the session.

        The three steps one after the other; the web app runs them apart, so that the hash
        waits for a free core outside the threads (``begin_sign_in``, ``check``,
        ``finish_sign_in``).

        Raises:
            SignInRefused: for any reason, with the same message.
        """
        attempt = self.begin_sign_in(name)
        return self.finish_sign_in(attempt, self.check(attempt, password))

    def begin_sign_in(self, name: str) -> "Attempt":
        """Counts the attempt as a failure before any hash is computed; a success takes it
        back. The count goes up by one conditional UPDATE that only matches the count just
        read on an account that is not locked (a compare-and-set, atomic on SQLite and
        PostgreSQL alike), so parallel guesses cannot all see "4 failures so far"."""
        if not isinstance(name, str) or not _NAME.match(name):
            return Attempt(None, _DUMMY_HASH)
        while True:
            now = self._clock()
            with self._sessions.begin() as session:
                row = session.execute(
                    sa.select(Caseworker.failed_attempts, Caseworker.locked_until,
                              Caseworker.password_hash)
                    .where(Caseworker.name == name)).one_or_none()
                if row is None:
                    return Attempt(None, _DUMMY_HASH)
                locked = _aware(row.locked_until)
                if locked is not None and locked > now:
                    return Attempt(name, _DUMMY_HASH, locked=True)
                failures = row.failed_attempts + 1
                minutes = lock_minutes(failures)
                lock = now + dt.timedelta(minutes=minutes) if minutes else None
                counted = session.execute(
                    sa.update(Caseworker)
                    .where(Caseworker.name == name,
                           Caseworker.failed_attempts == row.failed_attempts,
                           sa.or_(Caseworker.locked_until.is_(None),
                                  Caseworker.locked_until <= now))
                    .values(failed_attempts=failures, locked_until=lock)
                    .execution_options(synchronize_session=False)).rowcount
            if counted:
                return Attempt(name, row.password_hash, counted=True, failures=failures,
                               lock_minutes=minutes)
            # Another attempt counted first: read the count again.

    def check(self, attempt: "Attempt", password: str) -> bool:
        """The argon2 work of one attempt (the same for an unknown name or a locked account),
        in one of the ``hash_slots``."""
        with self.hashing:
            right = _verify(attempt.password_hash, password)
            if right and attempt.counted and _HASHER.check_needs_rehash(attempt.password_hash):
                attempt.new_hash = _HASHER.hash(password)
        return right

    def finish_sign_in(self, attempt: "Attempt", password_ok: bool) -> tuple[str, SignedIn]:
        """Opens the session of a right password, or records the refusal.

        Raises:
            SignInRefused: for any reason, with the same message.
        """
        now = self._clock()
        name = attempt.name
        signed: Optional[SignedIn] = None
        # The refusal is recorded, so it is raised after the block.
        with self._sessions.begin() as session:
            row = session.get(Caseworker, name) if attempt.counted else None
            if row is None:
                # An unknown name is not kept: it may be a password typed in the wrong box.
                _event(session, now, name, "refused")
                if attempt.locked:
                    logger.info("sign-in refused, account locked: %s", name)
            elif not password_ok or row.disabled_at is not None:
                if attempt.lock_minutes:
                    _event(session, now, name, "locked_out")
                    logger.warning("account locked for %d minute(s) after %d failed sign-ins "
                                   "in a row: %s", attempt.lock_minutes, attempt.failures, name)
                else:
                    _event(session, now, name, "refused")
                    logger.info("sign-in failed: %s", name)
            else:
                if attempt.new_hash is not None:
                    row.password_hash = attempt.new_hash
                row.failed_attempts, row.locked_until, row.last_sign_in = 0, None, now
                token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
                session.add(ConsoleSession(token_hash=_digest(token), caseworker=name,
                                           csrf_token=csrf, created_at=now, last_seen=now))
                _event(session, now, name, "signed_in")
                signed = SignedIn(User(name, row.role == "supervisor"), row.language, csrf)
        if signed is None:
            raise SignInRefused()
        logger.info("signed in: %s", name)
        return token, signed

    def unlock(self, name: str) -> bool:
        """A supervisor ends a lock-out and forgets the failed sign-ins in a row. False: the
        account was not locked (its count is reset all the same).

        Raises:
            UserError: no such user.
        """
        now = self._clock()
        with self._sessions.begin() as session:
            row = self._existing(session, name)
            locked = _aware(row.locked_until)
            was_locked = locked is not None and locked > now
            row.failed_attempts, row.locked_until = 0, None
            _event(session, now, name, "unlocked")
        logger.info("account unlocked: %s", name)
        return was_locked

    def session(self, token: Optional[str], touch: bool = True) -> Optional[SignedIn]:
        """The session of a cookie's token, or None (unknown, timed out, user disabled).

        ``touch``: count this as activity (the live updates do not, so an open tab still
        times out).
        """
        if not token or len(token) > 100:
            return None
        now = self._clock()
        with self._sessions.begin() as session:
            row = session.get(ConsoleSession, _digest(token))
            if row is None:
                return None
            user = session.get(Caseworker, row.caseworker)
            ended = _ends_at(row)
            if user is None or user.disabled_at is not None or ended <= now:
                # Conditional, so that of two requests ending it at once only one records it.
                gone = session.execute(
                    sa.delete(ConsoleSession).where(ConsoleSession.token_hash == row.token_hash)
                    .execution_options(synchronize_session=False)).rowcount
                if gone and user is not None and user.disabled_at is None:
                    _event(session, ended, row.caseworker, "expired")
                    logger.info("session timed out: %s", row.caseworker)
                return None
            if touch:
                row.last_seen = now
            return SignedIn(User(user.name, user.role == "supervisor"), user.language,
                            row.csrf_token)

    def sign_out(self, token: Optional[str]) -> None:
        if not token:
            return
        with self._sessions.begin() as session:
            row = session.get(ConsoleSession, _digest(token))
            if row is not None:
                logger.info("signed out: %s", row.caseworker)
                session.delete(row)
                _event(session, self._clock(), row.caseworker, "signed_out")

    def purge_sessions(self) -> int:
        """Deletes sessions that have timed out (each an ``expired`` event, at its end)."""
        now = self._clock()
        purged = 0
        with self._sessions.begin() as session:
            old = session.execute(sa.select(ConsoleSession).where(sa.or_(
                ConsoleSession.last_seen <= now - dt.timedelta(minutes=IDLE_MINUTES),
                ConsoleSession.created_at <= now - dt.timedelta(hours=MAX_HOURS),
            ))).scalars().all()
            for row in old:
                if session.execute(
                        sa.delete(ConsoleSession)
                        .where(ConsoleSession.token_hash == row.token_hash)
                        .execution_options(synchronize_session=False)).rowcount:
                    _event(session, _ends_at(row), row.caseworker, "expired")
                    logger.info("session timed out: %s", row.caseworker)
                    purged += 1
        return purged

    def purge_events(self, days: int) -> int:
        """Deletes sign-in events older than ``days``."""
        cutoff = self._clock() - dt.timedelta(days=days)
        with self._sessions.begin() as session:
            return session.execute(
                sa.delete(SignInEvent).where(SignInEvent.at < cutoff)
                .execution_options(synchronize_session=False)).rowcount

    @staticmethod
    def _existing(session: Session, name: str) -> Caseworker:
        row = session.get(Caseworker, name) if isinstance(name, str) and _NAME.match(name) \
            else None
        if row is None:
            raise UserError(f"there is no user {name}")
        return row

    @staticmethod
    def _account(row: Caseworker) -> Account:
        return Account(row.name, row.role, row.language, _aware(row.locked_until),
                       _aware(row.created_at), _aware(row.last_sign_in),
                       row.disabled_at is not None)


def _event(session: Session, at: dt.datetime, name: Optional[str], event: str) -> None:
    """One row of the sign-in audit, in the caller's transaction (``name``: an existing user's,
    or None)."""
    session.add(SignInEvent(at=at, user_name=name, event=event))


def _ends_at(row: ConsoleSession) -> dt.datetime:
    """When a session times out: idle too long, or open too long."""
    return min(_aware(row.last_seen) + dt.timedelta(minutes=IDLE_MINUTES),
               _aware(row.created_at) + dt.timedelta(hours=MAX_HOURS))


def _verify(password_hash: str, password: str) -> bool:
    if not isinstance(password, str) or not password or len(password) > MAX_PASSWORD_CHARS:
        password = "\0"  # still do the work, so the time says nothing
    try:
        return _HASHER.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
