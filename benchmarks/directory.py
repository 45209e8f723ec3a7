"""Services directory: import throughput, and lookup and place-matching latency.

    .venv/bin/python -m benchmarks.directory [--services 50000] [--queries 2000]
                                             [--database-url URL]

Generates a directory of fictional services clustered around crisis areas (plus 10 % spread
over the world), writes it as HXL-tagged CSV, imports it into a fresh database (SQLite in a
temporary folder unless --database-url names an empty one), loads it into memory, and times
nearest-service searches with random needs, and gazetteer matches of typed (misspelt) names.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import tempfile
import time
from pathlib import Path

from bot.services.hxl_io import COLUMNS, import_file
from bot.services.lookup import Directory, Need
from bot.services.places import Gazetteer, read_places
from bot.settings import PROJECT_ROOT
from bot.storage import make_engine, session_factory, upgrade

CENTRES = [(11.83, 13.15), (12.67, 13.6), (9.2, 12.5), (32.89, 13.19), (32.38, 15.09),
           (27.04, 14.43), (50.45, 30.52), (49.84, 24.03), (46.48, 30.72), (15.5, 32.56),
           (13.45, 22.45), (12.1, 15.04), (13.51, 2.11), (4.71, -74.07), (7.89, -72.5)]
CATEGORIES = ["shelter", "medical", "mental_health", "legal_aid", "documentation",
              "child_protection", "gbv_support", "food_and_basic_needs", "livelihoods",
              "family_tracing", "anti_trafficking", "emergency"]
HOURS = ["24/7", "mon-fri 08:00-16:00", "sun-thu 09:00-15:00", "mon-sat 08:00-17:00; sun 10:00-12:00", ""]


def generate(path: Path, count: int, rng: random.Random) -> None:
    import csv

    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow([tag for tag, _ in COLUMNS.values()])
        for i in range(count):
            if rng.random() < 0.1:
                lat, lon = rng.uniform(-55, 70), rng.uniform(-180, 180)
            else:
                c = rng.choice(CENTRES)
                lat, lon = c[0] + rng.gauss(0, 0.7), c[1] + rng.gauss(0, 0.7)
            served = rng.choice(["women;men;children", "women;children", "children", "women;men"])
            row = {"org_name": f"Generated Org {i % 700} (fictional)", "org_code": f"gen-{i % 700}",
                   "code": f"GEN-{i:06d}", "name": f"Generated service {i}",
                   "categories": ";".join(rng.sample(CATEGORIES, rng.randint(1, 3))),
                   "description": "", "country": "XX", "admin1_name": "", "admin1_pcode": "",
                   "admin2_name": "", "admin2_pcode": "", "place_name": f"Place {i % 997}",
                   "lat": f"{lat:.5f}", "lon": f"{lon:.5f}", "phone": "+999 000 0000",
                   "access": rng.choice(["walk_in", "phone;hotline", "walk_in;phone"]),
                   "languages": rng.choice(["en;fr", "ar;en", "uk;ru;en", "es", "ha;kr;en"]),
                   "served": served, "age_min": "", "age_max": "",
                   "hours": rng.choice(HOURS), "last_verified": "2026-10-01"}
            writer.writerow([row[key] for key in COLUMNS])


def percentiles(samples: list[float]) -> str:
    samples = sorted(samples)
    p = lambda q: samples[min(len(samples) - 1, int(q * len(samples)))] * 1000  # noqa: E731
    return f"p50 {p(0.50):.3f} ms, p95 {p(0.95):.3f} ms, max {samples[-1] * 1000:.3f} ms"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--services", type=int, default=50_000)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    rng = random.Random(7)
    folder = Path(tempfile.mkdtemp(prefix="helpline-directory-"))
    source = folder / "generated.csv"
    generate(source, args.services, rng)

    engine = make_engine(args.database_url or f"sqlite:///{folder}/directory.db")
    upgrade(engine)
    sessions = session_factory(engine)
    started = time.perf_counter()
    with sessions() as session:
        report = import_file(session, source)
    seconds = time.perf_counter() - started
    print(f"import: {report.summary()} in {seconds:.1f} s = {report.rows / seconds:,.0f} rows/s")
    started = time.perf_counter()
    with sessions() as session:
        report = import_file(session, source)
    seconds = time.perf_counter() - started
    print(f"re-import (nothing changed): {report.rows / seconds:,.0f} rows/s")

    started = time.perf_counter()
    with sessions() as session:
        directory = Directory.load(session)
    print(f"load into memory: {len(directory):,} services in {time.perf_counter() - started:.1f} s")

    timings = []
    moment = dt.datetime(2026, 11, 25, 10, tzinfo=dt.timezone.utc)
    for _ in range(args.queries):
        c = rng.choice(CENTRES)
        need = Need(category=rng.choice([None, *CATEGORIES]),
                    group=rng.choice([None, "women", "men", "children"]),
                    language=rng.choice([None, "en", "ar", "fr"]),
                    open_at=moment if rng.random() < 0.3 else None)
        lat, lon = c[0] + rng.gauss(0, 1), c[1] + rng.gauss(0, 1)
        start = time.perf_counter()
        directory.nearest(lat, lon, need, limit=3)
        timings.append(time.perf_counter() - start)
    print(f"nearest 3 with a random need ({args.queries} queries): {percentiles(timings)}")

    gazetteer = Gazetteer()
    for place in read_places(PROJECT_ROOT / "data" / "gazetteer" / "places.csv"):
        gazetteer.add(place)
    typed = ["maidugury", "I am in Gwoza camp", "طرابلس", "misurata", "Kiev", "Одесса", "bengasi",
             "help me please", "Tchernivtsi", "near zawia"]
    timings = []
    for _ in range(args.queries):
        text = rng.choice(typed)
        start = time.perf_counter()
        gazetteer.match(text)
        timings.append(time.perf_counter() - start)
    print(f"place match ({len(gazetteer)} places): {percentiles(timings)}")

    # One whole search turn as the action does it: match the typed place, find, put in words.
    from bot.catalog import load_catalog
    from bot.services.answer import next_step
    from bot.services.categories import load_categories
    from bot.services.reply import Wording, messages_for
    from bot.services.runtime import Loaded

    loaded = Loaded(directory, gazetteer, 1)
    wordings = [Wording(load_catalog(), load_categories(), lang) for lang in ("en", "fr", "ar", "es")]
    timings = []
    for _ in range(args.queries):
        text, wording = rng.choice(typed), rng.choice(wordings)
        start = time.perf_counter()
        step = next_step(loaded, need=rng.choice(["any", *CATEGORIES]), place_text=text)
        if step.kind not in ("unknown_place", "which_place"):
            messages_for(step, wording, moment)
        timings.append(time.perf_counter() - start)
    print(f"a search turn (place match + nearest 3 + wording): {percentiles(timings)}")
    engine.dispose()


if __name__ == "__main__":
    main()
