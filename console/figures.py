"""What supervisors read on the figures page: the anonymous aggregate figures of ``helpline
figures`` (``bot.figures``), as an HTML table and as the same HXL-tagged CSV.

The page asks for the same things as the command (``source``, ``by``, ``since``, ``until``;
the same defaults: cases by month) and gets the same table, counted and suppressed by
``bot.figures.figures`` with the deployment's ``figures.min_cell``: the page has no threshold
of its own and no way to lower it. Only closed categories are counted, so nothing here reads a
conversation id, a text or an address.

``FiguresReader.table`` is synchronous SQLAlchemy (call it from a thread in async code); the
gazetteer that rolls places up to admin-1 areas is read from the database at each call, as the
command does.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import Any, Optional, Sequence

from sqlalchemy.orm import Session, sessionmaker

from bot.deployment import MIN_FIGURES_CELL, SUPPORTED_LANGUAGES
from bot.figures import (
    HIDDEN, SOURCES, TOTAL, FiguresError, Table, figures, parse_date, parse_dimensions,
    write_csv, title,
)

DEFAULT_SOURCE = "cases"
# The query's parameters: ``by`` may come twice (the page's two selects), each other once.
PARAMETERS = ("source", "by", "since", "until")
# What one count is, for the page (the README's table of ``helpline figures``).
SOURCE_NOTES = {
    "cases": "One count is a hand-off to a caseworker, counted in the month it was opened "
             "(closed cases are kept until the deployment's closed_case_days).",
    "subscribers": "One count is a person receiving campaigns now, counted in the month they "
                   "consented.",
    "messages": "One count is a campaign message, counted in the month its campaign was "
                "queued.",
}
# The command's options in its messages, and the page's words for them (its form's labels).
_OPTION = re.compile(r"--(by|since|until)\b")
OPTION_WORDS = {"by": "Count by", "since": "First day", "until": "Last day"}


def _sources_of(dimension: str) -> list[str]:
    return [name for name, source in SOURCES.items() if dimension in source.dimensions]


def dimension_choices() -> list[tuple[str, str]]:
    """Every dimension of every source, for the page's selects: (name, words), the words
    saying which figures a dimension belongs to when not all of them."""
    seen: dict[str, str] = {}
    for source in SOURCES.values():
        for name, dimension in source.dimensions.items():
            if name in seen:
                continue
            owners = _sources_of(name)
            seen[name] = (dimension.label if len(owners) == len(SOURCES)
                          else f"{dimension.label} ({', '.join(owners)})")
    return list(seen.items())


def web_message(exc: FiguresError) -> str:
    """The command's message with the form's words instead of its options (``--until X is
    before --since Y`` -> ``Last day X is before first day Y``), as a sentence."""
    def words(match: re.Match) -> str:
        label = OPTION_WORDS[match.group(1)]
        return label if match.start() == 0 else label[:1].lower() + label[1:]

    text = _OPTION.sub(words, str(exc))
    text = text[:1].upper() + text[1:]
    return text if text.endswith(".") else text + "."


@dataclass(frozen=True)
class Query:
    """What the page asks for, as the command takes it (None: the command's default)."""

    source: str = DEFAULT_SOURCE
    by: Optional[str] = None
    since: Optional[str] = None
    until: Optional[str] = None


def parse_query(query: Any) -> tuple[Query, dict[str, Any], list[str]]:
    """The page's query (a multidict): what to count, the values to put back in the form, the
    problems (each a sentence; every one found, not only the first). An empty field is the
    default; ``by`` may be ``a,b`` or given twice (``by=a&by=b``, the form's two selects)."""
    problems: list[str] = []
    repeated = [name for name in PARAMETERS
                if name != "by" and len(query.getall(name, [])) > 1]
    if repeated:
        problems.append(f"Give each of these once (repeated: {', '.join(repeated)}).")
    source = query.get("source", "").strip() or DEFAULT_SOURCE
    parts = [part.strip() for value in query.getall("by", []) for part in value.split(",")]
    by = ",".join(part for part in parts if part) or None
    since = query.get("since", "").strip() or None
    until = query.get("until", "").strip() or None
    form: dict[str, Any] = {"source": DEFAULT_SOURCE, "by": ["", ""], "since": since or "",
                            "until": until or ""}
    try:
        chosen, dims = parse_dimensions(source, by)
        form["source"] = chosen.name
        form["by"] = (list(dims) + [""])[:2]
    except FiguresError as exc:
        problems.append(web_message(exc))
        if source in SOURCES:
            form["source"] = source
        known = [part for part in (by or "").split(",") if part]
        form["by"] = (known + ["", ""])[:2]
    for value, option in ((since, "--since"), (until, "--until")):
        try:
            parse_date(value, option)
        except FiguresError as exc:
            problems.append(web_message(exc))
    return Query(source, by, since, until), form, problems


def csv_filename(table: Table) -> str:
    """``figures-cases-month.csv``, ``figures-cases-area-level-2026-01-01-to-2026-03-31.csv``:
    closed-set names and ISO dates only (safe in a header)."""
    parts = ["figures", table.source.name, *table.by]
    if table.since and table.until:
        parts += [table.since.isoformat(), "to", table.until.isoformat()]
    elif table.since:
        parts += ["from", table.since.isoformat()]
    elif table.until:
        parts += ["to", table.until.isoformat()]
    return "-".join(parts) + ".csv"


def to_csv(table: Table) -> str:
    """What ``helpline figures SOURCE --format csv`` writes."""
    out = io.StringIO()
    write_csv(table, out)
    return out.getvalue()


def view(table: Table) -> dict[str, Any]:
    """The table for the page's template: headers, rows of (header, counts), the totals row,
    the legend; every count as the command prints it (``<k``, ``x``)."""
    dims = table.source.dimensions
    if table.two_way:
        rows = [(r, [table.text(("cell", r, c)) for c in table.cols] + [table.text(("row", r))])
                for r in table.rows]
        totals = [table.text(("col", c)) for c in table.cols] + [table.text(("all",))]
        columns = list(table.cols) + ["Total"]
    else:
        rows = [(r, [table.text(("cell", r, TOTAL))]) for r in table.rows]
        totals = [table.text(("all",))]
        columns = ["Count"]
    legend = []
    if table.small:
        legend.append((f"<{table.min_cell}", f"a count from 1 to {table.min_cell - 1}"))
    if table.hidden - table.small:
        legend.append((HIDDEN, "hidden so that a small count cannot be worked out from the "
                               "totals"))
    return {
        "title": title(table), "row_label": dims[table.by[0]].label,
        "col_label": dims[table.by[1]].label if table.two_way else None,
        "columns": columns, "rows": rows, "totals": totals, "legend": legend,
        "two_way": table.two_way, "min_cell": table.min_cell,
    }


class FiguresReader:
    """Counts the figures of one database with one deployment's threshold."""

    def __init__(self, sessions: "sessionmaker[Session]", min_cell: int,
                 languages: Sequence[str] = SUPPORTED_LANGUAGES) -> None:
        if min_cell < MIN_FIGURES_CELL:
            raise ValueError(f"figures: the smallest count shown must be at least "
                             f"{MIN_FIGURES_CELL}, got {min_cell}")
        self._sessions = sessions
        self.min_cell = min_cell
        self.languages = tuple(languages)

    def table(self, query: Query) -> Table:
        """The table ``helpline figures`` prints for this query, suppressed at ``min_cell``.

        Raises:
            FiguresError: a query the command would refuse too.
        """
        from bot.services.places import load_gazetteer

        with self._sessions() as session:
            places = load_gazetteer(session).places
            return figures(session, query.source, query.by, since=query.since,
                           until=query.until, min_cell=self.min_cell, places=places,
                           languages=self.languages)
