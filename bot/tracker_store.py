"""The tracker store: Rasa's SQL, Redis or in-memory store behind redaction, expiry and erasure.

``PrivateTrackerStore`` (configured in endpoints.yml) wraps one of Rasa's own stores, chosen by
``HELPLINE_TRACKER_STORE``:

- ``sql`` (default): ``SQLTrackerStore`` on ``HELPLINE_DATABASE_URL`` (an SQLite file by
  default, PostgreSQL by URL);
- ``redis``: ``RedisTrackerStore`` on ``HELPLINE_REDIS_URL``, with Redis's own expiry;
- ``memory``: ``InMemoryTrackerStore``.

Before anything is written, every event goes through ``bot.privacy.redaction``: no text, no
metadata, no free entity or slot values. A quick exit or "forget me" deletes the whole
conversation at once, with its reply route and everything else registered with
``bot.privacy.erasure``; nothing of that conversation is written afterwards. Conversations
idle longer than ``retention.conversation_idle_hours`` are deleted by ``purge`` (the
``helpline purge`` command, and a periodic job in the Rasa server).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from functools import lru_cache
from typing import Any, Iterable, Optional, Sequence
from urllib.parse import unquote, urlparse

from rasa.core.brokers.broker import EventBroker
from rasa.core.tracker_store import (
    InMemoryTrackerStore,
    RedisTrackerStore,
    SQLTrackerStore,
    TrackerStore,
)
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, Event, Restarted, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from bot.deployment import Deployment, cached_deployment
from bot.privacy import erasure
from bot.privacy.logs import install_log_scrubber
from bot.privacy.redaction import SlotRules, redact_event
from bot import action_failures, rasa_speedups
from bot.settings import Settings
from bot.storage import private_sqlite_file
from bot.triage import NEED_CATEGORIES
from bot.disclosures import LABELS as DISCLOSURE_LABELS

logger = logging.getLogger(__name__)
ERASING_ACTIONS = frozenset({"action_quick_exit", "action_forget_me"})
REDIS_KEY_PREFIX = "helpline"  # Rasa makes it "helpline:tracker:"


def erase_point(events: Sequence[Event]) -> Optional[int]:
    """Index of the last reset made by an erasing action, or None.

    Everything before that index is what the person asked to erase.
    """
    for index in range(len(events) - 1, -1, -1):
        if not isinstance(events[index], Restarted):
            continue
        previous = next(
            (e for e in reversed(events[:index]) if isinstance(e, ActionExecuted)), None
        )
        if previous is not None and previous.action_name in ERASING_ACTIONS:
            return index
        return None
    return None


def slot_rules(domain: Domain, deployment: Deployment,
               place_codes: Iterable[str] = ()) -> SlotRules:
    """Closed sets for this domain's slots and this deployment's text slots.

    ``place_codes``: the coarse places a conversation may keep (``services_place_codes``).
    """
    from bot.services.answer import ANY_NEED
    from bot.services.categories import load_categories

    return SlotRules.from_domain(
        domain,
        texts={"area": deployment.emergency_contacts.keys(),
               "org_name": [deployment.organisation_name],
               "service_need": [*load_categories(), ANY_NEED],
               "service_place": place_codes},
        lists={"triage_needs": NEED_CATEGORIES, "disclosed": DISCLOSURE_LABELS},
    )


def services_place_codes(database_url: str) -> tuple[Optional[int], frozenset[str]]:
    """The directory's version and the codes of its coarse places (towns, districts, ...).

    Only these may be kept as a conversation's ``service_place``: never a camp, never a point.
    """
    from bot.services.answer import COARSE_KINDS
    from bot.services.runtime import current

    loaded = current(database_url, services=False)  # the places, not 50,000 services
    cached = _PLACE_CODES.get(database_url)
    if cached is not None and cached[0] is loaded:  # called on every save: reuse until reloaded
        return loaded.version, cached[1]
    codes = frozenset(code for code, place in loaded.gazetteer.places.items()
                      if place.kind in COARSE_KINDS)
    _PLACE_CODES[database_url] = (loaded, codes)
    return loaded.version, codes


_PLACE_CODES: dict[str, tuple[Any, frozenset[str]]] = {}


def redact_tracker(tracker: DialogueStateTracker, events: Sequence[Event], rules: SlotRules,
                   slots: Any, replay: bool = True) -> DialogueStateTracker:
    """A tracker holding the redacted form of ``events``.

    With ``replay=False`` the tracker holds the events without replaying them into its state:
    enough for a store that writes events only (SQL), and much cheaper for long conversations.
    """
    redacted = [_event(redact_event(event.as_dict(), rules)) for event in events]
    if replay:
        return DialogueStateTracker.from_events(tracker.sender_id, redacted, slots=slots)
    bare = DialogueStateTracker(tracker.sender_id, slots)
    bare.events.extend(redacted)
    return bare


@lru_cache(maxsize=None)
def _event_classes() -> dict:
    from rasa.shared.utils.common import all_subclasses

    return {cls.type_name: cls for cls in all_subclasses(Event)}


def _event(data: dict) -> Event:
    """``Event.from_parameters`` without its search through every Event subclass per call."""
    cls = _event_classes().get(data["event"])
    return cls._from_parameters(data) if cls is not None else Event.from_parameters(data)


class PrivateTrackerStore(TrackerStore):
    """Redacting, expiring, erasing wrapper around one of Rasa's tracker stores."""

    def __init__(
        self,
        domain: Optional[Domain] = None,
        event_broker: Optional[EventBroker] = None,
        backend: Optional[str] = None,
        settings: Optional[Settings] = None,
        **kwargs: Any,
    ) -> None:
        kwargs.pop("host", None)  # Rasa passes the endpoint's url as host; settings decide
        install_log_scrubber()
        rasa_speedups.install()
        action_failures.install()
        erasure.register("hand-off cases", self._erase_case)
        erasure.register("campaign subscribers", self._erase_subscriber, on_expiry=False)
        self.settings = settings or Settings.from_env()
        self.deployment = cached_deployment(self.settings.deployment_file)
        self.backend = (backend or self.settings.tracker_store).lower()
        self.idle_seconds = self.deployment.retention.conversation_idle_hours * 3600
        self.inner = self._open_backend(domain or Domain.empty())
        self._rules: Optional[SlotRules] = None
        self._rules_version: Optional[int] = None
        self._last_purge: Optional[float] = None  # the first save purges
        self._purging: Optional[asyncio.Task] = None
        super().__init__(domain, event_broker)

    # -- backends -----------------------------------------------------------------------------

    def _open_backend(self, domain: Domain) -> TrackerStore:
        if self.backend == "memory":
            return InMemoryTrackerStore(domain)
        if self.backend == "sql":
            return pre_ping(SQLTrackerStore(domain, **sql_arguments(self.settings.database_url)))
        if self.backend == "redis":
            if not self.settings.redis_url:
                raise ValueError("the redis tracker store needs HELPLINE_REDIS_URL")
            return RedisTrackerStore(domain, record_exp=self.idle_seconds,
                                     key_prefix=REDIS_KEY_PREFIX,
                                     **redis_arguments(self.settings.redis_url))
        raise ValueError(f"unknown tracker store backend {self.backend!r} (sql, redis, memory)")

    @property
    def domain(self) -> Domain:
        return self._domain

    @domain.setter
    def domain(self, domain: Optional[Domain]) -> None:
        self._domain = domain or Domain.empty()
        self.inner.domain = self._domain
        self._rules = None

    @property
    def rules(self) -> SlotRules:
        """The slot rules, rebuilt when the services directory's places change."""
        version, codes = services_place_codes(self.settings.database_url)
        if self._rules is None or version != self._rules_version:
            self._rules = slot_rules(self.domain, self.deployment, codes)
            self._rules_version = version
        return self._rules

    # -- Rasa's interface ---------------------------------------------------------------------

    async def save(self, tracker: DialogueStateTracker) -> None:
        events = list(tracker.events)
        cut = erase_point(events)
        if cut is not None:
            await self.erase(tracker.sender_id)
            events = events[cut + 1:]
            if not any(isinstance(e, UserUttered) for e in events):
                return  # nothing said since the reset: keep nothing at all
        replay = not isinstance(self.inner, SQLTrackerStore)  # SQL writes events only
        await self.inner.save(
            redact_tracker(tracker, events, self.rules, self.domain.slots, replay=replay)
        )
        self._schedule_purge()

    async def retrieve(self, sender_id: str) -> Optional[DialogueStateTracker]:
        return await self.inner.retrieve(sender_id)

    async def retrieve_full_tracker(self, sender_id: str) -> Optional[DialogueStateTracker]:
        return await self.inner.retrieve_full_tracker(sender_id)

    async def keys(self) -> Iterable[str]:
        keys = await self.inner.keys()
        if self.backend == "redis":
            prefix = self.inner.key_prefix
            return [k[len(prefix):] if k.startswith(prefix) else k for k in keys]
        return list(keys)

    # -- erasure and expiry -------------------------------------------------------------------

    async def delete(self, sender_id: str) -> None:
        """Deletes the conversation's events from the backend."""
        inner = self.inner
        if isinstance(inner, InMemoryTrackerStore):
            inner.store.pop(sender_id, None)
        elif isinstance(inner, SQLTrackerStore):
            import sqlalchemy as sa

            with inner.session_scope() as session:
                session.execute(sa.delete(inner.SQLEvent).where(inner.SQLEvent.sender_id == sender_id))
                session.commit()
        elif isinstance(inner, RedisTrackerStore):
            inner.red.delete(inner.key_prefix + sender_id)

    async def erase(self, sender_id: str) -> None:
        """Deletes the conversation and everything else kept under its id, now."""
        await self.delete(sender_id)
        failed = await erasure.erase(sender_id)
        logger.info("tracker store: a conversation was erased at the person's request%s",
                    f" ({', '.join(failed)} failed)" if failed else "")

    def idle_conversations(self, now: Optional[float] = None) -> list[str]:
        """Ids of conversations whose last event is older than the retention time."""
        cutoff = (time.time() if now is None else now) - self.idle_seconds
        inner = self.inner
        if isinstance(inner, SQLTrackerStore):
            import sqlalchemy as sa

            event = inner.SQLEvent
            query = (sa.select(event.sender_id).group_by(event.sender_id)
                     .having(sa.func.max(event.timestamp) < cutoff))
            with inner.session_scope() as session:
                return [row[0] for row in session.execute(query)]
        if isinstance(inner, InMemoryTrackerStore):
            idle = []
            for sender_id, serialised in list(inner.store.items()):
                tracker = inner.deserialise_tracker(sender_id, serialised)
                last = tracker.events[-1].timestamp if tracker and tracker.events else 0
                if last < cutoff:
                    idle.append(sender_id)
            return idle
        return []  # Redis expires idle conversations itself (record_exp)

    async def purge(self, now: Optional[float] = None) -> int:
        """Deletes every idle conversation with its route; returns how many.

        A conversation whose open case is held (the person was told when a caseworker would
        write: ``bot.cases.service.hold_for``) loses its events only: the case and the reply
        route stay until the hold ends, then expire by their own idle rules."""
        idle = self.idle_conversations(now)
        cases = await self._cases() if idle else None
        moment = dt.datetime.fromtimestamp(time.time() if now is None else now, dt.timezone.utc)
        held = 0
        for sender_id in idle:
            if cases is not None and await asyncio.to_thread(cases.held, sender_id, moment):
                await self.delete(sender_id)
                held += 1
                continue
            if cases is not None:  # closed as expired (the erasure would say "by the person")
                await asyncio.to_thread(cases.expire, sender_id)
            await self.delete(sender_id)
            await erasure.erase(sender_id, expiry=True)
        if idle:
            logger.info("tracker store: deleted %d idle conversation(s)%s", len(idle),
                        f" ({held} waiting for a caseworker: case and reply route kept)"
                        if held else "")
        return len(idle)

    async def _erase_case(self, conversation_id: str) -> None:
        """A quick exit or "forget me": the conversation's open case ends and its transcript's
        key and texts are destroyed (nothing to do where the cases tables do not exist)."""
        cases = await self._cases()
        if cases is not None:
            await cases.erase(conversation_id)

    async def _erase_subscriber(self, conversation_id: str) -> None:
        """A quick exit or "forget me" also ends a subscription (the address is deleted)."""
        from bot.campaigns.service import subscribers_for

        subscribers = await asyncio.to_thread(subscribers_for, self.settings.database_url,
                                              self.settings)
        if subscribers is not None:
            await subscribers.erase(conversation_id)

    async def _cases(self):
        """The hand-off's cases on this database, or None where its tables do not exist."""
        from bot.cases.service import cases_for

        return await asyncio.to_thread(cases_for, self.settings.database_url, self.settings)

    def _schedule_purge(self) -> None:
        now = time.monotonic()
        if self._last_purge is not None and now - self._last_purge < self.settings.purge_minutes * 60:
            return
        if self._purging is not None and not self._purging.done():
            return
        self._last_purge = now
        self._purging = asyncio.get_running_loop().create_task(self._purge_quietly())

    async def _purge_quietly(self) -> None:
        try:
            await self.purge()
        except Exception as exc:  # the next run tries again; a purge must not break a chat
            logger.error("tracker store: purge failed (%s)", type(exc).__name__)


def sql_arguments(url: str) -> dict:
    """SQLTrackerStore's keyword arguments for an SQLAlchemy URL."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    dialect = parsed.drivername
    if dialect.startswith("sqlite"):
        path = parsed.database or ""
        if path and path != ":memory:":
            private_sqlite_file(path)
        return {"dialect": dialect, "db": path}
    return {"dialect": dialect, "host": parsed.host, "port": parsed.port,
            "db": parsed.database, "username": parsed.username, "password": parsed.password,
            "query": dict(parsed.query) or None}


def pre_ping(store: SQLTrackerStore) -> SQLTrackerStore:
    """``store`` with an engine that checks a pooled connection before using it: Rasa's own
    keeps the dead connections of a restarted database server, and the next turn of every
    conversation would fail on one of them (issue 17 §5)."""
    import sqlalchemy as sa
    from rasa.core.tracker_store import create_engine_kwargs
    from sqlalchemy.orm import sessionmaker

    if store.engine.dialect.name == "sqlite":  # a file does not restart (and :memory: must stay)
        return store
    url = store.engine.url
    store.engine.dispose()
    store.engine = sa.create_engine(url, pool_pre_ping=True, **create_engine_kwargs(url))
    store.sessionmaker = sessionmaker(bind=store.engine)
    return store


def redis_arguments(url: str) -> dict:
    """RedisTrackerStore's keyword arguments for a redis:// URL."""
    parsed = urlparse(url)
    db = parsed.path.lstrip("/")
    return {"host": parsed.hostname or "localhost", "port": parsed.port or 6379,
            "db": int(db) if db else 0,
            "username": unquote(parsed.username) if parsed.username else None,
            "password": unquote(parsed.password) if parsed.password else None,
            "use_ssl": parsed.scheme == "rediss"}
