"""A small local stand-in for Twilio's Messages API, over real HTTP, for tests and benchmarks.

``FakeTwilio`` runs an aiohttp server on 127.0.0.1 in a thread of its own. It checks HTTP
basic auth against the account SID and token it was given (401 with Twilio's error 20003
otherwise), requires ``To``, ``Body`` and ``From`` or ``MessagingServiceSid`` (400, 21604),
refuses numbers in ``unsubscribed`` (400, 21610, as for a number that sent STOP), and
otherwise answers 201 with a message SID. ``script`` queues what the next requests get
instead: ``429`` (with ``Retry-After`` when ``retry_after`` is set), any 5xx status, or
``"timeout"`` (the reply comes after ``slow_seconds``). Every request is recorded.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import threading
from dataclasses import dataclass, field
from typing import Optional, Union

from aiohttp import web

from tests.utils.local_server import LocalServer


@dataclass
class Received:
    account: str
    form: dict
    authorised: bool
    answered: Union[int, str]


@dataclass
class FakeTwilio(LocalServer):
    account_sid: str = "AC" + "0" * 32
    auth_token: str = "fake-token-for-tests"
    unsubscribed: set = field(default_factory=set)
    script: list = field(default_factory=list)  # behaviours for the next requests, in order
    retry_after: Optional[str] = None
    slow_seconds: float = 2.0
    received: list = field(default_factory=list)

    name = "Twilio"

    def __post_init__(self) -> None:
        LocalServer.__init__(self)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def delivered(self) -> list[dict]:
        """The forms of the messages answered 201, in order."""
        with self._lock:
            return [r.form for r in self.received if r.answered == 201]

    async def _messages(self, request: web.Request) -> web.Response:
        form = dict(await request.post())
        auth = request.headers.get("Authorization", "")
        expected = "Basic " + base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        account = request.match_info["account"]
        authorised = auth == expected and account == self.account_sid
        with self._lock:
            behaviour = self.script.pop(0) if self.script else None
        record = Received(account, form, authorised, 0)
        with self._lock:
            self.received.append(record)
        if not authorised:
            record.answered = 401
            return web.json_response({"code": 20003, "message": "Authenticate", "status": 401}, status=401)
        if behaviour == "timeout":
            record.answered = "timeout"
            await asyncio.sleep(self.slow_seconds)
            return web.json_response({"sid": "late"}, status=201)
        if behaviour is not None:
            record.answered = int(behaviour)
            headers = {"Retry-After": self.retry_after} if behaviour == 429 and self.retry_after else {}
            return web.json_response({"code": 20429 if behaviour == 429 else 20500,
                                      "status": behaviour}, status=int(behaviour), headers=headers)
        if not form.get("To") or not form.get("Body") or not (form.get("From") or form.get("MessagingServiceSid")):
            record.answered = 400
            return web.json_response({"code": 21604, "status": 400}, status=400)
        if form["To"] in self.unsubscribed:
            record.answered = 400
            return web.json_response({"code": 21610, "status": 400,
                                      "message": "Attempt to send to unsubscribed recipient"}, status=400)
        record.answered = 201
        return web.json_response({"sid": f"SM{next(self._ids):032d}", "status": "queued"}, status=201)

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/2010-04-01/Accounts/{account}/Messages.json", self._messages)
