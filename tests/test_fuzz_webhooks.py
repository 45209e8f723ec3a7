"""Hostile input at every public webhook (issue 17 §6): 0 server errors and a clear 4xx.

Each channel's real blueprint in a Sanic app (as in its own tests), a stub in Rasa's place;
hypothesis sends bodies of every kind with every content type. An answer is 200 (a message the
channel could read, answered) or a 4xx whose JSON or text says what is wrong; never 5xx.
``benchmarks/fuzz_webhooks.py`` runs the same for longer and prints requests, errors and peak
memory. The Telegram channel's own fuzzing is in tests/test_telegram_fuzz.py.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.test_rest_channel import PREFIX as REST
from tests.test_rest_channel import client as rest_client  # noqa: F401 (fixtures)
from tests.test_rest_channel import gateway, stub  # noqa: F401
from tests.test_webchat_channel import client as webchat_client  # noqa: F401
from tests.test_webchat_channel import sample  # noqa: F401
from tests.utils.hostile import CONTENT_TYPES, bodies

FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))


def check(reply) -> None:
    assert reply.status_code < 500, (reply.status_code, reply.text[:200])
    if reply.status_code >= 400:
        assert reply.text.strip(), "a refusal says why"


@FUZZ
@given(body=bodies({"sender": 1, "message": 1, "metadata": 1, "location": 1}),
       content_type=st.sampled_from(CONTENT_TYPES),
       path=st.sampled_from(["/webhook", "/poll"]))
async def test_the_rest_channel_never_fails_on_hostile_bodies(rest_client, body, content_type,
                                                              path):
    check(await rest_client.post(REST + path, content=body,
                                 headers={"Content-Type": content_type}))


@FUZZ
@given(body=bodies({"sender": 1, "message": 1}),
       content_type=st.sampled_from(CONTENT_TYPES),
       path=st.sampled_from(["/webhook", "/poll"]))
async def test_the_web_chat_never_fails_on_hostile_bodies(webchat_client, body, content_type,
                                                          path):
    check(await webchat_client.post("/webhooks/webchat" + path, content=body,
                                    headers={"Content-Type": content_type}))


@pytest.fixture
async def sms_client(channel, rasa):  # noqa: F811 (the SMS test's fixtures)
    from tests.test_sms_channel import app_for
    from tests.utils.sanic_asgi import asgi_client

    async with asgi_client(app_for(channel, rasa)) as client:
        yield client


form_texts = st.one_of(st.text(max_size=300).filter(lambda t: "\ud800" not in t),
                       st.integers(1, 2000).map(lambda n: "\U0001F600" * n),
                       st.sampled_from(["/", '/greet{"name": "x"}', "/inform_location{",
                                        "\x00\x01\x02", "STOP", "HELP", "more", "1" * 40]))


@FUZZ
@given(fields=st.dictionaries(st.sampled_from(["From", "Body", "NumMedia", "MessageSid",
                                               "OptOutType", "To", "MediaUrl0", "Other"]),
                              form_texts, max_size=6),
       raw=st.binary(max_size=500), signed_form=st.booleans())
async def test_the_sms_webhook_never_fails_on_hostile_forms(sms_client, fake, fields, raw,
                                                           signed_form):
    """Signed forms (the signature right, the values hostile) and unsigned raw bodies."""
    from tests.test_sms_channel import signed

    if signed_form:
        reply = await sms_client.post("/webhooks/sms/webhook", data=fields,
                                      headers=signed(fields, fake.auth_token))
    else:
        reply = await sms_client.post("/webhooks/sms/webhook", content=raw, headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"})
        assert reply.status_code == 403
    check(reply)


from tests.test_sms_channel import channel, fake, rasa  # noqa: E402,F401 (fixtures)
