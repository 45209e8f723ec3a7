"""Subscribing to the campaigns' safety messages: the subscribers table on SQLite and
PostgreSQL (the address encrypted, deleted at once by STOP or a quick exit, kept through the
idle purge), the subscribe / unsubscribe actions on each channel, the consent's yes, and the
channel attaching the address in the same turn. The consent's expiry (calendar months of the
deployment's ``campaigns.consent_months``): ``expire`` on both databases, asking again renewing
it (and saying for how long), an expired subscriber asked again, ``helpline purge``'s count."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet, MultiFernet

from actions.campaigns import ActionSubscribe, ActionUnsubscribe
from actions.help import ActionAnswerOffer
from bot.campaigns.models import Subscriber
from bot.campaigns.service import ATTACH, subscribers_for
from bot.campaigns.subscribers import SubscriberError, Subscribers, add_months, consent_cutoff
from bot.privacy import erasure
from bot.privacy.keys import Secrets
from bot.privacy.routes import MemoryRouteCache
from bot.storage import make_engine, session_factory, upgrade
from channels.gateway import Gateway
from tests.conftest import responses_sent
from tests.test_handoff import migrated, run, tracker

KEY = Fernet.generate_key()
NUMBER = "+999 555 0181"
SENDER = "c" + "9" * 31


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    url = (f"sqlite:///{tmp_path}/subscribers.db" if request.param == "sqlite"
           else request.getfixturevalue("postgres_url"))
    engine = make_engine(url)
    upgrade(engine)
    yield Subscribers(session_factory(engine), MultiFernet([Fernet(KEY)]))
    engine.dispose()


@pytest.fixture
def database(tmp_path, monkeypatch):
    url = migrated(tmp_path)
    monkeypatch.setenv("HELPLINE_DATABASE_URL", url)
    monkeypatch.setenv("HELPLINE_SECRETS_FILE", str(tmp_path / "secrets.json"))
    return url


def raw_rows(store: Subscribers) -> str:
    with store._sessions() as session:
        return repr(session.execute(sa.select(Subscriber.__table__)).all())


def test_consent_attach_and_the_address_encrypted_at_rest(store):
    view = store.consent(SENDER, "sms", "fr", "ng-maiduguri")
    assert (view.language, view.area, view.reachable) == ("fr", "ng-maiduguri", False)
    assert store.attach(SENDER, NUMBER)
    assert store.get(SENDER).reachable and store.address(view.id) == NUMBER
    stored = raw_rows(store)
    digits = NUMBER.replace(" ", "").lstrip("+")  # short runs ("555") can occur in a time
    assert NUMBER not in stored and digits not in stored and "5550181" not in stored
    # a renewed yes keeps the address and takes the new language
    again = store.consent(SENDER, "sms", "en")
    assert again.id == view.id and again.language == "en" and again.reachable
    assert not store.attach("c" + "0" * 31, NUMBER)  # nobody consented there: nothing kept
    assert "c" + "0" * 31 not in raw_rows(store)


def test_stop_deletes_the_subscriber_and_the_address_at_once(store):
    view = store.consent(SENDER, "telegram", "ar")
    store.attach(SENDER, "700400181")
    assert store.remove(SENDER) and store.get(SENDER) is None
    assert store.address(view.id) is None and raw_rows(store) == "[]"
    assert not store.remove(SENDER)
    other = store.consent("c" + "1" * 31, "sms", "es")
    assert store.remove_id(other.id) and not store.remove_id(other.id)


def test_the_audience_is_the_reachable_subscribers_of_its_languages_areas_channels(store):
    for n, (channel, language, area, attached) in enumerate([
            ("sms", "fr", "ng-maiduguri", True), ("telegram", "fr", "ng-jere", True),
            ("sms", "en", "ng-maiduguri", True), ("sms", "fr", None, True),
            ("sms", "fr", "ng-maiduguri", False)]):
        conversation = f"c{n:031d}"
        store.consent(conversation, channel, language, area)
        if attached:
            store.attach(conversation, f"+99955501{n:02d}")
    assert store.count(["fr"]) == 3
    assert store.count(["fr", "en"], ["ng-maiduguri"]) == 2
    assert store.count(["fr"], ["ng-maiduguri", "ng-jere"], channels=["telegram"]) == 1
    assert store.count(["ar"]) == 0 and store.count(["fr"], []) == 0


def test_bad_values_are_refused_with_the_reason(store):
    with pytest.raises(SubscriberError, match="webchat"):
        store.consent(SENDER, "webchat", "en")
    with pytest.raises(SubscriberError, match="'de'"):
        store.consent(SENDER, "sms", "de")
    assert not store.attach(SENDER, "")


def test_a_quick_exit_ends_the_subscription_but_the_idle_purge_does_not(store):
    store.consent(SENDER, "sms", "en")
    store.attach(SENDER, NUMBER)
    erasure.register("subscribers (test)", store.erase, on_expiry=False)
    try:
        asyncio.run(erasure.erase(SENDER, expiry=True))  # an idle conversation deleted
        assert store.get(SENDER) is not None
        asyncio.run(erasure.erase(SENDER))  # quick exit or "forget me"
        assert store.get(SENDER) is None
    finally:
        erasure.unregister("subscribers (test)")


# -- the dialogue's side ---------------------------------------------------------------------

def test_subscribe_asks_for_consent_on_sms_and_telegram_only(database):
    for channel in ("sms", "telegram"):
        events, dispatcher = run(ActionSubscribe(), tracker(SENDER, intent="subscribe",
                                                            channel=channel))
        assert responses_sent(dispatcher) == ["utter_subscribe_consent"]
        assert "at most 2 a week" in dispatcher.messages[0]["text"]  # the deployment's cap
        assert "for 12 months" in dispatcher.messages[0]["text"]  # campaigns.consent_months
        assert {"event": "slot", "timestamp": None, "name": "offer", "value": "subscribe"} in events
    for channel in ("webchat", "helpline"):
        _, dispatcher = run(ActionSubscribe(), tracker(SENDER, intent="subscribe",
                                                       channel=channel))
        assert responses_sent(dispatcher) == ["utter_subscribe_channel_only"]
    assert subscribers_for(database).get(SENDER) is None  # asking records nothing


def test_without_the_campaigns_tables_subscribing_is_honestly_unavailable(tmp_path, monkeypatch):
    monkeypatch.setenv("HELPLINE_DATABASE_URL", f"sqlite:///{tmp_path}/empty.db")
    _, dispatcher = run(ActionSubscribe(), tracker(SENDER, intent="subscribe"))
    assert responses_sent(dispatcher) == ["utter_subscribe_unavailable"]
    _, dispatcher = run(ActionUnsubscribe(), tracker(SENDER, intent="unsubscribe"))
    assert responses_sent(dispatcher) == ["utter_unsubscribe_none"]


def test_yes_records_the_subscriber_and_asks_the_channel_for_the_address(database):
    slots = {"offer": "subscribe", "service_place": "ng-maiduguri"}
    _, dispatcher = run(ActionAnswerOffer(), tracker(SENDER, slots=slots, channel="telegram"))
    assert responses_sent(dispatcher) == ["utter_subscribe_done"]
    assert dispatcher.messages[0]["metadata"] == {"language": "en", **ATTACH}
    view = subscribers_for(database).get(SENDER)
    assert (view.channel, view.language, view.area, view.reachable) == (
        "telegram", "en", "ng-maiduguri", False)
    _, dispatcher = run(ActionSubscribe(), tracker(SENDER, intent="subscribe"))
    assert responses_sent(dispatcher) == ["utter_subscribe_consent"]  # no address yet: ask again
    subscribers_for(database).attach(SENDER, "700400181")
    _, dispatcher = run(ActionSubscribe(), tracker(SENDER, intent="subscribe"))
    assert responses_sent(dispatcher) == ["utter_subscribe_already"]
    _, dispatcher = run(ActionUnsubscribe(), tracker(SENDER, intent="unsubscribe"))
    assert responses_sent(dispatcher) == ["utter_unsubscribe_done"]
    assert subscribers_for(database).get(SENDER) is None


def test_no_records_nothing(database):
    _, dispatcher = run(ActionAnswerOffer(), tracker(SENDER, intent="deny", text="no",
                                                     slots={"offer": "subscribe"}))
    assert responses_sent(dispatcher) == ["utter_offer_declined"]
    assert subscribers_for(database).get(SENDER) is None


def test_the_channel_attaches_the_address_in_the_consent_turn_only(database):
    key = Fernet.generate_key().decode()
    routes = MemoryRouteCache(MultiFernet([Fernet(key)]), idle_seconds=60)
    gateway = Gateway("sms", Secrets(b"k" * 32, (key,)), routes)
    try:
        admitted = asyncio.run(gateway.admit(NUMBER, "yes"))
        store = subscribers_for(database)
        store.consent(admitted.conversation_id, "sms", "en")
        asyncio.run(gateway.remember_turn(admitted, [{"text": "Other turn", "metadata": {}}]))
        assert not store.get(admitted.conversation_id).reachable
        asyncio.run(gateway.remember_turn(admitted, [
            {"text": "Done", "metadata": {"language": "en", **ATTACH}}]))
        view = store.get(admitted.conversation_id)
        assert view.reachable and store.address(view.id) == NUMBER
    finally:
        routes.close()
    assert dt.datetime.now(dt.timezone.utc) - view.consented_at < dt.timedelta(minutes=1)


# -- the consent's expiry and renewal ----------------------------------------------------------

NOW = dt.datetime(2026, 11, 26, 10, 0, tzinfo=dt.timezone.utc)


def at(store: Subscribers, moment: dt.datetime) -> Subscribers:
    """The same subscribers seen by a clock standing at ``moment``."""
    return Subscribers(store._sessions, store._fernet, clock=lambda: moment)


@pytest.mark.parametrize("language, months, text", [
    ("en", 1, "1 month"), ("en", 12, "12 months"), ("fr", 1, "1 mois"), ("fr", 6, "6 mois"),
    ("es", 1, "1 mes"), ("es", 24, "24 meses"), ("ar", 1, "شهر واحد"), ("ar", 2, "شهرين"),
    ("ar", 6, "6 أشهر"), ("ar", 10, "10 أشهر"), ("ar", 11, "11 شهرًا"), ("ar", 12, "12 شهرًا"),
])
def test_the_consent_says_its_months_with_the_noun_agreeing(language, months, text):
    from actions.campaigns import months_text
    from bot.catalog import load_catalog

    assert months_text(language, months) == text
    consent = load_catalog().texts[language]["utter_subscribe_consent"]
    assert "{months}." in consent  # the noun comes with the number, not after it


def test_months_are_calendar_months_clamped_to_the_months_end():
    assert add_months(NOW, -12) == dt.datetime(2025, 11, 26, 10, 0, tzinfo=dt.timezone.utc)
    assert add_months(dt.datetime(2026, 3, 31, 8, 30), -1) == dt.datetime(2026, 2, 28, 8, 30)
    assert add_months(dt.datetime(2024, 1, 31), 1) == dt.datetime(2024, 2, 29)  # leap year
    assert add_months(dt.datetime(2026, 1, 15), 24) == dt.datetime(2028, 1, 15)
    assert add_months(dt.datetime(2026, 1, 15), -13) == dt.datetime(2024, 12, 15)
    lagos = dt.timezone(dt.timedelta(hours=1))
    assert consent_cutoff(NOW.astimezone(lagos), 12) == add_months(NOW, -12)  # always UTC
    assert consent_cutoff(NOW.replace(tzinfo=None), 12) == add_months(NOW, -12)  # naive: UTC
    with pytest.raises(ValueError):
        consent_cutoff(NOW, 0)


def test_expire_deletes_the_subscribers_and_addresses_older_than_the_consent(store):
    cutoff = add_months(NOW, -12)
    given = {"c" + "a" * 31: NOW - dt.timedelta(days=500),  # long expired
             "c" + "b" * 31: cutoff - dt.timedelta(seconds=1),  # expired a second ago
             "c" + "c" * 31: cutoff,  # exactly 12 months: still valid
             "c" + "d" * 31: NOW - dt.timedelta(days=30)}
    for n, (conversation, moment) in enumerate(given.items()):
        at(store, moment).consent(conversation, "sms", "en", "ng-maiduguri")
        store.attach(conversation, f"+99955501{n:02d}")
    views = {c: store.get(c) for c in given}
    assert views["c" + "c" * 31].consented_at == cutoff  # the time zone comes back as UTC
    now = at(store, NOW)
    assert [now.expired(views[c], 12) for c in given] == [True, True, False, False]
    assert views["c" + "c" * 31].expires_at(12) == NOW
    assert views["c" + "c" * 31].expired(12, NOW + dt.timedelta(seconds=1))

    assert now.expire(12) == 2
    assert {c for c in given if store.get(c)} == {"c" + "c" * 31, "c" + "d" * 31}
    assert store.address(views["c" + "a" * 31].id) is None  # the encrypted address went with it
    with store._sessions() as session:
        assert len(session.execute(sa.select(Subscriber.address)).all()) == 2
    assert now.expire(12) == 0  # nothing left to expire
    assert at(store, NOW + dt.timedelta(seconds=1)).expire(12) == 1  # now 12 months and 1 s
    assert at(store, NOW).expire(1) == 0  # 30 days ago is within one calendar month of NOW
    assert at(store, NOW).expire(1, now=NOW + dt.timedelta(days=1)) == 0  # exactly a month
    assert at(store, NOW).expire(1, now=NOW + dt.timedelta(days=1, seconds=1)) == 1
    assert raw_rows(store) == "[]"


def test_expire_among_given_ids_keeps_the_others_and_renewed_consents(store):
    old = NOW - dt.timedelta(days=400)
    first = at(store, old).consent("c" + "e" * 31, "telegram", "fr")
    second = at(store, old).consent("c" + "f" * 31, "sms", "ar")
    renewed = at(store, old).consent("c" + "0" * 31, "sms", "es")
    at(store, NOW).consent("c" + "0" * 31, "sms", "es")  # asked again: renewed today
    assert at(store, NOW).expire(12, ids=[first.id, renewed.id, first.id]) == 1
    assert store.get("c" + "e" * 31) is None
    assert store.get("c" + "f" * 31).id == second.id  # expired, but not among the ids
    assert store.get("c" + "0" * 31).consented_at == NOW  # renewed: kept
    assert at(store, NOW).expire(12, ids=[]) == 0


def test_asking_again_renews_the_consent_and_says_for_how_long(database):
    store = subscribers_for(database)
    slots = {"offer": "subscribe", "service_place": "ng-maiduguri"}
    run(ActionAnswerOffer(), tracker(SENDER, slots=slots, channel="sms"))
    store.attach(SENDER, NUMBER)
    five_months_ago = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=150)
    with store._sessions.begin() as session:
        session.execute(sa.update(Subscriber).values(consented_at=five_months_ago))
    events, dispatcher = run(ActionSubscribe(), tracker(SENDER, intent="subscribe"))
    assert responses_sent(dispatcher) == ["utter_subscribe_already"]
    assert "They now continue for another 12 months from today." in dispatcher.messages[0]["text"]
    assert {"event": "slot", "timestamp": None, "name": "offer", "value": None} in events
    view = store.get(SENDER)
    assert dt.datetime.now(dt.timezone.utc) - view.consented_at < dt.timedelta(minutes=1)
    assert view.area == "ng-maiduguri" and store.address(view.id) == NUMBER  # both kept
    # in French, from a services search elsewhere: the language and the area follow
    french = tracker(SENDER, intent="subscribe", slots={"language": "fr",
                                                        "service_place": "ng-jere"})
    french.events.insert(0, {"event": "slot", "name": "language", "value": "fr"})  # chosen
    _, dispatcher = run(ActionSubscribe(), french)
    assert "encore 12 mois à partir d'aujourd'hui" in dispatcher.messages[0]["text"]
    assert (store.get(SENDER).language, store.get(SENDER).area) == ("fr", "ng-jere")
    # JOIN in a new conversation (after a reminder, the old one purged for idleness): the
    # session start set the default language, nothing else did, so the subscriber's own
    new = tracker(SENDER, intent="subscribe")
    new.events[:0] = [{"event": "session_started"},
                      {"event": "slot", "name": "language", "value": "en"}]
    events, dispatcher = run(ActionSubscribe(), new)
    assert "encore 12 mois à partir d'aujourd'hui" in dispatcher.messages[0]["text"]
    assert store.get(SENDER).language == "fr"
    assert {"event": "slot", "timestamp": None, "name": "language", "value": "fr"} in events
    # ...but English chosen in this session (a second setting after the start's) is kept
    new.events[2:2] = [{"event": "slot", "name": "language", "value": "en"}]
    _, dispatcher = run(ActionSubscribe(), new)
    assert "another 12 months from today" in dispatcher.messages[0]["text"]
    assert store.get(SENDER).language == "en"


def test_an_expired_subscriber_asking_again_is_deleted_and_asked_for_consent(database):
    store = subscribers_for(database)
    run(ActionAnswerOffer(), tracker(SENDER, slots={"offer": "subscribe"}, channel="telegram"))
    store.attach(SENDER, "700400181")
    with store._sessions.begin() as session:
        session.execute(sa.update(Subscriber).values(
            consented_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=400)))
    events, dispatcher = run(ActionSubscribe(), tracker(SENDER, intent="subscribe",
                                                        channel="telegram"))
    assert responses_sent(dispatcher) == ["utter_subscribe_consent"]
    assert {"event": "slot", "timestamp": None, "name": "offer", "value": "subscribe"} in events
    assert store.get(SENDER) is None  # the number is not kept past the consent


@pytest.fixture
def purge_env(tmp_path, monkeypatch):
    url = migrated(tmp_path)
    for name, value in {"HELPLINE_DATABASE_URL": url, "HELPLINE_REDIS_URL": "",
                        "HELPLINE_SECRETS_FILE": str(tmp_path / "secrets.json")}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("HELPLINE_ROUTE_KEYS", raising=False)
    monkeypatch.delenv("HELPLINE_PSEUDONYM_KEY", raising=False)
    yield url
    from channels.gateway import shared_routes, shared_secrets

    if shared_routes.cache_info().currsize:
        shared_routes().close()
    shared_routes.cache_clear()
    shared_secrets.cache_clear()


def test_purge_deletes_the_subscribers_whose_consent_expired(purge_env, capsys):
    from bot import cli

    store = subscribers_for(purge_env)
    now = dt.datetime.now(dt.timezone.utc)
    for n, days in enumerate([400, 370, 300, 1]):
        conversation = f"c{n:031d}"
        at(store, now - dt.timedelta(days=days)).consent(conversation, "sms", "en")
        store.attach(conversation, f"+99955501{n:02d}")
    assert cli.main(["purge"]) == 0
    out = capsys.readouterr().out
    assert "deleted 2 subscriber(s) whose consent expired" in out, out
    assert [store.get(f"c{n:031d}") is not None for n in range(4)] == [False, False, True, True]
    assert cli.main(["purge"]) == 0
    assert "deleted 0 subscriber(s) whose consent expired" in capsys.readouterr().out
