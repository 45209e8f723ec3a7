"""Alembic environment: runs migrations on the engine ``bot.storage.upgrade`` hands over."""

from alembic import context

from bot.storage import Base, load_models

load_models()  # registers every table on Base.metadata

engine = context.config.attributes.get("connection_engine")
if engine is None:
    raise RuntimeError("run migrations through `helpline db upgrade` (bot.storage.upgrade)")

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        # Rasa's tracker store keeps its own `events` table in the same database.
        include_name=lambda name, kind, parent: not (kind == "table" and name == "events"),
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
