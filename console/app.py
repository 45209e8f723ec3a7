"""The console's web application (aiohttp, Jinja2 templates, one same-origin script).

Pages: sign-in, the queue with "my cases", a case, and for supervisors the audit (the cases'
audit log and the sign-in events) and the figures (``/figures``: the anonymous counts of
``helpline figures`` at the deployment's ``figures.min_cell``; ``/figures.csv``: the same as an
HXL-tagged CSV download). Forms post to the server (the pages work without the script); the
script only keeps the queue and the transcript live through server-sent events (``/events``),
which the server builds by reading the database every ``poll_seconds``.

Security:
- every page but sign-in needs a session (pages redirect to ``/sign-in``, the API and the
  event stream answer 401); every POST carries the session's CSRF token (sign-in: a
  double-submit token), compared with ``hmac.compare_digest``; a missing or wrong one is 403;
- the session cookie is HttpOnly, SameSite=Strict, Secure (``__Host-`` prefixed) unless the
  console is started for plain http on 127.0.0.1;
- every response has a Content-Security-Policy of ``default-src 'self'`` (no inline script or
  style, no third party, no framing), no-store caching, no referrer and HSTS (a browser that
  has seen the console once never tries it over plain http again);
- sign-in resists guessing: each attempt is counted before its password is hashed, the
  account locks for growing times (``console.users``), each client address waits growing
  times after repeated failures (``console.throttle``: answered 429, no hash computed), and
  at most ``hash_slots`` hashes run at once, waiting on the event loop rather than in the
  threads the pages need; a supervisor unlocks an account from the audit page;
- the pages and the API never carry a conversation id or an address: a case is its number.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import hmac
import json
import logging
import re
import secrets
import urllib.parse
from pathlib import Path
from typing import Any, Awaitable, Callable, Optional, Sequence

import aiohttp_jinja2
import jinja2
from aiohttp import web
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session, sessionmaker

from bot.cases.models import OUTCOMES
from bot.cases.queue import (
    MAX_MESSAGE_CHARS, AlreadyTaken, CaseError, Cases, CaseView, NotAllowed, utcnow,
)
from bot.delayed import DelayedReplies
from bot.deployment import SUPPORTED_LANGUAGES, Deployment
from bot.figures import SOURCES as FIGURES_SOURCES, FiguresError
from console.audit import KINDS, PAGE_SIZE as AUDIT_PAGE_SIZE, AuditLog, PageOutOfRange
from console.canned import load_canned
from console.figures import (
    SOURCE_NOTES, FiguresReader, csv_filename, dimension_choices, parse_query, to_csv,
    view as figures_view, web_message,
)
from console.relay import Relay, RelayError
from console.throttle import ClientThrottle, client_address
from console.users import SignedIn, SignInRefused, UserError, Users
from console.views import CHANNEL_NAMES, CLOSED_WORDS, OUTCOME_WORDS, Describer, duration

logger = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
# A year, subdomains included: the console is only ever served over https behind the proxy.
HSTS = "max-age=31536000; includeSubDomains"
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
       "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
       "object-src 'none'")
_CASE_NUMBER = re.compile(r"^[0-9]{1,9}$")
_PAGE_NUMBER = re.compile(r"^[0-9]{1,6}$")
_USER_NAME = re.compile(r"^[a-z0-9_.\-]{2,64}$")
# How long sign-in events are kept when the deployment sets no ``closed_case_days``.
SIGN_IN_EVENT_DAYS = 90

USERS = web.AppKey("users", Users)
CASES = web.AppKey("cases", Cases)
AUDIT = web.AppKey("audit", AuditLog)
FIGURES = web.AppKey("figures", FiguresReader)
DELAYS = web.AppKey("delays", DelayedReplies)
RELAY = web.AppKey("relay", Relay)
THROTTLE = web.AppKey("throttle", object)  # ClientThrottle or RedisClientThrottle
HASH_SLOTS = web.AppKey("hash_slots", asyncio.Semaphore)
CONFIG = web.AppKey("config", object)
HOUSEKEEPING = web.AppKey("housekeeping", asyncio.Task)
# Set when the console stops: the event streams end at once instead of holding the shutdown.
STOPPING = web.AppKey("stopping", asyncio.Event)


class Config:
    """How one console runs (everything but the database and the relay)."""

    def __init__(self, secure_cookies: bool = True, poll_seconds: float = 2.0,
                 heartbeat_seconds: float = 15.0, timezone: str = "UTC",
                 categories: Optional[dict] = None,
                 places: Optional[Callable[[], Any]] = None,
                 clock: Callable[[], dt.datetime] = utcnow,
                 closed_case_days: Optional[int] = None,
                 idle_case_hours: Optional[float] = None,
                 figures_min_cell: int = Deployment.figures_min_cell,
                 languages: Sequence[str] = SUPPORTED_LANGUAGES,
                 deployment: Optional[Deployment] = None,
                 hash_slots: Optional[int] = None,
                 throttle: Optional[Callable[[Callable[[], dt.datetime]], Any]] = None) -> None:
        """
        Args:
            secure_cookies: False only for plain http://127.0.0.1 (tests, a local trial).
            poll_seconds: how often the event stream reads the database.
            timezone: the hotline's time zone, for the clock times shown.
            categories: need category names per language (default: data/services/categories.yml).
            places: returns a ``bot.services.runtime.Loaded`` (directory and gazetteer) or
                None; without it areas are shown as codes and no services are suggested.
            clock: the time (tests move it).
            closed_case_days: when set, closed cases older than this are purged hourly, and
                sign-in events as old (else sign-in events are kept ``SIGN_IN_EVENT_DAYS``).
            idle_case_hours: when set, open cases with nothing new for this long are closed
                hourly as expired (the deployment's ``conversation_idle_hours``: their
                conversation is gone, e.g. expired unseen by a Redis tracker store).
            figures_min_cell: the deployment's ``figures.min_cell``: the figures page hides
                every count below it (and what would give one away), as ``helpline figures``.
            languages: the deployment's languages, in the order the figures list them.
            deployment: fills the canned replies' {contacts} and {confidentiality}; without
                it, the replies that need them are not offered.
            hash_slots: how many password hashes may run at once (default: the cores).
            throttle: makes the per-client sign-in waits from the clock (default: in this
                process, ``ClientThrottle``; ``helpline console`` with HELPLINE_REDIS_URL:
                shared by the deployment's console processes, ``RedisClientThrottle``).
        """
        from bot.services.categories import load_categories

        self.secure_cookies = secure_cookies
        self.poll_seconds = poll_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self.timezone = timezone
        self.categories = categories if categories is not None else load_categories()
        self.places = places
        self.clock = clock
        self.closed_case_days = closed_case_days
        self.idle_case_hours = idle_case_hours
        self.figures_min_cell = figures_min_cell
        self.throttle = throttle or (lambda clock: ClientThrottle(clock=clock))
        self.languages = tuple(languages)
        self.deployment = deployment
        self.hash_slots = hash_slots
        self.sign_in_event_days = (closed_case_days if closed_case_days is not None
                                   else SIGN_IN_EVENT_DAYS)
        self.session_cookie = "__Host-console" if secure_cookies else "console"
        self.sign_in_cookie = "__Host-console-sign-in" if secure_cookies else "console-sign-in"


def create_app(sessions: "sessionmaker[Session]", fernet, relay: Relay,
               config: Optional[Config] = None) -> web.Application:
    """The console application on one database (already migrated).

    Args:
        sessions: the project's database (``bot.storage.session_factory``).
        fernet: the route key ``MultiFernet`` that wraps the cases' transcript keys.
        relay: hands caseworkers' replies to the conversations.
        config: everything else (default: ``Config()``).
    """
    config = config or Config()
    app = web.Application(client_max_size=64 * 1024,
                          middlewares=[_database_unavailable, _unreadable_forms])
    app[CONFIG] = config
    app[USERS] = Users(sessions, clock=config.clock, hash_slots=config.hash_slots)
    # Sign-ins wait for a free hash slot here, on the event loop, not in a thread: waiting
    # threads would fill the pool that every page's database work runs in.
    app[HASH_SLOTS] = asyncio.Semaphore(app[USERS].hashing.slots)
    app[THROTTLE] = config.throttle(config.clock)
    app[CASES] = Cases(sessions, fernet, clock=config.clock)
    app[AUDIT] = AuditLog(sessions)
    app[FIGURES] = FiguresReader(sessions, config.figures_min_cell, config.languages)
    app[DELAYS] = DelayedReplies(sessions, clock=config.clock)
    app[RELAY] = relay
    aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(str(HERE / "templates")),
                         autoescape=jinja2.select_autoescape(default=True))
    app.on_response_prepare.append(_security_headers)
    app.router.add_get("/sign-in", sign_in_page)
    app.router.add_post("/sign-in", sign_in)
    app.router.add_post("/sign-out", sign_out)
    app.router.add_get("/", queue_page)
    app.router.add_get("/api/state", api_state)
    app.router.add_get("/events", events)
    app.router.add_get("/cases/{number}", case_page)
    app.router.add_get("/api/cases/{number}/transcript", api_transcript)
    app.router.add_post("/cases/{number}/take", take)
    app.router.add_post("/cases/{number}/reply", reply)
    app.router.add_post("/cases/{number}/transfer", transfer)
    app.router.add_post("/cases/{number}/close", close)
    app.router.add_get("/audit", audit_page)
    app.router.add_post("/users/{name}/unlock", unlock)
    app.router.add_get("/figures", figures_page)
    app.router.add_get("/figures.csv", figures_csv)
    app.router.add_static("/static/", HERE / "static", append_version=False)
    app.on_startup.append(_start_housekeeping)
    app.on_shutdown.append(_end_streams)
    app.on_cleanup.append(_stop)
    return app


# -- plumbing ---------------------------------------------------------------------------

async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["Strict-Transport-Security"] = HSTS
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
    response.headers["Cross-Origin-Resource-Policy"] = "same-origin"
    response.headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"


def housekeeping(app: web.Application) -> None:
    """The hourly purge (blocking: in a thread): timed-out sessions, open cases idle for
    ``idle_case_hours`` when set, closed cases older than ``closed_case_days`` when set,
    sign-in events older than ``sign_in_event_days``."""
    config: Config = app[CONFIG]
    app[USERS].purge_sessions()
    if config.idle_case_hours is not None:
        expired = app[CASES].expire_idle(config.idle_case_hours)
        if expired:
            logger.info("closed %d idle case(s)", len(expired))
    if config.closed_case_days is not None:
        purged = app[CASES].purge(config.closed_case_days)
        if purged:
            logger.info("purged %d closed case(s)", purged)
    purged = app[USERS].purge_events(config.sign_in_event_days)
    if purged:
        logger.info("purged %d sign-in event(s)", purged)


async def _end_streams(app: web.Application) -> None:
    app[STOPPING].set()


async def _start_housekeeping(app: web.Application) -> None:
    app[STOPPING] = asyncio.Event()
    async def loop() -> None:
        while True:
            try:
                await asyncio.to_thread(housekeeping, app)
            except Exception:  # noqa: BLE001 - housekeeping must not stop the console
                logger.exception("housekeeping failed")
            await asyncio.sleep(3600)

    app[HOUSEKEEPING] = asyncio.create_task(loop())


async def _stop(app: web.Application) -> None:
    task = app.get(HOUSEKEEPING)
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await app[RELAY].close()
    close = getattr(app[THROTTLE], "aclose", None)
    if close is not None:  # the Redis connections of a shared throttle
        await close()


def _wants_json(request: web.Request) -> bool:
    return request.path.startswith("/api/") or request.path == "/events"


async def _session(request: web.Request, touch: bool = True) -> Optional[SignedIn]:
    token = request.cookies.get(request.app[CONFIG].session_cookie)
    if not token:
        return None
    return await asyncio.to_thread(request.app[USERS].session, token, touch)


Handler = Callable[[web.Request, SignedIn], Awaitable[web.StreamResponse]]


def signed_in(handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """Needs a session (else 303 to sign-in, or 401 for the API); a POST needs its CSRF token."""

    @functools.wraps(handler)
    async def wrapper(request: web.Request) -> web.StreamResponse:
        signed = await _session(request, touch=request.path != "/events")
        if signed is None:
            if _wants_json(request) or request.method != "GET":
                if request.method == "POST" and not _wants_json(request):
                    raise web.HTTPSeeOther("/sign-in")
                return web.json_response({"error": "sign in first"}, status=401)
            raise web.HTTPSeeOther("/sign-in")
        if request.method == "POST":
            form = await request.post()
            request["form"] = form
            sent = form.get("csrf") or request.headers.get("X-CSRF-Token") or ""
            if not isinstance(sent, str) or not hmac.compare_digest(
                    sent.encode("utf-8", "replace"), signed.csrf_token.encode("ascii")):
                return _error_page(request, 403, "This form has expired or did not come from "
                                   "the console. Go back, reload the page and try again.")
        return await handler(request, signed)

    return wrapper


def _drop_cookie(response: web.StreamResponse, config: Config, name: str) -> None:
    """Deletes a cookie with the flags it was set with: a browser ignores the deletion of a
    ``__Host-`` cookie without Secure (aiohttp 3.9's ``del_cookie`` sends none)."""
    response.set_cookie(name, "", path="/", max_age=0, expires="Thu, 01 Jan 1970 00:00:00 GMT",
                        httponly=True, secure=config.secure_cookies, samesite="Strict")


def _set_cookie(response: web.StreamResponse, config: Config, name: str, value: str) -> None:
    response.set_cookie(name, value, path="/", httponly=True, secure=config.secure_cookies,
                        samesite="Strict")


DATABASE_UNAVAILABLE = ("The database is unavailable. Nothing was changed: try again in a "
                        "minute; if it lasts, tell the administrator.")


@web.middleware
async def _database_unavailable(request: web.Request, handler) -> web.StreamResponse:
    """While the database is down (restarted, unreachable) a page or the API answers 503 with
    a plain message, not a server error; the engine's pre-ping reconnects once it is back
    (issue 17 §5). The error's type only is logged: its text may hold the database URL."""
    try:
        return await handler(request)
    except (sa_exc.OperationalError, sa_exc.InterfaceError) as exc:
        logger.warning("console: the database is unavailable (%s)",
                       type(getattr(exc, "orig", None) or exc).__name__)
        return _error_page(request, 503, DATABASE_UNAVAILABLE)


@web.middleware
async def _unreadable_forms(request: web.Request, handler) -> web.StreamResponse:
    """A posted body that is not a readable form (not UTF-8, a broken multipart body: aiohttp
    raises while parsing it in ``request.post()``) gets a 400 that says so, not a server error
    (issue 17 §6). The form is read here once; the handlers get aiohttp's cached copy."""
    if request.method == "POST":
        try:
            await request.post()
        except (UnicodeDecodeError, ValueError, AssertionError, web.HTTPException) as exc:
            if isinstance(exc, web.HTTPException) and exc.status != 400:
                raise
            return _error_page(request, 400, "The form could not be read: send it as the "
                                             "console's page does (UTF-8, urlencoded).")
    return await handler(request)


def _error_page(request: web.Request, status: int, message: str,
                signed: Optional[SignedIn] = None) -> web.Response:
    if _wants_json(request):
        return web.json_response({"error": message}, status=status)
    return aiohttp_jinja2.render_template(
        "error.html", request, {"message": message, "signed": signed, "status": status},
        status=status)


def _number(request: web.Request) -> Optional[int]:
    text = request.match_info["number"]
    return int(text) if _CASE_NUMBER.match(text) else None


def _describer(request: web.Request) -> tuple[Describer, Any]:
    config: Config = request.app[CONFIG]
    loaded = None
    if config.places is not None:
        try:
            loaded = config.places()
        except Exception:  # noqa: BLE001 - the console works without place names
            logger.exception("the directory could not be loaded")
    gazetteer = loaded.gazetteer if loaded is not None else None
    return Describer(config.categories, config.timezone, gazetteer), loaded


def _state(app: web.Application, signed: SignedIn, describer: Describer,
           case_number: Optional[int] = None) -> dict[str, Any]:
    """Queue, my cases and, when asked for, one case's transcript (blocking: in a thread)."""
    cases: Cases = app[CASES]
    now = app[CONFIG].clock()
    language = signed.language
    deployment = app[CONFIG].deployment
    cap = deployment.max_new_cases_per_hour if deployment else Deployment.max_new_cases_per_hour
    state: dict[str, Any] = {
        "queue": [describer.summary(c, language, now) for c in cases.queue()],
        "mine": [describer.summary(c, language, now) for c in cases.mine(signed.user)],
        # channels that reached the deployment's cap of new cases this hour: their next
        # requests get the emergency contacts and services, no case (issue 17 §2)
        "at_cap": [{"channel": channel, "count": count, "cap": cap}
                   for channel, count in cases.at_cap(cap).items()],
        # replies the SMS or Telegram provider did not take yet, and those late or dropped
        # over the last day (channels.redelivery; issue 17 §5)
        "delayed": _delays(app, now),
    }
    if case_number is not None:
        try:
            case = cases.case(case_number, signed.user, audit=False)
            state["case"] = describer.summary(case, language, now)
            state["case"]["closed_reason"] = _closed_reason(app, case)
            waiting = app[DELAYS].waiting_for_case(case.id)
            state["case"]["replies_waiting"] = (
                None if waiting is None else duration((now - waiting).total_seconds()))
            if case.status == "active":
                state["transcript"] = [describer.line(line, signed.user.name)
                                       for line in cases.transcript(case_number, signed.user)]
        except (CaseError, NotAllowed):
            state["case"] = None
    return state


def _delays(app: web.Application, now: dt.datetime) -> list[dict[str, Any]]:
    """Per channel with anything to say: conversations whose replies wait for the provider
    now and for how long the oldest has waited; over the last 24 hours, those whose replies
    went out late (and the longest wait) and those whose replies were dropped."""
    summary = app[DELAYS].summary()
    return [{"channel": CHANNEL_NAMES.get(channel, channel),
             "waiting": summary.waiting.get(channel, 0),
             "oldest": (duration((now - summary.oldest[channel]).total_seconds())
                        if channel in summary.oldest else ""),
             "late": summary.delivered_late.get(channel, 0),
             "longest": (duration(summary.longest[channel].total_seconds())
                         if channel in summary.longest else ""),
             "dropped": summary.dropped.get(channel, 0)}
            for channel in summary.channels]


def _closed_reason(app: web.Application, case: CaseView) -> Optional[str]:
    """Why a closed case closed without a caseworker, in words, from the audit log (None: a
    caseworker closed it, or it is open)."""
    if case.status != "closed":
        return None
    return CLOSED_WORDS.get(app[AUDIT].closed_by(case.id) or "")


# -- sign-in ----------------------------------------------------------------------------

async def sign_in_page(request: web.Request) -> web.StreamResponse:
    if await _session(request, touch=False) is not None:
        raise web.HTTPSeeOther("/")
    return _sign_in_form(request, 200, None, "")


def _sign_in_form(request: web.Request, status: int, error: Optional[str],
                  name: str) -> web.Response:
    config: Config = request.app[CONFIG]
    token = secrets.token_urlsafe(32)
    response = aiohttp_jinja2.render_template(
        "sign_in.html", request, {"csrf": token, "error": error, "name": name, "signed": None},
        status=status)
    _set_cookie(response, config, config.sign_in_cookie, token)
    return response


async def sign_in(request: web.Request) -> web.StreamResponse:
    config: Config = request.app[CONFIG]
    form = await request.post()
    expected = request.cookies.get(config.sign_in_cookie, "")
    sent = form.get("csrf", "")
    if not expected or not isinstance(sent, str) or not hmac.compare_digest(
            sent.encode("utf-8", "replace"), expected.encode("utf-8", "replace")):
        return _error_page(request, 403, "This sign-in form has expired. Reload the page and "
                           "sign in again.")
    name, password = form.get("name", ""), form.get("password", "")
    if not isinstance(name, str) or not isinstance(password, str):
        return _sign_in_form(request, 400, "Type your user name and password.", "")
    name = name.strip().lower()
    throttle: ClientThrottle = request.app[THROTTLE]
    address = client_address(request.remote, request.headers)
    wait = await throttle.wait_seconds(address)
    if wait:  # no hash, no database: the client has failed too often
        response = _sign_in_form(
            request, 429, f"Too many failed sign-ins from this device. Wait {_minutes(wait)} "
            "and try again, or ask a supervisor.", name if len(name) <= 64 else "")
        response.headers["Retry-After"] = str(wait)
        return response
    try:
        token, _ = await _sign_in_user(request.app, name, password)
    except SignInRefused:
        await throttle.failed(address)
        return _sign_in_form(
            request, 401, "Sign-in failed: the user name or the password is wrong, or the "
            "account is locked for a while after too many attempts. Ask a supervisor if "
            "this goes on.", name if len(name) <= 64 else "")
    response = web.HTTPSeeOther("/")
    _set_cookie(response, config, config.session_cookie, token)
    _drop_cookie(response, config, config.sign_in_cookie)
    raise response


async def _sign_in_user(app: web.Application, name: str, password: str) -> tuple[str, SignedIn]:
    """``Users.sign_in`` in its three steps: counted, hashed in one of the slots, concluded."""
    users: Users = app[USERS]
    attempt = await asyncio.to_thread(users.begin_sign_in, name)
    async with app[HASH_SLOTS]:
        right = await asyncio.to_thread(users.check, attempt, password)
    return await asyncio.to_thread(users.finish_sign_in, attempt, right)


def _minutes(seconds: int) -> str:
    minutes = max(1, (seconds + 59) // 60)
    return "a minute" if minutes == 1 else f"{minutes} minutes"


@signed_in
async def sign_out(request: web.Request, signed: SignedIn) -> web.StreamResponse:
    config: Config = request.app[CONFIG]
    await asyncio.to_thread(request.app[USERS].sign_out,
                            request.cookies.get(config.session_cookie))
    response = web.HTTPSeeOther("/sign-in")
    _drop_cookie(response, config, config.session_cookie)
    raise response


# -- pages ------------------------------------------------------------------------------

@signed_in
async def queue_page(request: web.Request, signed: SignedIn) -> web.StreamResponse:
    return await _render_queue(request, signed)


async def _render_queue(request: web.Request, signed: SignedIn, status: int = 200,
                        error: Optional[str] = None) -> web.Response:
    describer, _ = await asyncio.to_thread(_describer, request)
    state = await asyncio.to_thread(_state, request.app, signed, describer)
    return aiohttp_jinja2.render_template(
        "queue.html", request, {"signed": signed, "error": error, **state}, status=status)


@signed_in
async def case_page(request: web.Request, signed: SignedIn) -> web.StreamResponse:
    number = _number(request)
    if number is None:
        return _error_page(request, 404, "There is no such case.", signed)
    return await _render_case(request, signed, number)


async def _render_case(request: web.Request, signed: SignedIn, number: int, status: int = 200,
                       error: Optional[str] = None, draft: str = "",
                       notice: Optional[str] = None) -> web.Response:
    app = request.app
    cases: Cases = app[CASES]
    try:
        case = await asyncio.to_thread(cases.case, number, signed.user, status == 200)
    except NotAllowed:
        return await _render_queue(request, signed, 403, f"Case {number} is not yours: only "
                                   f"its caseworker and supervisors can open it.")
    except CaseError:
        if request.method == "POST":
            return await _render_queue(request, signed, 400, f"There is no case {number}.")
        return _error_page(request, 404, f"There is no case {number}.", signed)
    describer, loaded = await asyncio.to_thread(_describer, request)
    now = app[CONFIG].clock()
    transcript: list[dict] = []
    if case.status == "active":
        try:
            lines = await asyncio.to_thread(cases.transcript, number, signed.user)
            transcript = [describer.line(line, signed.user.name) for line in lines]
        except CaseError:
            transcript = []
    colleagues = []
    if case.status == "active":
        names = await asyncio.to_thread(app[USERS].active_names)
        colleagues = [n for n in names if n != case.caseworker]
    services = _services(loaded, case, signed.language) if loaded is not None else []
    values = _canned_values(app[CONFIG].deployment, case.language, case.area)
    canned = [{"key": c.key, "label": c.label, "text": c.fill(case.language, values),
               "mine": c.fill(signed.language, _canned_values(
                   app[CONFIG].deployment, signed.language, case.area))}
              for c in load_canned() if c.fill(case.language, values) is not None]
    closed_reason = await asyncio.to_thread(_closed_reason, app, case)
    waiting = await asyncio.to_thread(app[DELAYS].waiting_for_case, case.id)
    summary = describer.summary(case, signed.language, now)
    summary["replies_waiting"] = (None if waiting is None or case.status == "closed"
                                  else duration((now - waiting).total_seconds()))
    context = {
        "signed": signed, "case": summary,
        "closed_reason": closed_reason,
        "transcript": transcript, "colleagues": colleagues, "services": services,
        "canned": canned, "outcomes": [(o, OUTCOME_WORDS[o]) for o in OUTCOMES],
        "error": error, "notice": notice, "draft": draft, "max_chars": MAX_MESSAGE_CHARS,
        "mine": case.caseworker == signed.user.name,
    }
    return aiohttp_jinja2.render_template("case.html", request, context, status=status)


def _canned_values(deployment: Optional[Deployment], language: str, area: Optional[str]
                   ) -> dict[str, str]:
    """The canned replies' placeholders: the emergency contacts for the case's country (the
    area's P-code starts with it) and the organisation's confidentiality text."""
    if deployment is None or language not in deployment.languages:
        return {}
    country = (area or "")[:2].upper() or None
    return {"contacts": deployment.render_contacts(language, country),
            "confidentiality": deployment.confidentiality.get(language, "")}


def _services(loaded: Any, case: CaseView, language: str) -> list[dict]:
    """Up to six services near the case's coarse area, for its needs (nearest first)."""
    from bot.services.lookup import Need

    place = loaded.gazetteer.places.get(case.area) if case.area else None
    if place is None or not len(loaded.directory):
        return []
    found: dict[str, Any] = {}
    needs = list(case.needs[:3]) or [None]
    for need in needs:
        for hit in loaded.directory.nearest(place.lat, place.lon, Need(category=need),
                                            limit=2 if need else 4, max_km=300.0):
            found.setdefault(hit.card.code, hit)
    ordered = sorted(found.values(), key=lambda hit: hit.km)[:6]
    return [{"name": h.card.name, "organisation": h.card.organisation, "area": h.card.area,
             "phone": h.card.phone, "km": round(h.km), "hours": h.card.hours_text,
             "categories": list(h.card.categories)} for h in ordered]


# -- the audit (supervisors) ------------------------------------------------------------

_AUDIT_PARAMETERS = ("page", "user", "case", "kind")
KIND_WORDS = {"all": "Everything", "cases": "Case actions only", "sign-ins": "Sign-ins only"}


def _audit_filters(query: Any) -> tuple[dict[str, Any], dict[str, str], list[str]]:
    """The audit page's query: the filters, the values to put back in the form, the problems
    (each a sentence). An empty field is no filter."""
    problems: list[str] = []
    repeated = [name for name in _AUDIT_PARAMETERS if len(query.getall(name, [])) > 1]
    if repeated:
        problems.append(f"Give each filter once (repeated: {', '.join(repeated)}).")
    text = {name: query.get(name, "").strip() for name in _AUDIT_PARAMETERS}
    filters: dict[str, Any] = {"number": 1, "user": None, "case": None, "kind": "all"}
    form = {"user": "", "case": "", "kind": "all"}
    if text["page"]:
        if _PAGE_NUMBER.match(text["page"]) and int(text["page"]) >= 1:
            filters["number"] = int(text["page"])
        else:
            problems.append("The page is a whole number from 1: page=1 is the newest "
                            f"{AUDIT_PAGE_SIZE} entries, page=2 the {AUDIT_PAGE_SIZE} before.")
    if text["user"]:
        name = text["user"].lower()
        if _USER_NAME.match(name):
            filters["user"] = form["user"] = name
        else:
            problems.append("A user name is 2 to 64 characters: a-z, 0-9, dot, dash and "
                            "underscore. Leave the field empty for everyone.")
    if text["case"]:
        if _CASE_NUMBER.match(text["case"]):
            filters["case"] = int(text["case"])
            form["case"] = str(filters["case"])
        else:
            problems.append("A case number is a whole number, such as 12 (without the word "
                            "“Case”). Leave the field empty for every case.")
    if text["kind"]:
        if text["kind"] in KINDS:
            filters["kind"] = form["kind"] = text["kind"]
        else:
            problems.append("Show is one of: " + ", ".join(KINDS) + ".")
    if filters["case"] is not None and filters["kind"] == "sign-ins":
        problems.append("Sign-ins belong to no case: to filter by case number, show "
                        "everything or case actions only.")
    return filters, form, problems


def _audit_url(form: dict[str, str], number: int) -> str:
    query = {key: value for key, value in form.items() if value and value != "all"}
    if number > 1:
        query["page"] = str(number)
    return "/audit" + ("?" + urllib.parse.urlencode(query) if query else "")


@signed_in
async def audit_page(request: web.Request, signed: SignedIn) -> web.StreamResponse:
    """The cases' audit log and the sign-in events, newest first, for supervisors only."""
    if not signed.user.supervisor:
        return _error_page(request, 403, "The audit log is for supervisors only. Ask a "
                           "supervisor if you need to know who did what with a case.", signed)
    filters, form, problems = _audit_filters(request.query)
    context: dict[str, Any] = {
        "signed": signed, "nav": "audit", "form": form, "kinds": list(KIND_WORDS.items()),
        "entries": None, "page": None, "zone": request.app[CONFIG].timezone,
        "page_size": AUDIT_PAGE_SIZE,
    }
    if problems:
        return aiohttp_jinja2.render_template(
            "audit.html", request, {**context, "error": " ".join(problems)}, status=400)
    try:
        page = await asyncio.to_thread(request.app[AUDIT].page, filters["number"],
                                       filters["user"], filters["case"], filters["kind"],
                                       AUDIT_PAGE_SIZE)
    except PageOutOfRange as exc:
        return aiohttp_jinja2.render_template(
            "audit.html", request, {**context, "first": _audit_url(form, 1), "error": (
                f"There is no page {exc.number}: with these filters the log has "
                f"{exc.pages} page{'s' if exc.pages != 1 else ''}.")}, status=404)
    config: Config = request.app[CONFIG]
    describer = Describer(config.categories, config.timezone)  # times only: no places needed
    now = config.clock()
    accounts = await asyncio.to_thread(request.app[USERS].list)
    context.update({
        "locked": [{"name": a.name, "until": describer.stamp(a.locked_until)} for a in accounts
                   if a.locked_until is not None and a.locked_until > now],
        "notice": (f"{request.query['unlocked']}: the lock-out is over."
                   if _USER_NAME.match(request.query.get("unlocked", "")) else None),
        "entries": [describer.audit_entry(entry) for entry in page.entries], "page": page,
        "newer": _audit_url(form, page.number - 1) if page.number > 1 else None,
        "older": _audit_url(form, page.number + 1) if page.number < page.pages else None,
        "filtered": any(value and value != "all" for value in form.values()),
    })
    return aiohttp_jinja2.render_template("audit.html", request, context)


@signed_in
async def unlock(request: web.Request, signed: SignedIn) -> web.StreamResponse:
    """A supervisor ends a user's lock-out (the audit page's button; ``helpline users
    unlock NAME`` on the server does the same)."""
    if not signed.user.supervisor:
        return _error_page(request, 403, "Only a supervisor can unlock an account.", signed)
    name = request.match_info["name"]
    try:
        await asyncio.to_thread(request.app[USERS].unlock, name)
    except UserError:
        return _error_page(request, 404, "There is no such user to unlock.", signed)
    logger.info("%s unlocked the account of %s", signed.user.name, name)
    raise web.HTTPSeeOther("/audit?" + urllib.parse.urlencode({"unlocked": name}))


# -- the figures (supervisors) ----------------------------------------------------------

FIGURES_FORBIDDEN = ("The figures are for supervisors only. Ask a supervisor for the figures "
                     "your organisation shares.")


async def _figures(request: web.Request, signed: SignedIn) -> Any:
    """The figures asked for by the query: (table, the page's context), or the response to
    give instead (403 for a caseworker, 400 with the figures form for a bad query)."""
    if not signed.user.supervisor:
        return _error_page(request, 403, FIGURES_FORBIDDEN, signed)
    reader: FiguresReader = request.app[FIGURES]
    query, form, problems = parse_query(request.query)
    context: dict[str, Any] = {
        "signed": signed, "nav": "figures", "form": form, "table": None, "csv": None,
        "sources": [(name, source.what) for name, source in FIGURES_SOURCES.items()],
        "dimensions": dimension_choices(), "note": SOURCE_NOTES.get(form["source"]),
        "min_cell": reader.min_cell,
    }
    table = None
    if not problems:
        try:
            table = await asyncio.to_thread(reader.table, query)
        except FiguresError as exc:
            problems.append(web_message(exc))
    if problems:
        return aiohttp_jinja2.render_template(
            "figures.html", request, {**context, "error": " ".join(problems)}, status=400)
    return table, context


def _figures_query(form: dict[str, Any]) -> str:
    """The query of the figures shown, for the CSV link (``by=a,b``; no empty field)."""
    query = {"source": form["source"], "by": ",".join(d for d in form["by"] if d),
             "since": form["since"], "until": form["until"]}
    return urllib.parse.urlencode({k: v for k, v in query.items() if v}, safe=",")


@signed_in
async def figures_page(request: web.Request, signed: SignedIn) -> web.StreamResponse:
    """The anonymous figures of ``helpline figures`` as a table, for supervisors only."""
    answer = await _figures(request, signed)
    if isinstance(answer, web.StreamResponse):
        return answer
    table, context = answer
    context.update({"table": figures_view(table),
                    "csv": "/figures.csv?" + _figures_query(context["form"])})
    return aiohttp_jinja2.render_template("figures.html", request, context)


@signed_in
async def figures_csv(request: web.Request, signed: SignedIn) -> web.StreamResponse:
    """The same figures as a download: the CSV of ``helpline figures --format csv`` (a row of
    HXL hashtags under the headers), for an NGO to share."""
    answer = await _figures(request, signed)
    if isinstance(answer, web.StreamResponse):
        return answer
    table, _ = answer
    return web.Response(
        text=to_csv(table), content_type="text/csv", charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{csv_filename(table)}"'})


# -- the JSON API and the live updates ---------------------------------------------------

@signed_in
async def api_state(request: web.Request, signed: SignedIn) -> web.StreamResponse:
    describer, _ = await asyncio.to_thread(_describer, request)
    return web.json_response(await asyncio.to_thread(_state, request.app, signed, describer))


@signed_in
async def api_transcript(request: web.Request, signed: SignedIn) -> web.StreamResponse:
    number = _number(request)
    if number is None:
        return _error_page(request, 404, "There is no such case.")
    cases: Cases = request.app[CASES]
    describer, _ = await asyncio.to_thread(_describer, request)
    try:
        lines = await asyncio.to_thread(cases.transcript, number, signed.user)
    except NotAllowed:
        return _error_page(request, 403, f"Case {number} is not yours.")
    except CaseError as exc:
        status = 404 if "no case" in str(exc) else 410
        return _error_page(request, status, f"Case {number}: no transcript to read.")
    return web.json_response({"number": number,
                              "transcript": [describer.line(l, signed.user.name) for l in lines]})


@signed_in
async def events(request: web.Request, signed: SignedIn) -> web.StreamResponse:
    """Server-sent events: ``state`` whenever the queue, my cases or the case change."""
    config: Config = request.app[CONFIG]
    number = request.query.get("case")
    case_number = int(number) if number and _CASE_NUMBER.match(number) else None
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           "X-Accel-Buffering": "no"})
    await response.prepare(request)
    last, quiet, unavailable = None, 0.0, False
    try:
        while True:
            try:
                current = await _session(request, touch=False)
                if current is None:
                    await response.write(b"event: signed-out\ndata: {}\n\n")
                    break
                describer, _ = await asyncio.to_thread(_describer, request)
                state = await asyncio.to_thread(_state, request.app, current, describer,
                                                case_number)
                text, unavailable = json.dumps(state, sort_keys=True, ensure_ascii=False), False
            except (sa_exc.OperationalError, sa_exc.InterfaceError) as exc:
                # The database is down: the stream stays open (a browser would not reconnect
                # after a 503) and the page keeps what it shows until the next reading works.
                if not unavailable:
                    logger.warning("console: the database is unavailable (%s)",
                                   type(getattr(exc, "orig", None) or exc).__name__)
                text, unavailable = last, True
            if text != last:
                await response.write(f"event: state\ndata: {text}\n\n".encode("utf-8"))
                last, quiet = text, 0.0
            elif quiet >= config.heartbeat_seconds:
                await response.write(b": still here\n\n")
                quiet = 0.0
            try:  # the next reading, or the console stopping, whichever comes first
                await asyncio.wait_for(request.app[STOPPING].wait(), config.poll_seconds)
                break
            except asyncio.TimeoutError:
                quiet += config.poll_seconds
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    return response


# -- actions on a case ------------------------------------------------------------------

@signed_in
async def take(request: web.Request, signed: SignedIn) -> web.StreamResponse:
    number = _number(request)
    if number is None:
        return await _render_queue(request, signed, 400, "There is no such case.")
    try:
        await asyncio.to_thread(request.app[CASES].claim, number, signed.user)
    except AlreadyTaken:
        return await _render_queue(request, signed, 409, f"Case {number} was taken by someone "
                                   f"else a moment ago (or is closed). Choose another case.")
    except CaseError:
        return await _render_queue(request, signed, 400, f"There is no case {number}.")
    raise web.HTTPSeeOther(f"/cases/{number}")


@signed_in
async def reply(request: web.Request, signed: SignedIn) -> web.StreamResponse:
    number = _number(request)
    if number is None:
        return await _render_queue(request, signed, 400, "There is no such case.")
    form = request["form"]
    cases: Cases = request.app[CASES]
    try:
        case = await asyncio.to_thread(cases.case, number, signed.user, False)
    except NotAllowed:
        return await _render_queue(request, signed, 403, f"Case {number} is not yours.")
    except CaseError:
        return await _render_queue(request, signed, 400, f"There is no case {number}.")
    key, text = form.get("canned"), form.get("text")
    draft = text if isinstance(text, str) else ""
    if key:
        chosen = {c.key: c for c in load_canned()}.get(key) if isinstance(key, str) else None
        if chosen is None:
            return await _render_case(request, signed, number, 400,
                                      "That canned reply does not exist.", draft)
        text = chosen.fill(case.language, _canned_values(request.app[CONFIG].deployment,
                                                        case.language, case.area))
        if text is None:
            return await _render_case(request, signed, number, 400,
                                      "That canned reply is not set up for this deployment.",
                                      draft)
    if not isinstance(text, str) or not text.strip():
        return await _render_case(request, signed, number, 400,
                                  "The reply is empty: write something first.")
    text = text.strip().replace("\r\n", "\n")
    if len(text) > MAX_MESSAGE_CHARS:
        return await _render_case(request, signed, number, 400,
                                  f"The reply is too long: {len(text)} characters, at most "
                                  f"{MAX_MESSAGE_CHARS}. Shorten it or send it in parts.", draft)
    if case.status != "active":
        return await _render_case(request, signed, number, 400,
                                  f"Case {number} is {case.status}: replies go to active cases "
                                  f"only.", draft)
    if case.caseworker != signed.user.name and not signed.user.supervisor:
        return await _render_queue(request, signed, 403, f"Case {number} is not yours.")
    try:  # recorded first: the assistant's relay action reads it from the transcript
        message_id = await asyncio.to_thread(cases.record, number, "caseworker", text,
                                             signed.user)
    except NotAllowed:
        return await _render_queue(request, signed, 403, f"Case {number} is not yours.")
    except CaseError as exc:
        return await _render_case(request, signed, number, 400, _plain(exc, number), draft)
    try:
        await request.app[RELAY].send(case, text)
    except RelayError as exc:
        await asyncio.to_thread(cases.withdraw, message_id)
        logger.warning("reply to case %d not delivered: %s", number, exc)
        return await _render_case(request, signed, number, 502,
                                  f"Not sent: {exc}. Your reply is still in the box; try again "
                                  f"in a moment.", draft)
    raise web.HTTPSeeOther(f"/cases/{number}#reply")


@signed_in
async def transfer(request: web.Request, signed: SignedIn) -> web.StreamResponse:
    number = _number(request)
    if number is None:
        return await _render_queue(request, signed, 400, "There is no such case.")
    to = request["form"].get("to")
    names = await asyncio.to_thread(request.app[USERS].active_names)
    if not isinstance(to, str) or to not in names:
        return await _transfer_error(request, signed, number,
                                     "Choose a colleague from the list: that user does not "
                                     "exist or cannot sign in.")
    try:
        await asyncio.to_thread(request.app[CASES].transfer, number, signed.user, to)
    except NotAllowed:
        return await _render_queue(request, signed, 403, f"Case {number} is not yours.")
    except CaseError as exc:
        return await _transfer_error(request, signed, number, _plain(exc, number))
    # A caseworker no longer sees a case handed on; a supervisor still does.
    raise web.HTTPSeeOther(f"/cases/{number}" if signed.user.supervisor else "/")


async def _transfer_error(request: web.Request, signed: SignedIn, number: int,
                          message: str) -> web.Response:
    try:
        await asyncio.to_thread(request.app[CASES].case, number, signed.user, False)
    except NotAllowed:
        return await _render_queue(request, signed, 403, f"Case {number} is not yours.")
    except CaseError:
        return await _render_queue(request, signed, 400, f"There is no case {number}.")
    return await _render_case(request, signed, number, 400, message)


def _plain(exc: CaseError, number: int) -> str:
    text = str(exc)
    if "no case" in text:
        return f"There is no case {number}."
    if "not active" in text:
        return f"Case {number} is not active."
    if "already with" in text:
        return f"Case {number} is already with that person."
    return text


@signed_in
async def close(request: web.Request, signed: SignedIn) -> web.StreamResponse:
    number = _number(request)
    if number is None:
        return await _render_queue(request, signed, 400, "There is no such case.")
    outcome = request["form"].get("outcome")
    if outcome not in OUTCOMES:
        return await _transfer_error(request, signed, number,
                                     "Choose the outcome: referred, information given, no "
                                     "contact or other.")
    try:
        closed = await asyncio.to_thread(request.app[CASES].close, number, signed.user, outcome)
    except NotAllowed:
        return await _render_queue(request, signed, 403, f"Case {number} is not yours.")
    except CaseError as exc:
        return await _transfer_error(request, signed, number, _plain(exc, number))
    try:  # the assistant says goodbye and is back; the case is closed whatever happens here
        await request.app[RELAY].closed(closed)
    except RelayError as exc:
        logger.warning("console: the conversation of case %d was not told it closed (%s)",
                       number, exc)
    raise web.HTTPSeeOther("/")
