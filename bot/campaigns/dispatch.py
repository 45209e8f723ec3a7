"""The campaign dispatcher: sends the outbox at the providers' rates, resumable without duplicates.

``Dispatcher(sessions, subscribers, senders, ...)`` works the ``outbox`` table (rows queued by
``bot.campaigns.queue``) in rounds:

1. **Take back** rows left ``sending`` whose lease expired (a dispatcher killed, or frozen
   past its lease): they become ``pending`` again with the same idempotency key and no owner.
2. **Claim** due rows (``pending``, ``next_attempt_at <= now``) for each provider, as many as
   the provider can take in the next ``horizon`` seconds at its rate (at least a few, at most
   ``max_in_flight``), setting ``sending``, ``lease_until`` and ``lease_owner`` (the run's
   random id, ``owner``: each ``run`` has a new one). On PostgreSQL ``SELECT .. FOR UPDATE SKIP
   LOCKED`` then ``UPDATE .. WHERE id IN (..) AND state = 'pending' RETURNING ..`` in one
   transaction; on SQLite the transaction takes the database's write lock first (SQLite has
   one writer at a time), then selects and updates. Either way two dispatchers never hold the
   same row at once. The lease of the rows a dispatcher holds is renewed every third of
   ``lease_seconds`` while it works, so a long wait (a 429 pause) never loses a row; the
   renewal touches only rows still ``sending`` under the run's own id, reads back which those
   are in the same transaction, and drops the others (taken back while the dispatcher was
   frozen: a VM pause, a stopped process): not sent if not yet sent, nothing written for them,
   counted in ``stats.lost`` and logged as a count.
3. **Check** each row: the subscriber gone (unsubscribed, erased, removed) -> ``opted_out``;
   the subscriber's consent older than the deployment's ``campaigns.consent_months`` (compared
   in the batch's one read of the subscribers) -> ``opted_out`` too, and the subscriber is
   deleted with the address when the outcomes are written (``Subscribers.expire``: a consent
   renewed meanwhile is kept); outside the campaign's window in the subscriber's local time
   (the country of their coarse area, else the deployment's ``human_cover.timezone``) ->
   ``pending`` until the window opens; ``cap_per_week`` campaign messages already sent to them
   in the last 7 days (every campaign counted, and the sends of this process not yet written)
   -> ``pending`` until the oldest of those is 7 days old; otherwise send. A consent reminder
   (``helpline campaign remind``) is held back by the cap like any message: the consent
   promised at most ``max_per_week`` a week (it is queued days ahead of the end). The window is
   checked again once the row's turn at the rate limit comes (a 429 pause may have lasted
   past its end), and so is the lease, by the dispatcher's own knowledge: if less than
   ``lease_margin`` (a tenth of the lease, at most 5 s) is left of it since the row was last
   claimed or renewed, on the monotonic clock or on the clock leases are written with, the row
   is dropped as above instead of sent (a freeze is caught before the next renewal runs).
4. **Send**: per provider, a token bucket (``ratelimit.TokenBucket``: Twilio at the
   deployment's ``campaigns.twilio_messages_per_second``, Telegram at
   ``telegram_messages_per_second`` overall) and, for Telegram, one message a second per
   chat; each claimed row is a task, so up to ``max_in_flight`` requests are under way at once
   and the dispatcher is not the bottleneck. One attempt per send (``senders``), with the
   row's idempotency key as ``Idempotency-Key``. The buckets belong to the process: two
   dispatchers at once send at twice the rate.
5. **Record** the outcome (``sent`` with the provider's id; ``pending`` again after a 429,
   a 5xx, a timeout or a broken connection, with backoff: 2 s doubling up to 1 h, with jitter,
   or the provider's Retry-After (then the whole provider pauses that long); ``failed`` after
   ``max_attempts``, or at once for a refusal; ``failed`` and the subscriber removed for a
   recipient that can never be reached (a blocked bot, an invalid or unsubscribed number).
   Outcomes are written in batches every ``flush_seconds`` (or ``flush_rows``), each only
   over a row still ``sending`` under the run's id (the rows read ``FOR UPDATE`` on
   PostgreSQL, under SQLite's write lock, and every ``UPDATE`` conditional too, the bulk
   ``UPDATE .. FROM (VALUES ..)`` included): a row taken back meanwhile keeps what the other
   dispatcher writes, and its outcome here is dropped (``stats.lost``).

A credentials problem (Twilio 401/403/404, a bad bot token) stops the dispatcher at once:
nothing else would go through, and removing subscribers for it would be wrong.

``run(campaign=None, until_done=True, progress=callback)`` works one campaign (by name) or
all; ``until_done`` waits for deferred and retried rows (sleeping until the next is due) and
returns when none is ``pending`` or ``sending``; ``until_done=False`` returns when nothing is
due now. ``stop()`` (SIGTERM in the command) lets the requests under way finish, writes their
outcomes, and gives the rows not yet sent back at once (``pending``, lease and owner
cleared, again only the rows still its own).

Exactly once: a row is ``sent`` only after the provider took it; a row whose outcome was not
written (the process died, or froze past its lease) is sent again after its lease, by whichever
dispatcher takes it back, with the same key. A dispatcher that wakes from a freeze longer than
its lease sends none of the rows it held that were not yet on their way (the check before each
send), renews none of them, and writes nothing over the dispatcher that took them back (its
own outcomes for them are dropped: ``stats.lost``). What remains, with providers that ignore
the key (Twilio and Telegram today; the fakes of the tests honour it and answer a repeat
without delivering it), is a second delivery of: the messages under way or not yet written
when a dispatcher dies (about rate x (request time + ``flush_seconds``): some 15 at
Telegram's 30/s with 300 ms requests; at most ``max_in_flight`` per provider plus
``flush_seconds`` of outcomes); the messages whose request was already on its way (past the
check) or answered but not yet written when a freeze longer than the lease began; and, when
two dispatchers' hosts' clocks differ by more than ``lease_margin``, a row taken back just
before its holder sends it. A freeze the monotonic clock does not count (some VM pauses) is
still caught: by the renewal, and by the check on the wall clock once that is right again. A
stop by SIGTERM leaves nothing ambiguous.

Logs carry counts and error codes only: never a number, chat id, text or token.

``python -m bot.campaigns.dispatch [--campaign NAME]`` runs it as a process of its own, with the
settings (``HELPLINE_DATABASE_URL``, ``HELPLINE_SECRETS_FILE``, ``HELPLINE_DEPLOYMENT``) and the
provider credentials of the Rasa server's credentials file (``channels.sms.SmsInput``,
``channels.telegram.TelegramInput``, ``${VARS}`` expanded as Rasa does). Exit status: 0 when
done, 2 for bad configuration (with a message saying what), 3 when stopped before done (start
it again to resume), 1 for anything else.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import datetime as dt
import json
import logging
import math
import random
import signal
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from bot.campaigns.definition import CampaignDefinition, CampaignError, timezone_for_area
from bot.campaigns.models import Campaign, OutboxMessage, Subscriber
from bot.campaigns.ratelimit import KeyedLimiter, TokenBucket
from bot.campaigns.senders import FATAL, GONE, REFUSED, RETRY, SENT, Outcome, Sender
from bot.campaigns.subscribers import Subscribers, consent_cutoff, utcnow
from bot.deployment import CampaignSettings

logger = logging.getLogger("bot.campaigns.dispatch")  # also when run with -m

WEEK = dt.timedelta(days=7)
BASE_DELAY = 2.0  # seconds before the first retry
MAX_DELAY = 3600.0  # the longest backoff
MAX_HOLD = 300.0  # the longest a provider is paused for one Retry-After
MAX_ATTEMPTS = 8
LANES: dict[str, tuple[str, ...]] = {"twilio": ("sms",), "telegram": ("telegram", "telegram_channel")}
LANE_OF = {channel: lane for lane, channels in LANES.items() for channel in channels}
CLAIM_MAX = 500  # rows per claim (SQLite's IN lists stay short)
EXIT_DONE, EXIT_ERROR, EXIT_CONFIG, EXIT_STOPPED = 0, 1, 2, 3

OUTBOX = OutboxMessage.__table__
SUBSCRIBERS = Subscriber.__table__
CAMPAIGNS = Campaign.__table__


class DispatchError(RuntimeError):
    """The dispatcher cannot work: bad configuration or credentials (the message says which)."""


@dataclass(frozen=True)
class Limits:
    """Sending rates (messages per second; None: no limit) and concurrency."""

    sms_per_second: Optional[float] = 1.0
    telegram_per_second: Optional[float] = 30.0
    telegram_per_chat_per_second: float = 1.0
    max_in_flight: int = 200  # requests under way at once, per provider
    horizon_seconds: float = 2.0  # claim what a provider can send in this long

    @classmethod
    def of(cls, deployment: Any, **overrides: Any) -> "Limits":
        settings = getattr(deployment, "campaigns", None)
        values = {}
        if settings is not None:
            values = {"sms_per_second": settings.twilio_messages_per_second,
                      "telegram_per_second": settings.telegram_messages_per_second}
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def rate(self, lane: str) -> Optional[float]:
        rate = self.sms_per_second if lane == "twilio" else self.telegram_per_second
        return None if rate is None or rate <= 0 or math.isinf(rate) else float(rate)

    def window(self, lane: str) -> int:
        """How many rows a provider may hold claimed at once."""
        rate = self.rate(lane)
        if rate is None:
            return max(1, self.max_in_flight)
        return max(1, min(self.max_in_flight, max(2, math.ceil(rate * self.horizon_seconds))))


@dataclass
class DispatchStats:
    """What one run did. ``errors`` counts outcome codes (never an address)."""

    sent: int = 0
    failed: int = 0
    opted_out: int = 0
    deferred: int = 0  # outside the window or over the weekly cap
    retried: int = 0  # attempts to be tried again later
    removed: int = 0  # subscribers removed after a permanent failure
    expired: int = 0  # subscribers deleted because their consent ran out
    released: int = 0  # rows given back unsent on stop
    taken_back: int = 0  # rows of a dead dispatcher made pending again
    lost: int = 0  # rows no longer held (lease ran out, taken back): dropped, nothing written
    in_flight: int = 0
    started: float = field(default_factory=time.monotonic)
    errors: Counter = field(default_factory=Counter)
    fatal: Optional[str] = None
    done: bool = False

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    @property
    def rate(self) -> float:
        return self.sent / self.elapsed if self.elapsed > 0 else 0.0

    def as_dict(self) -> dict:
        return {"sent": self.sent, "failed": self.failed, "opted_out": self.opted_out,
                "deferred": self.deferred, "retried": self.retried, "removed": self.removed,
                "expired": self.expired,
                "released": self.released, "taken_back": self.taken_back, "lost": self.lost,
                "elapsed_seconds": round(self.elapsed, 3), "messages_per_second": round(self.rate, 2),
                "errors": dict(self.errors), "fatal": self.fatal, "done": self.done}

    def line(self) -> str:
        return (f"sent {self.sent}, failed {self.failed}, opted out {self.opted_out}, deferred "
                f"{self.deferred}, retrying {self.retried}, removed {self.removed}, consent "
                f"expired {self.expired}, lost {self.lost}, in flight {self.in_flight}, "
                f"{self.rate:.1f}/s")


@dataclass
class _Item:
    """A claimed row on its way."""

    id: int
    campaign_id: int
    subscriber_id: Optional[int]
    channel: str
    language: str
    key: str
    attempts: int
    next_attempt_at: dt.datetime
    address: str = field(default="", repr=False)
    text: str = field(default="", repr=False)
    phase: str = "claimed"  # claimed | waiting | sending | done
    definition: Optional[CampaignDefinition] = field(default=None, repr=False)
    zone: str = "UTC"  # the recipient's time zone (the window is checked again before sending)
    held_until: float = 0.0  # monotonic: when the lease of the last claim or renewal runs out
    lease_until: Optional[dt.datetime] = None  # the same on the clock, as written in the row
    lost: bool = False  # no longer this dispatcher's: never sent (if not yet), nothing written
    task: Optional[asyncio.Task] = field(default=None, repr=False)


class _Lane:
    """One provider: its sender, bucket(s) and the rows it holds."""

    def __init__(self, name: str, sender: Sender, bucket: TokenBucket,
                 per_chat: Optional[KeyedLimiter], window: int) -> None:
        self.name = name
        self.channels = LANES[name]
        self.sender = sender
        self.bucket = bucket
        self.per_chat = per_chat
        self.window = window
        self.refill = max(1, window // 2)  # claim again when this many places are free
        self.outstanding: dict[int, _Item] = {}
        self.tasks: dict[asyncio.Task, _Item] = {}
        self.dry_until = 0.0

    def forget(self, item: _Item) -> None:
        """No longer outstanding (unless the row was claimed again since, as another item)."""
        if self.outstanding.get(item.id) is item:
            del self.outstanding[item.id]


@dataclass
class _Context:
    """What the checks of a claimed batch need, read in the claim's thread."""

    subscribers: dict  # id -> (area, address token), consent still valid
    recent: dict  # subscriber id -> [sent_at, ...] in the last 7 days
    countries: dict  # area code -> country code (areas not seen before)
    campaigns: dict  # campaign id -> definition JSON (campaigns not seen before)
    expired: set = field(default_factory=set)  # ids whose consent ran out (not in subscribers)


def _aware(moment: Optional[dt.datetime]) -> Optional[dt.datetime]:
    if moment is not None and moment.tzinfo is None:  # SQLite: naive, always UTC
        return moment.replace(tzinfo=dt.timezone.utc)
    return moment


def backoff(attempts: int, retry_after: Optional[float], rng: Callable[[], float] = random.random,
            base: float = BASE_DELAY, most: float = MAX_DELAY) -> float:
    """Seconds before the next try after ``attempts`` failed ones: ``base`` doubling per
    attempt up to ``most``, with "equal jitter" (half fixed, half random); never less than the
    provider's Retry-After (plus up to 10 %, at most 1 s, so that a crowd does not come back at
    once). A short Retry-After does not cut the growing wait: Telegram answers 429 with
    ``retry_after`` 1 during an outage, and retries a second apart would spend a message's
    ``max_attempts`` in seconds (a minute-long storm failed campaign messages so)."""
    delay = min(most, base * 2 ** max(0, attempts - 1))
    grown = delay / 2 + rng() * delay / 2
    if retry_after is not None and retry_after >= 0:
        return max(grown, min(most, retry_after) + rng() * min(1.0, retry_after * 0.1))
    return grown


class Dispatcher:
    """Sends the outbox; see the module's docstring."""

    def __init__(self, sessions: "sessionmaker[Session]", subscribers: Subscribers,
                 senders: Mapping[str, Sender], clock: Callable[[], dt.datetime] = utcnow,
                 lease_seconds: float = 30.0, batch: int = CLAIM_MAX,
                 limits: Optional[Limits] = None, deployment: Any = None,
                 default_timezone: Optional[str] = None, fold_accents: Optional[bool] = None,
                 max_attempts: int = MAX_ATTEMPTS, base_delay: float = BASE_DELAY,
                 consent_months: Optional[int] = None, flush_seconds: float = 0.2,
                 flush_rows: int = 200, poll_seconds: float = 0.5, idle_seconds: float = 5.0,
                 rng: Callable[[], float] = random.random,
                 monotonic: Callable[[], float] = time.monotonic,
                 lease_margin: Optional[float] = None) -> None:
        """``senders`` maps a provider ("twilio", "telegram") or a channel ("sms",
        "telegram") to its sender. ``limits`` default to the deployment's rates, and
        ``consent_months`` to its ``campaigns.consent_months`` (12 without a deployment).
        ``lease_margin``: a row is not sent once its lease, as this dispatcher last took or
        renewed it, has less than this left (default a tenth of ``lease_seconds``, at most
        5 s: the request's way to the provider, and the clocks' difference between hosts)."""
        if lease_seconds <= 0 or batch < 1 or max_attempts < 1:
            raise ValueError("lease_seconds, batch and max_attempts must be positive")
        if lease_margin is None:
            lease_margin = min(5.0, lease_seconds / 10)
        if not 0 <= lease_margin < lease_seconds:
            raise ValueError("lease_margin must be at least 0 and below lease_seconds")
        self._sessions = sessions
        self._subscribers = subscribers
        self._clock = clock
        self.lease = dt.timedelta(seconds=lease_seconds)
        self.lease_seconds = lease_seconds
        self.lease_margin = lease_margin
        self.owner = uuid.uuid4().hex  # this run's id in outbox.lease_owner (new for each run)
        self.batch = min(batch, CLAIM_MAX)
        self.limits = limits or Limits.of(deployment)
        cover = getattr(deployment, "human_cover", None)
        self.default_timezone = default_timezone or getattr(cover, "timezone", None) or "UTC"
        sms_settings = getattr(deployment, "sms", None)
        self.fold_accents = (fold_accents if fold_accents is not None
                             else getattr(sms_settings, "fold_accents", True))
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        campaign_settings = getattr(deployment, "campaigns", None) or CampaignSettings()
        self.consent_months = int(consent_months or campaign_settings.consent_months)
        self.flush_seconds = flush_seconds
        self.flush_rows = flush_rows
        self.poll_seconds = poll_seconds
        self.idle_seconds = idle_seconds
        self._rng = rng
        self._monotonic = monotonic
        self._dialect = sessions.kw["bind"].dialect.name
        self._psycopg2 = sessions.kw["bind"].dialect.driver == "psycopg2"
        self.lanes: dict[str, _Lane] = {}
        for lane_name in LANES:
            sender = senders.get(lane_name) or senders.get(LANES[lane_name][0])
            if sender is None:
                continue
            rate = self.limits.rate(lane_name)
            per_chat = (KeyedLimiter(self.limits.telegram_per_chat_per_second)
                        if lane_name == "telegram" else None)
            window = min(self.limits.window(lane_name), self.batch * 2)
            self.lanes[lane_name] = _Lane(lane_name, sender, TokenBucket(rate), per_chat, window)
        self.stats = DispatchStats()
        self.db_time: dict[str, tuple[int, float]] = {}  # database work: name -> (calls, seconds)
        self._definitions: dict[int, Optional[CampaignDefinition]] = {}
        self._texts: dict[tuple[int, str, str], Optional[str]] = {}
        self._zones: dict[Optional[str], str] = {}
        self._countries: dict[str, Optional[str]] = {}
        self._approved: Counter = Counter()  # subscriber id -> sends approved, not yet written
        self._writes: list[dict] = []
        self._written: list[tuple[Optional[int], Optional[str]]] = []  # (approved, counted)
        self._lost_unlogged = 0
        self._releases: list[int] = []
        self._removals: list[int] = []
        self._expirations: list[int] = []  # subscribers whose consent ran out, to delete
        self._expired_at: Optional[dt.datetime] = None  # the claim that found the latest
        self._stopping = False
        self.stop_requested = False
        self._changed: Optional[asyncio.Event] = None
        self._flush_now: Optional[asyncio.Event] = None
        self._flush_lock: Optional[asyncio.Lock] = None
        self._executor: Optional[concurrent.futures.ThreadPoolExecutor] = None
        self._scope: Optional[int] = None
        self._has_places: Optional[bool] = None

    # -- public --------------------------------------------------------------------------------

    def stop(self) -> None:
        """Finish the requests under way, write their outcomes, give the other rows back."""
        if not self.stop_requested:
            logger.info("dispatch: stopping: finishing the requests under way")
        self.stop_requested = True
        self._stopping = True
        if self._changed is not None:
            self._changed.set()

    async def run(self, campaign: Optional[str] = None, until_done: bool = True,
                  progress: Optional[Callable[[DispatchStats], Any]] = None) -> DispatchStats:
        """Works the outbox of ``campaign`` (a name; None: every campaign).

        Raises:
            DispatchError: no campaign has that name, rows wait for a provider without a
                sender, or a provider refused the credentials (``stats.fatal``).
        """
        self._changed = asyncio.Event()
        self._flush_now = asyncio.Event()
        self._flush_lock = asyncio.Lock()
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="dispatch-db")
        self.stats = DispatchStats(started=self._monotonic())
        self.owner = uuid.uuid4().hex
        flusher: Optional[asyncio.Task] = None
        try:
            self._scope = None if campaign is None else await self._db(self._campaign_id, campaign)
            missing = await self._db(self._channels_without_sender)
            if missing:
                raise DispatchError(
                    "the outbox has messages for " + ", ".join(missing) + " but no sender for "
                    "them (their channel's credentials are missing)")
            logger.info("dispatch: starting (%s; %s)", "campaign " + campaign if campaign else
                        "every campaign", ", ".join(
                            f"{name} {lane.bucket.rate or 'unlimited'}/s, {lane.window} at once"
                            for name, lane in self.lanes.items()))
            flusher = asyncio.ensure_future(self._flush_loop(progress))
            await self._work(until_done)
        finally:
            await self._finish_run(flusher, progress)
        if self.stats.fatal:
            raise DispatchError(f"the provider refused the dispatcher's credentials "
                                f"({self.stats.fatal}); nothing more was sent")
        return self.stats

    # -- the rounds ----------------------------------------------------------------------------

    async def _work(self, until_done: bool) -> None:
        assert self._changed is not None
        next_takeback = 0.0
        next_renew = self._monotonic() + self.lease_seconds / 3
        while not self._stopping:
            now = self._monotonic()
            if now >= next_takeback:
                if await self._takeback():  # rows of this run's among them? (it froze)
                    next_renew = now  # the renewal drops those before anything is claimed
                next_takeback = now + max(1.0, self.lease_seconds / 2)
            if now >= next_renew:
                await self._renew()
                next_renew = now + self.lease_seconds / 3
            claimed = 0
            for lane in self.lanes.values():
                free = lane.window - len(lane.outstanding)
                if free >= lane.refill and now >= lane.dry_until and not self._stopping:
                    got = await self._claim(lane, free)
                    claimed += got
                    if got < free:
                        lane.dry_until = now + self.poll_seconds
            if claimed:
                continue
            if any(lane.outstanding for lane in self.lanes.values()):
                self._changed.clear()
                try:
                    await asyncio.wait_for(self._changed.wait(), self.poll_seconds)
                except asyncio.TimeoutError:
                    pass
                continue
            # nothing under way: write what is pending, then look once more for due rows
            await self._flush()
            await self._takeback()
            for lane in self.lanes.values():
                claimed += await self._claim(lane, lane.window)
                lane.dry_until = 0.0
            if claimed or self._stopping:
                continue
            if not until_done:
                self.stats.done = (await self._db(self._remaining))[0] == 0
                return
            remaining, next_due = await self._db(self._remaining)
            if remaining == 0:
                self.stats.done = True
                return
            wait = self.idle_seconds
            if next_due is not None:
                wait = min(wait, max(0.05, (next_due - self._clock()).total_seconds()))
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), wait)
            except asyncio.TimeoutError:
                pass

    async def _claim(self, lane: _Lane, wanted: int) -> int:
        wanted = min(wanted, self.batch)
        if wanted <= 0:
            return 0
        now, started = self._clock(), self._monotonic()  # the lease counts from before the claim
        lease_until = now + self.lease
        rows, context = await self._db(self._db_claim, lane.channels, wanted, now, lease_until)
        for campaign_id, text in context.campaigns.items():
            try:
                self._definitions[campaign_id] = CampaignDefinition.from_json(text)
            except CampaignError:
                logger.error("dispatch: campaign %s has a stored definition that cannot be read",
                             campaign_id)
                self._definitions[campaign_id] = None
        self._countries.update(context.countries)
        if context.expired:
            self._expirations.extend(sorted(context.expired))
            self._expired_at = now
        for row in rows:
            self._prepare(lane, row, context, now, started + self.lease_seconds, lease_until)
        return len(rows)

    def _prepare(self, lane: _Lane, row: Sequence, context: _Context, now: dt.datetime,
                 held_until: float, lease_until: dt.datetime) -> None:
        (row_id, campaign_id, subscriber_id, channel, language, key, attempts, next_at) = row
        item = _Item(row_id, campaign_id, subscriber_id, channel, language, key, attempts,
                     _aware(next_at), held_until=held_until, lease_until=lease_until)
        lane.outstanding[item.id] = item
        definition = self._definitions.get(campaign_id)
        if definition is None:
            self._finish(lane, item, "failed", error="bad_definition")
            return
        zone = self.default_timezone
        if channel == "telegram_channel":
            post = definition.telegram_channel
            if post is None:
                self._finish(lane, item, "failed", error="no_channel")
                return
            address: Optional[str] = post.chat
        else:
            subscriber = context.subscribers.get(subscriber_id) if subscriber_id else None
            if subscriber is None:  # unsubscribed, erased, removed, or the consent ran out
                self._finish(lane, item, "opted_out")
                return
            area, token = subscriber
            address = self._subscribers.open(token)
            if address is None:
                self._finish(lane, item, "failed", error="no_address" if token is None
                             else "address_unreadable")
                return
            zone = self._zone(area)
        if not definition.in_window(now, zone):
            opens, _ = definition.next_window(now, zone)
            self._defer(lane, item, opens.astimezone(dt.timezone.utc), "window")
            return
        if subscriber_id is not None and definition.cap_per_week:
            sent = sorted(t for t in context.recent.get(subscriber_id, ()) if t > now - WEEK)
            count = len(sent) + self._approved[subscriber_id]
            if count >= definition.cap_per_week:
                over = count - definition.cap_per_week  # the (over+1)-th oldest must age out
                until = sent[over] + WEEK if over < len(sent) else now + WEEK
                self._defer(lane, item, until, "weekly_cap")
                return
        text = self._text(definition, campaign_id, channel, language)
        if text is None:
            self._finish(lane, item, "failed", error="no_text")
            return
        item.address, item.text, item.definition, item.zone = address, text, definition, zone
        if subscriber_id is not None:
            self._approved[subscriber_id] += 1
        task = item.task = asyncio.ensure_future(self._deliver(lane, item))
        lane.tasks[task] = item
        task.add_done_callback(lambda done: lane.tasks.pop(done, None))

    def _text(self, definition: CampaignDefinition, campaign_id: int, channel: str,
              language: str) -> Optional[str]:
        kind = "sms" if channel == "sms" else "telegram"
        cached = self._texts.get((campaign_id, kind, language), False)
        if cached is not False:
            return cached
        text: Optional[str] = None
        if language in definition.texts:
            text = (definition.sms_text(language, self.fold_accents) if kind == "sms"
                    else definition.telegram_text(language))
        self._texts[(campaign_id, kind, language)] = text
        return text

    def _zone(self, area: Optional[str]) -> str:
        zone = self._zones.get(area)
        if zone is None:
            from bot.services.places import Place

            country = self._countries.get(area) if area else None
            places = {area: Place(area, "area", country, 0.0, 0.0)} if area and country else {}
            zone = self._zones[area] = timezone_for_area(area, places, self.default_timezone)
        return zone

    async def _deliver(self, lane: _Lane, item: _Item) -> None:
        outcome: Optional[Outcome] = None
        try:
            item.phase = "waiting"
            if lane.per_chat is not None:
                await lane.per_chat.acquire(("s", item.subscriber_id) if item.subscriber_id
                                            else ("c", item.address))
            await lane.bucket.acquire()
            if self._stopping:
                return  # given back by _finish_run
            if not self._holds(item):  # frozen past the lease (or taken back): not ours to send
                self._drop(lane, item)
                return
            now = self._clock()
            if item.definition is not None and not item.definition.in_window(now, item.zone):
                self._approved_done(item)  # the window closed while it waited (a 429 pause)
                opens, _ = item.definition.next_window(now, item.zone)
                self._defer(lane, item, opens.astimezone(dt.timezone.utc), "window")
                return
            item.phase = "sending"
            self.stats.in_flight += 1
            try:
                outcome = await lane.sender.send(item.address, item.text, item.key)
            finally:
                self.stats.in_flight -= 1
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug or a library surprise: the type only (no address)
            logger.error("dispatch: %s send failed unexpectedly (%s)", lane.name, type(exc).__name__)
            outcome = Outcome(RETRY, code="error")
        self._outcome(lane, item, outcome)

    def _holds(self, item: _Item) -> bool:
        """Whether the row's lease, as this dispatcher last took or renewed it, still has more
        than the margin left, on the monotonic clock (a wall clock set back) and on the clock
        the leases are written with (the one other dispatchers take rows back by)."""
        if item.lost:
            return False
        if self._monotonic() > item.held_until - self.lease_margin:
            return False
        return (item.lease_until is None
                or self._clock() < item.lease_until - dt.timedelta(seconds=self.lease_margin))

    def _outcome(self, lane: _Lane, item: _Item, outcome: Outcome) -> None:
        attempts = item.attempts + 1
        now = self._clock()
        code = outcome.code
        if code and outcome.kind != SENT:
            self.stats.errors[code] += 1
        if outcome.kind == SENT:
            self._finish(lane, item, "sent", attempts=attempts, sent_at=now, ref=outcome.ref)
        elif outcome.kind == RETRY:
            if outcome.retry_after is not None:
                lane.bucket.hold(min(outcome.retry_after, MAX_HOLD))
            elif code == "http_429":
                lane.bucket.hold(1.0)
            if attempts >= self.max_attempts:
                self._finish(lane, item, "failed", attempts=attempts, error=code)
            else:
                delay = backoff(attempts, outcome.retry_after, self._rng, self.base_delay)
                self.stats.retried += 0 if item.lost else 1
                self._finish(lane, item, "pending", attempts=attempts,
                             next_at=now + dt.timedelta(seconds=delay), error=code)
        elif outcome.kind == GONE:
            self._finish(lane, item, "failed", attempts=attempts, error=code)
            if item.subscriber_id is not None and not item.lost:
                self._removals.append(item.subscriber_id)
        elif outcome.kind == REFUSED:
            self._finish(lane, item, "failed", attempts=attempts, error=code)
        else:  # FATAL: not this row's fault; give it back and stop
            assert outcome.kind == FATAL
            if self.stats.fatal is None:
                logger.error("dispatch: %s refused the credentials (%s); stopping", lane.name, code)
            self.stats.fatal = self.stats.fatal or code
            self._release(lane, item)
            self.stop()

    def _defer(self, lane: _Lane, item: _Item, until: dt.datetime, why: str) -> None:
        self.stats.deferred += 1
        self._finish(lane, item, "pending", next_at=until, error=why, count=False)

    def _finish(self, lane: _Lane, item: _Item, state: str, attempts: Optional[int] = None,
                next_at: Optional[dt.datetime] = None, sent_at: Optional[dt.datetime] = None,
                ref: Optional[str] = None, error: Optional[str] = None, count: bool = True) -> None:
        if item.lost:  # dropped while its request was under way: the outcome is not ours
            item.phase = "done"
            return
        item.phase = "done"
        lane.forget(item)
        self._writes.append({
            "b_id": item.id, "b_state": state,
            "b_attempts": item.attempts if attempts is None else attempts,
            "b_next": next_at or item.next_attempt_at, "b_sent_at": sent_at, "b_ref": ref,
            "b_error": error, "b_owner": self.owner})
        counted = state if count and state in ("sent", "failed", "opted_out") else None
        self._written.append(
            (item.subscriber_id if item.address and item.subscriber_id is not None else None,
             counted))
        if counted:
            setattr(self.stats, counted, getattr(self.stats, counted) + 1)
        if self._flush_now is not None and len(self._writes) >= self.flush_rows:
            self._flush_now.set()
        if self._changed is not None:
            self._changed.set()

    def _release(self, lane: _Lane, item: _Item) -> None:
        item.phase = "done"
        lane.forget(item)
        if not item.lost:
            self._releases.append(item.id)
        self._approved_done(item)
        if self._changed is not None:
            self._changed.set()

    def _drop(self, lane: _Lane, item: _Item, cancel: bool = False) -> None:
        """The row is no longer this dispatcher's (its lease ran out or another dispatcher took
        it back): not sent if not yet sent, and nothing written for it (``stats.lost``)."""
        if item.lost:
            return
        item.lost = True
        if item.phase != "sending":  # a request under way finishes; its outcome is dropped
            item.phase = "done"
            if cancel and item.task is not None:
                item.task.cancel()
        lane.forget(item)
        self._approved_done(item)
        self.stats.lost += 1
        self._lost_unlogged += 1
        if self._changed is not None:
            self._changed.set()

    def _approved_done(self, item: _Item) -> None:
        """The send approved for ``item`` will not happen (given back, deferred again)."""
        if item.address and item.subscriber_id is not None:
            self._approved[item.subscriber_id] -= 1
            if self._approved[item.subscriber_id] <= 0:
                del self._approved[item.subscriber_id]
            item.address = ""

    # -- writing -------------------------------------------------------------------------------

    async def _flush_loop(self, progress: Optional[Callable[[DispatchStats], Any]]) -> None:
        assert self._flush_now is not None
        while True:
            try:
                await asyncio.wait_for(self._flush_now.wait(), self.flush_seconds)
            except asyncio.TimeoutError:
                pass
            self._flush_now.clear()
            try:
                await self._flush(progress)
            except sa.exc.DBAPIError as exc:  # kept for the next flush; the type only
                logger.error("dispatch: writing outcomes failed (%s); will try again",
                             type(exc.orig).__name__)

    async def _flush(self, progress: Optional[Callable[[DispatchStats], Any]] = None) -> None:
        assert self._flush_lock is not None
        async with self._flush_lock:
            writes, self._writes = self._writes, []
            written, self._written = self._written, []
            releases, self._releases = self._releases, []
            removals, self._removals = self._removals, []
            expirations, self._expirations = self._expirations, []
            if writes or releases:
                try:
                    lost = await self._db(self._db_write, writes, releases)
                except Exception:
                    self._writes[:0], self._written[:0] = writes, written
                    self._releases[:0], self._removals[:0] = releases, removals
                    self._expirations[:0] = expirations
                    raise
                if lost:  # taken back by another dispatcher before the outcome was written
                    for write, (_, counted) in zip(writes, written):
                        if write["b_id"] in lost and counted:
                            setattr(self.stats, counted, getattr(self.stats, counted) - 1)
                    self.stats.lost += len(lost)
                    self._lost_unlogged += len(lost)
                self.stats.released += sum(1 for i in releases if i not in lost)
            if self._lost_unlogged:
                logger.warning("dispatch: %d messages no longer held by this dispatcher (their "
                               "lease ran out: it was paused or too slow) were dropped unsent or "
                               "unrecorded; the dispatcher that took them back sends them",
                               self._lost_unlogged)
                self._lost_unlogged = 0
            for subscriber_id, _ in written:
                if subscriber_id is not None:
                    self._approved[subscriber_id] -= 1
                    if self._approved[subscriber_id] <= 0:
                        del self._approved[subscriber_id]
            for subscriber_id in removals:
                if await self._db(self._subscribers.remove_id, subscriber_id):
                    self.stats.removed += 1
            if expirations:  # one DELETE, the consent compared again in it
                self.stats.expired += await self._db(
                    self._subscribers.expire, self.consent_months, expirations,
                    self._expired_at or self._clock())
        if progress is not None and (writes or releases):
            progress(self.stats)

    async def _takeback(self) -> int:
        taken = await self._db(self._db_takeback, self._clock())
        if taken:
            self.stats.taken_back += taken
            logger.info("dispatch: %d messages of an interrupted dispatcher taken back", taken)
        return taken

    async def _renew(self) -> None:
        """Renews the lease of the rows this run still holds; drops those it no longer holds."""
        held = [(lane, item) for lane in self.lanes.values() for item in lane.outstanding.values()]
        if not held:
            return
        started, lease_until = self._monotonic(), self._clock() + self.lease
        owned = await self._db(self._db_renew, [item.id for _, item in held], lease_until)
        for lane, item in held:
            if item.id in owned:
                item.held_until, item.lease_until = started + self.lease_seconds, lease_until
            elif lane.outstanding.get(item.id) is item:  # not finished (nor dropped) meanwhile
                self._drop(lane, item, cancel=True)

    async def _finish_run(self, flusher: Optional[asyncio.Task],
                          progress: Optional[Callable[[DispatchStats], Any]]) -> None:
        """Cancels the sends not started, lets those under way finish, writes everything."""
        self._stopping = True
        tasks = [t for lane in self.lanes.values() for t in lane.tasks]
        for lane in self.lanes.values():
            for task, item in list(lane.tasks.items()):
                if item.phase in ("claimed", "waiting"):
                    task.cancel()  # not started: given back below
        if tasks:  # the requests under way finish (each within the sender's timeout)
            _, late = await asyncio.wait(tasks, timeout=30.0)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late, timeout=2.0)
        for lane in self.lanes.values():
            for item in list(lane.outstanding.values()):
                self._release(lane, item)
        if flusher is not None:
            flusher.cancel()
            try:
                await flusher
            except (asyncio.CancelledError, Exception):
                pass
        try:
            if self._executor is not None:
                await self._flush(progress)
        finally:
            if self._executor is not None:
                self._executor.shutdown(wait=True)
                self._executor = None
            if self.stats.released:
                logger.info("dispatch: %d messages given back unsent", self.stats.released)
            logger.debug("dispatch: database work: %s", ", ".join(
                f"{name.lstrip('_')} {calls} in {seconds:.2f} s"
                for name, (calls, seconds) in sorted(self.db_time.items())))
            logger.info("dispatch: %s", self.stats.line())

    # -- the database (one thread; synchronous SQLAlchemy) -------------------------------------

    async def _db(self, function: Callable, *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._timed, function, *args)

    def _timed(self, function: Callable, *args: Any) -> Any:
        started = time.perf_counter()
        try:
            return function(*args)
        finally:
            name = getattr(function, "__name__", "db")
            calls, seconds = self.db_time.get(name, (0, 0.0))
            self.db_time[name] = (calls + 1, seconds + time.perf_counter() - started)

    def _campaign_id(self, name: str) -> int:
        with self._sessions() as session:
            found = session.execute(sa.select(CAMPAIGNS.c.id).where(CAMPAIGNS.c.name == name)).scalar()
        if found is None:
            raise DispatchError(f"no campaign named {name!r} is queued")
        return found

    def _scoped(self, *conditions: Any) -> list:
        conditions = list(conditions)
        if self._scope is not None:
            conditions.append(OUTBOX.c.campaign_id == self._scope)
        return conditions

    def _channels_without_sender(self) -> list[str]:
        served = {channel for lane in self.lanes.values() for channel in lane.channels}
        with self._sessions() as session:
            channels = session.execute(
                sa.select(OUTBOX.c.channel, sa.func.count())
                .where(*self._scoped(OUTBOX.c.state.in_(("pending", "sending"))))
                .group_by(OUTBOX.c.channel)).all()
        return [f"{channel} ({number})" for channel, number in channels if channel not in served]

    def _remaining(self) -> tuple[int, Optional[dt.datetime]]:
        with self._sessions() as session:
            pending, first_due = session.execute(
                sa.select(sa.func.count(), sa.func.min(OUTBOX.c.next_attempt_at))
                .where(*self._scoped(OUTBOX.c.state == "pending"))).one()
            sending, first_lease = session.execute(
                sa.select(sa.func.count(), sa.func.min(OUTBOX.c.lease_until))
                .where(*self._scoped(OUTBOX.c.state == "sending"))).one()
        times = [t for t in (_aware(first_due), _aware(first_lease)) if t is not None]
        return (pending or 0) + (sending or 0), (min(times) if times else None)

    _COLUMNS = (OUTBOX.c.id, OUTBOX.c.campaign_id, OUTBOX.c.subscriber_id, OUTBOX.c.channel,
                OUTBOX.c.language, OUTBOX.c.idempotency_key, OUTBOX.c.attempts,
                OUTBOX.c.next_attempt_at)

    def _db_claim(self, channels: tuple[str, ...], wanted: int, now: dt.datetime,
                  lease_until: dt.datetime) -> tuple[list, _Context]:
        due = self._scoped(OUTBOX.c.state == "pending", OUTBOX.c.next_attempt_at <= now,
                           OUTBOX.c.channel.in_(channels))
        with self._sessions.begin() as session:
            if self._dialect == "postgresql":
                # Two statements, not UPDATE .. WHERE id IN (SELECT .. LIMIT .. FOR UPDATE SKIP
                # LOCKED): PostgreSQL may run such a subquery more than once and update more
                # rows than the LIMIT. The rows locked here stay locked until the commit.
                ids = list(session.execute(
                    sa.select(OUTBOX.c.id).where(*due).order_by(OUTBOX.c.next_attempt_at)
                    .limit(wanted).with_for_update(skip_locked=True)).scalars())
                rows = []
                if ids:
                    rows = session.execute(
                        sa.update(OUTBOX).where(OUTBOX.c.id.in_(ids), OUTBOX.c.state == "pending")
                        .values(state="sending", lease_until=lease_until, lease_owner=self.owner)
                        .returning(*self._COLUMNS)).all()
            else:
                # SQLite: a write first takes the database's single write lock for the whole
                # transaction, so nobody else can claim between the SELECT and the UPDATE.
                _lock_sqlite(session)
                ids = list(session.execute(sa.select(OUTBOX.c.id).where(*due)
                                           .order_by(OUTBOX.c.next_attempt_at)
                                           .limit(wanted)).scalars())
                rows = []
                if ids:
                    session.execute(sa.update(OUTBOX).where(OUTBOX.c.id.in_(ids))
                                    .values(state="sending", lease_until=lease_until,
                                            lease_owner=self.owner))
                    rows = session.execute(sa.select(*self._COLUMNS)
                                           .where(OUTBOX.c.id.in_(ids))).all()
            rows = sorted(rows, key=lambda r: r[0])
            return rows, self._db_context(session, rows, now)  # in the same transaction

    def _db_context(self, session: Session, rows: list, now: dt.datetime) -> _Context:
        subscriber_ids = sorted({r[2] for r in rows if r[2] is not None})
        campaign_ids = sorted({r[1] for r in rows if r[1] not in self._definitions})
        context = _Context({}, {}, {}, {})
        if rows:
            if subscriber_ids:
                cutoff = consent_cutoff(now, self.consent_months)
                for sid, area, token, consented_at in session.execute(
                        sa.select(SUBSCRIBERS.c.id, SUBSCRIBERS.c.area, SUBSCRIBERS.c.address,
                                  SUBSCRIBERS.c.consented_at)
                        .where(SUBSCRIBERS.c.id.in_(subscriber_ids))):
                    if _aware(consented_at) < cutoff:
                        context.expired.add(sid)  # opted out; deleted at the next flush
                    else:
                        context.subscribers[sid] = (area, token)
                for sid, sent_at in session.execute(
                        sa.select(OUTBOX.c.subscriber_id, OUTBOX.c.sent_at)
                        .where(OUTBOX.c.subscriber_id.in_(subscriber_ids),
                               OUTBOX.c.state == "sent", OUTBOX.c.sent_at > now - WEEK)):
                    context.recent.setdefault(sid, []).append(_aware(sent_at))
            areas = sorted({a for a, _ in context.subscribers.values()
                            if a and a not in self._countries})
            if areas:
                if self._has_places is None:
                    self._has_places = sa.inspect(session.connection()).has_table("places")
                context.countries = dict.fromkeys(areas)
                context.countries.update(_countries(session, areas, self._has_places))
            if campaign_ids:
                context.campaigns = dict(session.execute(
                    sa.select(CAMPAIGNS.c.id, CAMPAIGNS.c.definition)
                    .where(CAMPAIGNS.c.id.in_(campaign_ids))).all())
        return context

    # only over a row this run still holds: never over a final state, nor over a row another
    # dispatcher took back (or holds now)
    _WRITE = (sa.update(OUTBOX)
              .where(OUTBOX.c.id == sa.bindparam("b_id"), OUTBOX.c.state == "sending",
                     OUTBOX.c.lease_owner == sa.bindparam("b_owner"))
              .values(state=sa.bindparam("b_state"), attempts=sa.bindparam("b_attempts"),
                      next_attempt_at=sa.bindparam("b_next"), lease_until=None,
                      lease_owner=None, sent_at=sa.bindparam("b_sent_at"),
                      provider_ref=sa.bindparam("b_ref"), error=sa.bindparam("b_error")))

    def _mine(self, ids: Sequence[int]) -> tuple:
        """The conditions of this run's rows among ``ids``: still ``sending``, its owner id."""
        return (OUTBOX.c.id.in_(ids), OUTBOX.c.state == "sending",
                OUTBOX.c.lease_owner == self.owner)

    def _db_write(self, writes: list[dict], releases: list[int]) -> set[int]:
        """Writes the outcomes and gives the released rows back, each only if this run still
        holds its row; returns the ids of those it no longer held (nothing written for them)."""
        ids = [w["b_id"] for w in writes] + releases
        for attempt in range(5):
            try:
                with self._sessions.begin() as session:
                    # which rows are still ours, locked until the commit (PostgreSQL: FOR
                    # UPDATE; SQLite: the database's write lock), so that none is taken back
                    # between this and the writes
                    if self._dialect == "postgresql":
                        owned: set[int] = set()
                        for start in range(0, len(ids), CLAIM_MAX):
                            owned.update(session.execute(
                                sa.select(OUTBOX.c.id)
                                .where(*self._mine(ids[start:start + CLAIM_MAX]))
                                .order_by(OUTBOX.c.id).with_for_update()).scalars())
                    else:
                        _lock_sqlite(session)
                        owned = self._db_owned(session, ids)
                    if len(owned) < len(ids):
                        writes = [w for w in writes if w["b_id"] in owned]
                        releases = [i for i in releases if i in owned]
                    # the writes keep their conditions: a row is never written over unless ours
                    if writes and not (self._psycopg2 and _write_from_values(session, writes)):
                        session.execute(self._WRITE, writes)
                    for start in range(0, len(releases), CLAIM_MAX):
                        session.execute(
                            sa.update(OUTBOX).where(*self._mine(releases[start:start + CLAIM_MAX]))
                            .values(state="pending", lease_until=None, lease_owner=None))
                return set(ids) - owned
            except sa.exc.OperationalError:
                if attempt == 4:
                    raise
                time.sleep(0.2 * (attempt + 1))
        raise AssertionError("unreachable")  # pragma: no cover

    def _db_owned(self, session: Session, ids: Sequence[int]) -> set[int]:
        owned: set[int] = set()
        for start in range(0, len(ids), CLAIM_MAX):
            owned.update(session.execute(sa.select(OUTBOX.c.id)
                                         .where(*self._mine(ids[start:start + CLAIM_MAX])))
                         .scalars())
        return owned

    def _db_takeback(self, now: dt.datetime) -> int:
        with self._sessions.begin() as session:
            result = session.execute(
                sa.update(OUTBOX).where(OUTBOX.c.state == "sending", OUTBOX.c.lease_until < now)
                .values(state="pending", lease_until=None, lease_owner=None))
            return result.rowcount or 0

    def _db_renew(self, ids: list[int], lease_until: dt.datetime) -> set[int]:
        """Renews the lease of the rows among ``ids`` this run still holds (``sending`` under
        its owner id) and returns their ids, read in the same transaction after the update
        (SQLAlchemy 1.4 has no RETURNING on SQLite): the others were taken back."""
        with self._sessions.begin() as session:
            for start in range(0, len(ids), CLAIM_MAX):
                session.execute(sa.update(OUTBOX).where(*self._mine(ids[start:start + CLAIM_MAX]))
                                .values(lease_until=lease_until))
            return self._db_owned(session, ids)


def _lock_sqlite(session: Session) -> None:
    """Takes SQLite's one write lock for the rest of the transaction (a write that changes
    nothing), so that no other process writes between what this transaction reads and writes."""
    session.execute(sa.update(OUTBOX).where(OUTBOX.c.id == -1).values(state=OUTBOX.c.state))


_WRITE_KEYS = ("b_id", "b_state", "b_attempts", "b_next", "b_sent_at", "b_ref", "b_error",
               "b_owner")
_WRITE_FROM_VALUES = (
    "UPDATE outbox SET state = v.state, attempts = v.attempts, next_attempt_at = v.next_at, "
    "lease_until = NULL, lease_owner = NULL, sent_at = v.sent_at, provider_ref = v.ref, "
    "error = v.error "
    "FROM (VALUES %s) AS v (id, state, attempts, next_at, sent_at, ref, error, owner) "
    "WHERE outbox.id = v.id AND outbox.state = 'sending' AND outbox.lease_owner = v.owner")


def _write_from_values(session: Session, writes: list[dict]) -> bool:
    """PostgreSQL through psycopg2: one ``UPDATE .. FROM (VALUES ..)`` per 500 rows
    (executemany makes a round trip per row: 46 ms for 200 rows against 6 ms). False when
    psycopg2's extras cannot be imported (then the caller uses executemany)."""
    try:
        from psycopg2.extras import execute_values
    except ImportError:  # pragma: no cover
        return False
    cursor = session.connection().connection.cursor()  # the pool's proxy of psycopg2's
    try:
        execute_values(cursor, _WRITE_FROM_VALUES,
                       [tuple(w[k] for k in _WRITE_KEYS) for w in writes],
                       template="(%s, %s, %s, %s::timestamptz, %s::timestamptz, %s, %s, %s)",
                       page_size=CLAIM_MAX)
    finally:
        cursor.close()
    return True


def _countries(session: Session, areas: list[str], has_places: bool = True) -> dict[str, str]:
    """The country of each area code: the gazetteer's places table, else a code the directory
    made (``dir-ng-town-...``), else a p-code's or country code's first two letters."""
    from bot.services.lookup import COUNTRY_TIMEZONES
    from bot.services.models import Place as PlaceRow

    found: dict[str, str] = {}
    if has_places:
        found = dict(session.execute(sa.select(PlaceRow.code, PlaceRow.country)
                                     .where(PlaceRow.code.in_(areas))).all())
    for area in areas:
        if area in found:
            continue
        if area.startswith("dir-") and len(area) > 6 and area[6] == "-":
            found[area] = area[4:6].upper()
        elif area[:2].upper() in COUNTRY_TIMEZONES and (len(area) == 2 or not area[2].isalpha()):
            found[area] = area[:2].upper()
    return found


# -- the command -------------------------------------------------------------------------------

SMS_SECTION = "channels.sms.SmsInput"
TELEGRAM_SECTION = "channels.telegram.TelegramInput"


def _rate_argument(text: str) -> float:
    if text.strip().lower() in ("unlimited", "none", "0", "inf"):
        return float("inf")
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a rate: {text!r} (a number or 'unlimited')") from None
    if not value > 0:
        raise argparse.ArgumentTypeError("a rate must be above 0 (or 'unlimited')")
    return value


def parser() -> argparse.ArgumentParser:
    from bot.settings import PROJECT_ROOT

    p = argparse.ArgumentParser(
        prog="python -m bot.campaigns.dispatch",
        description="Send the campaign outbox at the providers' rates (resumable).")
    p.add_argument("--campaign", help="only this campaign (default: every queued campaign)")
    p.add_argument("--credentials", default=str(PROJECT_ROOT / "credentials.yml"),
                   help="the Rasa server's credentials file (default: the project's)")
    p.add_argument("--once", action="store_true",
                   help="send what is due now and exit (default: wait for deferred and retried "
                        "messages until the campaign is done)")
    p.add_argument("--lease-seconds", type=float, default=30.0,
                   help="how long a claimed message is held before another dispatcher may "
                        "take it back (default 30; renewed while working)")
    p.add_argument("--sms-rate", type=_rate_argument,
                   help="SMS per second (default: the deployment's "
                        "campaigns.twilio_messages_per_second)")
    p.add_argument("--telegram-rate", type=_rate_argument,
                   help="Telegram messages per second (default: the deployment's "
                        "campaigns.telegram_messages_per_second)")
    p.add_argument("--max-in-flight", type=int, default=200,
                   help="requests under way at once per provider (default 200)")
    p.add_argument("--max-attempts", type=int, default=MAX_ATTEMPTS)
    p.add_argument("--json", action="store_true",
                   help="print the run's figures as one JSON line on stdout at the end")
    return p


@dataclass
class Configured:
    """A dispatcher ready to run, with what to close after it."""

    dispatcher: Dispatcher
    engine: Any
    senders: list

    async def close(self) -> None:
        for sender in self.senders:
            await sender.close()
        self.engine.dispose()


def build(credentials: Path, campaign: Optional[str] = None, *,
          sms_rate: Optional[float] = None, telegram_rate: Optional[float] = None,
          max_in_flight: int = 200, lease_seconds: float = 30.0,
          max_attempts: int = MAX_ATTEMPTS) -> Configured:
    """A dispatcher from the settings (environment), the deployment file, the secrets file
    and the credentials file, for the command or ``helpline campaign send``; senders only for
    the providers with messages waiting. Rates default to the deployment's.

    Raises:
        DispatchError: saying what is wrong (never a secret's value).
    """
    from bot.deployment import DeploymentError, load_deployment
    from bot.privacy.keys import SecretsError, load_secrets
    from bot.settings import Settings, SettingsError
    from bot.storage import SchemaError, make_engine, require_current, session_factory

    try:
        settings = Settings.from_env()
        deployment = load_deployment(settings.deployment_file)
        secrets = load_secrets(settings.secrets_file, create=False)
    except (SettingsError, DeploymentError, SecretsError) as exc:
        raise DispatchError(str(exc)) from None
    engine = make_engine(settings.database_url)
    try:
        try:
            require_current(engine)
        except SchemaError as exc:
            raise DispatchError(str(exc)) from None
        except sa.exc.DBAPIError as exc:
            raise DispatchError(f"cannot open the database ({type(exc.orig).__name__})") from None
        sessions = session_factory(engine)
        channels = _waiting_channels(sessions, campaign)
        senders = _senders(Path(credentials), {LANE_OF[c] for c in channels}, max_in_flight)
        limits = Limits.of(deployment, sms_per_second=sms_rate,
                           telegram_per_second=telegram_rate, max_in_flight=max_in_flight)
        dispatcher = Dispatcher(sessions, Subscribers(sessions, secrets.fernet()), senders,
                                lease_seconds=lease_seconds, limits=limits,
                                deployment=deployment, max_attempts=max_attempts)
        return Configured(dispatcher, engine, list(senders.values()))
    except BaseException:
        engine.dispose()
        raise


def configure(args: argparse.Namespace) -> Configured:
    """``build`` from the command's arguments."""
    return build(Path(args.credentials), args.campaign, sms_rate=args.sms_rate,
                 telegram_rate=args.telegram_rate, max_in_flight=args.max_in_flight,
                 lease_seconds=args.lease_seconds, max_attempts=args.max_attempts)


def _waiting_channels(sessions: "sessionmaker[Session]", campaign: Optional[str]) -> set[str]:
    with sessions() as session:
        conditions = [OUTBOX.c.state.in_(("pending", "sending"))]
        if campaign is not None:
            found = session.execute(sa.select(CAMPAIGNS.c.id).where(CAMPAIGNS.c.name == campaign)).scalar()
            if found is None:
                names = list(session.execute(sa.select(CAMPAIGNS.c.name)
                                             .order_by(CAMPAIGNS.c.queued_at.desc()).limit(5)).scalars())
                known = f" (latest queued: {', '.join(names)})" if names else " (none is queued)"
                raise DispatchError(f"no campaign named {campaign!r}{known}")
            conditions.append(OUTBOX.c.campaign_id == found)
        return set(session.execute(sa.select(OUTBOX.c.channel).where(*conditions).distinct()).scalars())


def _senders(credentials: Path, lanes: set[str], connections: int) -> dict[str, Sender]:
    """Senders for the providers with messages waiting, from the credentials file."""
    from bot.campaigns.senders import SmsSender, TelegramSender

    if not lanes:
        return {}
    from rasa.shared.utils.io import read_config_file

    try:
        sections = read_config_file(credentials) or {}
    except Exception as exc:  # Rasa's errors name the file and the variable, never a value
        raise DispatchError(f"credentials: {credentials}: {exc}") from None
    senders: dict[str, Sender] = {}
    if "twilio" in lanes:
        section = sections.get(SMS_SECTION)
        if not isinstance(section, Mapping):
            raise DispatchError(f"credentials: {credentials} has no {SMS_SECTION} section, and "
                                f"SMS messages are waiting (it needs account_sid, auth_token, sender)")
        from channels.twilio_api import TWILIO_API_URL, TwilioConfig

        missing = [k for k in ("account_sid", "auth_token", "sender")
                   if not str(section.get(k) or "").strip()]
        if missing:
            raise DispatchError(f"credentials: {SMS_SECTION}: missing {', '.join(missing)}")
        try:
            config = TwilioConfig(str(section["account_sid"]).strip(),
                                  str(section["auth_token"]).strip(),
                                  str(section["sender"]).strip(),
                                  api_url=str(section.get("api_url") or TWILIO_API_URL).strip())
        except ValueError as exc:
            raise DispatchError(f"credentials: {SMS_SECTION}: {exc}") from None
        senders["twilio"] = SmsSender(config, connections)
    if "telegram" in lanes:
        from channels.telegram_api import TelegramConfig, TelegramSettingsError

        try:
            config = TelegramConfig.from_credentials(sections.get(TELEGRAM_SECTION))
        except TelegramSettingsError as exc:
            raise DispatchError(f"credentials: {exc}") from None
        senders["telegram"] = TelegramSender.from_config(config, connections)
    return senders


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parser().parse_args(argv)
    from bot.settings import Settings, SettingsError

    try:
        level = Settings.from_env().log_level
    except SettingsError:
        level = "INFO"
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from channels.telegram_api import quiet_library_logs

    quiet_library_logs()
    try:
        configured = configure(args)
    except DispatchError as exc:
        print(f"dispatch: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        import uvloop

        loop = uvloop.new_event_loop()
    except ImportError:  # pragma: no cover
        loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(_serve(configured, args))
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


async def _serve(configured: Configured, args: argparse.Namespace) -> int:
    dispatcher = configured.dispatcher
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, dispatcher.stop)
    last = [0.0]

    def progress(stats: DispatchStats) -> None:
        now = time.monotonic()
        if now - last[0] >= 5.0:
            last[0] = now
            logger.info("dispatch: %s", stats.line())

    code = EXIT_ERROR
    try:
        stats = await dispatcher.run(args.campaign, until_done=not args.once, progress=progress)
        code = EXIT_DONE if stats.done or (args.once and not dispatcher.stop_requested) \
            else EXIT_STOPPED
    except DispatchError as exc:
        print(f"dispatch: {exc}", file=sys.stderr)
        code = EXIT_CONFIG
    except Exception as exc:  # the type only: a database error's text may quote values
        logger.error("dispatch: stopped by an unexpected %s; the messages not recorded will be "
                     "taken back by the next run", type(exc).__name__)
        code = EXIT_ERROR
    finally:
        await configured.close()
        if args.json:
            figures = dispatcher.stats.as_dict()
            figures["exit"] = code
            print(json.dumps(figures), flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
