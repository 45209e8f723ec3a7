"""How a caseworker's reply reaches the person: a ``Relay``.

The default, ``RasaRelay``, asks the Rasa server to run the ``caseworker_message`` intent in
the case's conversation (``POST /conversations/{id}/trigger_intent?output_channel=latest``,
the text as the ``caseworker_text`` entity). The dialogue's action speaks it over the channel
the person came on, so the conversation's state stays in Rasa. Tests use a fake that records.
"""

from __future__ import annotations

import abc
import asyncio
import urllib.parse
from typing import Optional

import aiohttp

from bot.cases.queue import CaseView

INTENT = "caseworker_message"
ENTITY = "caseworker_text"


class RelayError(RuntimeError):
    """The reply could not be handed over; the message says why (never the text)."""


class Relay(abc.ABC):
    """Hands a caseworker's reply to the person's conversation."""

    @abc.abstractmethod
    async def send(self, case: CaseView, text: str) -> None:
        """Delivers ``text`` to the case's conversation.

        Raises:
            RelayError: it could not be delivered.
        """

    async def close(self) -> None:
        """Releases connections (called when the console stops)."""


class RasaRelay(Relay):
    """Through the Rasa server's HTTP API (``rasa run --enable-api``)."""

    def __init__(self, rasa_url: str, token: str = "", timeout_seconds: float = 15.0) -> None:
        self.rasa_url = rasa_url.rstrip("/")
        self._token = token
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._session: Optional[aiohttp.ClientSession] = None

    def url_for(self, conversation_id: str) -> str:
        query = {"output_channel": "latest"}
        if self._token:
            query["token"] = self._token
        return (f"{self.rasa_url}/conversations/{urllib.parse.quote(conversation_id, safe='')}"
                f"/trigger_intent?{urllib.parse.urlencode(query)}")

    async def send(self, case: CaseView, text: str) -> None:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        body = {"name": INTENT, "entities": {ENTITY: text}}
        try:
            async with self._session.post(self.url_for(case.conversation_id), json=body) as reply:
                if reply.status >= 300:
                    raise RelayError(f"the assistant answered HTTP {reply.status}")
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise RelayError(f"the assistant cannot be reached ({type(exc).__name__})") from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
