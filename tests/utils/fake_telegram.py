"""A small local stand-in for Telegram's Bot API, over real HTTP, for tests.

``FakeTelegram`` runs an aiohttp server on 127.0.0.1 in a thread of its own and answers
``POST /bot<token>/<method>`` for getMe, sendMessage, answerCallbackQuery, setWebhook,
getWebhookInfo and deleteWebhook, with Telegram's JSON shapes (``{"ok": true, "result": ..}``
or ``{"ok": false, "error_code": .., "description": ..}``). A wrong token gets 401
"Unauthorized", an unknown method 404. ``script`` queues what the next sendMessage /
answerCallbackQuery requests get instead: ``429`` (with ``parameters.retry_after`` =
``retry_after``), any 5xx status, ``403`` ("bot was blocked by the user") or ``"timeout"``
(the reply comes after ``slow_seconds``). Every request is recorded, with its parameters
(form or JSON; ``reply_markup`` decoded).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Optional, Union

from aiohttp import web

from tests.utils.local_server import LocalServer

SCRIPTED = {"sendMessage", "answerCallbackQuery"}


@dataclass
class Call:
    method: str
    params: dict
    authorised: bool
    answered: Union[int, str]


@dataclass
class FakeTelegram(LocalServer):
    token: str = "123456789:FAKE-token_for_tests_only"
    username: str = "helpline_test_bot"
    script: list = field(default_factory=list)  # behaviours for the next scripted requests
    retry_after: int = 1
    slow_seconds: float = 2.0
    calls: list = field(default_factory=list)

    name = "Telegram"

    def __post_init__(self) -> None:
        LocalServer.__init__(self)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.webhook: dict = {}

    @property
    def api_url(self) -> str:
        """The ``api_url`` for the channel's settings (PTB appends the token)."""
        return f"http://127.0.0.1:{self.port}/bot"

    def requests(self, method: Optional[str] = None) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if method is None or c.method == method]

    def sent(self) -> list[dict]:
        """The parameters of the sendMessage requests answered 200, in order."""
        return [c.params for c in self.requests("sendMessage") if c.answered == 200]

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
        if isinstance(params.get("reply_markup"), str):
            params["reply_markup"] = json.loads(params["reply_markup"])
        return params

    async def _method(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await self._params(request)
        authorised = request.match_info["token"] == self.token
        call = Call(method, params, authorised, 0)
        with self._lock:
            self.calls.append(call)
            behaviour = self.script.pop(0) if authorised and method in SCRIPTED and self.script else None
        if not authorised:
            call.answered = 401
            return self._error(401, "Unauthorized")
        if behaviour == "timeout":
            call.answered = "timeout"
            await asyncio.sleep(self.slow_seconds)
            return web.json_response({"ok": True, "result": True})
        if behaviour == 429:
            call.answered = 429
            return self._error(429, f"Too Many Requests: retry after {self.retry_after}",
                               retry_after=self.retry_after)
        if behaviour == 403:
            call.answered = 403
            return self._error(403, "Forbidden: bot was blocked by the user")
        if behaviour is not None:
            call.answered = int(behaviour)
            return self._error(int(behaviour), "Internal Server Error")
        answer = self._answer(method, params)
        if answer is None:
            call.answered = 404
            return self._error(404, "Not Found")
        if isinstance(answer, web.Response):
            call.answered = answer.status
            return answer
        call.answered = 200
        return web.json_response({"ok": True, "result": answer})

    def _answer(self, method: str, params: dict):
        if method == "getMe":
            return {"id": int(self.token.split(":")[0]), "is_bot": True, "first_name": "Helpline",
                    "username": self.username, "can_join_groups": False,
                    "can_read_all_group_messages": False, "supports_inline_queries": False}
        if method == "sendMessage":
            if not params.get("chat_id") or not params.get("text"):
                return self._error(400, "Bad Request: message text is empty")
            chat_id = int(params["chat_id"])
            return {"message_id": next(self._ids), "date": int(time.time()),
                    "chat": {"id": chat_id, "type": "private"}, "text": params["text"]}
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

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/bot{token}/{method}", self._method)
