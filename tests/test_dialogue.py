"""Whole conversations with the trained assistant and the real action server, per language.

Each conversation reaches every menu branch; every bot message must come from the catalog in
the conversation's language (a conversation in one language never shows another).
"""

from __future__ import annotations

import json
import uuid

import pytest

from tests.utils.language_check import languages_of

pytestmark = pytest.mark.model

LANGUAGES = ("en", "fr", "ar", "es")
# One free-text greeting per language (from the training data), to exercise the NLU.
HELLO = {"en": "hello", "fr": "bonjour", "ar": "السلام عليكم", "es": "hola"}


def choose(language: str) -> str:
    return "/change_language" + json.dumps({"language": language})


def conversation(assistant, language: str, steps: list[tuple[str, list[str]]]) -> None:
    """Each step's responses; the first message waits for "is it safe to write now?" and is
    answered after the yes (``Assistant.open``)."""
    sender = f"dialogue-{language}-{uuid.uuid4().hex[:8]}"
    for index, (text, expected) in enumerate(steps):
        turn = assistant.open(sender, text) if index == 0 else assistant.say(sender, text)
        assert turn.responses == expected, (text, turn.intent, turn.responses)
        for sent in turn.texts:
            if turn.responses and turn.responses[0] == "utter_language_menu":
                continue  # the language menu is the one multilingual message
            assert languages_of(sent) & {language}, f"{language}: {sent!r} is not in {language}"


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_menu_branch_in_each_language(assistant, language):
    conversation(assistant, language, [
        (HELLO[language], ["utter_language_menu"]),
        (choose(language), ["utter_language_set", "utter_menu"]),
        # 1 learn how to stay safe, and "more"
        ("/ask_trafficking_info", ["utter_awareness_trafficking"]),
        ("/more", ["utter_awareness_trafficking_more"]),
        ("/more", ["utter_more_none"]),
        ("/ask_job_offer", ["utter_awareness_job_offer"]),
        ("/ask_rights", ["utter_awareness_rights"]),
        ("/ask_smuggling_difference", ["utter_awareness_smuggling"]),
        ("/ask_safe_travel", ["utter_awareness_safe_travel"]),
        ("/worried_about_someone", ["utter_awareness_worried"]),
        ("/more", ["utter_awareness_worried_more"]),
        # 2 find help near me
        ("/find_services", ["utter_services_unavailable"]),
        # 3 talk to a person
        ("/request_human", ["utter_handoff_unavailable"]),
        # 4 check my situation, declined then accepted
        ("/check_situation", ["utter_screening_about", "utter_screening_consent"]),
        ("/deny", ["utter_screening_declined"]),
        ("/check_situation", ["utter_screening_about", "utter_screening_consent"]),
        ("/affirm", ["utter_ask_q_safe_now"]),
        ("/affirm", ["utter_ask_q_under_18"]),
        ("/deny", ["utter_ask_q_free_to_leave"]),
        ("/deny", ["utter_ask_q_documents"]),
        ("/skip", ["utter_ask_q_threats"]),
        ("/deny", ["utter_ask_q_work_as_promised"]),
        ("/affirm", ["utter_ask_q_debt"]),
        ("/deny", ["utter_triage_medium"]),
        ("/affirm", ["utter_services_unavailable"]),  # no caseworker here: services offered
        # 5 change language, back to the same one
        ("/change_language", ["utter_language_menu"]),
        (choose(language), ["utter_language_set", "utter_menu"]),
        # the rest of the basics
        ("/menu", ["utter_menu"]),
        ("/bot_challenge", ["utter_bot_challenge"]),
        ("/thank", ["utter_thanks"]),
        ("/subscribe", ["utter_subscribe_unavailable"]),
        ("/unsubscribe", ["utter_unsubscribe_none"]),
        ("/out_of_scope", ["utter_out_of_scope"]),
        ("/emergency", ["utter_emergency_contacts", "utter_offer_human"]),
        ("/deny", ["utter_offer_declined"]),
        ("/goodbye", ["utter_goodbye"]),
    ])


@pytest.mark.parametrize("language", LANGUAGES)
def test_emergency_interrupts_the_questions(assistant, language):
    conversation(assistant, language, [
        (choose(language), ["utter_language_set", "utter_menu"]),
        ("/check_situation", ["utter_screening_about", "utter_screening_consent"]),
        ("/affirm", ["utter_ask_q_safe_now"]),
        ("/affirm", ["utter_ask_q_under_18"]),
        ("/emergency", ["utter_emergency_contacts", "utter_offer_human"]),
        ("/affirm", ["utter_services_unavailable"]),  # no caseworker here: services offered
    ])


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_child_gets_the_child_questions_and_child_protection(assistant, language):
    """Not "can you leave your workplace" or "do you keep your ID" (a child's "no" is normal):
    the guide's child indicators (bot/triage.yml), and child protection whatever the answers."""
    start = [
        (choose(language), ["utter_language_set", "utter_menu"]),
        ("/check_situation", ["utter_screening_about", "utter_screening_consent"]),
        ("/affirm", ["utter_ask_q_safe_now"]),
        ("/affirm", ["utter_ask_q_under_18"]),
        ("/affirm", ["utter_ask_q_child_school"]),
    ]
    conversation(assistant, language, start + [
        ("/deny", ["utter_ask_q_child_parents"]),
        ("/affirm", ["utter_ask_q_child_travel"]),
        ("/deny", ["utter_ask_q_child_money"]),
        ("/deny", ["utter_ask_q_threats"]),
        ("/deny", ["utter_triage_child", "utter_triage_medium"]),
    ])
    conversation(assistant, language, start + [
        ("/affirm", ["utter_ask_q_child_parents"]),  # works instead of school: one is enough
        ("/skip", ["utter_ask_q_child_travel"]),
        ("/skip", ["utter_ask_q_child_money"]),
        ("/skip", ["utter_ask_q_threats"]),
        ("/skip", ["utter_triage_child", "utter_triage_high"]),
    ])


@pytest.mark.parametrize("language", LANGUAGES)
def test_not_safe_now_gets_emergency_contacts_at_once(assistant, language):
    conversation(assistant, language, [
        (choose(language), ["utter_language_set", "utter_menu"]),
        ("/check_situation", ["utter_screening_about", "utter_screening_consent"]),
        ("/affirm", ["utter_ask_q_safe_now"]),
        ("/deny", ["utter_emergency_contacts", "utter_offer_human"]),
    ])


def test_stop_and_other_intents_inside_the_questions(assistant):
    conversation(assistant, "en", [
        ("/check_situation", ["utter_screening_about", "utter_screening_consent"]),
        ("/affirm", ["utter_ask_q_safe_now"]),
        ("/ask_job_offer", ["utter_screening_reprompt", "utter_ask_q_safe_now"]),
        ("/affirm", ["utter_ask_q_under_18"]),
        ("/stop", ["utter_screening_stopped"]),
        ("/affirm", ["utter_menu"]),  # nothing offered any more: a yes gets the menu
    ])


def test_unsubscribe_inside_the_questions_ends_them(assistant):
    # on SMS a lone STOP is the carrier's opt-out word and arrives as /unsubscribe
    conversation(assistant, "fr", [
        (choose("fr"), ["utter_language_set", "utter_menu"]),
        ("/check_situation", ["utter_screening_about", "utter_screening_consent"]),
        ("/affirm", ["utter_ask_q_safe_now"]),
        ("/unsubscribe", ["utter_screening_stopped"]),
        ("/greet", ["utter_greet"]),  # START afterwards: a fresh start, no question re-asked
    ])


def test_quick_exit_inside_the_questions_resets_everything(assistant):
    sender = f"exit-{uuid.uuid4().hex[:8]}"
    assistant.open(sender, choose("es"))
    assistant.say(sender, "mi jefe tiene mi pasaporte y no me paga")
    assistant.say(sender, "/check_situation")
    assistant.say(sender, "/affirm")
    stored = assistant.stored_events(sender)
    assert sum(e["event"] == "user" for e in stored) >= 3
    assert all(e.get("text") is None for e in stored if e["event"] in ("user", "bot"))
    assert "pasaporte" not in json.dumps(stored)  # redacted before it was written
    turn = assistant.say(sender, "/quick_exit")
    # Nothing of the conversation stays in the tracker store, not even the exit itself.
    assert assistant.stored_events(sender) == []
    assert turn.responses == ["utter_quick_exit"]
    assert turn.active_loop is None
    assert turn.slots["screening_consent"] is None
    assert turn.slots["language"] == "en"  # back to the deployment's default
    # A new conversation: its first message is asked "is it safe to write now?" again.
    assert assistant.say(sender, "/affirm").responses == ["utter_first_contact"]


def test_forget_me_erases_the_stored_conversation(assistant):
    sender = f"forget-{uuid.uuid4().hex[:8]}"
    assistant.open(sender, "my sister went to work abroad and stopped answering")
    assistant.say(sender, "/ask_job_offer")
    turn = assistant.say(sender, "/forget_me")
    assert turn.responses == ["utter_forget_me_done"]
    assert assistant.stored_events(sender) == []
    # A fresh start: the safety question, then the language menu of a first contact again.
    assert assistant.open(sender, "/greet").responses == ["utter_language_menu"]


def test_a_long_message_switches_language_and_a_short_one_does_not(assistant):
    sender = f"detect-{uuid.uuid4().hex[:8]}"
    turn = assistant.say(sender, "hola, me ofrecieron un trabajo en otro pais y me piden dinero")
    assert turn.slots["language"] == "es"
    assert all("es" in languages_of(t) for t in turn.texts)
    turn = assistant.say(sender, "ok")
    assert turn.slots["language"] == "es"
    turn = assistant.say(sender, "in English please")
    assert turn.slots["language"] == "en"


def test_unrecognised_input_gets_the_menu(assistant):
    sender = f"fallback-{uuid.uuid4().hex[:8]}"
    assistant.say(sender, "/greet")
    turn = assistant.say(sender, "/nlu_fallback")
    assert turn.responses == ["utter_fallback"]
