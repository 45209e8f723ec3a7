"""Tables of the awareness campaigns (migrations 0006 to 0008, never ``create_all``).

- ``subscribers``: people who said yes to receiving safety messages. The pseudonymous
  conversation id, channel (sms, telegram), language, coarse area code, when they consented,
  when they were last reminded that the consent runs out (``reminded_at``: the reminder was
  queued, ``helpline campaign remind``; cleared when the consent is renewed), and the address needed to send (phone number, chat id) as a Fernet token under the
  deployment's route key, which lives outside the database (the secrets file). This is the one
  place an address is kept at rest, and only with consent; unsubscribing (STOP), a quick exit
  or "forget me" deletes the row at once. ``address`` is empty between the consent (written by
  the action server, which never sees addresses) and the channel's attaching it in the same
  turn (the channel, in the Rasa server, holds the address in the reply route).
- ``campaigns``: one campaign as validated from its YAML file (name, the definition as JSON:
  texts per language, audience, window, weekly cap), when it was queued and by which file hash.
- ``outbox``: one message of a campaign to one subscriber (or to an NGO's Telegram channel),
  with an idempotency key (a hash of campaign and recipient: queuing twice never sends twice),
  its state (pending, sending, sent, failed, opted_out), attempts, when to try next, the
  sending lease (``lease_until``, and ``lease_owner``: the random id of the dispatcher run
  that claimed it, cleared when the row is taken back, given back or written), the provider's
  message id and a short error code. No text (the campaign has it) and no address (the
  subscriber has it). A dispatcher renews, writes and gives back only the rows still
  ``sending`` under its own id, so one that was frozen past its lease never overwrites the
  dispatcher that took its rows back; what the owner cannot prevent is a request already on
  its way when the freeze began (``bot.campaigns.dispatch``: "Exactly once").
"""

from __future__ import annotations

import sqlalchemy as sa

from bot.storage import Base

SUBSCRIBER_CHANNELS = ("sms", "telegram")
OUTBOX_CHANNELS = ("sms", "telegram", "telegram_channel")
OUTBOX_STATES = ("pending", "sending", "sent", "failed", "opted_out")


class Subscriber(Base):
    __tablename__ = "subscribers"

    id = sa.Column(sa.Integer, primary_key=True)
    conversation_id = sa.Column(sa.String(64), nullable=False, unique=True)
    channel = sa.Column(sa.String(8), nullable=False)
    language = sa.Column(sa.String(2), nullable=False)
    area = sa.Column(sa.String(40), nullable=True)
    consented_at = sa.Column(sa.DateTime(timezone=True), nullable=False)
    address = sa.Column(sa.LargeBinary, nullable=True)  # Fernet token; None until attached
    reminded_at = sa.Column(sa.DateTime(timezone=True), nullable=True)  # consent reminder queued

    __table_args__ = (
        sa.CheckConstraint(f"channel IN {SUBSCRIBER_CHANNELS}", name="channel"),
        sa.Index("ix_subscribers_language_area", "language", "area"),
    )


class Campaign(Base):
    __tablename__ = "campaigns"

    id = sa.Column(sa.Integer, primary_key=True)
    name = sa.Column(sa.String(80), nullable=False, unique=True)
    definition = sa.Column(sa.Text, nullable=False)  # JSON of the validated YAML
    file_hash = sa.Column(sa.String(64), nullable=False)
    queued_at = sa.Column(sa.DateTime(timezone=True), nullable=False)


class OutboxMessage(Base):
    __tablename__ = "outbox"

    id = sa.Column(sa.Integer, primary_key=True)
    campaign_id = sa.Column(sa.ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False)
    subscriber_id = sa.Column(sa.ForeignKey("subscribers.id", ondelete="SET NULL"), nullable=True)
    idempotency_key = sa.Column(sa.String(64), nullable=False, unique=True)
    channel = sa.Column(sa.String(16), nullable=False)
    language = sa.Column(sa.String(2), nullable=False)
    state = sa.Column(sa.String(9), nullable=False)
    attempts = sa.Column(sa.Integer, nullable=False, default=0)
    next_attempt_at = sa.Column(sa.DateTime(timezone=True), nullable=False)
    lease_until = sa.Column(sa.DateTime(timezone=True), nullable=True)
    lease_owner = sa.Column(sa.String(32), nullable=True)  # the holding dispatcher run's id
    sent_at = sa.Column(sa.DateTime(timezone=True), nullable=True)
    provider_ref = sa.Column(sa.String(64), nullable=True)
    error = sa.Column(sa.String(40), nullable=True)

    __table_args__ = (
        sa.CheckConstraint(f"state IN {OUTBOX_STATES}", name="state"),
        sa.CheckConstraint(f"channel IN {OUTBOX_CHANNELS}", name="channel"),
        sa.Index("ix_outbox_due", "state", "next_attempt_at"),
        sa.Index("ix_outbox_campaign_state", "campaign_id", "state"),
        sa.Index("ix_outbox_subscriber_sent", "subscriber_id", "sent_at"),
    )
