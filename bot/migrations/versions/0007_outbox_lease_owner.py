"""The campaign outbox's lease owner: which dispatcher run holds a ``sending`` row.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Rows left ``sending`` by an older dispatcher get no owner: their lease runs out and they
    # are taken back as before.
    op.add_column("outbox", sa.Column("lease_owner", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("lease_owner")
