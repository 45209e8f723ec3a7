"""Before the consent question: a person who told us something about their situation is heard
first, then everyone is told what the questions are and what is kept (issue 16 §3, §5).

When the message that led to the screening offer discloses something (``bot.disclosures``:
"they took my passport", "I am 15 and work for a man"), a short acknowledgement comes before
the consent question: no verdict, no label, the decision left with the person (GPC guide,
004 line 1116). The message is read in memory only; what it implies is kept as the
screening's own closed answers ("q_documents=no") and asked back for confirmation after the
person agrees to the questions (``actions.screening``); a no to the questions clears it.
"""

from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.common import deployment, language_of, say
from bot.disclosures import disclosed, labels


class ActionExplainQuestions(Action):
    def name(self) -> Text:
        return "action_explain_questions"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        language = language_of(tracker)
        text = (tracker.latest_message or {}).get("text")
        answers = disclosed(text or "")
        # A first message answered after "is it safe to write now?" comes back without its
        # text (actions/first_contact.py), what it told kept in the slot meanwhile.
        if answers or text is None and tracker.get_slot("disclosed"):
            say(dispatcher, "utter_disclosure_ack", language)
        # what the consent covers: who asks, about what, what is kept and for how long
        say(dispatcher, "utter_screening_about", language,
            keep_hours=deployment().retention.conversation_idle_hours)
        if not answers:
            return []
        # kept as closed labels only, to be confirmed after consent (a "no" clears them)
        return [SlotSet("disclosed", labels(answers))]
