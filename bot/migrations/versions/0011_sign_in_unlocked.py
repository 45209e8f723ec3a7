"""Sign-in events: "unlocked", a supervisor ending a lock-out (console or `helpline users unlock`).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

BEFORE = ("signed_in", "refused", "locked_out", "signed_out", "expired",
          "created", "disabled", "enabled", "password_set")
AFTER = BEFORE + ("unlocked",)


def _events(allowed: tuple[str, ...]) -> None:
    with op.batch_alter_table("sign_in_events") as batch:
        batch.drop_constraint("event", type_="check")  # ck_sign_in_events_event
        batch.create_check_constraint("event", f"event IN {allowed}")


def upgrade() -> None:
    _events(AFTER)


def downgrade() -> None:
    op.execute(f"DELETE FROM sign_in_events WHERE event NOT IN {BEFORE}")
    _events(BEFORE)
