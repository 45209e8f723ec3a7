"""The Telegram channel: a Bot API webhook, answered through python-telegram-bot.

POST /webhooks/telegram/webhook receives Telegram's updates; GET /webhooks/telegram/ is a
health check. Settings (credentials.yml, ``channels.telegram.TelegramInput``): ``token`` and
``secret_token`` (both best given as ``${ENV_VAR}`` references), optional ``api_url`` and
``webhook_url`` (see ``channels.telegram_api.TelegramConfig``).

Every update must carry the header ``X-Telegram-Bot-Api-Secret-Token`` with the configured
secret (compared in constant time), else 403 and nothing is read. A body that is not an update
gets 400. Then, from private chats only (other chats are ignored):

- a text message goes to Rasa as typed (a typed digit picks the last menu's option, through
  ``channels.gateway``); an edited message counts as a new message with the edited text; a
  message that is only a stop word of ``channels/sms_keywords.yml`` (STOP, ARRET, ...) from a
  person who receives the campaigns becomes ``/unsubscribe``, as on SMS (campaign messages
  say "STOP"); from anyone else it goes to Rasa as typed (stop the questions);
- the commands ``/start``, ``/help``, ``/exit``, ``/delete``, ``/join``, ``/stop`` (also
  ``/start@botname``) become ``/greet``, ``/menu``, ``/quick_exit``, ``/forget_me``,
  ``/subscribe``, ``/unsubscribe``; any other command the menu;
- a shared location becomes the ``/inform_location`` payload of the services search (an
  edited location, i.e. a live location moving, is ignored);
- a press of an inline button (callback query) sends that button's payload, and the press is
  always answered (answerCallbackQuery) so that the client stops its spinner;
- a sticker, photo, voice note, video, document, audio, animation or contact gets no Rasa turn,
  only the channel's "I can only read text" reply in the conversation's language.

Buttons become an inline keyboard, one button per row. A button's ``callback_data`` (at most
64 bytes) is its payload when that fits, else ``#<n>:<fingerprint>``: the n-th (1-based)
option of the menu remembered in the reply route, and a short hash of that menu, so that a
press on an older keyboard whose menu is no longer remembered gets the main menu instead of
the wrong option. Texts are sent plain (no parse mode).

The webhook answers 200 as soon as the turn is done; the replies go out in a background task
per turn, in order, and one conversation's turns in the order they came (``TelegramSender``
retries 429, 5xx and timeouts; a blocked bot stops the turn's sending).

Privacy: the chat id goes only to ``Gateway.admit`` (pseudonymous conversation id, encrypted
reply route); Rasa gets no metadata (no names, no usernames); logs carry neither chat ids,
names, texts nor message ids.

Removing the chat from the phone: the reply route also keeps the ids and send times of the
chat's messages of the last 48 hours, the person's (text, command, location, media) and the
bot's (``KEPT_MESSAGES`` at most). When a quick exit or "forget me" erases the conversation
(``bot.privacy.erasure``, called by the tracker store while Rasa handles the message), the
channel's eraser, registered to run before the route is forgotten, takes those ids and
deletes them from the chat with ``deleteMessages`` (Telegram lets a bot delete both sides of
a private chat, for 48 hours), after any reply of an earlier turn still being sent and before
the turn's own reply. That reply stays: the neutral "Ok." of a quick exit (a bot chat left
empty would show the bot's description instead) or the confirmation of "forget me", which
says that older messages are the person's to delete (the ``clear_phone`` channel word). A
refused or failed deletion is logged with counts only and changes nothing else: the
conversation is erased all the same.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
import time
from dataclasses import dataclass, replace
from typing import Any, Awaitable, Callable, Dict, Optional, Sequence, Text

from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from telegram import Message, Update

from bot.campaigns.service import UNSUBSCRIBE, ends_subscription
from bot.catalog import load_catalog
from bot.deployment import cached_deployment
from bot.privacy import erasure
from bot.privacy.logs import remember_sensitive
from bot.privacy.routes import Route
from bot.services.reply import location_payload
from bot.settings import Settings
from channels.gateway import Admitted, Gateway, limit_request_size
from channels.menus import TurnCollector, payloads_of
from channels.redelivery import Redelivery, unit
from channels.rest import json_body
from channels.telegram_api import (
    DELETE_WINDOW_SECONDS, SendError, TelegramConfig, TelegramSender, deletable, fits_callback,
    keyboard,
)

logger = logging.getLogger(__name__)
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
COMMANDS = {"start": "/greet", "help": "/menu", "exit": "/quick_exit", "delete": "/forget_me",
            "join": "/subscribe", "stop": "/unsubscribe"}
UNKNOWN_COMMAND = "/menu"
MEDIA = ("sticker", "photo", "voice", "video", "video_note", "document", "audio", "animation",
         "contact", "poll", "dice", "game", "story", "paid_media")
_COMMAND = re.compile(r"/([A-Za-z0-9_]{1,64})(?:@([A-Za-z0-9_]{1,64}))?(?:\s|$)")
_INDEXED = re.compile(r"#(\d{1,3}):([0-9a-f]{8})")
STOP_WAIT_SECONDS = 10.0
KEPT_MESSAGES = 500  # message ids a route keeps (the most recent): five deleteMessages calls


class RequestError(ValueError):
    """An update the channel refuses, with a message safe to return to the caller."""


@dataclass(frozen=True)
class Incoming:
    """What an update asks for. ``kind``: text, command, location, callback, media."""

    chat_id: int
    kind: str
    text: str = ""  # what goes to the gateway (the raw callback data for a callback)
    callback_id: Optional[str] = None
    names: tuple[str, ...] = ()  # the sender's names: never logged, never given to Rasa
    typed: str = ""  # what the person wrote, for the log scrubber's memory
    message: Optional[tuple[int, int]] = None  # the person's message: (id, send time)


def command_payload(text: str) -> Optional[str]:
    """The payload of a /command (``/start``, ``/start@helpline_bot args``); None for text."""
    if not text.startswith("/"):
        return None
    match = _COMMAND.match(text)
    if not match:
        return UNKNOWN_COMMAND
    return COMMANDS.get(match.group(1).lower(), UNKNOWN_COMMAND)


def menu_fingerprint(menu: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(menu).encode("utf-8")).hexdigest()[:8]


def callback_data(button: dict, menu: Sequence[str]) -> Optional[str]:
    """A button's callback_data: its payload when it fits in 64 bytes, else its place in the
    remembered ``menu`` (``#n:fingerprint``); None when it has neither (left out)."""
    payload = button.get("payload")
    if not isinstance(payload, str) or not payload:
        return None
    if fits_callback(payload):
        return payload
    if payload in menu:
        return f"#{list(menu).index(payload) + 1}:{menu_fingerprint(menu)}"
    logger.warning("telegram channel: a button's payload is too long for Telegram and not in "
                   "the turn's menu; the button is left out")
    return None


def pressed_payload(data: str, menu: Sequence[str]) -> str:
    """The payload a pressed button stands for (see ``callback_data``); the main menu for a
    press on a keyboard whose menu is no longer remembered or for unknown data."""
    match = _INDEXED.fullmatch(data)
    if match:
        number = int(match.group(1))
        if match.group(2) == menu_fingerprint(menu) and 1 <= number <= len(menu):
            return menu[number - 1]
        return UNKNOWN_COMMAND
    return data if data.startswith("/") else UNKNOWN_COMMAND


def read_update(body: Any, bot: Any) -> Optional[Incoming]:
    """What the update asks for; None for an update the channel ignores.

    Raises:
        RequestError: the body is not a Telegram update.
    """
    if not isinstance(body, dict) or not _is_int(body.get("update_id")):
        raise RequestError("the body must be a Telegram Update: a JSON object with an integer "
                           "'update_id'")
    check_shape(body)
    try:
        update = Update.de_json(body, bot)
    except Exception:  # PTB raises KeyError, TypeError, ValueError... for malformed objects
        raise RequestError("the body could not be read as a Telegram Update") from None
    if update is None:
        raise RequestError("the body could not be read as a Telegram Update")
    if update.callback_query is not None:
        query = update.callback_query
        message = query.message
        if message is None or message.chat.type != "private":
            return Incoming(0, "ignored", callback_id=query.id)
        return Incoming(message.chat.id, "callback", str(query.data or ""), query.id,
                        _names(query.from_user))
    message = update.message or update.edited_message
    if message is None or message.chat.type != "private":
        return None
    names = _names(message.from_user)
    edited = update.message is None
    sent = (message.message_id, int(message.date.timestamp()))  # an edit keeps id and date
    if message.text:
        payload = command_payload(message.text)
        kind = "text" if payload is None else "command"
        return Incoming(message.chat.id, kind, message.text if payload is None else payload,
                        names=names, typed=message.text, message=sent)
    if message.location is not None:
        if edited:  # a live location moving: not a new message
            return None
        location = message.location
        return Incoming(message.chat.id, "location",
                        location_payload(location.latitude, location.longitude), names=names,
                        message=sent)
    if not edited and _is_media(message):
        return Incoming(message.chat.id, "media", names=names, message=sent)
    return None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any, limit: float) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and -limit <= value <= limit)


def _check_message(message: Any, where: str) -> None:
    """The fields of a Message the channel reads, as the Bot API documents their types
    (https://core.telegram.org/bots/api#message): PTB's ``de_json`` takes any JSON value
    in their place, and a ``chat`` of null or a ``text`` that is a number would fail later."""
    if not isinstance(message, dict):
        raise RequestError(f"'{where}' must be a Message object")
    chat = message.get("chat")
    if not (isinstance(chat, dict) and _is_int(chat.get("id"))
            and isinstance(chat.get("type"), str)):
        raise RequestError(f"'{where}.chat' must be a Chat with an integer 'id' and a 'type'")
    if not (_is_int(message.get("message_id")) and _is_int(message.get("date"))):
        raise RequestError(f"'{where}' needs an integer 'message_id' and 'date'")
    for key in ("text", "caption"):
        if message.get(key) is not None and not isinstance(message[key], str):
            raise RequestError(f"'{where}.{key}' must be a string")
    for key in ("from", "location"):
        if message.get(key) is not None and not isinstance(message[key], dict):
            raise RequestError(f"'{where}.{key}' must be an object")
    location = message.get("location")
    if location is not None and not (_is_number(location.get("latitude"), 90)
                                     and _is_number(location.get("longitude"), 180)):
        raise RequestError(f"'{where}.location' needs a latitude and a longitude in range")


def check_shape(body: dict) -> None:
    """Refuses (RequestError) an update whose message or callback the channel would read
    with a field of the wrong type; fields the channel does not read are left to PTB."""
    for key in ("message", "edited_message"):
        if body.get(key) is not None:
            _check_message(body[key], key)
    query = body.get("callback_query")
    if query is None:
        return
    if not isinstance(query, dict) or not isinstance(query.get("id"), str):
        raise RequestError("'callback_query' must be a CallbackQuery with a string 'id'")
    if query.get("data") is not None and not isinstance(query["data"], str):
        raise RequestError("'callback_query.data' must be a string")
    if query.get("from") is not None and not isinstance(query["from"], dict):
        raise RequestError("'callback_query.from' must be an object")
    if query.get("message") is not None:
        _check_message(query["message"], "callback_query.message")


def _names(user: Any) -> tuple[str, ...]:
    if user is None:
        return ()
    return tuple(str(v) for v in (user.first_name, user.last_name, user.username, user.id) if v)


def _is_media(message: Message) -> bool:
    return any(getattr(message, kind, None) for kind in MEDIA)


class TelegramInput(InputChannel):
    """Telegram Bot API webhook with pseudonymous conversations and inline keyboards."""

    @classmethod
    def name(cls) -> Text:
        return "telegram"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> "TelegramInput":
        config = TelegramConfig.from_credentials(credentials)
        if config.short_secret:
            logger.warning("telegram channel: 'secret_token' is short; use 32 or more random "
                           "characters")
        channel = cls(TelegramSender(config))
        channel.gateway.open()  # an unsafe or broken secrets file stops the server at start
        return channel

    def __init__(self, sender: TelegramSender, gateway: Optional[Gateway] = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.sender = sender
        self.gateway = gateway or Gateway(self.name())
        self._secret = sender.config.secret_token.encode("utf-8")
        self._tasks: set[asyncio.Task] = set()
        self._last: dict[str, asyncio.Task] = {}  # conversation id -> its latest sending task
        self._default_language: Optional[str] = None
        self._clock = clock
        # conversation id -> ids to delete from its chat, between its erasure and the deletion
        self._erasing: dict[str, list[tuple[int, int]]] = {}
        self._eraser = f"telegram chat messages ({id(self)})"
        # replies Telegram did not take wait in the route and go out when it takes them again
        self.redelivery = Redelivery(self.name(), lambda: self.gateway.routes, self._send_unit)

    # -- the webhook ------------------------------------------------------------------------

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        hook = limit_request_size(Blueprint("helpline_telegram_webhook", __name__))
        # before the reply routes are forgotten; only at the person's request, not for idleness
        erasure.register(self._eraser, self.clear_chat, on_expiry=False, first=True)

        @hook.listener("after_server_start")
        async def connect(*_: Any) -> None:
            self._keep(asyncio.ensure_future(self._check_api()))
            self.redelivery.start()

        @hook.listener("before_server_stop")
        async def close(*_: Any) -> None:
            await self.redelivery.stop()
            await self.drain(STOP_WAIT_SECONDS)
            erasure.unregister(self._eraser)
            await self.sender.close()

        @hook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @hook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            return await self.handle(request, on_new_message)

        return hook

    def secret_matches(self, given: Optional[str]) -> bool:
        return hmac.compare_digest((given or "").encode("utf-8", "replace"), self._secret)

    async def handle(self, request: Request,
                     on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> HTTPResponse:
        if not self.secret_matches(request.headers.get(SECRET_HEADER)):
            logger.warning("telegram channel: refused an update without the right secret token")
            return response.json({"error": "wrong or missing secret token"}, status=403)
        body = json_body(request)
        try:
            incoming = read_update(body, self.sender.bot)
        except RequestError as exc:
            logger.info("telegram channel: refused a request (%s)", exc)
            return response.json({"error": str(exc)}, status=400)
        except Exception as exc:  # a shape check_shape missed: refused, never a server error
            logger.warning("telegram channel: refused an update that could not be read (%s)",
                           type(exc).__name__)
            return response.json({"error": "the body could not be read as a Telegram Update"},
                                 status=400)
        if incoming is None:
            return response.json({"status": "ignored"})
        remember_sensitive(str(incoming.chat_id), incoming.typed, incoming.names)
        if incoming.callback_id is not None:
            self._keep(asyncio.ensure_future(self._answer_callback(incoming.callback_id)))
        if incoming.kind == "ignored":
            return response.json({"status": "ignored"})
        if incoming.kind == "media":
            await self._media_reply(incoming)
            return response.json({"status": "ok"})
        await self._turn(incoming, on_new_message)
        return response.json({"status": "ok"})

    async def _turn(self, incoming: Incoming,
                    on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> None:
        admitted = await self.gateway.admit(str(incoming.chat_id), incoming.text)
        if incoming.message is not None:
            await self.note_messages(admitted.conversation_id, [incoming.message])
        if admitted.limited:  # one request to slow down, then silence for the minute
            self.schedule(admitted.conversation_id, incoming.chat_id,
                          self.gateway.limited_messages(admitted))
            return
        if incoming.kind == "callback":
            admitted = replace(admitted, text=pressed_payload(incoming.text, admitted.route.menu))
        elif incoming.kind == "text" and await ends_subscription(admitted.conversation_id,
                                                                 incoming.text):
            admitted = replace(admitted, text=UNSUBSCRIBE)
        collector = TurnCollector(self.name())
        try:
            await on_new_message(UserMessage(admitted.text, collector, admitted.conversation_id,
                                             input_channel=self.name()))
        except Exception as exc:  # logged without its message, which may quote the text
            logger.error("telegram channel: the turn failed (%s) for %s", type(exc).__name__,
                         admitted.conversation_id)
        await self.gateway.remember_turn(admitted, collector.messages)
        self.schedule(admitted.conversation_id, incoming.chat_id, collector.messages)

    async def _media_reply(self, incoming: Incoming) -> None:
        """No Rasa turn; the photo (or sticker...) is kept in the route's message ids all the
        same, so that a quick exit removes it too."""
        admitted = await self.gateway.admit(str(incoming.chat_id), "")
        if incoming.message is not None:
            await self.note_messages(admitted.conversation_id, [incoming.message])
        text = self.channel_text("media_unsupported", admitted.route.language)
        answer = ([{"text": text, "buttons": []}] if not admitted.limited
                  else self.gateway.limited_messages(admitted))
        self.schedule(admitted.conversation_id, incoming.chat_id, answer)

    def default_language(self) -> str:
        if self._default_language is None:
            self._default_language = cached_deployment(
                Settings.from_env().deployment_file).default_language
        return self._default_language

    def channel_text(self, key: str, language: str) -> str:
        catalog = load_catalog()
        try:
            return catalog.channel_text(key, language or self.default_language())
        except KeyError:
            return catalog.channel_text(key, self.default_language())

    # -- sending ----------------------------------------------------------------------------

    def _keep(self, task: asyncio.Task) -> asyncio.Task:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def schedule(self, conversation_id: str, chat_id: int | str,
                 messages: Sequence[dict]) -> asyncio.Task:
        """Sends a turn's messages in a background task, after the conversation's earlier ones."""
        return self._after_earlier(conversation_id,
                                   lambda: self.deliver(chat_id, messages, conversation_id))

    def _after_earlier(self, conversation_id: str,
                       job: Callable[[], Awaitable[Any]]) -> asyncio.Task:
        """Runs ``job`` in a background task once the conversation's earlier tasks are done."""
        previous = self._last.get(conversation_id)

        async def run() -> None:
            if previous is not None and not previous.done():
                await asyncio.wait([previous])
            await job()

        task = self._keep(asyncio.ensure_future(run()))
        self._last[conversation_id] = task

        def forget(done: asyncio.Task) -> None:
            if self._last.get(conversation_id) is done:
                del self._last[conversation_id]

        task.add_done_callback(forget)
        return task

    async def deliver(self, chat_id: int | str, messages: Sequence[dict],
                      conversation_id: Optional[str] = None, original: str = "") -> bool:
        """Sends ``messages`` in order; True when Telegram took them all. Those it did not take
        (5xx, 429, no answer after the sender's retries) and the rest of the turn wait in the
        route for ``channels.redelivery``; a refusal drops the rest of the turn. The ids of
        those sent go to the conversation's route (``note_messages``). ``original``: the
        caseworker's reply they carry, if they do."""
        menu = list(payloads_of(messages))
        units = []
        for message in messages:
            text = message.get("text") or ""
            buttons = list(message.get("buttons") or [])
            if not text.strip():
                if not buttons:
                    continue
                text = "…"
            units.append(unit({"text": text, "buttons": buttons}, original if not units else "",
                              menu=menu))
        sent = await self.redelivery.deliver(conversation_id or "", chat_id, units)
        return sent == len(units)

    async def _send_unit(self, chat_id: Any, conversation_id: str, item: dict) -> None:
        message, menu = item["m"], item.get("menu") or []
        buttons = message.get("buttons") or []
        markup = keyboard(buttons, lambda b: callback_data(b, menu)) if buttons else None
        sent: list[tuple[int, int]] = []
        try:
            await self.sender.send_text(chat_id, message["text"], markup, sent)
        finally:
            if sent and conversation_id:
                await self.note_messages(conversation_id, sent)

    # -- removing the chat from the phone -----------------------------------------------------

    async def note_messages(self, conversation_id: str,
                            messages: Sequence[tuple[int, int]]) -> None:
        """Keeps ``(message id, send time)`` pairs in the conversation's route, for 48 hours;
        while the conversation is being erased, with the ids about to be deleted instead (never
        in a new route)."""
        try:
            if conversation_id in self._erasing:
                self._erasing[conversation_id].extend(messages)
                return
            route = await self.gateway.routes.get(conversation_id)
            if route is None or route.channel != self.name():
                return  # erased (or expired): nothing is kept
            since = self._clock() - DELETE_WINDOW_SECONDS
            await self.gateway.routes.put(conversation_id,
                                          route.with_messages(messages, since, KEPT_MESSAGES))
        except Exception as exc:  # a route store down must not stop the replies
            logger.error("telegram channel: keeping message ids failed (%s)", type(exc).__name__)

    async def clear_chat(self, conversation_id: str) -> None:
        """The eraser (``bot.privacy.erasure``, run before the route is forgotten): takes the
        chat's message ids from the route and deletes them from the chat in the background,
        after the replies still being sent, before the next ones."""
        route = await self.gateway.routes.get(conversation_id)
        if route is None or route.channel != self.name():
            return  # another channel's conversation, or nothing kept
        self._erasing.setdefault(conversation_id, []).extend(route.messages)
        self._after_earlier(conversation_id,
                            lambda: self._delete_noted(conversation_id, route.address))

    async def _delete_noted(self, conversation_id: str, chat_id: str) -> None:
        ids = deletable(self._erasing.pop(conversation_id, []), self._clock())
        if not ids:
            return
        try:
            removed, refused = await self.sender.delete_messages(chat_id, ids)
        except Exception as exc:  # never let a background task die silently
            logger.error("telegram channel: deleting the chat's messages failed (%s)",
                         type(exc).__name__)
            return
        logger.info("telegram channel: an erased conversation's messages were deleted from the "
                    "chat (%d in calls Telegram took, %d calls refused or failed)",
                    removed, refused)

    async def _answer_callback(self, callback_id: str) -> None:
        try:
            await self.sender.answer_callback(callback_id)
        except SendError:
            pass  # logged by the sender
        except Exception as exc:
            logger.error("telegram channel: answerCallbackQuery failed (%s)", type(exc).__name__)

    async def _check_api(self) -> None:
        try:
            me = await self.sender.call("getMe", lambda bot: bot.get_me())
            logger.info("telegram channel: connected to the Bot API as @%s", me.username)
        except SendError as exc:
            logger.error("telegram channel: the Bot API did not accept the bot at start-up (%s)", exc)

    async def drain(self, seconds: float) -> None:
        """Waits (at most ``seconds``) for the replies still being sent."""
        pending = [t for t in self._tasks if not t.done()]
        if pending:
            await asyncio.wait(pending, timeout=seconds)

    # -- pushing ----------------------------------------------------------------------------

    def get_output_channel(self) -> "TelegramOutput":
        return TelegramOutput(self)


class TelegramOutput(OutputChannel):
    """Sends bot messages to a conversation id (messages pushed without a user message, e.g.
    a caseworker's through trigger_intent with ``output_channel=latest``): the chat is the
    address of the conversation's reply route; without a route nothing can be sent."""

    def __init__(self, channel: TelegramInput) -> None:
        self.channel = channel

    @classmethod
    def name(cls) -> Text:
        return "telegram"

    async def send_response(self, recipient_id: Text, message: Dict[Text, Any]) -> None:
        route: Optional[Route] = await self.channel.gateway.reply_route(recipient_id)
        if route is None or route.channel != TelegramInput.name():
            await self.channel.gateway.undeliverable(recipient_id, message)
            return
        turn = [{"text": message.get("text") or "", "buttons": list(message.get("buttons") or []),
                 "metadata": dict(message.get("metadata") or {})}]
        await self.channel.gateway.remember_turn(Admitted(recipient_id, "", route), turn)
        await self.channel._after_earlier(
            recipient_id, lambda: self.channel.deliver(route.address, turn, recipient_id,
                                                       original=message.get("text") or ""))

    async def send_text_message(self, recipient_id: Text, text: Text, **kwargs: Any) -> None:
        await self.send_response(recipient_id, {"text": text})
