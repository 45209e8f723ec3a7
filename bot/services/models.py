"""Tables of the services directory (created by migration 0001, never by ``create_all``).

- ``service_categories``: the closed list of needs a service can meet (``code``), seeded by
  the migration and extended from ``data/services/categories.yml``.
- ``organisations``: who runs services; ``code`` is the stable key used by imports.
- ``services``: one service at one place. ``code`` is its stable key (HXL ``#service+code``).
  Coordinates are required; ``admin1``/``admin2`` names and P-codes and the ``place_name``
  (camp, town) are as the source gives them. ``serves_*``, ``age_min``/``age_max``: who is
  served. ``walk_in``/``by_phone``/``hotline``: how to reach it. ``hours``: opening hours in
  the directory's own notation (``mon-fri 08:00-16:00; sat 09:00-12:00``; empty = unknown).
  ``last_verified``: when someone last checked the entry.
- ``service_category_links`` and ``service_languages``: the categories a service meets and the
  languages spoken there.
- ``directory_version``: one row whose ``version`` every import that changes something bumps,
  so that running processes know when to reload their in-memory copy.
- ``places`` and ``place_names``: the gazetteer (camps, towns, districts) with names in several
  languages and spellings; ``key`` is the name folded for matching.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import relationship

from bot.storage import Base


class ServiceCategory(Base):
    """A kind of need a service meets (shelter, legal_aid...)."""

    __tablename__ = "service_categories"
    code = sa.Column(sa.String(40), primary_key=True)


class Organisation(Base):
    """An organisation that runs services."""

    __tablename__ = "organisations"
    id = sa.Column(sa.Integer, primary_key=True)
    code = sa.Column(sa.String(80), nullable=False, unique=True)
    name = sa.Column(sa.String(200), nullable=False)


service_category_links = sa.Table(
    "service_category_links",
    Base.metadata,
    sa.Column("service_id", sa.ForeignKey("services.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("category", sa.ForeignKey("service_categories.code"), primary_key=True),
)


class ServiceLanguage(Base):
    """A language spoken at a service."""

    __tablename__ = "service_languages"
    service_id = sa.Column(sa.ForeignKey("services.id", ondelete="CASCADE"), primary_key=True)
    language = sa.Column(sa.String(8), primary_key=True)


class Service(Base):
    """One service at one place."""

    __tablename__ = "services"
    __table_args__ = (sa.Index("ix_services_lat_lon", "lat", "lon"),)

    id = sa.Column(sa.Integer, primary_key=True)
    code = sa.Column(sa.String(80), nullable=False, unique=True)
    organisation_id = sa.Column(sa.ForeignKey("organisations.id"), nullable=False, index=True)
    name = sa.Column(sa.String(200), nullable=False)
    description = sa.Column(sa.String(500), nullable=False, default="")
    lat = sa.Column(sa.Float, nullable=False)
    lon = sa.Column(sa.Float, nullable=False)
    country = sa.Column(sa.String(2), nullable=False)
    admin1_name = sa.Column(sa.String(120), nullable=False, default="")
    admin1_pcode = sa.Column(sa.String(32), nullable=False, default="")
    admin2_name = sa.Column(sa.String(120), nullable=False, default="")
    admin2_pcode = sa.Column(sa.String(32), nullable=False, default="", index=True)
    place_name = sa.Column(sa.String(120), nullable=False, default="")
    phone = sa.Column(sa.String(40), nullable=False, default="")
    walk_in = sa.Column(sa.Boolean, nullable=False, default=False)
    by_phone = sa.Column(sa.Boolean, nullable=False, default=False)
    hotline = sa.Column(sa.Boolean, nullable=False, default=False)
    serves_women = sa.Column(sa.Boolean, nullable=False, default=True)
    serves_men = sa.Column(sa.Boolean, nullable=False, default=True)
    serves_children = sa.Column(sa.Boolean, nullable=False, default=True)
    age_min = sa.Column(sa.Integer)
    age_max = sa.Column(sa.Integer)
    hours = sa.Column(sa.String(200), nullable=False, default="")
    last_verified = sa.Column(sa.Date)

    organisation = relationship(Organisation, lazy="joined")
    categories = relationship(ServiceCategory, secondary=service_category_links, lazy="selectin",
                              order_by=ServiceCategory.code)
    languages = relationship(ServiceLanguage, lazy="selectin", cascade="all, delete-orphan",
                             order_by=ServiceLanguage.language)


class Place(Base):
    """A camp, town, district or region people may name."""

    __tablename__ = "places"
    id = sa.Column(sa.Integer, primary_key=True)
    code = sa.Column(sa.String(80), nullable=False, unique=True)
    kind = sa.Column(sa.String(20), nullable=False)
    country = sa.Column(sa.String(2), nullable=False)
    admin1_pcode = sa.Column(sa.String(32), nullable=False, default="")
    admin2_pcode = sa.Column(sa.String(32), nullable=False, default="")
    lat = sa.Column(sa.Float, nullable=False)
    lon = sa.Column(sa.Float, nullable=False)

    names = relationship("PlaceName", lazy="selectin", cascade="all, delete-orphan")


class PlaceName(Base):
    """One name of a place, in one language or spelling."""

    __tablename__ = "place_names"
    id = sa.Column(sa.Integer, primary_key=True)
    place_id = sa.Column(sa.ForeignKey("places.id", ondelete="CASCADE"), nullable=False, index=True)
    language = sa.Column(sa.String(8), nullable=False, default="")
    name = sa.Column(sa.String(200), nullable=False)
    key = sa.Column(sa.String(200), nullable=False, index=True)


class DirectoryVersion(Base):
    """One row: the directory's version, bumped by imports that change something."""

    __tablename__ = "directory_version"
    id = sa.Column(sa.Integer, primary_key=True)
    version = sa.Column(sa.Integer, nullable=False)


def bump_directory_version(session) -> None:
    """Adds one to the directory's version, in the caller's transaction."""
    session.execute(sa.update(DirectoryVersion).where(DirectoryVersion.id == 1)
                    .values(version=DirectoryVersion.version + 1))


def directory_version(session) -> int:
    return session.execute(sa.select(DirectoryVersion.version).where(DirectoryVersion.id == 1)).scalar_one()
