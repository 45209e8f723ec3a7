"""Putting a validated campaign in the outbox, previewing it, and its status.

- ``queue_campaign``: one ``campaigns`` row (the definition as JSON and the file's hash) and
  one pending ``outbox`` row per subscriber of the audience, plus one for the NGO's Telegram
  channel when the campaign posts there. Each row's idempotency key is the sha256 of
  ``"<campaign name>:<conversation id>"`` (``"<campaign name>:telegram_channel"``), unique in
  the table: queueing the same file again adds only the subscribers who joined since, never a
  second row for anyone; a changed file under a queued name is refused. Rows are inserted in
  batches (``INSERT ... ON CONFLICT DO NOTHING``), all in one transaction.
- ``queue_for_subscribers``: the same for a list (or a SELECT) of subscriber ids chosen by the
  caller instead of the definition's audience (the consent reminders,
  ``bot.campaigns.reminders``), with a hook that writes in the same transaction; nothing (no
  campaign row) when none of them is reachable.
- ``preview``: each language as it will be sent (SMS after ``sms_friendly``, Telegram), its
  SMS segments and encoding, the audience per language and channel, the estimated SMS cost, and
  when the window next opens in each time zone of the audience.
- ``status``: the outbox's counts by state, how many left since queueing (unsubscribed or
  removed), the first and last message sent.

Nothing here reads or decrypts an address. Synchronous SQLAlchemy, like ``Subscribers``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from decimal import Decimal
from typing import Callable, Iterable, Iterator, Optional, Sequence, Union

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from bot.campaigns.definition import (CampaignDefinition, CampaignError, PlacesLike,
                                      timezone_for_area)
from bot.campaigns.models import (OUTBOX_STATES, SUBSCRIBER_CHANNELS, Campaign, OutboxMessage,
                                  Subscriber)
from bot.campaigns.subscribers import Subscribers, utcnow
from bot.deployment import Deployment

TELEGRAM_CHANNEL = "telegram_channel"  # outbox.channel of the post to the NGO's channel
BATCH_SIZE = 5000
_RETRIES = 3  # a subscriber who leaves while the rows are written: try again


def idempotency_key(campaign_name: str, conversation_id: str) -> str:
    """The outbox key of one campaign to one recipient (a conversation id or
    ``"telegram_channel"``)."""
    return hashlib.sha256(f"{campaign_name}:{conversation_id}".encode("utf-8")).hexdigest()


def _aware(moment: Optional[dt.datetime]) -> Optional[dt.datetime]:
    """SQLite gives naive datetimes back; all stored times are UTC."""
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=dt.timezone.utc)
    return moment


def _audience_rows(definition: CampaignDefinition, subscribers: Subscribers) -> sa.Select:
    """(id, conversation_id, channel, language, area) of the audience's reachable subscribers."""
    ids = subscribers.audience(definition.languages, definition.area_codes,
                               definition.channels).subquery()
    return (sa.select(Subscriber.id, Subscriber.conversation_id, Subscriber.channel,
                      Subscriber.language, Subscriber.area)
            .where(Subscriber.id.in_(sa.select(ids.c.id)))
            .order_by(Subscriber.id))


def empty_audience_error(definition: CampaignDefinition) -> CampaignError:
    areas = ", ".join(definition.areas) if definition.areas else "every area"
    channels = ", ".join(definition.channels) or "none"
    return CampaignError([
        f"audience: no subscriber matches (languages {', '.join(definition.languages) or 'none'}; "
        f"areas {areas}; channels {channels}) and there is no telegram_channel: nothing to send"])


# -- queueing ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueResult:
    campaign_id: Optional[int]  # None: nothing to queue and no campaign row (queue_for_subscribers)
    name: str
    created: bool  # the campaign was queued for the first time
    added: int  # outbox rows added now (the Telegram channel's post included)
    already: int  # rows that were in the outbox before (never added twice)
    channel_post: bool  # one of the rows is the post to the NGO's Telegram channel

    @property
    def total(self) -> int:
        return self.added + self.already


def queue_campaign(definition: CampaignDefinition, sessions: "sessionmaker[Session]",
                   subscribers: Subscribers,
                   clock: Callable[[], dt.datetime] = utcnow) -> QueueResult:
    """Queues ``definition`` for its audience (see the module's docstring).

    Raises:
        CampaignError: the name was queued from another file, or the audience is empty and
            there is no telegram_channel.
    """
    def audience(session: Session) -> Sequence:
        if not (definition.channels and definition.languages):
            return []
        return session.execute(_audience_rows(definition, subscribers)).all()

    return _queue(definition, sessions, audience, clock, channel_post=True, required=True)


# What a hook of queue_for_subscribers gets: the transaction, the ids of the reachable
# subscribers among those asked for (queued now or before), the queueing's time.
AfterQueueing = Callable[[Session, list, dt.datetime], None]


def queue_for_subscribers(definition: CampaignDefinition,
                          subscriber_ids: Union[sa.sql.Select, Iterable[int]],
                          sessions: "sessionmaker[Session]",
                          clock: Callable[[], dt.datetime] = utcnow,
                          language_of: Optional[Callable[[str], str]] = None,
                          then: Optional[AfterQueueing] = None) -> QueueResult:
    """Queues ``definition`` for the reachable subscribers (address attached, on SMS or
    Telegram) among ``subscriber_ids``: a list, or a SELECT of ids run in the queueing's
    transaction. The definition's audience (languages, areas, channels) and Telegram channel
    post are not applied: the caller chose the recipients. Each row has its subscriber's
    language, or ``language_of(language)`` (for one the texts lack). Keys, batches, retries
    and the refusal of a changed definition under a queued name are those of
    ``queue_campaign``; when none is reachable and no campaign has the name, nothing is
    written (``campaign_id`` None). ``then(session, ids, now)`` runs in the same transaction
    after the inserts, with the ids of the reachable subscribers (their rows queued now or
    before).

    Raises:
        CampaignError: the name was queued with another definition.
    """
    def audience(session: Session) -> Sequence:
        columns = (Subscriber.id, Subscriber.conversation_id, Subscriber.channel,
                   Subscriber.language, Subscriber.area)
        reachable = (Subscriber.address.is_not(None), Subscriber.channel.in_(SUBSCRIBER_CHANNELS))
        if isinstance(subscriber_ids, sa.sql.Select):
            ids = subscriber_ids.subquery()
            found = session.execute(sa.select(*columns)
                                    .where(Subscriber.id.in_(sa.select(ids.c.id)), *reachable)
                                    .order_by(Subscriber.id)).all()
        else:
            wanted, found = sorted(set(subscriber_ids)), []
            for start in range(0, len(wanted), 500):  # short IN lists for SQLite
                found += session.execute(
                    sa.select(*columns)
                    .where(Subscriber.id.in_(wanted[start:start + 500]), *reachable)
                    .order_by(Subscriber.id)).all()
        if language_of is None:
            return found
        return [(sid, conversation, channel, language_of(language), area)
                for sid, conversation, channel, language, area in found]

    return _queue(definition, sessions, audience, clock, channel_post=False, required=False,
                  then=then)


def _queue(definition: CampaignDefinition, sessions: "sessionmaker[Session]",
           audience: Callable[[Session], Sequence], clock: Callable[[], dt.datetime],
           channel_post: bool, required: bool, then: Optional[AfterQueueing] = None
           ) -> QueueResult:
    file_hash = definition.file_hash or hashlib.sha256(definition.to_json().encode()).hexdigest()
    for attempt in range(_RETRIES):
        try:
            return _queue_once(definition, file_hash, sessions, audience, clock, channel_post,
                               required, then)
        except sa.exc.IntegrityError:
            # a concurrent queueing of the same name, or a subscriber deleted between the
            # SELECT and the INSERT (its foreign key): the transaction was rolled back whole
            if attempt == _RETRIES - 1:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _queue_once(definition: CampaignDefinition, file_hash: str,
                sessions: "sessionmaker[Session]", audience_of: Callable[[Session], Sequence],
                clock: Callable[[], dt.datetime], channel_post: bool, required: bool,
                then: Optional[AfterQueueing]) -> QueueResult:
    """``audience_of(session)``: (id, conversation_id, channel, language, area) rows;
    ``channel_post``: the definition's Telegram channel post too; ``required``: refuse an
    empty audience without a post (else write nothing)."""
    now = clock()
    name = definition.name
    post = definition.telegram_channel if channel_post else None
    with sessions.begin() as session:
        campaign = session.execute(
            sa.select(Campaign).where(Campaign.name == name)).scalars().first()
        if campaign is not None and campaign.file_hash != file_hash:
            queued = _aware(campaign.queued_at)
            raise CampaignError([
                f"name: a campaign named {name!r} was queued on {queued:%Y-%m-%d %H:%M} UTC "
                f"from a different file; a changed campaign needs a new name (its queued "
                f"messages are kept as they were)"])
        audience = audience_of(session)
        if not audience and post is None:
            if required:
                raise empty_audience_error(definition)
            if campaign is None:
                return QueueResult(None, name, False, 0, 0, False)
        created = campaign is None
        if created:
            campaign = Campaign(name=name, definition=definition.to_json(), file_hash=file_hash,
                                queued_at=now)
            session.add(campaign)
            session.flush()
        existing = set(session.execute(
            sa.select(OutboxMessage.idempotency_key)
            .where(OutboxMessage.campaign_id == campaign.id)).scalars())
        rows = []
        for subscriber_id, conversation_id, channel, language, _area in audience:
            key = idempotency_key(name, conversation_id)
            if key not in existing:
                existing.add(key)
                rows.append(_row(campaign.id, subscriber_id, key, channel, language, now))
        if post is not None:
            key = idempotency_key(name, TELEGRAM_CHANNEL)
            if key not in existing:
                rows.append(_row(campaign.id, None, key, TELEGRAM_CHANNEL, post.language, now))
        statement = _insert_ignoring_duplicates(session)
        for batch in _batches(rows, BATCH_SIZE):
            session.execute(statement, batch)
        if then is not None:
            then(session, [row[0] for row in audience], now)
        already = len(existing) - len(rows)
        return QueueResult(campaign.id, name, created, len(rows), already,
                           post is not None)


def _row(campaign_id: int, subscriber_id: Optional[int], key: str, channel: str, language: str,
         now: dt.datetime) -> dict:
    return {"campaign_id": campaign_id, "subscriber_id": subscriber_id, "idempotency_key": key,
            "channel": channel, "language": language, "state": "pending", "attempts": 0,
            "next_attempt_at": now}


def _insert_ignoring_duplicates(session: Session):
    """INSERT into outbox that skips a key already there (a concurrent queueing)."""
    table = OutboxMessage.__table__
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:  # the keys were filtered above; a concurrent duplicate fails and is retried
        return sa.insert(table)
    return insert(table).on_conflict_do_nothing(index_elements=["idempotency_key"])


def _batches(rows: list, size: int) -> Iterator[list]:
    for start in range(0, len(rows), size):
        yield rows[start:start + size]


# -- preview -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LanguagePreview:
    language: str
    sms_text: Optional[str]  # as sent (sms_friendly); None: no SMS audience in this language
    telegram_text: Optional[str]  # as sent; None: not sent on Telegram in this language
    encoding: str  # of the SMS: "GSM-7" or "UCS-2"
    sms_characters: int  # septets (GSM-7) or UTF-16 units (UCS-2)
    segments: int  # SMS segments per message
    recipients: dict  # channel -> subscribers (sms, telegram)
    sms_cost: Decimal  # recipients["sms"] x segments x price


@dataclass(frozen=True)
class WindowOpening:
    timezone: str
    recipients: int  # subscribers (and the channel post) whose local time is this zone's
    open_now: bool
    opens: dt.datetime  # local; ``open_now``: the moment of the preview
    closes: dt.datetime  # local


@dataclass(frozen=True)
class Preview:
    name: str
    languages: tuple[LanguagePreview, ...]
    recipients: int  # subscribers in the audience
    sms_recipients: int
    sms_segments: int  # segments of all SMS together
    price_per_segment: Decimal
    currency: str
    estimated_cost: Decimal
    windows: tuple[WindowOpening, ...]
    cap_per_week: int
    telegram_channel: Optional[tuple[str, str]]  # (chat, language)


def preview(definition: CampaignDefinition, sessions: "sessionmaker[Session]",
            subscribers: Subscribers, deployment: Deployment, places: PlacesLike,
            clock: Callable[[], dt.datetime] = utcnow) -> Preview:
    """What ``definition`` would send now (reads the subscribers; writes nothing)."""
    from channels.segments import count_segments

    price = deployment.campaigns.sms_price_per_segment
    default_zone = deployment.human_cover.timezone
    counts: dict[tuple[str, str], int] = {}
    zones: dict[str, int] = {}
    if definition.channels and definition.languages:
        ids = subscribers.audience(definition.languages, definition.area_codes,
                                   definition.channels).subquery()
        query = (sa.select(Subscriber.language, Subscriber.channel, Subscriber.area,
                           sa.func.count())
                 .where(Subscriber.id.in_(sa.select(ids.c.id)))
                 .group_by(Subscriber.language, Subscriber.channel, Subscriber.area))
        with sessions() as session:
            for language, channel, area, number in session.execute(query):
                counts[(language, channel)] = counts.get((language, channel), 0) + number
                zone = timezone_for_area(area, places, default_zone)
                zones[zone] = zones.get(zone, 0) + number
    post = definition.telegram_channel
    if post is not None:  # the channel has no local time: the deployment's
        zones[default_zone] = zones.get(default_zone, 0) + 1
    shown = list(definition.languages)
    if post is not None and post.language not in shown:
        shown.append(post.language)
    languages = []
    for language in shown:
        in_audience = language in definition.languages
        recipients = ({channel: counts.get((language, channel), 0)
                       for channel in definition.channels} if in_audience else {})
        as_sms = definition.sms_text(language, deployment.sms.fold_accents)
        sms = as_sms if in_audience and "sms" in definition.channels else None
        segment = count_segments(as_sms)
        on_telegram = ((in_audience and "telegram" in definition.channels)
                       or (post is not None and post.language == language))
        languages.append(LanguagePreview(
            language=language, sms_text=sms,
            telegram_text=definition.telegram_text(language) if on_telegram else None,
            encoding="GSM-7" if segment.encoding == "gsm7" else "UCS-2",
            sms_characters=segment.units, segments=segment.segments, recipients=recipients,
            sms_cost=recipients.get("sms", 0) * segment.segments * price))
    now = clock()
    windows = []
    for zone, number in sorted(zones.items()):
        opens, closes = definition.next_window(now, zone)
        windows.append(WindowOpening(zone, number, definition.in_window(now, zone), opens, closes))
    return Preview(
        name=definition.name, languages=tuple(languages),
        recipients=sum(counts.values()),
        sms_recipients=sum(n for (_, channel), n in counts.items() if channel == "sms"),
        sms_segments=sum(lp.recipients.get("sms", 0) * lp.segments for lp in languages),
        price_per_segment=price, currency=deployment.campaigns.currency,
        estimated_cost=sum((lp.sms_cost for lp in languages), Decimal("0")),
        windows=tuple(windows), cap_per_week=definition.cap_per_week,
        telegram_channel=None if post is None else (post.chat, post.language))


def audience_size(definition: CampaignDefinition, sessions: "sessionmaker[Session]",
                  subscribers: Subscribers) -> int:
    """How many subscribers the campaign reaches now (the Telegram channel not counted)."""
    if not (definition.channels and definition.languages):
        return 0
    return subscribers.count(definition.languages, definition.area_codes, definition.channels)


# -- status ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CampaignStatus:
    name: str
    queued_at: dt.datetime
    counts: dict  # state -> rows, every state of OUTBOX_STATES
    opted_out_since: int  # left since queueing: state opted_out, or the subscriber gone before sending
    first_sent: Optional[dt.datetime]
    last_sent: Optional[dt.datetime]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def status(name: str, sessions: "sessionmaker[Session]") -> CampaignStatus:
    """The outbox figures of the campaign named ``name``.

    "Opted out since" counts the rows in state opted_out, and the rows not (yet) sent nor
    failed whose subscriber is gone (unsubscribed, quick exit: ``subscriber_id`` set NULL). A
    failed row whose subscriber was removed for the failure counts as failed only.

    Raises:
        CampaignError: no campaign has that name.
    """
    with sessions() as session:
        campaign = session.execute(
            sa.select(Campaign.id, Campaign.queued_at).where(Campaign.name == name)).first()
        if campaign is None:
            names = list(session.execute(
                sa.select(Campaign.name).order_by(Campaign.queued_at.desc()).limit(5)).scalars())
            known = f" (latest queued: {', '.join(names)})" if names else " (none is queued yet)"
            raise CampaignError([f"no campaign named {name!r}{known}"])
        campaign_id, queued_at = campaign
        mine = OutboxMessage.campaign_id == campaign_id
        counts = {state: 0 for state in OUTBOX_STATES}
        for state, number in session.execute(
                sa.select(OutboxMessage.state, sa.func.count()).where(mine)
                .group_by(OutboxMessage.state)):
            counts[state] = number
        gone = sa.and_(OutboxMessage.subscriber_id.is_(None),
                       OutboxMessage.channel != TELEGRAM_CHANNEL,
                       OutboxMessage.state.in_(("pending", "sending")))
        opted_out = session.execute(
            sa.select(sa.func.count()).where(mine, sa.or_(OutboxMessage.state == "opted_out", gone))
        ).scalar() or 0
        first, last = session.execute(
            sa.select(sa.func.min(OutboxMessage.sent_at), sa.func.max(OutboxMessage.sent_at))
            .where(mine, OutboxMessage.state == "sent")).one()
    return CampaignStatus(name, _aware(queued_at), counts, opted_out, _aware(first), _aware(last))
