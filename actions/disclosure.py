"""A person who tells us something about their situation is heard before anything is asked.

When the message that led to the screening offer discloses something (``bot.disclosures``:
"they took my passport", "I am 15 and work for a man"), a short acknowledgement comes before
the consent question: no verdict, no label, the decision left with the person (GPC guide,
004 line 1116). The message is read in memory only; nothing is kept.
"""

from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from actions.common import language_of, say
from bot.disclosures import disclosed


class ActionAcknowledgeDisclosure(Action):
    def name(self) -> Text:
        return "action_acknowledge_disclosure"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        if disclosed((tracker.latest_message or {}).get("text") or ""):
            say(dispatcher, "utter_disclosure_ack", language_of(tracker))
        return []
