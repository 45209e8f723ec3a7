"""What every channel does with a message before Rasa sees it, and with the menu after.

A channel hands ``Gateway.admit`` the provider address (phone number, chat id, session id) and
the message; it gets back the pseudonymous conversation id that Rasa, the tracker store and
the logs use, and the text with a typed option number mapped to its button. The address goes
only into the encrypted reply-route cache, and into the log scrubber's short memory of values
never to log. After the bot answered, ``remember_turn`` keeps the buttons' payloads in the
same route, so that "2" means the second option next time, with the turn's language (for the
channel's own words) and any parts of a split answer still to send (SMS "more").

One secrets object and one route cache per process (``shared_secrets``, ``shared_routes``),
so that the tracker store's erasure reaches the same routes the channels fill.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any, Callable, Dict, Optional, Sequence, Text

from rasa.core.channels.channel import OutputChannel

from bot.campaigns.service import asks_to_attach, attach_address
from bot.cases.service import route_hold_of
from bot.catalog import load_catalog, parse_choice
from bot.deployment import cached_deployment
from bot.privacy.keys import Secrets, load_secrets
from bot.privacy.logs import install_log_scrubber, remember_sensitive
from bot.privacy.pseudonyms import pseudonym
from bot.privacy.routes import MemoryRouteCache, RedisRouteCache, Route, RouteCache
from bot.settings import Settings
from channels.limits import Limits, MemoryLimits, RedisLimits
from channels.menus import as_text_unless_payload, language_of, payloads_of, resolve_choice

logger = logging.getLogger(__name__)


# The largest request the Rasa server accepts (Sanic's REQUEST_MAX_SIZE, 100 MB by default):
# the channels' bodies are a few KB, and the proxy in front has the same limit (issue 17 §2).
MAX_REQUEST_BYTES = 64 * 1024
RATE_WINDOW_SECONDS = 60  # the per-conversation limit is HELPLINE_MESSAGES_PER_MINUTE


def limit_request_size(blueprint: Any) -> Any:
    """Makes the server that mounts ``blueprint`` refuse bodies over ``MAX_REQUEST_BYTES``
    with 413 before reading them. Sanic reads the limit when a connection opens, so a
    listener that runs before the server starts sets it for every route, Rasa's own too."""

    @blueprint.listener("before_server_start")
    async def _limit(app: Any, _loop: Any) -> None:
        app.config.REQUEST_MAX_SIZE = min(app.config.REQUEST_MAX_SIZE, MAX_REQUEST_BYTES)

    return blueprint


@lru_cache(maxsize=None)
def shared_secrets() -> Secrets:
    return load_secrets(Settings.from_env().secrets_file)


# What is answered whatever the rate: leaving fast, erasing, ending subscriptions.
ALWAYS_ANSWERED = frozenset({"quick_exit", "forget_me", "unsubscribe"})
# The words the screening's consent gives for erasing (utter_screening_about), in the safety
# form of bot.keywords: the model reads them as forget_me; the limit must let them through.
ERASE_WORDS = frozenset({"forget me", "oublie moi", "olvidame", "انسوني"})


@lru_cache(maxsize=1)
def _safety_keywords() -> dict[str, str]:
    from bot.keywords import load_keywords

    return load_keywords()


def leaves(text: str) -> bool:
    """Whether ``text`` asks to leave, erase or unsubscribe: its payload, or one of the
    safety keywords written exactly (EXIT, FORGET ME...)."""
    from bot.keywords import match_keyword, safety_form

    if text.startswith("/"):
        return text[1:].split("{", 1)[0] in ALWAYS_ANSWERED
    return (safety_form(text) in ERASE_WORDS
            or match_keyword(text, _safety_keywords(), fuzzy=False) in ALWAYS_ANSWERED)


def new_limits() -> Limits:
    """A gateway's counters: in Redis when HELPLINE_REDIS_URL is set (so that a limit holds
    across Rasa replicas), else in this process's memory (one channel's conversations)."""
    settings = Settings.from_env()
    return RedisLimits(settings.redis_url) if settings.redis_url else MemoryLimits()


@lru_cache(maxsize=None)
def shared_routes() -> RouteCache:
    """The process's reply-route cache: Redis when HELPLINE_REDIS_URL is set, else memory."""
    settings = Settings.from_env()
    idle = cached_deployment(settings.deployment_file).retention.reply_route_idle_hours * 3600
    if settings.redis_url:
        return RedisRouteCache(shared_secrets().fernet(), idle, settings.redis_url)
    return MemoryRouteCache(shared_secrets().fernet(), idle)


@dataclass(frozen=True)
class Admitted:
    """An incoming message after the gateway: safe to give to Rasa."""

    conversation_id: str
    text: str
    route: Route
    # Over the conversation's rate limit: "first" for the message that went over (it gets one
    # polite answer), "again" for the later ones of the window (silence); "" within it.
    limited: str = ""


class Gateway:
    """Pseudonymises senders, keeps their reply routes, maps typed option numbers."""

    def __init__(self, channel: str, secrets: Optional[Secrets] = None,
                 routes: Optional[RouteCache] = None, limits: Optional[Limits] = None,
                 per_minute: Optional[int] = None) -> None:
        install_log_scrubber()
        self.channel = channel
        self._secrets = secrets
        self._routes = routes
        self._limits = limits
        self._per_minute = per_minute

    @property
    def limits(self) -> Limits:
        if self._limits is None:
            self._limits = new_limits()
        return self._limits

    @property
    def per_minute(self) -> int:
        if self._per_minute is None:
            self._per_minute = Settings.from_env().messages_per_minute
        return self._per_minute

    @property
    def secrets(self) -> Secrets:
        if self._secrets is None:
            self._secrets = shared_secrets()
        return self._secrets

    @property
    def routes(self) -> RouteCache:
        if self._routes is None:
            self._routes = shared_routes()
        return self._routes

    def open(self) -> None:
        """Loads the secrets and the route cache now, so that problems show at start-up."""
        _ = self.secrets, self.routes

    def main_menu(self) -> list[str]:
        """The main menu's payloads as the person sees it: without "Talk to a person" where
        no caseworker can come (``bot.cases.availability``), so a typed number means the
        option shown with it."""
        from bot.cases.availability import person_available

        return load_catalog().main_menu_payloads(
            person_available(Settings.from_env().database_url))

    def conversation_id(self, address: str) -> str:
        return pseudonym(self.secrets.pseudonym_key, self.channel, address)

    async def admit(self, address: str, text: str, metadata: Any = None) -> Admitted:
        """Pseudonymises ``address``, refreshes its route, maps a typed option number."""
        remember_sensitive(address, text, metadata)
        conversation_id = self.conversation_id(address)
        route = await self.routes.get(conversation_id)  # reading restarts its idle time
        if route is None or route.address != address:
            route = Route(self.channel, address)
            await self.routes.put(conversation_id, route)
        main = await asyncio.to_thread(self.main_menu) if not route.menu and parse_choice(
            text) else []  # only a number typed with no menu remembered needs it
        mapped = as_text_unless_payload(resolve_choice(text, route.menu or None, main),
                                        route.menu)
        count = await self.limits.hit(f"rate:{conversation_id}", RATE_WINDOW_SECONDS)
        limited = ("" if count <= self.per_minute or leaves(mapped)
                   else "first" if count == self.per_minute + 1 else "again")
        if limited:
            logger.info("%s channel: %s is over %d messages a minute; %s", self.channel,
                        conversation_id, self.per_minute,
                        "one answer" if limited == "first" else "no answer")
        return Admitted(conversation_id, mapped, route, limited)

    def limited_messages(self, admitted: Admitted) -> list[dict]:
        """What a conversation over its rate limit gets instead of a turn: once in the
        window, in its language, a request to slow down with the emergency contacts; then
        nothing until the window passes."""
        if admitted.limited != "first":
            return []
        deployment = cached_deployment(Settings.from_env().deployment_file)
        language = deployment.language_or_default(admitted.route.language)
        text = (f"{load_catalog().channel_text('slow_down', language)} "
                f"{deployment.render_contacts(language)}")
        return [{"text": text, "buttons": [], "metadata": {"language": language}}]

    async def remember_turn(self, admitted: Admitted, messages: Sequence[dict],
                            pending: Optional[Sequence[str]] = None) -> None:
        """Keeps what the next message needs: the last buttons' payloads and the turn's
        language; unless the conversation was erased while Rasa handled the message.

        A turn in which the person subscribed to the campaigns (a message carrying
        ``bot.campaigns.service.ATTACH``) stores the address, encrypted, with the subscriber.
        A turn that queued a hand-off (a message carrying ``bot.cases.service.ROUTE_HOLD``)
        keeps the route until the case's hold ends, so that the caseworker's reply finds it.

        ``pending``: the parts of a split answer not sent yet (SMS), replacing what was
        pending. None (the other channels): messages pushed to the conversation are kept but
        for those shown at the start of this turn (``admitted.route.pending``), so a
        caseworker's reply pushed while the person's own message was being answered waits
        for the next poll instead of being lost. A route that did not change is not written.
        """
        current = await self.routes.get(admitted.conversation_id)
        if current is None:
            return  # erased (quick exit, forget me) while Rasa handled the message
        if asks_to_attach(messages):  # the person just subscribed: keep how to reach them
            await attach_address(admitted.conversation_id, current.address)
        if pending is None:
            shown = admitted.route.pending
            kept = (current.pending[len(shown):] if current.pending[:len(shown)] == shown
                    else current.pending)  # a poll took them meanwhile
        else:
            kept = tuple(pending)
        updated = replace(current, menu=tuple(payloads_of(messages)),
                          language=language_of(messages) or current.language, pending=kept)
        if updated != current:
            await self.routes.put(admitted.conversation_id, updated)
        until = route_hold_of(messages)
        if until is not None:
            await self.routes.hold(admitted.conversation_id, until)

    async def take_pending(self, admitted: Admitted) -> Optional[str]:
        """The next part of a split answer, removed from the route; None when none is left."""
        route = admitted.route
        if not route.pending:
            return None
        await self.routes.put(admitted.conversation_id, replace(route, pending=route.pending[1:]))
        return route.pending[0]

    async def reply_route(self, conversation_id: str) -> Optional[Route]:
        """Where to send a message for ``conversation_id`` (for channels that push replies)."""
        return await self.routes.get(conversation_id)

    async def undeliverable(self, conversation_id: str, message: dict) -> None:
        """A message pushed to a conversation that has no reply route (expired, erased, or
        lost with a restarted in-memory cache): nobody can receive it now. A caseworker's
        reply is marked not sent in its case, so it goes out with the answer to the person's
        next message (``bot.cases.service.requeue_reply``)."""
        from bot.cases.service import requeue_reply

        text = message.get("text") or ""
        kept = bool(text) and await requeue_reply(conversation_id, text)
        logger.info("%s channel: no reply route for a pushed message (expired, erased or lost "
                    "in a restart)%s", self.channel,
                    "; a caseworker's reply, kept for the next message" if kept else "")

    async def take_held(self, address: str) -> list[dict]:
        """For a channel whose client asks for pushed messages (web chat, REST): those held
        for ``address`` since it last asked, in order, now removed from its route."""
        conversation_id = self.conversation_id(address)
        route = await self.routes.get(conversation_id)
        if route is None or route.channel != self.channel or not route.pending:
            return []
        await self.routes.put(conversation_id, route.with_pending(()))
        return held_messages(route)


MAX_HELD = 20  # pushed messages kept for a client that has not asked for them yet


def held_messages(route: Route) -> list[dict]:
    """The pushed messages a route holds (JSON objects), oldest first."""
    return [json.loads(item) for item in route.pending]


class HeldOutput(OutputChannel):
    """Rasa's output for messages pushed to a conversation of a channel whose client asks for
    them (``execute``/``trigger_intent`` with ``output_channel=latest``: a caseworker's reply):
    each is kept, as the channel's ``render`` makes it, in the conversation's encrypted reply
    route until the client polls or sends its next message; at most ``MAX_HELD``. A client
    long gone leaves them to expire with the route."""

    def __init__(self, gateway: Gateway, render: Callable[[dict], dict]) -> None:
        self.gateway = gateway
        self.render = render

    async def send_response(self, recipient_id: Text, message: Dict[Text, Any]) -> None:
        route = await self.gateway.routes.get(recipient_id)
        if route is None or route.channel != self.gateway.channel:
            await self.gateway.undeliverable(recipient_id, message)
            return
        item = json.dumps(self.render(message), ensure_ascii=False)
        await self.gateway.routes.put(recipient_id,
                                      route.with_pending((route.pending + (item,))[-MAX_HELD:]))

    async def send_text_message(self, recipient_id: Text, text: Text, **kwargs: Any) -> None:
        await self.send_response(recipient_id, {"text": text, **kwargs})
