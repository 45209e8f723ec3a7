"""A provider storm with real processes: Twilio and Telegram fail for a minute, nothing is lost.

Issue 17 §5: "the fake Twilio and Telegram answer 5xx/429/timeouts for a minute during live
conversations and a campaign: replies and campaign messages arrive once the storm ends, none
twice, and the operator sees what was delayed." Twilio's and Telegram's documentation both
name 429 and 5xx as answers to try again later; a timeout is a provider that does not answer.

A real Rasa server (trained model, real action server) with the SMS and Telegram channels on
a migrated database, and the campaign dispatcher as its own process, while both fake APIs
answer every request with 503, 429, 500 or silence past the client's timeout, in turn, for 60
seconds. Two people write during the storm; afterwards each gets every answer exactly once
and in order, the same answers as two people who write the same after the storm; every
subscriber gets the campaign once; the ledger the console reads says which replies were late.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.delayed import DelayedReplies
from bot.settings import PROJECT_ROOT
from tests.utils import campaigns as campaign_utils
from tests.utils.assistant import free_port, start_action_server, start_rasa_server, stop
from tests.utils.channel_clients import (send_sms, send_telegram, telegram_env, telegram_text,
                                         wait_until, write_credentials)
from tests.utils.fake_telegram import FakeTelegram
from tests.utils.fake_twilio import FakeTwilio

pytestmark = [pytest.mark.model, pytest.mark.slow]
STORM_SECONDS = 60
STORM = (503, 429, 500, "timeout")  # "timeout": no answer within the client's 10 s
SCRIPT = ["hello", "1", "1"]  # first contact; yes, safe to write; English
IN_STORM = ("+9995550161", 99_000_161)  # fictional (+999 is not assigned)
AFTER = ("+9995550162", 99_000_162)
SUBSCRIBERS = 10  # per channel


def _now():
    import datetime as dt

    return dt.datetime.now(dt.timezone.utc)


@pytest.fixture(scope="module")
def world(model_path, tmp_path_factory):
    folder = tmp_path_factory.mktemp("storm")
    twilio = FakeTwilio(slow_seconds=12).start()
    telegram = FakeTelegram(slow_seconds=12).start()
    url = f"sqlite:///{folder / 'helpline.db'}"
    db = campaign_utils.CampaignDb(url)  # migrated, with the ledger of delayed replies
    people = (db.subscribe(SUBSCRIBERS, "sms") + db.subscribe(SUBSCRIBERS, "telegram"))
    campaign = db.campaign("storm", queued_at=_now())
    total = db.queue(campaign, people, due=_now())
    secrets = folder / "secrets.json"
    campaign_utils.write_secrets(secrets, db.route_key)
    deployment = campaign_utils.any_hour_deployment(folder)
    env = {"HELPLINE_DATABASE_URL": url, "HELPLINE_SECRETS_FILE": str(secrets),
           "HELPLINE_DEPLOYMENT": str(deployment), **telegram_env(telegram)}
    action_port, rasa_port = free_port(), free_port()
    credentials = write_credentials(folder / "credentials.yml", rasa_port, twilio=twilio,
                                    telegram=telegram)
    actions = start_action_server(action_port, folder / "actions.log", **env)
    try:
        rasa = start_rasa_server(model_path, rasa_port, f"http://127.0.0.1:{action_port}/webhook",
                                 folder / "rasa.log", credentials=str(credentials), **env)
    except Exception:
        stop(actions)
        raise
    dispatch_credentials = folder / "dispatch-credentials.yml"
    campaign_utils.write_credentials(dispatch_credentials, twilio, telegram)
    dispatch_env = {**os.environ, **env, **campaign_utils.credentials_env(twilio, telegram)}
    yield {"rasa_port": rasa_port, "twilio": twilio, "telegram": telegram, "db": db,
           "people": people, "total": total, "folder": folder,
           "dispatch": [sys.executable, "-m", "bot.campaigns.dispatch", "--campaign", "storm",
                        "--credentials", str(dispatch_credentials), "--json",
                        "--lease-seconds", "20"],
           "dispatch_env": dispatch_env}
    stop(rasa)
    stop(actions)
    db.close()
    twilio.stop()
    telegram.stop()


def sms_bodies(twilio: FakeTwilio, number: str) -> list[str]:
    return [m["Body"] for m in twilio.delivered() if m["To"] == number]


def telegram_texts(telegram: FakeTelegram, chat: int) -> list[str]:
    return [p["text"] for p in telegram.sent() if str(p.get("chat_id")) == str(chat)]


def converse(port: int, twilio: FakeTwilio, number: str, chat: int) -> None:
    for text in SCRIPT:
        assert send_sms(port, twilio.auth_token, number, text) == 200
        assert send_telegram(port, telegram_text(chat, text)) == 200
        time.sleep(1.5)  # the person types the next one a little later


def test_a_minute_long_storm_loses_nothing_and_sends_nothing_twice(world):
    twilio, telegram, port = world["twilio"], world["telegram"], world["rasa_port"]
    # the control: the same conversation before the storm, answered at once
    control_number, control_chat = AFTER
    converse(port, twilio, control_number, control_chat)
    wait_until(lambda: len(sms_bodies(twilio, control_number)) == len(SCRIPT)
               and len(telegram_texts(telegram, control_chat)) >= len(SCRIPT),
               what="the control conversation's replies")
    time.sleep(3)
    expected_sms = sms_bodies(twilio, control_number)
    expected_telegram = telegram_texts(telegram, control_chat)

    number, chat = IN_STORM
    twilio.storm(STORM_SECONDS, STORM)
    telegram.storm(STORM_SECONDS, STORM)
    storm_ends = time.monotonic() + STORM_SECONDS
    dispatcher = subprocess.Popen(world["dispatch"], cwd=PROJECT_ROOT, env=world["dispatch_env"],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    converse(port, twilio, number, chat)
    time.sleep(5)
    assert sms_bodies(twilio, number) == [] and telegram_texts(telegram, chat) == []
    ledger = DelayedReplies(world["db"].sessions)
    # what the console shows meanwhile (a first reply spends the sender's 4 tries first)
    wait_until(lambda: ledger.summary().waiting == {"sms": 1, "telegram": 1},
               seconds=storm_ends - time.monotonic() - 1, what="the ledger's waiting rows")

    while time.monotonic() < storm_ends:
        time.sleep(1)
    assert twilio.storm_answers > 0 and telegram.storm_answers > 0
    # after the storm: every reply, once, in order (the backoff is at most 30 s, and a try
    # that began in the storm may wait out its timeouts first)
    wait_until(lambda: len(sms_bodies(twilio, number)) >= len(expected_sms)
               and len(telegram_texts(telegram, chat)) >= len(expected_telegram), seconds=120,
               what="the replies after the storm")
    out, _ = dispatcher.communicate(timeout=240)
    stats = json.loads([line for line in out.splitlines() if line.startswith("{")][-1])
    time.sleep(3)  # nothing more comes
    assert sms_bodies(twilio, number) == expected_sms
    assert telegram_texts(telegram, chat) == expected_telegram
    assert twilio.delivered_to(number) == len(SCRIPT)

    # the campaign: every subscriber once, and the dispatcher said it had to try again
    people = world["people"]
    counts = [(twilio if p.channel == "sms" else telegram).delivered_to(p.address)
              for p in people]
    assert counts == [1] * len(people)
    assert stats["sent"] == world["total"] and stats["failed"] == 0, stats
    assert stats["retried"] > 0, stats

    after = ledger.summary()
    assert after.waiting == {}
    assert after.delivered_late == {"sms": 1, "telegram": 1} and after.dropped == {}
    assert all(wait.total_seconds() > STORM_SECONDS / 2 for wait in after.longest.values())

    logs = (world["folder"] / "rasa.log").read_text()
    assert "kept to send when it does" in logs and "late repl(ies) delivered" in logs
    for secret in (number, number.lstrip("+"), str(chat)):
        assert secret not in logs
