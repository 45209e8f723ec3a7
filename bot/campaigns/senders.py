"""One attempt at sending one campaign message: SMS through Twilio, Telegram through the Bot API.

Both senders make exactly one HTTP request per ``send`` and never sleep: retrying is the
outbox's job (``bot.campaigns.dispatch``), which keeps the attempt count and the next try in
the database, so that a retry survives a restart. Each returns an ``Outcome``:

- ``sent`` with the provider's message id;
- ``retry``: 429 (with the provider's wait: Twilio's ``Retry-After`` header, Telegram's
  ``parameters.retry_after``), 5xx, a timeout or a broken connection;
- ``gone``: the recipient cannot be reached, now or later: Twilio 21610 (the number sent
  STOP), 21211 / 21614 / 21612 / 21217 (not a valid, mobile or reachable number); Telegram
  403 (the person blocked the bot, or deleted their account) and 400 "chat not found". The
  dispatcher removes the subscriber;
- ``refused``: the provider refused this message for a reason that is not the recipient's
  (a body Twilio will not take, a region not enabled on the account, a Telegram 400 other than
  a missing chat): the message fails, the subscriber stays;
- ``fatal``: the credentials or the account are wrong (401, 403 from Twilio, 404 from the
  Bot API: a bad token): nothing else can be sent; the dispatcher stops and keeps the rest.

**Idempotency keys.** Every request carries the outbox row's key in an ``Idempotency-Key``
header. Neither Twilio's Messages API nor Telegram's Bot API honours such a header today:
they ignore it, and a request they accepted just before the dispatcher died will be accepted
again when the row is sent anew after a restart (see the README: the window is the requests in
flight plus the results not yet written). The fake providers of the tests
(``tests/utils/fake_twilio.py``, ``tests/utils/fake_telegram.py``) honour it the way an
idempotent API would (a repeat gets the first answer and delivers nothing), which is what lets
the restart test count deliveries exactly. The key is a SHA-256 of campaign and pseudonym:
it says nothing about the person.

Telegram goes through a plain aiohttp POST to ``{api_url}{token}/sendMessage`` rather than
python-telegram-bot: PTB cannot add a header to one request, and its per-call work (building
a ``Message`` object from every answer, HTTPX) is CPU the dispatcher does 100,000 times a
campaign; aiohttp with a shared connection pool is what Twilio's sender uses already.

Logs carry status and error codes only: never a number, a chat id, a text or a token (the URL
holds the token, so no URL and no exception text is logged).
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Optional, Protocol
from urllib.parse import urlencode

import aiohttp

from channels.twilio_api import TwilioConfig, json_body

logger = logging.getLogger(__name__)

# Twilio's REST error codes that mean "this number will never take a message from you".
TWILIO_GONE_CODES = frozenset({
    21211,  # invalid 'To' phone number
    21217,  # phone number does not appear to be valid
    21610,  # attempt to send to unsubscribed recipient (the number sent STOP)
    21612,  # the 'To' phone number is not currently reachable via SMS
    21614,  # 'To' number is not a valid mobile number
})
TELEGRAM_MAX_TEXT = 4096


@dataclass(frozen=True)
class Outcome:
    """What one attempt came to. ``code`` is short and safe to store and log."""

    kind: str  # sent | retry | gone | refused | fatal
    ref: Optional[str] = None  # the provider's message id
    code: Optional[str] = None  # e.g. "http_429", "twilio_21610", "timeout"
    retry_after: Optional[float] = None  # seconds the provider asked to wait


SENT, RETRY, GONE, REFUSED, FATAL = "sent", "retry", "gone", "refused", "fatal"


class Sender(Protocol):
    provider: str

    async def send(self, address: str, text: str, key: str) -> Outcome: ...

    async def close(self) -> None: ...


def _connector(limit: int) -> aiohttp.TCPConnector:
    return aiohttp.TCPConnector(limit=limit, limit_per_host=limit, ttl_dns_cache=300)


def _seconds(value) -> Optional[float]:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    return seconds if seconds >= 0 else None


class _Http:
    """One aiohttp session, made lazily in the running loop."""

    def __init__(self, timeout: float, connections: int) -> None:
        self._timeout = timeout
        self._connections = connections
        self._session: Optional[aiohttp.ClientSession] = None

    def _make(self) -> aiohttp.ClientSession:
        raise NotImplementedError

    def client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = self._make()
        return self._session

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None


class SmsSender(_Http):
    """One POST to Twilio's Messages API per message (``TwilioConfig`` from the SMS channel's
    credentials). ``channels.twilio_api.TwilioSender`` is the channel's sender, with retries
    that sleep; with ``max_attempts=1`` it would still hide ``Retry-After`` and Twilio's error
    code from the caller and cannot add a header, so this one is separate."""

    provider = "twilio"

    def __init__(self, config: TwilioConfig, connections: int = 100) -> None:
        super().__init__(config.timeout_seconds, connections)
        self.config = config
        self._url = config.messages_url
        self._from = ("MessagingServiceSid" if config.sender.startswith("MG") else "From",
                      config.sender)

    def _make(self) -> aiohttp.ClientSession:
        auth = aiohttp.BasicAuth(self.config.account_sid, self.config.auth_token).encode()
        return aiohttp.ClientSession(  # the headers made once, the form encoded here: less CPU
            headers={"Authorization": auth, "Content-Type": "application/x-www-form-urlencoded"},
            timeout=aiohttp.ClientTimeout(total=self._timeout),
            connector=_connector(self._connections))

    async def send(self, address: str, text: str, key: str) -> Outcome:
        form = urlencode({"To": address, "Body": text, self._from[0]: self._from[1]}).encode()
        try:
            async with self.client().post(self._url, data=form,
                                          headers={"Idempotency-Key": key}) as reply:
                status = reply.status
                payload = await json_body(reply)
                retry_after = _seconds(reply.headers.get("Retry-After"))
        except asyncio.TimeoutError:
            return Outcome(RETRY, code="timeout")
        except aiohttp.ClientError as exc:
            return Outcome(RETRY, code=_client_error(exc))
        if status in (200, 201):
            return Outcome(SENT, ref=str(payload.get("sid") or "")[:64])
        code = payload.get("code")
        if status == 429 or status >= 500:
            return Outcome(RETRY, code=f"http_{status}", retry_after=retry_after)
        if status in (401, 403, 404):
            return Outcome(FATAL, code=f"twilio_{code or status}")
        if isinstance(code, int) and code in TWILIO_GONE_CODES:
            return Outcome(GONE, code=f"twilio_{code}")
        return Outcome(REFUSED, code=f"twilio_{code or status}")


class TelegramSender(_Http):
    """One ``sendMessage`` to the Bot API per message, plain text, link previews off."""

    provider = "telegram"

    def __init__(self, token: str, api_url: str = "https://api.telegram.org/bot",
                 timeout: float = 10.0, connections: int = 100) -> None:
        super().__init__(timeout, connections)
        self._url = f"{api_url}{token}/sendMessage"

    @classmethod
    def from_config(cls, config, connections: int = 100) -> "TelegramSender":
        """From ``channels.telegram_api.TelegramConfig`` (the channel's credentials)."""
        from channels.telegram_api import hide_in_logs

        hide_in_logs(config.token)
        return cls(config.token, config.api_url, config.timeout_seconds, connections)

    def _make(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(headers={"Content-Type": "application/json"},
                                     timeout=aiohttp.ClientTimeout(total=self._timeout),
                                     connector=_connector(self._connections))

    async def send(self, address: str, text: str, key: str) -> Outcome:
        if len(text) > TELEGRAM_MAX_TEXT:
            return Outcome(REFUSED, code="text_too_long")
        body = json.dumps({"chat_id": address, "text": text,
                           "link_preview_options": {"is_disabled": True}}).encode()
        try:
            async with self.client().post(self._url, data=body,
                                          headers={"Idempotency-Key": key}) as reply:
                status = reply.status
                payload = await json_body(reply)
        except asyncio.TimeoutError:
            return Outcome(RETRY, code="timeout")
        except aiohttp.ClientError as exc:
            return Outcome(RETRY, code=_client_error(exc))
        if status == 200 and payload.get("ok"):
            result = payload.get("result") or {}
            return Outcome(SENT, ref=str(result.get("message_id", ""))[:64])
        error = payload.get("error_code") or status
        description = str(payload.get("description") or "").lower()
        parameters = payload.get("parameters") or {}
        if status == 429 or error == 429:
            return Outcome(RETRY, code="http_429", retry_after=_seconds(parameters.get("retry_after")))
        if status >= 500:
            return Outcome(RETRY, code=f"http_{status}")
        if status in (401, 404):
            return Outcome(FATAL, code=f"telegram_{status}")
        if status == 403:
            return Outcome(GONE, code="telegram_403")
        if status == 400 and ("chat not found" in description or "user not found" in description
                              or "peer_id_invalid" in description):
            return Outcome(GONE, code="telegram_400_chat")
        return Outcome(REFUSED, code=f"telegram_{status}")


def _client_error(exc: aiohttp.ClientError) -> str:
    """A short name of a connection problem (no URL, no message: they may hold the token)."""
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "disconnected"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return "connect"
    return "connection"
