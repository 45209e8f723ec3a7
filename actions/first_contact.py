"""First contact is safe (issue 16 §4): the first answer of a new conversation.

Before anything else, a new conversation (a new session with no earlier message: the first
ever, one after the session expired, or after a quick exit or "forget me") is told in one
short message that this is an automated assistant, how to leave fast on this channel, and
that others may see the messages on a shared phone; then asked whether it is safe to write
now (``utter_first_contact``, data/stories/rules_first_contact.yml). GPC guide 004 line
1135: "avoid exposing them to further harm"; line 1145: safety "at all stages".

- A first message that is an emergency, a quick exit, "forget me" or an unsubscribe
  (``ANSWERED_AT_ONCE``) is answered at once: no rule puts the question before it.
- "Yes": the first message is answered as if it had just been sent. It is held nowhere but in
  the conversation's own first user event, which the tracker store keeps as its intent name
  and the entities from closed lists (a language, a need category: bot/privacy/redaction.py);
  its text, a place it named and a shared position are not kept, so they are not replayed.
  A greeting gets the language menu, as a first greeting always has. What the first message
  told about the person's situation (``bot.disclosures``) is kept meanwhile as the same closed
  answers as always (the ``disclosed`` slot), so it is still acknowledged and asked back.
- "Not now": the emergency contacts and how to leave fast; nothing is asked, and the first
  message is dropped. The next message is handled as any other.
- Anything else: the person is writing, which answers the question; that message is handled
  as usual by the rules and the first one is dropped.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActionExecuted, EventType, SlotSet, UserUttered
from rasa_sdk.executor import CollectingDispatcher

from actions.common import channel_of, language_of, latest_intent, say, say_with_contacts
from actions.language import send_language_menu
from bot.disclosures import disclosed, labels
from bot.privacy.redaction import redact_entities

# Intents answered at once even as the first message of a conversation: the safety intents
# (emergency first, quick exit, forget me) and SMS STOP (/unsubscribe), whose subscriber must
# be deleted now. data/stories/rules_first_contact.yml has a rule for every other intent.
ANSWERED_AT_ONCE = frozenset({"emergency", "quick_exit", "forget_me", "unsubscribe"})


def first_message(tracker: Tracker) -> Optional[Dict[str, Any]]:
    """The intent and closed-list entities of this conversation's first message, as the
    tracker store keeps them (since the last session start or restart), or None."""
    first = None
    for event in tracker.events:
        if event.get("event") in ("session_started", "restart"):
            first = None
        elif event.get("event") == "user" and first is None:
            first = event
    if first is None:
        return None
    parse = first.get("parse_data") or {}
    name = (parse.get("intent") or {}).get("name")
    if not name:
        return None
    return {"intent": {"name": name, "confidence": 1.0},
            "entities": redact_entities(parse.get("entities")), "text": None}


class ActionAskSafeToWrite(Action):
    """The first answer of a new conversation: who answers, how to leave fast here, a shared
    phone; then "is it safe to write now?" (yes / not now)."""

    def name(self) -> Text:
        return "action_ask_safe_to_write"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        say(dispatcher, "utter_first_contact", language_of(tracker), channel_of(tracker))
        # The message's text is not kept: what it told is, as closed answers (actions/disclosure.py).
        answers = disclosed((tracker.latest_message or {}).get("text") or "")
        return [SlotSet("disclosed", labels(answers))] if answers else []


class ActionAnswerSafeToWrite(Action):
    """Yes: the first message answered as if just sent. Not now: the emergency contacts and
    how to leave fast, nothing asked."""

    def name(self) -> Text:
        return "action_answer_safe_to_write"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        language = language_of(tracker)
        if latest_intent(tracker) != "affirm":
            say_with_contacts(dispatcher, tracker, "utter_not_safe_now", language)
            return []
        held = first_message(tracker)
        if held is None:
            say(dispatcher, "utter_menu", language, channel_of(tracker))
            return []
        if held["intent"]["name"] == "greet":
            send_language_menu(dispatcher)
            return []
        # As if the person had just sent it: the rules answer it (Rasa runs the slot mappings
        # again for a user event an action returns).
        return [ActionExecuted("action_listen"),
                UserUttered(None, held, input_channel=channel_of(tracker) or None)]
