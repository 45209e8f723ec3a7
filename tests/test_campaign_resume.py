"""Killing the dispatcher half-way and starting it again sends each remaining message exactly once.

The dispatcher runs as its own process (``python -m bot.campaigns.dispatch``), with its
settings from the environment and the provider credentials from a credentials file (``${VARS}``
expanded), against the fake Twilio and Telegram APIs, which answer slowly (0.3 s) so that
requests are under way at any moment. It is killed (SIGKILL) while requests are in flight,
then started again: every subscriber has received exactly one message at the fakes (the
messages the first process had sent but not recorded are sent again with their idempotency
key, and the fakes answer those from the key: they are counted and reported, not delivered
twice), and the whole outbox is ``sent``. With SIGTERM instead, the process finishes the
requests under way, records them, gives the rest back and exits 3; nothing is ambiguous, so
the restart repeats nothing. Also: the command's configuration errors (exit 2, saying what).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.settings import PROJECT_ROOT
from tests.conftest import SAMPLE_DEPLOYMENT
from tests.utils.campaigns import TEXTS, CampaignDb, write_credentials, write_secrets
from tests.utils.fake_telegram import FakeTelegram
from tests.utils.fake_twilio import FakeTwilio

pytestmark = pytest.mark.slow
PER_CHANNEL = 150
DELAY = 0.3  # each fake answer takes this long: ~15 requests in flight per provider
RATE = "50"  # messages per second per provider: 3 s for 150


@pytest.fixture
def fakes():
    twilio = FakeTwilio(delay_seconds=DELAY).start()
    telegram = FakeTelegram(delay_seconds=DELAY).start()
    yield twilio, telegram
    twilio.stop()
    telegram.stop()


class World:
    """A database with a queued campaign, the fakes, and how to start the dispatcher."""

    def __init__(self, url: str, tmp: Path, twilio: FakeTwilio, telegram: FakeTelegram) -> None:
        self.db = CampaignDb(url)
        self.twilio, self.telegram = twilio, telegram
        self.people = (self.db.subscribe(PER_CHANNEL, "sms")
                       + self.db.subscribe(PER_CHANNEL, "telegram", language="fr"))
        self.campaign = self.db.campaign("resume", queued_at=_now())
        self.total = self.db.queue(self.campaign, self.people, due=_now())
        secrets, credentials = tmp / "secrets.json", tmp / "credentials.yml"
        write_secrets(secrets, self.db.route_key)
        write_credentials(credentials, twilio, telegram)
        self.env = dict(os.environ, HELPLINE_DATABASE_URL=url, HELPLINE_SECRETS_FILE=str(secrets),
                        HELPLINE_DEPLOYMENT=str(SAMPLE_DEPLOYMENT), HELPLINE_LOG_LEVEL="DEBUG",
                        TEST_TWILIO_SID=twilio.account_sid, TEST_TWILIO_TOKEN=twilio.auth_token,
                        TEST_TELEGRAM_TOKEN=telegram.token)
        self.args = ["--campaign", "resume", "--credentials", str(credentials), "--json",
                     "--lease-seconds", "3", "--sms-rate", RATE, "--telegram-rate", RATE]
        self.logs: list[str] = []

    def start(self, log: Path) -> subprocess.Popen:
        handle = log.open("w")
        self.logs.append(str(log))
        return subprocess.Popen([sys.executable, "-m", "bot.campaigns.dispatch", *self.args],
                                cwd=PROJECT_ROOT, env=self.env, stdout=subprocess.PIPE,
                                stderr=handle, text=True)

    def delivered(self) -> int:
        return self.twilio.totals()[0] + self.telegram.totals()[0]

    def in_flight(self) -> int:
        return self.twilio.in_flight + self.telegram.in_flight

    def repeats(self) -> int:
        return self.twilio.repeats + self.telegram.repeats

    def wait_for_deliveries(self, count: int, process: subprocess.Popen, seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        while self.delivered() < count:
            assert process.poll() is None, f"the dispatcher ended early: {self.log_text()}"
            assert time.monotonic() < deadline, f"only {self.delivered()} delivered: {self.log_text()}"
            time.sleep(0.02)

    def each_received_once(self) -> None:
        counts = [(self.twilio if p.channel == "sms" else self.telegram).delivered_to(p.address)
                  for p in self.people]
        assert sorted(set(counts)) == [1], {n: counts.count(n) for n in set(counts)}
        assert self.delivered() == self.total

    def log_text(self) -> str:
        return "\n".join(Path(log).read_text() for log in self.logs)

    def logs_are_clean(self) -> None:
        text = self.log_text()
        assert "dispatch:" in text  # the processes did log (at DEBUG)
        secrets = [p.address for p in self.people] + [p.address.lstrip("+") for p in self.people]
        secrets += [p.conversation_id for p in self.people]
        secrets += [w for t in (TEXTS["en"], TEXTS["fr"]) for w in t.split() if len(w) > 5]
        secrets += [self.twilio.auth_token, self.telegram.token, self.telegram.token.split(":")[1]]
        assert [s for s in secrets if s in text] == []


def _now():
    import datetime as dt

    return dt.datetime.now(dt.timezone.utc)


def finished(process: subprocess.Popen, seconds: float = 60) -> tuple[int, dict]:
    out, _ = process.communicate(timeout=seconds)
    lines = [line for line in out.splitlines() if line.startswith("{")]
    return process.returncode, json.loads(lines[-1]) if lines else {}


@pytest.fixture(params=["sqlite", "postgresql"])
def world(request, tmp_path, fakes):
    url = (f"sqlite:///{tmp_path}/campaigns.db" if request.param == "sqlite"
           else request.getfixturevalue("postgres_url"))
    made = World(url, tmp_path, *fakes)
    yield made
    made.db.close()


def test_killed_half_way_and_started_again_each_message_goes_exactly_once(world, tmp_path):
    first = world.start(tmp_path / "first.log")
    world.wait_for_deliveries(world.total * 2 // 5, first)
    in_flight = world.in_flight()
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    delivered_at_kill = world.delivered()
    recorded_at_kill = world.db.states(world.campaign).get("sent", 0)
    assert in_flight > 0, "the kill should come while requests are under way"
    assert world.db.states(world.campaign).get("sending", 0) > 0  # left for the lease to expire

    second = world.start(tmp_path / "second.log")
    code, figures = finished(second)
    assert code == 0, world.log_text()
    world.each_received_once()
    assert world.db.states(world.campaign) == {"sent": world.total}
    repeats = world.repeats()
    print(f"\nkilled with {in_flight} requests in flight, {delivered_at_kill} of {world.total} "
          f"delivered and {recorded_at_kill} recorded; the restart took back "
          f"{figures['taken_back']} messages and sent {figures['sent']}, of which {repeats} were "
          f"repeats answered from their idempotency key (delivered once)")
    assert repeats >= delivered_at_kill - recorded_at_kill > 0
    assert figures["taken_back"] > 0
    world.logs_are_clean()


@pytest.mark.parametrize("world", ["sqlite"], indirect=True)
def test_sigterm_finishes_what_is_under_way_and_gives_the_rest_back(world, tmp_path):
    first = world.start(tmp_path / "first.log")
    world.wait_for_deliveries(world.total * 3 // 10, first)
    in_flight = world.in_flight()
    first.send_signal(signal.SIGTERM)
    code, figures = finished(first, 30)
    assert code == 3, world.log_text()  # stopped before done
    assert in_flight > 0
    states = world.db.states(world.campaign)
    assert "sending" not in states  # nothing left claimed
    assert states["sent"] == world.delivered() == figures["sent"]  # every delivery recorded
    assert figures["released"] > 0 and states["pending"] == world.total - states["sent"]

    second = world.start(tmp_path / "second.log")
    code, figures = finished(second)
    assert code == 0, world.log_text()
    world.each_received_once()
    assert world.repeats() == 0 and figures["taken_back"] == 0
    assert world.db.states(world.campaign) == {"sent": world.total}
    world.logs_are_clean()


# -- the command's configuration ---------------------------------------------------------------

@pytest.fixture
def command(tmp_path, monkeypatch, fakes):
    """The environment of ``python -m bot.campaigns.dispatch`` for an in-process ``main``."""
    twilio, telegram = fakes
    db = CampaignDb(f"sqlite:///{tmp_path}/command.db")
    write_secrets(tmp_path / "secrets.json", db.route_key)
    write_credentials(tmp_path / "credentials.yml", twilio, telegram)
    for name, value in (("HELPLINE_DATABASE_URL", db.url),
                        ("HELPLINE_SECRETS_FILE", str(tmp_path / "secrets.json")),
                        ("HELPLINE_DEPLOYMENT", str(SAMPLE_DEPLOYMENT)),
                        ("TEST_TWILIO_SID", twilio.account_sid),
                        ("TEST_TWILIO_TOKEN", twilio.auth_token),
                        ("TEST_TELEGRAM_TOKEN", telegram.token)):
        monkeypatch.setenv(name, value)
    db.credentials = tmp_path / "credentials.yml"
    yield db
    db.close()


def run_main(*args: str) -> int:
    from bot.campaigns.dispatch import main

    return main(list(args))


def test_a_campaign_not_queued_is_a_configuration_error(command, capsys):
    assert run_main("--campaign", "nope", "--credentials", str(command.credentials)) == 2
    assert "no campaign named 'nope'" in capsys.readouterr().err


def test_waiting_sms_without_twilio_credentials_is_a_configuration_error(command, capsys, tmp_path):
    command.queue(command.campaign("sms-only"), command.subscribe(2, "sms"))
    bare = tmp_path / "bare.yml"
    bare.write_text("channels.rest.HelplineRestInput: {}\n")
    assert run_main("--credentials", str(bare)) == 2
    assert "has no channels.sms.SmsInput section" in capsys.readouterr().err


def test_a_malformed_bot_token_is_a_configuration_error(command, capsys, monkeypatch):
    command.queue(command.campaign("telegram-only"), command.subscribe(2, "telegram"))
    monkeypatch.setenv("TEST_TELEGRAM_TOKEN", "not a token")
    assert run_main("--credentials", str(command.credentials)) == 2
    err = capsys.readouterr().err
    assert "'token' must be the bot token" in err and "not a token" not in err


def test_an_unset_variable_in_the_credentials_is_a_configuration_error(command, capsys, monkeypatch):
    command.queue(command.campaign("sms-again"), command.subscribe(1, "sms"))
    monkeypatch.delenv("TEST_TWILIO_TOKEN")
    assert run_main("--credentials", str(command.credentials)) == 2
    assert "TEST_TWILIO_TOKEN" in capsys.readouterr().err


def test_a_database_not_migrated_is_a_configuration_error(command, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("HELPLINE_DATABASE_URL", f"sqlite:///{tmp_path}/empty.db")
    assert run_main("--credentials", str(command.credentials)) == 2
    assert "helpline db upgrade" in capsys.readouterr().err


def test_nothing_to_send_is_done_at_once(command, capsys):
    assert run_main("--credentials", str(command.credentials), "--json") == 0
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert figures["done"] is True and figures["sent"] == 0 and figures["exit"] == 0
