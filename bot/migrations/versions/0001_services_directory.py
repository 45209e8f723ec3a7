"""The services directory: categories, organisations, services, places.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BASE_CATEGORIES = (
    "shelter", "medical", "mental_health", "legal_aid", "documentation", "child_protection",
    "gbv_support", "food_and_basic_needs", "livelihoods", "family_tracing", "anti_trafficking",
    "emergency",
)


def upgrade() -> None:
    categories = op.create_table(
        "service_categories",
        sa.Column("code", sa.String(40), primary_key=True),
    )
    op.bulk_insert(categories, [{"code": code} for code in BASE_CATEGORIES])
    op.create_table(
        "organisations",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("code", sa.String(80), nullable=False, unique=True),
        sa.Column("name", sa.String(200), nullable=False),
    )
    op.create_table(
        "services",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("code", sa.String(80), nullable=False, unique=True),
        sa.Column("organisation_id", sa.Integer, sa.ForeignKey("organisations.id"), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.String(500), nullable=False),
        sa.Column("lat", sa.Float, nullable=False),
        sa.Column("lon", sa.Float, nullable=False),
        sa.Column("country", sa.String(2), nullable=False),
        sa.Column("admin1_name", sa.String(120), nullable=False),
        sa.Column("admin1_pcode", sa.String(32), nullable=False),
        sa.Column("admin2_name", sa.String(120), nullable=False),
        sa.Column("admin2_pcode", sa.String(32), nullable=False),
        sa.Column("place_name", sa.String(120), nullable=False),
        sa.Column("phone", sa.String(40), nullable=False),
        sa.Column("walk_in", sa.Boolean, nullable=False),
        sa.Column("by_phone", sa.Boolean, nullable=False),
        sa.Column("hotline", sa.Boolean, nullable=False),
        sa.Column("serves_women", sa.Boolean, nullable=False),
        sa.Column("serves_men", sa.Boolean, nullable=False),
        sa.Column("serves_children", sa.Boolean, nullable=False),
        sa.Column("age_min", sa.Integer),
        sa.Column("age_max", sa.Integer),
        sa.Column("hours", sa.String(200), nullable=False),
        sa.Column("last_verified", sa.Date),
    )
    op.create_index("ix_services_organisation_id", "services", ["organisation_id"])
    op.create_index("ix_services_admin2_pcode", "services", ["admin2_pcode"])
    op.create_index("ix_services_lat_lon", "services", ["lat", "lon"])
    op.create_table(
        "service_category_links",
        sa.Column("service_id", sa.Integer, sa.ForeignKey("services.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("category", sa.String(40), sa.ForeignKey("service_categories.code"), primary_key=True),
    )
    op.create_table(
        "service_languages",
        sa.Column("service_id", sa.Integer, sa.ForeignKey("services.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("language", sa.String(8), primary_key=True),
    )
    op.create_table(
        "places",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("code", sa.String(80), nullable=False, unique=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("country", sa.String(2), nullable=False),
        sa.Column("admin1_pcode", sa.String(32), nullable=False),
        sa.Column("admin2_pcode", sa.String(32), nullable=False),
        sa.Column("lat", sa.Float, nullable=False),
        sa.Column("lon", sa.Float, nullable=False),
    )
    op.create_table(
        "place_names",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("place_id", sa.Integer, sa.ForeignKey("places.id", ondelete="CASCADE"), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
    )
    op.create_index("ix_place_names_place_id", "place_names", ["place_id"])
    op.create_index("ix_place_names_key", "place_names", ["key"])


def downgrade() -> None:
    for table in ("place_names", "places", "service_languages", "service_category_links",
                  "services", "organisations", "service_categories"):
        op.drop_table(table)
