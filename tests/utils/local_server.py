"""An aiohttp application served on 127.0.0.1 from a thread of its own, for the fake provider
APIs the channel tests talk to over real HTTP (``fake_telegram.py``, ``fake_twilio.py``) and
for the caseworker console in the browser (``test_console_browser.py``)."""

from __future__ import annotations

import asyncio
import threading
from typing import Optional

from aiohttp import web

from tests.utils.assistant import free_port


class LocalServer:
    """Subclasses add their routes in ``routes``; ``start`` returns once the port listens."""

    name = "local"

    def __init__(self) -> None:
        self.port = free_port()
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._runner: Optional[web.AppRunner] = None
        self._ready = threading.Event()

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    def application(self) -> web.Application:
        """The application served (a subclass may build a whole one instead of ``routes``)."""
        app = web.Application()
        self.routes(app)
        return app

    def start(self):
        def serve() -> None:
            self._loop = asyncio.new_event_loop()
            self._runner = web.AppRunner(self.application())
            self._loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", self.port, shutdown_timeout=0.5)
            self._loop.run_until_complete(site.start())
            self._ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=serve, name=f"fake-{self.name}", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError(f"the fake {self.name} server did not start")
        return self

    def stop(self) -> None:
        """Stops the server, cancelling replies still under way (again: nothing)."""
        loop, self._loop = self._loop, None
        if loop is None:
            return

        async def shutdown() -> None:
            await self._runner.cleanup()
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in others:
                task.cancel()
            await asyncio.gather(*others, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(shutdown(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(10)
