"""Awareness campaigns: subscribers (with consent), campaigns, the outbox.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

SUBSCRIBER_CHANNELS = ("sms", "telegram")
OUTBOX_CHANNELS = ("sms", "telegram", "telegram_channel")
OUTBOX_STATES = ("pending", "sending", "sent", "failed", "opted_out")


def upgrade() -> None:
    op.create_table(
        "subscribers",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("conversation_id", sa.String(64), nullable=False, unique=True),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("language", sa.String(2), nullable=False),
        sa.Column("area", sa.String(40), nullable=True),
        sa.Column("consented_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("address", sa.LargeBinary, nullable=True),
        sa.CheckConstraint(f"channel IN {SUBSCRIBER_CHANNELS}", name="channel"),
    )
    op.create_index("ix_subscribers_language_area", "subscribers", ["language", "area"])
    op.create_table(
        "campaigns",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(80), nullable=False, unique=True),
        sa.Column("definition", sa.Text, nullable=False),
        sa.Column("file_hash", sa.String(64), nullable=False),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("campaign_id", sa.Integer, sa.ForeignKey("campaigns.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("subscriber_id", sa.Integer, sa.ForeignKey("subscribers.id", ondelete="SET NULL"),
                  nullable=True),
        sa.Column("idempotency_key", sa.String(64), nullable=False, unique=True),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("language", sa.String(2), nullable=False),
        sa.Column("state", sa.String(9), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("provider_ref", sa.String(64), nullable=True),
        sa.Column("error", sa.String(40), nullable=True),
        sa.CheckConstraint(f"state IN {OUTBOX_STATES}", name="state"),
        sa.CheckConstraint(f"channel IN {OUTBOX_CHANNELS}", name="channel"),
    )
    op.create_index("ix_outbox_due", "outbox", ["state", "next_attempt_at"])
    op.create_index("ix_outbox_campaign_state", "outbox", ["campaign_id", "state"])
    op.create_index("ix_outbox_subscriber_sent", "outbox", ["subscriber_id", "sent_at"])


def downgrade() -> None:
    op.drop_table("outbox")
    op.drop_table("campaigns")
    op.drop_table("subscribers")
