"""First contact is safe (issue 16 §4; actions/first_contact.py).

The first answer of a new conversation, on every channel and in every language, says in one
short message that this is an automated assistant, how to leave fast on that channel and
that others may see the messages on a shared phone, then asks whether it is safe to write
now. "Yes" answers the first message; "not now" gives the emergency contacts and the quick
exit and asks nothing; an emergency, a quick exit, "forget me" or an unsubscribe is answered
at once. GPC guide 004 line 1135 ("avoid exposing them to further harm").
"""

from __future__ import annotations

import json
import uuid

import pytest
import yaml

from actions.first_contact import ANSWERED_AT_ONCE
from bot.catalog import CHANNELS, load_catalog
from bot.deployment import SUPPORTED_LANGUAGES, load_deployment
from bot.keywords import load_keywords as load_safety_keywords
from bot.keywords import match_keyword
from bot.services.categories import load_categories
from bot.settings import PROJECT_ROOT
from channels.sms_text import render_turn, sms_friendly
from tests.conftest import SAMPLE_DEPLOYMENT

CATALOG = load_catalog()
DEPLOYMENT = load_deployment(SAMPLE_DEPLOYMENT)
# The project's channels by input channel name; "helpline" is the REST channel (the words of
# "all" in the catalog).
ALL_CHANNELS = ("helpline", *CHANNELS)
# What the message must say, in each language's own words: automated, a shared phone.
AUTOMATED = {"en": "automated", "fr": "automatique", "es": "automático", "ar": "آلي"}
SHARED = {"en": "shared phone", "fr": "téléphone partagé", "es": "teléfono compartido",
          "ar": "هاتف مشترك"}
# A first message in each language that asks for a shelter (a need the tracker store keeps).
SHELTER = {"en": "we need a shelter from tomorrow because the landlord is sending us away",
           "fr": "on doit quitter la maison demain, il nous faut un abri",
           "es": "para manana necesito donde quedarme, se acaba mi cupo",
           "ar": "من بكرة ما عندنا وين نسكن، في سكن مؤقت؟"}


def choose(language: str) -> str:
    return "/change_language" + json.dumps({"language": language})


def how_to_leave(language: str, channel: str) -> str:
    """What the channel's words say to do to leave fast: the exit word, or on the web page
    its "Leave now" button."""
    if channel == "webchat":
        return CATALOG.channel_text("web_quick_exit", language)
    return CATALOG.channel_words(language, channel)["exit_word"]


# -- the words and the rules (no model) -------------------------------------------------------

@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
@pytest.mark.parametrize("channel", ALL_CHANNELS)
def test_the_message_says_automated_how_to_leave_here_shared_phone_and_asks(language, channel):
    message = CATALOG.render("utter_first_contact", language, channel)
    text = message["text"]
    assert AUTOMATED[language] in text and SHARED[language] in text, text
    assert CATALOG.channel_words(language, channel)["leave_fast"] in text
    assert how_to_leave(language, channel) in text
    assert text.rstrip().endswith(("?", "؟")), text
    assert [b["payload"] for b in message["buttons"]] == ["/affirm", "/deny"]


@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
@pytest.mark.parametrize("channel", (*CHANNELS, ""))
def test_the_exit_word_it_names_leaves_at_once(language, channel):
    word = CATALOG.channel_words(language, channel)["exit_word"]
    assert match_keyword(word, load_safety_keywords()) == "quick_exit"


@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
def test_on_sms_the_question_and_the_contacts_come_in_the_first_sms(language):
    """Only the first SMS of an answer is sent at once (the rest waits for MORE): the whole
    question with its options, and "not now"'s contacts and exit word, must be in it."""
    budget, hint = DEPLOYMENT.sms.segment_budget, CATALOG.channel_text("sms_more", language)
    question = CATALOG.render("utter_first_contact", language, "sms")
    assert len(render_turn([question], hint, budget)) == 1
    for area in (None, "NG"):  # the sample's longest contact list is Nigeria's
        contacts = DEPLOYMENT.render_contacts(language, area)
        not_now = CATALOG.render("utter_not_safe_now", language, "sms", contacts=contacts)
        assert not not_now.get("buttons")  # nothing asked
        first = render_turn([not_now], hint, budget)
        assert len(first) == 1, first
        for part in (contacts, how_to_leave(language, "sms")):
            assert sms_friendly(part) in first[0], (part, first[0])


def test_every_intent_but_those_answered_at_once_waits_for_the_question(domain):
    rules = yaml.safe_load(
        (PROJECT_ROOT / "data/stories/rules_first_contact.yml").read_text("utf-8"))["rules"]
    asked = set()
    for rule in rules:
        if rule.get("conversation_start"):
            assert rule["steps"][1] == {"action": "action_ask_safe_to_write"}, rule
            asked.add(rule["steps"][0]["intent"])
    assert asked == (set(domain["intents"]) - ANSWERED_AT_ONCE) | {"nlu_fallback"}
    assert ANSWERED_AT_ONCE <= set(domain["intents"])


# -- whole conversations (the trained model, the real action server) ---------------------------

@pytest.fixture(scope="module")
def helpline(model_path, tmp_path_factory):
    """The assistant in-process with an action server, both on the sample directory."""
    from tests.utils.assistant import Assistant, free_port, start_action_server, stop
    from tests.utils.directory import sample_database

    folder = tmp_path_factory.mktemp("first-contact")
    directory_url = sample_database(folder, places=True)
    port = free_port()
    process = start_action_server(port, folder / "actions.log", HELPLINE_DATABASE_URL=directory_url)
    bot = Assistant(model_path, f"http://127.0.0.1:{port}/webhook",
                    HELPLINE_DATABASE_URL=directory_url)
    yield bot
    bot.close()
    stop(process)


def new_sender() -> str:
    return f"first-{uuid.uuid4().hex[:10]}"


@pytest.mark.model
@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
@pytest.mark.parametrize("channel", ALL_CHANNELS)
def test_first_message_gets_the_question_and_yes_answers_it(helpline, channel, language):
    sender = new_sender()
    turn = helpline.say(sender, SHELTER[language], channel)
    assert turn.responses == ["utter_first_contact"], (turn.intent, turn.responses)
    assert turn.slots["language"] == language
    assert turn.texts == [CATALOG.render("utter_first_contact", language, channel)["text"]]
    assert turn.buttons == [["/affirm", "/deny"]]
    turn = helpline.say(sender, "/affirm", channel)
    # The first message, answered as if just sent: its need (a closed value) was kept, so the
    # search asks only for the place.
    assert (turn.intent, turn.responses) == ("find_services", ["utter_services_ask_place"])
    shelter = load_categories()["shelter"][language]
    assert turn.texts[0] == CATALOG.render("utter_services_ask_place", language, channel,
                                           need=shelter)["text"]


@pytest.mark.model
@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
@pytest.mark.parametrize("channel", ALL_CHANNELS)
def test_not_safe_now_gives_contacts_and_the_exit_and_asks_nothing(helpline, channel, language):
    sender = new_sender()
    assert helpline.say(sender, choose(language), channel).responses == ["utter_first_contact"]
    turn = helpline.say(sender, "/deny", channel)
    assert turn.responses == ["utter_not_safe_now"]
    contacts = DEPLOYMENT.render_contacts(language)
    assert turn.texts == [CATALOG.render("utter_not_safe_now", language, channel,
                                         contacts=contacts)["text"]]
    assert contacts in turn.texts[0] and how_to_leave(language, channel) in turn.texts[0]
    assert turn.buttons == [[]] and not turn.texts[0].rstrip().endswith(("?", "؟"))
    # Later, the next message is answered as usual.
    assert helpline.say(sender, "/ask_job_offer", channel).responses == ["utter_awareness_job_offer"]


@pytest.mark.model
@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
def test_a_language_chosen_first_is_set_after_yes(helpline, language):
    """The web chat's first screen sends the chosen language: the question is in it, and yes
    answers the choice (the language entity is a closed value the tracker store keeps)."""
    sender = new_sender()
    turn = helpline.say(sender, choose(language), "webchat")
    assert turn.texts == [CATALOG.render("utter_first_contact", language, "webchat")["text"]]
    turn = helpline.say(sender, "/affirm", "webchat")
    assert turn.responses == ["utter_language_set", "utter_menu"]
    assert turn.slots["language"] == language


@pytest.mark.model
@pytest.mark.parametrize("first, responses", [
    ("/emergency", ["utter_emergency_contacts", "utter_offer_human"]),
    ("/quick_exit", ["utter_quick_exit"]),
    ("/forget_me", ["utter_forget_me_done"]),
    ("/unsubscribe", ["utter_unsubscribe_none"]),
])
def test_an_emergency_or_a_way_out_first_is_answered_at_once(helpline, first, responses):
    assert first[1:] in ANSWERED_AT_ONCE
    assert helpline.say(new_sender(), first, "sms").responses == responses


@pytest.mark.model
@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
def test_an_emergency_in_words_first_gets_the_contacts_at_once(helpline, language):
    from tests.utils.stories import _examples, _pick

    urgent = _pick(_examples(language)["emergency"], None, language)[0]  # as the stories do
    turn = helpline.say(new_sender(), urgent, "sms")
    assert turn.responses[0] == "utter_emergency_contacts", (turn.intent, turn.responses)


@pytest.mark.model
def test_a_greeting_first_gets_the_language_menu_after_yes(helpline):
    turn = helpline.open(new_sender(), "hello")
    assert turn.responses == ["utter_language_menu"]


@pytest.mark.model
def test_another_message_answers_the_question_and_the_first_is_dropped(helpline):
    sender = new_sender()
    assert helpline.say(sender, "/find_services").responses == ["utter_first_contact"]
    assert helpline.say(sender, "/ask_rights").responses == ["utter_awareness_rights"]
    # a later yes is not taken for the question's answer: nothing is offered, the menu
    assert helpline.say(sender, "/affirm").responses == ["utter_menu"]


@pytest.mark.model
def test_a_new_session_after_the_old_one_expired_asks_again(helpline):
    from rasa.shared.core.trackers import DialogueStateTracker

    sender = new_sender()
    helpline.open(sender, "/ask_job_offer")
    assert helpline.say(sender, "/ask_rights").responses == ["utter_awareness_rights"]
    # Two hours later (a session expires after 60 idle minutes: bot/domain/core.yml).
    store = helpline.store
    tracker = helpline.loop.run_until_complete(store.retrieve_full_tracker(sender))
    events = list(tracker.events)
    for event in events:
        event.timestamp -= 2 * 3600
    aged = DialogueStateTracker.from_events(sender, events, slots=store.domain.slots)
    helpline.loop.run_until_complete(store.save(aged))
    turn = helpline.say(sender, "/ask_rights")
    assert turn.responses == ["utter_first_contact"]
    assert helpline.say(sender, "/affirm").responses == ["utter_awareness_rights"]


@pytest.mark.model
@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
def test_what_a_first_message_told_is_still_heard_after_yes(helpline, language):
    """Its text is not kept while the question waits: what it told is, as the closed answers
    (the ``disclosed`` slot), so the acknowledgement still comes and the answer is asked back."""
    from tests.test_disclosures import TOLD

    sender = new_sender()
    turn = helpline.say(sender, TOLD[language])
    assert turn.responses == ["utter_first_contact"]
    assert turn.slots["disclosed"] == ["q_documents=no"]
    turn = helpline.say(sender, "/affirm")
    assert turn.responses == ["utter_disclosure_ack", "utter_screening_about",
                              "utter_screening_consent"], (turn.intent, turn.responses)
    assert TOLD[language] not in json.dumps(helpline.stored_events(sender), ensure_ascii=False)


# -- the actions alone (a rasa-sdk tracker) ----------------------------------------------------

def _session(*events: dict) -> list[dict]:
    return [{"event": "session_started"}, {"event": "action", "name": "action_listen"}, *events]


def test_the_first_message_is_the_sessions_first_with_closed_entities_only():
    from actions.first_contact import first_message
    from tests.utils.trackers import make_tracker, user_event

    earlier = user_event("ask_rights")  # a session that expired: not this conversation's
    place = {"entity": "place", "value": "Maiduguri"}
    need = {"entity": "need", "value": "shelter"}
    first = user_event("find_services", "a shelter in Maiduguri", [need, place])
    tracker = make_tracker("affirm", events=[earlier, *_session(first)])
    assert first_message(tracker) == {"intent": {"name": "find_services", "confidence": 1.0},
                                      "entities": [{"entity": "need", "value": "shelter"}],
                                      "text": None}
    # after a quick exit (a restart) the conversation starts again: here with this "yes"
    restarted = make_tracker("affirm", events=[first, {"event": "restart"}])
    assert first_message(restarted)["intent"]["name"] == "affirm"


@pytest.mark.parametrize("held, sent, replayed", [
    ("find_services", [], "find_services"),
    ("greet", ["utter_language_menu"], None),  # as a first greeting always had
])
async def test_yes_replays_the_first_message_or_shows_the_language_menu(
        dispatcher, domain, held, sent, replayed):
    from actions.first_contact import ActionAnswerSafeToWrite
    from tests.conftest import responses_sent
    from tests.utils.trackers import bot_event, make_tracker, user_event

    tracker = make_tracker("affirm", events=_session(user_event(held),
                                                     bot_event("utter_first_contact")))
    events = await ActionAnswerSafeToWrite().run(dispatcher, tracker, domain)
    assert responses_sent(dispatcher) == sent
    if replayed:
        listen, user = events
        assert listen["event"] == "action" and listen["name"] == "action_listen"
        assert user["event"] == "user" and user["text"] is None
        assert user["parse_data"]["intent"]["name"] == replayed
    else:
        assert events == []


async def test_not_now_sends_the_contacts_and_the_exit_and_asks_nothing(dispatcher, domain):
    from actions.first_contact import ActionAnswerSafeToWrite
    from tests.utils.trackers import make_tracker, user_event

    tracker = make_tracker("deny", slots={"language": "fr"},
                           events=_session(user_event("find_services")))
    assert await ActionAnswerSafeToWrite().run(dispatcher, tracker, domain) == []
    [message] = dispatcher.messages
    assert message["utter_action"] == "utter_not_safe_now" and not message["buttons"]
    assert DEPLOYMENT.render_contacts("fr") in message["text"]
    assert CATALOG.channel_words("fr")["exit_word"] in message["text"]
