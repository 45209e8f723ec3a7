"""Queueing a campaign on SQLite and PostgreSQL (idempotent, refusing a changed file, 100,000
subscribers in batches), the preview's figures against a hand count, the status counts, and
``helpline campaign check|preview|queue|status``: exit codes and what they print (never an
address)."""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from decimal import Decimal

import pytest
import sqlalchemy as sa
import yaml
from cryptography.fernet import Fernet, MultiFernet

from bot import cli
from bot.campaigns.definition import CampaignDefinition, CampaignError, parse_campaign
from bot.campaigns.models import Campaign, OutboxMessage, Subscriber
from bot.campaigns.queue import (TELEGRAM_CHANNEL, idempotency_key, preview, queue_campaign,
                                 status)
from bot.campaigns.subscribers import Subscribers
from bot.deployment import load_deployment, parse_deployment
from bot.services.places import Gazetteer, read_places
from bot.settings import PROJECT_ROOT
from bot.storage import make_engine, session_factory, upgrade
from tests.utils.campaigns import helpline_database

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 12, 1, 7, 30, tzinfo=UTC)  # 08:30 in Lagos, 09:30 in Tripoli
SAMPLE_DEPLOYMENT = PROJECT_ROOT / "deploy" / "sample.yml"
SAMPLE_CAMPAIGN = PROJECT_ROOT / "deploy" / "campaigns" / "sample.yml"
PLACES_FILE = PROJECT_ROOT / "data" / "gazetteer" / "places.csv"
FERNET = MultiFernet([Fernet(Fernet.generate_key())])


def clock() -> dt.datetime:
    return NOW


def aware(moment: dt.datetime) -> dt.datetime:
    """SQLite gives naive datetimes back (UTC)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@pytest.fixture(scope="module")
def gazetteer() -> Gazetteer:
    places = Gazetteer()
    for place in read_places(PLACES_FILE):
        places.add(place)
    return places


@pytest.fixture(scope="module")
def deployment():
    return load_deployment(SAMPLE_DEPLOYMENT)


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path):
    url = (f"sqlite:///{tmp_path}/campaigns.db" if request.param == "sqlite"
           else request.getfixturevalue("postgres_url"))
    engine = make_engine(url)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(database):
    return session_factory(database)


@pytest.fixture
def subscribers(sessions):
    return Subscribers(sessions, FERNET, clock=clock)


def subscribe(subscribers: Subscribers, conversation_id: str, channel: str = "sms",
              language: str = "en", area: str = "ng-maiduguri", attach: bool = True) -> int:
    view = subscribers.consent(conversation_id, channel, language, area)
    if attach:  # a fictional address: +999 is not assigned
        assert subscribers.attach(conversation_id, f"+999{abs(hash(conversation_id)) % 10**7:07d}")
    return view.id


def definition_of(deployment, gazetteer, **changes) -> CampaignDefinition:
    data = {
        "name": "test-campaign-1",
        "texts": {"en": "Job offers abroad can be a trap. Reply STOP (or /stop) to end these "
                        "messages.",
                  "ar": "عروض العمل في الخارج قد تكون فخا. أرسل STOP أو /stop للإيقاف."},
        "window": {"start": "09:00", "end": "19:00"},
        "cap_per_week": 1,
    }
    data.update(changes)
    content = yaml.safe_dump(data, allow_unicode=True).encode("utf-8")
    return parse_campaign(data, deployment, gazetteer, file_hash=hashlib.sha256(content).hexdigest())


def outbox(sessions) -> list[OutboxMessage]:
    with sessions() as session:
        return list(session.execute(sa.select(OutboxMessage).order_by(OutboxMessage.id)).scalars())


# -- queueing ----------------------------------------------------------------------------------


def test_queueing_writes_a_campaign_and_one_pending_row_per_subscriber(
        sessions, subscribers, deployment, gazetteer):
    amina = subscribe(subscribers, "c-amina", "sms", "en", "ng-maiduguri")
    bashir = subscribe(subscribers, "c-bashir", "telegram", "ar", "ng-bama")
    subscribe(subscribers, "c-far", "sms", "en", "ly-tripoli")  # outside the areas
    subscribe(subscribers, "c-fr", "sms", "fr", "ng-maiduguri")  # French: not in the audience
    subscribe(subscribers, "c-unattached", "sms", "en", "ng-maiduguri", attach=False)
    definition = definition_of(deployment, gazetteer, audience={"areas": ["NG008"]})
    result = queue_campaign(definition, sessions, subscribers, clock)
    assert (result.created, result.added, result.already, result.total) == (True, 2, 0, 2)
    with sessions() as session:
        campaign = session.execute(sa.select(Campaign)).scalar_one()
    assert campaign.name == "test-campaign-1" and campaign.id == result.campaign_id
    assert campaign.definition == definition.to_json()
    assert campaign.file_hash == definition.file_hash
    assert CampaignDefinition.from_json(campaign.definition) == definition
    rows = outbox(sessions)
    assert [(r.subscriber_id, r.channel, r.language) for r in rows] == [
        (amina, "sms", "en"), (bashir, "telegram", "ar")]
    for row, conversation in zip(rows, ("c-amina", "c-bashir")):
        assert row.idempotency_key == hashlib.sha256(
            f"test-campaign-1:{conversation}".encode()).hexdigest()
        assert (row.state, row.attempts, row.campaign_id) == ("pending", 0, campaign.id)
        assert aware(row.next_attempt_at) == NOW
        assert row.lease_until is None and row.sent_at is None and row.provider_ref is None


def test_the_telegram_channel_gets_one_row_without_a_subscriber(
        sessions, subscribers, deployment, gazetteer):
    subscribe(subscribers, "c-1", "sms", "en")
    definition = definition_of(deployment, gazetteer,
                               telegram_channel={"chat": "@example_ngo_channel", "language": "ar"})
    result = queue_campaign(definition, sessions, subscribers, clock)
    assert (result.added, result.channel_post) == (2, True)
    post = [r for r in outbox(sessions) if r.channel == TELEGRAM_CHANNEL]
    assert len(post) == 1
    assert post[0].subscriber_id is None and post[0].language == "ar"
    assert post[0].idempotency_key == idempotency_key("test-campaign-1", "telegram_channel")
    # only the channel: no subscriber needed
    only = definition_of(deployment, gazetteer, name="channel-only", audience={"channels": []},
                         telegram_channel={"chat": "@example_ngo_channel", "language": "en"})
    assert queue_campaign(only, sessions, subscribers, clock).added == 1


def test_queueing_again_adds_only_new_subscribers(sessions, subscribers, deployment, gazetteer):
    for n in range(3):
        subscribe(subscribers, f"c-{n}")
    definition = definition_of(deployment, gazetteer,
                               telegram_channel={"chat": "@example_ngo_channel", "language": "en"})
    assert queue_campaign(definition, sessions, subscribers, clock).added == 4
    again = queue_campaign(definition, sessions, subscribers, clock)
    assert (again.created, again.added, again.already) == (False, 0, 4)
    subscribe(subscribers, "c-new")
    subscribers.remove("c-0")  # left: their row stays (subscriber_id NULL), never re-added
    subscribers.consent("c-1", "sms", "en", "ng-bama")  # renewed consent: the same person
    later = queue_campaign(definition, sessions, subscribers, clock)
    assert (later.added, later.already) == (1, 4)
    rows = outbox(sessions)
    assert len(rows) == 5 == len({r.idempotency_key for r in rows})
    with sessions() as session:
        assert session.execute(sa.select(sa.func.count()).select_from(Campaign)).scalar() == 1


def test_a_changed_file_under_a_queued_name_is_refused(sessions, subscribers, deployment, gazetteer):
    subscribe(subscribers, "c-1")
    queue_campaign(definition_of(deployment, gazetteer), sessions, subscribers, clock)
    changed = definition_of(deployment, gazetteer, cap_per_week=2)
    assert changed.file_hash
    with pytest.raises(CampaignError) as info:
        queue_campaign(changed, sessions, subscribers, clock)
    assert str(info.value) == (
        "name: a campaign named 'test-campaign-1' was queued on 2026-12-01 07:30 UTC from a "
        "different file; a changed campaign needs a new name (its queued messages are kept as "
        "they were)")
    subscribe(subscribers, "c-2")
    with pytest.raises(CampaignError):
        queue_campaign(changed, sessions, subscribers, clock)
    assert len(outbox(sessions)) == 1  # nothing added by the refused file


def test_a_country_reaches_subscribers_whose_area_is_the_country_code(
        sessions, subscribers, deployment, gazetteer):
    town = subscribe(subscribers, "c-town", "sms", "en", "ng-mubi")
    country = subscribe(subscribers, "c-country", "sms", "en", "NG")  # the emergency area slot
    subscribe(subscribers, "c-libya", "sms", "en", "LY")
    subscribe(subscribers, "c-nowhere", "sms", "en", None)  # no area: only area-less campaigns
    definition = definition_of(deployment, gazetteer, audience={"areas": ["NG"]})
    assert queue_campaign(definition, sessions, subscribers, clock).added == 2
    assert {r.subscriber_id for r in outbox(sessions)} == {town, country}
    borno = definition_of(deployment, gazetteer, name="borno-only", audience={"areas": ["NG008"]})
    with pytest.raises(CampaignError, match="no subscriber matches"):  # Mubi is in Adamawa
        queue_campaign(borno, sessions, subscribers, clock)


def test_an_empty_audience_is_refused_and_writes_nothing(sessions, subscribers, deployment, gazetteer):
    subscribe(subscribers, "c-fr", "sms", "fr")
    subscribe(subscribers, "c-ly", "sms", "en", "ly-tripoli")
    definition = definition_of(deployment, gazetteer, audience={"areas": ["NG"]})
    with pytest.raises(CampaignError) as info:
        queue_campaign(definition, sessions, subscribers, clock)
    assert str(info.value) == ("audience: no subscriber matches (languages en, ar; areas NG; "
                               "channels sms, telegram) and there is no telegram_channel: "
                               "nothing to send")
    with sessions() as session:
        assert session.execute(sa.select(sa.func.count()).select_from(Campaign)).scalar() == 0


def test_one_hundred_thousand_subscribers(database, sessions, subscribers, deployment, gazetteer):
    """Subscribers are bulk-inserted here (consent + attach one by one would take minutes);
    the queueing itself is what is measured (printed, not asserted: see the README)."""
    n = 100_000
    token = FERNET.encrypt(b"+9990000000")  # one fictional address for all
    areas = ["ng-maiduguri", "ng-bama", "ly-tripoli", "ua-lviv", None]
    rows = [{"conversation_id": f"{i:064x}", "channel": ("sms", "telegram")[i % 2],
             "language": ("en", "ar")[i % 3 == 0], "area": areas[i % 5], "consented_at": NOW,
             "address": token} for i in range(n)]
    with sessions.begin() as session:
        for start in range(0, n, 10_000):
            session.execute(sa.insert(Subscriber.__table__), rows[start:start + 10_000])
    definition = definition_of(deployment, gazetteer)
    started = time.perf_counter()
    result = queue_campaign(definition, sessions, subscribers, clock)
    first = time.perf_counter() - started
    started = time.perf_counter()
    again = queue_campaign(definition, sessions, subscribers, clock)
    second = time.perf_counter() - started
    print(f"\n[{database.dialect.name}] queued {result.added:,} in {first:.2f} s; "
          f"queued again (nothing new) in {second:.2f} s")
    assert (result.added, again.added, again.already) == (n, 0, n)
    with sessions() as session:
        count = session.execute(sa.select(sa.func.count()).select_from(OutboxMessage)).scalar()
        keys = session.execute(
            sa.select(sa.func.count(sa.distinct(OutboxMessage.idempotency_key)))).scalar()
    assert count == keys == n


# -- preview -----------------------------------------------------------------------------------


def test_preview_figures_by_hand(sessions, subscribers, gazetteer):
    data = yaml.safe_load(SAMPLE_DEPLOYMENT.read_text("utf-8"))
    data["campaigns"] = {"sms_price_per_segment": 0.05, "currency": "EUR"}
    deployment = parse_deployment(data)
    english = ("Don\u2019t trust " + "a job offer that pays too well. " * 5
               + "Reply STOP or /stop to stop.")
    assert len(english) == 200
    arabic = "عروض العمل في الخارج قد تكون فخا. أرسل STOP أو /stop للإيقاف."
    for n in range(3):
        subscribe(subscribers, f"en-sms-{n}", "sms", "en", ("ng-maiduguri", "ly-tripoli", None)[n])
    subscribe(subscribers, "en-tg", "telegram", "en", "ng-bama")
    subscribe(subscribers, "ar-sms-0", "sms", "ar", "ly-tripoli")
    subscribe(subscribers, "ar-sms-1", "sms", "ar", "ly-tripoli")
    subscribe(subscribers, "fr-sms", "sms", "fr", "ng-bama")  # no French text: not counted
    definition = definition_of(deployment, gazetteer, texts={"en": english, "ar": arabic},
                               telegram_channel={"chat": "@example_ngo_channel", "language": "en"})
    shown = preview(definition, sessions, subscribers, deployment, gazetteer, clock)
    en, ar = shown.languages
    # English: 200 characters, GSM-7 once the apostrophe is plain: 2 segments (153 + 47)
    assert en.sms_text.startswith("Don't trust") and en.telegram_text.startswith("Don\u2019t")
    assert (en.encoding, en.sms_characters, en.segments) == ("GSM-7", 200, 2)
    assert en.recipients == {"sms": 3, "telegram": 1}
    # Arabic: UCS-2, 61 characters: 1 segment
    assert (ar.encoding, ar.sms_characters, ar.segments) == ("UCS-2", len(arabic), 1)
    assert ar.recipients == {"sms": 2, "telegram": 0}
    # cost: (3 x 2 + 2 x 1) segments x EUR 0.05 = EUR 0.40
    assert (shown.sms_recipients, shown.sms_segments) == (5, 8)
    assert (en.sms_cost, ar.sms_cost) == (Decimal("0.30"), Decimal("0.10"))
    assert shown.estimated_cost == Decimal("0.40") and shown.currency == "EUR"
    assert shown.recipients == 6 and shown.telegram_channel == ("@example_ngo_channel", "en")
    # windows: Lagos (2 Nigerian places, 1 unknown area, the channel post) and Tripoli (3)
    windows = {w.timezone: w for w in shown.windows}
    assert set(windows) == {"Africa/Lagos", "Africa/Tripoli"}
    lagos, tripoli = windows["Africa/Lagos"], windows["Africa/Tripoli"]
    assert (lagos.recipients, tripoli.recipients) == (4, 3)
    assert not lagos.open_now and lagos.opens.isoformat() == "2026-12-01T09:00:00+01:00"
    assert tripoli.open_now and tripoli.closes.isoformat() == "2026-12-01T19:00:00+02:00"


# -- status ------------------------------------------------------------------------------------


def test_status_counts(sessions, subscribers, deployment, gazetteer):
    for n in range(7):
        subscribe(subscribers, f"c-{n}")
    definition = definition_of(deployment, gazetteer,
                               telegram_channel={"chat": "@example_ngo_channel", "language": "en"})
    queue_campaign(definition, sessions, subscribers, clock)
    figures = status("test-campaign-1", sessions)
    assert figures.counts == {"pending": 8, "sending": 0, "sent": 0, "failed": 0, "opted_out": 0}
    assert (figures.opted_out_since, figures.first_sent, figures.last_sent) == (0, None, None)
    assert figures.queued_at == NOW
    by_conversation = {}
    with sessions() as session:
        for subscriber_id, conversation in session.execute(
                sa.select(Subscriber.id, Subscriber.conversation_id)):
            by_conversation[conversation] = subscriber_id
    sent_times = [NOW + dt.timedelta(minutes=m) for m in (5, 1, 9)]

    def mark(conversation, **values):
        with sessions.begin() as session:
            session.execute(sa.update(OutboxMessage).where(
                OutboxMessage.subscriber_id == by_conversation[conversation]).values(**values))

    for conversation, moment in zip(("c-0", "c-1", "c-2"), sent_times):
        mark(conversation, state="sent", sent_at=moment)
    mark("c-3", state="failed", error="21211")
    mark("c-4", state="sending")
    mark("c-5", state="opted_out")
    subscribers.remove("c-6")  # unsubscribed before their message went: SET NULL, pending
    subscribers.remove("c-0")  # left after theirs was sent: not counted
    subscribers.remove("c-3")  # removed for a permanent failure: counted as failed only
    figures = status("test-campaign-1", sessions)
    assert figures.counts == {"pending": 2, "sending": 1, "sent": 3, "failed": 1, "opted_out": 1}
    assert figures.total == 8
    assert figures.opted_out_since == 2  # c-5 (opted_out) and c-6 (gone, pending)
    assert (figures.first_sent, figures.last_sent) == (NOW + dt.timedelta(minutes=1),
                                                      NOW + dt.timedelta(minutes=9))


def test_status_of_an_unknown_campaign(sessions, subscribers, deployment, gazetteer):
    with pytest.raises(CampaignError, match=r"^no campaign named 'nope' \(none is queued yet\)$"):
        status("nope", sessions)
    subscribe(subscribers, "c-1")
    queue_campaign(definition_of(deployment, gazetteer), sessions, subscribers, clock)
    with pytest.raises(CampaignError, match=r"latest queued: test-campaign-1"):
        status("nope", sessions)


# -- the command line --------------------------------------------------------------------------


@pytest.fixture
def helpline(tmp_path, monkeypatch):
    """``helpline`` on a migrated SQLite file with the sample places and its own secrets."""
    with helpline_database(tmp_path, monkeypatch) as sessions:
        yield sessions


def run(capsys, *argv) -> tuple[int, str, str]:
    code = cli.main(["campaign", *argv])
    out, err = capsys.readouterr()
    return code, out, err


ADDRESSES = ("+9991000001", "+9992000002", "+9993000003")


def cli_subscribers(sessions, tmp_path) -> None:
    from bot.privacy.keys import load_secrets

    fernet = load_secrets(tmp_path / "secrets.json").fernet()  # created here
    subs = Subscribers(sessions, fernet)
    for conversation, (channel, language, area), address in zip(
            ("c-1", "c-2", "c-3"),
            (("sms", "en", "ng-maiduguri"), ("telegram", "ar", "ng-bama"), ("sms", "fr", "ng-jere")),
            ADDRESSES):
        subs.consent(conversation, channel, language, area)
        subs.attach(conversation, address)


def test_cli_check(helpline, capsys, tmp_path):
    code, out, err = run(capsys, "check", str(SAMPLE_CAMPAIGN))
    assert code == 2 and out == ""
    assert err.startswith("audience: no subscriber matches")
    cli_subscribers(helpline, tmp_path)
    code, out, err = run(capsys, "check", str(SAMPLE_CAMPAIGN))
    assert (code, err) == (0, "")
    assert out == (f"{SAMPLE_CAMPAIGN}: campaign sample-fake-job-offers-2026-12 is valid; it "
                   f"reaches 3 subscribers now\n")


def test_cli_commands_delete_subscribers_whose_consent_ran_out(helpline, capsys, tmp_path):
    """Nobody whose consent ran out (campaigns.consent_months, 12 in the sample) is counted or
    queued: every campaign command deletes them first, as `helpline purge` does."""
    cli_subscribers(helpline, tmp_path)
    long_ago = dt.datetime.now(UTC) - dt.timedelta(days=400)
    with helpline.begin() as session:
        session.execute(sa.update(Subscriber).where(Subscriber.conversation_id == "c-1")
                        .values(consented_at=long_ago))
    code, out, err = run(capsys, "check", str(SAMPLE_CAMPAIGN))
    assert code == 0 and "reaches 2 subscribers now" in out
    assert err == "deleted 1 subscriber(s) whose consent ran out (campaigns.consent_months)\n"
    with helpline() as session:
        assert session.execute(sa.select(Subscriber.conversation_id)
                               .order_by(Subscriber.conversation_id)).scalars().all() == ["c-2", "c-3"]
    assert run(capsys, "check", str(SAMPLE_CAMPAIGN))[2] == ""  # nothing more to delete


def test_cli_check_lists_every_problem_on_stderr(helpline, capsys, tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text('name: Bad\ntexts: {en: ""}\nwindow: {start: "25:00", end: "19:00"}\n', "utf-8")
    code, out, err = run(capsys, "check", str(bad))
    assert code == 2 and out == ""
    assert err.startswith(f"campaign file {bad} is not valid:\n")
    for problem in ("  - name: 'Bad' must be lowercase", "  - texts.en: empty",
                    "  - window.start: '25:00' is not a time (HH:MM)"):
        assert problem in err
    code, _, err = run(capsys, "check", str(tmp_path / "missing.yml"))
    assert code == 2 and "cannot read the file" in err


def test_cli_needs_a_migrated_database(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HELPLINE_DATABASE_URL", f"sqlite:///{tmp_path}/empty.db")
    code, out, err = run(capsys, "check", str(SAMPLE_CAMPAIGN))
    assert code == 2 and out == "" and "run `helpline db upgrade`" in err


def test_cli_preview(helpline, capsys, tmp_path):
    cli_subscribers(helpline, tmp_path)
    code, out, err = run(capsys, "preview", str(SAMPLE_CAMPAIGN))
    assert (code, err) == (0, "")
    assert out.startswith(f"Campaign sample-fake-job-offers-2026-12 ({SAMPLE_CAMPAIGN})\n"
                          f"Audience: 3 subscribers\n")
    assert "  en                 1         0         1" in out
    assert "  ar                 0         1         1" in out
    assert "[fr] French, SMS: 2 segments, GSM-7, 207 septets" in out
    assert "peut etre un piège" in out  # the SMS as sent: ê folded, è kept (GSM-7 has it)
    assert "[ar] Arabic, SMS: 2 segments, UCS-2" in out
    assert "Window: 09:00-19:00 in each recipient's local time" in out
    assert "  Africa/Lagos (3): " in out
    # 2 SMS recipients (en, fr) x 2 segments x USD 0.0075 = USD 0.03
    assert "Estimated SMS cost: 4 segments x USD 0.0075 = USD 0.03" in out
    for address in ADDRESSES:
        assert address not in out and address[1:] not in out


def test_cli_queue_and_status(helpline, capsys, tmp_path):
    code, _, err = run(capsys, "queue", str(SAMPLE_CAMPAIGN))
    assert code == 2 and err.startswith("audience: no subscriber matches")
    cli_subscribers(helpline, tmp_path)
    code, out, err = run(capsys, "queue", str(SAMPLE_CAMPAIGN))
    assert (code, err) == (0, "")
    assert out == ("campaign sample-fake-job-offers-2026-12: queued 3 messages\n"
                   "nothing is sent until the dispatcher runs\n")
    code, out, _ = run(capsys, "queue", str(SAMPLE_CAMPAIGN))
    assert code == 0 and "already queued; 0 new subscriber messages added, 3 were queued" in out
    changed = tmp_path / "changed.yml"
    changed.write_text(SAMPLE_CAMPAIGN.read_text("utf-8").replace("cap_per_week: 1", "cap_per_week: 2"),
                       "utf-8")
    code, out, err = run(capsys, "queue", str(changed))
    assert code == 2 and out == ""
    assert "a campaign named 'sample-fake-job-offers-2026-12' was queued on" in err
    code, out, err = run(capsys, "status", "sample-fake-job-offers-2026-12")
    assert (code, err) == (0, "")
    assert "3 messages\n  pending: 3\n  sending: 0\n  sent: 0\n  failed: 0\n  opted_out: 0\n" in out
    assert "  opted out since queued: 0" in out and "nothing sent yet" in out
    for address in ADDRESSES:
        assert address not in out
    code, out, err = run(capsys, "status", "nope")
    assert code == 2 and out == "" and err.startswith("no campaign named 'nope'")


def test_cli_needs_an_action(helpline, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["campaign"])
    assert info.value.code == 2
    with pytest.raises(SystemExit):
        cli.main(["campaign", "check"])  # no file


def test_opened_with_secrets_for_send(helpline, tmp_path):
    """``send`` (added beside these commands) opens the same context with the route keys."""
    from bot.campaigns.cli import CommandError, opened
    from bot.settings import Settings

    with pytest.raises(CommandError, match="^secrets: no secrets file"):
        with opened(Settings.from_env(), secrets=True):
            pass
    cli_subscribers(helpline, tmp_path)  # creates the secrets file
    with opened(Settings.from_env(), secrets=True) as context:
        subscriber = context.subscribers.get("c-1")
        assert context.subscribers.address(subscriber.id) == ADDRESSES[0]
        assert "ng-maiduguri" in context.gazetteer.places


def test_cli_send_queues_and_sends_with_a_progress_bar(helpline, capsys, tmp_path, monkeypatch):
    """``helpline campaign send``: the campaign queued and sent through the fake Twilio and
    Telegram (the credentials file as the Rasa server reads it), a progress bar on stderr,
    each subscriber reached once; sending again sends nothing more."""
    from bot.campaigns.cli import progress_bar
    from tests.utils.campaigns import any_hour_deployment
    from tests.utils.channel_clients import fake_providers

    assert progress_bar(0, 4, width=4) == "[....] 0 / 4"
    assert progress_bar(3, 4, width=4) == "[###.] 3 / 4"
    assert progress_bar(5, 0, width=4) == "[####] 5 / 0"
    cli_subscribers(helpline, tmp_path)
    always = tmp_path / "always.yml"  # sendable at any hour the test runs
    always.write_text(SAMPLE_CAMPAIGN.read_text("utf-8").replace(
        'window: {start: "09:00", end: "19:00"}', 'window: {start: "00:00", end: "23:59"}'),
        "utf-8")
    monkeypatch.setenv("HELPLINE_DEPLOYMENT", str(any_hour_deployment(tmp_path)))
    with fake_providers(tmp_path, monkeypatch) as (twilio, telegram, credentials):
        code, out, err = run(capsys, "send", str(always), "--credentials", str(credentials))
        assert code == 0, err
        assert "queued 3 messages" in out and "[" in err and "3 / 3" in err
        assert sorted(m["To"] for m in twilio.delivered()) == [ADDRESSES[0], ADDRESSES[2]]
        assert [str(m["chat_id"]) for m in telegram.sent()] == [ADDRESSES[1]]
        for address in ADDRESSES:
            assert address not in out and address not in err
        code, out, err = run(capsys, "send", str(always), "--credentials", str(credentials))
        assert code == 0 and "0 new subscriber messages added" in out
        assert len(twilio.delivered()) == 2 and len(telegram.sent()) == 1
        code, out, err = run(capsys, "send", str(always), "--credentials", str(tmp_path / "no.yml"))
        assert code == 0  # nothing waits: no provider needed
