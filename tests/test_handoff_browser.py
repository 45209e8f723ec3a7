"""Issue 6, the whole hand-off in one headless Chromium, every server a real process.

The helpline of ``tests/test_handoff_restart.py`` (``Helpline``): the action server, the Rasa
server (``--enable-api --auth-token``, the web chat channel) and the console started with the
real CLI (``python -m bot.cli console``, its production Secure ``__Host-`` cookie: Chromium
treats http://127.0.0.1 as a secure origin), on one migrated SQLite database, one secrets file
and a deployment with caseworkers on shift at every hour; two caseworkers and a supervisor
made with ``helpline users add --password-stdin``. Reply routes stay in the Rasa process's
memory (the default).

One browser, one context each: the person on the web chat page (the page's own 4-second poll
brings the caseworker's replies), amina and bob (caseworkers) and lead (supervisor) in the
console. The person asks for a person and says yes; amina sees the case arrive at the top of
her queue without a reload, takes it, reads the person's message, replies by typing and with a
canned reply (both reach the page), sees the person's answer live, and transfers the case to
bob, who finds it in "my cases" and closes it; the page shows the closing message and the
assistant answers again. Then: the case's transcript is unreadable (no key row; no key of the
secrets file opens what is left), the supervisor sees it destroyed, the web chat session id and
the conversation's pseudonym are nowhere in what the console's three contexts received (pages,
API answers, form posts, server-sent events, the live DOM) nor in the console's log, no page
asked anything of a host but 127.0.0.1 and none logged an error.
Screenshots: var/test-artifacts/browser/handoff/ (git-ignored).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest

from bot.catalog import load_catalog, with_channel_words
from console.canned import load_canned
from console.views import OUTCOME_WORDS
from tests.test_console_browser import ConsoleSession, rows, transcript, wait_for_line
from tests.test_handoff_restart import PASSWORD, Helpline
from tests.utils.browser import ARTIFACTS as BROWSER_ARTIFACTS
from tests.utils.browser import Session, chromium

pytestmark = [pytest.mark.model, pytest.mark.slow]

CATALOG = load_catalog()
# as the web chat shows them: the channel's own words filled in, other placeholders kept
EN = {name: with_channel_words(text, CATALOG.channel_words("en", "webchat"))
      for name, text in CATALOG.texts["en"].items()}
BUTTONS = CATALOG.buttons["en"]
ARTIFACTS = BROWSER_ARTIFACTS / "handoff"
PUSHED_MS = 15_000  # the page polls every 4 s: a pushed reply shows within two polls
CANNED = next(c for c in load_canned() if c.key == "take_your_time")


@pytest.fixture(scope="module")
def helpline(model_path, tmp_path_factory):
    running = Helpline(tmp_path_factory.mktemp("handoff-browser"), model_path)
    try:
        running.start()
        yield running
    finally:
        running.close()


@pytest.fixture(scope="module")
def browser():
    with chromium(ARTIFACTS) as launched:
        yield launched


class Console(ConsoleSession):
    """A console context (``tests/test_console_browser.py``: it keeps every body received,
    the server-sent events too), its screenshots in this module's folder."""

    def __init__(self, browser, name: str) -> None:
        super().__init__(browser, f"console-{name}")
        self.artifacts = ARTIFACTS
        self.user = name

    def sign_in(self, console: str) -> None:
        page = self.page
        page.goto(f"{console}/sign-in")
        page.fill("#name", self.user)
        page.fill("#password", PASSWORD)
        with page.expect_navigation(url=f"{console}/"):
            page.click("button:text('Sign in')")
        assert page.locator(".who").inner_text().startswith(f"Signed in as {self.user}")


# -- the person's page --------------------------------------------------------------------

def bot_texts(page) -> list[str]:
    return page.locator(".msg.bot p").all_inner_texts()


def wait_for_bot_text(page, text: str, timeout: float = PUSHED_MS) -> None:
    page.locator(".msg.bot p", has_text=text).last.wait_for(timeout=timeout)


def settled(page) -> None:
    """The page's message went and its answer (possibly none) is shown."""
    page.locator(".msg.waiting").wait_for(state="detached")


def person_writes(page, text: str) -> list[str]:
    """Types ``text`` and sends it with Enter; the assistant's answers to it."""
    before = len(bot_texts(page))
    page.fill("#message", text)
    page.press("#message", "Enter")
    page.locator(".msg.you p", has_text=text).last.wait_for()
    settled(page)
    return bot_texts(page)[before:]


def click_choice(page, title: str, answer: str) -> None:
    page.locator(".msg.bot .choices button:not([disabled])", has_text=title).click()
    wait_for_bot_text(page, answer)
    settled(page)


# -- the test -------------------------------------------------------------------------------

def test_the_whole_hand_off_in_one_browser(helpline, browser):
    console = helpline.console
    person = Session(browser, "person", 800, 900, ARTIFACTS)
    amina, bob, lead = Console(browser, "amina"), Console(browser, "bob"), Console(browser, "lead")
    everyone = [person, amina, bob, lead]
    page_errors: list[tuple[str, str]] = []  # the web chat page's errors, with their source
    person.page.on("console", lambda m: m.type == "error" and page_errors.append(
        (m.text, m.location.get("url", ""))))
    person.page.on("pageerror", lambda e: page_errors.append((str(e), "")))
    try:
        # A caseworker signs in: someone is on shift. Nobody waits yet.
        amina.sign_in(console)
        page = amina.page
        assert rows(page, "queue-body") == [] and rows(page, "mine-body") == []
        page.evaluate("() => { window.notReloaded = true; }")

        # The person: English, "Talk to a person", yes.
        chat = person.page
        chat.goto(f"{helpline.rasa}/webhooks/webchat/")
        chat.locator("#start .choices button", has_text="English").click()
        wait_for_bot_text(chat, EN["utter_first_contact"])  # is it safe to write now?
        settled(chat)
        click_choice(chat, BUTTONS["yes"], EN["utter_menu"])
        session_id = chat.evaluate("sessionStorage.getItem('chat-session')")
        assert re.fullmatch(r"[0-9a-f]{32}", session_id)
        click_choice(chat, BUTTONS["talk"], EN["utter_handoff_consent"].split("{")[0])
        click_choice(chat, BUTTONS["yes"], EN["utter_handoff_queued"])  # "on shift" wording
        assert EN["utter_handoff_after_hours"].split("{")[0] not in "\n".join(bot_texts(chat))
        said = ["I work in a restaurant and they keep my papers.",
                "Yes, my boss is out until tonight."]
        assert person_writes(chat, said[0]) == []  # for the caseworker: the assistant is quiet
        person.shot("queued")

        # The case arrives at the top of amina's queue, live.
        page.locator("#queue-body tr[data-number]").first.wait_for()
        [number] = rows(page, "queue-body")
        assert page.locator("#queue-count").inner_text() == "1 waiting"
        assert page.evaluate("() => window.notReloaded") is True
        conversation_id = helpline.conversation_id(session_id)
        case = helpline.case_row(number)
        assert (case["status"], case["channel"], case["language"], case["conversation_id"]) == (
            "waiting", "webchat", "en", conversation_id)
        amina.shot("queue-live")
        amina.look()

        # She takes it and reads the person's message.
        with page.expect_navigation(url=f"{console}/cases/{number}"):
            page.click(f"#queue-body tr[data-number='{number}'] button")
        assert page.locator("#case-status").inner_text() == "Active"
        assert transcript(page) == [("Person", said[0])]

        # A typed reply reaches the page through its poll.
        typed = "Hello, I am Amina from the helpline. Are you safe to write now?"
        page.fill("#reply-text", typed)
        with page.expect_navigation(url=re.compile(r"/cases/\d+#reply$")):
            page.click("#reply button[type=submit]")
        wait_for_line(page, typed)
        wait_for_bot_text(chat, typed)

        # The person answers: the line appears in the console without a reload.
        page.evaluate("() => { window.notReloaded = true; }")
        assert person_writes(chat, said[1]) == []
        wait_for_line(page, said[1])
        assert page.evaluate("() => window.notReloaded") is True

        # A canned reply, in the case's language.
        page.click("details.canned summary")
        with page.expect_navigation(url=re.compile(r"/cases/\d+#reply$")):
            page.click(f"details.canned button[type=submit]:has-text('{CANNED.label}')")
        wait_for_line(page, CANNED.texts["en"])
        wait_for_bot_text(chat, CANNED.texts["en"])
        assert transcript(page) == [("Person", said[0]), ("Caseworker", typed),
                                    ("Person", said[1]), ("Caseworker", CANNED.texts["en"])]
        amina.shot("case")
        person.shot("replies")
        amina.look()

        # Transfer to bob: the case leaves amina's cases.
        page.select_option("#transfer-to", "bob")
        with page.expect_navigation(url=f"{console}/"):
            page.click(".case-actions button:text('Transfer')")
        assert rows(page, "mine-body") == [] and rows(page, "queue-body") == []
        amina.look()

        # bob, in his own context, has it in "my cases", reads it, and closes it.
        bob.sign_in(console)
        assert rows(bob.page, "mine-body") == [number]
        bob.shot("my-cases")
        bob.page.click(f"#mine-body a:text('Case {number}')")
        bob.page.wait_for_url(f"{console}/cases/{number}")
        assert [text for _, text in transcript(bob.page)] == [
            said[0], typed, said[1], CANNED.texts["en"]]
        bob.look()
        bob.page.check("#outcome-referred")
        with bob.page.expect_navigation(url=f"{console}/"):
            bob.page.click(".case-actions button:has-text('Close case')")
        assert bob.dialogs == [f"Close case {number}? Its transcript will be destroyed."]
        assert rows(bob.page, "mine-body") == []
        bob.look()

        # The person's page: the supportive goodbye, then the assistant again.
        wait_for_bot_text(chat, EN["utter_handoff_closed"])
        settled(chat)
        assert person_writes(chat, "menu") == [EN["utter_menu"]]
        person.shot("closed-and-menu")

        # The supervisor sees the case closed, its transcript destroyed.
        lead.expected_statuses.add(410)
        lead.sign_in(console)
        lead.page.goto(f"{console}/cases/{number}")
        main = lead.page.locator("main").inner_text()
        assert "Its transcript was destroyed when it closed." in main
        assert OUTCOME_WORDS["referred"] in main and said[0] not in main
        status, text = lead.page.evaluate(
            "async path => { const r = await fetch(path); return [r.status, await r.text()]; }",
            f"/api/cases/{number}/transcript")
        assert status == 410 and said[0] not in text
        lead.shot("closed-case")
        lead.look()

        # The database: closed by bob as referred, no transcript key, nothing readable left.
        case = helpline.case_row(number)
        assert (case["status"], case["outcome"], case["caseworker"]) == (
            "closed", "referred", "bob")
        helpline.transcript_is_destroyed(number)
        audit = helpline.audit(number)
        assert [(actor, action) for actor, action, _ in audit
                if action != "opened"] == [
            ("amina", "claimed"), ("amina", "replied"), ("amina", "replied"),
            ("amina", "transferred"), ("bob", "closed")]
        assert ("bob", "opened") in [(actor, action) for actor, action, _ in audit]
        assert {detail for _, _, detail in audit} <= {None, "bob", "referred"}

        # The person's address is nowhere in what the console's contexts received, nor in
        # the console's log; what they received does hold the conversation (the check sees).
        received = "\n".join(amina.received + bob.received + lead.received)
        assert all(text in received for text in said + [typed])
        assert any(said[1] in data for data in amina.streamed)  # the live line, as it came
        log = helpline.console_log.read_text(encoding="utf-8", errors="replace")
        # the access log is there, with the route's template only (issue 17 §3)
        assert "GET /cases/{number} 200" in log and f"/cases/{number}" not in log
        for secret in (session_id, conversation_id):
            for part in (secret, secret[:12], secret[-12:]):
                assert part not in received, part
                assert part not in log, part
        assert "conversation_id" not in received
        # A body Chromium dropped before it could be read (its page was left at once) can
        # only be a static file (the icon, the script, the style): the same for everyone.
        for session in (amina, bob, lead):
            assert all(urlsplit(url).path.startswith("/static/") for url in session.unread), (
                session.name, session.unread)

        # Nothing from elsewhere, no script error, on any page.
        for session in everyone:
            assert session.outside_requests() == [], (session.name, "reached another host")
        # The page names its icon, so Chromium does not ask the Rasa server for /favicon.ico.
        assert page_errors == [] and person.errors == [], "the web chat page logged errors"
        for session in (amina, bob, lead):
            assert session.unexpected_errors() == [], (session.name, session.errors)
    finally:
        for session in everyone:
            session.context.close()
