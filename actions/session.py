"""Session start and global slot validation."""

from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActionExecuted, EventType, SessionStarted, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.forms import ValidationAction
from rasa_sdk.types import DomainDict

from actions.common import deployment, person_slot, refreshed_person_slot
from bot.settings import Settings


class ActionSessionStart(Action):
    """Starts a session with the deployment's organisation name and a language set; a
    conversation with an open hand-off case stays with its caseworker (``handoff`` open, the
    case's language), even when its events were deleted for idleness while the case waited."""

    def name(self) -> Text:
        return "action_session_start"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        dep = deployment()
        # A language chosen in an earlier session is kept (it identifies nobody); everything
        # else starts afresh.
        language = dep.language_or_default(tracker.get_slot("language"))
        case = open_case(tracker.sender_id)
        if case is not None:
            language = dep.language_or_default(case.language)
        return [
            SessionStarted(),
            SlotSet("org_name", dep.organisation_name),
            SlotSet("language", language),
            *([SlotSet("handoff", "open")] if case is not None else []),
            person_slot(),  # whether texts may offer a person (bot.catalog.WITHOUT_PERSON)
            ActionExecuted("action_listen"),
        ]


def open_case(conversation_id: str):
    """The conversation's open hand-off case, or None (also where there are no cases tables)."""
    from bot.cases.service import cases_for

    cases = cases_for(Settings.from_env().database_url)
    return cases.open_case_for(conversation_id) if cases is not None else None


def previous_value(tracker: Tracker, slot: str) -> Any:
    """The value ``slot`` had before the latest SlotSet of it in this session."""
    seen_latest = False
    for event in reversed(tracker.events):
        if event.get("event") in ("restart", "session_started"):
            return None
        if event.get("event") == "slot" and event.get("name") == slot:
            if seen_latest:
                return event.get("value")
            seen_latest = True
    return None


class ValidateSlotMappings(ValidationAction):
    """Keeps the language slot within the deployment's enabled languages, and after every
    message the ``person_available`` slot true (Rasa runs it after each one)."""

    def name(self) -> Text:
        return "action_validate_slot_mappings"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> List[EventType]:
        events = await super().run(dispatcher, tracker, domain)
        return [*events, *refreshed_person_slot(tracker)]

    async def validate_language(
        self,
        slot_value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> Dict[Text, Any]:
        dep = deployment()
        if slot_value in dep.languages:
            return {"language": slot_value}
        return {"language": dep.language_or_default(previous_value(tracker, "language"))}
