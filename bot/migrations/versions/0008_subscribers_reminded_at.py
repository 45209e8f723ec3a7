"""Subscribers' consent reminder: when the last one was queued (``helpline campaign remind``).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Existing subscribers have not been reminded: the first `remind` reaches those whose
    # consent ends within its --days.
    op.add_column("subscribers", sa.Column("reminded_at", sa.DateTime(timezone=True),
                                           nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("subscribers") as batch:
        batch.drop_column("reminded_at")
