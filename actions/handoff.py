"""The hand-off to a caseworker: consent, the case, the relay both ways, the end.

Thin adapters to ``bot.cases``: a person is offered a caseworker only where one can come (the
cases tables exist and the deployment has caseworker accounts: ``HandOff.of``); otherwise the
assistant says so honestly, as before. After a yes to the consent question the conversation's
case is queued and the ``handoff`` slot opens: from then on the rules send every message but a
quick exit, "forget me" or an emergency to ``action_relay_to_caseworker`` (recorded in the
case's encrypted transcript, no answer from the assistant). The console records a
caseworker's reply in the transcript and runs ``action_relay_caseworker`` through Rasa's API
to speak it, and ``action_handoff_closed`` when the case is closed.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActionExecuted, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.common import (catalog, channel_of, deployment, language_of, person_slot, say,
                            say_with_contacts)
from bot.cases.models import LEVELS
from bot.cases.queue import CHANNELS, MAX_MESSAGE_CHARS, CapReached, CaseError
from bot.cases.service import HandOff, hold_for, route_hold
from bot.settings import Settings

logger = logging.getLogger(__name__)
# Run from outside (the console, through Rasa's API), these actions end by listening, as a
# predicted turn does: the person's next message must meet the rules as after any turn.
LISTENING = ActionExecuted("action_listen")


def hand_off() -> Optional[HandOff]:
    return HandOff.of(Settings.from_env().database_url)


def offer_hand_off(dispatcher: CollectingDispatcher, tracker: Tracker) -> List[EventType]:
    """A person asked for a person: the consent question, or honestly "not available"."""
    language = language_of(tracker)
    if hand_off() is None:
        say_with_contacts(dispatcher, tracker, "utter_handoff_unavailable", language)
        return [SlotSet("offer", None), person_slot(False)]  # no more offers of a person
    say(dispatcher, "utter_handoff_consent", language,
        keep_days=deployment().retention.closed_case_days)
    return [SlotSet("offer", "handoff"), person_slot(True)]


def next_opening_text(language: str, now: dt.datetime) -> str:
    """When cover starts again, in the helpline's local time ("Mon 08:00"), or "" if never."""
    opening = deployment().human_cover.next_opening(now)
    if opening is None:
        return ""
    days = catalog().texts[language]["utter_services_days"].split()
    return f"{days[opening.weekday()]} {opening:%H:%M}"


def connect(dispatcher: CollectingDispatcher, tracker: Tracker) -> List[EventType]:
    """The person said yes to the consent question: their case joins the queue."""
    language = language_of(tracker)
    handoff = hand_off()
    if handoff is None:  # the last caseworker account went away in between
        say_with_contacts(dispatcher, tracker, "utter_handoff_unavailable", language)
        return [SlotSet("offer", None)]
    channel = tracker.get_latest_input_channel()
    level = tracker.get_slot("triage_level") or "none"
    if level not in LEVELS:
        level = "none"  # "unknown" (every question skipped): the case has no triage level
    now = handoff.cases.now()
    try:  # kept (case and reply route) until a caseworker can answer: see hold_for
        case = handoff.cases.open(tracker.sender_id, channel if channel in CHANNELS else "helpline",
                                  language, level, tracker.get_slot("triage_needs") or [],
                                  tracker.get_slot("service_place"),
                                  held_until=hold_for(deployment(), now),
                                  cap=deployment().max_new_cases_per_hour)
    except CapReached:
        logger.warning("hand-off: the channel reached its cap of new cases this hour")
        say_with_contacts(dispatcher, tracker, "utter_handoff_busy", language)
        return [SlotSet("offer", None)]
    except CaseError as exc:
        logger.error("hand-off: the case could not be opened (%s)", type(exc).__name__)
        say_with_contacts(dispatcher, tracker, "utter_handoff_unavailable", language)
        return [SlotSet("offer", None)]
    if handoff.on_shift(deployment(), now):
        say(dispatcher, "utter_handoff_queued", language, channel_of(tracker),
            metadata=route_hold(case.held_until))
    else:
        contacts = deployment().render_contacts(language, tracker.get_slot("area"))
        say(dispatcher, "utter_handoff_after_hours", language, metadata=route_hold(case.held_until),
            when=next_opening_text(language, now), contacts=contacts)
    return [SlotSet("offer", None), SlotSet("handoff", "open")]


EMERGENCY_NOTE = ("EMERGENCY: the person signalled immediate danger and was given the "
                  "emergency contacts.")


def escalate(tracker: Tracker) -> None:
    """An emergency while a caseworker has the conversation: the case goes to the top of the
    queue and the caseworker sees a note in the transcript."""
    handoff = hand_off()
    if handoff is not None:
        handoff.cases.escalate(tracker.sender_id, EMERGENCY_NOTE)


class ActionRelayToCaseworker(Action):
    """A message during an open hand-off: into the case's transcript, no answer."""

    def name(self) -> Text:
        return "action_relay_to_caseworker"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        handoff = hand_off()
        case = handoff.cases.open_case_for(tracker.sender_id) if handoff else None
        if case is None:  # closed meanwhile (or the hand-off went away): back to the assistant
            say(dispatcher, "utter_handoff_closed", language_of(tracker))
            return [SlotSet("handoff", None)]
        text = ((tracker.latest_message or {}).get("text") or "").strip()
        if text:
            handoff.cases.record(case.id, "person", text[:MAX_MESSAGE_CHARS])
        # replies that could not reach the person when sent (no reply route then) go now
        for reply in handoff.cases.take_replies(tracker.sender_id):
            dispatcher.utter_message(text=reply, metadata={"language": language_of(tracker)})
        return []


class ActionRelayCaseworker(Action):
    """Speaks the caseworker's replies waiting in the case's transcript (the console records a
    reply, then runs this action through Rasa's API): the text never enters Rasa's tracker
    but as the bot's message, which the tracker store does not keep."""

    def name(self) -> Text:
        return "action_relay_caseworker"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        handoff = hand_off()
        replies = handoff.cases.take_replies(tracker.sender_id) if handoff else []
        for text in replies:
            dispatcher.utter_message(text=text, metadata={"language": language_of(tracker)})
        return [LISTENING]


class ActionHandoffClosed(Action):
    """The caseworker closed the case: a supportive goodbye, and the assistant is back."""

    def name(self) -> Text:
        return "action_handoff_closed"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        say(dispatcher, "utter_handoff_closed", language_of(tracker))
        return [SlotSet("handoff", None), LISTENING]
