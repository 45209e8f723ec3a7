"""The caseworker console over HTTP (aiohttp's test server, a migrated SQLite database, a fake
relay): sign-in, lock-out, cookies, CSRF, sessions, permissions, bad input, the queue's order,
claim races, replies, transfer, closing, live updates, and what the pages never show."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from types import SimpleNamespace

import pytest
from aiohttp import CookieJar
from aiohttp.test_utils import TestClient, TestServer
from cryptography.fernet import Fernet, MultiFernet

from bot.cases.queue import Cases, CaseView
from bot.deployment import load_deployment
from bot.privacy.pseudonyms import pseudonym
from bot.settings import PROJECT_ROOT
from bot.storage import make_engine, session_factory, upgrade
from console.app import CSP, Config, create_app
from console.relay import Relay, RelayError
from console.users import Users

PASSWORD = "correct horse battery"
FERNET = MultiFernet([Fernet(Fernet.generate_key())])
PHONE = "+999 555 0142"
CONVERSATION = pseudonym(b"k" * 32, "sms", PHONE)
CSRF_FIELD = re.compile(r'name="csrf" value="([^"]+)"')
CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)">')


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = dt.datetime(2026, 11, 26, 8, 0, tzinfo=dt.timezone.utc)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta) -> None:
        self.now += dt.timedelta(**delta)


class FakeRelay(Relay):
    """Records what would reach the person; fails on demand."""

    def __init__(self) -> None:
        self.sent: list[tuple[int, str]] = []
        self.closed_cases: list[int] = []
        self.fail = False

    async def send(self, case: CaseView, text: str) -> None:
        if self.fail:
            raise RelayError("the assistant cannot be reached (test)")
        assert case.conversation_id  # the relay gets it; the pages never do
        self.sent.append((case.id, text))

    async def closed(self, case: CaseView) -> None:
        if self.fail:
            raise RelayError("the assistant cannot be reached (test)")
        self.closed_cases.append(case.id)


@pytest.fixture
def world(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path}/console.db")
    upgrade(engine)
    sessions = session_factory(engine)
    clock = Clock()
    users = Users(sessions, clock=clock)
    users.add("amina", PASSWORD)
    users.add("bob", PASSWORD)
    users.add("lead", PASSWORD, supervisor=True, language="fr")
    yield SimpleNamespace(sessions=sessions, clock=clock, users=users,
                          cases=Cases(sessions, FERNET, clock=clock), relay=FakeRelay())
    engine.dispose()


def open_case(world, n: int, level: str = "medium", **extra) -> CaseView:
    case = world.cases.open(f"c{n:032d}" if n else CONVERSATION, "sms", "fr", level, **extra)
    world.clock.advance(minutes=1)
    return case


@pytest.fixture
async def server(world, request):
    deployment = (load_deployment(PROJECT_ROOT / "deploy" / "sample.yml")
                  if request.node.get_closest_marker("deployment") else None)
    app = create_app(world.sessions, FERNET, world.relay,
                     Config(poll_seconds=0.05, heartbeat_seconds=0.5, clock=world.clock,
                            deployment=deployment))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield server
    await server.close()


@pytest.fixture
async def browser(server):
    """Makes browsers (each with its own cookies), signed in as ``name`` when given."""
    clients: list[TestClient] = []

    async def make(name: str | None = None) -> TestClient:
        # Secure cookies stay on: the test server's http origin is treated as secure.
        jar = CookieJar(unsafe=True, treat_as_secure_origin=[str(server.make_url("/"))])
        client = TestClient(server, cookie_jar=jar)
        await client.start_server()
        clients.append(client)
        if name:
            response = await sign_in(client, name, PASSWORD)
            assert response.status == 200 and "Signed in as" in await response.text()
        return client

    yield make
    for client in clients:
        await client.session.close()


async def sign_in(client: TestClient, name: str, password: str, **fetch):
    page = await client.get("/sign-in")
    token = CSRF_FIELD.search(await page.text()).group(1)
    return await client.post("/sign-in", data={"name": name, "password": password,
                                               "csrf": token}, **fetch)


async def csrf_of(client: TestClient) -> str:
    return CSRF_META.search(await (await client.get("/")).text()).group(1)


async def post(client: TestClient, path: str, **data):
    if "csrf" not in data:
        data["csrf"] = await csrf_of(client)
    return await client.post(path, data=data, allow_redirects=False)


# -- sign-in, lock-out, cookies, sessions -----------------------------------------------

async def test_sign_in_sets_a_strict_secure_http_only_session_cookie(browser):
    client = await browser()
    response = await sign_in(client, "amina", PASSWORD, allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/"
    cookie = next(v for v in response.headers.getall("Set-Cookie") if v.startswith("__Host-console="))
    flags = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "secure", "samesite=strict", "path=/"} <= flags
    assert not any(flag.startswith("domain") for flag in flags)
    page = await client.get("/")
    assert page.status == 200 and "Signed in as <strong>amina</strong>" in await page.text()


async def test_insecure_cookies_only_when_asked(world):
    app = create_app(world.sessions, FERNET, world.relay,
                     Config(secure_cookies=False, clock=world.clock))
    async with TestClient(TestServer(app)) as client:
        response = await sign_in(client, "amina", PASSWORD, allow_redirects=False)
        cookie = next(v for v in response.headers.getall("Set-Cookie") if v.startswith("console="))
        assert "Secure" not in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie


async def test_a_wrong_password_and_an_unknown_user_get_the_same_answer(browser):
    client = await browser()
    wrong = await sign_in(client, "amina", "not the password at all")
    unknown = await sign_in(client, "nobody", "not the password at all")
    assert wrong.status == unknown.status == 401
    strip = lambda text: CSRF_FIELD.sub("", text).replace("amina", "X").replace("nobody", "X")
    assert strip(await wrong.text()) == strip(await unknown.text())
    assert "Sign-in failed" in await wrong.text()
    assert (await client.get("/", allow_redirects=False)).status == 303


async def test_five_failures_lock_the_account_for_a_minute_at_first(browser, world):
    """The lock-out grows with each further five failures: tests/test_console_guessing.py."""
    client = await browser()
    for _ in range(5):
        assert (await sign_in(client, "amina", "wrong password here")).status == 401
    locked = await sign_in(client, "amina", PASSWORD)
    assert locked.status == 401  # the right password does not open a locked account
    assert "Sign-in failed" in await locked.text()
    assert (await sign_in(await browser(), "bob", PASSWORD)).status == 200  # others unaffected
    world.clock.advance(seconds=59)
    assert (await sign_in(client, "amina", PASSWORD)).status == 401
    world.clock.advance(seconds=2)
    assert (await sign_in(client, "amina", PASSWORD)).status == 200
    account = next(a for a in world.users.list() if a.name == "amina")
    assert account.locked_until is None and account.last_sign_in == world.clock.now


async def test_a_success_resets_the_count_of_failures(browser, world):
    client = await browser()
    for _ in range(4):
        await sign_in(client, "amina", "wrong password here")
    assert (await sign_in(client, "amina", PASSWORD)).status == 200
    other = await browser()
    for _ in range(4):
        await sign_in(other, "amina", "wrong password here")
    assert (await sign_in(other, "amina", PASSWORD)).status == 200


async def test_sign_in_without_its_form_token_is_refused(browser):
    client = await browser()
    no_token = await client.post("/sign-in", data={"name": "amina", "password": PASSWORD})
    assert no_token.status == 403
    await client.get("/sign-in")  # sets the cookie; the field is still wrong
    wrong = await client.post("/sign-in", data={"name": "amina", "password": PASSWORD,
                                                "csrf": "forged"})
    assert wrong.status == 403


async def test_idle_sessions_time_out_and_sign_out_ends_the_session(browser, world):
    client = await browser("amina")
    world.clock.advance(minutes=29)
    assert (await client.get("/", allow_redirects=False)).status == 200  # activity resets it
    world.clock.advance(minutes=29)
    assert (await client.get("/", allow_redirects=False)).status == 200
    world.clock.advance(minutes=31)
    response = await client.get("/", allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/sign-in"

    client = await browser("amina")
    cookie = next(iter(client.session.cookie_jar)).value
    response = await post(client, "/sign-out")
    assert response.status == 303 and response.headers["Location"] == "/sign-in"
    replay = await browser()
    replay.session.cookie_jar.update_cookies({"__Host-console": cookie},
                                             response_url=client.make_url("/"))
    assert (await replay.get("/", allow_redirects=False)).status == 303
    assert world.users.signed_in_count() == 0


async def test_a_disabled_user_is_signed_out_at_once(browser, world):
    client = await browser("amina")
    assert world.users.signed_in_count() == 1
    world.users.disable("amina")
    assert (await client.get("/", allow_redirects=False)).status == 303
    assert (await sign_in(await browser(), "amina", PASSWORD)).status == 401


# -- every endpoint: sessions, CSRF, bad input --------------------------------------------

GET_PAGES = ["/", "/cases/1", "/audit", "/audit?page=abc"]
GET_API = ["/api/state", "/api/cases/1/transcript", "/events"]
POSTS = ["/sign-out", "/cases/1/take", "/cases/1/reply", "/cases/1/transfer", "/cases/1/close"]


async def test_every_endpoint_needs_a_session(browser, world):
    open_case(world, 1)
    client = await browser()
    for path in GET_PAGES:
        response = await client.get(path, allow_redirects=False)
        assert (response.status, response.headers.get("Location")) == (303, "/sign-in"), path
    for path in GET_API:
        response = await client.get(path, allow_redirects=False)
        assert response.status == 401, path
        assert (await response.json()) == {"error": "sign in first"}
    for path in POSTS:
        response = await client.post(path, data={"text": "x"}, allow_redirects=False)
        assert (response.status, response.headers.get("Location")) == (303, "/sign-in"), path
    assert world.cases.queue()[0].status == "waiting"


async def test_every_post_without_the_right_csrf_token_is_403(browser, world):
    case = open_case(world, 1)
    client = await browser("amina")
    for path in POSTS:
        for token in (None, "forged", ""):
            data = {"text": "hello", "to": "bob", "outcome": "other"}
            if token is not None:
                data["csrf"] = token
            response = await client.post(path.replace("/1/", f"/{case.id}/"), data=data,
                                         allow_redirects=False)
            assert response.status == 403, (path, token)
            assert "did not come from the console" in await response.text()
    assert world.cases.queue()[0].status == "waiting"
    assert (await client.get("/", allow_redirects=False)).status == 200  # still signed in
    # The token of another session does not work either.
    other = await browser("bob")
    response = await post(client, f"/cases/{case.id}/take", csrf=await csrf_of(other))
    assert response.status == 403


@pytest.mark.parametrize("path, data, message", [
    ("/cases/999/take", {}, "There is no case 999."),
    ("/cases/abc/take", {}, "There is no such case."),
    ("/cases/999/reply", {"text": "hello"}, "There is no case 999."),
    ("/cases/999/transfer", {"to": "bob"}, "There is no case 999."),
    ("/cases/999/close", {"outcome": "referred"}, "There is no case 999."),
    ("/cases/{id}/close", {"outcome": "solved"}, "Choose the outcome"),
    ("/cases/{id}/close", {}, "Choose the outcome"),
    ("/cases/{id}/reply", {"text": "   "}, "The reply is empty"),
    ("/cases/{id}/reply", {}, "The reply is empty"),
    ("/cases/{id}/reply", {"text": "x" * 2001}, "The reply is too long: 2001 characters"),
    ("/cases/{id}/reply", {"canned": "made_up"}, "That canned reply does not exist."),
    ("/cases/{id}/transfer", {"to": "nobody"}, "Choose a colleague from the list"),
    ("/cases/{id}/transfer", {}, "Choose a colleague from the list"),
    ("/cases/{id}/transfer", {"to": "amina"}, "already with that person"),
    ("/cases/{id}/take", {}, "was taken by someone else"),
])
async def test_bad_input_gets_a_clear_400(browser, world, path, data, message):
    case = open_case(world, 1)
    client = await browser("amina")
    assert (await post(client, f"/cases/{case.id}/take")).status == 303
    response = await post(client, path.replace("{id}", str(case.id)), **data)
    assert response.status == (409 if "taken" in message else 400)
    assert message in await response.text()
    assert world.relay.sent == []
    assert world.cases.case(case.id, _user("amina"), audit=False).status == "active"


def _user(name: str, supervisor: bool = False):
    from bot.cases.queue import User

    return User(name, supervisor)


async def test_a_long_reply_keeps_its_text_in_the_box(browser, world):
    case = open_case(world, 1)
    client = await browser("amina")
    await post(client, f"/cases/{case.id}/take")
    response = await post(client, f"/cases/{case.id}/reply", text="y" * 2500)
    assert response.status == 400 and "y" * 2500 in await response.text()


# -- the queue, taking, permissions ----------------------------------------------------

async def test_the_queue_page_is_most_urgent_first_then_longest_waiting(browser, world):
    low = open_case(world, 1, "low")
    high_early = open_case(world, 2, "high")
    emergency = open_case(world, 3, "emergency", needs=["shelter"])
    high_late = open_case(world, 4, "high")
    none = open_case(world, 5, "none")
    world.clock.advance(minutes=10)
    client = await browser("amina")
    page = await (await client.get("/")).text()
    queue = page[page.index('id="queue-body"'):page.index('id="mine-body"')]
    shown = [int(n) for n in re.findall(r'<a href="/cases/(\d+)">', queue)]
    assert shown == [emergency.id, high_early.id, high_late.id, low.id, none.id]
    assert "5 waiting" in page and "Safe shelter" in page and "Emergency" in page
    assert "13 min" in page  # the emergency case: opened at 8:02, now 8:15
    state = await (await client.get("/api/state")).json()
    assert [c["number"] for c in state["queue"]] == shown


async def test_two_caseworkers_take_the_same_case_and_one_is_told_it_is_taken(browser, world):
    case = open_case(world, 1, "emergency")
    amina, bob = await browser("amina"), await browser("bob")
    tokens = [await csrf_of(amina), await csrf_of(bob)]
    responses = await asyncio.gather(*(
        client.post(f"/cases/{case.id}/take", data={"csrf": token}, allow_redirects=False)
        for client, token in zip((amina, bob), tokens)))
    assert sorted(r.status for r in responses) == [303, 409]
    loser = next(r for r in responses if r.status == 409)
    assert f"Case {case.id} was taken by someone else" in await loser.text()
    winner = next(r for r in responses if r.status == 303)
    assert winner.headers["Location"] == f"/cases/{case.id}"


async def test_a_caseworker_reads_only_their_cases_and_a_supervisor_reads_all(browser, world):
    case = open_case(world, 1, "high", needs=["legal_aid"])
    amina, bob, lead = await browser("amina"), await browser("bob"), await browser("lead")
    await post(amina, f"/cases/{case.id}/take")
    world.cases.record(case.id, "person", "Je travaille sans être payée.")
    assert "sans être payée" in await (await amina.get(f"/cases/{case.id}")).text()
    assert (await bob.get(f"/cases/{case.id}")).status == 403
    assert (await bob.get(f"/api/cases/{case.id}/transcript")).status == 403
    assert (await post(bob, f"/cases/{case.id}/reply", text="hi")).status == 403
    assert (await post(bob, f"/cases/{case.id}/close", outcome="other")).status == 403
    assert (await post(bob, f"/cases/{case.id}/transfer", to="bob")).status == 403
    mine = await (await bob.get("/api/state")).json()
    assert mine["mine"] == []
    page = await (await lead.get(f"/cases/{case.id}")).text()
    assert "sans être payée" in page and "Aide juridique" in page  # needs in French for lead
    assert [c["number"] for c in (await (await lead.get("/api/state")).json())["mine"]] == [case.id]
    response = await post(lead, f"/cases/{case.id}/transfer", to="bob")
    assert response.status == 303 and response.headers["Location"] == f"/cases/{case.id}"
    assert (await amina.get(f"/cases/{case.id}")).status == 403
    assert "sans être payée" in await (await bob.get(f"/cases/{case.id}")).text()
    actions = [(e.actor, e.action, e.detail) for e in world.cases.audit(case.id)]
    assert ("lead", "transferred", "bob") in actions and ("lead", "opened", None) in actions


async def test_a_caseworker_transfers_a_case_away(browser, world):
    case = open_case(world, 1)
    amina = await browser("amina")
    await post(amina, f"/cases/{case.id}/take")
    page = await (await amina.get(f"/cases/{case.id}")).text()
    assert '<option value="bob">' in page and '<option value="amina">' not in page
    response = await post(amina, f"/cases/{case.id}/transfer", to="bob")
    assert response.status == 303 and response.headers["Location"] == "/"
    assert world.cases.case(case.id, _user("bob")).caseworker == "bob"


# -- replies, closing ----------------------------------------------------------------------

@pytest.mark.deployment
async def test_canned_replies_give_the_deployments_numbers_and_confidentiality(browser, world):
    """"Danger now" carries the numbers themselves (for the case's country), and "what
    stays between us" the organisation's own words (issue 16, caseworkers' canned replies)."""
    case = open_case(world, 1, area="NG-BO-MAI")
    amina = await browser("amina")
    await post(amina, f"/cases/{case.id}/take")
    page = await (await amina.get(f"/cases/{case.id}")).text()
    assert "What stays between us" in page and "Someone you trust?" in page
    await post(amina, f"/cases/{case.id}/reply", canned="danger_now")
    sent = world.relay.sent[-1][1]
    assert sent.startswith("Si vous êtes en danger maintenant, appelez : Ligne de protection")
    assert "+999 234 001" in sent and "{" not in sent  # Nigeria's, not the default's
    await post(amina, f"/cases/{case.id}/reply", canned="confidentiality")
    deployment = load_deployment(PROJECT_ROOT / "deploy" / "sample.yml")
    assert world.relay.sent[-1][1] == deployment.confidentiality["fr"]


async def test_without_a_confidentiality_text_that_canned_reply_is_not_offered(browser, world):
    case = open_case(world, 1)
    amina = await browser("amina")
    await post(amina, f"/cases/{case.id}/take")
    page = await (await amina.get(f"/cases/{case.id}")).text()
    assert "What stays between us" not in page and "Take your time" in page
    response = await post(amina, f"/cases/{case.id}/reply", canned="confidentiality")
    assert response.status == 400
    assert "not set up for this deployment" in await response.text()
    assert world.relay.sent == []


async def test_a_reply_goes_to_the_relay_and_into_the_transcript(browser, world):
    case = open_case(world, 1)
    amina = await browser("amina")
    await post(amina, f"/cases/{case.id}/take")
    world.cases.record(case.id, "person", "Bonjour ?")
    response = await post(amina, f"/cases/{case.id}/reply", text="Bonjour, je suis là.\r\nOui.")
    assert response.status == 303 and response.headers["Location"] == f"/cases/{case.id}#reply"
    assert world.relay.sent == [(case.id, "Bonjour, je suis là.\nOui.")]
    await post(amina, f"/cases/{case.id}/reply", canned="take_your_time")
    assert world.relay.sent[-1] == (case.id, "Prenez votre temps. Je suis toujours là.")
    lines = (await (await amina.get(f"/api/cases/{case.id}/transcript")).json())["transcript"]
    assert [(l["author"], l["text"]) for l in lines] == [
        ("person", "Bonjour ?"), ("caseworker", "Bonjour, je suis là.\nOui."),
        ("caseworker", "Prenez votre temps. Je suis toujours là.")]
    assert [e.action for e in world.cases.audit(case.id)].count("replied") == 2


async def test_an_undelivered_reply_is_not_recorded_and_stays_in_the_box(browser, world):
    case = open_case(world, 1)
    amina = await browser("amina")
    await post(amina, f"/cases/{case.id}/take")
    world.relay.fail = True
    response = await post(amina, f"/cases/{case.id}/reply", text="Are you safe?")
    assert response.status == 502
    text = await response.text()
    assert "Not sent" in text and ">Are you safe?</textarea>" in text
    assert world.cases.transcript(case.id, _user("amina")) == []


async def test_closing_destroys_the_transcript(browser, world):
    case = open_case(world, 1)
    amina = await browser("amina")
    await post(amina, f"/cases/{case.id}/take")
    world.cases.record(case.id, "person", "a secret")
    response = await post(amina, f"/cases/{case.id}/close", outcome="information_given")
    assert response.status == 303 and response.headers["Location"] == "/"
    assert world.relay.closed_cases == [case.id]  # the conversation hears the goodbye
    assert (await amina.get(f"/api/cases/{case.id}/transcript")).status == 410
    page = await (await amina.get(f"/cases/{case.id}")).text()
    assert "transcript was destroyed" in page and "a secret" not in page
    assert "Information given" in page
    again = await post(amina, f"/cases/{case.id}/close", outcome="other")
    assert again.status == 400 and "is not active" in await again.text()
    assert (await post(amina, f"/cases/{case.id}/reply", text="hi")).status == 400
    assert ("amina", "closed", "information_given") in [
        (e.actor, e.action, e.detail) for e in world.cases.audit(case.id)]


# -- what is never shown, headers, live updates ------------------------------------------

async def test_no_page_or_response_carries_the_conversation_id_or_the_address(browser, world):
    case = open_case(world, 0, "high", needs=["shelter"], area="NG008")
    waiting = open_case(world, 2)
    amina, lead = await browser("amina"), await browser("lead")
    await post(amina, f"/cases/{case.id}/take")
    world.cases.record(case.id, "person", "help")
    bodies = []
    for client in (amina, lead):
        for path in ["/", f"/cases/{case.id}", f"/cases/{waiting.id}", "/api/state",
                     f"/api/cases/{case.id}/transcript", "/audit"]:
            response = await client.get(path)
            bodies.append(await response.text() + str(dict(response.headers)))
        async with client.get(f"/events?case={case.id}") as stream:
            bodies.append((await stream.content.readuntil(b"\n\n")).decode())
    bodies.append(await (await post(amina, f"/cases/{case.id}/reply", text="")).text())
    joined = "\n".join(bodies)
    assert f"Case {case.id}" in joined
    digits = re.sub(r"\D", "", PHONE)
    for secret in (CONVERSATION, CONVERSATION[:12], CONVERSATION[-12:], digits, digits[-7:]):
        assert secret not in joined
    assert "conversation_id" not in joined


async def test_every_response_has_the_content_security_policy(browser, world):
    client = await browser("amina")
    for path in ["/", "/sign-in", "/static/console.js", "/static/console.css", "/cases/999",
                 "/api/state", "/audit"]:
        response = await client.get(path, allow_redirects=False)
        assert response.headers["Content-Security-Policy"] == CSP, path
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Cache-Control"] == "no-store"
    assert "default-src 'self'" in CSP and "unsafe-inline" not in CSP


def test_the_pages_load_nothing_from_elsewhere_and_have_no_inline_script_or_style():
    from console.app import HERE

    for path in [*HERE.joinpath("templates").glob("*.html"), *HERE.joinpath("static").glob("*")]:
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"(src|href)=\"(https?:)?//", text), path
        assert "style=" not in text and "onclick" not in text and "<style" not in text, path
        if path.suffix == ".html":
            assert re.findall(r"<script[^>]*>", text) in ([], ['<script src="/static/console.js" defer>'])
    for name in ("case.html", "audit.html", "sign_in.html", "queue.html", "_case_rows.html"):
        html = HERE.joinpath("templates", name).read_text(encoding="utf-8")
        # Every field has a label, every visible field an id; every header cell a scope.
        for field_id in re.findall(r'<(?:textarea|select|input)[^>]*\sid="([^"]+)"', html):
            assert f'for="{field_id}"' in html or "outcome-{{" in field_id, (name, field_id)
        for field in re.findall(r'<(?:textarea|select|input)(?![^>]*type="hidden")[^>]*>', html):
            assert " id=" in field, (name, field)
        for header in re.findall(r"<th(?:\s[^>]*)?>", html):
            assert "scope=" in header, (name, header)


async def test_the_event_stream_sends_the_queue_when_a_case_opens(browser, world):
    client = await browser("amina")
    async with client.get("/events") as stream:
        assert stream.headers["Content-Type"].startswith("text/event-stream")
        first = (await stream.content.readuntil(b"\n\n")).decode()
        assert first.startswith("event: state\n") and '"queue": []' in first
        case = await asyncio.to_thread(open_case, world, 7, "emergency")
        update = (await asyncio.wait_for(stream.content.readuntil(b"\n\n"), 5)).decode()
        assert f'"number": {case.id}' in update and '"level": "emergency"' in update


async def test_the_event_stream_of_a_case_sends_new_messages_and_ends_with_the_session(
        browser, world):
    case = open_case(world, 1)
    client = await browser("amina")
    await post(client, f"/cases/{case.id}/take")
    async with client.get(f"/events?case={case.id}") as stream:
        await stream.content.readuntil(b"\n\n")
        await asyncio.to_thread(world.cases.record, case.id, "person", "Vous êtes là ?")
        update = (await asyncio.wait_for(stream.content.readuntil(b"\n\n"), 5)).decode()
        assert "Vous êtes là ?" in update
        await post(client, "/sign-out")
        end = (await asyncio.wait_for(stream.content.readuntil(b"\n\n"), 5)).decode()
        assert end.startswith("event: signed-out")


async def test_areas_are_named_from_the_gazetteer_in_the_caseworkers_language(world):
    from bot.services.lookup import Directory
    from bot.services.places import Gazetteer, Place
    from bot.services.runtime import Loaded

    gazetteer = Gazetteer()
    gazetteer.add(Place("ng-maiduguri", "city", "NG", 11.83, 13.15,
                        (("en", "Maiduguri"), ("fr", "Maïduguri (fr)"))))
    app = create_app(world.sessions, FERNET, world.relay, Config(
        clock=world.clock, places=lambda: Loaded(Directory([]), gazetteer, 1)))
    case = open_case(world, 1, area="ng-maiduguri")
    async with TestClient(TestServer(app)) as client:
        client.session.cookie_jar._treat_as_secure_origin = [client.make_url("/").origin()]
        await sign_in(client, "lead", PASSWORD)
        page = await (await client.get(f"/cases/{case.id}")).text()
        assert "Maïduguri (fr)" in page and "ng-maiduguri" not in page


async def test_the_access_log_keeps_method_route_template_status_and_time_only(world, caplog):
    """Issue 17 §3: no address, no user agent, no query string, no case number."""
    import logging

    from console.access_log import TemplateAccessLogger, logger as access_logger

    app = create_app(world.sessions, FERNET, world.relay, Config(clock=world.clock))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server(access_log_class=TemplateAccessLogger, access_log=access_logger)
    client = TestClient(server)
    await client.start_server()
    caplog.set_level(logging.INFO, logger="console.access")
    try:
        headers = {"User-Agent": "QuillfeatherBrowser/9.9", "Referer": "http://x.example/ref"}
        for path in ("/sign-in?name=quillfeather", "/cases/4471?tab=quillfeather",
                     "/no/such/quillfeather", "/static/console.css"):
            await (await client.get(path, headers=headers, allow_redirects=False)).read()
        for _ in range(50):  # a file's line is written once the file is sent
            if sum(r.name == "console.access" for r in caplog.records) >= 4:
                break
            await asyncio.sleep(0.02)
    finally:
        await client.close()
        await server.close()
    lines = [r.getMessage() for r in caplog.records if r.name == "console.access"]
    assert len(lines) == 4, lines
    assert lines[0].startswith("GET /sign-in 200 ")
    assert lines[1].startswith("GET /cases/{number} 30")  # not signed in: sent to sign in
    assert lines[2].startswith("GET (no route) 404 ")
    assert lines[3].startswith("GET /static 200 ")
    logged = "\n".join(lines)
    for secret in ("quillfeather", "Quillfeather", "4471", "127.0.0.1", "x.example", "?"):
        assert secret not in logged
    assert all(line.endswith(" ms") for line in lines)


async def test_the_queue_says_when_a_channel_reached_its_cap_of_new_cases(browser, world):
    """Issue 17 §2: a clear line in the console when a channel's cap (the deployment's
    handoff.max_new_cases_per_hour, 30 by default) is reached, gone an hour later."""
    for n in range(30):
        world.cases.open(f"c{n:031d}", "sms", "en", "high")
        world.clock.advance(seconds=10)
    world.cases.open("c" + "7" * 31, "telegram", "en", "low")
    amina = await browser("amina")
    page = await (await amina.get("/")).text()
    assert page.count('class="alert error at-cap"') == 1
    assert "SMS reached the cap of 30 new cases in an hour (30 in the last hour)" in page
    assert "handoff.max_new_cases_per_hour" in page
    world.clock.advance(minutes=60)
    assert "at-cap" not in await (await amina.get("/")).text()


async def test_the_queue_and_the_case_say_which_replies_wait_for_the_provider(browser, world):
    """Issue 17 §5: during a provider storm "the operator sees what was delayed": replies
    waiting now (per channel, since when), and over the last day those late and dropped; the
    case page of a person whose replies wait says so (without the conversation id)."""
    from bot.delayed import DelayedReplies

    delays = DelayedReplies(world.sessions, clock=world.clock)
    case = open_case(world, 0)  # CONVERSATION, by SMS
    world.cases.claim(case.id, _user("amina"))
    assert delays.note("sms", CONVERSATION, retry_in=5)
    assert delays.note("sms", "c" + "1" * 31, retry_in=5)
    assert not delays.note("sms", CONVERSATION, retry_in=5)  # one row per conversation
    world.clock.advance(minutes=12)
    amina = await browser("amina")
    page = await (await amina.get("/")).text()
    assert ("SMS: the provider is not taking messages. Replies to 2 people wait, the oldest "
            "for 12 min") in page
    case_page = await (await amina.get(f"/cases/{case.id}")).text()
    assert "The SMS provider has not taken the replies to this person for 12 min" in case_page
    assert CONVERSATION not in page + case_page

    for row_id in delays.due("sms"):  # the provider takes messages again: delivered late
        taken = delays.take(row_id, "owner", 60)
        assert delays.finish(taken.id, "owner", parts=2)
    page = await (await amina.get("/")).text()
    assert "not taking messages" not in page
    assert ("SMS, last 24 hours: replies to 2 people went out late (the longest wait 12 min)"
            in page)
    assert "has not taken" not in await (await amina.get(f"/cases/{case.id}")).text()
    state = await (await amina.get("/api/state")).json()
    assert state["delayed"] == [{"channel": "SMS", "waiting": 0, "oldest": "", "late": 2,
                                 "longest": "12 min", "dropped": 0}]
    world.clock.advance(hours=25)
    assert "last 24 hours" not in await (await amina.get("/")).text()
