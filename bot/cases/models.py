"""Tables of the hand-off (migration 0003, never ``create_all``).

- ``cases``: one hand-off of one conversation. Only closed sets and times: the pseudonymous
  conversation id, channel, language, triage level and need categories, the coarse area code,
  status (waiting, active, closed), the caseworker's user name, the outcome (referred,
  information given, no contact, other), until when a waiting case is held for the shift the
  person was told of. No names, numbers or free text.
- ``case_keys``: the key of a case's transcript, itself encrypted with the deployment's route
  key (so a copy of the database alone opens nothing). Closing a case deletes its row: the
  transcript becomes unreadable, whether or not its rows are deleted yet.
- ``case_messages``: the live transcript, each text a Fernet token under the case's key; a
  caseworker's reply is ``delivered`` once the assistant has sent it to the person.
- ``audit_log``: who claimed, opened, replied to, transferred and closed which case, when;
  never message content.
"""

from __future__ import annotations

import sqlalchemy as sa

from bot.storage import Base

STATUSES = ("waiting", "active", "closed")
LEVELS = ("none", "low", "medium", "high", "emergency")  # "none": asked for a person directly
OUTCOMES = ("referred", "information_given", "no_contact", "other")
AUTHORS = ("person", "caseworker", "assistant")
AUDIT_ACTIONS = ("claimed", "opened", "replied", "transferred", "closed", "released")


class Case(Base):
    __tablename__ = "cases"

    id = sa.Column(sa.Integer, primary_key=True)
    conversation_id = sa.Column(sa.String(64), nullable=False, index=True)
    channel = sa.Column(sa.String(16), nullable=False)
    language = sa.Column(sa.String(2), nullable=False)
    triage_level = sa.Column(sa.String(9), nullable=False)
    urgency = sa.Column(sa.Integer, nullable=False)  # the level's rank, for the queue's order
    needs = sa.Column(sa.String(400), nullable=False, default="")  # sorted, comma-separated
    area = sa.Column(sa.String(40), nullable=True)
    status = sa.Column(sa.String(7), nullable=False, index=True)
    caseworker = sa.Column(sa.String(64), nullable=True)
    outcome = sa.Column(sa.String(17), nullable=True)
    created_at = sa.Column(sa.DateTime(timezone=True), nullable=False)
    claimed_at = sa.Column(sa.DateTime(timezone=True), nullable=True)
    closed_at = sa.Column(sa.DateTime(timezone=True), nullable=True)
    # the provider refused a reply because the person's number opted out (Twilio 21610):
    # a closed fact for the console and the figures, no time or text with it
    replies_blocked = sa.Column(sa.Boolean, nullable=False, default=False,
                                server_default=sa.false())
    # the person was told when a caseworker would write (the next shift of cover): the case
    # and the reply route are kept until then, though the conversation's events go
    held_until = sa.Column(sa.DateTime(timezone=True), nullable=True)

    __table_args__ = (
        sa.CheckConstraint(f"status IN {STATUSES}", name="status"),
        sa.CheckConstraint(f"triage_level IN {LEVELS}", name="triage_level"),
        sa.CheckConstraint(f"outcome IS NULL OR outcome IN {OUTCOMES}", name="outcome"),
    )


class CaseKey(Base):
    __tablename__ = "case_keys"

    case_id = sa.Column(sa.Integer, sa.ForeignKey("cases.id", ondelete="CASCADE"),
                        primary_key=True)
    wrapped_key = sa.Column(sa.LargeBinary, nullable=False)


class CaseMessage(Base):
    __tablename__ = "case_messages"

    id = sa.Column(sa.Integer, primary_key=True)
    case_id = sa.Column(sa.Integer, sa.ForeignKey("cases.id", ondelete="CASCADE"),
                        nullable=False, index=True)
    author = sa.Column(sa.String(10), nullable=False)
    at = sa.Column(sa.DateTime(timezone=True), nullable=False)
    body = sa.Column(sa.LargeBinary, nullable=False)  # Fernet token under the case's key
    # a caseworker's reply waits here until action_relay_caseworker has sent it
    delivered = sa.Column(sa.Boolean, nullable=False)

    __table_args__ = (sa.CheckConstraint(f"author IN {AUTHORS}", name="author"),)


class AuditEntry(Base):
    __tablename__ = "audit_log"

    id = sa.Column(sa.Integer, primary_key=True)
    at = sa.Column(sa.DateTime(timezone=True), nullable=False)
    actor = sa.Column(sa.String(64), nullable=False)
    action = sa.Column(sa.String(11), nullable=False)
    case_id = sa.Column(sa.Integer, nullable=False, index=True)  # kept after the case is purged
    detail = sa.Column(sa.String(64), nullable=True)  # a user name or an outcome: closed sets

    __table_args__ = (sa.CheckConstraint(f"action IN {AUDIT_ACTIONS}", name="action"),)
