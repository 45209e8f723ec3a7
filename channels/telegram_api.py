"""Calling Telegram's Bot API through python-telegram-bot without blocking the event loop.

``TelegramConfig`` holds the channel's settings from credentials.yml (``token``,
``secret_token``, ``api_url``, ``webhook_url``) and checks them, naming the key at fault and
never showing the token or the secret. ``TelegramSender`` owns one ``telegram.Bot`` (PTB's
HTTPX request with bounded timeouts), initialised once, lazily, on the first call; every call
goes through ``call``, which retries what is worth retrying: 429 (``RetryAfter``: waits the
time Telegram asks for, at most ``max_retry_after``), 5xx, timeouts and broken connections
(``NetworkError``, ``TimedOut``) with exponential backoff bounded by ``max_delay``, at most
``max_attempts`` tries. A bot blocked by the person (``Forbidden``), a refused request
(``BadRequest``) and a refused token are permanent: they raise at once.

``delete_messages`` removes messages from a chat with ``deleteMessages`` (Bot API 7.0), at
most ``MAX_DELETE_IDS`` ids a call, and only those ``deletable`` now: Telegram deletes a
message only if it was sent less than 48 hours ago (``DELETE_WINDOW_SECONDS``; ids within
``DELETE_MARGIN_SECONDS`` of that limit are not sent, so that a clock a little ahead of ours
cannot make Telegram refuse a whole call). A refused call does not stop the next one.

Logs carry the method, the error's type and the attempt number; never the chat id, the text
or the token (httpx's request log lines, which quote the URL and so the token, are turned
down to warnings, PTB's debug lines, which quote chat ids and texts, are not written, and
``hide_in_logs`` removes the token from any log line that has it).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
import threading
import warnings
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Mapping, Optional, Sequence, TypeVar

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, LinkPreviewOptions
from telegram.error import (
    BadRequest, ChatMigrated, Conflict, Forbidden, InvalidToken, NetworkError, RetryAfter,
    TelegramError, TimedOut,
)
from telegram.request import HTTPXRequest
from telegram.warnings import PTBDeprecationWarning

logger = logging.getLogger(__name__)
TELEGRAM_API_URL = "https://api.telegram.org/bot"
ALLOWED_UPDATES = ("message", "edited_message", "callback_query")
MAX_TEXT_CHARS = 4096  # Telegram's limit for one message
MAX_CALLBACK_BYTES = 64  # Telegram's limit for a button's callback_data
TOKEN_SHAPE = re.compile(r"\d{1,20}:[A-Za-z0-9_-]{10,100}")
SECRET_SHAPE = re.compile(r"[A-Za-z0-9_-]{1,256}")
SHORT_SECRET_CHARS = 16
# deleteMessage: "A message can only be deleted if it was sent less than 48 hours ago";
# deleteMessages: "A JSON-serialized list of 1-100 identifiers of messages to delete"
DELETE_WINDOW_SECONDS = 48 * 3600
DELETE_MARGIN_SECONDS = 300
MAX_DELETE_IDS = 100
T = TypeVar("T")
NO_PREVIEW = LinkPreviewOptions(is_disabled=True)
# RetryAfter warns at every 429 that retry_after will become a timedelta (_seconds takes both)
warnings.filterwarnings("ignore", message=r".*`retry_after` will be of type", category=PTBDeprecationWarning)


class TelegramSettingsError(ValueError):
    """The telegram section of the credentials file cannot be used (names the key)."""


class SendError(Exception):
    """A call Telegram did not take. ``permanent``: trying again will not help."""

    def __init__(self, message: str, permanent: bool, attempts: int = 1, reason: str = "") -> None:
        super().__init__(message)
        self.permanent = permanent
        self.attempts = attempts
        self.reason = reason  # the PTB error's type name


@dataclass(frozen=True)
class TelegramConfig:
    """The channel's settings. The token and the secret never show in a repr."""

    token: str = field(repr=False)
    secret_token: str = field(repr=False)
    api_url: str = TELEGRAM_API_URL
    webhook_url: Optional[str] = None
    timeout_seconds: float = 10.0

    def __post_init__(self) -> None:
        problems = []
        if not isinstance(self.token, str) or not TOKEN_SHAPE.fullmatch(self.token):
            problems.append("'token' must be the bot token BotFather gave (digits, a colon, "
                            "then letters, digits, - or _)")
        if not isinstance(self.secret_token, str) or not SECRET_SHAPE.fullmatch(self.secret_token):
            problems.append("'secret_token' must be 1 to 256 characters of A-Z, a-z, 0-9, _ and -")
        if not isinstance(self.api_url, str) or not self.api_url.startswith(
                ("https://", "http://127.0.0.1", "http://localhost")):
            problems.append("'api_url' must be https (http only for a local test server)")
        if self.webhook_url is not None and (
                not isinstance(self.webhook_url, str) or not self.webhook_url.startswith("https://")):
            problems.append("'webhook_url' must be an https:// URL (Telegram only calls https)")
        if not self.timeout_seconds or self.timeout_seconds <= 0:
            problems.append("the timeout must be positive")
        if problems:
            raise TelegramSettingsError("Telegram channel settings: " + "; ".join(problems))

    @classmethod
    def from_credentials(cls, credentials: Optional[Mapping[str, Any]]) -> "TelegramConfig":
        """From the channel's section of credentials.yml (values already ${ENV}-expanded)."""
        if not isinstance(credentials, Mapping):
            raise TelegramSettingsError(
                "Telegram channel settings: the credentials file has no settings for "
                "channels.telegram.TelegramInput (it needs 'token' and 'secret_token')")
        unknown = sorted(set(credentials) - {"token", "secret_token", "api_url", "webhook_url"})
        if unknown:
            raise TelegramSettingsError(
                f"Telegram channel settings: unknown key(s) {', '.join(map(repr, unknown))} "
                f"(known: token, secret_token, api_url, webhook_url)")
        for key in ("token", "secret_token"):
            if credentials.get(key) in (None, ""):
                raise TelegramSettingsError(f"Telegram channel settings: '{key}' is missing or empty")
        token, secret = credentials["token"], credentials["secret_token"]
        return cls(str(token), str(secret), str(credentials.get("api_url") or TELEGRAM_API_URL),
                   credentials.get("webhook_url") or None)

    @property
    def short_secret(self) -> bool:
        return len(self.secret_token) < SHORT_SECRET_CHARS


# -- keeping the token out of the logs ------------------------------------------------------

_hidden: set[str] = set()
_hide_lock = threading.Lock()
_factory_installed = False


def hide_in_logs(secret: str) -> None:
    """Replaces ``secret`` with ``<hidden>`` in every log record from now on (idempotent).

    PTB's debug lines and httpx's request lines quote the API URL, which holds the token.
    """
    global _factory_installed
    with _hide_lock:
        _hidden.add(secret)
        if _factory_installed:
            return
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            try:
                message = record.getMessage()
            except Exception:
                return record
            if record.exc_info:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
                record.exc_info = None
            for value in tuple(_hidden):
                if value in message:
                    message = message.replace(value, "<hidden>")
                if record.exc_text and value in record.exc_text:
                    record.exc_text = record.exc_text.replace(value, "<hidden>")
            record.msg, record.args = message, None
            return record

        logging.setLogRecordFactory(factory)
        _factory_installed = True
    quiet_library_logs()


def quiet_library_logs() -> None:
    """httpx logs every request's URL (with the token) at INFO, PTB every call's parameters
    (chat ids, texts) at DEBUG: those loggers stay at WARNING and INFO whatever the log level."""
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("telegram").setLevel(logging.INFO)


# -- buttons --------------------------------------------------------------------------------

def fits_callback(payload: str) -> bool:
    return len(payload.encode("utf-8")) <= MAX_CALLBACK_BYTES and not payload.startswith("#")


def keyboard(buttons: list[dict], callback_data: Callable[[dict], Optional[str]]
             ) -> Optional[InlineKeyboardMarkup]:
    """One inline button per row; a button whose ``callback_data`` is None is left out."""
    rows = []
    for button in buttons:
        data = callback_data(button)
        if data is not None:
            rows.append([InlineKeyboardButton(str(button.get("title") or data)[:64], callback_data=data)])
    return InlineKeyboardMarkup(rows) if rows else None


def split_text(text: str, limit: int = MAX_TEXT_CHARS) -> list[str]:
    """``text`` in parts of at most ``limit`` characters, cut at a line break or space when
    there is one in the second half of the part."""
    parts = []
    while len(text) > limit:
        cut = max(text.rfind("\n", 0, limit), text.rfind(" ", 0, limit))
        if cut < limit // 2:
            cut = limit
        parts.append(text[:cut].rstrip())
        text = text[cut:].lstrip()
    if text:
        parts.append(text)
    return parts


def deletable(messages: Sequence[tuple[int, int]], now: float) -> list[int]:
    """The ids, in order, of ``(message id, send time)`` pairs Telegram still lets a bot
    delete at ``now`` (sent less than 48 hours ago, with ``DELETE_MARGIN_SECONDS`` to spare)."""
    since = now - DELETE_WINDOW_SECONDS + DELETE_MARGIN_SECONDS
    return [message_id for message_id, sent in messages if sent >= since]


def batches(ids: Sequence[int], size: int = MAX_DELETE_IDS) -> list[list[int]]:
    """``ids`` in consecutive lists of at most ``size``."""
    return [list(ids[start:start + size]) for start in range(0, len(ids), size)]


# -- sending --------------------------------------------------------------------------------

class TelegramSender:
    """Calls the Bot API with bounded retries; one ``telegram.Bot`` per sender."""

    def __init__(self, config: TelegramConfig, max_attempts: int = 4, base_delay: float = 0.5,
                 max_delay: float = 8.0, max_retry_after: float = 30.0,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        hide_in_logs(config.token)
        self.config = config
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.max_retry_after = max_retry_after
        self._sleep = sleep
        self._bot: Optional[Bot] = None
        self._ready = False
        self._lock: Optional[asyncio.Lock] = None

    @property
    def bot(self) -> Bot:
        """The PTB bot (created without any I/O; its HTTP client opens on first use)."""
        if self._bot is None:
            timeout = self.config.timeout_seconds

            def request() -> HTTPXRequest:
                return HTTPXRequest(connection_pool_size=16, connect_timeout=timeout,
                                    read_timeout=timeout, write_timeout=timeout, pool_timeout=timeout)

            self._bot = Bot(self.config.token, base_url=self.config.api_url, request=request(),
                            get_updates_request=request())
        return self._bot

    async def _ensure_ready(self) -> Bot:
        """Initialises the bot once (getMe: checks the token, learns the bot's username)."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if not self._ready:
                await self.bot.initialize()
                self._ready = True
        return self.bot

    @property
    def username(self) -> Optional[str]:
        return self.bot.username if self._ready else None

    async def close(self) -> None:
        if self._bot is not None:
            try:
                await self._bot.shutdown()
            except TelegramError:
                pass
        self._bot, self._ready = None, False

    def _delay(self, attempt: int, retry_after: Optional[float]) -> float:
        if retry_after is not None and retry_after >= 0:
            return min(retry_after, self.max_retry_after)
        return min(self.base_delay * 2 ** (attempt - 1), self.max_delay)

    async def call(self, method: str, make: Callable[[Bot], Awaitable[T]]) -> T:
        """Runs ``make(bot)`` (one Bot API call named ``method`` for the logs) with retries.

        Raises:
            SendError: permanent for a refusal, else after the last attempt failed.
        """
        last = "no attempt made"
        for attempt in range(1, self.max_attempts + 1):
            retry_after: Optional[float] = None
            try:
                bot = await self._ensure_ready()
                return await make(bot)
            except RetryAfter as exc:
                retry_after = _seconds(exc)
                last = f"RetryAfter {retry_after:g} s"
            except Forbidden:
                logger.warning("telegram: %s refused: the bot was blocked or removed by the person "
                               "(not retried)", method)
                raise SendError(f"Telegram refused {method}: the bot is blocked (Forbidden)",
                                permanent=True, attempts=attempt, reason="Forbidden") from None
            except (BadRequest, InvalidToken, ChatMigrated, Conflict) as exc:
                # their messages may quote the token (InvalidToken) or a chat id: type only
                logger.warning("telegram: %s refused (%s, not retried)", method, type(exc).__name__)
                raise SendError(f"Telegram refused {method} ({type(exc).__name__})",
                                permanent=True, attempts=attempt, reason=type(exc).__name__) from None
            except (TimedOut, NetworkError) as exc:  # 5xx answers are NetworkError too
                last = type(exc).__name__
            logger.info("telegram: %s attempt %d of %d failed (%s)", method, attempt,
                        self.max_attempts, last)
            if attempt < self.max_attempts:
                await self._sleep(self._delay(attempt, retry_after))
        raise SendError(f"Telegram did not take {method} after {self.max_attempts} attempts ({last})",
                        permanent=False, attempts=self.max_attempts, reason=last.split()[0])

    async def send_text(self, chat_id: int | str, text: str,
                        markup: Optional[InlineKeyboardMarkup] = None,
                        sent: Optional[list[tuple[int, int]]] = None) -> None:
        """Sends ``text`` (plain, split at Telegram's limit; the buttons go on the last part).

        ``sent``: gets ``(message id, send time)`` of each part Telegram took, also when a
        later part fails.
        """
        parts = split_text(text) or [""]
        for number, part in enumerate(parts, start=1):
            buttons = markup if number == len(parts) else None
            message = await self.call(
                "sendMessage", lambda bot, part=part, buttons=buttons: bot.send_message(
                    chat_id, part, reply_markup=buttons, link_preview_options=NO_PREVIEW))
            if sent is not None:
                sent.append((message.message_id, int(message.date.timestamp())))

    async def delete_messages(self, chat_id: int | str, ids: Sequence[int]) -> tuple[int, int]:
        """Deletes the messages ``ids`` from the chat, ``MAX_DELETE_IDS`` a call (ids Telegram
        cannot find are skipped by Telegram itself); returns how many ids were in calls Telegram
        took and how many calls it refused or did not answer (logged by ``call``, without ids)."""
        removed = refused = 0
        for batch in batches(ids):
            try:
                await self.call("deleteMessages",
                                lambda bot, batch=batch: bot.delete_messages(chat_id, batch))
            except SendError:
                refused += 1
            else:
                removed += len(batch)
        return removed, refused

    async def answer_callback(self, callback_query_id: str) -> None:
        await self.call("answerCallbackQuery",
                        lambda bot: bot.answer_callback_query(callback_query_id))


def _seconds(exc: RetryAfter) -> float:
    value = exc.retry_after  # an int in PTB 22 (a timedelta with PTB_TIMEDELTA=1 and later)
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    return float(value)
