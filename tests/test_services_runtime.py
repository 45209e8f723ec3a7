"""The per-process directory: loaded once, reloaded only after an import changed something."""

from __future__ import annotations

from bot.services.hxl_io import import_file
from bot.services.places import import_places, read_places
from bot.services.runtime import DirectoryCache, current
from bot.settings import PROJECT_ROOT
from bot.storage import make_engine, session_factory, upgrade

SERVICES = PROJECT_ROOT / "data" / "services"


def test_an_unmigrated_database_gives_an_empty_directory_then_recovers(tmp_path):
    url = f"sqlite:///{tmp_path}/d.db"
    now = [0.0]
    cache = DirectoryCache(url, check_seconds=60, clock=lambda: now[0])
    empty = cache.get()
    assert empty.version is None and len(empty.directory) == 0 and len(empty.gazetteer) == 0

    engine = make_engine(url)
    upgrade(engine)
    with session_factory(engine)() as session:
        import_file(session, SERVICES / "ua.csv")
    assert cache.get() is empty  # not checked again before a minute has passed
    now[0] = 61
    loaded = cache.get()
    assert loaded.version == 1 and len(loaded.directory) == 10
    engine.dispose()


def test_it_reloads_only_when_an_import_changed_something(tmp_path):
    url = f"sqlite:///{tmp_path}/d.db"
    engine = make_engine(url)
    upgrade(engine)
    sessions = session_factory(engine)
    with sessions() as session:
        import_file(session, SERVICES / "ly-west.csv")
    now = [0.0]
    cache = DirectoryCache(url, check_seconds=10, clock=lambda: now[0])
    first = cache.get()
    with sessions() as session:
        assert import_file(session, SERVICES / "ly-west.csv").unchanged == 9  # no change
    now[0] = 11
    assert cache.get() is first
    with sessions() as session:
        import_places(session, read_places(PROJECT_ROOT / "data" / "gazetteer" / "places.csv"))
    now[0] = 22
    second = cache.get()
    assert second is not first and second.version == first.version + 1
    assert [m.place.code for m in second.gazetteer.match("Київ")] == ["ua-kyiv"]
    engine.dispose()


def test_one_cache_per_database_per_process(tmp_path):
    url = f"sqlite:///{tmp_path}/d.db"
    upgrade(make_engine(url))
    assert current(url) is current(url)


def test_a_gazetteer_only_cache_loads_the_places_but_not_the_services(tmp_path):
    from tests.utils.directory import sample_database

    url = sample_database(tmp_path, places=True)
    places_only = DirectoryCache(url, services=False).get()
    full = DirectoryCache(url).get()
    assert len(places_only.directory) == 0 and len(full.directory) == 31
    assert set(places_only.gazetteer.places) == set(full.gazetteer.places)
    assert places_only.version == full.version
