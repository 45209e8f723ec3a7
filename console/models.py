"""Tables of the console (migrations 0004 and 0005, never ``create_all``).

- ``caseworkers``: who may sign in. The user name, an argon2 hash of the password (never the
  password), the role (caseworker or supervisor), the language need names are shown in,
  failed sign-ins in a row and the time a lock-out ends, and when the account was created,
  last used and disabled.
- ``console_sessions``: signed-in browsers. The cookie holds a random token; the table holds
  only its SHA-256, the user, the session's CSRF token and its times. Signing out, disabling
  the user or the idle timeout ends it.
- ``sign_in_events`` (0005, "unlocked" 0010): the sign-in audit. The time, the user name (only of an existing
  account: a name that is not a user may be a password typed in the wrong box, so a refusal
  for an unknown name is kept without any name) and the event, from a closed set. No IP
  address, no browser. Purged with closed cases (``retention.closed_case_days``).
"""

from __future__ import annotations

import sqlalchemy as sa

from bot.storage import Base

ROLES = ("caseworker", "supervisor")
LANGUAGES = ("en", "fr", "ar", "es")


class Caseworker(Base):
    __tablename__ = "caseworkers"

    name = sa.Column(sa.String(64), primary_key=True)
    password_hash = sa.Column(sa.String(200), nullable=False)
    role = sa.Column(sa.String(10), nullable=False)
    language = sa.Column(sa.String(2), nullable=False)
    failed_attempts = sa.Column(sa.Integer, nullable=False)
    locked_until = sa.Column(sa.DateTime(timezone=True), nullable=True)
    created_at = sa.Column(sa.DateTime(timezone=True), nullable=False)
    last_sign_in = sa.Column(sa.DateTime(timezone=True), nullable=True)
    disabled_at = sa.Column(sa.DateTime(timezone=True), nullable=True)

    __table_args__ = (
        sa.CheckConstraint(f"role IN {ROLES}", name="role"),
        sa.CheckConstraint(f"language IN {LANGUAGES}", name="language"),
    )


class ConsoleSession(Base):
    __tablename__ = "console_sessions"

    token_hash = sa.Column(sa.String(64), primary_key=True)  # SHA-256 of the cookie's token
    caseworker = sa.Column(sa.String(64), sa.ForeignKey("caseworkers.name", ondelete="CASCADE"),
                           nullable=False, index=True)
    csrf_token = sa.Column(sa.String(64), nullable=False)
    created_at = sa.Column(sa.DateTime(timezone=True), nullable=False)
    last_seen = sa.Column(sa.DateTime(timezone=True), nullable=False)


# What happens to an account, in the sign-in audit (closed set). From "created" on: the
# changes made with ``helpline users`` on the server ("unlocked", 0010: or by a supervisor in
# the console).
SIGN_IN_EVENTS = ("signed_in", "refused", "locked_out", "signed_out", "expired",
                  "created", "disabled", "enabled", "password_set", "unlocked")


class SignInEvent(Base):
    __tablename__ = "sign_in_events"

    id = sa.Column(sa.Integer, primary_key=True)
    at = sa.Column(sa.DateTime(timezone=True), nullable=False, index=True)
    user_name = sa.Column(sa.String(64), nullable=True, index=True)  # None: not a user
    event = sa.Column(sa.String(12), nullable=False)

    __table_args__ = (sa.CheckConstraint(f"event IN {SIGN_IN_EVENTS}", name="event"),)
