"""A person is offered only where one can come (issue 16 §2; ARCHITECTURE promise 8).

With caseworker accounts, the greeting, the menu, the triage replies, the child reply, the
awareness "more" texts and the emergency offer offer a person; without any account, no text
and no button does, and each names what there is instead: services, the hotline numbers.
Checked on the catalog as a whole (every text that offers a person, found by its words in each
language, has its variant), on the domain Rasa answers from, on every action that sends such
a text, and with the trained assistant, in all four languages.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from pathlib import Path

import pytest
import yaml
from rasa.core.nlg.generator import ResponseVariationFilter
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.awareness import ActionMore
from actions.help import ActionAnswerOffer, ActionFindServices
from actions.safety import ActionEmergency
from actions.screening import ActionScreeningResult, ActionStopScreening
from actions.session import ActionSessionStart, ValidateSlotMappings
from bot.catalog import (MESSAGES_DIR, PERSON_PAYLOADS, PLACEHOLDERS, PERSON_SLOT, WITHOUT_PERSON,
                         CatalogError, build_responses, load_catalog)
from bot.deployment import SUPPORTED_LANGUAGES, load_deployment
from bot.settings import PROJECT_ROOT
from tests.conftest import SAMPLE_DEPLOYMENT, responses_sent
from tests.utils.trackers import make_tracker

CATALOG = load_catalog()
DEPLOYMENT = load_deployment(SAMPLE_DEPLOYMENT)
LANGUAGES = list(SUPPORTED_LANGUAGES)
ORG = DEPLOYMENT.organisation_name
# Words that offer a person from the helpline, per language (lower case): a caseworker, "talk
# to someone", "connect you with a person", "our team"...; not "a person you trust".
OFFERS_A_PERSON = {
    "en": r"caseworker|connect(ed)? (you )?with a person|talk to (a person|someone)|person from"
          r"|our team|trained person",
    "fr": r"travailleur social|en contact avec une personne|parler à (une personne|quelqu'un)"
          r"|parler avec une personne|personne de notre équipe|personne de \{org_name\}"
          r"|personne formée|notre équipe",
    "es": r"trabajador social|en contacto con una persona|hablar con (una persona|alguien)"
          r"|alguien de nuestro equipo|persona de \{org_name\}|persona capacitada|equipo de apoyo",
    "ar": r"توصيلك بشخص|التحدث مع شخص|التواصل مع شخص|شخص من فريقنا|شخص من \{org_name\}|مختص"
          r"|فريق|أخصائي|شخص مدرَّب",
}
# Words that name what there is without a person: services, hotlines, the numbers to call.
NAMES_WHAT_THERE_IS = {
    "en": r"services|hotlines|\{contacts\}",
    "fr": r"services|lignes d'aide|\{contacts\}",
    "es": r"servicios|líneas de ayuda|\{contacts\}",
    "ar": r"خدمات|الخدمات|خطوط مساعدة|\{contacts\}",
}
# The hand-off's own texts are shown only once a person was asked for: the consent, the
# queue, the end, and the honest "not available" itself.
HANDOFF_TEXTS = {name for name in CATALOG.texts["en"] if name.startswith("utter_handoff_")}
VALUES = {**{field: "x" for field in PLACEHOLDERS}, "org_name": ORG,
          "contacts": DEPLOYMENT.render_contacts("en", None), "need": "Shelter",
          "place": "Maiduguri", "services": "- a service", "keep_days": "365"}


def offers_in_words(name: str, language: str) -> bool:
    return re.search(OFFERS_A_PERSON[language], CATALOG.texts[language][name].lower()) is not None


def payloads(message: dict) -> list[str]:
    return [b["payload"] for b in message.get("buttons") or []]


def asks_for_a_person(message: dict) -> bool:
    return bool(set(payloads(message)) & PERSON_PAYLOADS)


BASES = sorted(n for n in CATALOG.texts["en"] if not n.endswith(WITHOUT_PERSON))
OFFERING = sorted(n for n in BASES if CATALOG.offers_person(n))


# -- the catalog as a whole ------------------------------------------------------------------


def test_the_words_find_the_texts_the_issue_names():
    """The greeting, the triage replies, the child reply, the awareness "more" texts and the
    emergency offer: the word lists find them, so the checks below cover them."""
    for name in ("utter_greet", "utter_triage_high", "utter_triage_medium", "utter_triage_unknown",
                 "utter_triage_child", "utter_awareness_rights_more",
                 "utter_awareness_worried_more", "utter_offer_human"):
        for language in LANGUAGES:
            assert offers_in_words(name, language), (name, language)
    assert "utter_menu" in OFFERING and "utter_awareness_smuggling_more" in OFFERING  # buttons


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_text_that_offers_a_person_has_a_variant_without_one(language):
    found = {n for n in BASES if offers_in_words(n, language)} - HANDOFF_TEXTS
    assert found, language
    for name in sorted(found):
        assert CATALOG.variant(name, person=False) == name + WITHOUT_PERSON, (name, language)


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("name", OFFERING)
def test_without_a_person_nothing_offers_one_and_what_there_is_is_named(name, language):
    with_person = CATALOG.render(name, language, **VALUES)
    without = CATALOG.render(name, language, person=False, **VALUES)
    assert with_person == CATALOG.render(name, language, person=True, **VALUES)
    assert not asks_for_a_person(without), (name, language)
    variant = CATALOG.variant(name, person=False)
    if name not in HANDOFF_TEXTS:  # "the caseworker has ended this conversation" stays true
        assert not re.search(OFFERS_A_PERSON[language], CATALOG.texts[language][variant].lower())
    if variant != name:  # a text of its own: it names the services or the numbers instead
        assert re.search(NAMES_WHAT_THERE_IS[language], CATALOG.texts[language][variant].lower()), (
            name, language)
        assert without["text"] != with_person["text"]
    if with_person.get("buttons"):  # never a dead end
        assert without["buttons"], (name, language)
    # the buttons that stay are the response's own, or the variant's from layout.yml
    assert asks_for_a_person(with_person) or variant != name


def test_responses_that_offer_nothing_are_the_same_either_way():
    for name in sorted(set(BASES) - set(OFFERING)):
        for language in LANGUAGES:
            assert CATALOG.render(name, language, person=False, **VALUES) == CATALOG.render(
                name, language, **VALUES), (name, language)


def _catalog_with(tmp_path: Path, extra: str = "", layout: str = "", prefix: str = "") -> Path:
    """A copy of the catalog with one more text (``extra``), layout entry or a prefix to the
    greeting's variant, in every language."""
    folder = tmp_path / "messages"
    shutil.copytree(MESSAGES_DIR, folder)
    for language in LANGUAGES:
        path = folder / f"{language}.yml"
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        if extra:
            data["responses"][extra] = "Some words."
        data["responses"]["utter_greet_without_person"] = (
            prefix + data["responses"]["utter_greet_without_person"])
        path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    if layout:
        data = yaml.safe_load((folder / "layout.yml").read_text(encoding="utf-8"))
        data["response_buttons"][layout] = ["talk", "menu"]
        (folder / "layout.yml").write_text(yaml.safe_dump(data), encoding="utf-8")
    return folder


def test_a_variant_of_no_response_is_an_error(tmp_path):
    with pytest.raises(CatalogError, match="utter_nothing_without_person is a variant of no"):
        load_catalog(_catalog_with(tmp_path, extra="utter_nothing_without_person"))


def test_a_variant_whose_buttons_ask_for_a_person_is_an_error(tmp_path):
    with pytest.raises(CatalogError, match="utter_greet_without_person must not ask for a person"):
        load_catalog(_catalog_with(tmp_path, layout="utter_greet_without_person"))


def test_a_variant_in_the_domain_may_not_need_a_value_only_an_action_has(tmp_path):
    catalog = load_catalog(_catalog_with(tmp_path, prefix="Call {contacts}. "))
    with pytest.raises(CatalogError, match=r"utter_greet .*\['contacts'\]"):
        build_responses(catalog, {"utter_greet"})


# -- the domain: Rasa's choice by the person_available slot -----------------------------------


DOMAIN = build_responses(CATALOG)


def test_the_slot_is_false_until_known_and_changes_no_prediction():
    core = yaml.safe_load((PROJECT_ROOT / "bot" / "domain" / "core.yml").read_text())
    slot = core["slots"][PERSON_SLOT]
    assert (slot["type"], slot["initial_value"], slot["influence_conversation"]) == (
        "bool", False, False)


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("channel", ["", "sms", "telegram", "webchat"])
def test_rasa_picks_the_offer_only_when_a_person_can_come(language, channel):
    offering = [name for name in DOMAIN if CATALOG.offers_person(name)]
    assert {"utter_greet", "utter_menu", "utter_bot_challenge", "utter_out_of_scope",
            "utter_fallback", "utter_awareness_rights", "utter_awareness_worried"} <= set(offering)
    for name in offering:
        chosen = {}
        for person in (True, False):
            [variation] = ResponseVariationFilter(DOMAIN).responses_for_utter_action(
                name, channel, {"language": language, PERSON_SLOT: person})
            chosen[person] = variation
        words = CATALOG.channel_words(language, channel)
        for person, variation in chosen.items():
            shown = CATALOG.render(name, language, channel, person, org_name="{org_name}")
            assert variation["text"] == shown["text"], (name, language, channel, person)
            assert variation.get("buttons", []) == shown.get("buttons", [])
        assert asks_for_a_person(chosen[True]) or offers_in_words(name, language), name
        assert not asks_for_a_person(chosen[False]), name
        assert not re.search(OFFERS_A_PERSON[language], chosen[False]["text"].lower()), name
        assert words  # the channel's words were filled in both


# -- the actions, with and without caseworker accounts --------------------------------------


@pytest.fixture
def no_caseworker(tmp_path, monkeypatch) -> str:
    """A migrated database without any caseworker account."""
    from tests.test_handoff import migrated

    url = migrated(tmp_path, caseworkers=())
    monkeypatch.setenv("HELPLINE_DATABASE_URL", url)
    return url


@pytest.fixture(scope="module")
def databases(tmp_path_factory) -> dict[bool, str]:
    """Two migrated databases: with one caseworker account (True) and with none (False)."""
    from tests.test_handoff import migrated

    return {True: migrated(tmp_path_factory.mktemp("with")),
            False: migrated(tmp_path_factory.mktemp("without"), caseworkers=())}


@pytest.fixture(params=[True, False], ids=["with-caseworker", "without-caseworker"])
def person(request, databases, monkeypatch) -> bool:
    """Both ways: a database with one caseworker account, and one with none."""
    monkeypatch.setenv("HELPLINE_DATABASE_URL", databases[request.param])
    return request.param


def run(action, tracker) -> tuple[list, CollectingDispatcher]:
    dispatcher = CollectingDispatcher()
    events = asyncio.run(action.run(dispatcher, tracker, {}))
    return events, dispatcher


def expected(name: str, language: str, person: bool, area=None) -> str:
    values = {"org_name": ORG, "contacts": DEPLOYMENT.render_contacts(language, area)}
    return CATALOG.render(name, language, person=person, **values)["text"]


def check_message(message: dict, name: str, language: str, person: bool) -> None:
    assert message["utter_action"] == name  # the same step either way (rules, "more")
    assert message["text"] == expected(name, language, person), (name, language, person)
    # the "talk to a person" button where the layout has one, and only with a person
    assert asks_for_a_person(message) is (person and asks_for_a_person(
        CATALOG.render(name, language, **VALUES)))
    if not person:
        assert not re.search(OFFERS_A_PERSON[language], message["text"].lower())


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_emergency_offer(person, language):
    tracker = make_tracker("emergency", slots={"language": language})
    events, dispatcher = run(ActionEmergency(), tracker)
    assert responses_sent(dispatcher) == ["utter_emergency_contacts", "utter_offer_human"]
    assert "+999 100 000" in dispatcher.messages[0]["text"]  # the numbers first, either way
    check_message(dispatcher.messages[1], "utter_offer_human", language, person)
    # a yes then asks for a person, or looks for the services the text offers instead
    assert SlotSet("offer", "human" if person else "services") in events
    assert SlotSet(PERSON_SLOT, person) in events


TRIAGES = {  # answers -> the replies, in order
    "high": ({"q_safe_now": "yes", "q_under_18": "no", "q_threats": "yes"}, ["utter_triage_high"]),
    "medium": ({"q_safe_now": "yes", "q_under_18": "no", "q_documents": "no"},
               ["utter_triage_medium"]),
    "unknown": ({q: "skipped" for q in ("q_safe_now", "q_under_18")}, ["utter_triage_unknown"]),
    "child": ({"q_safe_now": "yes", "q_under_18": "yes"},
              ["utter_triage_child", "utter_triage_medium"]),
    "emergency": ({"q_safe_now": "no"}, ["utter_emergency_contacts", "utter_offer_human"]),
}


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("level", sorted(TRIAGES))
def test_the_triage_replies(person, language, level):
    from bot.triage import QUESTIONS

    answers, replies = TRIAGES[level]
    if level == "unknown":
        answers = {q: "skipped" for q in QUESTIONS}
    tracker = make_tracker(slots={"language": language, "screening_consent": True, **answers})
    events, dispatcher = run(ActionScreeningResult(), tracker)
    assert responses_sent(dispatcher) == replies
    for message, name in zip(dispatcher.messages, replies):
        if name != "utter_emergency_contacts":
            check_message(message, name, language, person)
    if not person and level != "emergency":  # the numbers to call, in the reply itself
        assert DEPLOYMENT.render_contacts(language, None) in dispatcher.messages[-1]["text"]
    assert SlotSet("offer", "human" if person else "services") in events
    assert SlotSet(PERSON_SLOT, person) in events


@pytest.mark.parametrize("language", LANGUAGES)
def test_stopping_the_questions_with_worrying_answers(person, language):
    tracker = make_tracker("stop", slots={"language": language, "screening_consent": True,
                                          "q_safe_now": "yes", "q_under_18": "no",
                                          "q_threats": "yes"}, active_loop="screening_form")
    _, dispatcher = run(ActionStopScreening(), tracker)
    assert responses_sent(dispatcher) == ["utter_screening_stopped", "utter_triage_high"]
    check_message(dispatcher.messages[1], "utter_triage_high", language, person)


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("topic", ["rights", "worried", "smuggling"])
def test_the_awareness_more_texts(person, language, topic):
    tracker = make_tracker("more", slots={"language": language, "topic": topic})
    _, dispatcher = run(ActionMore(), tracker)
    check_message(dispatcher.messages[0], f"utter_awareness_{topic}_more", language, person)


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_menu_sent_by_an_action(person, language):
    _, dispatcher = run(ActionAnswerOffer(), make_tracker("affirm", slots={"language": language}))
    check_message(dispatcher.messages[0], "utter_menu", language, person)
    assert ("/request_human" in payloads(dispatcher.messages[0])) is person


@pytest.mark.parametrize("name", OFFERING)
def test_every_offering_response_sent_through_say(person, name):
    """Whatever action sends it: ``say`` asks whether a person can come."""
    from actions.common import say

    for language in LANGUAGES:
        dispatcher = CollectingDispatcher()
        say(dispatcher, name, language, **{k: v for k, v in VALUES.items() if k != "org_name"})
        [message] = dispatcher.messages
        assert message["text"] == CATALOG.render(name, language, person=person, **VALUES)["text"]
        assert not (asks_for_a_person(message) and not person), (name, language)


def test_the_session_starts_knowing_whether_a_person_can_come(person):
    events, _ = run(ActionSessionStart(), make_tracker(slots={"language": "fr"}))
    assert SlotSet(PERSON_SLOT, person) in events


def test_after_every_message_the_slot_follows_the_accounts(no_caseworker, domain):
    """The last caseworker account goes: the next message sets the slot false (and not
    again while it stays false); an account comes back: true."""
    from bot.cases.availability import forget
    from bot.storage import make_engine, session_factory
    from console.users import Users

    def validate(slot: bool) -> list:
        return asyncio.run(ValidateSlotMappings().run(
            CollectingDispatcher(), make_tracker(slots={PERSON_SLOT: slot}), domain))

    assert SlotSet(PERSON_SLOT, False) in validate(True)
    assert not [e for e in validate(False) if e.get("name") == PERSON_SLOT]
    engine = make_engine(no_caseworker)
    Users(session_factory(engine)).add("bob", "a long enough password")
    engine.dispose()
    assert not [e for e in validate(False) if e.get("name") == PERSON_SLOT]  # known a while
    forget()
    assert SlotSet(PERSON_SLOT, True) in validate(False)


def test_asking_for_a_person_sets_the_slot_to_what_it_found(person):
    from actions.help import ActionRequestHuman

    events, dispatcher = run(ActionRequestHuman(), make_tracker("request_human"))
    assert responses_sent(dispatcher) == [
        "utter_handoff_consent" if person else "utter_handoff_unavailable"]
    assert SlotSet(PERSON_SLOT, person) in events


# -- the services search: its results and "nothing near" ------------------------------------


@pytest.fixture(scope="module")
def directories(tmp_path_factory) -> dict[bool, str]:
    """The sample services directory, with one caseworker account (True) and with none."""
    from bot.storage import make_engine, session_factory
    from console.users import Users
    from tests.utils.directory import sample_database

    urls = {}
    for person in (True, False):
        urls[person] = sample_database(tmp_path_factory.mktemp("directory"), places=True)
        if person:
            engine = make_engine(urls[person])
            Users(session_factory(engine)).add("amina", "a long enough password")
            engine.dispose()
    return urls


@pytest.fixture(params=[True, False], ids=["with-caseworker", "without-caseworker"])
def directory(request, directories, monkeypatch) -> bool:
    monkeypatch.setenv("HELPLINE_DATABASE_URL", directories[request.param])
    return request.param


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_services_results_and_nothing_near(directory, language):
    tracker = make_tracker("inform_location", text="maiduguri", slots={
        "language": language, "service_need": "legal_aid", "services_asking": "place"})
    _, dispatcher = run(ActionFindServices(), tracker)
    [message] = dispatcher.messages
    assert message["utter_action"] == "utter_services_results"
    assert ("/request_human" in payloads(message)) is directory
    tracker = make_tracker("inform_location", text="zzzz unknown", slots={
        "language": language, "service_need": "legal_aid", "services_asking": "place"})
    _, dispatcher = run(ActionFindServices(), tracker)
    assert ("/request_human" in payloads(dispatcher.messages[0])) is directory


def test_yes_to_the_services_offered_instead_of_a_person_looks_for_them(directories, monkeypatch):
    """After a triage reply without a person, a yes looks for the help the triage found."""
    from tests.utils.trackers import bot_event

    monkeypatch.setenv("HELPLINE_DATABASE_URL", directories[False])
    tracker = make_tracker("affirm", slots={"offer": "services", "triage_needs": ["shelter"]},
                           events=[bot_event("utter_triage_high")])
    events, dispatcher = run(ActionAnswerOffer(), tracker)
    assert responses_sent(dispatcher) == ["utter_services_ask_place"]
    assert SlotSet("service_need", "shelter") in events and SlotSet("offer", None) in events
    events, dispatcher = run(ActionAnswerOffer(), make_tracker(
        "deny", slots={"offer": "services"}, events=[bot_event("utter_offer_human")]))
    assert responses_sent(dispatcher) == ["utter_offer_declined"]


# -- the trained assistant: what Rasa itself says ---------------------------------------------


@pytest.fixture(scope="module")
def staffed_assistant(model_path, tmp_path_factory):
    """The trained assistant with an action server whose database has a caseworker account."""
    from tests.test_handoff import migrated
    from tests.utils.assistant import Assistant, free_port, start_action_server, stop

    folder = tmp_path_factory.mktemp("staffed")
    url = migrated(folder)
    port = free_port()
    process = start_action_server(port, folder / "actions.log", HELPLINE_DATABASE_URL=url)
    bot = Assistant(model_path, f"http://127.0.0.1:{port}/webhook")
    yield bot
    bot.close()
    stop(process)


def bot_messages(turn) -> list[dict]:
    from rasa.shared.core.events import BotUttered

    return [{"text": e.text, **(e.data or {})} for e in turn.events if isinstance(e, BotUttered)]


@pytest.mark.model
@pytest.mark.parametrize("language", LANGUAGES)
def test_with_the_trained_assistant(assistant, staffed_assistant, language):
    import json
    import uuid

    for bot, person in ((staffed_assistant, True), (assistant, False)):
        sender = f"offers-{language}-{person}-{uuid.uuid4().hex[:8]}"
        turn = bot.say(sender, "/change_language" + json.dumps({"language": language}))
        assert turn.slots[PERSON_SLOT] is person
        for text, name in (("/greet", "utter_greet"), ("/menu", "utter_menu"),
                           ("/ask_rights", "utter_awareness_rights")):
            turn = bot.say(sender, text)
            assert turn.responses == [name], (text, turn.responses)
            [message] = bot_messages(turn)
            shown = CATALOG.render(name, language, person=person, org_name=ORG)
            assert message["text"] == shown["text"]
            assert asks_for_a_person(message) is person
        turn = bot.say(sender, "/emergency")
        assert turn.responses == ["utter_emergency_contacts", "utter_offer_human"]
        assert asks_for_a_person(bot_messages(turn)[1]) is person
        # a yes answers the offer of a person where one was made; else nothing was offered
        # (no services directory on these servers: the honest "not available")
        assert bot.say(sender, "/affirm").responses == (
            ["utter_handoff_consent"] if person else ["utter_services_unavailable"])


# -- a typed number with no menu remembered: the main menu as it is shown ---------------------


@pytest.mark.parametrize("typed", ["3", "٣"])
def test_a_typed_number_means_the_main_menu_as_shown(person, typed):
    """Without a person the menu shows five options, "check my situation" third; a number
    typed after a quick exit (no menu remembered) means what the person saw beside it."""
    from cryptography.fernet import Fernet, MultiFernet

    from bot.privacy.keys import Secrets
    from bot.privacy.logs import forget_sensitive
    from bot.privacy.routes import MemoryRouteCache
    from channels.gateway import Gateway

    key = Fernet.generate_key().decode()
    routes = MemoryRouteCache(MultiFernet([Fernet(key)]), idle_seconds=60)
    gateway = Gateway("sms", Secrets(pseudonym_key=b"k" * 32, route_keys=(key,)), routes)
    try:
        admitted = asyncio.run(gateway.admit("+999 555 0123", typed))
    finally:
        routes.close()
        forget_sensitive()
    assert admitted.text == ("/request_human" if person else "/check_situation")
    shown = CATALOG.buttons_for("utter_menu", "en", person)
    assert shown[2]["payload"] == admitted.text
