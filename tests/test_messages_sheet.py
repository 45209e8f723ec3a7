"""`helpline messages sheet|check` (issue 16 §8): every message side by side for reviewers who
are not programmers, and a check of their edited CSV before it goes back into the catalog."""

from __future__ import annotations

import csv
import dataclasses
import io

import pytest

from bot import cli
from bot.catalog import load_catalog
from bot.messages_sheet import (LANGUAGES, SheetError, check, render_html, rows, sms_segments,
                                write_sheet)

CATALOG = load_catalog()


@pytest.fixture(scope="module")
def sheet(tmp_path_factory):
    out = tmp_path_factory.mktemp("sheet")
    html_path, csv_path = write_sheet(CATALOG, out, budget=2)
    return html_path, csv_path


def records(csv_path) -> list[dict]:
    with csv_path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def write(path, table: list[dict]) -> None:
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(table[0]))
        writer.writeheader()
        writer.writerows(table)


def test_the_sheet_has_every_text_and_button_in_every_language(sheet):
    html_path, csv_path = sheet
    assert csv_path.read_bytes().startswith(b"\xef\xbb\xbf")  # spreadsheets then read Arabic
    table = {r["key"]: r for r in records(csv_path)}
    assert set(table) == set(CATALOG.texts["en"]) | {f"buttons.{b}" for b in CATALOG.buttons["en"]}
    for language in LANGUAGES:
        assert table["utter_menu"][language] == CATALOG.texts[language]["utter_menu"]
        assert table["buttons.talk"][language] == CATALOG.buttons[language]["talk"]
    assert table["utter_menu"]["en buttons"].split(" | ")[0] == CATALOG.buttons["en"]["learn"]
    assert "rules_basics.yml" in table["utter_greet"]["where"]
    assert "actions/handoff.py" in table["utter_handoff_consent"]["where"]


def test_sms_segments_count_gsm7_and_ucs2_as_the_phone_does():
    words = CATALOG.channel_words("en", "sms")
    assert sms_segments("a" * 160, words) == 1
    assert sms_segments("a" * 161, words) == 2  # 153 per part once concatenated
    assert sms_segments("ب" * 70, words) == 1
    assert sms_segments("ب" * 71, words) == 2  # UCS-2: 70, then 67 per part


def test_the_page_escapes_texts_and_writes_arabic_right_to_left():
    row = rows(CATALOG)[0]
    hostile = dataclasses.replace(row, texts={**row.texts, "en": "<script>alert(1)</script>"})
    page = render_html([hostile], budget=2)
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert 'lang="ar" dir="rtl"' in page
    assert "<link" not in page and "src=" not in page  # self-contained


def test_an_unchanged_export_passes_the_check(sheet):
    assert check(sheet[1], CATALOG) == []


EDITS = [
    ("utter_greet", "fr", lambda t: t.replace("{org_name}", "l'organisation"),
     "placeholders differ from the catalog's; missing {org_name}"),
    ("utter_menu", "es", lambda t: t + " {nombre}", "unknown {nombre}"),
    ("utter_screening_paused", "ar", lambda t: "", "empty"),
    ("utter_greet", "en", lambda t: t + " x" * 200, "characters (at most 320)"),
    ("utter_screening_reprompt", "en", lambda t: t + " Or write STOP.", "opt the number out on STOP"),
    ("utter_greet", "en", lambda t: t + " {broken", "broken braces"),
]


@pytest.mark.parametrize("key, language, edit, message", EDITS)
def test_each_kind_of_bad_edit_is_named_with_its_row(sheet, tmp_path, key, language, edit,
                                                     message):
    table = records(sheet[1])
    row = next(i for i, r in enumerate(table) if r["key"] == key)
    table[row][language] = edit(table[row][language])
    edited = tmp_path / "edited.csv"
    write(edited, table)
    problems = check(edited, CATALOG)
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"row {row + 2}, column {language} ({key})"), problems
    assert message in problems[0]


def test_stop_stays_allowed_in_the_subscription_texts(sheet, tmp_path):
    table = records(sheet[1])
    assert any("STOP" in r["en"] for r in table if r["key"] == "utter_subscribe_consent")
    assert check(sheet[1], CATALOG) == []


def test_unknown_missing_and_duplicated_keys_and_changed_buttons(sheet, tmp_path):
    table = records(sheet[1])
    table[0]["key"] = "utter_does_not_exist"
    menu = next(r for r in table if r["key"] == "utter_menu")
    menu["en buttons"] = " | ".join(menu["en buttons"].split(" | ")[:2])
    table.append(dict(table[-1]))
    edited = tmp_path / "keys.csv"
    write(edited, table)
    problems = "\n".join(check(edited, CATALOG))
    assert "row 2: unknown key 'utter_does_not_exist'" in problems
    assert f"{CATALOG_FIRST}: missing from the sheet" in problems
    assert "2 buttons where the message has 6" in problems
    assert "appears twice" in problems


CATALOG_FIRST = next(iter(CATALOG.texts["en"]))


def test_a_file_that_is_not_a_sheet_gets_a_clear_error(tmp_path):
    with pytest.raises(SheetError, match="cannot read it"):
        check(tmp_path / "missing.csv", CATALOG)
    latin = tmp_path / "latin1.csv"
    latin.write_bytes("key,kind,en\nutter_greet,text,Café\n".encode("latin-1"))
    with pytest.raises(SheetError, match="not UTF-8"):
        check(latin, CATALOG)
    other = tmp_path / "other.csv"
    other.write_text("name,phone\nx,y\n", encoding="utf-8")
    with pytest.raises(SheetError, match="not a messages sheet"):
        check(other, CATALOG)


def test_the_commands(tmp_path, capsys):
    assert cli.main(["messages", "sheet", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "messages.html").exists()
    assert cli.main(["messages", "check", str(tmp_path / "messages.csv")]) == 0
    table = records(tmp_path / "messages.csv")
    table[1]["fr"] = ""
    write(tmp_path / "bad.csv", table)
    capsys.readouterr()
    assert cli.main(["messages", "check", str(tmp_path / "bad.csv")]) == 1
    assert "row 3, column fr" in capsys.readouterr().out
    assert cli.main(["messages", "check", str(tmp_path / "nothing.csv")]) == 2
