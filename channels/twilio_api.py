"""Sending SMS through Twilio's Messages API without blocking the event loop.

``TwilioSender.send(to, body)`` posts one message with aiohttp and retries what is worth
retrying: 429 (after ``Retry-After`` when Twilio gives it), 5xx, timeouts and broken
connections, with exponential backoff bounded by ``max_delay`` and at most ``max_attempts``
tries. Other 4xx answers are permanent (a number that has sent STOP: Twilio error 21610, an
invalid number: 21211, ...): they raise at once so that the caller can drop the subscriber.

Logs carry the status, Twilio's error code and the attempt number; never the number or the
text. ``api_url`` points elsewhere for tests (``tests/utils/fake_twilio.py``).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Optional

import aiohttp

logger = logging.getLogger(__name__)
TWILIO_API_URL = "https://api.twilio.com"


class SendError(Exception):
    """A message Twilio did not take. ``permanent``: trying again will not help."""

    def __init__(self, message: str, permanent: bool, status: Optional[int] = None,
                 code: Optional[int] = None, attempts: int = 1) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.status = status
        self.code = code
        self.attempts = attempts


@dataclass(frozen=True)
class TwilioConfig:
    """Where and as whom to send. ``sender`` is a phone number or a Messaging Service SID."""

    account_sid: str
    auth_token: str = field(repr=False)
    sender: str
    api_url: str = TWILIO_API_URL
    timeout_seconds: float = 10.0

    def __post_init__(self) -> None:
        problems = []
        if not self.account_sid.startswith("AC"):
            problems.append("the account SID must start with AC")
        if not self.auth_token:
            problems.append("the auth token is empty")
        if not (self.sender.startswith("+") or self.sender.startswith("MG")):
            problems.append("the sender must be a +number or a Messaging Service SID (MG...)")
        if not self.api_url.startswith(("https://", "http://127.0.0.1", "http://localhost")):
            problems.append("the API URL must be https (http only for a local test server)")
        if problems:
            raise ValueError("Twilio settings: " + "; ".join(problems))

    @property
    def messages_url(self) -> str:
        return f"{self.api_url.rstrip('/')}/2010-04-01/Accounts/{self.account_sid}/Messages.json"


@dataclass(frozen=True)
class Sent:
    sid: str
    attempts: int


class TwilioSender:
    """Posts messages to Twilio with bounded retries; one aiohttp session per sender."""

    def __init__(self, config: TwilioConfig, max_attempts: int = 4, base_delay: float = 0.5,
                 max_delay: float = 8.0,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.config = config
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._sleep = sleep
        self._session: Optional[aiohttp.ClientSession] = None

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    def _client(self) -> aiohttp.ClientSession:
        stale = self._session is not None and getattr(self._session, "_loop", None) is not \
            asyncio.get_running_loop()  # a session belongs to the loop that made it
        if self._session is None or self._session.closed or stale:
            self._session = aiohttp.ClientSession(
                auth=aiohttp.BasicAuth(self.config.account_sid, self.config.auth_token),
                timeout=aiohttp.ClientTimeout(total=self.config.timeout_seconds),
            )
        return self._session

    def _delay(self, attempt: int, retry_after: Optional[str]) -> float:
        try:
            wanted = float(retry_after) if retry_after else None
        except ValueError:
            wanted = None
        if wanted is None or wanted < 0:
            wanted = self.base_delay * 2 ** (attempt - 1)
        return min(wanted, self.max_delay)

    async def send(self, to: str, body: str) -> Sent:
        """Sends ``body`` to ``to``; returns Twilio's message SID.

        Raises:
            SendError: permanent for a refusal, else after the last attempt failed.
        """
        form = {"To": to, "Body": body}
        form["MessagingServiceSid" if self.config.sender.startswith("MG") else "From"] = self.config.sender
        last = "no attempt made"
        for attempt in range(1, self.max_attempts + 1):
            retry_after = None
            try:
                async with self._client().post(self.config.messages_url, data=form) as reply:
                    payload = await json_body(reply)
                    if reply.status in (200, 201):
                        return Sent(str(payload.get("sid", "")), attempt)
                    code = payload.get("code")
                    if reply.status == 429 or reply.status >= 500:
                        retry_after = reply.headers.get("Retry-After")
                        last = f"HTTP {reply.status}"
                    else:
                        logger.warning("twilio: message refused (HTTP %s, error %s)", reply.status, code)
                        raise SendError(f"Twilio refused the message (HTTP {reply.status}, error {code})",
                                        permanent=True, status=reply.status, code=code, attempts=attempt)
            except (asyncio.TimeoutError, aiohttp.ClientError) as exc:
                last = type(exc).__name__
            logger.info("twilio: attempt %d of %d failed (%s)", attempt, self.max_attempts, last)
            if attempt < self.max_attempts:
                await self._sleep(self._delay(attempt, retry_after))
        raise SendError(f"Twilio did not take the message after {self.max_attempts} attempts ({last})",
                        permanent=False, attempts=self.max_attempts)


async def json_body(reply: aiohttp.ClientResponse) -> dict:
    """A provider's JSON answer as a dict; {} for anything else (an HTML error page)."""
    try:
        data = await reply.json(content_type=None)
    except (ValueError, aiohttp.ContentTypeError):
        return {}
    return data if isinstance(data, dict) else {}
