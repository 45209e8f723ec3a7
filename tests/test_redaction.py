"""Redaction of every event type Rasa writes, including unexpected extra fields."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    ActionExecutionRejected,
    ActionReverted,
    ActiveLoop,
    AgentUttered,
    AllSlotsReset,
    BotUttered,
    ConversationPaused,
    ConversationResumed,
    DefinePrevUserUtteredFeaturization,
    EntitiesAdded,
    Event,
    FollowupAction,
    LegacyForm,
    LegacyFormValidation,
    LoopInterrupted,
    ReminderCancelled,
    ReminderScheduled,
    Restarted,
    SessionStarted,
    SlotSet,
    StoryExported,
    UserUttered,
    UserUtteranceReverted,
)
from rasa.shared.utils.common import all_subclasses

from bot.deployment import load_deployment
from bot.privacy.redaction import MASK, RULES, redact_event
from bot.settings import PROJECT_ROOT
from bot.tracker_store import slot_rules

DOMAIN = Domain.load(str(PROJECT_ROOT / "bot" / "domain"))
RULES_ = slot_rules(DOMAIN, load_deployment(PROJECT_ROOT / "deploy" / "sample.yml"))
CANARIES = ["+999 555 0142", "9995550142", "Nadia Okafor", "nadia@example.org", "A12345678",
            "14 Harbour Road"]


def written(event: Event) -> dict:
    """The event as a tracker store would write it: redacted, rebuilt, serialised."""
    redacted = redact_event(event.as_dict(), RULES_)
    rebuilt = Event.from_parameters(redacted)
    return json.loads(json.dumps(rebuilt.as_dict()))


def assert_clean(data: dict) -> None:
    text = json.dumps(data, ensure_ascii=False).lower()
    for canary in CANARIES:
        assert canary.lower() not in text, f"{canary} survived in {text}"


def test_every_rasa_event_type_has_a_rule():
    import rasa.core.test  # noqa: F401  (defines evaluation-only event types too)

    assert {c.type_name for c in all_subclasses(Event)} <= set(RULES)


def test_user_message_keeps_intent_and_closed_entities_only():
    event = UserUttered(
        "I am Nadia Okafor, +999 555 0142, nadia@example.org",
        intent={"name": "report_situation", "confidence": 0.91},
        entities=[{"entity": "language", "value": "fr", "start": 0, "end": 2, "extractor": "DIET"},
                  {"entity": "name", "value": "Nadia Okafor"},
                  {"entity": "language", "value": "Nadia"}],
        parse_data={"intent_ranking": [{"name": "report_situation", "confidence": 0.91},
                                       {"name": "greet", "confidence": 0.05, "text": "A12345678"}],
                    "text": "I am Nadia Okafor", "response_selector": {"x": "14 Harbour Road"}},
        input_channel="helpline", message_id="SM-9995550142",
        metadata={"From": "+999 555 0142", "profile": {"name": "Nadia Okafor"}},
    )
    out = written(event)
    assert_clean(out)
    assert out["text"] is None and out["metadata"] == {} and out["message_id"] is None
    assert out["parse_data"]["intent"] == {"name": "report_situation", "confidence": 0.91}
    assert out["parse_data"]["entities"] == [{"entity": "language", "value": "fr", "extractor": "DIET"}]
    assert [i["name"] for i in out["parse_data"]["intent_ranking"]] == ["report_situation", "greet"]
    assert out["input_channel"] == "helpline"


def test_bot_message_keeps_the_response_name_only():
    event = BotUttered("Hello Nadia Okafor", {"buttons": [{"title": "Nadia", "payload": "/affirm"},
                                                          {"title": "x", "payload": "+999 555 0142"}],
                                              "image": "http://x/14 Harbour Road"},
                       {"utter_action": "utter_greet", "recipient": "+999 555 0142"})
    out = written(event)
    assert_clean(out)
    assert out["text"] is None
    assert out["metadata"] == {"utter_action": "utter_greet"}
    assert out["data"]["buttons"] == [{"payload": "/affirm"}]


@pytest.mark.parametrize(
    "name, value, kept",
    [
        ("language", "fr", "fr"),
        ("language", "Nadia Okafor", None),  # not in the categorical values
        ("q_safe_now", "yes", "yes"),
        ("screening_consent", True, True),
        ("screening_consent", "yes please", None),
        ("triage_level", "high", "high"),
        ("triage_needs", ["shelter", "Nadia Okafor", "legal_aid"], ["shelter", "legal_aid"]),
        ("area", "NG", "NG"),
        ("area", "14 Harbour Road", MASK),
        ("org_name", "Lantern Line (sample)", "Lantern Line (sample)"),
        ("org_name", "Nadia Okafor", MASK),
        ("requested_slot", "q_debt", "q_debt"),
        ("requested_slot", "Nadia Okafor", None),
        ("session_started_metadata", {"From": "+999 555 0142"}, None),
        ("not_in_domain", "Nadia Okafor", MASK),
    ],
)
def test_slot_values_are_kept_only_from_closed_sets(name, value, kept):
    out = written(SlotSet(name, value))
    assert out["name"] == name and out["value"] == kept
    assert_clean(out)


@pytest.mark.parametrize(
    "event, expected",
    [
        (ActionExecuted("utter_menu", policy="RulePolicy", confidence=1.0,
                        action_text="Nadia Okafor", metadata={"From": "+999 555 0142"}),
         {"event": "action", "name": "utter_menu", "policy": "RulePolicy", "confidence": 1.0}),
        (ActiveLoop("screening_form", metadata={"x": "Nadia Okafor"}),
         {"event": "active_loop", "name": "screening_form"}),
        (LegacyForm("screening_form", metadata={"x": "Nadia Okafor"}),
         {"event": "active_loop", "name": "screening_form"}),  # Rasa rewrites legacy forms
        (LegacyFormValidation(False, metadata={"x": "Nadia Okafor"}),
         {"event": "loop_interrupted", "is_interrupted": True}),
        (SessionStarted(metadata={"From": "+999 555 0142", "ip": "14 Harbour Road"}),
         {"event": "session_started"}),
        (Restarted(metadata={"x": "nadia@example.org"}), {"event": "restart"}),
        (FollowupAction("action_listen"), {"event": "followup", "name": "action_listen"}),
        (LoopInterrupted(True), {"event": "loop_interrupted", "is_interrupted": True}),
        (ActionExecutionRejected("action_x", policy="RulePolicy", confidence=0.5),
         {"event": "action_execution_rejected", "name": "action_x"}),
        (DefinePrevUserUtteredFeaturization(False),
         {"event": "user_featurization", "use_text_for_featurization": False}),
        (EntitiesAdded([{"entity": "need", "value": "shelter"}, {"entity": "name", "value": "Nadia Okafor"}]),
         {"event": "entities", "entities": [{"entity": "need", "value": "shelter"}]}),
        (AgentUttered("Nadia Okafor", {"phone": "+999 555 0142"}), {"event": "agent", "text": None}),
        (UserUtteranceReverted(), {"event": "rewind"}),
        (ActionReverted(), {"event": "undo"}),
        (AllSlotsReset(), {"event": "reset_slots"}),
        (ConversationPaused(), {"event": "pause"}),
        (ConversationResumed(), {"event": "resume"}),
        (StoryExported("/home/nadia/14 Harbour Road.md"), {"event": "export"}),
        (ReminderScheduled("remind", dt.datetime(2026, 1, 1),
                           entities=[{"entity": "name", "value": "Nadia Okafor"}], name="r1"),
         {"event": "reminder", "intent": "remind", "name": "r1", "entities": []}),
        (ReminderCancelled(name="r1", intent="remind",
                           entities=[{"entity": "name", "value": "Nadia Okafor"}]),
         {"event": "cancel_reminder"}),  # Rasa writes no fields of its own for it
    ],
)
def test_other_events_keep_names_and_flags_only(event, expected):
    out = written(event)
    assert_clean(out)
    for key, value in expected.items():
        assert out[key] == value, key
    assert "metadata" not in out or out["metadata"] in ({}, None)


@pytest.mark.parametrize("event", [
    UserUttered("x", {"name": "greet"}), BotUttered("x", metadata={"utter_action": "utter_greet"}),
    SlotSet("language", "ar"), ActionExecuted("action_listen"), SessionStarted(),
])
def test_unexpected_extra_fields_are_dropped(event):
    data = event.as_dict()
    data.update({"phone": "+999 555 0142", "contact": {"email": "nadia@example.org"},
                 "parse_data": {**data.get("parse_data", {}), "sender": "Nadia Okafor"}}
                if data["event"] == "user" else
                {"phone": "+999 555 0142", "contact": {"email": "nadia@example.org"}})
    redacted = redact_event(data, RULES_)
    assert "phone" not in redacted and "contact" not in redacted
    assert_clean(redacted)
    assert_clean(Event.from_parameters(redacted).as_dict())


def test_an_unknown_event_type_keeps_only_type_and_time():
    assert redact_event({"event": "custom", "timestamp": 5.0, "phone": "+999 555 0142"}, RULES_) == {
        "event": "custom", "timestamp": 5.0}
    assert redact_event({"timestamp": "yesterday"}, RULES_) == {"event": "unknown"}


def test_redaction_is_idempotent():
    events = [
        UserUttered("Nadia", {"name": "greet", "confidence": 0.5},
                    [{"entity": "detected_language", "value": "ar"}], metadata={"a": "b"}),
        BotUttered("hi", {"buttons": [{"title": "t", "payload": "/affirm"}]}, {"utter_action": "utter_x"}),
        SlotSet("area", "somewhere"), SlotSet("triage_needs", ["shelter"]),
        ActionExecuted("action_listen"),
    ]
    for event in events:
        once = redact_event(event.as_dict(), RULES_)
        assert redact_event(Event.from_parameters(once).as_dict(), RULES_) == once
