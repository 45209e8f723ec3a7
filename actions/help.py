"""Services and reaching a person.

The services search asks for the need and the place, then answers from the directory
(``bot/services``); the decision is ``bot.services.answer.next_step`` and the words are
``bot.services.reply``. Asking for a person leads to the hand-off (``actions/handoff.py``).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.common import (
    channel_of,
    catalog,
    deployment,
    language_of,
    last_bot_response,
    latest_intent,
    person_available,
    say,
    say_with_contacts,
)
from bot.services.answer import ANY_NEED, Step, next_step
from bot.services.categories import load_categories
from bot.services.reply import Wording, messages_for
from bot.settings import Settings

logger = logging.getLogger(__name__)

# The need a search starts with after a triage result: the first of these the result names.
TRIAGE_NEED_ORDER = ("emergency", "child_protection", "anti_trafficking", "shelter",
                     "gbv_support", "medical", "legal_aid", "documentation")
# The need a search starts with after an awareness answer, by topic.
TOPIC_NEEDS = {"trafficking": "anti_trafficking", "job_offer": "anti_trafficking",
               "safe_travel": "anti_trafficking", "worried": "anti_trafficking",
               "rights": "legal_aid", "smuggling": "legal_aid"}
RESULTS = ("utter_services_results", "utter_services_results_near_you")
LAST_PAGE = 9  # services_page holds "1".."9": ten pages of three are enough for one chat


def request_human(dispatcher: CollectingDispatcher, tracker: Tracker) -> List[EventType]:
    from actions.handoff import offer_hand_off

    return offer_hand_off(dispatcher, tracker)


class ActionRequestHuman(Action):
    """Talk to a person: what happens next, honestly."""

    def name(self) -> Text:
        return "action_request_human"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        return request_human(dispatcher, tracker)


def _entity(tracker: Tracker, name: str) -> Optional[str]:
    for entity in (tracker.latest_message or {}).get("entities") or []:
        if entity.get("entity") == name and entity.get("value") not in (None, ""):
            return str(entity["value"])
    return None


def shared_point(tracker: Tracker) -> Optional[tuple[float, float]]:
    """A position shared in this message (latitude and longitude entities), if valid."""
    try:
        lat, lon = float(_entity(tracker, "latitude")), float(_entity(tracker, "longitude"))
    except (TypeError, ValueError):
        return None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180) or lat != lat or lon != lon:
        return None
    return lat, lon


def need_from_context(tracker: Tracker, last: Optional[str]) -> Optional[str]:
    """The need to pre-fill after a triage result or an awareness answer, if any."""
    if last and last.startswith("utter_triage_") or last == "utter_offer_human":
        needs = tracker.get_slot("triage_needs") or []
        return next((n for n in TRIAGE_NEED_ORDER if n in needs), needs[0] if needs else None)
    if last and last.startswith("utter_awareness_"):
        topic = last[len("utter_awareness_"):].removesuffix("_more")
        return TOPIC_NEEDS.get(topic)
    return None


def _page(tracker: Tracker) -> int:
    try:
        return int(tracker.get_slot("services_page") or 0)
    except ValueError:
        return 0


def search(tracker: Tracker, more: bool = False, intent: Optional[str] = None) -> Step:
    """The next step of the search for this message (``more``: the next page; ``intent``:
    read the message as this intent, e.g. a yes to the offer of services as asking for them)."""
    from bot.services.runtime import current

    settings = Settings.from_env()
    loaded = current(settings.database_url)
    intent = intent or latest_intent(tracker)
    asking = tracker.get_slot("services_asking")
    categories = load_categories()
    need = _entity(tracker, "need")
    need = need if need in categories or need == ANY_NEED else None
    kept_need = tracker.get_slot("service_need")
    kept_place = tracker.get_slot("service_place")
    # A triage that found the person is under 18 (its only source of child_protection) keeps
    # the search to services that serve children.
    group = "children" if "child_protection" in (tracker.get_slot("triage_needs") or []) else None
    if more:
        return next_step(loaded, need=kept_need or ANY_NEED, place_code=kept_place,
                         page=_page(tracker), group=group)
    point = shared_point(tracker)
    place_text = place_code = None
    place = _entity(tracker, "place")
    if place and place in loaded.gazetteer.places:
        place_code = place  # a button of "which place do you mean?"
    elif intent == "inform_location" or asking == "place" and intent != "find_services":
        place_text = place or (tracker.latest_message or {}).get("text") or None
    if intent == "find_services":
        need = need or need_from_context(tracker, last_bot_response(tracker))
        if need is None and not point:
            return next_step(loaded)  # a new search: which kind of help?
        place_code = place_code or kept_place
    elif intent == "skip" and asking == "need":
        need = ANY_NEED
    need = need or kept_need
    return next_step(loaded, need=need, need_asked=asking == "need", place_text=place_text,
                     place_code=place_code, point=point, group=group)


def step_events(step: Step, tracker: Tracker) -> List[EventType]:
    """What the conversation keeps after ``step``: closed sets only, never a point or camp."""
    asking = {"ask_need": "need", "ask_place": "place", "unknown_place": "place",
              "which_place": "place"}.get(step.kind)
    events: List[EventType] = [SlotSet("services_asking", asking)]
    if step.kind == "unavailable":
        return events
    events.append(SlotSet("service_need", step.need))
    if step.kind in ("results", "none_near", "no_more"):
        area = step.area.code if step.area is not None else None
        events.append(SlotSet("service_place", area))
        next_page = step.page + 1 if step.kind == "results" and area else None
        events.append(SlotSet("services_page",
                              str(next_page) if next_page and next_page <= LAST_PAGE else None))
        country = (step.area or step.place).country if (step.area or step.place) else None
        if country in deployment().emergency_contacts:
            events.append(SlotSet("area", country))
    return events


def send_step(dispatcher: CollectingDispatcher, tracker: Tracker, step: Step,
              events: List[EventType]) -> None:
    """Sends the messages for ``step`` in the conversation's language."""
    language = language_of(tracker)
    if step.kind == "unavailable":
        say_with_contacts(dispatcher, tracker, "utter_services_unavailable", language)
        return
    area = next((e["value"] for e in events if e.get("name") == "area"), tracker.get_slot("area"))
    contacts = deployment().render_contacts(language, area)
    from bot.services.runtime import current

    gazetteer = current(Settings.from_env().database_url).gazetteer
    wording = Wording(catalog(), load_categories(), language, gazetteer, person_available())
    now = dt.datetime.now(dt.timezone.utc)
    for message in messages_for(step, wording, now, contacts=contacts):
        dispatcher.utter_message(text=message.text, buttons=message.buttons or None,
                                 utter_action=message.response, metadata={"language": language})


class ActionFindServices(Action):
    """Looks for services: asks the need and the place, then answers from the directory."""

    def name(self) -> Text:
        return "action_find_services"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        step = search(tracker)
        events = step_events(step, tracker)
        send_step(dispatcher, tracker, step, events)
        return events


def more_services(dispatcher: CollectingDispatcher, tracker: Tracker) -> Optional[List[EventType]]:
    """The next page of services when the last message was results; None otherwise."""
    if last_bot_response(tracker) not in RESULTS:
        return None
    if not tracker.get_slot("service_place") or not tracker.get_slot("services_page"):
        step = Step("no_more", need=tracker.get_slot("service_need"))
    else:
        step = search(tracker, more=True)
    events = step_events(step, tracker)
    send_step(dispatcher, tracker, step, events)
    return events


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
        if offer == "handoff" and latest_intent(tracker) == "affirm":
            from actions.handoff import connect

            return connect(dispatcher, tracker)
        if offer == "services" and latest_intent(tracker) == "affirm":
            step = search(tracker, intent="find_services")  # the need the reply was about
            events = step_events(step, tracker)
            send_step(dispatcher, tracker, step, events)
            return [*events, SlotSet("offer", None)]
        if offer == "subscribe" and latest_intent(tracker) == "affirm":
            from actions.campaigns import subscribe

            return subscribe(dispatcher, tracker)
        if offer:
            say(dispatcher, "utter_offer_declined", language)
        else:
            say(dispatcher, "utter_menu", language, channel_of(tracker))
        return [SlotSet("offer", None)]
