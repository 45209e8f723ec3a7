"""What the dialogue and the channels need from the campaigns, once per process."""

from __future__ import annotations

from typing import Optional

from bot.campaigns.subscribers import Subscribers
from bot.cases.service import store_for
from bot.settings import Settings

# A bot message carrying this in its metadata asks the channel to attach the conversation's
# address to the subscriber who just consented (the action server never sees addresses).
ATTACH = {"subscription": "attach"}
UNSUBSCRIBE = "/unsubscribe"


def subscribers_for(url: str, settings: Optional[Settings] = None) -> Optional[Subscribers]:
    """The subscribers on ``url`` with the deployment's route key, or None when the database
    is not migrated (subscriptions are then reported unavailable)."""
    return store_for(Subscribers, url, settings)


def asks_to_attach(messages) -> bool:
    """Whether one of a turn's bot messages carries ``ATTACH``."""
    return any((m.get("metadata") or {}).get("subscription") == ATTACH["subscription"]
               for m in messages)


async def attach_address(conversation_id: str, address: str) -> bool:
    """For a channel in the Rasa server: stores the encrypted address of the subscriber who
    consented in this turn. False where there is none (or no campaigns tables)."""
    import asyncio

    subscribers = await asyncio.to_thread(subscribers_for, Settings.from_env().database_url)
    if subscribers is None:
        return False
    return await asyncio.to_thread(subscribers.attach, conversation_id, address)


async def ends_subscription(conversation_id: str, text: str) -> bool:
    """For a channel where a typed word is not an opt-out of the provider (Telegram): whether
    ``text`` is only a stop word (``channels/sms_keywords.yml``) and the conversation receives
    the campaigns. Anyone else saying "stop" means the questions (the NLU's ``stop``)."""
    import asyncio

    from channels.sms_keywords import load_keywords

    if load_keywords().payload(text) != UNSUBSCRIBE:
        return False
    subscribers = await asyncio.to_thread(subscribers_for, Settings.from_env().database_url)
    if subscribers is None:
        return False
    return await asyncio.to_thread(subscribers.get, conversation_id) is not None
