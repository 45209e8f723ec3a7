"""The console's figures page: the anonymous counts of ``helpline figures`` for supervisors
(the same table, small counts hidden at the deployment's threshold and never below it), its
HXL-tagged CSV download, who may see it, a clear 400 for each bad parameter, and no pseudonym
anywhere.

aiohttp's test server on a migrated SQLite database, as in ``tests/test_console.py`` (whose
fixtures and helpers this module uses); the cases are the 24 of ``tests/test_figures.py``,
inserted directly, with the gazetteer imported so that places roll up to admin-1 areas.
"""

from __future__ import annotations

import csv
import html
import io
import re

import hxl
import hxl.input
import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.figures import figures
from bot.services.places import import_places, load_gazetteer, read_places
from console.app import Config, create_app
from console.figures import csv_filename, to_csv
from tests import test_console
from tests.test_console import FERNET, PASSWORD, sign_in
from tests.test_figures import CASES, PLACES_FILE, add_cases

world, server, browser = test_console.world, test_console.server, test_console.browser

FORBIDDEN = "The figures are for supervisors only."
PSEUDONYM = "conversation-secret-"  # every case's conversation id starts so (add_cases)


@pytest.fixture
def cases(world):
    """The 24 cases of tests/test_figures.py, and the gazetteer their places roll up with."""
    with world.sessions() as session:
        import_places(session, read_places(PLACES_FILE))  # commits
    with world.sessions.begin() as session:
        add_cases(session, CASES)
    return world


def cli_table(world, source: str, by=None, since=None, until=None, min_cell: int = 5):
    """What ``helpline figures`` counts for the same query."""
    with world.sessions() as session:
        return figures(session, source, by, since=since, until=until, min_cell=min_cell,
                       places=load_gazetteer(session).places)


def table_of(page: str) -> dict[str, list[str]]:
    """The figures table's rows (body and totals): row header -> the counts as shown."""
    table = page[page.index('<table class="cases figures"'):page.index("</table>")]
    rows = {}
    for part in ("tbody", "tfoot"):
        section = table[table.index(f"<{part}>"):table.index(f"</{part}>")]
        for row in re.findall(r"<tr[^>]*>(.*?)</tr>", section, re.S):
            cells = [html.unescape(re.sub(r"<[^>]+>", "", c)).strip()
                     for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)]
            rows[cells[0]] = cells[1:]
    return rows


def cli_rows(table) -> dict[str, list[str]]:
    """The same rows, from the command's table."""
    if table.two_way:
        rows = {r: [table.text(("cell", r, c)) for c in table.cols] + [table.text(("row", r))]
                for r in table.rows}
        rows["Total"] = [table.text(("col", c)) for c in table.cols] + [table.text(("all",))]
    else:
        rows = {r: [table.text(("cell", r, "total"))] for r in table.rows}
        rows["Total"] = [table.text(("all",))]
    return rows


# -- who sees it ---------------------------------------------------------------------------

async def test_only_supervisors_see_the_figures(browser, world):
    signed_out = await browser()
    for path in ["/figures", "/figures.csv", "/figures?by=nonsense"]:
        response = await signed_out.get(path, allow_redirects=False)
        assert (response.status, response.headers["Location"]) == (303, "/sign-in"), path
    amina = await browser("amina")
    assert 'href="/figures"' not in await (await amina.get("/")).text()
    for path in ["/figures", "/figures.csv", "/figures?source=messages",
                 "/figures?by=nonsense", "/figures.csv?since=yesterday"]:
        response = await amina.get(path)
        text = await response.text()
        assert response.status == 403 and FORBIDDEN in text, path
        assert "Content-Disposition" not in response.headers and "<table" not in text
    lead = await browser("lead")
    queue = await (await lead.get("/")).text()
    assert '<a href="/audit">Audit</a> <a href="/figures">Figures</a>' in queue
    page = await lead.get("/figures")
    assert page.status == 200
    assert '<a href="/figures" aria-current="page">Figures</a>' in await page.text()


# -- the table -------------------------------------------------------------------------------

async def test_the_default_is_cases_by_month_as_the_command_counts_them(browser, cases):
    lead = await browser("lead")
    response = await lead.get("/figures")
    page = await response.text()
    assert response.status == 200
    assert table_of(page) == {"2026-09": ["6"], "2026-10": ["9"], "2026-11": ["9"],
                              "Total": ["24"]}
    assert table_of(page) == cli_rows(cli_table(cases, "cases"))
    assert '<caption id="figures-caption">Cases handed off by month</caption>' in page
    assert '<th scope="col">Month</th>' in page and '<th scope="row">2026-09</th>' in page
    assert '<option value="cases" selected>' in page  # the form says what is shown
    assert '<option value="month" selected>Month</option>' in page
    assert 'href="/figures.csv?source=cases&amp;by=month"' in page
    assert "figures-legend" not in page  # nothing hidden: no legend to read
    # the form sent as it is, empty fields and all, is the same table
    same = await (await lead.get("/figures?source=cases&by=month&by=&since=&until=")).text()
    assert table_of(same) == table_of(page)


async def test_small_counts_are_hidden_as_the_command_hides_them(browser, cases):
    lead = await browser("lead")
    page = await (await lead.get("/figures?by=level")).text()
    # 2 emergencies: "<5"; then 6 high is hidden too, else 24 - 0 - 9 - 7 - 6 would give 2
    assert table_of(page) == {"none": ["0"], "low": ["9"], "medium": ["7"], "high": ["x"],
                              "emergency": ["<5"], "Total": ["24"]}
    assert table_of(page) == cli_rows(cli_table(cases, "cases", "level"))
    assert '<td class="n">&lt;5</td>' in page
    legend = page[page.index('<dl class="legend"'):page.index("</dl>")]
    assert "<dt>&lt;5</dt><dd>a count from 1 to 4</dd>" in legend
    assert "<dt>x</dt><dd>hidden so that a small count cannot be worked out" in legend
    assert "No count from 1 to 4 is shown" in page


async def test_a_two_way_table_over_a_period(browser, cases):
    lead = await browser("lead")
    query = "by=area,level&since=2026-10-01&until=2026-10-31"
    page = await (await lead.get(f"/figures?{query}")).text()
    expected = cli_rows(cli_table(cases, "cases", "area,level", "2026-10-01", "2026-10-31"))
    assert table_of(page) == expected
    # October: 7 in the camp (rolled up to Borno, NG008) and 2 emergencies in Libya, hidden,
    # and so the 7 too (else 9 - 2 gives it away); September's 6 and November's 9 left out
    assert expected == {"LY": ["0", "0", "0", "0", "<5", "<5"],
                        "NG008": ["0", "0", "x", "0", "0", "x"],
                        "Total": ["0", "0", "x", "0", "<5", "9"]}
    assert ("<caption id=\"figures-caption\">Cases handed off by area and triage level, "
            "2026-10-01 to 2026-10-31</caption>") in page
    assert '<th scope="colgroup" colspan="5">Triage level</th>' in page
    assert '<th scope="col">Area</th>' in page and '<th scope="col" class="n">Total</th>' in page
    assert '<option value="level" selected>' in page  # the second select keeps it
    assert 'value="2026-10-01"' in page and 'value="2026-10-31"' in page
    assert 'href="/figures.csv?source=cases&amp;by=area,level&amp;since=2026-10-01&amp;' \
           'until=2026-10-31"' in page
    # by=a,b and the form's two selects (by=a&by=b) are the same question
    selects = await (await lead.get("/figures?by=area&by=level&since=2026-10-01"
                                    "&until=2026-10-31")).text()
    assert table_of(selects) == table_of(page)


async def test_subscribers_and_messages_are_there_too(browser, cases):
    lead = await browser("lead")
    for source, title in (("subscribers", "Subscribers by language"),
                          ("messages", "Campaign messages by campaign and state")):
        response = await lead.get(f"/figures?source={source}")
        page = await response.text()
        assert response.status == 200 and title in page, source
        assert table_of(page)["Total"][-1] == "0"


async def test_the_threshold_is_the_deployments_and_the_page_cannot_lower_it(world):
    with world.sessions.begin() as session:
        add_cases(session, CASES)
    app = create_app(world.sessions, FERNET, world.relay,
                     Config(secure_cookies=False, clock=world.clock, figures_min_cell=10))
    async with TestClient(TestServer(app)) as client:
        assert (await sign_in(client, "lead", PASSWORD)).status == 200
        for query in ("by=status", "by=status&min_cell=3", "by=status&min-cell=3"):
            page = await (await client.get(f"/figures?{query}")).text()
            # 9 waiting and 2 active: both below 10, shown as "<10" whatever the query says
            assert table_of(page) == {"waiting": ["<10"], "active": ["<10"],
                                      "closed": ["13"], "Total": ["24"]}, query
            assert "No count from 1 to 9 is shown" in page
        body = await (await client.get("/figures.csv?by=status&min_cell=3")).text()
        assert "waiting,<10" in body and "active,<10" in body
    with pytest.raises(ValueError, match="at least 3"):
        create_app(world.sessions, FERNET, world.relay, Config(figures_min_cell=2))


# -- the CSV ---------------------------------------------------------------------------------

async def test_the_csv_is_the_commands_with_hxl_hashtags_as_a_download(browser, cases):
    lead = await browser("lead")
    response = await lead.get("/figures.csv?by=month,channel")
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Content-Disposition"] == (
        'attachment; filename="figures-cases-month-channel.csv"')
    assert response.headers["Cache-Control"] == "no-store"
    body = await response.text()
    assert body == to_csv(cli_table(cases, "cases", "month,channel"))
    lines = list(csv.reader(io.StringIO(body)))
    assert lines[0] == ["Month", "Channel", "Cases handed off"]
    assert lines[1] == ["#date+month", "#meta+channel", "#indicator+num"]
    data = hxl.data(io.BytesIO(body.encode("utf-8")), hxl.input.InputOptions(encoding="utf-8"))
    rows = {(r.get("#date+month"), r.get("#meta+channel")): r.get("#indicator+num")
            for r in data}
    assert rows[("2026-09", "sms")] == "6"
    assert rows[("2026-10", "webchat")] == "<5"
    assert rows[("total", "total")] == "24"

    default = await lead.get("/figures.csv")
    assert default.headers["Content-Disposition"] == (
        'attachment; filename="figures-cases-month.csv"')
    period = await lead.get("/figures.csv?source=subscribers&since=2026-10-01")
    assert period.headers["Content-Disposition"] == (
        'attachment; filename="figures-subscribers-language-from-2026-10-01.csv"')


def test_the_csv_file_name_says_what_and_when(cases):
    name = csv_filename(cli_table(cases, "cases", "area,level", "2026-01-01", "2026-03-31"))
    assert name == "figures-cases-area-level-2026-01-01-to-2026-03-31.csv"
    assert csv_filename(cli_table(cases, "messages", until="2026-03-31")) == (
        "figures-messages-campaign-state-to-2026-03-31.csv")


# -- bad input -------------------------------------------------------------------------------

@pytest.mark.parametrize("query, message", [
    ("source=people", "Unknown figures 'people' (expected one of cases, subscribers, messages)."),
    ("by=weekday", "Count by: cases cannot be counted by weekday (by one or two of: month, "
                   "channel, language, level, need, area, status, outcome, replies)."),
    ("source=subscribers&by=level", "Count by: subscribers cannot be counted by level"),
    ("source=messages&by=area", "Count by: messages cannot be counted by area"),
    ("by=month,level,channel", "Count by: at most 2 dimensions"),
    ("by=month&by=level&by=channel", "Count by: at most 2 dimensions"),
    ("by=level,level", "Count by: a dimension is named twice."),
    ("since=2026-13-01", "First day: expected a date as YYYY-MM-DD, got '2026-13-01'."),
    ("since=01/10/2026", "First day: expected a date as YYYY-MM-DD, got '01/10/2026'."),
    ("until=yesterday", "Last day: expected a date as YYYY-MM-DD, got 'yesterday'."),
    ("since=2026-02-01&until=2026-01-31", "Last day 2026-01-31 is before first day 2026-02-01."),
    ("source=cases&source=messages", "Give each of these once (repeated: source)."),
    ("since=x&until=y", "Last day: expected a date as YYYY-MM-DD, got 'y'."),  # every problem
])
@pytest.mark.parametrize("path", ["/figures", "/figures.csv"])
async def test_bad_figures_queries_get_a_clear_answer(browser, path, query, message):
    lead = await browser("lead")
    response = await lead.get(f"{path}?{query}")
    text = await response.text()
    assert response.status == 400, text
    assert response.headers["Content-Type"].startswith("text/html")
    assert "Content-Disposition" not in response.headers  # the page, not a file
    assert message in html.unescape(text)
    assert 'role="alert"' in text and 'id="figures-source"' in text  # the form, to try again
    assert "<table" not in text


# -- what it never shows -----------------------------------------------------------------------

async def test_no_pseudonym_anywhere(browser, cases):
    lead = await browser("lead")
    queries = ["", "source=subscribers", "source=messages"]
    queries += [f"by={d}" for d in ("month", "channel", "language", "level", "need", "area",
                                    "status", "outcome")]
    queries += ["by=area,need", "by=outcome,month&since=2026-10-01", "by=zzz"]
    for query in queries:
        for path in ("/figures", "/figures.csv"):
            text = await (await lead.get(f"{path}?{query}")).text()
            assert PSEUDONYM not in text, (path, query)
