"""Choosing the conversation's language."""

from __future__ import annotations

import json
from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.common import catalog, channel_of, deployment, say


def send_language_menu(dispatcher: CollectingDispatcher) -> None:
    """The language menu: the prompt in every enabled language, a button per language."""
    dep, cat = deployment(), catalog()
    text = " / ".join(cat.prompts[language] for language in dep.languages)
    buttons = [
        {
            "title": cat.names[language],
            "payload": "/change_language" + json.dumps({"language": language}),
        }
        for language in dep.languages
    ]
    dispatcher.utter_message(text=text, buttons=buttons, utter_action="utter_language_menu")


class ActionLanguageMenu(Action):
    """Shows the language menu (first contact, or a change without a language named)."""

    def name(self) -> Text:
        return "action_language_menu"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        send_language_menu(dispatcher)
        return []


class ActionChangeLanguage(Action):
    """Switches to the language the person named, or shows the menu when none was named."""

    def name(self) -> Text:
        return "action_change_language"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        dep = deployment()
        named = [
            e.get("value")
            for e in (tracker.latest_message or {}).get("entities", [])
            if e.get("entity") == "language"
        ]
        chosen = next((code for code in reversed(named) if code in dep.languages), None)
        if chosen is None:
            send_language_menu(dispatcher)
            return []
        say(dispatcher, "utter_language_set", chosen)
        if tracker.active_loop_name is None:
            say(dispatcher, "utter_menu", chosen, channel_of(tracker))
        return [SlotSet("language", chosen)]
