"""One directory and one gazetteer per process, loaded on first use, reloaded after imports.

``current(url)`` returns the in-memory ``Directory`` and ``Gazetteer`` for the database at
``url``. It checks the directory's version (one small query) at most every
``check_seconds`` and reloads when an import has changed something since, so that the action
server picks up a new service list without a restart. A database whose schema is not current
gives an empty directory (the assistant then says the search is not available) and is tried
again at the next check.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable, Optional

from bot.services.lookup import Directory
from bot.services.places import Gazetteer

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Loaded:
    directory: Directory
    gazetteer: Gazetteer
    version: Optional[int]  # None: the database could not be used


class DirectoryCache:
    """The loaded directory of one database, refreshed when its version changes."""

    def __init__(self, url: str, default_timezone: str = "UTC", check_seconds: float = 60.0,
                 clock: Callable[[], float] = time.monotonic, services: bool = True) -> None:
        """``services=False``: the gazetteer only (the directory stays empty), for a process
        that needs place names but not the services themselves (the Rasa server)."""
        self.url = url
        self.services = services
        self.default_timezone = default_timezone
        self.check_seconds = check_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._loaded: Optional[Loaded] = None
        self._checked = float("-inf")

    def _version(self, session) -> int:
        from bot.services.models import directory_version

        return directory_version(session)

    def get(self) -> Loaded:
        with self._lock:
            now = self._clock()
            if self._loaded is not None and now - self._checked < self.check_seconds:
                return self._loaded
            self._checked = now
            self._loaded = self._refresh()
            return self._loaded

    def _refresh(self) -> Loaded:
        from bot.services.places import load_gazetteer
        from bot.storage import SchemaError, make_engine, require_current, session_factory

        engine = make_engine(self.url)
        try:
            require_current(engine)
            with session_factory(engine)() as session:
                version = self._version(session)
                if self._loaded is not None and self._loaded.version == version:
                    return self._loaded
                directory = (Directory.load(session, self.default_timezone) if self.services
                             else Directory([]))
                loaded = Loaded(directory, load_gazetteer(session), version)
            logger.info("services directory: %d services, %d places (version %d)",
                        len(loaded.directory), len(loaded.gazetteer), version)
            return loaded
        except SchemaError:
            logger.warning("services directory: the database is not migrated "
                           "(`helpline db upgrade`); searching is unavailable")
            return Loaded(Directory([]), Gazetteer(), None)
        finally:
            engine.dispose()


_caches: dict[tuple[str, bool], DirectoryCache] = {}
_caches_lock = threading.Lock()


def current(url: str, default_timezone: str = "UTC", services: bool = True) -> Loaded:
    """The directory and gazetteer of ``url`` for this process (``services=False``: the
    gazetteer only)."""
    with _caches_lock:
        cache = _caches.get((url, services))
        if cache is None:
            cache = _caches[(url, services)] = DirectoryCache(url, default_timezone,
                                                              services=services)
    return cache.get()
