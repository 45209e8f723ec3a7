"""Every message in every language side by side, for reviewers who are not programmers.

``helpline messages sheet`` writes ``messages.html`` (one self-contained page: no script, no
outside file) and ``messages.csv`` (UTF-8 with a byte-order mark, so spreadsheet programs
read Arabic right): one row per text or button title, with where it is shown (the rules and
actions that send it), its buttons and, per language, the SMS segments it takes.
``helpline messages check FILE.csv`` checks an edited sheet before its texts are copied back
into ``bot/messages/<language>.yml``: the same keys, the same placeholders as the catalog,
nothing empty, nothing too long, the same number of buttons, no provider opt-out word on SMS.
Copying back stays a person's job (the YAML files carry comments a tool would lose).
"""

from __future__ import annotations

import csv
import html
import io
import re
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional

from bot.catalog import MAX_MESSAGE_CHARS, Catalog, with_channel_words
from bot.keywords import normalise
from bot.settings import PROJECT_ROOT
from channels.segments import count_segments
from channels.sms_keywords import load_keywords as load_sms_keywords
from channels.sms_text import sms_friendly

LANGUAGES = ("en", "fr", "ar", "es")
RTL = {"ar"}
# Texts about the safety messages themselves: there STOP is meant to end the subscription at
# the provider too. Other providers' opt-out words beside Twilio's (AWS End User Messaging).
SUBSCRIPTION_TEXTS = {"utter_subscribe_consent", "utter_subscribe_done",
                      "utter_subscribe_already", "utter_subscribe_reminder"}
OTHER_PROVIDERS_OPT_OUT = frozenset({"arret", "td", "remove"})
BUTTON_SEPARATOR = " | "
TEXT, BUTTON = "text", "button"


class SheetError(ValueError):
    """A sheet that cannot be read at all (missing file, not UTF-8, not a CSV)."""


@dataclass
class Row:
    key: str
    kind: str  # text | button
    where: str
    texts: dict[str, str]
    buttons: dict[str, str] = field(default_factory=dict)
    segments: dict[str, Optional[int]] = field(default_factory=dict)


def _sources() -> list[tuple[str, str]]:
    """(label, file text) of the rules and actions, to find where each text is sent."""
    sources = [(f"rules: {p.name}", p.read_text(encoding="utf-8"))
               for p in sorted((PROJECT_ROOT / "data" / "stories").glob("*.yml"))]
    sources += [(f"actions/{p.name}", p.read_text(encoding="utf-8"))
                for p in sorted((PROJECT_ROOT / "actions").glob("*.py"))]
    sources += [(f"channels/{p.name}", p.read_text(encoding="utf-8"))
                for p in sorted((PROJECT_ROOT / "channels").glob("*.py"))]
    return sources


def where_shown(key: str, sources: Iterable[tuple[str, str]]) -> str:
    """The rules files and action modules that name ``key`` (whole word)."""
    pattern = re.compile(rf"(?<![\w]){re.escape(key)}(?![\w])")
    found = [label for label, text in sources if pattern.search(text)]
    return "; ".join(found) or "sent by code that builds its name (e.g. utter_ask_<question>)"


def sms_segments(text: str, words: dict[str, str]) -> int:
    """Segments of ``text`` as sent by SMS, placeholders still written as {name}."""
    return count_segments(sms_friendly(with_channel_words(text, words))).segments


def rows(catalog: Catalog) -> list[Row]:
    sources = _sources()
    result = []
    for key in catalog.texts["en"]:
        result.append(Row(
            key, TEXT, where_shown(key, sources),
            {lang: catalog.texts[lang][key] for lang in LANGUAGES},
            {lang: BUTTON_SEPARATOR.join(b["title"] for b in catalog.buttons_for(key, lang))
             for lang in LANGUAGES},
            {lang: sms_segments(catalog.texts[lang][key], catalog.channel_words(lang, "sms"))
             for lang in LANGUAGES}))
    for key in catalog.buttons["en"]:
        result.append(Row(f"buttons.{key}", BUTTON, "a button title (bot/messages/layout.yml)",
                          {lang: catalog.buttons[lang][key] for lang in LANGUAGES},
                          segments={lang: None for lang in LANGUAGES}))
    return result


def header() -> list[str]:
    columns = ["key", "kind", "where"]
    for lang in LANGUAGES:
        columns += [lang, f"{lang} buttons", f"{lang} SMS segments"]
    return columns


def write_csv(table: list[Row], out: io.TextIOBase) -> None:
    writer = csv.writer(out)
    writer.writerow(header())
    for row in table:
        line = [row.key, row.kind, row.where]
        for lang in LANGUAGES:
            segments = row.segments.get(lang)
            line += [row.texts[lang], row.buttons.get(lang, ""),
                     "" if segments is None else str(segments)]
        writer.writerow(line)


def render_html(table: list[Row], budget: int) -> str:
    esc = html.escape
    head = "".join(f"<th>{esc(c)}</th>" for c in ("key", "where shown", *LANGUAGES))
    body = []
    for row in table:
        cells = [f"<td><code>{esc(row.key)}</code></td>", f"<td class=where>{esc(row.where)}</td>"]
        for lang in LANGUAGES:
            attrs = f' lang="{lang}"' + (' dir="rtl"' if lang in RTL else "")
            extra = ""
            if row.buttons.get(lang):
                extra += f'<div class=buttons>[{esc(row.buttons[lang])}]</div>'
            segments = row.segments.get(lang)
            if segments is not None:
                over = " over" if segments > budget else ""
                extra += f'<div class="sms{over}" dir="ltr">SMS: {segments} segment(s)</div>'
            cells.append(f"<td{attrs}>{esc(row.texts[lang])}{extra}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Helpline messages for review</title>
<style>
body {{ font-family: sans-serif; margin: 1rem; }}
table {{ border-collapse: collapse; width: 100%; }}
th, td {{ border: 1px solid #999; padding: .4rem; vertical-align: top; font-size: .9rem; }}
th {{ background: #eee; position: sticky; top: 0; }}
.where {{ color: #444; font-size: .8rem; }}
.buttons {{ color: #035; margin-top: .3rem; }}
.sms {{ color: #555; font-size: .75rem; margin-top: .3rem; }}
.over {{ color: #a00; font-weight: bold; }}
</style></head><body>
<h1>Helpline messages for review</h1>
<p>Every text the assistant can send, in every language. Words in braces, like {{org_name}},
are filled in when the message is sent: keep them as they are. Buttons are in [brackets].
SMS segments are counted with the SMS words of each language and the placeholders unfilled;
the deployment allows {budget} per SMS (longer texts are sent in parts). Edit the CSV file,
then run <code>helpline messages check FILE.csv</code>.</p>
<table><thead><tr>{head}</tr></thead><tbody>
{chr(10).join(body)}
</tbody></table></body></html>
"""


def write_sheet(catalog: Catalog, out_dir: Path, budget: int) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    table = rows(catalog)
    html_path, csv_path = out_dir / "messages.html", out_dir / "messages.csv"
    html_path.write_text(render_html(table, budget), encoding="utf-8")
    with csv_path.open("w", encoding="utf-8-sig", newline="") as out:
        write_csv(table, out)
    return html_path, csv_path


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def read_sheet(path: Path) -> list[dict[str, str]]:
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise SheetError(f"{path}: cannot read it ({exc.strerror})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SheetError(f"{path}: not UTF-8 (byte {exc.start}); save it as CSV UTF-8") from None
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        records = list(reader)
    except csv.Error as exc:
        raise SheetError(f"{path}: not a readable CSV ({exc})") from None
    missing = [c for c in ("key", "kind", *LANGUAGES) if c not in (reader.fieldnames or [])]
    if missing:
        raise SheetError(f"{path}: not a messages sheet (no column {', '.join(missing)})")
    return records


def check(path: Path, catalog: Catalog) -> list[str]:
    """Every problem of an edited sheet, as "row N, column C: ..." lines (empty when fine)."""
    records = read_sheet(path)
    stop_words = load_sms_keywords().provider_stop | OTHER_PROVIDERS_OPT_OUT
    problems: list[str] = []
    seen: set[str] = set()
    for number, record in enumerate(records, start=2):  # row 1 is the header
        key = (record.get("key") or "").strip()
        if key in seen:
            problems.append(f"row {number}: {key} appears twice")
        seen.add(key)
        if key.startswith("buttons."):
            name = key[len("buttons."):]
            if name not in catalog.buttons["en"]:
                problems.append(f"row {number}: unknown button {key}")
                continue
            source = None
        elif key in catalog.texts["en"]:
            source = catalog.texts["en"][key]
        else:
            problems.append(f"row {number}: unknown key {key!r}")
            continue
        for lang in LANGUAGES:
            text = record.get(lang) or ""
            where = f"row {number}, column {lang} ({key})"
            if not text.strip():
                problems.append(f"{where}: empty")
                continue
            if source is None:
                if len(text) > 40:
                    problems.append(f"{where}: a button title of {len(text)} characters "
                                    f"(keep it under 40)")
                continue
            try:
                used = _placeholders(text)
            except ValueError as exc:
                problems.append(f"{where}: broken braces ({exc}); keep {{name}} as it is")
                continue
            expected = _placeholders(source)
            if used != expected:
                lost, added = sorted(expected - used), sorted(used - expected)
                problems.append(f"{where}: placeholders differ from the catalog's"
                                + (f"; missing {', '.join('{' + p + '}' for p in lost)}" if lost else "")
                                + (f"; unknown {', '.join('{' + p + '}' for p in added)}" if added else ""))
            if len(text) > MAX_MESSAGE_CHARS:
                problems.append(f"{where}: {len(text)} characters (at most {MAX_MESSAGE_CHARS})")
            on_sms = with_channel_words(text, catalog.channel_words(lang, "sms"))
            found = set(normalise(on_sms).split()) & stop_words
            if key in SUBSCRIPTION_TEXTS:
                found -= {"stop"}
            if found:
                problems.append(f"{where}: on SMS the provider would opt the number out on "
                                f"{', '.join(sorted(w.upper() for w in found))}; choose another word")
            titles = [t for t in (record.get(f"{lang} buttons") or "").split(BUTTON_SEPARATOR) if t]
            wanted = len(catalog.buttons_for(key, lang))
            if f"{lang} buttons" in record and len(titles) != wanted:
                problems.append(f"{where}: {len(titles)} buttons where the message has {wanted} "
                                f"(button titles are edited in their own rows)")
    for key in list(catalog.texts["en"]) + [f"buttons.{b}" for b in catalog.buttons["en"]]:
        if key not in seen:
            problems.append(f"{key}: missing from the sheet")
    return problems


def add_parser(commands) -> None:
    parser = commands.add_parser("messages", help="every message side by side, for reviewers")
    sub = parser.add_subparsers(dest="messages_command", required=True)
    sheet = sub.add_parser("sheet", help="write messages.html and messages.csv")
    sheet.add_argument("--out", default="var/messages", help="folder (default var/messages)")
    checker = sub.add_parser("check", help="check an edited messages.csv")
    checker.add_argument("file")


def messages_command(settings, args) -> int:
    import sys

    from bot.catalog import CatalogError, load_catalog
    from bot.deployment import DeploymentError, load_deployment

    try:
        catalog = load_catalog()
    except CatalogError as exc:
        print(f"messages: {exc}", file=sys.stderr)
        return 2
    if args.messages_command == "sheet":
        try:
            budget = load_deployment(settings.deployment_file).sms.segment_budget
        except DeploymentError as exc:
            print(f"deployment: {exc}", file=sys.stderr)
            return 2
        out = Path(args.out)
        html_path, csv_path = write_sheet(catalog, out if out.is_absolute() else PROJECT_ROOT / out,
                                          budget)
        print(f"wrote {html_path} and {csv_path}")
        return 0
    try:
        problems = check(Path(args.file), catalog)
    except SheetError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} problem(s): nothing may be copied back yet", file=sys.stderr)
        return 1
    print("the sheet is fine: copy its texts back into bot/messages/<language>.yml, then run "
          "helpline build-domain and helpline check")
    return 0
