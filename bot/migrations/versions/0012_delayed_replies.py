"""Delayed replies: the ledger of conversations whose replies a provider did not take yet.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

STATES = ("waiting", "delivered", "dropped")
REASONS = ("no_route", "refused", "too_late")


def upgrade() -> None:
    op.create_table(
        "delayed_replies",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("conversation_id", sa.String(64), nullable=True),
        sa.Column("state", sa.String(9), nullable=False),
        sa.Column("reason", sa.String(12), nullable=True),
        sa.Column("delayed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("lease_owner", sa.String(32), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("parts", sa.Integer, nullable=False),
        sa.CheckConstraint(f"state IN {STATES}", name="state"),
        sa.CheckConstraint(f"reason IS NULL OR reason IN {REASONS}", name="reason"),
    )
    op.create_index("ix_delayed_replies_waiting", "delayed_replies", ["conversation_id"],
                    unique=True, sqlite_where=sa.text("state = 'waiting'"),
                    postgresql_where=sa.text("state = 'waiting'"))
    op.create_index("ix_delayed_replies_due", "delayed_replies",
                    ["state", "channel", "next_attempt_at"])
    op.create_index("ix_delayed_replies_finished", "delayed_replies", ["finished_at"])


def downgrade() -> None:
    op.drop_table("delayed_replies")
