"""Reminding subscribers before their consent runs out (``helpline campaign remind``).

A consent lasts the deployment's ``campaigns.consent_months`` and then the subscriber is
deleted (``bot.campaigns.subscribers``). A few days before, each reachable subscriber gets one
reminder saying that the messages end soon and how to keep them (the language's own word for
JOIN: INSCRIRE, ALTA, اشتراك, which renews the consent) or stop them now (STOP). The text is
the catalog's ``utter_subscribe_reminder`` in the subscriber's language, ``{org_name}``
filled with the deployment's ``organisation.name``.

The reminders go through the campaign machinery, not beside it: ``queue_reminders`` builds a
campaign definition named ``consent-reminder-<UTC date>`` (``reminder_definition``: the texts
of the deployment's languages, every area and both subscriber channels, the window the
deployment's ``campaigns.daytime``, ``cap_per_week`` its ``max_per_week``, the flag
``consent_reminder``), validated like a campaign file (``parse_campaign``: SMS segments,
the stop word in capitals), and queues it with ``queue.queue_for_subscribers`` for the
subscribers ``Subscribers.due_for_reminder`` selects: the address attached, the consent still
valid but ending within ``days`` days, not reminded since it was given. In the same
transaction their ``reminded_at`` is set (only where that condition still holds: a consent
renewed meanwhile is not marked). The outbox rows have the usual idempotency keys, so a second
run the same day adds nothing, and a subscriber marked is not selected again the next days;
a renewal (``Subscribers.consent``) clears ``reminded_at``, and the renewed consent gets its
own reminder before it ends. The dispatcher sends them like any campaign, within the window
and the weekly cap (the consent promised at most ``max_per_week`` a week; a reminder queued
14 days ahead has time to wait for the cap).

A subscriber whose language the deployment no longer offers gets the default language's text.
When the day's campaign was already queued with another text (the organisation's name or the
catalog changed since the morning), the day's later reminders keep the text it was queued
with (``ReminderResult.kept_text``); the new one applies from the next day.

Nothing here reads or decrypts an address.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Callable, Optional

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from bot.campaigns.definition import (REMINDER_PREFIX, CampaignDefinition, CampaignError,
                                      parse_campaign)
from bot.campaigns.models import Campaign, Subscriber
from bot.campaigns.queue import queue_for_subscribers
from bot.campaigns.subscribers import Subscribers, reminder_due, utcnow
from bot.deployment import Deployment

MESSAGE = "utter_subscribe_reminder"  # the catalog's reminder text
DEFAULT_DAYS = 14
MAX_DAYS = 60
_MARK_CHUNK = 500  # short IN lists for SQLite


def reminder_name(day: dt.date) -> str:
    """The name of the day's reminder campaign: ``consent-reminder-2026-11-26``."""
    return f"{REMINDER_PREFIX}{day.isoformat()}"


def reminder_window(deployment: Deployment) -> dict[str, str]:
    """The deployment's ``campaigns.daytime`` as a campaign window (an end at 24:00 is 23:59:
    a window ends within the day)."""
    start, end = deployment.campaigns.daytime
    end = min(end, 24 * 60 - 1)
    return {"start": "%02d:%02d" % divmod(start, 60), "end": "%02d:%02d" % divmod(end, 60)}


def reminder_texts(deployment: Deployment, catalog: Any = None) -> dict[str, str]:
    """The reminder in each of the deployment's languages, ``{org_name}`` filled in."""
    if catalog is None:
        from bot.catalog import load_catalog

        catalog = load_catalog()
    return {language: catalog.render(MESSAGE, language,
                                     org_name=deployment.organisation_name)["text"]
            for language in deployment.languages}


def reminder_definition(deployment: Deployment, day: dt.date,
                        catalog: Any = None) -> CampaignDefinition:
    """The day's reminder campaign, validated as a campaign file is.

    Raises:
        CampaignError: a text does not fit ``sms.segment_budget`` (a long organisation name)
            or lacks a stop word in capitals; the problems name ``texts.<language>``.
    """
    data = {"name": reminder_name(day), "texts": reminder_texts(deployment, catalog),
            "window": reminder_window(deployment),
            "cap_per_week": deployment.campaigns.max_per_week}
    return parse_campaign(data, deployment, {}, consent_reminder=True)


def reminder_problems(deployment: Deployment, catalog: Any = None) -> list[str]:
    """What keeps the reminders from being queued with this deployment (``helpline check``):
    each text as ``queue_reminders`` would check it."""
    try:
        reminder_definition(deployment, dt.date(2000, 1, 1), catalog)
    except CampaignError as exc:
        return [f"consent reminder (bot/messages/<language>.yml {MESSAGE}, with "
                f"organisation.name): {problem}" for problem in exc.problems]
    return []


def check_days(days: Any) -> int:
    """``days`` as a whole number from 1 to ``MAX_DAYS``.

    Raises:
        ValueError: with a message for the command line.
    """
    try:
        number = int(str(days).strip())
    except ValueError:
        number = 0
    if not 1 <= number <= MAX_DAYS:
        raise ValueError(f"--days must be a whole number of days from 1 to {MAX_DAYS} "
                         f"(how long before the consent ends to remind), got {days!r}")
    return number


@dataclass(frozen=True)
class ReminderResult:
    name: str  # the day's campaign
    queued: int  # reminders queued now
    earlier: int  # the day's reminders queued by an earlier run
    kept_text: bool  # the day's campaign was queued with another text, which it keeps
    campaign_id: Optional[int]  # None: nobody to remind and no campaign queued today


def queue_reminders(deployment: Deployment, sessions: "sessionmaker[Session]",
                    subscribers: Subscribers, days: int = DEFAULT_DAYS,
                    clock: Callable[[], dt.datetime] = utcnow,
                    catalog: Any = None) -> ReminderResult:
    """Queues the day's reminders (see the module's docstring).

    Raises:
        ValueError: ``days`` outside 1..``MAX_DAYS``.
        CampaignError: the texts are not valid for the deployment, or a campaign that is not
            a reminder has the day's name.
    """
    days = check_days(days)
    now = clock()
    definition = reminder_definition(deployment, now.astimezone(dt.timezone.utc).date(), catalog)
    kept = False
    with sessions() as session:
        stored = session.execute(sa.select(Campaign.definition, Campaign.file_hash)
                                 .where(Campaign.name == definition.name)).first()
    if stored is not None:
        queued = CampaignDefinition.from_json(stored.definition, file_hash=stored.file_hash)
        if not queued.consent_reminder:
            raise CampaignError([f"name: a campaign named {definition.name!r} was queued that "
                                 f"is not a consent reminder; nothing was queued"])
        kept = queued != definition
        definition = queued
    months = deployment.campaigns.consent_months

    def mark(session: Session, ids: list, at: dt.datetime) -> None:
        for start in range(0, len(ids), _MARK_CHUNK):
            session.execute(sa.update(Subscriber)
                            .where(Subscriber.id.in_(ids[start:start + _MARK_CHUNK]),
                                   reminder_due(months, days, at))
                            .values(reminded_at=at)
                            .execution_options(synchronize_session=False))

    languages = set(definition.texts)

    def language_of(language: str) -> str:
        return language if language in languages else deployment.default_language

    result = queue_for_subscribers(definition, subscribers.due_for_reminder(months, days, now),
                                   sessions, clock=lambda: now, language_of=language_of,
                                   then=mark)
    return ReminderResult(definition.name, result.added, result.already, kept,
                          result.campaign_id)
