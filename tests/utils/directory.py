"""Test data builders for the services directory."""

from __future__ import annotations

from pathlib import Path

from bot.services.hxl_io import import_file
from bot.services.places import import_places, read_places
from bot.settings import PROJECT_ROOT
from bot.storage import make_engine, session_factory, upgrade

SERVICES = PROJECT_ROOT / "data" / "services"
PLACES = PROJECT_ROOT / "data" / "gazetteer" / "places.csv"


def sample_database(folder: Path, places: bool = False) -> str:
    """A migrated SQLite database in ``folder`` holding the sample directory; returns its URL."""
    return load_sample(f"sqlite:///{folder}/directory.db", places)


def load_sample(url: str, places: bool = True) -> str:
    """Migrates the database at ``url`` and imports the sample directory; returns ``url``."""
    engine = make_engine(url)
    upgrade(engine)
    with session_factory(engine)() as session:
        for path in sorted(SERVICES.glob("*.csv")):
            import_file(session, path)
        if places:
            import_places(session, read_places(PLACES))
    engine.dispose()
    return url
