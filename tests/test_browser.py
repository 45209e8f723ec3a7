"""The web chat page in a real headless browser, against the real servers and the trained model.

Debian's Chromium (``scripts/browser`` installs it) driven by Playwright, which is told to use
/usr/bin/chromium and downloads nothing (``tests/utils/browser.py``). One action server
(conftest) and one Rasa server with the ``helpline`` and ``webchat`` channels for the module.
Every test's page records its requests and the test ends by checking that none left 127.0.0.1
and that no cookie was set.
Screenshots go to var/test-artifacts/browser/ (git-ignored), one or more per test.
"""

from __future__ import annotations

import json
import re
import urllib.request
from urllib.parse import urlsplit

import pytest

from bot.catalog import load_catalog
from tests.utils.accessibility import audit, focus_problems
from tests.utils.assistant import free_port, start_rasa_server, stop
from tests.utils.browser import Session as BrowserSession
from tests.utils.browser import chromium

pytestmark = [pytest.mark.model, pytest.mark.slow]

CATALOG = load_catalog()
EN, AR = CATALOG.channel["en"], CATALOG.channel["ar"]
LANGUAGES = [CATALOG.names[code] for code in ("en", "fr", "ar", "es")]


@pytest.fixture(scope="module")
def server(model_path, action_server, tmp_path_factory):
    """Base URL of a Rasa server with the REST and web chat channels."""
    folder = tmp_path_factory.mktemp("browser")
    credentials = folder / "credentials.yml"
    credentials.write_text("channels.rest.HelplineRestInput: {}\n"
                           "channels.webchat.WebChatInput: {}\n", encoding="utf-8")
    port = free_port()
    rasa = start_rasa_server(model_path, port, action_server, folder / "rasa.log",
                             credentials=str(credentials))
    yield f"http://127.0.0.1:{port}"
    stop(rasa)


@pytest.fixture(scope="module")
def browser():
    with chromium() as launched:
        yield launched


class Session(BrowserSession):
    """A browser session on the web chat: it also counts the messages the page sent."""

    def posts(self) -> int:
        """How many messages the page sent (a beacon counts: its body is not shown)."""
        return sum(r.method == "POST" and r.url.endswith("/webchat/webhook")
                   for r in self.requests)


@pytest.fixture
def viewport() -> tuple[int, int]:
    """Width and height of the page; a test parametrizes it for a phone."""
    return 800, 900


@pytest.fixture
def session(browser, request, viewport):
    opened = Session(browser, request.node.name, *viewport)
    yield opened
    try:
        assert opened.outside_requests() == [], "the page reached another host"
        assert opened.context.cookies() == [], "a cookie was set"
    finally:
        opened.context.close()


def open_chat(session: Session, server: str) -> None:
    session.page.goto(f"{server}/webhooks/webchat/")
    session.page.wait_for_selector("#start .choices button")


def wait_for_more(page, selector: str, count: int) -> None:
    """Waits until more than ``count`` elements match (a function: the page's CSP forbids eval)."""
    page.wait_for_function("([s, n]) => document.querySelectorAll(s).length > n",
                           arg=[selector, count])


def bot_texts(page) -> list[str]:
    return page.locator(".msg.bot p").all_inner_texts()


def wait_for_bot_text(page, text: str) -> None:
    page.locator(".msg.bot p", has_text=text).first.wait_for()


def choose_language(session: Session, name: str, expected_text: str) -> None:
    """Chooses the language on the first screen; the first answer asks whether it is safe to
    write now (actions/first_contact.py), in that language and with the page's way to leave;
    "yes" gets the choice answered (``expected_text``)."""
    page = session.page
    page.locator("#start .choices button", has_text=name).click()
    language = next(code for code, own in CATALOG.names.items() if own == name)
    wait_for_bot_text(page, CATALOG.render("utter_first_contact", language, "webchat")["text"])
    page.locator(".msg.waiting").wait_for(state="detached")
    page.locator(".msg.bot .choices button:not([disabled])",
                 has_text=CATALOG.buttons[language]["yes"]).click()
    wait_for_bot_text(page, expected_text)
    page.locator(".msg.waiting").wait_for(state="detached")


def storage_sizes(page) -> dict:
    return page.evaluate("({session: sessionStorage.length, local: localStorage.length})")


def post(url: str, body: dict):
    data = json.dumps(body).encode()
    request = urllib.request.Request(url, data, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as reply:
        return json.load(reply)


# -- tests ------------------------------------------------------------------------------------

def test_a_conversation_with_buttons_and_the_keyboard(session, server):
    page = session.page
    open_chat(session, server)
    assert page.locator("#start .choices button").all_inner_texts() == LANGUAGES
    assert page.locator(".privacy").inner_text() == EN["web_privacy_note"].replace(
        "{keep_hours}", "24")  # the sample deployment's conversation_idle_hours
    assert page.locator("#log").get_attribute("aria-live") == "polite"
    assert page.locator("label[for=message]").inner_text() == EN["web_message_label"]
    session.shot("first-screen")

    choose_language(session, "English", CATALOG.texts["en"]["utter_language_set"])
    wait_for_bot_text(page, CATALOG.render("utter_menu", "en", "webchat")["text"])
    assert page.locator(".msg.you").first.inner_text().endswith("English")
    menu = page.locator(".msg.bot .choices button:not([disabled])")
    learn = CATALOG.buttons["en"]["learn"]
    # no caseworker account on this server: the menu has no "talk to a person"
    assert menu.all_inner_texts() == [
        b["title"] for b in CATALOG.buttons_for("utter_menu", "en", person=False)]
    session.shot("english-menu")

    before = len(bot_texts(page))
    menu.filter(has_text=learn).click()
    wait_for_more(page, ".msg.bot", before)
    page.locator(".msg.waiting").wait_for(state="detached")
    assert page.locator(".msg.you").last.inner_text().endswith(learn)
    assert bot_texts(page)[before] == CATALOG.texts["en"]["utter_awareness_trafficking"]
    session.shot("after-a-button")

    # Tab reaches the new buttons, which show where the focus is; Enter on one sends it.
    page.locator("#message").focus()
    page.keyboard.press("Shift+Tab")  # the log comes before the writing box
    focused = page.evaluate("""() => {
        const el = document.activeElement;
        return {inChoices: !!el.closest('.choices'), text: el.textContent,
                outline: getComputedStyle(el).outlineStyle};
    }""")
    assert focused["inChoices"] and focused["outline"] != "none", focused
    before = len(bot_texts(page))
    page.keyboard.press("Enter")
    wait_for_more(page, ".msg.bot", before)
    assert page.locator(".msg.you").last.inner_text().endswith(focused["text"])

    # Writing and Enter; a typed number means the last buttons (the gateway).
    page.locator(".msg.waiting").wait_for(state="detached")
    before = len(bot_texts(page))
    page.locator("#message").fill("menu")
    page.keyboard.press("Enter")
    wait_for_more(page, ".msg.bot", before)
    assert page.locator("#message").input_value() == ""
    wait_for_bot_text(page, CATALOG.render("utter_menu", "en", "webchat")["text"])
    session.shot("typed")

    # The conversation lives in the page: only the session id and the language are stored.
    stored = page.evaluate("Object.keys(sessionStorage).sort()")
    assert stored == ["chat-language", "chat-session"]
    assert re.fullmatch(r"[0-9a-f]{32}", page.evaluate("sessionStorage.getItem('chat-session')"))
    assert storage_sizes(page)["local"] == 0
    webhook = [r for r in session.finished if r.url.endswith("/webhooks/webchat/webhook")]
    assert webhook and all(r.response().status == 200 for r in webhook)


def _quick_exit(session: Session, server: str, leave) -> None:
    """Chat, leave with ``leave(page)``, and check what is left behind."""
    page = session.page
    page.goto(f"{server}/webhooks/helpline/")  # the page the person came from
    open_chat(session, server)
    choose_language(session, "English", CATALOG.texts["en"]["utter_language_set"])
    sender = page.evaluate("sessionStorage.getItem('chat-session')")
    written = page.locator(".msg.you").count()
    page.locator("#message").fill("my boss took my passport")
    page.keyboard.press("Enter")
    wait_for_more(page, ".msg.you", written)
    page.locator(".msg.waiting").wait_for(state="detached")
    page.evaluate("localStorage.setItem('left-by-someone', '1')")  # whatever might be there
    session.shot("before-leaving")
    entries = page.evaluate("history.length")
    posts = session.posts()

    leave(page)
    page.wait_for_url("**/webhooks/webchat/neutral")
    page.wait_for_load_state()
    assert page.title() == "Simple lentil soup"
    assert page.locator("#composer").count() == 0
    assert storage_sizes(page) == {"session": 0, "local": 0}  # same origin, same tab
    assert page.evaluate("history.length") == entries  # the chat's entry was replaced
    session.shot("neutral-page")

    # Back goes to the page before the chat, never to the chat.
    page.go_back()
    assert page.url.endswith("/webhooks/helpline/")
    assert page.locator("#composer").count() == 0
    page.go_forward()
    assert page.url.endswith("/webhooks/webchat/neutral")

    # The server was told (a beacon, sent before the page went): the conversation is gone,
    # and the same session starts again: is it safe to write now? then the language menu.
    assert session.posts() == posts + 1, "the quick exit was not sent to the server"
    page.wait_for_timeout(1500)  # the beacon's turn, through NLU and the action server
    reply = post(f"{server}/webhooks/webchat/webhook", {"sender": sender, "message": "hello"})
    assert [m["text"] for m in reply] == [
        CATALOG.render("utter_first_contact", "en", "webchat")["text"]]
    reply = post(f"{server}/webhooks/webchat/webhook", {"sender": sender, "message": "/affirm"})
    assert [b["title"] for b in reply[0]["buttons"]] == LANGUAGES


def test_quick_exit_by_button(session, server):
    _quick_exit(session, server, lambda page: page.locator("#quick-exit").click())


def test_quick_exit_by_escape_three_times(session, server):
    def escape(page):
        page.keyboard.press("Escape")
        page.keyboard.press("Escape")
        page.wait_for_timeout(2100)  # two presses, then too late for a third: nothing happens
        assert page.locator("#composer").count() == 1
        for _ in range(3):
            page.keyboard.press("Escape")

    _quick_exit(session, server, escape)


def test_leaving_clears_the_page_itself(session, server):
    """The page as it is left: empty, title too. (Its quick-exit address is made a fragment of
    the page, so that the emptied page stays to be looked at.)"""
    page = session.page

    def same_page_exit(route):
        reply = route.fetch()
        body = reply.text().replace('"quickExitUrl":"neutral"', '"quickExitUrl":"#left"')
        route.fulfill(response=reply, body=body)

    page.route("**/webhooks/webchat/", same_page_exit)
    open_chat(session, server)
    choose_language(session, "English", CATALOG.texts["en"]["utter_language_set"])
    assert storage_sizes(page)["session"] == 2
    entries = page.evaluate("history.length")
    page.locator("#quick-exit").click()
    page.wait_for_url("**/webhooks/webchat/#left")
    left = page.evaluate("""() => ({title: document.title, html: document.body.innerHTML,
        session: sessionStorage.length, local: localStorage.length})""")
    assert left == {"title": "", "html": "", "session": 0, "local": 0}
    assert page.evaluate("history.length") == entries  # replaced, not added
    session.shot("left")


def test_arabic_turns_the_page_right_to_left(session, server):
    page = session.page
    open_chat(session, server)
    choose_language(session, CATALOG.names["ar"], CATALOG.texts["ar"]["utter_language_set"])
    assert page.evaluate("[document.documentElement.dir, document.documentElement.lang]") == [
        "rtl", "ar"]
    assert page.locator("#quick-exit").inner_text() == AR["web_quick_exit"]
    assert page.locator("#send").inner_text() == AR["web_send"]
    assert page.locator("#message").get_attribute("placeholder") == AR["web_placeholder"]
    assert page.title() == AR["web_title"]
    assert page.locator("#language").input_value() == "ar"
    # Right to left: the quick exit is on the left, the person's messages on the left too.
    width = page.viewport_size["width"]
    exit_box = page.locator("#quick-exit").bounding_box()
    assert exit_box["x"] < width / 2
    you = page.locator(".msg.you").last.bounding_box()
    bot = page.locator(".msg.bot").last.bounding_box()
    assert you["x"] < bot["x"]
    session.shot("arabic")

    # Back to French with the picker at the top: words and direction follow.
    page.select_option("#language", "fr")
    wait_for_bot_text(page, CATALOG.texts["fr"]["utter_language_set"])
    assert page.evaluate("document.documentElement.dir") == "ltr"
    assert page.locator("#quick-exit").inner_text() == CATALOG.channel["fr"]["web_quick_exit"]
    session.shot("french")


@pytest.mark.parametrize("viewport", [(320, 640)], ids=["320x640"])
def test_a_320_pixel_phone(session, server):
    page = session.page
    open_chat(session, server)

    def fits() -> None:
        assert page.evaluate("document.scrollingElement.scrollWidth") <= 320
        box = page.locator("#quick-exit").bounding_box()
        assert page.locator("#quick-exit").is_visible()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 320 and box["y"] >= 0
        assert box["height"] >= 44  # a finger, not a mouse pointer
        assert page.locator("#send").bounding_box()["y"] + 44 <= 640

    fits()
    session.shot("first-screen")
    choose_language(session, "Español", CATALOG.texts["es"]["utter_language_set"])
    for _ in range(3):
        before = len(bot_texts(page))
        page.locator(".msg.bot .choices button:not([disabled])").first.click()
        wait_for_more(page, ".msg.bot", before)
        page.locator(".msg.waiting").wait_for(state="detached")
    fits()  # a long conversation scrolls inside; the quick exit stays in view
    session.shot("spanish-conversation")
    page.select_option("#language", "ar")
    wait_for_bot_text(page, CATALOG.texts["ar"]["utter_language_set"])
    fits()
    session.shot("arabic")


@pytest.mark.parametrize("viewport", [(320, 640)], ids=["320x640"])
def test_the_page_is_labelled_legible_and_keyboard_visible(session, server):
    """tests/utils/accessibility.py's check on a phone: the first screen, an English
    conversation with buttons, the Arabic page, and the neutral page the quick exit opens."""
    page = session.page
    open_chat(session, server)
    assert audit(page) == []
    assert focus_problems(page) == []
    choose_language(session, "English", CATALOG.texts["en"]["utter_language_set"])
    before = len(bot_texts(page))
    page.locator(".msg.bot .choices button:not([disabled])").first.click()
    wait_for_more(page, ".msg.bot", before)
    page.locator(".msg.waiting").wait_for(state="detached")
    assert audit(page) == []
    assert focus_problems(page) == []
    page.select_option("#language", "ar")
    wait_for_bot_text(page, CATALOG.texts["ar"]["utter_language_set"])
    assert audit(page) == []
    session.shot("arabic-audited")
    page.goto(f"{server}/webhooks/webchat/neutral")
    assert audit(page) == []


def test_no_outside_request_and_no_cookie(session, server):
    page = session.page
    open_chat(session, server)
    choose_language(session, "Français", CATALOG.texts["fr"]["utter_language_set"])
    page.goto(f"{server}/webhooks/webchat/neutral")
    assert {urlsplit(r.url).hostname for r in session.requests} == {"127.0.0.1"}
    paths = {urlsplit(r.url).path for r in session.requests}
    assert {"/webhooks/webchat/", "/webhooks/webchat/chat.js", "/webhooks/webchat/chat.css",
            "/webhooks/webchat/webhook"} <= paths
    assert session.context.cookies() == []
    assert page.evaluate("document.cookie") == ""
