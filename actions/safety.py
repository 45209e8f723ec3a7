"""Emergency first, quick exit, forget me."""

from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActiveLoop, EventType, Restarted, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.common import (channel_of, clear_screening, language_of, person_available,
                            person_slot, say, say_with_contacts)


class ActionEmergency(Action):
    """Emergency contacts first, then the offer of a person where one can come (else of the
    services near); interrupts the questions."""

    def name(self) -> Text:
        return "action_emergency"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        language = language_of(tracker)
        say_with_contacts(dispatcher, tracker, "utter_emergency_contacts", language)
        if tracker.get_slot("handoff") == "open":  # a caseworker has the conversation already
            from actions.handoff import escalate

            escalate(tracker)
            return [ActiveLoop(None), SlotSet("requested_slot", None)]
        person = person_available()
        say(dispatcher, "utter_offer_human", language, person=person)
        # Always ends the questions (a no-op outside them): nothing more is asked now.
        return [SlotSet("offer", "human" if person else "services"), person_slot(person),
                ActiveLoop(None), SlotSet("requested_slot", None), *clear_screening()]


def reply_and_reset(
    dispatcher: CollectingDispatcher, tracker: Tracker, response: str
) -> List[EventType]:
    """Sends ``response``, then resets the conversation; the tracker store erases what came
    before (bot.tracker_store.ERASING_ACTIONS names the actions that do this)."""
    say(dispatcher, response, language_of(tracker), channel_of(tracker))
    return [ActiveLoop(None), Restarted()]


class ActionQuickExit(Action):
    """A neutral one-line reply, then the conversation state is reset."""

    def name(self) -> Text:
        return "action_quick_exit"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        return reply_and_reset(dispatcher, tracker, "utter_quick_exit")


class ActionForgetMe(Action):
    """Confirms, then erases the conversation's state."""

    def name(self) -> Text:
        return "action_forget_me"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        return reply_and_reset(dispatcher, tracker, "utter_forget_me_done")
