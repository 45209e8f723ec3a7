"""Anonymous aggregate figures for NGOs: counts over closed categories, small cells suppressed.

What can be counted is only what the database keeps, and only by closed categories (never a
pseudonym, a text, a time finer than a month or a place finer than an admin-1 area):

| source | one row per | dimensions (``--by``) | period (``--since/--until``) on |
| --- | --- | --- | --- |
| ``cases`` | a hand-off to a caseworker (kept until ``retention.closed_case_days`` after closing) | month, channel, language, level, need, area, status, outcome, replies | when it was opened |
| ``subscribers`` | a person receiving campaigns now | month, channel, language, area | when they consented |
| ``messages`` | a campaign message | month, campaign, channel, language, state | when the campaign was queued |

``month`` is the UTC month (YYYY-MM); ``area`` is the admin-1 area (its P-code) of the coarse
place a person gave, a country code where the place has no admin-1, ``unknown`` where none was
given; ``replies`` is ``blocked`` for a case whose person's number refused the assistant's
replies at least once (an SMS opt-out, Twilio error 21610: they can write START);
``need`` counts a case under each of its needs (so a need's cells do not add up to the total,
which counts cases), ``none`` for a case without one.

A table has one or two dimensions, with totals. Suppression (``suppress``), for a threshold
``k`` (the deployment's ``figures.min_cell``, default 5; a command may raise it, never lower it):

1. primary: every count from 1 to k-1, cells and totals alike, is shown as ``<k``;
2. secondary: a count hidden alone in a row or column whose total is shown could be worked out
   by subtraction, so while some line (a row with its total, a column with its total, the
   row or column totals with the grand total) has exactly one hidden count, the smallest shown
   non-zero count of that line is hidden too, shown as ``x`` (it is k or more: writing ``<k``
   there would be false).

Zeros are shown: a closed category with nobody in it is not about anybody. Each table is
protected on its own: publishing several tables of the same people cut differently, or of
periods that overlap, can still let a reader subtract one from another; publish one cut per
period.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Optional, Sequence

import sqlalchemy as sa
from sqlalchemy.orm import Session

from bot.cases.models import LEVELS, OUTCOMES, STATUSES, Case
from bot.campaigns.models import (
    OUTBOX_CHANNELS, OUTBOX_STATES, SUBSCRIBER_CHANNELS, Campaign, OutboxMessage, Subscriber,
)
from bot.deployment import MIN_FIGURES_CELL, SUPPORTED_LANGUAGES
from bot.spreadsheet import safe_row
from bot.triage import NEED_CATEGORIES

MAX_DIMENSIONS = 2
TOTAL = "total"
HIDDEN = "x"
UNKNOWN = "unknown"
CASE_CHANNELS = ("sms", "telegram", "webchat", "helpline")


class FiguresError(ValueError):
    """A request for figures that cannot be answered as asked."""


@dataclass(frozen=True)
class Dimension:
    name: str
    hashtag: str  # the HXL hashtag of its column
    label: str  # the column's human header
    values: Optional[tuple[str, ...]] = None  # a closed set, shown even where zero


@dataclass(frozen=True)
class Source:
    name: str
    what: str  # what one count is, for headers
    dimensions: Mapping[str, Dimension]
    default_by: tuple[str, ...]


_MONTH = Dimension("month", "#date+month", "Month")
_LANGUAGE = Dimension("language", "#meta+language", "Language")
_AREA = Dimension("area", "#adm1+code", "Area")


def _dims(*dimensions: Dimension) -> dict[str, Dimension]:
    return {d.name: d for d in dimensions}


SOURCES: dict[str, Source] = {
    "cases": Source("cases", "Cases handed off", _dims(
        _MONTH,
        Dimension("channel", "#meta+channel", "Channel", CASE_CHANNELS),
        _LANGUAGE,
        Dimension("level", "#severity+triage", "Triage level", LEVELS),
        Dimension("need", "#meta+need", "Need", NEED_CATEGORIES + ("none",)),
        _AREA,
        Dimension("status", "#status", "Status", STATUSES),
        Dimension("outcome", "#status+outcome", "Outcome", OUTCOMES + ("open",)),
        Dimension("replies", "#status+replies", "Replies blocked", ("blocked", "not_blocked")),
    ), ("month",)),
    "subscribers": Source("subscribers", "Subscribers", _dims(
        _MONTH,
        Dimension("channel", "#meta+channel", "Channel", SUBSCRIBER_CHANNELS),
        _LANGUAGE,
        _AREA,
    ), ("language",)),
    "messages": Source("messages", "Campaign messages", _dims(
        _MONTH,
        Dimension("campaign", "#activity+code", "Campaign"),
        Dimension("channel", "#meta+channel", "Channel", OUTBOX_CHANNELS),
        _LANGUAGE,
        Dimension("state", "#status+delivery", "State", OUTBOX_STATES),
    ), ("campaign", "state")),
}


@dataclass
class Table:
    """Counts by one or two dimensions, with totals; ``hidden`` names the suppressed counts:
    ``("cell", row, col)``, ``("row", row)``, ``("col", col)``, ``("all",)``. A one-dimension
    table has the single column ``TOTAL`` and no row totals of its own."""

    source: Source
    by: tuple[str, ...]
    rows: list[str]
    cols: list[str]
    cells: dict[tuple[str, str], int]
    row_totals: dict[str, int]
    col_totals: dict[str, int]
    total: int
    since: Optional[dt.date] = None
    until: Optional[dt.date] = None
    min_cell: int = 0  # 0: not suppressed
    hidden: set[tuple] = field(default_factory=set)
    small: set[tuple] = field(default_factory=set)  # hidden for being below min_cell

    @property
    def two_way(self) -> bool:
        return len(self.by) == 2

    def value(self, key: tuple) -> int:
        kind = key[0]
        if kind == "cell":
            return self.cells.get((key[1], key[2]), 0)
        if kind == "row":
            return self.row_totals.get(key[1], 0)
        if kind == "col":
            return self.col_totals.get(key[1], 0)
        return self.total

    def shown(self, key: tuple) -> Optional[int]:
        """The count, or None when it is suppressed."""
        return None if key in self.hidden else self.value(key)

    def text(self, key: tuple) -> str:
        """The count; ``<k`` for a small one, ``x`` for one hidden to protect a small one."""
        if key not in self.hidden:
            return str(self.value(key))
        return f"<{self.min_cell}" if key in self.small else HIDDEN


# ---------------------------------------------------------------------------------------
# Counting


def parse_dimensions(source_name: str, by: Optional[str]) -> tuple[Source, tuple[str, ...]]:
    if source_name not in SOURCES:
        raise FiguresError(f"unknown figures {source_name!r} (expected one of "
                           f"{', '.join(SOURCES)})")
    source = SOURCES[source_name]
    if by is None:
        return source, source.default_by
    names = tuple(part.strip() for part in by.split(",") if part.strip())
    if not names:
        raise FiguresError("--by: name one or two dimensions, e.g. --by area,level")
    unknown = [n for n in names if n not in source.dimensions]
    if unknown:
        raise FiguresError(f"--by: {source_name} cannot be counted by {', '.join(unknown)} "
                           f"(by one or two of: {', '.join(source.dimensions)})")
    if len(names) > MAX_DIMENSIONS:
        raise FiguresError(f"--by: at most {MAX_DIMENSIONS} dimensions (small cells multiply "
                           f"with each one), got {len(names)}")
    if len(set(names)) != len(names):
        raise FiguresError("--by: a dimension is named twice")
    return source, names


def parse_date(value: Optional[str], option: str) -> Optional[dt.date]:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise FiguresError(f"{option}: expected a date as YYYY-MM-DD, got {value!r}") from None


def _month(column, dialect: str):
    if dialect == "postgresql":
        return sa.func.to_char(sa.func.timezone("UTC", column), "YYYY-MM")
    return sa.func.strftime("%Y-%m", column)


def _period(column, since: Optional[dt.date], until: Optional[dt.date]) -> list:
    """``since`` and ``until`` are whole UTC days, both included."""
    conditions = []
    if since is not None:
        conditions.append(column >= dt.datetime.combine(since, dt.time(), dt.timezone.utc))
    if until is not None:
        end = dt.datetime.combine(until + dt.timedelta(days=1), dt.time(), dt.timezone.utc)
        conditions.append(column < end)
    return conditions


def _raw_groups(session: Session, source: Source, by: Sequence[str], since, until
                ) -> list[tuple[tuple, int]]:
    """(raw values of the dimensions, count) grouped by the database."""
    dialect = session.get_bind().dialect.name
    if source.name == "cases":
        when = Case.created_at
        columns = {"month": _month(when, dialect), "channel": Case.channel,
                   "language": Case.language, "level": Case.triage_level, "need": Case.needs,
                   "area": Case.area, "status": Case.status, "outcome": Case.outcome,
                   "replies": Case.replies_blocked}
        table = Case
    elif source.name == "subscribers":
        when = Subscriber.consented_at
        columns = {"month": _month(when, dialect), "channel": Subscriber.channel,
                   "language": Subscriber.language, "area": Subscriber.area}
        table = Subscriber
    else:
        when = Campaign.queued_at
        columns = {"month": _month(when, dialect), "campaign": Campaign.name,
                   "channel": OutboxMessage.channel, "language": OutboxMessage.language,
                   "state": OutboxMessage.state}
        table = OutboxMessage
    chosen = [columns[name].label(f"d{i}") for i, name in enumerate(by)]
    query = sa.select(*chosen, sa.func.count().label("n")).select_from(table)
    if source.name == "messages":
        query = query.join(Campaign, Campaign.id == OutboxMessage.campaign_id)
    for condition in _period(when, since, until):
        query = query.where(condition)
    # by the labels: PostgreSQL sees two to_char(.., $n) as different expressions
    query = query.group_by(*[sa.literal_column(f"d{i}") for i in range(len(chosen))])
    return [(tuple(row[:-1]), int(row[-1])) for row in session.execute(query)]


def area_of(code: Optional[str], places: Mapping) -> str:
    """The admin-1 P-code of a coarse place code (its country where it has none)."""
    if not code:
        return UNKNOWN
    place = places.get(code)
    if place is None:
        return code if len(code) == 2 and code.isalpha() and code.isupper() else "other"
    return place.admin1_pcode or place.country or "other"


def _values(name: str, raw, places: Mapping) -> list[str]:
    if name == "need":
        needs = [n for n in (raw or "").split(",") if n]
        return needs or ["none"]
    if name == "area":
        return [area_of(raw, places)]
    if name == "outcome":
        return [raw or "open"]
    if name == "month":
        return [raw or UNKNOWN]
    if name == "replies":
        return ["blocked" if raw else "not_blocked"]
    return [str(raw) if raw is not None else UNKNOWN]


def _ordered(dimension: Dimension, present: Iterable[str], languages: Sequence[str]) -> list[str]:
    present = set(present)
    if dimension.name == "language":
        fixed = [lang for lang in SUPPORTED_LANGUAGES if lang in languages]
        return fixed + sorted(present - set(fixed))
    if dimension.values is not None:
        return list(dimension.values) + sorted(present - set(dimension.values))
    return sorted(present)


def count(session: Session, source: Source, by: Sequence[str], *,
          since: Optional[dt.date] = None, until: Optional[dt.date] = None,
          places: Optional[Mapping] = None, languages: Sequence[str] = SUPPORTED_LANGUAGES
          ) -> Table:
    """The counts of ``source`` by the dimensions ``by`` (not yet suppressed)."""
    if since is not None and until is not None and until < since:
        raise FiguresError(f"--until {until} is before --since {since}")
    places = places if places is not None else {}
    cells: Counter = Counter()
    row_totals: Counter = Counter()
    col_totals: Counter = Counter()
    total = 0
    for raw, n in _raw_groups(session, source, by, since, until):
        rows = _values(by[0], raw[0], places)
        cols = _values(by[1], raw[1], places) if len(by) == 2 else [TOTAL]
        for r in rows:
            row_totals[r] += n
            for c in cols:
                cells[(r, c)] += n
        for c in cols:
            col_totals[c] += n
        total += n
    dims = source.dimensions
    row_keys = _ordered(dims[by[0]], row_totals, languages)
    col_keys = _ordered(dims[by[1]], col_totals, languages) if len(by) == 2 else [TOTAL]
    return Table(source, tuple(by), row_keys, col_keys, dict(cells), dict(row_totals),
                 dict(col_totals), total, since, until)


# ---------------------------------------------------------------------------------------
# Suppression


def _lines(table: Table) -> list[tuple[list[tuple], tuple]]:
    """Each additive relation a reader could use: (the counts that add up, their total)."""
    if not table.two_way:
        return [([("cell", r, TOTAL) for r in table.rows], ("all",))]
    lines = [([("cell", r, c) for c in table.cols], ("row", r)) for r in table.rows]
    lines += [([("cell", r, c) for r in table.rows], ("col", c)) for c in table.cols]
    lines.append(([("row", r) for r in table.rows], ("all",)))
    lines.append(([("col", c) for c in table.cols], ("all",)))
    return lines


def suppress(table: Table, min_cell: int) -> Table:
    """Hides the counts a reader must not see or work out (see the module's doc)."""
    if min_cell < MIN_FIGURES_CELL:
        raise FiguresError(f"the smallest count shown must be at least {MIN_FIGURES_CELL}, "
                           f"got {min_cell}")
    table.min_cell = min_cell
    lines = _lines(table)
    every = {key for members, total in lines for key in members + [total]}
    table.small = {key for key in every if 0 < table.value(key) < min_cell}
    table.hidden = set(table.small)
    changed = True
    while changed:
        changed = False
        for members, total in lines:
            if sum(key in table.hidden for key in members + [total]) != 1:
                continue
            candidates = [key for key in members
                          if key not in table.hidden and table.value(key) > 0]
            if not candidates and total not in table.hidden and table.value(total) > 0:
                candidates = [total]
            if candidates:
                table.hidden.add(min(candidates, key=table.value))
                changed = True
    return table


# ---------------------------------------------------------------------------------------
# Output


def title(table: Table) -> str:
    dims = " and ".join(table.source.dimensions[d].label.lower() for d in table.by)
    period = ""
    if table.since or table.until:
        period = f", {table.since or 'start'} to {table.until or 'now'}"
    return f"{table.source.what} by {dims}{period}"


def render_text(table: Table) -> str:
    """The table for a terminal."""
    dims = table.source.dimensions
    lines = [title(table)]
    if table.two_way:
        header = [f"{dims[table.by[0]].label} \\ {dims[table.by[1]].label}"] + table.cols + ["Total"]
        body = [[r] + [table.text(("cell", r, c)) for c in table.cols] + [table.text(("row", r))]
                for r in table.rows]
        body.append(["Total"] + [table.text(("col", c)) for c in table.cols]
                    + [table.text(("all",))])
    else:
        header = [dims[table.by[0]].label, "Count"]
        body = [[r, table.text(("cell", r, TOTAL))] for r in table.rows]
        body.append(["Total", table.text(("all",))])
    widths = [max(len(str(line[i])) for line in [header] + body) for i in range(len(header))]
    for line in [header] + body:
        cells = [str(line[0]).ljust(widths[0])] + [str(v).rjust(w) for v, w in
                                                   zip(line[1:], widths[1:])]
        lines.append("  ".join(cells).rstrip())
    if table.small:
        lines.append(f"<{table.min_cell}: from 1 to {table.min_cell - 1}")
    if table.hidden - table.small:
        lines.append(f"{HIDDEN}: hidden so that a small count cannot be worked out from the "
                     f"totals")
    return "\n".join(lines) + "\n"


def _records(table: Table) -> Iterable[tuple[list[str], tuple]]:
    """(values of the dimensions, count key) in long form, totals as ``total``."""
    if table.two_way:
        for r in table.rows:
            for c in table.cols:
                yield [r, c], ("cell", r, c)
            yield [r, TOTAL], ("row", r)
        for c in table.cols:
            yield [TOTAL, c], ("col", c)
    else:
        for r in table.rows:
            yield [r], ("cell", r, TOTAL)
    yield [TOTAL] * len(table.by), ("all",)


def write_csv(table: Table, out: io.TextIOBase) -> None:
    """Long-form CSV with a row of HXL hashtags under the headers (one row per count, totals
    as ``total``; a suppressed count is ``<k`` or ``x``, as in ``Table.text``). A cell a
    spreadsheet could run as a formula (an area's name from the places file, say) gets a
    leading quote (``bot.spreadsheet``)."""
    dims = [table.source.dimensions[d] for d in table.by]
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(safe_row([d.label for d in dims] + [table.source.what]))
    writer.writerow([d.hashtag for d in dims] + ["#indicator+num"])
    for values, key in _records(table):
        writer.writerow(safe_row(values + [table.text(key)]))


def to_json(table: Table) -> dict:
    return {
        "figures": table.source.name,
        "by": list(table.by),
        "since": table.since.isoformat() if table.since else None,
        "until": table.until.isoformat() if table.until else None,
        "min_cell": table.min_cell,
        "counts": [dict(zip(table.by, values), count=table.shown(key),
                        suppressed=("small" if key in table.small else
                                    "protecting" if key in table.hidden else None))
                   for values, key in _records(table)],
    }


def write(table: Table, form: str, out) -> None:
    if form == "csv":
        write_csv(table, out)
    elif form == "json":
        json.dump(to_json(table), out, indent=1)
        out.write("\n")
    else:
        out.write(render_text(table))


def figures(session: Session, source_name: str, by: Optional[str] = None, *,
            since: Optional[str] = None, until: Optional[str] = None, min_cell: int,
            places: Optional[Mapping] = None, languages: Sequence[str] = SUPPORTED_LANGUAGES
            ) -> Table:
    """Counted and suppressed: what ``helpline figures`` prints."""
    source, dims = parse_dimensions(source_name, by)
    table = count(session, source, dims, since=parse_date(since, "--since"),
                  until=parse_date(until, "--until"), places=places, languages=languages)
    return suppress(table, min_cell)



# ---------------------------------------------------------------------------------------
# helpline figures

FORMATS = ("table", "csv", "json")


def add_parser(commands) -> None:
    """Adds ``figures`` to the ``helpline`` sub-commands."""
    parser = commands.add_parser(
        "figures", help="anonymous aggregate figures (cases, subscribers, campaign messages)")
    parser.add_argument("source", nargs="?", choices=list(SOURCES),
                        help="what to count; none: a summary of all three")
    parser.add_argument("--by", help="one or two dimensions, comma-separated, e.g. area,level")
    parser.add_argument("--since", help="first day counted, YYYY-MM-DD (UTC)")
    parser.add_argument("--until", help="last day counted, YYYY-MM-DD (UTC)")
    parser.add_argument("--format", choices=FORMATS, default="table",
                        help="table (default), csv (with HXL hashtags) or json")
    parser.add_argument("--min-cell", type=int,
                        help="hide counts below this (default and lowest: the deployment's "
                             "figures.min_cell)")
    parser.add_argument("--output", "-o", help="write to this file instead of the terminal")


def figures_command(settings, args) -> int:
    """Runs ``helpline figures``; returns the exit status (2 on bad input)."""
    import sys

    from bot.deployment import DeploymentError, load_deployment
    from bot.services.places import load_gazetteer
    from bot.storage import SchemaError, make_engine, require_current, session_factory

    try:
        deployment = load_deployment(settings.deployment_file)
    except DeploymentError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    min_cell = deployment.figures_min_cell if args.min_cell is None else args.min_cell
    if min_cell < deployment.figures_min_cell:
        print(f"--min-cell: the deployment shows no count below {deployment.figures_min_cell} "
              f"(figures.min_cell); --min-cell can raise that, not lower it", file=sys.stderr)
        return 2
    if args.source is None and (args.by or args.format != "table"):
        print("name what to count (cases, subscribers or messages) to use --by or --format",
              file=sys.stderr)
        return 2
    engine = make_engine(settings.database_url)
    try:
        require_current(engine)
        with session_factory(engine)() as session:
            places = load_gazetteer(session).places
            tables = [figures(session, name, args.by if args.source else None,
                              since=args.since, until=args.until, min_cell=min_cell,
                              places=places, languages=deployment.languages)
                      for name in ([args.source] if args.source else list(SOURCES))]
    except (FiguresError, SchemaError) as exc:
        print(str(exc), file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    out = open(args.output, "w", encoding="utf-8", newline="") if args.output else sys.stdout
    try:
        for i, table in enumerate(tables):
            if i:
                out.write("\n")
            write(table, args.format, out)
    finally:
        if args.output:
            out.close()
            print(f"{args.output}: written", file=sys.stderr)
    return 0
