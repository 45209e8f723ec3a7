"""Subscribing to the awareness campaigns' safety messages, and stopping them.

"subscribe" (JOIN on SMS, /join on Telegram) asks for consent, saying what will come, how
often (the deployment's ``campaigns.max_per_week``), for how long (``campaigns.consent_months``)
and how to stop; only a yes records the subscriber (pseudonym, language, coarse area, consent
time). Asking again while subscribed (JOIN, also in answer to the reminder that
``helpline campaign remind`` sends before the end) renews the consent from today (the
conversation's language and area, else the stored area; the renewed consent gets its own
reminder) and says for how many months; a subscriber whose
consent has run out is deleted there and then and asked again, as if new. The action server
never sees the address: the confirmation carries ``bot.campaigns.service.ATTACH`` in its
metadata, and the channel, which holds the address in the reply route, stores it encrypted in
the same turn.
"unsubscribe" (STOP) deletes the subscriber and the address at once. Only SMS and Telegram
can receive campaigns; elsewhere the person is told where to subscribe.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.common import catalog, deployment, language_of, say
from bot.campaigns.models import SUBSCRIBER_CHANNELS
from bot.campaigns.service import ATTACH, subscribers_for
from bot.campaigns.subscribers import Subscribers
from bot.settings import Settings


def subscribers() -> Optional[Subscribers]:
    return subscribers_for(Settings.from_env().database_url)


def per_week() -> int:
    section = getattr(deployment(), "campaigns", None)
    return int(getattr(section, "max_per_week", 2) or 2)


def consent_months() -> int:
    """How long a yes lasts: the deployment's ``campaigns.consent_months``."""
    section = getattr(deployment(), "campaigns", None)
    return int(getattr(section, "consent_months", 12) or 12)


def months_text(language: str, months: int) -> str:
    """``months`` as the messages' ``{months}`` says it: the number with its noun, which
    agrees with it (Arabic: شهر واحد, شهرين, 3-10 أشهر, 11 and more شهرًا)."""
    if language == "fr":
        return f"{months} mois"
    if language == "es":
        return "1 mes" if months == 1 else f"{months} meses"
    if language == "ar":
        if months <= 2:
            return "شهر واحد" if months == 1 else "شهرين"
        return f"{months} أشهر" if months <= 10 else f"{months} شهرًا"
    return "1 month" if months == 1 else f"{months} months"


def language_chosen_here(tracker: Tracker) -> bool:
    """Whether this session set its language (a choice, or detection of what the person
    wrote) beyond the session start's own setting (the default, or an earlier session's)."""
    settings = 0
    for event in reversed(tracker.events):
        if event.get("event") in ("session_started", "restart"):
            return settings > 1  # the session start sets it once itself
        if event.get("event") == "slot" and event.get("name") == "language":
            settings += 1
    return settings > 0  # no session start in view: any setting was this conversation's


class ActionSubscribe(Action):
    """"subscribe": the consent question, the renewal of a subscription, or why it cannot be
    done here."""

    def name(self) -> Text:
        return "action_subscribe"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        language = language_of(tracker)
        store = subscribers()
        if store is None:
            say(dispatcher, "utter_subscribe_unavailable", language)
        elif tracker.get_latest_input_channel() not in SUBSCRIBER_CHANNELS:
            say(dispatcher, "utter_subscribe_channel_only", language)
        else:
            months = consent_months()
            current = store.get(tracker.sender_id)
            if current is not None and store.expired(current, months):
                store.remove(tracker.sender_id)  # the consent ran out: nothing is kept
                current = None
            if current is not None and current.reachable:
                events: List[EventType] = [SlotSet("offer", None)]
                if not language_chosen_here(tracker):  # a new conversation (JOIN after a
                    # reminder): the language the person chose before, not the default
                    language = deployment().language_or_default(current.language)
                    events.append(SlotSet("language", language))
                area = (tracker.get_slot("service_place") or tracker.get_slot("area")
                        or current.area)  # coarse codes only
                store.consent(tracker.sender_id, current.channel, language, area)  # renewed
                say(dispatcher, "utter_subscribe_already", language,
                    months=months_text(language, months))
                return events
            say(dispatcher, "utter_subscribe_consent", language, per_week=per_week(),
                months=months_text(language, months))
            return [SlotSet("offer", "subscribe")]
        return [SlotSet("offer", None)]


def subscribe(dispatcher: CollectingDispatcher, tracker: Tracker) -> List[EventType]:
    """The person said yes to the consent question: the subscriber is recorded, and the
    confirmation asks the channel to attach the address."""
    language = language_of(tracker)
    store = subscribers()
    channel = tracker.get_latest_input_channel()
    if store is None or channel not in SUBSCRIBER_CHANNELS:
        say(dispatcher, "utter_subscribe_unavailable", language)
        return [SlotSet("offer", None)]
    area = tracker.get_slot("service_place") or tracker.get_slot("area")  # coarse codes only
    store.consent(tracker.sender_id, channel, language, area)
    message = catalog().render("utter_subscribe_done", language,
                               org_name=deployment().organisation_name)
    dispatcher.utter_message(text=message["text"], buttons=message.get("buttons"),
                             utter_action="utter_subscribe_done",
                             metadata={"language": language, **ATTACH})
    return [SlotSet("offer", None)]


class ActionUnsubscribe(Action):
    """"unsubscribe" (STOP): the subscriber and the address are deleted at once."""

    def name(self) -> Text:
        return "action_unsubscribe"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        store = subscribers()
        removed = store is not None and store.remove(tracker.sender_id)
        say(dispatcher, "utter_unsubscribe_done" if removed else "utter_unsubscribe_none",
            language_of(tracker))
        return [SlotSet("offer", None)]
