"""Nearest suitable services (checked against brute force) and the place gazetteer."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from bot.services.geo import GridIndex, brute_force_nearest, haversine_km
from bot.services.lookup import Directory, Need
from bot.services.places import Gazetteer, Place, read_places
from bot.storage import make_engine, session_factory
from tests.utils.directory import PLACES, SERVICES, sample_database

MAIDUGURI = (11.8333, 13.15)


def test_haversine_matches_known_distances():
    assert haversine_km(*MAIDUGURI, *MAIDUGURI) == 0
    assert haversine_km(51.5074, -0.1278, 48.8566, 2.3522) == pytest.approx(343.5, abs=1.0)  # London-Paris
    assert haversine_km(0, 179.9, 0, -179.9) == pytest.approx(22.2, abs=0.1)  # across the antimeridian


@pytest.mark.parametrize("layout", ["uniform", "clustered", "polar", "antimeridian"])
def test_the_grid_index_agrees_with_brute_force(layout):
    rng = random.Random(layout)
    if layout == "uniform":
        points = [(rng.uniform(-80, 80), rng.uniform(-180, 180), i) for i in range(5000)]
    elif layout == "clustered":
        centres = [(11.8, 13.1), (32.9, 13.2), (50.4, 30.5)]
        points = [(c[0] + rng.gauss(0, 0.8), c[1] + rng.gauss(0, 0.8), i)
                  for i, c in enumerate(rng.choice(centres) for _ in range(5000))]
    elif layout == "polar":
        points = [(rng.uniform(80, 90), rng.uniform(-180, 180), i) for i in range(2000)]
    else:
        points = [(rng.uniform(-10, 10), rng.choice([-1, 1]) * rng.uniform(175, 180), i) for i in range(2000)]
    index = GridIndex(0.5)
    for point in points:
        index.add(*point)
    odd = lambda payload: payload % 2 == 1  # noqa: E731
    for _ in range(150):
        lat = rng.uniform(-85, 89.9) if layout != "antimeridian" else rng.uniform(-12, 12)
        lon = rng.uniform(-180, 180) if layout != "antimeridian" else rng.choice([-179.9, 179.9, 178.0])
        n = rng.choice([1, 3, 10])
        accept = odd if rng.random() < 0.5 else None
        got = [p for _, p in index.nearest(lat, lon, n, accept)]
        want = [p for _, p in brute_force_nearest(points, lat, lon, n, accept)]
        assert got == want, (lat, lon, n)


def test_asking_for_more_than_there_is_returns_everything_sorted():
    index = GridIndex(1.0)
    for i, (lat, lon) in enumerate([(0, 0), (0, 1), (0, 3)]):
        index.add(lat, lon, i)
    assert [p for _, p in index.nearest(0, 0.1, 10)] == [0, 1, 2]
    assert index.nearest(0, 0, 0) == [] and GridIndex().nearest(0, 0, 3) == []
    with pytest.raises(ValueError):
        GridIndex(0)


@pytest.fixture(scope="module")
def directory(tmp_path_factory):
    engine = make_engine(sample_database(tmp_path_factory.mktemp("dir")))
    with session_factory(engine)() as session:
        loaded = Directory.load(session, default_timezone="Africa/Lagos")
    engine.dispose()
    return loaded


def test_the_nearest_suitable_services_come_first(directory):
    found = directory.nearest(*MAIDUGURI, Need(category="legal_aid"))
    assert [f.card.code for f in found][:2] == ["NG-BOR-009", "NG-BOR-002"]
    assert all("legal_aid" in f.card.categories for f in found)
    assert [f.km for f in found] == sorted(f.km for f in found)


def test_who_is_served_filters(directory):
    child = directory.nearest(*MAIDUGURI, Need(group="children", age=12), limit=20)
    assert child and all(f.card.serves_children for f in child)
    assert "NG-BOR-002" not in {f.card.code for f in child}  # 18 and over only
    men = directory.nearest(*MAIDUGURI, Need(group="men", category="shelter"), limit=5)
    assert "NG-BOR-001" not in {f.card.code for f in men}  # a women's shelter


def test_language_and_open_now(directory):
    arabic = directory.nearest(32.89, 13.19, Need(language="ar"), limit=20)
    assert arabic and all("ar" in f.card.languages for f in arabic)
    sunday_night = dt.datetime(2026, 11, 29, 23, 0, tzinfo=dt.timezone.utc)
    open_now = directory.nearest(32.89, 13.19, Need(open_at=sunday_night), limit=20)
    assert open_now and all(f.card.is_open(sunday_night) is not False for f in open_now)
    assert {f.card.code for f in open_now} >= {"LY-NAT-001", "LY-ZAW-001"}  # 24/7
    assert "LY-TRI-001" not in {f.card.code for f in open_now}


def test_more_continues_where_the_first_page_ended(directory):
    six = directory.nearest(50.45, 30.52, limit=6)
    assert directory.nearest(50.45, 30.52, limit=3) + directory.nearest(50.45, 30.52, limit=3, offset=3) == six


def test_nothing_near_is_an_empty_answer_and_bad_points_are_refused(directory):
    assert directory.nearest(-45.0, -140.0) == []  # the South Pacific
    with pytest.raises(ValueError, match="not a place on Earth"):
        directory.nearest(91, 0)
    with pytest.raises(ValueError):
        directory.nearest(0, 0, limit=0)


@pytest.fixture(scope="module")
def gazetteer():
    gazetteer = Gazetteer()
    for place in read_places(PLACES):
        gazetteer.add(place)
    return gazetteer


@pytest.mark.parametrize(
    "typed, code",
    [
        ("Maiduguri", "ng-maiduguri"), ("maidugury", "ng-maiduguri"), ("I am near Maidugiri", "ng-maiduguri"),
        ("je suis à Zaouïa", "ly-zawiya"), ("Oujhorod", "ua-uzhhorod"), ("à tripoly", "ly-tripoli"),
        ("أنا في طرابلس", "ly-tripoli"), ("مصراته", "ly-misrata"), ("قرب بنغازى", "ly-benghazi"),
        ("estoy en Bengasi", "ly-benghazi"), ("Járkov", "ua-kharkiv"), ("leopolis", "ua-lviv"),
        ("Київ", "ua-kyiv"), ("Одесса", "ua-odesa"), ("Kiev", "ua-kyiv"), ("misurata", "ly-misrata"),
        ("Chernovtsy", "ua-chernivtsi"), ("gwoza camp", "ng-gwoza"),
    ],
)
def test_places_are_found_across_languages_scripts_and_typos(gazetteer, typed, code):
    matches = gazetteer.match(typed)
    assert [m.place.code for m in matches][:1] == [code], [(m.place.code, m.score) for m in matches]


@pytest.mark.parametrize("typed", ["help me please", "I need a doctor", "الشرطة", "Paris", "ok"])
def test_words_that_are_no_place_match_nothing(gazetteer, typed):
    assert gazetteer.match(typed) == []


def test_two_equally_close_places_are_both_returned_to_ask_back():
    gazetteer = Gazetteer()
    gazetteer.add(Place("a", "town", "NG", 10, 13, (("", "Banki"),)))
    gazetteer.add(Place("b", "town", "NG", 11, 13, (("", "Banku"),)))
    gazetteer.add(Place("c", "town", "NG", 12, 13, (("", "Monguno"),)))
    assert {m.place.code for m in gazetteer.match("Bank")} == {"a", "b"}
    assert [m.place.code for m in gazetteer.match("Banki")] == ["a"]


def test_a_place_given_twice_keeps_all_its_names():
    gazetteer = Gazetteer()
    gazetteer.add(Place("x", "town", "LY", 32.9, 13.2, (("", "Tripoli"),)))
    gazetteer.add(Place("x", "town", "LY", 32.9, 13.2, (("ar", "طرابلس"),)))
    assert len(gazetteer) == 1 and gazetteer.places["x"].name_in("ar") == "طرابلس"


def test_a_broken_places_file_names_the_line(tmp_path):
    path = tmp_path / "places.csv"
    path.write_text("#loc+name,#loc+code,#country+code,#geo+lat,#geo+lon\nA,a,NG,north,13\n", encoding="utf-8")
    with pytest.raises(ValueError, match="line 2: bad coordinates"):
        read_places(path)
    path.write_text("#loc+name,#country+code\nA,NG\n", encoding="utf-8")
    with pytest.raises(ValueError, match="missing column"):
        read_places(path)


def test_the_gazetteer_loads_from_the_database_with_the_directory_s_own_names(tmp_path, monkeypatch, capsys):
    from bot import cli
    from bot.services.places import load_gazetteer

    url = f"sqlite:///{tmp_path}/g.db"
    monkeypatch.setenv("HELPLINE_DATABASE_URL", url)
    assert cli.main(["db", "upgrade"]) == 0
    assert cli.main(["places", "import", str(PLACES)]) == 0
    assert "29 places: 29 created, 0 updated" in capsys.readouterr().out
    assert cli.main(["places", "import", str(PLACES)]) == 0
    assert "0 created, 0 updated" in capsys.readouterr().out
    assert cli.main(["services", "import", "--quiet",
                     *map(str, sorted(SERVICES.glob("*.csv")))]) == 0
    engine = make_engine(url)
    with session_factory(engine)() as session:
        gazetteer = load_gazetteer(session)
    engine.dispose()
    assert [m.place.code for m in gazetteer.match("طرابلس")] == ["ly-tripoli"]
    # "Mubi North" is only in the directory (an admin 2 name): it is found too.
    assert [m.place.kind for m in gazetteer.match("Mubi North")] == ["district"]
    assert cli.main(["places", "import", str(tmp_path / "nope.csv")]) == 2


def test_loading_reads_the_same_cards_as_the_orm(tmp_path):
    from bot.services.lookup import card_of
    from bot.services.models import Service
    import sqlalchemy as sa

    engine = make_engine(sample_database(tmp_path))
    with session_factory(engine)() as session:
        loaded = {c.code: c for c in Directory.load(session).cards}
        by_orm = {s.code: card_of(s) for s in session.execute(sa.select(Service)).scalars()}
    engine.dispose()
    assert loaded == by_orm and len(loaded) == 31


def test_places_named_exactly_by_any_of_their_names(gazetteer):
    assert [p.code for p in gazetteer.named("TRIPOLI", "LY")] == ["ly-tripoli"]
    assert [p.code for p in gazetteer.named("طرابلس")] == ["ly-tripoli"]
    assert gazetteer.named("Tripoli", "NG") == [] and gazetteer.named("") == []
    assert gazetteer.named("Tripol") == []  # exact names only: no fuzzy guess
