"""The console's audit: sign-in events in their own table (and what they never keep), the
supervisors' audit page (permissions, filters, pages, bad input), their purge, and the words a
caseworker reads when the person ended the conversation.

aiohttp's test server on a migrated SQLite database, as in ``tests/test_console.py`` (whose
fixtures and helpers this module uses).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re

import pytest
import sqlalchemy as sa

from bot.cases.models import AuditEntry
from console.app import SIGN_IN_EVENT_DAYS, Config, create_app, housekeeping
from console.audit import PAGE_SIZE, AuditLog
from console.models import SIGN_IN_EVENTS, SignInEvent
from console.users import IDLE_MINUTES, MAX_FAILURES, UserError
from console.views import CLOSED_WORDS, ENDED_WORDS
from tests import test_console
from tests.test_console import FERNET, PASSWORD, open_case, post, sign_in

world, server, browser = test_console.world, test_console.server, test_console.browser

PERSON_ENDED = ("The person ended the conversation (quick exit or “forget me”); the messages "
                "were deleted.")
FORBIDDEN = "The audit log is for supervisors only."


def events(world) -> list[tuple]:
    with world.sessions() as session:
        return [tuple(row) for row in session.execute(
            sa.select(SignInEvent.user_name, SignInEvent.event).order_by(SignInEvent.id))]


def clear_events(world) -> None:
    with world.sessions.begin() as session:
        session.execute(sa.delete(SignInEvent))


def database_text(world) -> str:
    """Every value of every row of every table, as text."""
    engine = world.sessions.kw["bind"]
    parts = []
    with engine.connect() as connection:
        for table in sa.inspect(engine).get_table_names():
            for row in connection.execute(sa.text(f'SELECT * FROM "{table}"')):
                parts.append(" ".join(str(v) for v in row))
    return "\n".join(parts)


def rows_of(page: str) -> list[tuple[str, str, str, str]]:
    """The audit table's rows: (when, who, what, case)."""
    body = page[page.index("<tbody>"):page.index("</tbody>")]
    found = []
    for row in re.findall(r"<tr class=\"audit-[^\"]+\">(.*?)</tr>", body, re.S):
        cells = [re.sub(r"<[^>]+>", "", c).strip()
                 for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)]
        found.append(tuple(cells))
    return found


# -- sign-in events ------------------------------------------------------------------------

def test_the_table_holds_a_time_a_user_name_and_an_event_and_nothing_else(world):
    engine = world.sessions.kw["bind"]
    columns = {c["name"] for c in sa.inspect(engine).get_columns("sign_in_events")}
    assert columns == {"id", "at", "user_name", "event"}
    with pytest.raises(sa.exc.IntegrityError):  # a closed set, checked by the database
        with world.sessions.begin() as session:
            session.add(SignInEvent(at=world.clock(), user_name="amina", event="hacked"))


async def test_each_sign_in_event_is_recorded_and_an_unknown_name_is_not(browser, world):
    clear_events(world)
    typed_in_the_wrong_box = "hunter2hunter2"  # a password typed as a user name
    client = await browser()
    headers = {"User-Agent": "SecretAgent/7.1", "X-Forwarded-For": "203.0.113.77"}
    assert (await sign_in(client, "amina", PASSWORD, headers=headers)).status == 200
    assert events(world) == [("amina", "signed_in")]
    assert (await post(client, "/sign-out")).status == 303
    assert (await sign_in(client, "amina", "not the password", headers=headers)).status == 401
    assert (await sign_in(client, typed_in_the_wrong_box, "x" * 12,
                          headers=headers)).status == 401
    assert (await sign_in(client, "Not A Name!", "x" * 12)).status == 401
    assert events(world) == [("amina", "signed_in"), ("amina", "signed_out"),
                             ("amina", "refused"), (None, "refused"), (None, "refused")]

    clear_events(world)
    for _ in range(MAX_FAILURES - 1):  # one failure is already counted
        await sign_in(client, "amina", "not the password")
    assert (await sign_in(client, "amina", PASSWORD)).status == 401  # locked
    assert events(world) == [("amina", "refused")] * (MAX_FAILURES - 2) + [
        ("amina", "locked_out"), ("amina", "refused")]

    everything = database_text(world)
    for secret in (typed_in_the_wrong_box, "Not A Name", "not the password", PASSWORD,
                   "SecretAgent", "203.0.113.77", "127.0.0.1", "aiohttp"):
        assert secret not in everything, secret


async def test_a_timed_out_session_is_recorded_once_at_the_moment_it_ended(browser, world):
    client = await browser("bob")
    await browser("lead")
    signed_in_at = world.clock.now
    clear_events(world)
    world.clock.advance(minutes=IDLE_MINUTES + 5)
    assert (await client.get("/", allow_redirects=False)).status == 303  # noticed here
    assert (await client.get("/", allow_redirects=False)).status == 303  # not twice
    assert world.users.purge_sessions() == 1  # lead's session: noticed by the purge
    assert world.users.purge_sessions() == 0
    with world.sessions() as session:
        rows = session.execute(sa.select(SignInEvent).order_by(SignInEvent.id)).scalars().all()
    assert [(r.user_name, r.event) for r in rows] == [("bob", "expired"), ("lead", "expired")]
    ended = signed_in_at + dt.timedelta(minutes=IDLE_MINUTES)
    assert all(r.at.replace(tzinfo=dt.timezone.utc) == ended for r in rows)


def test_the_users_commands_are_recorded_too(world):
    clear_events(world)
    world.users.add("carla", PASSWORD)
    world.users.disable("carla")
    world.users.disable("carla")  # already disabled: nothing new
    assert world.users.enable("carla") is True
    assert world.users.enable("carla") is False
    world.users.set_password("carla", "another long password")
    assert events(world) == [("carla", "created"), ("carla", "disabled"), ("carla", "enabled"),
                             ("carla", "password_set")]
    assert {e for _, e in events(world)} <= set(SIGN_IN_EVENTS)


@pytest.mark.parametrize("name", ["person", "assistant"])
def test_the_audit_logs_own_actors_cannot_be_user_names(world, name):
    with pytest.raises(UserError, match="reserved"):
        world.users.add(name, PASSWORD)


def test_old_sign_in_events_are_purged_hourly_with_closed_cases(world):
    def event_at(days_ago: float) -> None:
        with world.sessions.begin() as session:
            session.add(SignInEvent(at=world.clock.now - dt.timedelta(days=days_ago),
                                    user_name="amina", event="signed_in"))

    clear_events(world)
    for days in (1, 29, 31, 89, 91):
        event_at(days)
    default = create_app(world.sessions, FERNET, world.relay, Config(clock=world.clock))
    assert SIGN_IN_EVENT_DAYS == 90
    housekeeping(default)  # no closed_case_days: the fixed retention
    assert len(events(world)) == 4
    with_cases = create_app(world.sessions, FERNET, world.relay,
                            Config(clock=world.clock, closed_case_days=30))
    housekeeping(with_cases)  # the deployment's closed_case_days
    assert len(events(world)) == 2


# -- the audit page ---------------------------------------------------------------------------

async def test_only_supervisors_see_the_audit(browser, world):
    signed_out = await browser()
    response = await signed_out.get("/audit", allow_redirects=False)
    assert (response.status, response.headers["Location"]) == (303, "/sign-in")
    amina = await browser("amina")
    assert 'href="/audit"' not in await (await amina.get("/")).text()
    for path in ["/audit", "/audit?page=abc", "/audit?user=lead"]:
        response = await amina.get(path)
        assert response.status == 403 and FORBIDDEN in await response.text(), path
    lead = await browser("lead")
    assert '<a href="/audit">Audit</a>' in await (await lead.get("/")).text()
    page = await lead.get("/audit")
    assert page.status == 200
    assert '<a href="/audit" aria-current="page">Audit</a>' in await page.text()


async def test_the_audit_shows_who_did_what_to_which_case_newest_first(browser, world):
    case = open_case(world, 1, "high")
    amina, lead = await browser("amina"), await browser("lead")
    world.clock.advance(minutes=1)
    await post(amina, f"/cases/{case.id}/take")
    world.clock.advance(minutes=1)
    await amina.get(f"/cases/{case.id}")
    world.cases.record(case.id, "person", "the person's secret words")
    await post(amina, f"/cases/{case.id}/reply", text="the caseworker's private reply")
    world.clock.advance(minutes=1)
    await post(amina, f"/cases/{case.id}/transfer", to="bob")
    world.clock.advance(minutes=1)
    await post(lead, f"/cases/{case.id}/close", outcome="referred")
    world.clock.advance(minutes=1)

    page = await (await lead.get("/audit")).text()
    rows = rows_of(page)
    assert rows[:5] == [
        ("2026-11-26 08:05", "lead", "closed the case: Referred to a service", f"Case {case.id}"),
        ("2026-11-26 08:04", "amina", "handed the case to bob", f"Case {case.id}"),
        ("2026-11-26 08:03", "amina", "replied", f"Case {case.id}"),
        ("2026-11-26 08:03", "amina", "opened the case", f"Case {case.id}"),
        ("2026-11-26 08:02", "amina", "took the case", f"Case {case.id}"),
    ]
    assert ("2026-11-26 08:01", "lead", "signed in", "Sign-in") in rows
    assert ("2026-11-26 08:01", "amina", "signed in", "Sign-in") in rows
    assert "secret words" not in page and "private reply" not in page
    assert '<th scope="col">When</th>' in page and '<th scope="row">' in page
    assert f"{len(rows)} entries" in page


async def test_the_audit_filters_by_user_case_and_kind(browser, world):
    clear_events(world)  # (the fixture's accounts were created: not the point here)
    first, second = open_case(world, 1), open_case(world, 2)
    amina, bob, lead = await browser("amina"), await browser("bob"), await browser("lead")
    await post(amina, f"/cases/{first.id}/take")
    await post(amina, f"/cases/{first.id}/transfer", to="bob")
    await post(bob, f"/cases/{second.id}/take")

    by_bob = rows_of(await (await lead.get("/audit?user=BOB")).text())  # any case: lowered
    assert {(who, what) for _, who, what, _ in by_bob} == {
        ("amina", "handed the case to bob"), ("bob", "took the case"), ("bob", "signed in")}
    one_case = rows_of(await (await lead.get(f"/audit?case={first.id}")).text())
    assert [(who, what) for _, who, what, _ in one_case] == [
        ("amina", "handed the case to bob"), ("amina", "took the case")]
    sign_ins = rows_of(await (await lead.get("/audit?kind=sign-ins&user=amina")).text())
    assert [(who, what) for _, who, what, _ in sign_ins] == [("amina", "signed in")]
    cases_only = rows_of(await (await lead.get("/audit?kind=cases")).text())
    assert len(cases_only) == 3 and all(c.startswith("Case ") for *_, c in cases_only)
    empty_form = await lead.get("/audit?user=&case=&kind=all&page=")  # the form, left empty
    assert empty_form.status == 200 and len(rows_of(await empty_form.text())) == 6
    nobody = await (await lead.get("/audit?user=nobody")).text()
    assert rows_of(nobody) == [] and "Nothing recorded with these filters." in nobody
    page = await (await lead.get(f"/audit?user=bob&case={first.id}&kind=cases")).text()
    assert f'value="{first.id}"' in page and 'value="bob"' in page  # the form keeps them
    assert '<option value="cases" selected>' in page


@pytest.mark.parametrize("query, status, message", [
    ("page=0", 400, "The page is a whole number from 1"),
    ("page=-1", 400, "The page is a whole number from 1"),
    ("page=abc", 400, "The page is a whole number from 1"),
    ("page=1.5", 400, "The page is a whole number from 1"),
    ("page=10000000", 400, "The page is a whole number from 1"),
    ("page=2", 404, "There is no page 2: with these filters the log has 1 page."),
    ("page=1&page=2", 400, "Give each filter once (repeated: page)."),
    ("user=Not%20Valid", 400, "A user name is 2 to 64 characters"),
    ("user=x", 400, "A user name is 2 to 64 characters"),
    ("user=" + "a" * 65, 400, "A user name is 2 to 64 characters"),
    ("user=%00amina", 400, "A user name is 2 to 64 characters"),
    ("case=abc", 400, "A case number is a whole number, such as 12"),
    ("case=-3", 400, "A case number is a whole number, such as 12"),
    ("case=Case%2012", 400, "A case number is a whole number, such as 12"),
    ("case=1234567890", 400, "A case number is a whole number, such as 12"),
    ("kind=everything", 400, "Show is one of: all, cases, sign-ins."),
    ("case=1&kind=sign-ins", 400, "Sign-ins belong to no case"),
    ("page=0&case=x", 400, "A case number is a whole number"),  # every problem at once
])
async def test_bad_audit_queries_get_a_clear_answer(browser, query, status, message):
    lead = await browser("lead")
    response = await lead.get(f"/audit?{query}")
    text = await response.text()
    assert response.status == status, text
    assert message in text.replace("&#34;", '"').replace("&#39;", "'")
    assert 'role="alert"' in text and 'id="audit-user"' in text  # the form, to try again
    assert "<tbody>" not in text


async def test_the_audit_is_paginated_newest_first(browser, world):
    lead = await browser("lead")
    start = world.clock.now
    with world.sessions.begin() as session:
        for n in range(2 * PAGE_SIZE + 30):
            session.add(AuditEntry(at=start + dt.timedelta(seconds=n), actor="amina",
                                   action="opened", case_id=7))
    pages = {}
    for number in (1, 2, 3):
        response = await lead.get(f"/audit?case=7&page={number}")
        assert response.status == 200
        pages[number] = await response.text()
    assert [len(rows_of(pages[n])) for n in (1, 2, 3)] == [PAGE_SIZE, PAGE_SIZE, 30]
    assert "230 entries with these filters; page 2 of 3, 100 a page." in pages[2]
    assert 'href="/audit?case=7" rel="prev">Newer entries' in pages[2]
    assert 'href="/audit?case=7&amp;page=3" rel="next">Older entries' in pages[2]
    assert "Newer entries" not in pages[1] and "Older entries" not in pages[3]
    assert rows_of(pages[1])[0][0] == "2026-11-26 08:03"  # the newest: 229 s after 8:00
    assert rows_of(pages[3])[-1][0] == "2026-11-26 08:00"
    response = await lead.get("/audit?case=7&page=4")
    assert response.status == 404 and "the log has 3 pages" in await response.text()


def test_the_audit_log_reads_the_same_on_postgresql(postgres_url):
    from bot.cases.queue import Cases, User
    from bot.storage import make_engine, session_factory, upgrade
    from console.users import SignInRefused, Users

    engine = make_engine(postgres_url)
    upgrade(engine)
    sessions = session_factory(engine)
    users, cases = Users(sessions), Cases(sessions, FERNET)
    users.add("amina", PASSWORD)
    users.sign_in("amina", PASSWORD)
    with pytest.raises(SignInRefused):
        users.sign_in("nobody", PASSWORD)
    case = cases.open("c" + "1" * 32, "sms", "en", "high")
    cases.claim(case.id, User("amina"))
    log = AuditLog(sessions)
    page = log.page()
    assert (page.total, page.pages) == (4, 1)
    assert [(e.kind, e.who, e.what, e.case) for e in page.entries] == [
        ("case", "amina", "claimed", case.id), ("sign_in", None, "refused", None),
        ("sign_in", "amina", "signed_in", None), ("sign_in", "amina", "created", None)]
    assert [e.case for e in log.page(case=case.id).entries] == [case.id]
    assert log.page(user="amina", kind="sign-ins").total == 2
    assert log.page(2, size=3).entries[0].what == "created"
    cases.end_by_person(case.conversation_id)
    assert log.closed_by(case.id) == "ended_by_person"
    engine.dispose()


# -- the person ended the conversation --------------------------------------------------------

async def test_a_case_the_person_ended_says_so_on_the_page_the_api_and_the_stream(
        browser, world):
    case = open_case(world, 1, "high")
    amina, lead = await browser("amina"), await browser("lead")
    await post(amina, f"/cases/{case.id}/take")
    world.cases.record(case.id, "person", "please forget me")
    async with amina.get(f"/events?case={case.id}") as stream:
        first = (await stream.content.readuntil(b"\n\n")).decode()
        assert '"closed_reason": null' in first
        await asyncio.to_thread(world.cases.end_by_person, case.conversation_id)
        update = (await asyncio.wait_for(stream.content.readuntil(b"\n\n"), 5)).decode()
    assert '"status": "closed"' in update and "quick exit or “forget me”" in update
    assert "please forget me" not in update
    page = await (await amina.get(f"/cases/{case.id}")).text()
    assert PERSON_ENDED in page and "Its transcript was destroyed" not in page
    assert "please forget me" not in page
    assert (await (await amina.get("/api/state")).json())["mine"] == []
    audit = rows_of(await (await lead.get(f"/audit?case={case.id}")).text())
    assert ("The person", ENDED_WORDS["ended_by_person"], f"Case {case.id}") in [
        row[1:] for row in audit]


async def test_a_case_a_caseworker_closed_or_that_expired_says_so_and_no_guess(browser, world):
    closed, expired = open_case(world, 1), open_case(world, 2)
    amina = await browser("amina")
    await post(amina, f"/cases/{closed.id}/take")
    await post(amina, f"/cases/{closed.id}/close", outcome="other")
    page = await (await amina.get(f"/cases/{closed.id}")).text()
    assert "This case is closed. Its transcript was destroyed when it closed." in page
    assert "The person ended" not in page
    world.cases.expire(expired.conversation_id)  # never taken: a supervisor's to read
    lead = await browser("lead")
    page = await (await lead.get(f"/cases/{expired.id}")).text()
    assert CLOSED_WORDS["expired"] in page and "The person ended" not in page
    audit = rows_of(await (await lead.get("/audit?kind=cases")).text())
    assert ("The assistant", ENDED_WORDS["expired"], f"Case {expired.id}") in [
        row[1:] for row in audit]
    assert ("amina", "closed the case: Other", f"Case {closed.id}") in [row[1:] for row in audit]


def test_the_live_notice_takes_the_servers_words_and_guesses_nothing():
    from console.app import HERE

    script = HERE.joinpath("static", "console.js").read_text(encoding="utf-8")
    assert "may have left" not in script and "closed_reason" in script


def test_the_hourly_housekeeping_closes_cases_idle_as_long_as_a_conversation(world):
    """Where a Redis tracker store expires conversations unseen, the console's housekeeping
    closes their cases (the deployment's conversation_idle_hours), saying why."""
    idle = open_case(world, 1)
    world.clock.advance(hours=23)
    recent = open_case(world, 2)
    world.clock.advance(hours=2)  # 25 h after the first, 2 h after the second
    without = create_app(world.sessions, FERNET, world.relay, Config(clock=world.clock))
    housekeeping(without)  # not configured: nothing closes
    assert world.cases.open_case_for(idle.conversation_id) is not None
    configured = create_app(world.sessions, FERNET, world.relay,
                            Config(clock=world.clock, idle_case_hours=24))
    housekeeping(configured)
    assert world.cases.open_case_for(idle.conversation_id) is None
    assert world.cases.open_case_for(recent.conversation_id) is not None
    assert [(e.actor, e.detail) for e in world.cases.audit(idle.id) if e.action == "closed"] == [
        ("assistant", "expired")]
