"""Hostile input at every console form (issue 17 §6): 0 server errors, a clear 4xx.

A signed-in supervisor (with the form token, so the forms are really read) and a stranger
without a session post hostile values to every form: sign-in, reply, take, transfer, close,
unlock, sign-out; with odd paths (case numbers that are not numbers, huge, negative) and odd
content types. hypothesis drives it; the console's real app on SQLite.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.test_console import browser, server, world  # noqa: F401 (fixtures)
from tests.test_console import csrf_of

FUZZ = settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
values = st.one_of(st.text(max_size=300), st.integers(1, 3000).map(lambda n: "\U0001F600" * n),
                   st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=31), max_size=50),
                   st.sampled_from(["", "0", "-1", "99999999999999999999", "amina", "lead",
                                    "=cmd|' /C calc'!A0", "<script>x</script>", "../../etc"]))
numbers = st.one_of(st.integers(-5, 10**20).map(str),
                    st.sampled_from(["abc", "1.5", "%00", "1e9", "٣", " 1", "0x1"]))
forms = st.sampled_from(["take", "reply", "transfer", "close"])


@pytest.fixture
async def lead(browser, world):  # noqa: F811
    world.cases.open("c" + "1" * 31, "sms", "en", "high")
    client = await browser("lead")
    return client, await csrf_of(client)


@FUZZ
@given(form=forms, number=numbers,
       fields=st.dictionaries(st.sampled_from(["text", "to", "outcome", "csrf", "x"]), values,
                              max_size=4),
       keep_token=st.booleans())
async def test_case_forms_never_fail(lead, form, number, fields, keep_token):
    client, token = lead
    data = {**fields, **({"csrf": token} if keep_token else {})}
    reply = await client.post(f"/cases/{number}/{form}", data=data, allow_redirects=False)
    assert reply.status < 500, (reply.status, form, number, data)


@FUZZ
@given(fields=st.dictionaries(st.sampled_from(["name", "password", "csrf", "next"]), values,
                              max_size=4),
       content_type=st.sampled_from(["application/x-www-form-urlencoded", "text/plain",
                                     "application/json", "multipart/form-data; boundary=q"]),
       raw=st.binary(max_size=300), use_raw=st.booleans())
async def test_sign_in_and_unlock_never_fail(browser, fields, content_type, raw, use_raw):  # noqa: F811
    stranger = await browser()
    if use_raw:
        reply = await stranger.post("/sign-in", data=raw, headers={"Content-Type": content_type},
                                    allow_redirects=False)
    else:
        reply = await stranger.post("/sign-in", data=fields, allow_redirects=False)
    assert reply.status < 500, (reply.status, fields)
    name = fields.get("name") or "x"
    reply = await stranger.post(f"/users/{name[:60]}/unlock", data=fields, allow_redirects=False)
    assert reply.status < 500, (reply.status, name)
