"""Subscribing to the campaigns' safety messages: the subscribers table on SQLite and
PostgreSQL (the address encrypted, deleted at once by STOP or a quick exit, kept through the
idle purge), the subscribe / unsubscribe actions on each channel, the consent's yes, and the
channel attaching the address in the same turn."""

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
from bot.campaigns.subscribers import SubscriberError, Subscribers
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
    assert "555" not in stored and "0181" not in stored  # only the Fernet token
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
