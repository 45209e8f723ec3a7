"""Aggregate figures for NGOs: suppression (primary and secondary, checked on hand-made and
random tables), counting cases, subscribers and campaign messages on SQLite and PostgreSQL
(months, admin-1 areas, a case under each need, the period), and ``helpline figures``: the
table, HXL-tagged CSV read back with libhxl, JSON, and a clear error for each bad input."""

from __future__ import annotations

import datetime as dt
import io
import json
import random

import hxl
import hxl.input
import pytest
import sqlalchemy as sa

from bot import cli
from bot.campaigns.models import Campaign, OutboxMessage, Subscriber
from bot.cases.models import Case
from bot.deployment import DeploymentError, parse_deployment
from bot.figures import (
    SOURCES, TOTAL, FiguresError, Table, area_of, count, figures, parse_dimensions, suppress,
    write_csv,
)
from bot.services.places import Gazetteer, import_places, read_places
from bot.settings import PROJECT_ROOT
from bot.storage import make_engine, session_factory, upgrade

UTC = dt.timezone.utc
SAMPLE_DEPLOYMENT = PROJECT_ROOT / "deploy" / "sample.yml"
PLACES_FILE = PROJECT_ROOT / "data" / "gazetteer" / "places.csv"


# --- suppression ------------------------------------------------------------------------


def one_way(counts: dict[str, int]) -> Table:
    source = SOURCES["cases"]
    return Table(source, ("level",), list(counts), [TOTAL],
                 {(r, TOTAL): n for r, n in counts.items()}, dict(counts), {TOTAL: sum(counts.values())},
                 sum(counts.values()))


def two_way(grid: dict[str, dict[str, int]]) -> Table:
    rows = list(grid)
    cols = list(next(iter(grid.values())))
    cells = {(r, c): grid[r][c] for r in rows for c in cols}
    return Table(SOURCES["cases"], ("area", "level"), rows, cols, cells,
                 {r: sum(grid[r].values()) for r in rows},
                 {c: sum(grid[r][c] for r in rows) for c in cols}, sum(cells.values()))


def assert_safe(table: Table) -> None:
    """No count from 1 to k-1 is shown, and no line (a row or column with its total, the totals
    with the grand total) has exactly one hidden count, which subtraction would give away."""
    k = table.min_cell
    keys = [("cell", r, c) for r in table.rows for c in table.cols] + [("all",)]
    if table.two_way:
        keys += [("row", r) for r in table.rows] + [("col", c) for c in table.cols]
    for key in keys:
        value = table.shown(key)
        assert value is None or value == 0 or value >= k, (key, value)
    if table.two_way:
        lines = [[("cell", r, c) for c in table.cols] + [("row", r)] for r in table.rows]
        lines += [[("cell", r, c) for r in table.rows] + [("col", c)] for c in table.cols]
        lines += [[("row", r) for r in table.rows] + [("all",)],
                  [("col", c) for c in table.cols] + [("all",)]]
    else:
        lines = [[("cell", r, TOTAL) for r in table.rows] + [("all",)]]
    for line in lines:
        assert sum(key in table.hidden for key in line) != 1, line


def test_one_small_count_hides_the_next_smallest_too():
    table = suppress(one_way({"none": 0, "low": 3, "medium": 12, "high": 7, "emergency": 20}), 5)
    assert table.text(("cell", "low", TOTAL)) == "<5"
    assert table.text(("cell", "high", TOTAL)) == "x"  # else 42 - 12 - 20 - 0 - 7 gives 3
    assert table.text(("cell", "medium", TOTAL)) == "12"
    assert table.text(("cell", "none", TOTAL)) == "0"  # a zero is shown
    assert table.text(("all",)) == "42"
    assert_safe(table)


def test_two_small_counts_need_nothing_more():
    table = suppress(one_way({"low": 3, "medium": 12, "high": 4}), 5)
    assert table.hidden == {("cell", "low", TOTAL), ("cell", "high", TOTAL)}
    assert table.text(("all",)) == "19"


def test_nothing_hidden_when_every_count_is_large_enough_and_a_small_total_is_hidden():
    assert suppress(one_way({"low": 5, "medium": 12}), 5).hidden == set()
    table = suppress(one_way({"low": 2, "medium": 0}), 5)
    assert table.text(("all",)) == "<5" and table.text(("cell", "low", TOTAL)) == "<5"
    assert_safe(table)


def test_a_two_way_table_hides_across_rows_and_columns():
    grid = {"NG008": {"low": 10, "medium": 2, "high": 8},
            "LY-TR": {"low": 9, "medium": 11, "high": 6},
            "UA-LV": {"low": 7, "medium": 12, "high": 15}}
    table = suppress(two_way(grid), 5)
    assert ("cell", "NG008", "medium") in table.hidden
    # its row and its column each lose one more count, and so on until every line is safe
    assert sum(("cell", "NG008", c) in table.hidden for c in table.cols) >= 2
    assert sum(("cell", r, "medium") in table.hidden for r in table.rows) >= 2
    assert table.text(("all",)) == "80"
    assert_safe(table)


@pytest.mark.parametrize("seed", range(200))
def test_random_tables_are_always_safe(seed):
    rng = random.Random(seed)
    rows = [f"r{i}" for i in range(rng.randint(1, 6))]
    cols = [f"c{i}" for i in range(rng.randint(1, 6))]
    grid = {r: {c: rng.choice([0, 0, 1, 2, 3, 4, 5, 6, 9, 20, 50]) for c in cols} for r in rows}
    k = rng.choice([3, 5, 10])
    table = suppress(two_way(grid), k)
    assert_safe(table)
    assert table.small == {key for key in table.hidden if 0 < table.value(key) < k}
    for key in table.hidden - table.small:  # hidden to protect: never written as "<k"
        assert table.text(key) == "x" and table.value(key) >= k
    flat = suppress(one_way({r: grid[r][cols[0]] for r in rows}), k)
    assert_safe(flat)


def test_a_threshold_below_three_is_refused():
    with pytest.raises(FiguresError, match="at least 3"):
        suppress(one_way({"low": 1}), 2)


# --- counting -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def places() -> dict:
    gazetteer = Gazetteer()
    for place in read_places(PLACES_FILE):
        gazetteer.add(place)
    return gazetteer.places


def test_areas_roll_up_to_admin_one(places):
    assert area_of("ng-maiduguri", places) == "NG008"
    assert area_of("ng-camp-dalori", places) == "NG008"
    assert area_of("NG008", places) == "NG008"
    assert area_of("NG", places) == "NG"  # a country code stays a country
    assert area_of(None, places) == "unknown"
    assert area_of("somewhere-gone", places) == "other"


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path):
    url = (f"sqlite:///{tmp_path}/figures.db" if request.param == "sqlite"
           else request.getfixturevalue("postgres_url"))
    engine = make_engine(url)
    upgrade(engine)
    yield engine
    engine.dispose()


def at(day: str, hour: int = 12) -> dt.datetime:
    return dt.datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC)


def add_cases(session, rows: list[tuple]) -> None:
    """rows: (created day, channel, language, level, needs, area, status, outcome)."""
    for i, (day, channel, language, level, needs, area, status, outcome) in enumerate(rows):
        session.add(Case(conversation_id=f"conversation-secret-{i:04d}", channel=channel,
                         language=language, triage_level=level, urgency=1,
                         needs=",".join(sorted(needs)), area=area, status=status,
                         outcome=outcome, created_at=at(day),
                         closed_at=at(day, 18) if status == "closed" else None))


CASES = (
    [("2026-09-30", "sms", "fr", "high", ["shelter", "legal_aid"], "ng-maiduguri", "closed",
      "referred")] * 6
    + [("2026-10-01", "telegram", "en", "medium", ["shelter"], "ng-camp-dalori", "closed",
        "information_given")] * 7
    + [("2026-10-31", "webchat", "ar", "emergency", [], "ly-tripoli", "active", None)] * 2
    + [("2026-11-01", "sms", "es", "low", ["medical"], None, "waiting", None)] * 9
)


def test_cases_by_month_area_need_and_period(database, places):
    with session_factory(database).begin() as session:
        add_cases(session, CASES)
    with session_factory(database)() as session:
        by_month = count(session, SOURCES["cases"], ("month",), places=places)
        assert by_month.rows == ["2026-09", "2026-10", "2026-11"]
        assert [by_month.cells[(m, TOTAL)] for m in by_month.rows] == [6, 9, 9]
        assert by_month.total == 24

        by_area = count(session, SOURCES["cases"], ("area",), places=places)
        libya = places["ly-tripoli"].admin1_pcode or "LY"
        assert by_area.row_totals == {"NG008": 13, libya: 2, "unknown": 9}

        # a case counts under each need; the total counts cases
        by_need = count(session, SOURCES["cases"], ("need",), places=places)
        assert by_need.row_totals["shelter"] == 13 and by_need.row_totals["legal_aid"] == 6
        assert by_need.row_totals["none"] == 2 and by_need.row_totals["medical"] == 9
        assert by_need.total == 24
        assert by_need.rows[:3] == ["shelter", "medical", "mental_health"]  # the closed set

        # October only: both ends included
        october = count(session, SOURCES["cases"], ("level", "outcome"), places=places,
                        since=dt.date(2026, 10, 1), until=dt.date(2026, 10, 31))
        assert october.total == 9
        assert october.cells[("medium", "information_given")] == 7
        assert october.cells[("emergency", "open")] == 2
        assert october.rows == ["none", "low", "medium", "high", "emergency"]

        table = figures(session, "cases", "channel,level", min_cell=5, places=places)
        assert table.text(("cell", "webchat", "emergency")) == "<5"
        assert table.text(("row", "webchat")) == "<5"
        assert_safe(table)


def test_cases_whose_replies_were_blocked_are_counted(database, places):
    """A reply refused because the number opted out (Twilio 21610) marks the open case
    through the cases' own method; the figures count cases by it (issue 16 §1)."""
    from cryptography.fernet import Fernet, MultiFernet

    from bot.cases.queue import Cases

    with session_factory(database).begin() as session:
        add_cases(session, CASES)
    cases = Cases(session_factory(database), MultiFernet([Fernet(Fernet.generate_key())]))
    opened = [cases.open(f"c{i:031d}", "sms", "en", "medium") for i in range(7)]
    for i, case in enumerate(opened[:6]):
        assert cases.block_replies(f"c{i:031d}", "blocked") == case.id
    assert cases.block_replies("c" + "9" * 31, "blocked") is None  # no open case: nothing
    with session_factory(database)() as session:
        table = count(session, SOURCES["cases"], ("replies", "channel"), places=places)
    assert table.rows == ["blocked", "not_blocked"]
    assert table.row_totals == {"blocked": 6, "not_blocked": 25}
    assert table.cells[("blocked", "sms")] == 6
    shown = figures(session_factory(database)(), "cases", "replies", min_cell=7, places=places)
    assert shown.text(("cell", "blocked", TOTAL)) == "<7"


def test_subscribers_and_campaign_messages(database, places):
    now = at("2026-11-02")
    with session_factory(database).begin() as session:
        for i in range(12):
            session.add(Subscriber(conversation_id=f"subscriber-secret-{i}",
                                   channel="sms" if i % 3 else "telegram",
                                   language="fr" if i < 8 else "ar",
                                   area="ng-maiduguri" if i < 10 else None,
                                   consented_at=at("2026-10-15") if i < 5 else now,
                                   address=b"token"))
        session.flush()
        ids = [s.id for s in session.execute(sa.select(Subscriber)).scalars()]
        campaign = Campaign(name="fake-jobs-2026-11", definition="{}", file_hash="0" * 64,
                            queued_at=now)
        session.add(campaign)
        session.flush()
        for i, subscriber in enumerate(ids):
            session.add(OutboxMessage(campaign_id=campaign.id, subscriber_id=subscriber,
                                      idempotency_key=f"key-{i}", channel="sms", language="fr",
                                      state="sent" if i < 9 else "failed", attempts=1,
                                      next_attempt_at=now))
    with session_factory(database)() as session:
        table = figures(session, "subscribers", "language", min_cell=5, places=places,
                        languages=("en", "fr", "ar"))
        assert table.rows == ["en", "fr", "ar"]
        assert [table.text(("cell", r, TOTAL)) for r in table.rows] == ["0", "x", "<5"]
        assert table.text(("all",)) == "12"
        # 8 shown and 12 in all would give the Arabic count: the secondary rule hides 8 too
        assert table.text(("cell", "fr", TOTAL)) == "x"
        assert_safe(table)
        months = count(session, SOURCES["subscribers"], ("month",), places=places)
        assert months.row_totals == {"2026-10": 5, "2026-11": 7}
        messages = figures(session, "messages", None, min_cell=3, places=places)
        assert messages.by == ("campaign", "state")
        assert messages.cells[("fake-jobs-2026-11", "sent")] == 9
        assert messages.text(("cell", "fake-jobs-2026-11", "failed")) == "3"
        assert messages.cols == ["pending", "sending", "sent", "failed", "opted_out"]


# --- the command ----------------------------------------------------------------------------


@pytest.fixture
def helpline(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path}/figures.db"
    monkeypatch.setenv("HELPLINE_DATABASE_URL", url)
    monkeypatch.setenv("HELPLINE_DEPLOYMENT", str(SAMPLE_DEPLOYMENT))
    engine = make_engine(url)
    upgrade(engine)
    with session_factory(engine)() as session:
        import_places(session, read_places(PLACES_FILE))  # commits
    with session_factory(engine).begin() as session:
        add_cases(session, CASES)
    engine.dispose()

    def run(*argv: str) -> int:
        return cli.main(["figures", *argv])
    return run


def test_cli_summary_of_everything(helpline, capsys):
    assert helpline() == 0
    out = capsys.readouterr().out
    assert "Cases handed off by month" in out
    assert "Subscribers by language" in out
    assert "Campaign messages by campaign and state" in out
    assert "conversation-secret" not in out


def test_cli_table_hides_small_counts(helpline, capsys):
    assert helpline("cases", "--by", "area,level") == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line.split() for line in out.splitlines()[1:] if line.strip()}
    assert lines["Area"] == ["Area", "\\", "Triage", "level", "none", "low", "medium", "high",
                             "emergency", "Total"]
    assert lines["LY"][1:] == ["0", "0", "0", "0", "<5", "<5"]  # two emergencies in Libya
    assert lines["Total"][-1] == "24"
    # 24 in all and 13 + 9 shown would give Libya's 2: more is hidden, as x, never as <5
    hidden = [cell for line in lines.values() for cell in line[1:] if cell == "x"]
    assert hidden and all(line[1:].count("<5") + line[1:].count("x") != 1
                          for name, line in lines.items() if name not in ("Area", "Total"))
    assert "<5: from 1 to 4" in out and "x: hidden so that" in out


def test_cli_csv_is_hxl(helpline, capsys, tmp_path):
    target = tmp_path / "cases.csv"
    assert helpline("cases", "--by", "month,channel", "--format", "csv", "-o", str(target)) == 0
    assert "written" in capsys.readouterr().err
    data = hxl.data(io.BytesIO(target.read_bytes()), hxl.input.InputOptions(encoding="utf-8"))
    assert [c.display_tag for c in data.columns] == ["#date+month", "#meta+channel",
                                                     "#indicator+num"]
    rows = {(r.get("#date+month"), r.get("#meta+channel")): r.get("#indicator+num")
            for r in data}
    assert rows[("2026-11", "sms")] == "9"
    assert rows[("2026-09", "sms")] == "6"
    assert rows[("2026-10", "webchat")] == "<5"
    assert rows[("total", "total")] == "24"


def test_cli_json(helpline, capsys):
    assert helpline("cases", "--by", "status", "--format", "json", "--min-cell", "8") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["min_cell"] == 8
    counts = {c["status"]: c for c in data["counts"]}
    assert counts["waiting"] == {"status": "waiting", "count": None, "suppressed": "protecting"}
    assert counts["active"] == {"status": "active", "count": None, "suppressed": "small"}
    assert counts["closed"] == {"status": "closed", "count": 13, "suppressed": None}
    assert counts["total"]["count"] == 24


@pytest.mark.parametrize("argv, message", [
    (["cases", "--by", "phone"], "cannot be counted by phone"),
    (["cases", "--by", "area,level,need"], "at most 2 dimensions"),
    (["cases", "--by", "area,area"], "named twice"),
    (["cases", "--by", ","], "name one or two dimensions"),
    (["subscribers", "--by", "level"], "cannot be counted by level"),
    (["cases", "--since", "01/10/2026"], "--since: expected a date as YYYY-MM-DD"),
    (["cases", "--since", "2026-11-01", "--until", "2026-10-01"], "before --since"),
    (["cases", "--min-cell", "2"], "can raise that, not lower it"),
    (["--by", "area"], "name what to count"),
])
def test_cli_bad_input_is_a_clear_error(helpline, capsys, argv, message):
    assert helpline(*argv) == 2
    assert message in capsys.readouterr().err


def test_cli_needs_a_migrated_database(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HELPLINE_DATABASE_URL", f"sqlite:///{tmp_path}/empty.db")
    monkeypatch.setenv("HELPLINE_DEPLOYMENT", str(SAMPLE_DEPLOYMENT))
    assert cli.main(["figures", "cases"]) == 2
    assert "helpline db upgrade" in capsys.readouterr().err


def test_the_deployment_sets_the_threshold():
    base = SAMPLE_DEPLOYMENT.read_text(encoding="utf-8")
    assert parse_deployment_text(base + "\nfigures: {min_cell: 10}\n").figures_min_cell == 10
    assert parse_deployment_text(base).figures_min_cell == 5
    for bad in ("{min_cell: 2}", "{min_cell: five}", "{min_cell: true}", "{cells: 5}", "5"):
        with pytest.raises(DeploymentError, match="figures"):
            parse_deployment_text(base + f"\nfigures: {bad}\n")


def parse_deployment_text(text: str):
    import yaml

    return parse_deployment(yaml.safe_load(text), SAMPLE_DEPLOYMENT)


def test_dimensions_are_checked_before_the_database():
    source, by = parse_dimensions("messages", None)
    assert by == ("campaign", "state")
    with pytest.raises(FiguresError, match="unknown figures"):
        parse_dimensions("people", None)


def test_csv_writes_a_hashtag_row_for_every_column():
    out = io.StringIO()
    write_csv(suppress(one_way({"low": 6, "high": 1, "medium": 7}), 5), out)
    header, tags, *rows = out.getvalue().splitlines()
    assert header == "Triage level,Cases handed off"
    assert tags == "#severity+triage,#indicator+num"
    assert rows == ["low,x", "high,<5", "medium,7", "total,14"]


def test_csv_cells_that_a_spreadsheet_could_run_are_quoted():
    """An area code from the places file reaches the CSV as it is: one that starts like a
    formula is quoted (bot.spreadsheet); the counts stay numbers."""
    out = io.StringIO()
    write_csv(two_way({"=HYPERLINK(\"http://x\")": {"low": 6, "high": 7},
                       "@cmd": {"low": 8, "high": 9}}), out)
    _, _, *rows = out.getvalue().splitlines()
    assert rows[:3] == ['"\'=HYPERLINK(""http://x"")",low,6', '"\'=HYPERLINK(""http://x"")",high,7',
                        '"\'=HYPERLINK(""http://x"")",total,13']
    assert rows[3] == "'@cmd,low,8"
    assert not any(row.startswith(("=", "+", "-", "@")) for row in rows)
