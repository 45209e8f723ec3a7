"""Alembic migrations of the project's own tables (``helpline db upgrade``)."""
