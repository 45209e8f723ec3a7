"""Builders for rasa-sdk trackers in action tests."""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from rasa_sdk import Tracker

from bot.triage import QUESTIONS

DEFAULT_SLOTS: Dict[str, Any] = {
    "language": "en",
    "org_name": "Lantern Line (sample)",
    "offer": None,
    "area": None,
    "topic": None,
    "screening_consent": None,
    "triage_level": None,
    "triage_needs": None,
    "requested_slot": None,
    "service_need": None,
    "service_place": None,
    "services_page": None,
    "services_asking": None,
    **{q: None for q in QUESTIONS},
}


def bot_event(response: str, text: str = "...") -> Dict[str, Any]:
    return {"event": "bot", "text": text, "data": {}, "metadata": {"utter_action": response}}


def user_event(intent: str, text: str = "...", entities: Optional[list] = None) -> Dict[str, Any]:
    return {
        "event": "user",
        "text": text,
        "parse_data": {"intent": {"name": intent, "confidence": 1.0}, "entities": entities or []},
    }


def make_tracker(
    intent: str = "greet",
    slots: Optional[Dict[str, Any]] = None,
    entities: Optional[List[Dict[str, Any]]] = None,
    events: Optional[List[Dict[str, Any]]] = None,
    active_loop: Optional[str] = None,
    text: str = "...",
) -> Tracker:
    """A tracker whose latest message has ``intent`` and whose slots are the defaults + ``slots``."""
    all_slots = {**DEFAULT_SLOTS, **(slots or {})}
    latest = {
        "intent": {"name": intent, "confidence": 1.0},
        "entities": entities or [],
        "text": text,
    }
    history = list(events or []) + [user_event(intent, text, entities)]
    return Tracker(
        sender_id="test-conversation",
        slots=all_slots,
        latest_message=latest,
        events=history,
        paused=False,
        followup_action=None,
        active_loop={"name": active_loop} if active_loop else {},
        latest_action_name="action_listen",
    )
