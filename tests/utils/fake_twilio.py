"""A small local stand-in for Twilio's Messages API, over real HTTP, for tests and benchmarks.

``FakeTwilio`` runs an aiohttp server on 127.0.0.1 in a thread of its own. It checks HTTP
basic auth against the account SID and token it was given (401 with Twilio's error 20003
otherwise), requires ``To``, ``Body`` and ``From`` or ``MessagingServiceSid`` (400, 21604),
refuses numbers in ``unsubscribed`` (400, 21610, as for a number that sent STOP) and in
``invalid`` (400, 21211), and otherwise answers 201 with a message SID. ``script`` queues what
the next requests get instead: ``429`` (with ``Retry-After`` when ``retry_after`` is set), any
5xx status, ``"timeout"`` (the reply comes after ``slow_seconds``), or 400 / ``"invalid"``
(a refusal: 21610 / 21211); ``script_for[number]`` does the same for the next requests to one
number. ``delay_seconds`` makes every answer slow (the message is taken, and counted, when the
request arrives: a client killed while waiting has still sent it).

**Idempotency-Key.** Unlike the real Twilio (which ignores the header), a request carrying an
``Idempotency-Key`` already answered with a success or a refusal gets that same answer again
and delivers nothing (``Received.replayed``; ``repeats`` counts them); 429, 5xx and timeouts
are not remembered, so a retry with the key is processed anew. ``deliveries`` counts messages
delivered per number. Every request is recorded in ``received`` (``keep_requests=False``, for
benchmarks, keeps the counts only).
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import threading
import time
from dataclasses import dataclass, field
from typing import Optional, Union

from aiohttp import web

from tests.utils.fake_delivery import Deliveries
from tests.utils.local_server import LocalServer


@dataclass
class Received:
    account: str
    form: dict
    authorised: bool
    answered: Union[int, str]
    replayed: bool = False  # an Idempotency-Key seen before: the first answer again, nothing sent
    at: float = field(default_factory=time.monotonic)  # when it arrived


@dataclass
class FakeTwilio(LocalServer, Deliveries):
    account_sid: str = "AC" + "0" * 32
    auth_token: str = "fake-token-for-tests"
    unsubscribed: set = field(default_factory=set)
    script: list = field(default_factory=list)  # behaviours for the next requests, in order
    retry_after: Optional[str] = None
    slow_seconds: float = 2.0
    received: list = field(default_factory=list)
    invalid: set = field(default_factory=set)  # numbers refused as invalid (21211)
    script_for: dict = field(default_factory=dict)  # number -> behaviours for its next requests
    delay_seconds: float = 0.0  # every answer waits this long (after the message was taken)
    keep_requests: bool = True  # False: count only (benchmarks)

    name = "Twilio"

    def __post_init__(self) -> None:
        LocalServer.__init__(self)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._init_deliveries()  # per number

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def delivered(self) -> list[dict]:
        """The forms of the messages answered 201 (not repeats of a key), in order."""
        with self._lock:
            return [r.form for r in self.received if r.answered == 201 and not r.replayed]

    async def _messages(self, request: web.Request) -> web.Response:
        form = dict(await request.post())
        auth = request.headers.get("Authorization", "")
        expected = "Basic " + base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        account = request.match_info["account"]
        authorised = auth == expected and account == self.account_sid
        key = request.headers.get("Idempotency-Key")
        to = form.get("To", "")
        with self._lock:
            self.requests_seen += 1
            behaviour = self.script.pop(0) if self.script else None
            mine = self.script_for.get(to)
            if behaviour is None and authorised and mine:
                behaviour = mine.pop(0)
            if behaviour is None and authorised:
                behaviour = self._storm_behaviour()
            answer = self._answers.get(key) if key and authorised else None
        record = Received(account, form, authorised, 0)
        if answer is not None:  # the same key again: the first answer, nothing sent
            record.answered, record.replayed = answer[0], True
            with self._lock:
                self.repeats += 1
                if self.keep_requests:
                    self.received.append(record)
            return web.json_response(answer[1], status=answer[0])
        with self._lock:
            if self.keep_requests:
                self.received.append(record)
        if not authorised:
            record.answered = 401
            return web.json_response({"code": 20003, "message": "Authenticate", "status": 401}, status=401)
        if behaviour == "timeout":
            record.answered = "timeout"
            await asyncio.sleep(self.slow_seconds)
            return web.json_response({"sid": "late"}, status=201)
        status, body, headers = self._answer(form, behaviour)
        record.answered = status
        self._settle(key, status, body, status < 300 or status == 400, to, status == 201,
                     record.at)
        await self._hold()
        return web.json_response(body, status=status, headers=headers)

    def _answer(self, form: dict, behaviour) -> tuple[int, dict, dict]:
        if behaviour in (400, "unsubscribed"):
            return 400, {"code": 21610, "status": 400,
                         "message": "Attempt to send to unsubscribed recipient"}, {}
        if behaviour == "invalid":
            return 400, {"code": 21211, "status": 400, "message": "Invalid 'To' Phone Number"}, {}
        if behaviour is not None:
            headers = {"Retry-After": self.retry_after} if behaviour == 429 and self.retry_after else {}
            return int(behaviour), {"code": 20429 if behaviour == 429 else 20500,
                                    "status": behaviour}, headers
        if not form.get("To") or not form.get("Body") or not (form.get("From") or form.get("MessagingServiceSid")):
            return 400, {"code": 21604, "status": 400}, {}
        if form["To"] in self.unsubscribed:
            return 400, {"code": 21610, "status": 400,
                         "message": "Attempt to send to unsubscribed recipient"}, {}
        if form["To"] in self.invalid:
            return 400, {"code": 21211, "status": 400, "message": "Invalid 'To' Phone Number"}, {}
        return 201, {"sid": f"SM{next(self._ids):032d}", "status": "queued"}, {}

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/2010-04-01/Accounts/{account}/Messages.json", self._messages)
