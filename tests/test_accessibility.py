"""The caseworker console's pages measured for accessibility in headless Chromium: labels,
names, WCAG AA contrast, a visible keyboard focus (tests/utils/accessibility.py), on the pages
a caseworker and a supervisor use all day, and the supervisors' figures page, at a laptop's
1366x768 and zoomed to 200 %.
The web chat page's own check is in tests/test_browser.py (it needs the Rasa server).
"""

from __future__ import annotations

import re

import pytest

from tests import test_console, test_console_browser
from tests.test_console import open_case
from tests.test_console_browser import ConsoleSession, sign_in
from tests.test_figures import CASES, add_cases
from tests.utils.accessibility import audit, focus_problems

pytestmark = pytest.mark.slow
# The console's fixtures: a migrated database with users (tests/test_console.py), the console
# served on a free port, Chromium, and its sessions (tests/test_console_browser.py).
world = test_console.world
console, browser = test_console_browser.console, test_console_browser.browser
sessions = test_console_browser.sessions


def check(session: ConsoleSession, step: str) -> None:
    """The page as it is now: no accessibility problem, and a screenshot to look at."""
    page = session.page
    page.wait_for_load_state("load")
    assert audit(page) == [], step
    assert focus_problems(page) == [], step
    session.shot(step)


def test_the_consoles_pages_are_labelled_legible_and_keyboard_visible(sessions, console, world):
    for n, level in enumerate(("emergency", "high", "low"), start=1):
        open_case(world, n, level, needs=["shelter"], area="NG008")
    caseworker = sessions()
    page = caseworker.page
    page.goto(f"{console}/sign-in")
    check(caseworker, "sign-in")
    # a refused sign-in's error message is legible too
    caseworker.expected_statuses.add(401)
    page.fill("#name", "amina")
    page.fill("#password", "not the password")
    page.click("button:text('Sign in')")
    page.locator(".alert").first.wait_for()
    check(caseworker, "sign-in-refused")
    sign_in(caseworker, console, "amina")
    check(caseworker, "queue")
    with page.expect_navigation(url=re.compile(r"/cases/\d+$")):
        page.locator("#queue-body tr[data-number] a").first.click()
    check(caseworker, "waiting-case")
    with page.expect_navigation(url=re.compile(r"/cases/\d+$")):
        page.click("button:has-text('Take case')")
    number = int(page.url.rsplit("/", 1)[1])
    world.cases.record(number, "person", "Bonjour, j'ai besoin d'aide")
    page.locator("#transcript li p", has_text="besoin d'aide").wait_for()  # live
    page.click("details.canned summary")
    check(caseworker, "active-case")
    # a caseworker who zooms the page to 200 % (WCAG reflow): still legible, still labelled
    page.set_viewport_size({"width": 683, "height": 384})
    assert audit(page) == [], "active case at 200 %"
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth + 1"), \
        "the case page scrolls sideways at 200 %"
    caseworker.shot("active-case-200")


def test_the_figures_page_is_labelled_legible_and_keyboard_visible(sessions, console, world):
    """The supervisors' figures: the form (selects and date fields) used in the browser, the
    table with hidden counts and its legend, a refused query's message, and 200 % zoom."""
    with world.sessions.begin() as session:
        add_cases(session, CASES)
    supervisor = sessions()
    sign_in(supervisor, console, "lead")
    page = supervisor.page
    with page.expect_navigation(url=f"{console}/figures"):
        page.click("nav a:text('Figures')")
    check(supervisor, "figures")
    page.select_option("#figures-by", "month")
    page.select_option("#figures-by2", "level")
    page.fill("#figures-since", "2026-10-01")
    with page.expect_navigation(url=re.compile(r"/figures\?.*by=month&by=level")):
        page.click("button:text('Show the figures')")
    assert "Cases handed off by month and triage level, 2026-10-01 to now" in \
        page.locator("#figures caption").inner_text()
    assert page.locator("#figures-legend").count() == 1  # small counts hidden, explained
    check(supervisor, "figures-two-way")
    # a caseworker who zooms the page to 200 %: still legible, the table scrolls in its box
    page.set_viewport_size({"width": 683, "height": 384})
    assert audit(page) == [], "figures at 200 %"
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth + 1"), \
        "the figures page scrolls sideways at 200 %"
    supervisor.shot("figures-200")
    page.set_viewport_size({"width": 1366, "height": 768})
    supervisor.expected_statuses.add(400)
    page.fill("#figures-until", "2026-09-30")
    with page.expect_navigation(url=re.compile(r"/figures\?.*until=2026-09-30")):
        page.click("button:text('Show the figures')")
    assert "Last day 2026-09-30 is before first day 2026-10-01." in \
        page.locator(".alert.error").inner_text()
    check(supervisor, "figures-refused")


def test_the_audit_finds_each_kind_of_problem(browser):
    """The check itself: a page with one of each problem, and the same page mended."""
    context = browser.new_context(viewport={"width": 800, "height": 600})
    try:
        page = context.new_page()
        page.set_content(
            '<html><head></head><body style="background: #fff">'
            '<p style="color: #aaa">pale grey on white</p>'
            '<p style="color: rgba(0,0,0,0.3)">see-through black</p>'
            '<div style="background: #222"><p style="color: #555">dark on dark</p></div>'
            '<input id="q"><button></button><img src="data:,">'
            '<a href="#x" style="outline: none">a link without a focus ring</a>'
            '</body></html>')
        problems = audit(page)
        assert any("no lang" in p for p in problems) and any("no title" in p for p in problems)
        assert sum(p.startswith("contrast") for p in problems) == 3, problems
        assert any(p.startswith("control without a label: <input#q>") for p in problems)
        assert any(p.startswith("button or link without a name: <button>") for p in problems)
        assert any(p.startswith("image without alt") for p in problems)
        assert any("a link without a focus ring" in p for p in focus_problems(page))
        page.set_content(
            '<html lang="en"><head><title>Mended</title></head><body>'
            '<p style="color: #595959">grey dark enough: 7:1</p>'
            '<div style="background: #222"><p style="color: #fff">white on dark</p></div>'
            '<h1 style="color: #888; font-size: 32px">large text needs 3:1 only</h1>'
            '<label for="q">Search</label><input id="q"><button>Go</button>'
            '<img src="data:," alt=""><a href="#x">a link</a></body></html>')
        assert audit(page) == []
        assert focus_problems(page) == []
    finally:
        context.close()
