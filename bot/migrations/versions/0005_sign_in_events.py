"""The console's sign-in audit: who signed in, was refused, locked out, signed out, when.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

SIGN_IN_EVENTS = ("signed_in", "refused", "locked_out", "signed_out", "expired",
                  "created", "disabled", "enabled", "password_set")


def upgrade() -> None:
    op.create_table(
        "sign_in_events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_name", sa.String(64), nullable=True),
        sa.Column("event", sa.String(12), nullable=False),
        sa.CheckConstraint(f"event IN {SIGN_IN_EVENTS}", name="event"),
    )
    op.create_index("ix_sign_in_events_at", "sign_in_events", ["at"])
    op.create_index("ix_sign_in_events_user_name", "sign_in_events", ["user_name"])


def downgrade() -> None:
    op.drop_table("sign_in_events")
