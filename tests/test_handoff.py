"""The hand-off's dialogue side: actions on a migrated database with caseworker accounts, the
rules that keep the assistant quiet, the next opening of cover; and, with the trained model
and a real action server, whole conversations: consent, queue, relay both ways, quick exit."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid

import pytest
import yaml
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from bot.cases.queue import User
from bot.cases.service import HandOff, cases_for
from bot.deployment import load_deployment
from bot.settings import PROJECT_ROOT, Settings
from bot.storage import make_engine, session_factory, upgrade
from tests.conftest import SAMPLE_DEPLOYMENT, responses_sent

AMINA = User("amina")
LAGOS = dt.timezone(dt.timedelta(hours=1))
PASS_THROUGH = {"quick_exit", "forget_me", "emergency"}


def migrated(path, caseworkers=("amina",)) -> str:
    from console.users import Users

    url = f"sqlite:///{path}/handoff.db"
    engine = make_engine(url)
    upgrade(engine)
    users = Users(session_factory(engine))
    for name in caseworkers:
        users.add(name, "a long enough password")
    engine.dispose()
    return url


@pytest.fixture
def database(tmp_path, monkeypatch):
    url = migrated(tmp_path)
    monkeypatch.setenv("HELPLINE_DATABASE_URL", url)
    return url


def tracker(sender="c" + "1" * 31, intent="affirm", text="yes", slots=None, channel="sms"):
    events = [{"event": "user", "text": text, "parse_data": {"intent": {"name": intent}},
               "input_channel": channel}]
    return Tracker(sender, {"language": "en", **(slots or {})},
                   {"intent": {"name": intent}, "text": text, "entities": []},
                   events, False, None, {}, "action_listen")


def run(action, tracker_) -> tuple[list, CollectingDispatcher]:
    dispatcher = CollectingDispatcher()
    events = asyncio.run(action.run(dispatcher, tracker_, {}))
    return events, dispatcher


def test_without_caseworker_accounts_the_assistant_says_it_is_not_available(tmp_path, monkeypatch):
    from actions.help import ActionRequestHuman

    monkeypatch.setenv("HELPLINE_DATABASE_URL", migrated(tmp_path, caseworkers=()))
    events, dispatcher = run(ActionRequestHuman(), tracker(intent="request_human"))
    assert responses_sent(dispatcher) == ["utter_handoff_unavailable"]
    assert {"event": "slot", "timestamp": None, "name": "offer", "value": None} in events


def test_an_unmigrated_database_also_means_not_available(tmp_path, monkeypatch):
    from actions.help import ActionRequestHuman

    monkeypatch.setenv("HELPLINE_DATABASE_URL", f"sqlite:///{tmp_path}/empty.db")
    _, dispatcher = run(ActionRequestHuman(), tracker(intent="request_human"))
    assert responses_sent(dispatcher) == ["utter_handoff_unavailable"]


@pytest.mark.parametrize("on_shift,response", [(True, "utter_handoff_queued"),
                                               (False, "utter_handoff_after_hours")])
def test_consent_then_yes_queues_the_case(database, monkeypatch, on_shift, response):
    from actions.help import ActionAnswerOffer, ActionRequestHuman

    monkeypatch.setattr(HandOff, "on_shift", lambda self, deployment, now: on_shift)
    events, dispatcher = run(ActionRequestHuman(), tracker(intent="request_human"))
    assert responses_sent(dispatcher) == ["utter_handoff_consent"]
    assert [b["payload"] for b in dispatcher.messages[0]["buttons"]] == ["/affirm", "/deny"]
    assert {"event": "slot", "timestamp": None, "name": "offer", "value": "handoff"} in events

    slots = {"offer": "handoff", "triage_level": "high", "triage_needs": ["anti_trafficking"],
             "service_place": "NG-BO-MAI", "area": "NG"}
    events, dispatcher = run(ActionAnswerOffer(), tracker(slots=slots))
    assert responses_sent(dispatcher) == [response]
    assert {"event": "slot", "timestamp": None, "name": "handoff", "value": "open"} in events
    if not on_shift:
        text = dispatcher.messages[0]["text"]
        assert "+999 234 000" in text  # Nigeria's emergency contacts, the area's
        assert any(day in text for day in ("Mon ", "Tue ", "Wed ", "Thu ", "Fri ", "Sat "))
    [case] = cases_for(database).queue()
    assert (case.channel, case.language, case.triage_level, case.needs, case.area) == (
        "sms", "en", "high", ("anti_trafficking",), "NG-BO-MAI")


def test_a_person_who_skipped_every_question_gets_a_case_without_a_level(database, monkeypatch):
    """Triage "unknown" (nothing answered) is not a case level: the case says "none"."""
    from actions.help import ActionAnswerOffer

    monkeypatch.setattr(HandOff, "on_shift", lambda self, deployment, now: True)
    slots = {"offer": "handoff", "triage_level": "unknown", "triage_needs": []}
    events, _ = run(ActionAnswerOffer(), tracker(slots=slots))
    assert {"event": "slot", "timestamp": None, "name": "handoff", "value": "open"} in events
    [case] = cases_for(database).queue()
    assert case.triage_level == "none"


def test_no_to_the_consent_question_opens_nothing(database):
    from actions.help import ActionAnswerOffer

    _, dispatcher = run(ActionAnswerOffer(), tracker(intent="deny", text="no",
                                                     slots={"offer": "handoff"}))
    assert responses_sent(dispatcher) == ["utter_offer_declined"]
    assert cases_for(database).queue() == []


def test_messages_go_to_the_transcript_and_replies_come_back(database):
    from actions.handoff import ActionHandoffClosed, ActionRelayCaseworker, ActionRelayToCaseworker

    cases = cases_for(database)
    sender = "c" + "2" * 31
    case = cases.open(sender, "telegram", "en", "medium")
    cases.claim(case.id, AMINA)
    events, dispatcher = run(ActionRelayToCaseworker(),
                             tracker(sender, intent="ask_rights", text="they kept my passport",
                                     slots={"handoff": "open"}))
    assert events == [] and dispatcher.messages == []  # the assistant stays quiet
    assert [line.text for line in cases.transcript(case.id, AMINA)] == ["they kept my passport"]

    cases.record(case.id, "caseworker", "I am here. Are you safe?", AMINA)
    events, dispatcher = run(ActionRelayCaseworker(), tracker(sender, slots={"handoff": "open"}))
    assert [m["text"] for m in dispatcher.messages] == ["I am here. Are you safe?"]
    _, dispatcher = run(ActionRelayCaseworker(), tracker(sender, slots={"handoff": "open"}))
    assert dispatcher.messages == []  # sent once only

    cases.close(case.id, AMINA, "referred")
    events, dispatcher = run(ActionHandoffClosed(), tracker(sender, slots={"handoff": "open"}))
    assert responses_sent(dispatcher) == ["utter_handoff_closed"]
    assert {"event": "slot", "timestamp": None, "name": "handoff", "value": None} in events
    assert events[-1]["event"] == "action" and events[-1]["name"] == "action_listen"


def test_a_reply_no_channel_could_deliver_goes_with_the_next_answer(database, tmp_path):
    """A push output without a reply route (a restarted in-memory cache) marks the reply not
    sent in the case (``Gateway.undeliverable``); the person's next message brings it."""
    from cryptography.fernet import Fernet, MultiFernet

    from actions.handoff import ActionRelayCaseworker, ActionRelayToCaseworker
    from bot.privacy.keys import Secrets
    from bot.privacy.routes import MemoryRouteCache
    from channels.gateway import Gateway
    from channels.webchat import WebChatInput

    cases = cases_for(database)
    sender = "c" + "8" * 31
    case = cases.open(sender, "webchat", "en", "medium")
    cases.claim(case.id, AMINA)
    cases.record(case.id, "caseworker", "Are you still there?", AMINA)
    cases.record(case.id, "caseworker", "I will wait.", AMINA)
    _, dispatcher = run(ActionRelayCaseworker(), tracker(sender, slots={"handoff": "open"}))
    key = Fernet.generate_key().decode()
    routes = MemoryRouteCache(MultiFernet([Fernet(key)]), idle_seconds=60)  # empty: restarted
    push = WebChatInput(Gateway("webchat", Secrets(b"k" * 32, (key,)), routes)).get_output_channel()
    try:
        for message in dispatcher.messages:
            asyncio.run(push.send_response(sender, message))
    finally:
        routes.close()
    assert not cases.undeliver(sender, "never sent")
    _, dispatcher = run(ActionRelayToCaseworker(),
                        tracker(sender, intent="greet", text="hello?", slots={"handoff": "open"}))
    assert [m["text"] for m in dispatcher.messages] == ["Are you still there?", "I will wait."]
    assert [line.text for line in cases.transcript(case.id, AMINA)][-1] == "hello?"
    _, dispatcher = run(ActionRelayToCaseworker(),
                        tracker(sender, intent="greet", text="ok", slots={"handoff": "open"}))
    assert dispatcher.messages == []  # once


def test_an_emergency_during_a_hand_off_tops_the_queue_and_tells_the_caseworker(database):
    from actions.safety import ActionEmergency

    cases = cases_for(database)
    calm = cases.open("c" + "5" * 31, "sms", "en", "high")
    sender = "c" + "6" * 31
    case = cases.open(sender, "sms", "en", "low")
    cases.claim(case.id, AMINA)
    events, dispatcher = run(ActionEmergency(), tracker(sender, intent="emergency", text="sos",
                                                        slots={"handoff": "open", "area": "NG"}))
    assert responses_sent(dispatcher) == ["utter_emergency_contacts"]  # no offer of a person
    assert not any(e.get("name") == "offer" for e in events)
    assert cases.case(case.id, AMINA).triage_level == "emergency"
    assert [line.author for line in cases.transcript(case.id, AMINA)] == ["assistant"]
    assert "EMERGENCY" in cases.transcript(case.id, AMINA)[0].text
    assert [c.id for c in cases.queue()] == [calm.id]  # the escalated case is claimed already
    cases.transfer(case.id, AMINA, "bob")
    assert cases.mine(User("bob"))[0].triage_level == "emergency"


def test_a_message_after_the_case_closed_brings_the_assistant_back(database):
    from actions.handoff import ActionRelayToCaseworker

    _, dispatcher = run(ActionRelayToCaseworker(),
                        tracker("c" + "3" * 31, intent="greet", text="hello?",
                                slots={"handoff": "open"}))
    assert responses_sent(dispatcher) == ["utter_handoff_closed"]


def test_the_quick_exit_erases_the_open_case(database, tmp_path):
    from bot.tracker_store import PrivateTrackerStore

    cases = cases_for(database)
    case = cases.open("c" + "4" * 31, "webchat", "ar", "emergency")
    cases.record(case.id, "person", "help")
    store = PrivateTrackerStore(backend="memory", settings=Settings.from_env())
    asyncio.run(store.erase(case.conversation_id))
    ended = cases.case(case.id, User("lead", supervisor=True))
    assert (ended.status, ended.outcome) == ("closed", "no_contact")


def test_every_intent_but_the_safety_ones_goes_to_the_caseworker_during_a_hand_off(domain):
    rules = yaml.safe_load((PROJECT_ROOT / "data/stories/rules_handoff.yml").read_text("utf-8"))
    relayed = set()
    for rule in rules["rules"]:
        assert rule["condition"] == [{"slot_was_set": [{"handoff": "open"}]}]
        assert rule["steps"][1] == {"action": "action_relay_to_caseworker"}
        relayed.add(rule["steps"][0]["intent"])
    assert relayed == (set(domain["intents"]) - PASS_THROUGH) | {"nlu_fallback"}


def test_the_next_opening_of_cover():
    cover = load_deployment(SAMPLE_DEPLOYMENT).human_cover  # Mon-Fri 08-20, Sat 09-13, Lagos
    at = lambda *a: dt.datetime(*a, tzinfo=LAGOS)  # noqa: E731
    assert cover.next_opening(at(2026, 11, 28, 14, 0)) == at(2026, 11, 30, 8, 0)  # Sat -> Mon
    assert cover.next_opening(at(2026, 11, 27, 7, 0)) == at(2026, 11, 27, 8, 0)  # Fri early
    assert cover.next_opening(at(2026, 11, 27, 21, 0)) == at(2026, 11, 28, 9, 0)  # Fri -> Sat
    closed = type(cover)(cover.timezone, {})
    assert closed.next_opening(at(2026, 11, 27, 7, 0)) is None


def test_on_shift_needs_the_hours_and_somebody_signed_in(database):
    from console.users import Users

    handoff = HandOff.of(database)
    deployment = load_deployment(SAMPLE_DEPLOYMENT)
    monday_10 = dt.datetime(2026, 11, 30, 10, 0, tzinfo=LAGOS)
    assert not handoff.on_shift(deployment, monday_10)  # nobody signed in
    Users(session_factory(make_engine(database))).sign_in("amina", "a long enough password")
    now = dt.datetime.now(dt.timezone.utc)
    assert handoff.on_shift(deployment, now) == deployment.human_cover.is_covered(now)
    assert not handoff.on_shift(deployment, dt.datetime(2026, 11, 29, 10, 0, tzinfo=LAGOS))  # Sun


# -- whole conversations with the trained model -----------------------------------------

@pytest.fixture(scope="module")
def helpline(model_path, tmp_path_factory):
    from tests.utils.assistant import Assistant, free_port, start_action_server, stop

    folder = tmp_path_factory.mktemp("handoff-dialogue")
    url = migrated(folder)
    port = free_port()
    process = start_action_server(port, folder / "actions.log", HELPLINE_DATABASE_URL=url)
    bot = Assistant(model_path, f"http://127.0.0.1:{port}/webhook", HELPLINE_DATABASE_URL=url)
    bot.url = url
    yield bot
    bot.close()
    stop(process)


def caseworker_reply(bot, sender: str, text: str) -> list[str]:
    """What the console does: record the reply, then have Rasa run the relay action (here
    in-process, as the API's /execute does)."""
    from rasa.core.channels.channel import CollectingOutputChannel

    cases = cases_for(bot.url)
    cases.record(cases.open_case_for(sender).id, "caseworker", text, AMINA)

    async def go() -> list[str]:
        output = CollectingOutputChannel()
        await bot.agent.execute_action(sender, "action_relay_caseworker", output, None, None)
        return [m.get("text") for m in output.messages]

    return bot.loop.run_until_complete(go())


@pytest.mark.model
@pytest.mark.slow
def test_a_whole_hand_off(helpline):
    sender = f"handoff-{uuid.uuid4().hex[:10]}"
    say = lambda text: helpline.say(sender, text)  # noqa: E731
    helpline.open(sender, "/change_language" + json.dumps({"language": "fr"}))
    assert say("je veux parler à quelqu'un").responses == ["utter_handoff_consent"]
    turn = say("/affirm")
    assert turn.responses[0] in ("utter_handoff_queued", "utter_handoff_after_hours")
    assert turn.slots["handoff"] == "open"
    # the assistant is quiet now, whatever is said, and it all reaches the case
    for text in ("je travaille dans un restaurant", "/ask_rights", "1", "merci"):
        assert say(text).responses == [], text
    cases = cases_for(helpline.url)
    [case] = cases.queue()
    cases.claim(case.id, AMINA)
    assert [line.text for line in cases.transcript(case.id, AMINA)] == [
        "je travaille dans un restaurant", "/ask_rights", "1", "merci"]
    assert caseworker_reply(helpline, sender, "Bonjour, je suis là.") == ["Bonjour, je suis là."]
    # an emergency still gets the emergency contacts first, and the caseworker is told
    assert say("/emergency").responses == ["utter_emergency_contacts"]
    assert cases.case(case.id, AMINA).triage_level == "emergency"
    # the quick exit still works, and ends the case with its transcript
    assert say("sortir").responses == ["utter_quick_exit"]
    assert cases.open_case_for(sender) is None
    stored = helpline.stored_events(sender)
    assert stored == []  # nothing kept of the conversation


def test_the_cases_are_kept_once_migrated_and_an_unmigrated_database_is_asked_again(tmp_path):
    url = f"sqlite:///{tmp_path}/later.db"
    assert cases_for(url) is None
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    first = cases_for(url)
    assert first is not None and cases_for(url) is first


@pytest.mark.parametrize("language", ["en", "fr", "ar", "es"])
def test_at_the_channels_cap_the_person_gets_contacts_and_services_not_a_case(
        database, monkeypatch, language):
    """Issue 17 §2: the deployment's handoff.max_new_cases_per_hour (the sample: 30 a
    channel). At the cap a request gets the emergency contacts and the way to services, in
    the person's language; no case is opened; another channel still opens cases."""
    from actions.help import ActionAnswerOffer
    from bot.catalog import load_catalog

    monkeypatch.setattr(HandOff, "on_shift", lambda self, deployment, now: True)
    cases = cases_for(database)
    for n in range(30):
        cases.open(f"c{n:031d}", "sms", "en", "high")
    slots = {"offer": "handoff", "triage_level": "emergency", "language": language}
    events, dispatcher = run(ActionAnswerOffer(), tracker("c" + "9" * 31, slots=slots))
    assert responses_sent(dispatcher) == ["utter_handoff_busy"]
    text = dispatcher.messages[0]["text"]
    assert text.startswith(load_catalog().texts[language]["utter_handoff_busy"].split("{")[0])
    assert "+999 100 000" in text  # the default emergency contacts
    assert "/find_services" in [b["payload"] for b in dispatcher.messages[0]["buttons"]]
    assert {"event": "slot", "timestamp": None, "name": "handoff", "value": "open"} not in events
    assert cases.open_case_for("c" + "9" * 31) is None
    _, dispatcher = run(ActionAnswerOffer(), tracker("c" + "8" * 31, slots=slots,
                                                     channel="telegram"))
    assert responses_sent(dispatcher) == ["utter_handoff_queued"]
