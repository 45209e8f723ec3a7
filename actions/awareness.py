"""'More' continues what was last answered: services results, or an awareness topic."""

from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.common import catalog, language_of, say
from actions.help import more_services


class ActionMore(Action):
    """The next services, the second part of the last awareness topic, or "no more"."""

    def name(self) -> Text:
        return "action_more"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        services = more_services(dispatcher, tracker)
        if services is not None:
            return services
        language = language_of(tracker)
        topic = tracker.get_slot("topic")
        response = f"utter_awareness_{topic}_more"
        if topic and response in catalog().texts[language]:
            say(dispatcher, response, language)
        else:
            say(dispatcher, "utter_more_none", language)
        return [SlotSet("topic", None)]
