"""Services and reaching a person.

The services directory and the caseworker queue are not wired yet: these actions say so
honestly, give the emergency contacts, and always leave the person somewhere to go next.
"""

from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.common import language_of, latest_intent, say, say_with_contacts


def request_human(dispatcher: CollectingDispatcher, tracker: Tracker) -> List[EventType]:
    language = language_of(tracker)
    say_with_contacts(dispatcher, tracker, "utter_handoff_unavailable", language)
    return [SlotSet("offer", None)]


class ActionRequestHuman(Action):
    """Talk to a person: what happens next, honestly."""

    def name(self) -> Text:
        return "action_request_human"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        return request_human(dispatcher, tracker)


class ActionFindServices(Action):
    """Find services (or a place given): what happens next, honestly."""

    def name(self) -> Text:
        return "action_find_services"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        language = language_of(tracker)
        say_with_contacts(dispatcher, tracker, "utter_services_unavailable", language)
        return []


class ActionAnswerOffer(Action):
    """A yes or no: accepts or declines what the last message offered, else shows the menu."""

    def name(self) -> Text:
        return "action_answer_offer"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        language = language_of(tracker)
        offer = tracker.get_slot("offer")
        if offer == "human" and latest_intent(tracker) == "affirm":
            return request_human(dispatcher, tracker)
        if offer:
            say(dispatcher, "utter_offer_declined", language)
        else:
            say(dispatcher, "utter_menu", language)
        return [SlotSet("offer", None)]
