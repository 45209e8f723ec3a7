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

from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any, Optional, Sequence

from bot.catalog import load_catalog
from bot.deployment import cached_deployment
from bot.privacy.keys import Secrets, load_secrets
from bot.privacy.logs import install_log_scrubber, remember_sensitive
from bot.privacy.pseudonyms import pseudonym
from bot.privacy.routes import MemoryRouteCache, RedisRouteCache, Route, RouteCache
from bot.settings import Settings
from channels.menus import language_of, payloads_of, resolve_choice


@lru_cache(maxsize=None)
def shared_secrets() -> Secrets:
    return load_secrets(Settings.from_env().secrets_file)


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


class Gateway:
    """Pseudonymises senders, keeps their reply routes, maps typed option numbers."""

    def __init__(self, channel: str, secrets: Optional[Secrets] = None,
                 routes: Optional[RouteCache] = None) -> None:
        install_log_scrubber()
        self.channel = channel
        self._secrets = secrets
        self._routes = routes
        self._main_menu: Optional[list[str]] = None

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
        if self._main_menu is None:
            self._main_menu = load_catalog().main_menu_payloads()
        return self._main_menu

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
        mapped = resolve_choice(text, route.menu or None, self.main_menu())
        return Admitted(conversation_id, mapped, route)

    async def remember_turn(self, admitted: Admitted, messages: Sequence[dict],
                            pending: Sequence[str] = ()) -> None:
        """Keeps what the next message needs: the last buttons' payloads, the turn's language
        and the parts of a split answer not sent yet; unless the conversation was erased.

        A route that did not change is not written again (one encryption less per turn).
        """
        route = admitted.route
        language = language_of(messages) or route.language
        updated = replace(route, menu=tuple(payloads_of(messages)), language=language,
                          pending=tuple(pending))
        if updated == route:
            return
        if await self.routes.get(admitted.conversation_id) is None:
            return  # erased (quick exit, forget me) while Rasa handled the message
        await self.routes.put(admitted.conversation_id, updated)

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
