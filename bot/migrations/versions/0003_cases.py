"""The hand-off: cases, their wrapped transcript keys, encrypted transcripts, the audit log.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

STATUSES = ("waiting", "active", "closed")
LEVELS = ("none", "low", "medium", "high", "emergency")
OUTCOMES = ("referred", "information_given", "no_contact", "other")
AUTHORS = ("person", "caseworker", "assistant")
AUDIT_ACTIONS = ("claimed", "opened", "replied", "transferred", "closed", "released")


def upgrade() -> None:
    op.create_table(
        "cases",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("conversation_id", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("language", sa.String(2), nullable=False),
        sa.Column("triage_level", sa.String(9), nullable=False),
        sa.Column("urgency", sa.Integer, nullable=False),
        sa.Column("needs", sa.String(400), nullable=False),
        sa.Column("area", sa.String(40), nullable=True),
        sa.Column("status", sa.String(7), nullable=False),
        sa.Column("caseworker", sa.String(64), nullable=True),
        sa.Column("outcome", sa.String(17), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(f"status IN {STATUSES}", name="status"),
        sa.CheckConstraint(f"triage_level IN {LEVELS}", name="triage_level"),
        sa.CheckConstraint(f"outcome IS NULL OR outcome IN {OUTCOMES}", name="outcome"),
    )
    op.create_index("ix_cases_conversation_id", "cases", ["conversation_id"])
    op.create_index("ix_cases_status", "cases", ["status"])
    op.create_table(
        "case_keys",
        sa.Column("case_id", sa.Integer, sa.ForeignKey("cases.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("wrapped_key", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "case_messages",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("case_id", sa.Integer, sa.ForeignKey("cases.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("author", sa.String(10), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("delivered", sa.Boolean, nullable=False),
        sa.CheckConstraint(f"author IN {AUTHORS}", name="author"),
    )
    op.create_index("ix_case_messages_case_id", "case_messages", ["case_id"])
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("action", sa.String(11), nullable=False),
        sa.Column("case_id", sa.Integer, nullable=False),
        sa.Column("detail", sa.String(64), nullable=True),
        sa.CheckConstraint(f"action IN {AUDIT_ACTIONS}", name="action"),
    )
    op.create_index("ix_audit_log_case_id", "audit_log", ["case_id"])


def downgrade() -> None:
    op.drop_table("audit_log")
    op.drop_table("case_messages")
    op.drop_table("case_keys")
    op.drop_table("cases")
