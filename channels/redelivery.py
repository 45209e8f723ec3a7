"""Replies a provider did not take go out once it takes messages again: once, in order.

A provider storm (Twilio or Telegram answering 5xx, 429 or nothing for a while) must not eat
the answers of the people writing meanwhile, nor a caseworker's reply. ``Redelivery`` stands
between a channel and its sender:

- ``deliver`` sends a turn's units (an SMS part, a Telegram message with its buttons) in
  order. When the sender gives up on one (its own retries spent, ``SendError`` not
  permanent), that unit and those after it are kept, encrypted, in the conversation's reply
  route (``Route.undelivered``; the route is the one place an address and a text may wait,
  promise 1) and a row of ``bot.delayed`` says that the conversation has replies waiting.
  While a conversation has replies waiting, its new ones queue behind them, so that nothing
  overtakes; while the provider is failing (a transient failure in the last
  ``TROUBLE_SECONDS``), new replies queue at once instead of each spending the sender's
  retries.
- ``run`` (started with the Rasa server) looks every ``tick`` seconds for waiting rows whose
  time has come, takes each with a lease (one conditional UPDATE: two Rasa replicas never send
  the same replies at once), sends the waiting units in order and removes each from the route
  once the provider took it. A transient failure gives the row back for later (backoff
  doubling from ``tick`` to ``MAX_BACKOFF``, or the provider's Retry-After) and ends the
  round: the provider is still down. A refusal (a number that opted out, a bot the person
  blocked) drops what waits, as it would have been dropped at once. Replies that waited more
  than the deployment's ``retention.undelivered_reply_minutes`` are dropped, not sent late
  into a day the person no longer expects them (a phone may have changed hands); a
  caseworker's reply among them goes back to the case as not sent, so that it goes out with
  the answer to the person's next message. A route gone (expired, erased) drops them too.

None twice: a unit leaves the route only after the provider took it, and the lease keeps
other processes away meanwhile. What this cannot prevent is a request the provider took
whose answer never came back (a timeout after Twilio queued the message): the unit is sent
again. Twilio's and Telegram's sending APIs take no idempotency key that would stop that.

The console shows the ledger: replies waiting per channel and since when, and over the last
day those delivered late and dropped (``bot.delayed.DelayedReplies.summary``). Logs say
how many and for which pseudonymous conversation, never a text or an address.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from dataclasses import replace
from functools import lru_cache
from typing import Any, Awaitable, Callable, Optional, Protocol, Sequence

from bot.privacy import erasure

logger = logging.getLogger(__name__)

TICK_SECONDS = 5.0
MAX_BACKOFF = 30.0  # replies arrive at most this long after a storm ends
MAX_RETRY_AFTER = 300.0
TROUBLE_SECONDS = 30.0
LEASE_SECONDS = 300.0  # longer than one conversation's units with every retry timing out
MAX_UNDELIVERED = 30  # units kept per conversation (the rate limit bounds what comes in)
PURGE_EVERY = 600.0


class Failure(Protocol):
    """What the senders raise (``channels.twilio_api.SendError``,
    ``channels.telegram_api.SendError``)."""

    permanent: bool


SendUnit = Callable[[str, str, dict], Awaitable[Any]]  # (address, conversation id, unit)
Refused = Callable[[str, dict, BaseException], Awaitable[Any]]  # (conversation id, unit, error)


def unit(message: Any, original: str = "", **extra: Any) -> dict:
    """A unit to send: ``message`` as the channel sends it (an SMS part, a Telegram message);
    ``original``: the text of a caseworker's reply it carries (given back to the case if it
    is dropped)."""
    item = {"m": message, **extra}
    if original:
        item["o"] = original
    return item


@lru_cache(maxsize=8)
def _ledger_for(url: str):
    from bot.cases.service import _engine
    from bot.delayed import DelayedReplies
    from bot.storage import require_current, session_factory

    engine = _engine(url)
    require_current(engine)
    return DelayedReplies(session_factory(engine))


def ledger_for(url: str):
    """The ledger on ``url``; None when the database is not migrated (checked again later)."""
    from bot.storage import SchemaError

    try:
        return _ledger_for(url)
    except SchemaError:
        _ledger_for.cache_clear()
        return None


def backoff(attempts: int, tick: float, retry_after: Optional[float] = None) -> float:
    """Seconds before the next try after ``attempts`` failed rounds."""
    if retry_after:
        return min(max(retry_after, tick), MAX_RETRY_AFTER)
    return min(MAX_BACKOFF, tick * 2 ** max(0, attempts - 1))


class Redelivery:
    """One channel's replies that wait for its provider."""

    def __init__(self, channel: str, routes: Callable[[], Any], send_unit: SendUnit,
                 refused: Optional[Refused] = None, ledger: Optional[Callable[[], Any]] = None,
                 tick: float = TICK_SECONDS, max_wait_seconds: Optional[Callable[[], float]] = None,
                 clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        """``routes``: the gateway's route cache (a callable: made lazily); ``send_unit``
        raises the sender's ``SendError``; ``refused``: what the channel does with a unit the
        provider refused; ``ledger``: the ``DelayedReplies`` (default: on the deployment's
        database); ``max_wait_seconds``: the deployment's retention of undelivered replies."""
        self.channel = channel
        self._routes = routes
        self._send_unit = send_unit
        self._refused = refused
        self._ledger = ledger
        self.tick = tick
        self._max_wait = max_wait_seconds
        self._clock = clock
        self._monotonic = monotonic
        self._trouble_until = 0.0
        self._owner = secrets.token_hex(8)
        self._task: Optional[asyncio.Task] = None
        self._last_purge = 0.0
        self._eraser = f"delayed replies ({channel} {id(self)})"
        erasure.register(self._eraser, self._forget)

    # -- settings ---------------------------------------------------------------------------

    def ledger(self):
        if self._ledger is not None:
            return self._ledger()
        from bot.settings import Settings

        return ledger_for(Settings.from_env().database_url)

    def max_wait(self) -> float:
        if self._max_wait is not None:
            return self._max_wait()
        from bot.deployment import cached_deployment
        from bot.settings import Settings

        retention = cached_deployment(Settings.from_env().deployment_file).retention
        return retention.undelivered_reply_minutes * 60.0

    def in_trouble(self) -> bool:
        return self._monotonic() < self._trouble_until

    def _trouble(self) -> None:
        self._trouble_until = self._monotonic() + TROUBLE_SECONDS

    # -- sending a turn ---------------------------------------------------------------------

    async def deliver(self, conversation_id: str, address: Any, units: Sequence[dict]) -> int:
        """Sends ``units`` in order, or keeps them for later (see the module's text); returns
        how many the provider took now."""
        if not units:
            return 0
        if conversation_id and (self.in_trouble() or await self._waits(conversation_id)):
            await self.keep(conversation_id, units)
            return 0
        for index, item in enumerate(units):
            try:
                await self._send_unit(address, conversation_id, item)
            except Exception as exc:  # noqa: BLE001 - a background send must not die silently
                if getattr(exc, "permanent", None) is False and conversation_id:
                    self._trouble()
                    await self.keep(conversation_id, units[index:])
                elif getattr(exc, "permanent", False):
                    await self._refuse(conversation_id, item, exc)
                else:
                    logger.error("%s channel: sending failed (%s); the rest of the turn is "
                                 "dropped", self.channel, type(exc).__name__)
                return index
            self._trouble_until = 0.0
        return len(units)

    async def _waits(self, conversation_id: str) -> bool:
        route = await self._routes().get(conversation_id)
        return route is not None and bool(route.undelivered)

    async def keep(self, conversation_id: str, units: Sequence[dict]) -> bool:
        """Puts ``units`` behind the conversation's waiting replies and notes the row; False
        when the conversation has no route (nothing can be sent to it any more)."""
        routes = self._routes()
        route = await routes.get(conversation_id)
        if route is None:
            logger.warning("%s channel: %d repl(ies) the provider did not take were dropped: "
                           "the conversation has no reply route", self.channel, len(units))
            return False
        now = int(self._clock())
        waiting = route.undelivered + tuple(
            json.dumps({**item, "t": item.get("t", now)}, ensure_ascii=False) for item in units)
        if len(waiting) > MAX_UNDELIVERED:
            logger.warning("%s channel: %s has more than %d replies waiting; the oldest are "
                           "dropped", self.channel, conversation_id, MAX_UNDELIVERED)
            waiting = waiting[-MAX_UNDELIVERED:]
        await routes.put(conversation_id, replace(route, undelivered=waiting))
        ledger = await asyncio.to_thread(self.ledger)
        if ledger is None:
            logger.error("%s channel: replies wait for the provider but the database is not "
                         "migrated (helpline db upgrade): they cannot be tried again",
                         self.channel)
            return True
        made = await asyncio.to_thread(ledger.note, self.channel, conversation_id, self.tick)
        logger.warning("%s channel: the provider did not take %d repl(ies) for %s; kept to "
                       "send when it does%s", self.channel, len(units), conversation_id,
                       "" if made else " (behind others waiting)")
        return True

    async def _refuse(self, conversation_id: str, item: dict, exc: BaseException) -> None:
        logger.warning("%s channel: a reply was not delivered (refused by the provider: %s)",
                       self.channel, type(exc).__name__)
        if self._refused is not None and conversation_id:
            await self._refused(conversation_id, item, exc)

    # -- trying again -----------------------------------------------------------------------

    def start(self) -> None:
        """Starts the loop on the running event loop (the Rasa server's)."""
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self.run())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        erasure.unregister(self._eraser)

    async def run(self) -> None:
        while True:
            try:
                await self.redeliver()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a database or route store down: try again next tick
                logger.error("%s channel: trying waiting replies again failed (%s)",
                             self.channel, type(exc).__name__)
            await asyncio.sleep(self.tick)

    async def redeliver(self) -> int:
        """One round: the due rows, each taken, sent and written; returns the units sent."""
        ledger = await asyncio.to_thread(self.ledger)
        if ledger is None:
            return 0
        if self._monotonic() - self._last_purge > PURGE_EVERY:
            self._last_purge = self._monotonic()
            await asyncio.to_thread(ledger.purge)
        sent = 0
        for row_id in await asyncio.to_thread(ledger.due, self.channel):
            taken = await asyncio.to_thread(ledger.take, row_id, self._owner, LEASE_SECONDS)
            if taken is None:
                continue  # another process holds it, or it ended meanwhile
            count, stop = await self._one(ledger, taken)
            sent += count
            if stop:
                break  # the provider still fails: the other rows wait for the next round
        return sent

    async def _one(self, ledger: Any, taken: Any) -> tuple[int, bool]:
        """Sends one conversation's waiting units; (units sent, whether the provider failed)."""
        conversation_id = taken.conversation_id
        routes = self._routes()
        route = await routes.get(conversation_id)
        if route is None:
            await asyncio.to_thread(ledger.finish, taken.id, self._owner, 0, "no_route")
            logger.warning("%s channel: replies waiting for %s were dropped: its reply route "
                           "is gone", self.channel, conversation_id)
            return 0, False
        waiting = list(zip((json.loads(item) for item in route.undelivered), route.undelivered))
        oldest = self._clock() - self.max_wait()
        stale = [(item, kept) for item, kept in waiting if item.get("t", 0) < oldest]
        if stale:  # waited too long: dropped, a caseworker's reply back to its case
            await self._remove(conversation_id, [kept for _, kept in stale])
            await self._give_back(conversation_id, [item for item, _ in stale])
            logger.warning("%s channel: %d repl(ies) for %s waited longer than "
                           "retention.undelivered_reply_minutes and were dropped",
                           self.channel, len(stale), conversation_id)
            waiting = [(item, kept) for item, kept in waiting if item.get("t", 0) >= oldest]
            if not waiting:
                await asyncio.to_thread(ledger.finish, taken.id, self._owner, 0, "too_late")
                return 0, False
        units = [item for item, _ in waiting]
        done = 0
        failure: Optional[BaseException] = None
        for item, kept in waiting:
            try:
                await self._send_unit(route.address, conversation_id, item)
            except Exception as exc:  # noqa: BLE001 - written to the ledger below
                failure = exc
                break
            done += 1
            await self._remove(conversation_id, (kept,))  # taken: never sent again
        if failure is not None and getattr(failure, "permanent", None) is False:
            self._trouble()
            retry_after = getattr(failure, "retry_after", None)
            await asyncio.to_thread(ledger.again, taken.id, self._owner,
                                    backoff(taken.attempts + 1, self.tick, retry_after), done)
            logger.info("%s channel: the provider still does not take replies (%s); %d sent, "
                        "the rest waits", self.channel, type(failure).__name__, done)
            return done, True
        if failure is not None:  # refused, or a fault of ours: what waits is dropped
            await self._remove(conversation_id, [kept for _, kept in waiting[done:]])
            await self._refuse(conversation_id, units[done], failure)
            await asyncio.to_thread(ledger.finish, taken.id, self._owner, done, "refused")
            return done, False
        self._trouble_until = 0.0
        await asyncio.to_thread(ledger.finish, taken.id, self._owner, done)
        logger.warning("%s channel: %d late repl(ies) delivered to %s", self.channel, done,
                       conversation_id)
        later = await routes.get(conversation_id)  # kept while these were being sent
        if later is not None and later.undelivered:
            await asyncio.to_thread(ledger.note, self.channel, conversation_id, 0.0)
        return done, False

    async def _remove(self, conversation_id: str, items: Sequence[str]) -> None:
        """Takes ``items`` (sent or dropped) out of the route's waiting replies."""
        if not items:
            return
        routes = self._routes()
        route = await routes.get(conversation_id)
        if route is None:
            return
        left = list(route.undelivered)
        for item in items:
            if item in left:
                left.remove(item)
        await routes.put(conversation_id,
                         replace(route, undelivered=tuple(left)))

    async def _give_back(self, conversation_id: str, units: Sequence[dict]) -> None:
        """A caseworker's reply among dropped units goes back to its case as not sent."""
        from bot.cases.service import requeue_reply

        for item in units:
            if item.get("o"):
                await requeue_reply(conversation_id, item["o"])

    async def _forget(self, conversation_id: str) -> None:
        """The conversation's erasure: its ledger row goes (its replies go with the route)."""
        ledger = await asyncio.to_thread(self.ledger)
        if ledger is not None:
            await asyncio.to_thread(ledger.forget, conversation_id)
