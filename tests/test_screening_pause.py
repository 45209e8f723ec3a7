"""Asking for a person or for services during the questions pauses them and does what was
asked (issue 16 §5: today's re-prompt made a person who asked for help answer first).

The answers given so far stay as closed values: a hand-off carries their triage, and coming
back to the questions does not ask them again."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.screening import ActionPauseScreening, ActionRecordConsent
from bot.catalog import load_catalog
from bot.cases.service import HandOff, cases_for
from tests.conftest import responses_sent
from tests.test_handoff import migrated

LANGUAGES = ("en", "fr", "ar", "es")


def tracker(slots: dict, intent: str = "request_human", language: str = "en",
            last_bot: str = "") -> Tracker:
    events = []
    if last_bot:
        events.append({"event": "bot", "metadata": {"utter_action": last_bot}})
    events.append({"event": "user", "text": "", "parse_data": {"intent": {"name": intent}},
                   "input_channel": "telegram"})
    return Tracker("c" + "2" * 31, {"language": language, **slots},
                   {"intent": {"name": intent}, "text": "", "entities": []},
                   events, False, None, {"name": "screening_form"}, "action_listen")


def run(action, tracker_):
    dispatcher = CollectingDispatcher()
    events = asyncio.run(action.run(dispatcher, tracker_, {}))
    return {e["name"]: e["value"] for e in events if e["event"] == "slot"}, events, dispatcher


@pytest.mark.parametrize("language", LANGUAGES)
def test_pausing_ends_the_form_says_so_and_keeps_the_triage_of_the_answers(language):
    answers = {"screening_consent": True, "q_safe_now": "yes", "q_under_18": "no",
               "q_threats": "yes"}
    slots, events, dispatcher = run(ActionPauseScreening(), tracker(answers, language=language))
    assert {"event": "active_loop", "timestamp": None, "name": None} in events
    assert responses_sent(dispatcher) == ["utter_screening_paused"]
    assert dispatcher.messages[0]["text"] == load_catalog().texts[language][
        "utter_screening_paused"]
    assert slots["requested_slot"] is None
    assert slots["triage_level"] == "high"  # threats: bot/triage.yml
    # the answers and the consent are not cleared: that is what makes it a pause
    assert not {"q_safe_now", "q_threats", "screening_consent"} & set(slots)


def test_pausing_before_any_answer_sets_no_triage():
    slots, _, _ = run(ActionPauseScreening(), tracker({"screening_consent": True}))
    assert "triage_level" not in slots


def test_yes_to_the_consent_again_after_a_pause_keeps_the_answers_and_no_clears_them():
    paused = {"screening_consent": True, "q_safe_now": "yes"}
    slots, _, _ = run(ActionRecordConsent(), tracker(
        paused, intent="affirm", last_bot="utter_screening_consent"))
    assert slots == {"screening_consent": True}
    slots, _, _ = run(ActionRecordConsent(), tracker(
        paused, intent="deny", last_bot="utter_screening_consent"))
    assert slots["q_safe_now"] is None and slots["screening_consent"] is None


def test_a_hand_off_asked_for_during_the_questions_carries_their_triage(tmp_path, monkeypatch):
    from actions.help import ActionAnswerOffer

    database = migrated(tmp_path)
    monkeypatch.setenv("HELPLINE_DATABASE_URL", database)
    monkeypatch.setattr(HandOff, "on_shift", lambda self, deployment, now: True)
    answers = {"screening_consent": True, "q_safe_now": "yes", "q_documents": "no"}
    slots, _, _ = run(ActionPauseScreening(), tracker(answers))
    _, events, _ = run(ActionAnswerOffer(), tracker(
        {**answers, **slots, "offer": "handoff"}, intent="affirm"))
    assert {"event": "slot", "timestamp": None, "name": "handoff", "value": "open"} in events
    [case] = cases_for(database).queue()
    assert case.triage_level == "medium"  # documents kept by someone: GPC 004 line 889


def choose(language: str) -> str:
    return "/change_language" + json.dumps({"language": language})


@pytest.mark.model
@pytest.mark.parametrize("language", LANGUAGES)
def test_with_the_trained_assistant_a_person_or_services_pause_and_coming_back_resumes(
        assistant, language):
    sender = f"pause-{language}-{uuid.uuid4().hex[:8]}"
    steps = [
        (choose(language), ["utter_language_set", "utter_menu"]),
        ("/check_situation", ["utter_screening_about", "utter_screening_consent"]),
        ("/affirm", ["utter_ask_q_safe_now"]),
        ("/affirm", ["utter_ask_q_under_18"]),
        # no caseworker database here: the honest "not available" comes after the pause
        ("/request_human", ["utter_screening_paused", "utter_handoff_unavailable"]),
        ("/check_situation", ["utter_screening_about", "utter_screening_consent"]),
        ("/affirm", ["utter_ask_q_under_18"]),  # the answer given before is not asked again
        ("/find_services", ["utter_screening_paused", "utter_services_unavailable"]),
    ]
    for index, (text, expected) in enumerate(steps):
        turn = (assistant.open if index == 0 else assistant.say)(sender, text)
        assert turn.responses == expected, (text, turn.intent, turn.responses)
    assert turn.active_loop is None
