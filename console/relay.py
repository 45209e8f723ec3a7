"""How a caseworker's reply reaches the person: a ``Relay``.

The console records a reply in the case's encrypted transcript first; the default relay,
``RasaRelay``, then asks the Rasa server (``rasa run --enable-api``) to run
``action_relay_caseworker`` in the case's conversation (``POST .../execute?output_channel=
<the case's channel>``), which takes the replies waiting in the transcript and speaks them over
the channel the person came on: the text never passes through Rasa's API or tracker. The
channel is named, not ``latest``: Rasa finds "latest" in the tracker's last user message, and a
conversation whose events were deleted while its case waited for a shift has none, so Rasa
would only collect the reply into its HTTP answer (``rasa.server._get_output_channel``). When a case closes,
``closed`` runs ``action_handoff_closed`` (the assistant's goodbye, and it is back). Rasa marks ``/execute`` as deprecated; it is the one way to run an action
without an intent the NLU would have to learn. Tests use a fake that records.
"""

from __future__ import annotations

import abc
import asyncio
import urllib.parse
from typing import Optional

import aiohttp

from bot.cases.queue import CaseView

RELAY_ACTION = "action_relay_caseworker"
CLOSED_ACTION = "action_handoff_closed"


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

    async def closed(self, case: CaseView) -> None:
        """Tells the case's conversation that the caseworker closed it (default: nothing)."""

    async def close(self) -> None:
        """Releases connections (called when the console stops)."""


class RasaRelay(Relay):
    """Through the Rasa server's HTTP API (``rasa run --enable-api``)."""

    def __init__(self, rasa_url: str, token: str = "", timeout_seconds: float = 15.0) -> None:
        self.rasa_url = rasa_url.rstrip("/")
        self._token = token
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._session: Optional[aiohttp.ClientSession] = None

    def url_for(self, conversation_id: str, endpoint: str, channel: str = "latest") -> str:
        query = {"output_channel": channel}
        if self._token:
            query["token"] = self._token
        return (f"{self.rasa_url}/conversations/{urllib.parse.quote(conversation_id, safe='')}"
                f"/{endpoint}?{urllib.parse.urlencode(query)}")

    async def _post(self, case: CaseView, endpoint: str, body: dict) -> None:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        try:
            async with self._session.post(self.url_for(case.conversation_id, endpoint,
                                                       case.channel), json=body) as reply:
                if reply.status >= 300:
                    raise RelayError(f"the assistant answered HTTP {reply.status}")
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise RelayError(f"the assistant cannot be reached ({type(exc).__name__})") from None

    async def send(self, case: CaseView, text: str) -> None:
        """``text`` is already in the transcript, where the relay action reads it."""
        await self._post(case, "execute", {"name": RELAY_ACTION})

    async def closed(self, case: CaseView) -> None:
        await self._post(case, "execute", {"name": CLOSED_ACTION})

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
