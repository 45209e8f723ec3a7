"""Aggregate figures (``helpline figures``): seconds per table on generated data.

    .venv/bin/python -m benchmarks.figures [--cases 20000] [--subscribers 100000]
        [--messages 300000] [--postgres]

Fills a fresh SQLite database in a temporary folder (or a temporary PostgreSQL database with
--postgres, see benchmarks/campaigns.py) with fictional rows: hand-off cases spread over twelve
months, the four channels, the five levels, up to three needs and the sample gazetteer's
places; subscribers; campaign messages of ten campaigns in every state. Then it times
``bot.figures.figures`` (count, then hide) for each source by its default and by two
dimensions, best of three runs, and prints one line per table with the number of rows counted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

from bot.campaigns.models import OUTBOX_STATES, Campaign, OutboxMessage, Subscriber
from bot.cases.models import LEVELS, OUTCOMES, Case
from bot.figures import figures
from bot.services.places import Gazetteer, read_places
from bot.settings import PROJECT_ROOT
from bot.storage import make_engine, session_factory, upgrade
from bot.triage import NEED_CATEGORIES

PLACES_FILE = PROJECT_ROOT / "data" / "gazetteer" / "places.csv"
UTC = dt.timezone.utc
START = dt.datetime(2025, 12, 1, tzinfo=UTC)
CHUNK = 10_000

TABLES = [
    ("cases", None), ("cases", "area,level"), ("cases", "month,need"),
    ("subscribers", None), ("subscribers", "area,language"),
    ("messages", None), ("messages", "month,channel"),
]


def moment(rng: random.Random) -> dt.datetime:
    return START + dt.timedelta(seconds=rng.randrange(365 * 86400))


def fill(engine, places: list[str], cases: int, subscribers: int, messages: int) -> None:
    rng = random.Random(7)
    with engine.begin() as connection:
        for start in range(0, cases, CHUNK):
            rows = []
            for i in range(start, min(cases, start + CHUNK)):
                status = rng.choice(("waiting", "active", "closed", "closed"))
                rows.append({
                    "conversation_id": f"c{i:032x}", "channel": rng.choice(
                        ("sms", "telegram", "webchat", "helpline")),
                    "language": rng.choice(("en", "fr", "ar", "es")),
                    "triage_level": rng.choice(LEVELS), "urgency": 1,
                    "needs": ",".join(sorted(rng.sample(NEED_CATEGORIES, rng.randint(0, 3)))),
                    "area": rng.choice(places + [None]), "status": status,
                    "outcome": rng.choice(OUTCOMES) if status == "closed" else None,
                    "created_at": moment(rng)})
            connection.execute(sa.insert(Case.__table__), rows)
        for start in range(0, subscribers, CHUNK):
            connection.execute(sa.insert(Subscriber.__table__), [{
                "conversation_id": f"s{i:032x}", "channel": rng.choice(("sms", "telegram")),
                "language": rng.choice(("en", "fr", "ar", "es")),
                "area": rng.choice(places + [None]), "consented_at": moment(rng),
                "address": b"not-a-real-token"} for i in range(start, min(subscribers, start + CHUNK))])
        campaign_ids = [connection.execute(sa.insert(Campaign.__table__).values(
            name=f"campaign-{n:02d}", definition="{}", file_hash="0" * 64,
            queued_at=moment(rng))).inserted_primary_key[0] for n in range(10)]
        for start in range(0, messages, CHUNK):
            connection.execute(sa.insert(OutboxMessage.__table__), [{
                "campaign_id": rng.choice(campaign_ids), "subscriber_id": None,
                "idempotency_key": f"{i:064x}", "channel": rng.choice(("sms", "telegram")),
                "language": rng.choice(("en", "fr", "ar", "es")),
                "state": rng.choice(OUTBOX_STATES), "attempts": 1,
                "next_attempt_at": START} for i in range(start, min(messages, start + CHUNK))])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cases", type=int, default=20_000)
    p.add_argument("--subscribers", type=int, default=100_000)
    p.add_argument("--messages", type=int, default=300_000)
    p.add_argument("--postgres", action="store_true")
    args = p.parse_args(argv)

    gazetteer = Gazetteer()
    for place in read_places(PLACES_FILE):
        gazetteer.add(place)
    with tempfile.TemporaryDirectory(prefix="helpline-figures-bench-") as folder:
        if args.postgres:
            from benchmarks.campaigns import postgres_database

            url, drop = postgres_database()
        else:
            url, drop = f"sqlite:///{Path(folder)}/bench.db", (lambda: None)
        engine = make_engine(url)
        try:
            upgrade(engine)
            started = time.perf_counter()
            fill(engine, sorted(gazetteer.places), args.cases, args.subscribers, args.messages)
            print(f"{engine.dialect.name}: {args.cases:,} cases, {args.subscribers:,} subscribers, "
                  f"{args.messages:,} campaign messages written in "
                  f"{time.perf_counter() - started:.1f} s")
            sessions = session_factory(engine)
            for source, by in TABLES:
                best = float("inf")
                for _ in range(3):
                    with sessions() as session:
                        started = time.perf_counter()
                        table = figures(session, source, by, min_cell=5, places=gazetteer.places)
                        best = min(best, time.perf_counter() - started)
                print(f"  {source:11} by {','.join(table.by):16} {len(table.rows):3} x "
                      f"{len(table.cols):2} cells, {table.total:8,} counted, "
                      f"{len(table.hidden):3} hidden: {best * 1000:8.1f} ms")
        finally:
            engine.dispose()
            drop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
