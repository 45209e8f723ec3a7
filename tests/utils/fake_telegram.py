"""A small local stand-in for Telegram's Bot API, over real HTTP, for tests and benchmarks.

``FakeTelegram`` runs an aiohttp server on 127.0.0.1 in a thread of its own and answers
``POST /bot<token>/<method>`` for getMe, sendMessage, answerCallbackQuery, deleteMessages,
setWebhook, getWebhookInfo and deleteWebhook, with Telegram's JSON shapes (``{"ok": true, "result": ..}``
or ``{"ok": false, "error_code": .., "description": ..}``). A wrong token gets 401
"Unauthorized", an unknown method 404. ``script`` queues what the next sendMessage /
answerCallbackQuery / deleteMessages requests get instead: ``429`` (with
``parameters.retry_after`` = ``retry_after``), any 5xx status, ``403`` ("bot was blocked by the
user"), ``400`` ("chat not found"), ``(status, description)`` or ``"timeout"`` (the reply
comes after ``slow_seconds``); ``script_for[chat_id]``
does the same for the next sendMessage requests to one chat (the key is the chat id as text).
Chats in ``blocked`` get 403, chats in ``missing_chats`` 400 "chat not found".
``delay_seconds`` makes every sendMessage answer slow (the message is taken, and counted, when
the request arrives: a client killed while waiting has still sent it). Every request is
recorded, with its parameters (form or JSON; ``reply_markup`` decoded); ``keep_requests=False``
(benchmarks) keeps the counts only.

**Idempotency-Key.** Unlike the real Bot API (which ignores the header), a sendMessage carrying
an ``Idempotency-Key`` already answered with a success or a refusal gets that same answer
again and delivers nothing (``Call.replayed``; ``repeats`` counts them); 429, 5xx and timeouts
are not remembered. ``deliveries`` counts messages delivered per chat (the chat id as text).

**The chats' messages.** The fake keeps every message of each chat with its date by
``clock`` (a test moves it): those it sent (sendMessage) and the person's, made with
``incoming`` (which gives the message of an update, with an id from the same counter, from
``first_message_id`` on). ``deleteMessages`` follows the Bot API's rules (7.0; quoted in
``DELETE_RULES``): 1 to 100 ids, else 400; ids not found (or deleted already) are skipped; a
message sent 48 hours ago or more cannot be deleted: then the call gets 400 "Bad Request:
message can't be deleted" and deletes nothing (the documentation does not say whether the
others in the call are deleted; the fake takes the stricter reading). A chat in ``blocked``
gets 403. ``visible(chat)`` lists the ids still in a chat.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Optional, Union

from aiohttp import web

from tests.utils.fake_delivery import Deliveries
from tests.utils.local_server import LocalServer

SCRIPTED = {"sendMessage", "answerCallbackQuery", "deleteMessages"}
DELETE_WINDOW_SECONDS = 48 * 3600
DELETE_RULES = (  # the Bot API documentation, deleteMessage and deleteMessages
    "A message can only be deleted if it was sent less than 48 hours ago.",
    "Bots can delete outgoing messages in private chats, groups, and supergroups.",
    "Bots can delete incoming messages in private chats.",
    "Use this method to delete multiple messages simultaneously. If some of the specified "
    "messages can't be found, they are skipped.",
    "message_ids: A JSON-serialized list of 1-100 identifiers of messages to delete.",
)


@dataclass
class Call:
    method: str
    params: dict
    authorised: bool
    answered: Union[int, str]
    replayed: bool = False  # an Idempotency-Key seen before: the first answer again, nothing sent
    at: float = field(default_factory=time.monotonic)  # when it arrived


@dataclass
class FakeTelegram(LocalServer, Deliveries):
    token: str = "123456789:FAKE-token_for_tests_only"
    username: str = "helpline_test_bot"
    script: list = field(default_factory=list)  # behaviours for the next scripted requests
    retry_after: int = 1
    slow_seconds: float = 2.0
    calls: list = field(default_factory=list)
    blocked: set = field(default_factory=set)  # chat ids (text) that blocked the bot: 403
    missing_chats: set = field(default_factory=set)  # chat ids (text) not found: 400
    script_for: dict = field(default_factory=dict)  # chat id (text) -> behaviours, in order
    delay_seconds: float = 0.0  # every sendMessage answer waits this long (message taken first)
    keep_requests: bool = True  # False: count only (benchmarks); no chat is kept either
    clock: Callable[[], float] = time.time  # the messages' dates and the 48-hour rule
    first_message_id: int = 1

    name = "Telegram"

    def __post_init__(self) -> None:
        LocalServer.__init__(self)
        self._ids = itertools.count(self.first_message_id)
        self._lock = threading.Lock()
        self.webhook: dict = {}
        self.chats: dict = {}  # chat id (text) -> {message id: {"date": .., "from_bot": ..}}
        self._init_deliveries()  # per chat id (as text)

    @property
    def api_url(self) -> str:
        """The ``api_url`` for the channel's settings (PTB appends the token)."""
        return f"http://127.0.0.1:{self.port}/bot"

    def requests(self, method: Optional[str] = None) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if method is None or c.method == method]

    def sent(self) -> list[dict]:
        """The parameters of the sendMessage requests answered 200 (not repeats of a key), in
        order."""
        return [c.params for c in self.requests("sendMessage") if c.answered == 200 and not c.replayed]

    def wait_for(self, method: str, count: int = 1, seconds: float = 15.0) -> list[dict]:
        """The parameters of the first ``count`` ``method`` requests answered 200 (waits)."""
        deadline = time.monotonic() + seconds
        while True:
            done = [c.params for c in self.requests(method) if c.answered == 200]
            if len(done) >= count or time.monotonic() > deadline:
                return done
            time.sleep(0.05)

    async def arrived(self, method: str, count: int = 1, seconds: float = 15.0) -> list[dict]:
        """``wait_for`` for a test whose event loop must keep turning while it waits."""
        deadline = time.monotonic() + seconds
        while True:
            done = [c.params for c in self.requests(method) if c.answered == 200]
            if len(done) >= count or time.monotonic() > deadline:
                return done
            await asyncio.sleep(0.05)

    def incoming(self, chat_id: int, text: Optional[str] = None, **extra) -> dict:
        """A message the person sends to the bot now, as an update carries it (``text``, or
        ``extra`` fields such as ``photo``), kept in the chat."""
        with self._lock:
            message_id, date = next(self._ids), int(self.clock())
            self.chats.setdefault(str(chat_id), {})[message_id] = {"date": date, "from_bot": False}
        user = {"id": chat_id, "is_bot": False, "first_name": "Test"}
        body = {"message_id": message_id, "date": date, "from": user,
                "chat": {"id": chat_id, "type": "private", "first_name": "Test"}}
        if text is not None:
            body["text"] = text
        return body | extra

    def visible(self, chat_id) -> list[int]:
        """The ids of the messages still in the chat, oldest first."""
        with self._lock:
            return sorted(self.chats.get(str(chat_id), {}))

    def clear(self) -> None:
        with self._lock:
            self.calls.clear()
            self.script.clear()

    @staticmethod
    def _error(code: int, description: str, **parameters: int) -> web.Response:
        body: dict = {"ok": False, "error_code": code, "description": description}
        if parameters:
            body["parameters"] = parameters
        return web.json_response(body, status=code)

    async def _params(self, request: web.Request) -> dict:
        if request.content_type == "application/json":
            params = await request.json()
        else:
            params = dict(await request.post())
        for name in ("reply_markup", "message_ids"):
            if isinstance(params.get(name), str):
                try:
                    params[name] = json.loads(params[name])
                except ValueError:
                    pass  # refused by the method
        return params

    async def _method(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await self._params(request)
        authorised = request.match_info["token"] == self.token
        key = request.headers.get("Idempotency-Key") if method == "sendMessage" else None
        chat = str(params.get("chat_id", ""))
        call = Call(method, params, authorised, 0)
        with self._lock:
            self.requests_seen += 1
            answer = self._answers.get(key) if key and authorised else None
            if answer is not None:
                call.answered, call.replayed = answer[0], True
                self.repeats += 1
            behaviour = None
            if answer is None and authorised and method in SCRIPTED:
                if self.script:
                    behaviour = self.script.pop(0)
                elif method == "sendMessage" and self.script_for.get(chat):
                    behaviour = self.script_for[chat].pop(0)
                else:
                    behaviour = self._storm_behaviour()
            if self.keep_requests:
                self.calls.append(call)
        if answer is not None:  # the same key again: the first answer, nothing sent
            return web.json_response(answer[1], status=answer[0])
        if not authorised:
            call.answered = 401
            return self._error(401, "Unauthorized")
        if behaviour == "timeout":
            call.answered = "timeout"
            await asyncio.sleep(self.slow_seconds)
            return web.json_response({"ok": True, "result": True})
        if behaviour is None and method in ("sendMessage", "deleteMessages"):
            if chat in self.blocked:
                behaviour = 403
            elif chat in self.missing_chats:
                behaviour = 400
        if behaviour is not None:
            status, body = self._scripted(behaviour)
        else:
            result = self._answer(method, params)
            if result is None:
                status, body = 404, {"ok": False, "error_code": 404, "description": "Not Found"}
            elif isinstance(result, web.Response):
                status, body = result.status, json.loads(result.body)
            else:
                status, body = 200, {"ok": True, "result": result}
        call.answered = status
        if method == "sendMessage":
            self._settle(key, status, body, status in (200, 400, 403), chat, status == 200,
                         call.at)
            await self._hold()
        return web.json_response(body, status=status)

    def _scripted(self, behaviour) -> tuple[int, dict]:
        if isinstance(behaviour, tuple):
            status, description = behaviour
            return status, {"ok": False, "error_code": status, "description": description}
        if behaviour == 429:
            return 429, {"ok": False, "error_code": 429,
                         "description": f"Too Many Requests: retry after {self.retry_after}",
                         "parameters": {"retry_after": self.retry_after}}
        if behaviour == 403:
            return 403, {"ok": False, "error_code": 403,
                         "description": "Forbidden: bot was blocked by the user"}
        if behaviour == 400:
            return 400, {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"}
        return int(behaviour), {"ok": False, "error_code": int(behaviour),
                                "description": "Internal Server Error"}

    def _answer(self, method: str, params: dict):
        if method == "getMe":
            return {"id": int(self.token.split(":")[0]), "is_bot": True, "first_name": "Helpline",
                    "username": self.username, "can_join_groups": False,
                    "can_read_all_group_messages": False, "supports_inline_queries": False}
        if method == "sendMessage":
            if not params.get("chat_id") or not params.get("text"):
                return self._error(400, "Bad Request: message text is empty")
            try:
                chat = {"id": int(params["chat_id"]), "type": "private"}
            except ValueError:  # a channel's @username
                chat = {"id": -1000000000001, "type": "channel", "username": str(params["chat_id"])[1:]}
            with self._lock:
                message_id, date = next(self._ids), int(self.clock())
                if self.keep_requests:
                    self.chats.setdefault(str(params["chat_id"]), {})[message_id] = {
                        "date": date, "from_bot": True}
            return {"message_id": message_id, "date": date, "chat": chat, "text": params["text"]}
        if method == "deleteMessages":
            return self._delete(str(params.get("chat_id", "")), params.get("message_ids"))
        if method == "answerCallbackQuery":
            return True if params.get("callback_query_id") else self._error(400, "Bad Request: query id is empty")
        if method == "setWebhook":
            self.webhook = {"url": params.get("url", ""), "secret_token": params.get("secret_token"),
                            "allowed_updates": json.loads(params.get("allowed_updates") or "[]")}
            return True
        if method == "getWebhookInfo":
            info = {"url": self.webhook.get("url", ""), "has_custom_certificate": False,
                    "pending_update_count": 2 if self.webhook else 0}
            if self.webhook:
                info.update(last_error_date=1_700_000_000, last_error_message="Connection refused",
                            allowed_updates=self.webhook["allowed_updates"])
            return info
        if method == "deleteWebhook":
            self.webhook = {}
            return True
        return None

    def _delete(self, chat: str, ids) -> Union[bool, web.Response]:
        if not isinstance(ids, list) or not 1 <= len(ids) <= 100 \
                or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
            return self._error(400, "Bad Request: message_ids must be a list of 1-100 message "
                                    "identifiers")
        with self._lock:
            messages = self.chats.get(chat, {})
            found = [i for i in ids if i in messages]
            now = self.clock()
            if any(now - messages[i]["date"] >= DELETE_WINDOW_SECONDS for i in found):
                return self._error(400, "Bad Request: message can't be deleted")
            for message_id in found:
                del messages[message_id]
        return True

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/bot{token}/{method}", self._method)
