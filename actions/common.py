"""Shared helpers for actions: the deployment, the conversation's language, sending messages."""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from rasa_sdk import Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from bot.catalog import PERSON_SLOT, Catalog, load_catalog
from bot.deployment import Deployment, cached_deployment
from bot.settings import Settings
from bot.triage import QUESTIONS


def deployment() -> Deployment:
    """The validated deployment file named by the settings (read once per process)."""
    return cached_deployment(Settings.from_env().deployment_file)


def catalog() -> Catalog:
    """Every text the assistant sends, per language (read once per process)."""
    return load_catalog()


def language_of(tracker: Tracker, dep: Optional[Deployment] = None) -> str:
    """The conversation's language, always one the deployment enables."""
    dep = dep or deployment()
    return dep.language_or_default(tracker.get_slot("language"))


def channel_of(tracker: Tracker) -> str:
    """The channel the person wrote on last (``sms``, ``telegram``, ``webchat``...), or ""."""
    return tracker.get_latest_input_channel() or ""


def person_available() -> bool:
    """Whether a caseworker can be connected on this deployment now (known within a few
    seconds: ``bot.cases.availability``)."""
    from bot.cases.availability import person_available as available

    return available(Settings.from_env().database_url)


def person_slot(available: Optional[bool] = None) -> SlotSet:
    """The ``person_available`` slot, by which Rasa picks a response's variation with or
    without the offer of a person (``bot.catalog.build_responses``)."""
    return SlotSet(PERSON_SLOT, person_available() if available is None else available)


def refreshed_person_slot(tracker: Tracker) -> List[EventType]:
    """The ``person_available`` slot where it no longer says what is true, else nothing."""
    available = person_available()
    return [] if tracker.get_slot(PERSON_SLOT) is available else [person_slot(available)]


def say(
    dispatcher: CollectingDispatcher,
    response: str,
    language: str,
    channel: str = "",
    person: Optional[bool] = None,
    metadata: Optional[Dict[str, Any]] = None,
    **values: Any,
) -> None:
    """Sends catalog response ``response`` in ``language``, with ``channel``'s words (what to
    type to leave, how to choose; the words every channel shares when it is "").

    A response that offers a person is sent as its variant without the offer, and without
    buttons that ask for one, where no person can come (``person``: asked when None).
    ``org_name`` is filled from the deployment; other placeholders come from ``values``.
    The response name travels with the message (``utter_action``), as for Rasa's own responses;
    ``metadata`` (for the channel, never stored) with the message's language.
    """
    values.setdefault("org_name", deployment().organisation_name)
    if person is None:
        person = not catalog().offers_person(response) or person_available()
    message = catalog().render(response, language, channel, person, **values)
    dispatcher.utter_message(
        text=message["text"], buttons=message.get("buttons"), utter_action=response,
        metadata={**(metadata or {}), "language": language},
    )


def say_with_contacts(
    dispatcher: CollectingDispatcher, tracker: Tracker, response: str, language: str,
    person: Optional[bool] = None,
) -> None:
    """Sends ``response`` with the emergency contacts for the person's area filled in."""
    contacts = deployment().render_contacts(language, tracker.get_slot("area"))
    say(dispatcher, response, language, channel_of(tracker), person, contacts=contacts)


def latest_intent(tracker: Tracker) -> Optional[str]:
    return (tracker.latest_message or {}).get("intent", {}).get("name")


def last_bot_response(tracker: Tracker) -> Optional[str]:
    """Name of the last response the bot sent in this conversation, if any."""
    for event in reversed(tracker.events):
        if event.get("event") == "bot":
            return (event.get("metadata") or {}).get("utter_action")
        if event.get("event") in ("restart", "session_started"):
            return None
    return None


def clear_screening() -> List[EventType]:
    """Forget every screening answer, what was told before them and the consent (nothing
    is kept after the triage)."""
    return [SlotSet(q, None) for q in QUESTIONS] + [SlotSet("screening_consent", None),
                                                     SlotSet("disclosed", None)]
