"""Reminding subscribers before their consent runs out (``helpline campaign remind``,
``bot.campaigns.reminders``): who is reminded on SQLite and PostgreSQL (the consent ending
within the days, the address attached, not reminded for this consent yet) and who is not;
running again queues nothing twice; a renewal clears ``reminded_at`` and its consent is
reminded again; a renewal racing the queueing is not marked; the texts of every language
validated as a campaign's (SMS budget, stop word, the language's JOIN word); a long
organisation name refused (and reported by ``helpline check``); the dispatcher holding a
reminder back for the weekly cap like any message; and the command: counts only, ``--send`` through the fake
Twilio and Telegram delivering one reminder each in the subscriber's language, a bad
``--days`` exiting 2 with the reason."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet, MultiFernet

from bot import cli
from bot.campaigns.definition import (CampaignDefinition, CampaignError, parse_campaign,
                                      says_how_to_stop_by_sms)
from bot.campaigns.models import Campaign, OutboxMessage, Subscriber
from bot.campaigns.reminders import (ReminderResult, check_days, queue_reminders,
                                     reminder_definition, reminder_problems, reminder_window)
from bot.campaigns.subscribers import Subscribers, add_months
from bot.catalog import load_catalog
from bot.deployment import load_deployment
from bot.settings import PROJECT_ROOT, Settings
from bot.storage import make_engine, session_factory, upgrade
from channels.segments import count_segments, encoding_of
from channels.sms_keywords import load_keywords, stop_words
from channels.sms_text import sms_friendly
from tests.utils.campaigns import helpline_database

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 11, 26, 10, 0, tzinfo=UTC)  # 11:00 in Lagos
SAMPLE_DEPLOYMENT = PROJECT_ROOT / "deploy" / "sample.yml"
DEPLOYMENT = load_deployment(SAMPLE_DEPLOYMENT)  # consent_months 12, daytime 08:00-21:00
CATALOG = load_catalog()
MONTHS = DEPLOYMENT.campaigns.consent_months
JOIN_WORDS = {"en": "JOIN", "fr": "INSCRIRE", "es": "ALTA", "ar": "اشتراك"}
ENGLISH = ("Lantern Line (sample): your safety messages finish soon, as agreed when you joined. "
           "To keep them, write JOIN. To stop now, write STOP.")


class Clock:
    def __init__(self, now: dt.datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


def ends_in(**delta) -> dt.datetime:
    """The consent time of a consent that ends ``delta`` after NOW."""
    return add_months(NOW + dt.timedelta(**delta), -MONTHS)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    url = (f"sqlite:///{tmp_path}/reminders.db" if request.param == "sqlite"
           else request.getfixturevalue("postgres_url"))
    engine = make_engine(url)
    upgrade(engine)
    clock = Clock()
    subscribers = Subscribers(session_factory(engine), MultiFernet([Fernet(Fernet.generate_key())]),
                              clock=clock)
    subscribers.test_clock = clock
    yield subscribers
    engine.dispose()


def join(store: Subscribers, conversation: str, consented_at: dt.datetime, channel: str = "sms",
         language: str = "en", attach: bool = True) -> int:
    """A subscriber who consented at ``consented_at`` (a fictional address attached)."""
    clock = store.test_clock
    clock.now = consented_at
    view = store.consent(conversation, channel, language, "ng-maiduguri")
    if attach:
        assert store.attach(conversation, "+999" + conversation.encode().hex()[:8])
    clock.now = NOW
    return view.id


def set_reminded(store: Subscribers, subscriber_id: int, at: dt.datetime) -> None:
    with store._sessions.begin() as session:
        session.execute(sa.update(Subscriber).where(Subscriber.id == subscriber_id)
                        .values(reminded_at=at))


def reminded_at(store: Subscribers) -> dict:
    with store._sessions() as session:
        return {conversation: (at if at is None or at.tzinfo else at.replace(tzinfo=UTC))
                for conversation, at in session.execute(
                    sa.select(Subscriber.conversation_id, Subscriber.reminded_at))}


def outbox(store: Subscribers) -> list[tuple]:
    with store._sessions() as session:
        return session.execute(
            sa.select(Campaign.name, Subscriber.conversation_id, OutboxMessage.channel,
                      OutboxMessage.language, OutboxMessage.state, OutboxMessage.idempotency_key)
            .join(Campaign, Campaign.id == OutboxMessage.campaign_id)
            .join(Subscriber, Subscriber.id == OutboxMessage.subscriber_id, isouter=True)
            .order_by(OutboxMessage.id)).all()


def remind(store: Subscribers, days: int = 14, at: dt.datetime = NOW,
           deployment=DEPLOYMENT) -> ReminderResult:
    store.test_clock.now = at
    try:
        return queue_reminders(deployment, store._sessions, store, days, clock=lambda: at)
    finally:
        store.test_clock.now = NOW


# -- who is reminded ---------------------------------------------------------------------------


def test_who_is_reminded_and_who_is_not(store):
    join(store, "soon", ends_in(days=7), "sms", "en")
    join(store, "edge", ends_in(days=14, minutes=-1), "telegram", "fr")
    join(store, "arabic", ends_in(hours=2), "telegram", "ar")
    stale = join(store, "stale-mark", ends_in(days=3), "sms", "es")
    set_reminded(store, stale, ends_in(days=3) - dt.timedelta(days=30))  # before this consent
    join(store, "exactly-14", ends_in(days=14))  # valid 14 days from now: not yet
    join(store, "later", ends_in(days=15))
    join(store, "new", NOW - dt.timedelta(days=3))
    already = join(store, "already", ends_in(days=5))
    set_reminded(store, already, NOW - dt.timedelta(days=9))
    join(store, "unattached", ends_in(days=6), attach=False)
    join(store, "expired", ends_in(days=-1))
    result = remind(store)
    assert result == ReminderResult("consent-reminder-2026-11-26", 4, 0, False, result.campaign_id)
    rows = outbox(store)
    assert [(r.conversation_id, r.channel, r.language, r.state) for r in rows] == [
        ("soon", "sms", "en", "pending"), ("edge", "telegram", "fr", "pending"),
        ("arabic", "telegram", "ar", "pending"), ("stale-mark", "sms", "es", "pending")]
    for row in rows:
        assert row.name == "consent-reminder-2026-11-26"
        assert row.idempotency_key == hashlib.sha256(
            f"consent-reminder-2026-11-26:{row.conversation_id}".encode()).hexdigest()
    marks = reminded_at(store)
    assert {c for c, at in marks.items() if at == NOW} == {"soon", "edge", "arabic", "stale-mark"}
    assert marks["already"] == NOW - dt.timedelta(days=9)
    assert all(marks[c] is None for c in ("exactly-14", "later", "new", "unattached", "expired"))
    with store._sessions() as session:
        stored = session.execute(sa.select(Campaign.definition)).scalar_one()
    definition = CampaignDefinition.from_json(stored)
    assert definition == reminder_definition(DEPLOYMENT, NOW.date())
    data = json.loads(stored)
    assert data["consent_reminder"] is True and data["cap_per_week"] == 2
    assert data["window"] == {"start": "08:00", "end": "21:00"}  # campaigns.daytime
    assert data["audience"] == {"languages": ["en", "fr", "ar", "es"], "areas": None,
                                "channels": ["sms", "telegram"]}
    assert data["texts"]["en"] == ENGLISH


def test_more_days_reach_further_and_a_day_reaches_only_the_last(store):
    join(store, "in-20-days", ends_in(days=20))
    join(store, "in-12-hours", ends_in(hours=12))
    assert remind(store, days=1).queued == 1
    assert remind(store, days=21).queued == 1
    assert {c for c, at in reminded_at(store).items() if at} == {"in-20-days", "in-12-hours"}


def test_running_again_queues_nothing_twice_and_the_next_day_has_its_own_campaign(store):
    join(store, "a", ends_in(days=3))
    join(store, "b", ends_in(days=10))
    first = remind(store)
    assert (first.queued, first.earlier) == (2, 0)
    again = remind(store, at=NOW + dt.timedelta(hours=6))
    assert (again.name, again.queued, again.earlier, again.campaign_id) == (
        first.name, 0, 2, first.campaign_id)
    # someone whose consent now ends within 14 days joins the day's campaign
    join(store, "c", ends_in(days=14, hours=3))
    later = remind(store, at=NOW + dt.timedelta(hours=6))
    assert (later.queued, later.earlier) == (1, 2)
    # the next day: nobody new, no campaign written
    tomorrow = remind(store, at=NOW + dt.timedelta(days=1))
    assert (tomorrow.name, tomorrow.queued, tomorrow.campaign_id) == (
        "consent-reminder-2026-11-27", 0, None)
    join(store, "d", ends_in(days=14, hours=12))  # within 14 days from tomorrow only
    tomorrow = remind(store, at=NOW + dt.timedelta(days=1))
    assert (tomorrow.queued, tomorrow.earlier) == (1, 0)
    assert [(r.name[-10:], r.conversation_id) for r in outbox(store)] == [
        ("2026-11-26", "a"), ("2026-11-26", "b"), ("2026-11-26", "c"), ("2026-11-27", "d")]


def test_a_renewal_clears_the_reminder_and_the_new_consent_is_reminded_again(store):
    join(store, "renewer", ends_in(days=5), "sms", "fr")
    assert remind(store).queued == 1
    renewed_at = NOW + dt.timedelta(days=2)
    store.test_clock.now = renewed_at
    view = store.consent("renewer", "sms", "fr", "ng-maiduguri")  # JOIN again
    store.test_clock.now = NOW
    assert view.reminded_at is None and store.get("renewer").reminded_at is None
    assert view.reachable  # the address is kept
    assert remind(store, at=renewed_at).queued == 0  # the new consent ends in a year
    before_end = add_months(renewed_at, MONTHS) - dt.timedelta(days=10)
    result = remind(store, at=before_end)
    assert result.queued == 1 and result.name == f"consent-reminder-{before_end.date()}"
    assert [(r.name, r.conversation_id) for r in outbox(store)] == [
        ("consent-reminder-2026-11-26", "renewer"), (result.name, "renewer")]
    assert store.get("renewer").reminded_at == before_end


def test_a_consent_renewed_while_the_reminders_are_queued_is_not_marked(store, monkeypatch):
    """A renewal between the selection and the marking: its row may be queued (the person
    gets one reminder too many) but ``reminded_at`` stays empty, so the renewed consent is
    reminded before it ends."""
    due = join(store, "due", ends_in(days=4))
    racing = join(store, "racing", NOW - dt.timedelta(minutes=1))  # has just renewed
    monkeypatch.setattr(store, "due_for_reminder", lambda months, days, now: sa.select(
        Subscriber.id).where(Subscriber.id.in_([due, racing])))
    assert remind(store).queued == 2
    marks = reminded_at(store)
    assert marks["due"] == NOW and marks["racing"] is None


def test_a_language_the_deployment_dropped_gets_the_default_language(store):
    english_french = dataclasses.replace(DEPLOYMENT, languages=("en", "fr"))
    join(store, "arabic", ends_in(days=2), "telegram", "ar")
    join(store, "french", ends_in(days=2), "sms", "fr")
    assert remind(store, deployment=english_french).queued == 2
    assert [(r.conversation_id, r.language) for r in outbox(store)] == [
        ("arabic", "en"), ("french", "fr")]


def test_the_days_name_taken_by_another_campaign_is_refused(store):
    join(store, "a", ends_in(days=3))
    file_campaign = reminder_definition(DEPLOYMENT, NOW.date())
    stored = dataclasses.replace(file_campaign, consent_reminder=False).to_json()
    with store._sessions.begin() as session:
        session.add(Campaign(name="consent-reminder-2026-11-26", definition=stored,
                             file_hash="0" * 64, queued_at=NOW))
    with pytest.raises(CampaignError, match="is not a consent reminder"):
        remind(store)
    assert reminded_at(store)["a"] is None and outbox(store) == []


def test_a_text_changed_during_the_day_keeps_the_days_campaign(store):
    join(store, "a", ends_in(days=3))
    remind(store)
    renamed = dataclasses.replace(DEPLOYMENT, organisation_name="Lantern Line")
    join(store, "b", ends_in(days=4))
    result = remind(store, at=NOW + dt.timedelta(hours=1), deployment=renamed)
    assert result.kept_text and (result.queued, result.earlier) == (1, 1)
    with store._sessions() as session:
        stored = CampaignDefinition.from_json(session.execute(sa.select(Campaign.definition))
                                              .scalar_one())
    assert stored.texts["en"] == ENGLISH  # as queued in the morning; the rename from tomorrow
    assert not remind(store, at=NOW + dt.timedelta(hours=2)).kept_text


# -- the texts ---------------------------------------------------------------------------------


@pytest.mark.parametrize("language", ["en", "fr", "ar", "es"])
def test_each_text_passes_the_campaign_checks_and_names_the_languages_join_word(language):
    definition = reminder_definition(DEPLOYMENT, NOW.date())  # validated as a campaign file
    text = definition.texts[language]
    assert text == CATALOG.render("utter_subscribe_reminder", language,
                                  org_name="Lantern Line (sample)")["text"]
    assert text.startswith("Lantern Line (sample)")
    assert says_how_to_stop_by_sms(text, stop_words(language)) and "STOP" in text.split(
        " ")[-1]
    word = JOIN_WORDS[language]
    assert f" {word}." in text or f" {word} " in text
    assert load_keywords().payload(word) == "/subscribe"  # the SMS channel's JOIN
    sms = definition.sms_text(language, DEPLOYMENT.sms.fold_accents)
    segments = count_segments(sms).segments
    assert segments <= DEPLOYMENT.sms.segment_budget
    if language != "ar":  # one GSM-7 segment each with the sample's name: the cost of one SMS
        assert encoding_of(sms) == "gsm7" and segments == 1, (language, sms)


def test_the_english_text():
    assert reminder_definition(DEPLOYMENT, NOW.date()).texts["en"] == ENGLISH
    assert CATALOG.texts["en"]["utter_subscribe_reminder"] == (
        "{org_name}: your safety messages finish soon, as agreed when you joined. To keep them, "
        "write JOIN. To stop now, write STOP.")


def test_a_long_organisation_name_is_refused_and_helpline_check_says_so(tmp_path):
    long_name = "Lantern Line Anti-Trafficking Helpline of the North-East (sample)"
    with pytest.raises(CampaignError) as error:
        reminder_definition(dataclasses.replace(DEPLOYMENT, organisation_name=long_name),
                            NOW.date())
    assert error.value.problems == [
        "texts.ar: 3 SMS segments, the deployment allows 2 (sms.segment_budget)"]
    deployment_file = tmp_path / "deployment.yml"
    deployment_file.write_text(SAMPLE_DEPLOYMENT.read_text("utf-8").replace(
        'name: "Lantern Line (sample)"', f'name: "{long_name}"'), "utf-8")
    problems = cli.check(Settings.from_env({"HELPLINE_DEPLOYMENT": str(deployment_file)}))
    assert problems == [
        "consent reminder (bot/messages/<language>.yml utter_subscribe_reminder, with "
        "organisation.name): texts.ar: 3 SMS segments, the deployment allows 2 "
        "(sms.segment_budget)"]
    assert reminder_problems(DEPLOYMENT) == []


def test_the_window_is_the_daytime_and_a_day_to_midnight_ends_at_23_59():
    assert reminder_window(DEPLOYMENT) == {"start": "08:00", "end": "21:00"}
    whole_day = dataclasses.replace(DEPLOYMENT, campaigns=dataclasses.replace(
        DEPLOYMENT.campaigns, daytime=(0, 24 * 60)))
    assert reminder_window(whole_day) == {"start": "00:00", "end": "23:59"}
    assert reminder_definition(whole_day, NOW.date()).window_end == dt.time(23, 59)


def test_a_campaign_file_may_not_take_a_reminders_name_and_the_flag_round_trips():
    data = {"name": "consent-reminder-2026-11-26", "texts": {"en": "Hello. Reply STOP to end."},
            "window": {"start": "09:00", "end": "19:00"}}
    with pytest.raises(CampaignError, match="kept for the consent reminders"):
        parse_campaign(data, DEPLOYMENT, {})
    with pytest.raises(CampaignError, match="unknown key"):
        parse_campaign({**data, "name": "x", "consent_reminder": True}, DEPLOYMENT, {})
    with pytest.raises(CampaignError, match="a consent reminder's name starts with"):
        parse_campaign({**data, "name": "x"}, DEPLOYMENT, {}, consent_reminder=True)
    reminder = parse_campaign(data, DEPLOYMENT, {}, consent_reminder=True)
    assert reminder.consent_reminder
    assert CampaignDefinition.from_json(reminder.to_json()) == reminder
    ordinary = parse_campaign({**data, "name": "x"}, DEPLOYMENT, {})
    assert "consent_reminder" not in json.loads(ordinary.to_json())  # campaign files unchanged
    assert not CampaignDefinition.from_json(ordinary.to_json()).consent_reminder


@pytest.mark.parametrize("days,ok", [(1, True), (14, True), (60, True), ("7", True), (0, False),
                                     (61, False), (-3, False), ("two", False), (2.5, False)])
def test_days_are_1_to_60(days, ok):
    if ok:
        assert check_days(days) == int(days)
    else:
        with pytest.raises(ValueError, match="from 1 to 60"):
            check_days(days)


# -- the dispatcher and the weekly cap ---------------------------------------------------------


async def test_the_weekly_cap_holds_a_reminder_back_like_any_message(tmp_path):
    """The consent promised at most max_per_week messages a week: a reminder too."""
    from tests.test_campaign_dispatch import Clock as DispatchClock
    from tests.test_campaign_dispatch import dispatch
    from tests.utils.campaigns import CampaignDb, aware, definition
    from tests.utils.fake_telegram import FakeTelegram
    from tests.utils.fake_twilio import FakeTwilio

    db = CampaignDb(f"sqlite:///{tmp_path}/campaigns.db")
    twilio, telegram = FakeTwilio().start(), FakeTelegram().start()
    try:
        earlier = db.campaign("earlier", queued_at=NOW - dt.timedelta(days=10))
        [full] = db.subscribe(1, "sms")
        db.sent_before(full, earlier, NOW - dt.timedelta(days=3), "a")
        db.sent_before(full, earlier, NOW - dt.timedelta(days=2), "b")  # the cap of 2 is reached
        stored = json.loads(definition("consent-reminder-2026-11-26", cap_per_week=2))
        stored["consent_reminder"] = True
        with db.engine.begin() as connection:
            reminder = connection.execute(sa.insert(Campaign.__table__).values(
                name="consent-reminder-2026-11-26", definition=json.dumps(stored),
                file_hash="1" * 64, queued_at=NOW)).inserted_primary_key[0]
        regular = db.campaign("regular", cap_per_week=2)
        db.queue(reminder, [full])
        db.queue(regular, [full])
        dispatcher = await dispatch(db, twilio, telegram, clock=DispatchClock(NOW, frozen=True),
                                    until_done=False)
        assert twilio.delivered_to(full.address) == 0
        for campaign in (reminder, regular):  # both wait for the first earlier one to age out
            waiting = db.row_of(full, campaign)
            assert (waiting["state"], waiting["error"]) == ("pending", "weekly_cap")
            assert aware(waiting["next_attempt_at"]) == NOW + dt.timedelta(days=4)
        assert dispatcher.stats.sent == 0 and dispatcher.stats.deferred == 2
    finally:
        twilio.stop()
        telegram.stop()
        db.close()


# -- the command -------------------------------------------------------------------------------


@pytest.fixture
def helpline(tmp_path, monkeypatch):
    """``helpline`` on a migrated SQLite file with the sample places and its own secrets."""
    with helpline_database(tmp_path, monkeypatch) as sessions:
        yield sessions


def run(capsys, *argv) -> tuple[int, str, str]:
    code = cli.main(["campaign", "remind", *argv])
    out, err = capsys.readouterr()
    return code, out, err


# (conversation, channel, language, address, consent ends in days from now; None: not attached)
PEOPLE = (("c-en", "sms", "en", "+9991000001", 5), ("c-ar", "telegram", "ar", "7000000002", 9),
          ("c-fr", "sms", "fr", "+9993000003", 13), ("c-es", "sms", "es", "+9994000004", 1),
          ("c-later", "sms", "en", "+9995000005", 40), ("c-new", "telegram", "fr", "7000000006", 300),
          ("c-unattached", "sms", "en", None, 3))


def cli_subscribers(sessions, tmp_path) -> None:
    from bot.privacy.keys import load_secrets

    fernet = load_secrets(tmp_path / "secrets.json").fernet()  # created here
    now = dt.datetime.now(UTC)
    for conversation, channel, language, address, days in PEOPLE:
        consented = add_months(now + dt.timedelta(days=days), -MONTHS)
        people = Subscribers(sessions, fernet, clock=lambda: consented)
        people.consent(conversation, channel, language, "ng-maiduguri")
        if address:
            people.attach(conversation, address)


def test_cli_remind_send_delivers_one_reminder_each_in_its_language(
        helpline, capsys, tmp_path, monkeypatch):
    from tests.utils.campaigns import any_hour_deployment
    from tests.utils.channel_clients import fake_providers

    code, out, err = run(capsys)
    assert (code, err) == (0, "")
    assert out == "consent reminders: nobody to remind (consents ending within 14 days, not " \
                  "reminded yet)\n"
    cli_subscribers(helpline, tmp_path)
    deployment_file = any_hour_deployment(tmp_path)  # sendable at any hour the test runs
    monkeypatch.setenv("HELPLINE_DEPLOYMENT", str(deployment_file))
    texts = reminder_definition(load_deployment(deployment_file), NOW.date()).texts
    with fake_providers(tmp_path, monkeypatch) as (twilio, telegram, credentials):
        code, out, err = run(capsys, "--send", "--credentials", str(credentials))
        assert code == 0, err
        today = dt.datetime.now(UTC).date()
        assert out.startswith("consent reminders: 4 queued now (consents ending within 14 "
                              "days), 0 earlier today; campaign consent-reminder-")
        assert "4 / 4" in err and "nothing is sent until" not in out
        sms = {m["To"]: m["Body"] for m in twilio.delivered()}
        assert len(twilio.delivered()) == 3 and sms == {
            "+9991000001": sms_friendly(texts["en"]), "+9993000003": sms_friendly(texts["fr"]),
            "+9994000004": sms_friendly(texts["es"])}
        assert [(str(m["chat_id"]), m["text"]) for m in telegram.sent()] == [
            ("7000000002", texts["ar"])]
        assert sms["+9991000001"] == ENGLISH
        for _, _, _, address, _ in PEOPLE:
            if address:
                assert address not in out and address not in err
        # again (cron twice a day): nothing queued, nothing sent twice
        code, out, err = run(capsys, "--send", "--credentials", str(credentials))
        assert code == 0, err
        assert "0 queued now" in out and "4 earlier today" in out
        assert len(twilio.delivered()) == 3 and len(telegram.sent()) == 1
        with helpline() as session:
            marked = set(session.execute(sa.select(Subscriber.conversation_id)
                                         .where(Subscriber.reminded_at.is_not(None))).scalars())
            names = session.execute(sa.select(Campaign.name)).scalars().all()
        assert marked == {"c-en", "c-ar", "c-fr", "c-es"}
        assert names in ([f"consent-reminder-{today}"],
                         [f"consent-reminder-{today}",
                          f"consent-reminder-{today + dt.timedelta(days=1)}"])  # midnight UTC


def test_cli_remind_without_send_leaves_it_to_the_dispatcher(helpline, capsys, tmp_path):
    cli_subscribers(helpline, tmp_path)
    code, out, err = run(capsys, "--days", "3")
    assert (code, err) == (0, "")
    assert "1 queued now (consents ending within 3 days)" in out  # c-es, a day from now
    assert "nothing is sent until the dispatcher runs (within 08:00-21:00" in out
    with helpline() as session:
        assert session.execute(sa.select(OutboxMessage.state)).scalars().all() == ["pending"]


@pytest.mark.parametrize("days", ["0", "61", "two", "-1"])
def test_cli_remind_refuses_bad_days_with_exit_2(helpline, capsys, days):
    with pytest.raises(SystemExit) as info:
        cli.main(["campaign", "remind", "--days", days])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "argument --days: must be a whole number of days from 1 to 60" in err
    assert f"got {days!r}" in err
