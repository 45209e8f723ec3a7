"""The project's own tables: SQLAlchemy 1.4 written in the 2.0 style, schema by migration.

One database for everything (``HELPLINE_DATABASE_URL``: an SQLite file by default, PostgreSQL
by URL), shared with Rasa's tracker store, whose ``events`` table Rasa manages itself. Our
tables are created and changed only by the Alembic migrations in ``bot/migrations/``
(``helpline db upgrade``), never by ``create_all``. Nothing here connects at import time.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Optional

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, declarative_base, sessionmaker

MIGRATIONS = Path(__file__).resolve().parent / "migrations"

# Stable constraint names, so that migrations can refer to them on every database.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
Base = declarative_base(metadata=sa.MetaData(naming_convention=NAMING))


def utcnow() -> dt.datetime:
    """The time now, in UTC (every stored time is UTC)."""
    return dt.datetime.now(dt.timezone.utc)


def aware_utc(moment: Optional[dt.datetime]) -> Optional[dt.datetime]:
    """A stored time with its zone: SQLite gives naive datetimes back, all of them UTC."""
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=dt.timezone.utc)
    return moment


def load_models() -> None:
    """Registers every table of the project on ``Base.metadata`` (migrations, schema tests)."""
    import importlib

    for module in ("bot.services.models", "bot.cases.models", "console.models",
                   "bot.campaigns.models", "bot.delayed"):
        importlib.import_module(module)


class SchemaError(RuntimeError):
    """The database schema is not at the version this code needs."""


def private_sqlite_file(path: str) -> None:
    """Creates the SQLite file (and its folder) readable by its owner only."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, mode=0o700, exist_ok=True)
    if not os.path.exists(path):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))


def make_engine(url: str) -> Engine:
    """An engine for ``url`` that survives a database restart (pre-ping); an SQLite file is
    created private (0600) and gets foreign keys."""
    if url.startswith("sqlite:///") and not url.endswith(":memory:"):
        private_sqlite_file(sa.engine.make_url(url).database)
    # A server restarted under a running process leaves its pooled connections dead: checking
    # each one before use replaces them, so the first request after a restart works.
    engine = sa.create_engine(url, future=True, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":
        @sa.event.listens_for(engine, "connect")
        def _foreign_keys(connection, _record) -> None:  # SQLite leaves them off by default
            cursor = connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA secure_delete=ON")  # a deleted case key is overwritten
            cursor.close()
    return engine


def session_factory(engine: Engine) -> "sessionmaker[Session]":
    return sessionmaker(engine, future=True, expire_on_commit=False)


def _alembic_config(engine: Engine):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection_engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Brings the schema to ``revision`` (default: the newest migration)."""
    from alembic import command

    command.upgrade(_alembic_config(engine), revision)


def current_revision(engine: Engine) -> Optional[str]:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config(None)).get_current_head()


def require_current(engine: Engine) -> None:
    """Raises SchemaError unless the database is at the newest migration."""
    current, head = current_revision(engine), head_revision()
    if current != head:
        raise SchemaError(
            f"the database schema is at {current or 'nothing'}, this code needs {head}: "
            f"run `helpline db upgrade`"
        )
