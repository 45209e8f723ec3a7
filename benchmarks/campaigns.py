"""Campaign dispatcher: messages per second, CPU and memory, against the fake providers.

    .venv/bin/python -m benchmarks.campaigns [--subscribers 100000] [--sms-fraction 0.5]
        [--sms-rate R] [--telegram-rate R] [--unlimited] [--max-in-flight N] [--postgres]

Generates N subscribers (fictional +999 numbers and Telegram chat ids from 7,000,000,000 up,
addresses encrypted as the subscribers table keeps them) in a fresh SQLite database in a
temporary folder (or a temporary PostgreSQL database with --postgres, at
HELPLINE_TEST_POSTGRES, default postgresql://postgres@127.0.0.1:5432/postgres), queues one
campaign to all of them, and runs the dispatcher as its own process
(``python -m bot.campaigns.dispatch``) against the fake Twilio and Telegram APIs served from
this process (aiohttp, one thread each). It reports the wall time, messages per second
overall and per provider (measured at the fakes, first to last delivery), the dispatcher's CPU
time and peak memory (``os.wait4``'s rusage of the child: user + system seconds, max RSS), and
the fakes' CPU (to tell whether they, not the dispatcher, were the limit). It checks that every
subscriber received exactly one message.

The rates default to the deployment file's (deploy/sample.yml: Twilio 1/s, Telegram 30/s):
the achieved rate then sits at the limit. --sms-rate / --telegram-rate raise them (a number
per second) and --unlimited lifts both, to show how fast the dispatcher itself can go.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from bot.settings import PROJECT_ROOT
from tests.utils.campaigns import CampaignDb, credentials_env, write_credentials, write_secrets
from tests.utils.fake_telegram import FakeTelegram
from tests.utils.fake_twilio import FakeTwilio

SAMPLE_DEPLOYMENT = PROJECT_ROOT / "deploy" / "sample.yml"


def postgres_database() -> tuple[str, callable]:
    import sqlalchemy as sa

    admin_url = os.environ.get("HELPLINE_TEST_POSTGRES",
                               "postgresql://postgres@127.0.0.1:5432/postgres")
    name = f"helpline_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as connection:
            connection.execute(sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                       "WHERE datname = :name"), {"name": name})
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()

    return admin_url.rsplit("/", 1)[0] + "/" + name, drop


def rate_text(value) -> str:
    return "unlimited" if value in (None, "unlimited") else f"{float(value):g}/s"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--subscribers", type=int, default=100_000)
    p.add_argument("--sms-fraction", type=float, default=0.5,
                   help="share of subscribers on SMS (the rest on Telegram)")
    p.add_argument("--sms-rate", help="SMS per second (default: the deployment's)")
    p.add_argument("--telegram-rate", help="Telegram messages per second (default: the deployment's)")
    p.add_argument("--unlimited", action="store_true", help="no rate limit on either provider")
    p.add_argument("--max-in-flight", type=int, default=200)
    p.add_argument("--postgres", action="store_true")
    p.add_argument("--channel-index", action="store_true",
                   help="add an index on outbox (state, channel, next_attempt_at) first (a "
                        "claim per provider then reads no other provider's rows)")
    p.add_argument("--interleave", action="store_true",
                   help="subscribers' ids alternate SMS / Telegram (default: all SMS first)")
    p.add_argument("--profile", metavar="FILE", help="run the dispatcher under cProfile, stats to FILE")
    args = p.parse_args(argv)
    if args.unlimited:
        args.sms_rate = args.telegram_rate = "unlimited"
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)

    from bot.deployment import load_deployment

    defaults = load_deployment(SAMPLE_DEPLOYMENT).campaigns
    sms_rate = args.sms_rate or defaults.twilio_messages_per_second
    telegram_rate = args.telegram_rate or defaults.telegram_messages_per_second
    sms_count = round(args.subscribers * args.sms_fraction)
    telegram_count = args.subscribers - sms_count

    with tempfile.TemporaryDirectory(prefix="helpline-campaign-bench-") as folder:
        tmp = Path(folder)
        url, drop = (postgres_database() if args.postgres
                     else (f"sqlite:///{tmp}/bench.db", lambda: None))
        db = CampaignDb(url)
        twilio = FakeTwilio(keep_requests=False).start()
        telegram = FakeTelegram(keep_requests=False).start()
        try:
            started = time.perf_counter()
            if args.interleave:
                people = []
                for block in range(0, max(sms_count, telegram_count), 1000):
                    people += db.subscribe(max(0, min(1000, sms_count - block)), "sms", start=block)
                    people += db.subscribe(max(0, min(1000, telegram_count - block)), "telegram",
                                           start=sms_count + block)
            else:
                people = (db.subscribe(sms_count, "sms")
                          + db.subscribe(telegram_count, "telegram", start=sms_count))
            if args.channel_index:
                import sqlalchemy as sa

                with db.engine.begin() as connection:
                    connection.execute(sa.text("CREATE INDEX ix_outbox_due_channel ON outbox "
                                               "(state, channel, next_attempt_at)"))
            generated = time.perf_counter() - started
            now = dt.datetime.now(dt.timezone.utc)
            started = time.perf_counter()
            db.queue(db.campaign("benchmark", queued_at=now), people, due=now)
            queued = time.perf_counter() - started
            print(f"{args.subscribers:,} subscribers ({sms_count:,} SMS, {telegram_count:,} "
                  f"Telegram) on {'PostgreSQL' if args.postgres else 'SQLite'}: generated in "
                  f"{generated:.1f} s, queued in {queued:.1f} s")
            print(f"limits: SMS {rate_text(sms_rate)}, Telegram {rate_text(telegram_rate)}, "
                  f"{args.max_in_flight} requests in flight per provider at most")

            write_secrets(tmp / "secrets.json", db.route_key)
            write_credentials(tmp / "credentials.yml", twilio, telegram)
            env = dict(os.environ, HELPLINE_DATABASE_URL=url,
                       HELPLINE_SECRETS_FILE=str(tmp / "secrets.json"),
                       HELPLINE_DEPLOYMENT=str(SAMPLE_DEPLOYMENT), HELPLINE_LOG_LEVEL="DEBUG",
                       **credentials_env(twilio, telegram))
            profile = ["-m", "cProfile", "-o", args.profile] if args.profile else []
            command = [sys.executable, *profile, "-m", "bot.campaigns.dispatch", "--campaign", "benchmark",
                       "--credentials", str(tmp / "credentials.yml"), "--json",
                       "--max-in-flight", str(args.max_in_flight)]
            if args.sms_rate:
                command += ["--sms-rate", str(args.sms_rate)]
            if args.telegram_rate:
                command += ["--telegram-rate", str(args.telegram_rate)]
            log = (tmp / "dispatch.log").open("w")
            fakes_before = resource.getrusage(resource.RUSAGE_SELF)
            started = time.perf_counter()
            process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE,
                                       stderr=log, text=True)
            output: list[str] = []
            reader = threading.Thread(target=lambda: output.extend(process.stdout), daemon=True)
            reader.start()
            next_report = time.perf_counter() + 10
            while True:
                pid, status, usage = os.wait4(process.pid, os.WNOHANG)
                if pid:
                    break
                if time.perf_counter() >= next_report:
                    done = twilio.totals()[0] + telegram.totals()[0]
                    print(f"  ... {done:,} delivered after {time.perf_counter() - started:.0f} s",
                          flush=True)
                    next_report += 10
                time.sleep(0.05)
            wall = time.perf_counter() - started
            process.returncode = os.waitstatus_to_exitcode(status)
            fakes_after = resource.getrusage(resource.RUSAGE_SELF)
            reader.join(5)
            log.close()
            figures = next((json.loads(line) for line in reversed(output) if line.startswith("{")), {})
            if process.returncode != 0:
                print((tmp / "dispatch.log").read_text()[-3000:], file=sys.stderr)
                print(f"the dispatcher exited {process.returncode}", file=sys.stderr)
                return 1

            sms_done, sms_repeats, _ = twilio.totals()
            telegram_done, telegram_repeats, _ = telegram.totals()
            most = max(list(twilio.deliveries.values()) + list(telegram.deliveries.values()) + [0])
            every_once = (sms_done + telegram_done == args.subscribers and most == 1
                          and len(twilio.deliveries) == sms_count
                          and len(telegram.deliveries) == telegram_count)
            cpu = usage.ru_utime + usage.ru_stime
            fakes_cpu = ((fakes_after.ru_utime + fakes_after.ru_stime)
                         - (fakes_before.ru_utime + fakes_before.ru_stime))
            sent = figures.get("sent", 0)
            print(f"wall time (process start to exit): {wall:.1f} s; the dispatcher's own run: "
                  f"{figures.get('elapsed_seconds', 0):.1f} s")
            print(f"messages per second: {sent / wall:.0f} over the wall time, "
                  f"{figures.get('messages_per_second', 0):.0f} over the run")
            for name, fake, count, limit in (("SMS", twilio, sms_done, sms_rate),
                                             ("Telegram", telegram, telegram_done, telegram_rate)):
                if count > 1 and fake.first_delivery_at is not None:
                    span = fake.last_delivery_at - fake.first_delivery_at
                    achieved = (count - 1) / span if span > 0 else float("inf")
                    versus = ""
                    if limit not in (None, "unlimited"):
                        versus = f" = {achieved / float(limit):.1%} of the {rate_text(limit)} limit"
                    print(f"  {name}: {count:,} delivered at {achieved:.1f}/s{versus}")
            print(f"dispatcher CPU: {cpu:.1f} s (user {usage.ru_utime:.1f}, system "
                  f"{usage.ru_stime:.1f}) = {cpu / max(wall, 1e-9):.0%} of one core, "
                  f"{1000 * cpu / max(sent, 1):.2f} ms per message")
            print(f"dispatcher peak memory (max RSS): {usage.ru_maxrss / 1024:.0f} MiB")
            print(f"fake providers' CPU (this process): {fakes_cpu:.1f} s = "
                  f"{fakes_cpu / max(wall, 1e-9):.0%} of one core")
            database = [line.split("database work: ", 1)[1] for line in
                        (tmp / "dispatch.log").read_text().splitlines() if "database work: " in line]
            if database:
                print(f"dispatcher's database work (its one thread): {database[-1]}")
            print(f"every subscriber received exactly one message: {'yes' if every_once else 'NO'} "
                  f"(repeats answered from a key: {sms_repeats + telegram_repeats})")
            return 0 if every_once else 1
        finally:
            twilio.stop()
            telegram.stop()
            db.close()
            drop()


if __name__ == "__main__":
    sys.exit(main())
