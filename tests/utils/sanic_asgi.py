"""Calling a Sanic app in-process over ASGI with httpx, for channel tests in the Rasa style.

Rasa's own channel tests use sanic-testing, whose releases for Sanic 21.12 need an httpx older
than python-telegram-bot 22 allows; httpx's ASGITransport does the same job once the app has
been through its ASGI start-up (which finalises the routes and signals). Sanic's start-up
"touch-up" rewrites methods of the Sanic class itself and fails the second time in a process,
so it runs for the first app only (the rewritten methods then serve every app).
"""

from __future__ import annotations

import asyncio
import contextlib
from unittest import mock
from typing import AsyncIterator

import httpx
from sanic import Sanic

_TOUCHED_UP: list = []


@contextlib.asynccontextmanager
async def asgi_client(app: Sanic, base_url: str = "http://127.0.0.1") -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client whose requests go straight to ``app``; runs its start-up and shut-down."""
    inbox: asyncio.Queue = asyncio.Queue()
    started, stopped = asyncio.Event(), asyncio.Event()

    async def receive() -> dict:
        return await inbox.get()

    async def send(message: dict) -> None:
        if message["type"].startswith("lifespan.startup"):
            started.set()
        elif message["type"].startswith("lifespan.shutdown"):
            stopped.set()

    scope = {"type": "lifespan", "asgi": {"version": "3.0"}}
    with contextlib.ExitStack() as stack:
        if _TOUCHED_UP:
            stack.enter_context(mock.patch("sanic.app.TouchUp.run", lambda _app: None))
        _TOUCHED_UP.append(True)
        lifespan = asyncio.get_running_loop().create_task(app(scope, receive, send))
        await inbox.put({"type": "lifespan.startup"})
        await asyncio.wait_for(started.wait(), 30)
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
            yield client
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stopped.wait(), 10)
        lifespan.cancel()
        with contextlib.suppress(BaseException):
            await lifespan
