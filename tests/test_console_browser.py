"""The caseworker console in a real headless browser (issue 6): sign in, take the top case,
exchange messages live, transfer, close; the transcript unreadable afterwards; the person's
address nowhere in what the browser received; nothing from elsewhere, no script error.

The console runs for real on a free port of 127.0.0.1 in a thread (``LocalServer``), on a
migrated SQLite database with three users (two caseworkers and a supervisor), a clock the test
moves and a fake relay (``tests/test_console.py``). The person's side is the test calling
``Cases.record(author="person")``, as the dialogue does. No Rasa model is needed. The session
cookie stays Secure and ``__Host-``: Chromium treats http://127.0.0.1 as a secure origin.
Every browser session ends by checking that no request left 127.0.0.1 and that the page logged
no error. Screenshots go to var/test-artifacts/browser/console/ (git-ignored).
"""

from __future__ import annotations

import html
import json
import re
from urllib.parse import urlsplit

import pytest
from aiohttp import web

from bot.privacy.pseudonyms import pseudonym
from console.app import Config, create_app
from console.canned import load_canned
from console.views import LEVEL_WORDS, OUTCOME_WORDS
from tests import test_console
from tests.test_console import CONVERSATION, FERNET, PASSWORD, PHONE, open_case
from tests.utils.browser import ARTIFACTS as BROWSER_ARTIFACTS
from tests.utils.browser import Session, chromium
from tests.utils.local_server import LocalServer

pytestmark = pytest.mark.slow

# The fixture of tests/test_console.py: a migrated SQLite database in tmp_path, the users amina
# and bob (caseworkers) and lead (supervisor) made with console.users, a clock, a fake relay.
world = test_console.world
ARTIFACTS = BROWSER_ARTIFACTS / "console"
WIDTH, HEIGHT = 1366, 768
TIMEOUT_MS = 15_000  # a local server: anything slower is a failure
CANNED = next(c for c in load_canned() if c.key == "take_your_time")
# A second case of the same person on another channel: its own pseudonym, never shown either.
OTHER_CONVERSATION = pseudonym(b"k" * 32, "telegram", PHONE)


class ConsoleServer(LocalServer):
    name = "console"

    def __init__(self, world) -> None:
        super().__init__()
        self.world = world

    def application(self) -> web.Application:
        return create_app(self.world.sessions, FERNET, self.world.relay,
                          Config(poll_seconds=0.05, heartbeat_seconds=0.5,
                                 clock=self.world.clock))


class ConsoleSession(Session):
    """A browser session that also keeps every body it received, the server-sent events
    included (read through the DevTools protocol: an event stream never finishes)."""

    def __init__(self, browser, test_name: str) -> None:
        super().__init__(browser, test_name, WIDTH, HEIGHT, ARTIFACTS)
        self.context.set_default_timeout(TIMEOUT_MS)
        self.received: list[str] = []
        self.unread: list[str] = []  # the addresses of bodies that could not be read
        self.streamed: list[str] = []  # the server-sent events' data (also in ``received``)
        self.context.on("requestfinished", self._keep)
        devtools = self.context.new_cdp_session(self.page)
        devtools.on("Network.eventSourceMessageReceived", self._event)
        devtools.send("Network.enable")
        self.dialogs: list[str] = []
        self.page.on("dialog", self._accept)
        self.expected_statuses: set[int] = set()  # error answers the test asks for

    def unexpected_errors(self) -> list[str]:
        """The page's errors, but for Chromium's note on an error answer the test asked for."""
        asked = {f"the server responded with a status of {status} " for status
                 in self.expected_statuses}
        return [e for e in self.errors if not any(a in e for a in asked)]

    def _keep(self, request) -> None:
        """Keeps what a finished request carried. A body Chromium no longer has (its page was
        left at once) is noted in ``unread``, not raised: raised in an event handler, it
        would fail whatever Playwright call comes next."""
        from playwright.sync_api import Error as PlaywrightError

        try:
            response = request.response()
            if response is None:
                return
            self.received.append(request.url + json.dumps(response.headers))
            if request.post_data:
                self.received.append(request.post_data)
            if not 300 <= response.status < 400:
                self.received.append(response.text())
        except PlaywrightError:
            self.unread.append(request.url)

    def _event(self, event: dict) -> None:
        self.streamed.append(event["data"])
        self.received.append(event["data"])

    def _accept(self, dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.accept()

    def look(self) -> None:
        """Keeps the page as it is now (live updates included)."""
        self.received.append(self.page.content())


@pytest.fixture(scope="module")
def browser():
    with chromium(ARTIFACTS) as launched:
        yield launched


@pytest.fixture
def console(world):
    server = ConsoleServer(world).start()
    yield f"http://127.0.0.1:{server.port}"
    server.stop()


@pytest.fixture
def sessions(browser, request, console):
    """Opens browser sessions (each its own profile); checks each when the test ends."""
    opened: list[ConsoleSession] = []

    def make() -> ConsoleSession:
        session = ConsoleSession(browser, f"{request.node.name}-{len(opened) + 1}")
        opened.append(session)
        return session

    yield make
    try:
        for session in opened:
            assert session.outside_requests() == [], "the console reached another host"
            assert session.unexpected_errors() == [], "the page logged errors"
    finally:
        for session in opened:
            session.context.close()


def sign_in(session: ConsoleSession, console: str, name: str) -> None:
    page = session.page
    page.goto(f"{console}/sign-in")
    page.fill("#name", name)
    page.fill("#password", PASSWORD)
    with page.expect_navigation(url=f"{console}/"):
        page.click("button:text('Sign in')")
    assert page.locator(".who").inner_text() == f"Signed in as {name}" + (
        " (supervisor)" if name == "lead" else "")


def rows(page, body: str) -> list[int]:
    return [int(n) for n in page.locator(f"#{body} tr[data-number]").evaluate_all(
        "rows => rows.map(r => r.dataset.number)")]


def transcript(page) -> list[tuple[str, str]]:
    """(who, text) of each line shown, read from the elements (not from the laid-out text,
    which lacks its line breaks while the live update replaces the list)."""
    return [tuple(pair) for pair in page.locator("#transcript li:not(.empty)").evaluate_all(
        "items => items.map(li => [li.querySelector('.who').textContent.trim(),"
        " li.querySelector('p').textContent])")]


def wait_for_line(page, text: str) -> None:
    page.locator("#transcript li p", has_text=text).wait_for()


def send_reply(page, text: str) -> None:
    page.fill("#reply-text", text)
    with page.expect_navigation(url=re.compile(r"/cases/\d+#reply$")):
        page.click("#reply button[type=submit]")
    wait_for_line(page, text)


def send_canned(page) -> None:
    page.click("details.canned summary")
    with page.expect_navigation(url=re.compile(r"/cases/\d+#reply$")):
        page.click(f"details.canned button[type=submit]:has-text('{CANNED.label}')")
    wait_for_line(page, CANNED.texts["fr"])  # the cases of these tests are in French


def transfer(page, to: str) -> None:
    page.select_option("#transfer-to", to)
    with page.expect_navigation():
        page.click(".case-actions button:text('Transfer')")


def close_case(session: ConsoleSession, number: int, outcome: str) -> None:
    page = session.page
    page.check(f"#outcome-{outcome}")
    with page.expect_navigation(url=re.compile(r"/$")):
        page.click(".case-actions button:has-text('Close case')")
    assert session.dialogs[-1] == f"Close case {number}? Its transcript will be destroyed."


def fetch(page, path: str) -> tuple[int, str]:
    """The page's own request to the console's API (a JSON document opened in the tab would
    make Chromium ask for /favicon.ico)."""
    answer = page.evaluate("async path => { const r = await fetch(path);"
                           " return [r.status, await r.text()]; }", path)
    return answer[0], answer[1]


def person_writes(world, case, text: str) -> None:
    """The person's message, recorded as the dialogue records it."""
    world.cases.record(case.id, "person", text)


# -- tests -------------------------------------------------------------------------------------

def test_take_answer_transfer_and_close_a_case(sessions, console, world):
    low = open_case(world, 1, "low")
    high = open_case(world, 2, "high", needs=["shelter", "legal_aid"], area="NG008")
    emergency = open_case(world, 3, "emergency", needs=["medical"])
    medium = open_case(world, 4, "medium")
    world.clock.advance(minutes=5)
    amina = sessions()
    amina.expected_statuses.add(401)  # the refused sign-in
    page = amina.page

    # Sign in with the keyboard; a wrong password first is refused and keeps the name.
    page.goto(f"{console}/")
    assert urlsplit(page.url).path == "/sign-in"
    assert page.evaluate("() => document.activeElement.id") == "name"  # autofocus
    page.keyboard.type("amina")
    page.keyboard.press("Tab")
    page.keyboard.type("not the password")
    page.keyboard.press("Enter")
    page.wait_for_load_state()
    assert "Sign-in failed" in page.locator("[role=alert]").inner_text()
    assert page.input_value("#name") == "amina" and page.input_value("#password") == ""
    amina.shot("refused")
    page.fill("#password", PASSWORD)
    page.press("#password", "Enter")
    page.wait_for_url(f"{console}/")
    cookies = {c["name"]: c for c in amina.context.cookies()}
    session_cookie = cookies["__Host-console"]  # (the sign-in cookie stays: see the last test)
    assert session_cookie["secure"] and session_cookie["httpOnly"]
    assert session_cookie["sameSite"] == "Strict"
    assert page.evaluate("() => document.cookie") == ""

    # The queue: most urgent first; nothing is mine yet.
    assert rows(page, "queue-body") == [emergency.id, high.id, medium.id, low.id]
    assert page.locator("#queue-count").inner_text() == "4 waiting"
    assert rows(page, "mine-body") == []
    top = page.locator("#queue-body tr").first
    assert LEVEL_WORDS["emergency"].startswith(top.locator(".badge").inner_text())
    amina.shot("queue")

    # Take the top case with the keyboard: its link, Tab to its button, Enter.
    top.locator("a").focus()
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.textContent") == (
        f"Take case {emergency.id}")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{console}/cases/{emergency.id}")
    summary = page.locator(".summary dl").inner_text()
    assert LEVEL_WORDS["emergency"] in summary and "Medical" in summary
    assert "amina" in summary and "SMS" in summary
    assert page.locator("#case-status").inner_text() == "Active"
    assert transcript(page) == []

    # The person writes: the line appears without a reload.
    page.evaluate("() => { window.notReloaded = true; }")
    person_writes(world, emergency, "Is anyone there? I cannot leave the house.")
    wait_for_line(page, "I cannot leave the house.")
    assert page.evaluate("() => window.notReloaded") is True
    assert transcript(page) == [("Person", "Is anyone there? I cannot leave the house.")]

    # A typed reply and a canned one: in the transcript and handed to the relay.
    send_reply(page, "I am here. Are you safe right now?")
    send_canned(page)
    assert transcript(page) == [
        ("Person", "Is anyone there? I cannot leave the house."),
        ("Caseworker", "I am here. Are you safe right now?"),
        ("Caseworker", CANNED.texts["fr"])]
    assert world.relay.sent == [(emergency.id, "I am here. Are you safe right now?"),
                                (emergency.id, CANNED.texts["fr"])]
    person_writes(world, emergency, "Yes, for now.")
    wait_for_line(page, "Yes, for now.")
    amina.shot("case")

    # Transfer to the colleague: the case leaves "my cases".
    transfer(page, "bob")
    page.wait_for_url(f"{console}/")
    assert rows(page, "mine-body") == []
    assert emergency.id not in rows(page, "queue-body")

    # The colleague, in another browser profile, has it, reads it and closes it.
    bob = sessions()
    bob.expected_statuses.add(410)  # the destroyed transcript
    sign_in(bob, console, "bob")
    assert rows(bob.page, "mine-body") == [emergency.id]
    bob.page.click(f"#mine-body a:text('Case {emergency.id}')")
    bob.page.wait_for_url(f"{console}/cases/{emergency.id}")
    assert [text for _, text in transcript(bob.page)][-1] == "Yes, for now."
    assert len(transcript(bob.page)) == 4
    close_case(bob, emergency.id, "referred")
    assert world.relay.closed_cases == [emergency.id]  # the conversation is told
    assert rows(bob.page, "mine-body") == []
    bob.page.goto(f"{console}/cases/{emergency.id}")
    main = bob.page.locator("main").inner_text()
    assert "Its transcript was destroyed when it closed." in main
    assert OUTCOME_WORDS["referred"] in main and "cannot leave" not in main
    assert bob.page.locator("#transcript, #reply-text").count() == 0
    bob.shot("closed")
    status, text = fetch(bob.page, f"/api/cases/{emergency.id}/transcript")
    assert status == 410 and "cannot leave" not in text
    # The first caseworker may no longer read it at all.
    amina.expected_statuses.add(403)
    assert fetch(page, f"/api/cases/{emergency.id}/transcript")[0] == 403


def test_the_persons_address_is_nowhere_in_what_the_browser_received(
        sessions, console, world):
    case = open_case(world, 0, "high", needs=["shelter"], area="NG008")  # CONVERSATION
    other = world.cases.open(OTHER_CONVERSATION, "telegram", "en", "low")
    said = [f"My number is {PHONE}, call me after 6.", "Are you there?",
            f"Again, it is {PHONE}."]
    person_writes(world, case, said[0])

    amina, lead = sessions(), sessions()
    sign_in(amina, console, "amina")
    amina.look()
    amina.page.click(f"#queue-body tr[data-number='{case.id}'] button")
    amina.page.wait_for_url(f"{console}/cases/{case.id}")
    person_writes(world, case, said[1])
    wait_for_line(amina.page, said[1])
    send_reply(amina.page, "I am here.")
    send_canned(amina.page)
    person_writes(world, case, said[2])
    wait_for_line(amina.page, said[2])
    amina.look()
    for path in ["/api/state", f"/api/cases/{case.id}/transcript"]:
        assert fetch(amina.page, path)[0] == 200
    amina.page.goto(f"{console}/cases/{other.id}")
    amina.look()

    sign_in(lead, console, "lead")
    assert rows(lead.page, "mine-body") == [case.id]  # a supervisor sees all active cases
    lead.look()
    lead.page.goto(f"{console}/cases/{case.id}")
    wait_for_line(lead.page, said[2])
    lead.look()
    transfer(lead.page, "bob")
    lead.page.wait_for_url(f"{console}/cases/{case.id}")
    close_case(lead, case.id, "information_given")
    lead.page.goto(f"{console}/cases/{case.id}")
    lead.look()
    amina.page.goto(f"{console}/")
    amina.look()

    everything = "\n".join(amina.received + lead.received)
    assert f"Case {case.id}" in everything and "/events" in everything
    assert all(text in everything for text in said)  # the pages, the API and the stream
    assert any(said[1] in data for data in amina.streamed)  # the live line, as it came
    for secret in (CONVERSATION, OTHER_CONVERSATION):
        for part in (secret, secret[:12], secret[-12:]):
            assert part not in everything, part
    assert "conversation_id" not in everything
    # The number is only ever inside what the person typed (content, not the address).
    for text in said:
        for form in (text, html.escape(text), json.dumps(text)[1:-1]):
            everything = everything.replace(form, "")
    digits = re.sub(r"\D", "", PHONE)
    assert PHONE not in everything and digits not in everything and digits[-7:] not in everything


def test_nothing_from_elsewhere_and_the_pages_fit_the_screen(sessions, console, world):
    """Every session's teardown checks the hosts and the errors too; this one looks closer."""
    cases = [open_case(world, n, level, needs=needs, area="NG008")
             for n, level, needs in [(1, "none", []), (2, "medium", ["documentation"]),
                                     (3, "high", ["shelter", "legal_aid", "medical"])]]
    session = sessions()
    page = session.page
    sign_in(session, console, "amina")
    assert page.evaluate("() => document.scrollingElement.scrollWidth") <= WIDTH
    session.shot("queue")
    page.click(f"#queue-body tr[data-number='{cases[2].id}'] button")
    page.wait_for_url(f"{console}/cases/{cases[2].id}")
    person_writes(world, cases[2], "x" * 300)  # one long word
    person_writes(world, cases[2], "A longer message, " * 20)
    wait_for_line(page, "A longer message,")
    send_reply(page, "Thank you for writing.")
    assert page.viewport_size == {"width": WIDTH, "height": HEIGHT}
    assert page.evaluate("() => document.scrollingElement.scrollWidth") <= WIDTH
    assert page.evaluate("() => window.scrollX") == 0
    box = page.locator("#transcript")
    assert box.evaluate("el => el.scrollWidth <= el.clientWidth"), "the long word overflows"
    session.shot("case")

    urls = [urlsplit(r.url) for r in session.requests]
    assert {u.hostname for u in urls} == {"127.0.0.1"}
    assert {"/", "/sign-in", "/static/console.js", "/static/console.css", "/events",
            f"/cases/{cases[2].id}"} <= {u.path for u in urls}
    assert session.errors == []


def test_signing_in_and_out_leaves_no_cookie_behind(sessions, console):
    session = sessions()
    sign_in(session, console, "amina")
    assert [c["name"] for c in session.context.cookies()] == ["__Host-console"]
    session.page.click("button:text('Sign out')")
    session.page.wait_for_url(f"{console}/sign-in")
    assert [c["name"] for c in session.context.cookies()] == ["__Host-console-sign-in"]


def test_the_person_leaves_and_the_supervisor_reads_it_in_the_audit_by_keyboard(
        sessions, console, world):
    """The person's quick exit reaches the open case page in plain words (the messages leave
    the screen); the supervisor reaches the audit page from the navigation by keyboard and
    reads who took the case and that the person ended it; the page passes the accessibility
    check (labels, contrast, visible focus)."""
    from tests.utils.accessibility import audit, focus_problems

    case = open_case(world, 1, "high", needs=["shelter"])
    amina = sessions()
    sign_in(amina, console, "amina")
    amina.page.click(f"#queue-body tr[data-number='{case.id}'] button")
    amina.page.wait_for_url(f"{console}/cases/{case.id}")
    person_writes(world, case, "Please, I have to go now.")
    wait_for_line(amina.page, "I have to go now.")
    world.cases.end_by_person(case.conversation_id)  # what a quick exit does to the case
    live = amina.page.locator("#case-live")
    live.wait_for(state="visible")
    assert live.inner_text() == (
        "This case is now closed. The person ended the conversation (quick exit or “forget "
        "me”); the messages were deleted. Reload the page to see it.")
    assert "I have to go now." not in amina.page.locator("#transcript").inner_text()
    amina.page.reload()
    assert "The person ended the conversation" in amina.page.locator("#closed-reason").inner_text()
    amina.shot("ended-by-person")
    assert amina.page.locator("a[href='/audit']").count() == 0  # not for caseworkers

    lead = sessions()
    sign_in(lead, console, "lead")
    page = lead.page
    page.locator(".skip").focus()  # the first stop of the keyboard, then the navigation
    for _ in range(5):
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement.textContent") == "Audit":
            break
    assert page.evaluate("() => document.activeElement.getAttribute('href')") == "/audit"
    with page.expect_navigation(url=f"{console}/audit"):
        page.keyboard.press("Enter")
    table = page.locator("#audit tbody").inner_text()
    assert "The person\tended the conversation (quick exit or “forget me”)" in table
    assert "amina\ttook the case" in table and "I have to go now." not in table
    page.fill("#audit-case", str(case.id))
    with page.expect_navigation(url=re.compile(rf"/audit\?.*case={case.id}")):
        page.press("#audit-case", "Enter")
    # taken, opened, ended by the person, opened again (amina's reload)
    assert page.locator("#audit tbody tr").count() == 4
    assert audit(page) == [] and focus_problems(page) == []
    lead.shot("audit")


def test_the_tabs_title_counts_who_is_waiting(sessions, console, world):
    """A caseworker working in another tab sees a case arrive in the tab's title."""
    amina = sessions()
    sign_in(amina, console, "amina")
    page = amina.page
    assert page.title() == "Queue · Helpline console"
    open_case(world, 1, "medium")
    page.wait_for_function("() => document.title.startsWith('(1 waiting)')")
    assert page.title() == "(1 waiting) Queue · Helpline console"
    open_case(world, 2, "emergency")
    page.wait_for_function("() => document.title.startsWith('(2 waiting, 1 emergency)')")
    page.reload()  # the server writes the same count
    assert page.title() == "(2 waiting, 1 emergency) Queue · Helpline console"
    with page.expect_navigation(url=re.compile(r"/cases/\d+$")):
        page.locator("#queue-body tr[data-number] button").first.click()
    page.wait_for_function("() => document.title.startsWith('(1 waiting)')")
    assert page.title().endswith("· Helpline console") and "emergency" not in page.title()
