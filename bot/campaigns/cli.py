"""``helpline campaign ...``: check, preview, queue a campaign file; a queued campaign's status.

Usage:
    helpline campaign check FILE     validate the file against the deployment, the gazetteer
                                     and the subscribers (an empty audience is an error)
    helpline campaign preview FILE   each language as sent, SMS segments and encoding, the
                                     audience per language and channel, the estimated cost,
                                     when the sending window next opens per time zone
    helpline campaign queue FILE     put the campaign's messages in the outbox (nothing is
                                     sent); again: only subscribers who joined since
    helpline campaign status NAME    pending, sending, sent, failed, opted out since; first
                                     and last message sent
    helpline campaign remind [--days 14] [--credentials credentials.yml] [--send]
                                     (daily, from cron) queue one reminder to each reachable
                                     subscriber whose consent ends within --days (1-60) and
                                     who was not reminded for it yet, in the day's campaign
                                     consent-reminder-YYYY-MM-DD (bot.campaigns.reminders);
                                     --send: then send it as ``send`` does, else the running
                                     dispatcher sends it

Every command first deletes the subscribers whose consent ran out
(``campaigns.consent_months``), as ``helpline purge`` does, so that no count includes them.

Exit status 0 when done, 2 on bad input (an invalid file, an unknown campaign, an empty
audience, a changed file under a queued name, a database not migrated, a bad --days, reminder
texts the deployment cannot send); the problems go to stderr. Nothing here reads, decrypts or
prints an address: counts only.

``send`` (queue, then run the dispatcher with a progress bar) is added beside these: it can
use ``opened(settings)`` and ``load(context, file)`` as ``queue`` does.
"""

from __future__ import annotations

import datetime as dt
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Iterator

from bot.settings import Settings

ACTIONS = ("check", "preview", "queue", "send", "status", "remind")


def _days(text: str) -> int:
    """``--days``: a whole number from 1 to 60 (argparse's exit 2 and message otherwise)."""
    import argparse

    from bot.campaigns.reminders import check_days

    try:
        return check_days(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).replace("--days ", "", 1)) from None


def add_parser(commands: Any) -> None:
    """Adds ``campaign check|preview|queue|send|status|remind`` to the ``helpline``
    sub-commands."""
    parser = commands.add_parser(
        "campaign", help="awareness campaigns: check, preview, queue, send, status, remind")
    actions = parser.add_subparsers(dest="campaign_command", required=True)
    for action, text in (("check", "validate a campaign file"),
                         ("preview", "show what a campaign file would send, to whom, at what cost"),
                         ("queue", "put a campaign's messages in the outbox (sends nothing)")):
        actions.add_parser(action, help=text).add_argument("file")
    actions.add_parser("status", help="a queued campaign's figures").add_argument("name")
    send = actions.add_parser("send", help="queue a campaign and send it now, with a progress "
                                           "bar (the dispatcher in this process)")
    send.add_argument("file")
    send.add_argument("--credentials", default="credentials.yml",
                      help="the providers' credentials (as the Rasa server reads them)")
    send.add_argument("--once", action="store_true",
                      help="send what is due now, leave what waits for the window or the cap")
    remind = actions.add_parser(
        "remind", help="queue a reminder to the subscribers whose consent ends soon (daily)")
    remind.add_argument("--days", type=_days, default=14,
                        help="remind those whose consent ends within this many days (1-60; "
                             "default 14)")
    remind.add_argument("--credentials", default="credentials.yml",
                        help="with --send: the providers' credentials (as the Rasa server "
                             "reads them)")
    remind.add_argument("--send", action="store_true",
                        help="send the day's reminders now (the dispatcher in this process), "
                             "rather than leave them to the running dispatcher")


class CommandError(Exception):
    """Bad input: the message goes to stderr and the exit status is 2."""


@dataclass
class Context:
    settings: Settings
    deployment: Any  # bot.deployment.Deployment
    engine: Any
    sessions: Any  # sessionmaker
    gazetteer: Any  # bot.services.places.Gazetteer
    subscribers: Any  # bot.campaigns.subscribers.Subscribers


@contextmanager
def opened(settings: Settings, secrets: bool = False) -> Iterator[Context]:
    """The deployment, the migrated database, its gazetteer and subscribers.

    ``secrets=False``: the subscribers are only selected and counted, never decrypted, so a
    throw-away key stands in for the route keys (check, preview, queue and status work
    without the secrets file); ``send`` needs ``secrets=True``.

    Raises:
        CommandError: the deployment file is invalid, the schema is not current, the secrets
            cannot be read.
    """
    from cryptography.fernet import Fernet, MultiFernet

    from bot.campaigns.subscribers import Subscribers
    from bot.deployment import DeploymentError, load_deployment
    from bot.services.places import load_gazetteer
    from bot.storage import SchemaError, make_engine, require_current, session_factory

    try:
        deployment = load_deployment(settings.deployment_file)
    except DeploymentError as exc:
        raise CommandError(str(exc)) from None
    if secrets:
        from bot.privacy.keys import SecretsError, load_secrets

        try:
            fernet = load_secrets(settings.secrets_file, create=False).fernet()
        except SecretsError as exc:
            raise CommandError(f"secrets: {exc}") from None
    else:
        fernet = MultiFernet([Fernet(Fernet.generate_key())])
    engine = make_engine(settings.database_url)
    try:
        try:
            require_current(engine)
        except SchemaError as exc:
            raise CommandError(str(exc)) from None
        sessions = session_factory(engine)
        with sessions() as session:
            gazetteer = load_gazetteer(session)
        subscribers = Subscribers(sessions, fernet)
        # a consent that ran out is not an audience: deleted now rather than at the next purge
        expired = subscribers.expire(deployment.campaigns.consent_months)
        if expired:
            print(f"deleted {expired} subscriber(s) whose consent ran out "
                  f"(campaigns.consent_months)", file=sys.stderr)
        yield Context(settings, deployment, engine, sessions, gazetteer, subscribers)
    finally:
        engine.dispose()


def load(context: Context, file: str):
    """The campaign file, validated (CampaignError lists its problems)."""
    from bot.campaigns.definition import load_campaign

    return load_campaign(file, context.deployment, context.gazetteer)


def campaign_command(settings: Settings, args: Any) -> int:
    """Runs ``helpline campaign <action>``; returns the exit status."""
    from bot.campaigns.definition import CampaignError

    action = args.campaign_command
    try:
        if action == "status":
            with opened(settings) as context:
                return _status(context, args.name)
        if action == "remind":
            with opened(settings) as context:
                name = _remind(context, args.days, args.send)
            if args.send and name is not None:
                return _send(name, args.credentials, once=False)
            return 0
        with opened(settings) as context:
            definition = load(context, args.file)
            if action == "check":
                return _check(context, definition, args.file)
            if action == "preview":
                return _preview(context, definition, args.file)
            if action == "queue":
                return _queue(context, definition)
            if action == "send":
                _queue(context, definition)
        if action == "send":
            return _send(definition.name, args.credentials, args.once)
    except (CommandError, CampaignError) as exc:
        print(str(exc), file=sys.stderr)
        return 2
    print(f"campaign: unknown action {action!r} (one of {', '.join(ACTIONS)})", file=sys.stderr)
    return 2


def _audience_text(definition, size: int) -> str:
    parts = [f"{size:,} subscriber{'s' if size != 1 else ''}"]
    if definition.telegram_channel is not None:
        parts.append(f"the Telegram channel {definition.telegram_channel.chat}")
    return " + ".join(parts)


def _check(context: Context, definition, file: str) -> int:
    from bot.campaigns.queue import empty_audience_error, audience_size

    size = audience_size(definition, context.sessions, context.subscribers)
    if size == 0 and definition.telegram_channel is None:
        raise empty_audience_error(definition)
    print(f"{file}: campaign {definition.name} is valid; it reaches "
          f"{_audience_text(definition, size)} now")
    return 0


def _money(amount: Decimal) -> str:
    """Two decimals, or four for a total below one unit that two would show as 0.00."""
    places = Decimal("0.01") if amount == 0 or amount >= Decimal("0.01") else Decimal("0.0001")
    return f"{amount.quantize(places, rounding=ROUND_HALF_UP):,}"


def _when(moment: dt.datetime) -> str:
    utc = moment.astimezone(dt.timezone.utc)
    return f"{moment:%a %Y-%m-%d %H:%M} {moment.tzname()} ({utc:%H:%M} UTC)"


def _indented(text: str) -> str:
    return "\n".join(f"    {line}" for line in text.splitlines())


def _preview(context: Context, definition, file: str) -> int:
    from bot.campaigns.definition import LANGUAGE_NAMES
    from bot.campaigns.queue import preview

    shown = preview(definition, context.sessions, context.subscribers, context.deployment,
                    context.gazetteer)
    out = []
    out.append(f"Campaign {definition.name} ({file})")
    out.append(f"Audience: {_audience_text(definition, shown.recipients)}")
    channels = list(definition.channels)
    if channels:
        out.append("  " + "language".ljust(10) + "".join(c.rjust(10) for c in channels)
                   + "total".rjust(10))
        for lp in shown.languages:
            if not lp.recipients:
                continue
            out.append("  " + lp.language.ljust(10)
                       + "".join(f"{lp.recipients.get(c, 0):,}".rjust(10) for c in channels)
                       + f"{sum(lp.recipients.values()):,}".rjust(10))
    if definition.areas is not None:
        out.append(f"Areas: {', '.join(definition.areas)} ({len(definition.area_codes)} "
                   f"gazetteer places)")
    out.append(f"Window: {definition.window_start:%H:%M}-{definition.window_end:%H:%M} in each "
               f"recipient's local time; at most {shown.cap_per_week} campaign message"
               f"{'s' if shown.cap_per_week != 1 else ''} per person in any 7 days")
    for window in shown.windows:
        when = (f"open now, until {window.closes:%H:%M} {window.closes.tzname()}"
                if window.open_now else f"opens {_when(window.opens)}")
        out.append(f"  {window.timezone} ({window.recipients:,}): {when}")
    for lp in shown.languages:
        name = LANGUAGE_NAMES.get(lp.language, lp.language)
        if lp.sms_text is not None:
            out.append(f"[{lp.language}] {name}, SMS: {lp.segments} segment"
                       f"{'s' if lp.segments != 1 else ''}, {lp.encoding}, "
                       f"{lp.sms_characters} {'septets' if lp.encoding == 'GSM-7' else 'characters'}")
            out.append(_indented(lp.sms_text))
        if lp.telegram_text is not None:
            out.append(f"[{lp.language}] {name}, Telegram: {len(lp.telegram_text)} characters")
            out.append(_indented(lp.telegram_text))
    currency = shown.currency
    out.append(f"Estimated SMS cost: {shown.sms_segments:,} segments x {currency} "
               f"{shown.price_per_segment} = {currency} {_money(shown.estimated_cost)}")
    for lp in shown.languages:
        sms = lp.recipients.get("sms", 0)
        if sms:
            out.append(f"  {lp.language}: {sms:,} SMS x {lp.segments} segment"
                       f"{'s' if lp.segments != 1 else ''} = {currency} {_money(lp.sms_cost)}")
    print("\n".join(out))
    if shown.recipients == 0 and definition.telegram_channel is None:
        print("audience: no subscriber matches now; `queue` would refuse this campaign",
              file=sys.stderr)
    return 0


def _queue(context: Context, definition) -> int:
    from bot.campaigns.queue import queue_campaign

    result = queue_campaign(definition, context.sessions, context.subscribers)
    post = " (the Telegram channel's post included)" if result.channel_post else ""
    if result.created:
        print(f"campaign {result.name}: queued {result.added:,} message"
              f"{'s' if result.added != 1 else ''}{post}")
    else:
        print(f"campaign {result.name}: already queued; {result.added:,} new subscriber "
              f"message{'s' if result.added != 1 else ''} added, {result.already:,} were "
              f"queued before{post}")
    print("nothing is sent until the dispatcher runs")
    return 0


def _remind(context: Context, days: Any, send: bool = False) -> Any:
    """Queues the day's consent reminders and prints their counts (never an address);
    returns the day's campaign name, or None when there is none (nothing to send)."""
    from bot.campaigns.definition import CampaignError
    from bot.campaigns.reminders import MESSAGE, check_days, queue_reminders

    try:
        days = check_days(days)
    except ValueError as exc:
        raise CommandError(f"campaign remind: {exc}") from None
    try:
        result = queue_reminders(context.deployment, context.sessions, context.subscribers, days)
    except CampaignError as exc:
        if any(problem.startswith("name:") for problem in exc.problems):
            raise  # another campaign has the day's name: said as it is
        listed = "\n".join(f"  - {p}" for p in exc.problems)
        raise CommandError(f"campaign remind: the reminder cannot be sent with this deployment "
                           f"(bot/messages/<language>.yml {MESSAGE}, with organisation.name "
                           f"filled in):\n{listed}") from None
    within = f"consents ending within {days} day{'s' if days != 1 else ''}"
    if result.campaign_id is None:
        print(f"consent reminders: nobody to remind ({within}, not reminded yet)")
        return None
    print(f"consent reminders: {result.queued:,} queued now ({within}), {result.earlier:,} "
          f"earlier today; campaign {result.name}")
    if result.kept_text:
        print(f"campaign {result.name} was queued earlier today with another text: today's "
              f"reminders keep it, the new text applies from tomorrow", file=sys.stderr)
    if not send:
        print(f"nothing is sent until the dispatcher runs (within "
              f"{context.deployment.campaigns.daytime_text}, each recipient's local time)")
    return result.name


def progress_bar(done: int, total: int, width: int = 30) -> str:
    """``[#########.....]  1,234 / 10,000`` for a terminal line."""
    filled = width if total <= 0 else min(width, width * done // total)
    return f"[{'#' * filled}{'.' * (width - filled)}] {done:,} / {total:,}"


def _send(name: str, credentials: str, once: bool) -> int:
    """The dispatcher on campaign ``name`` in this process, a progress bar on stderr; the
    exit status of ``python -m bot.campaigns.dispatch`` (0 done, 2 configuration, 3 stopped)."""
    import asyncio
    import signal
    import time

    from bot.campaigns import dispatch
    from bot.campaigns.queue import status

    try:
        configured = dispatch.build(Path(credentials), name)
    except dispatch.DispatchError as exc:
        print(f"campaign send: {exc}", file=sys.stderr)
        return dispatch.EXIT_CONFIG
    from bot.storage import session_factory

    figures = status(name, session_factory(configured.engine))
    total = figures.total
    already = figures.counts.get("sent", 0)
    shown = [0.0]

    def show(stats) -> None:
        now = time.monotonic()
        if now - shown[0] >= 0.5 or stats.done:
            shown[0] = now
            finished = already + stats.sent + stats.failed + stats.opted_out
            print(f"\r{progress_bar(finished, total)}  {stats.rate:.1f}/s, "
                  f"{stats.deferred:,} waiting for the window or cap", end="",
                  file=sys.stderr, flush=True)

    async def run() -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, configured.dispatcher.stop)
        try:
            stats = await configured.dispatcher.run(name, until_done=not once, progress=show)
        except dispatch.DispatchError as exc:
            print(f"\ncampaign send: {exc}", file=sys.stderr)
            return dispatch.EXIT_CONFIG
        finally:
            await configured.close()
        show(stats)
        print(f"\ncampaign {name}: {stats.line()}", file=sys.stderr)
        if stats.done or (once and not configured.dispatcher.stop_requested):
            return dispatch.EXIT_DONE
        return dispatch.EXIT_STOPPED

    return asyncio.run(run())


def _status(context: Context, name: str) -> int:
    from bot.campaigns.queue import status

    figures = status(name, context.sessions)
    out = [f"campaign {figures.name}: queued {figures.queued_at:%Y-%m-%d %H:%M} UTC, "
           f"{figures.total:,} message{'s' if figures.total != 1 else ''}"]
    for state, number in figures.counts.items():
        out.append(f"  {state}: {number:,}")
    out.append(f"  opted out since queued: {figures.opted_out_since:,} (state opted_out, or "
               f"unsubscribed before their message was sent)")
    if figures.first_sent is not None:
        out.append(f"  first sent: {figures.first_sent:%Y-%m-%d %H:%M:%S} UTC")
        out.append(f"  last sent:  {figures.last_sent:%Y-%m-%d %H:%M:%S} UTC")
    else:
        out.append("  nothing sent yet")
    print("\n".join(out))
    return 0
