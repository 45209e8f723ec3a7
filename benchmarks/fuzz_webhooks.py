"""The public webhooks under a long run of hostile input (issue 17 §6).

    .venv/bin/python -m benchmarks.fuzz_webhooks [--examples 3000]

Each channel's real blueprint (REST, web chat, SMS with signed forms, Telegram with its
secret) in one Sanic app behind an in-process ASGI client, a stub in Rasa's place, and the
hostile bodies of ``tests/utils/hostile.py`` (hypothesis). Prints, per webhook, the requests
sent, the answers by status class, the server errors (5xx) and the peak memory the run
allocated (tracemalloc). A 5xx is also printed with the body that caused it.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import logging
import time
import tracemalloc
import uuid

from cryptography.fernet import Fernet, MultiFernet
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sanic import Sanic
from twilio.request_validator import RequestValidator

from bot.privacy.keys import Secrets
from bot.privacy.routes import MemoryRouteCache
from channels.gateway import Gateway
from tests.utils.hostile import CONTENT_TYPES, bodies
from tests.utils.sanic_asgi import asgi_client

TOKEN, SECRET = "0" * 32, "fuzz-secret-0123456789abcdef"
SMS_URL = "https://helpline.example.org/webhooks/sms/webhook"


async def stub(message) -> None:
    await message.output_channel.send_response(message.sender_id, {"text": "ok"})


def app() -> Sanic:
    from channels.rest import HelplineRestInput
    from channels.sms import SmsConfig, SmsInput
    from channels.telegram import TelegramInput
    from channels.telegram_api import TelegramConfig, TelegramSender
    from channels.twilio_api import TwilioConfig, TwilioSender
    from channels.webchat import WebChatInput
    from bot.deployment import SmsSettings

    key = Fernet.generate_key().decode()

    def gateway(name: str) -> Gateway:
        routes = MemoryRouteCache(MultiFernet([Fernet(key)]), idle_seconds=600)
        return Gateway(name, Secrets(b"f" * 32, (key,)), routes)

    twilio = TwilioConfig("AC" + "0" * 32, TOKEN, "+9995550100",
                          api_url="http://127.0.0.1:9", timeout_seconds=0.2)
    sms = SmsInput(SmsConfig(twilio, SMS_URL, True), gateway("sms"), SmsSettings(2, True),
                   background=True, sender=TwilioSender(twilio, base_delay=0.01, max_delay=0.02))
    telegram_config = TelegramConfig("123456:ABCdefGHIjkl", SECRET, api_url="http://127.0.0.1:9",
                                     timeout_seconds=0.2)
    telegram = TelegramInput(TelegramSender(telegram_config, base_delay=0.01, max_delay=0.02),
                             gateway("telegram"))
    server = Sanic(f"fuzz_{uuid.uuid4().hex[:8]}")
    server.blueprint(HelplineRestInput(gateway("helpline")).blueprint(stub),
                     url_prefix="/webhooks/helpline")
    server.blueprint(WebChatInput(gateway("webchat")).blueprint(stub),
                     url_prefix="/webhooks/webchat")
    server.blueprint(sms.blueprint(stub), url_prefix="/webhooks/sms")
    server.blueprint(telegram.blueprint(stub), url_prefix="/webhooks/telegram")
    return server


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--examples", type=int, default=3000, help="requests per webhook")
    args = parser.parse_args()
    logging.disable(logging.ERROR)  # the channels' refusals and undeliverable replies
    counts: dict = collections.defaultdict(collections.Counter)
    failures: list = []

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    client_context = asgi_client(app())
    client = loop.run_until_complete(client_context.__aenter__())
    loop_settings = settings(max_examples=args.examples, deadline=None, database=None,
                             suppress_health_check=list(HealthCheck))

    def post(name: str, path: str, body: bytes, headers: dict) -> None:
        reply = loop.run_until_complete(client.post(path, content=body, headers=headers))
        counts[name][f"{reply.status_code // 100}xx"] += 1
        if reply.status_code >= 500:
            failures.append((name, reply.status_code, body[:300]))

    targets = [
        ("rest /webhook", "/webhooks/helpline/webhook", {}),
        ("rest /poll", "/webhooks/helpline/poll", {}),
        ("webchat /webhook", "/webhooks/webchat/webhook", {}),
        ("webchat /poll", "/webhooks/webchat/poll", {}),
        ("telegram /webhook", "/webhooks/telegram/webhook",
         {"X-Telegram-Bot-Api-Secret-Token": SECRET}),
    ]

    def run() -> None:
        for name, path, extra in targets:
            @loop_settings
            @given(body=bodies({"sender": 1, "message": 1, "metadata": 1, "update_id": 1,
                                "message_id": 1}),
                   content_type=st.sampled_from(CONTENT_TYPES))
            def each(body, content_type):
                post(name, path, body, {"Content-Type": content_type, **extra})

            each()
        validator = RequestValidator(TOKEN)

        @loop_settings
        @given(fields=st.dictionaries(st.sampled_from(["From", "Body", "NumMedia",
                                                       "MessageSid", "OptOutType"]),
                                      st.text(max_size=300).filter(
                                          lambda t: not any(0xD800 <= ord(c) <= 0xDFFF
                                                            for c in t)), max_size=5))
        def signed_sms(fields):
            from urllib.parse import urlencode

            headers = {"Content-Type": "application/x-www-form-urlencoded",
                       "X-Twilio-Signature": validator.compute_signature(SMS_URL, fields)}
            post("sms /webhook (signed)", "/webhooks/sms/webhook",
                 urlencode(fields).encode(), headers)

        signed_sms()

    tracemalloc.start()
    started = time.perf_counter()
    try:
        run()
    finally:
        loop.run_until_complete(client_context.__aexit__(None, None, None))
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"{'webhook':26} {'requests':>8} {'2xx':>6} {'4xx':>6} {'5xx':>5}")
    for name, counter in counts.items():
        print(f"{name:26} {sum(counter.values()):8} {counter['2xx']:6} {counter['4xx']:6} "
              f"{counter['5xx']:5}")
    print(f"server errors: {len(failures)}; peak memory allocated: {peak / 2**20:.1f} MiB; "
          f"{elapsed:.1f} s")
    for name, status, body in failures[:10]:
        print(f"  {status} at {name}: {json.dumps(body.decode('utf-8', 'replace'))}")


if __name__ == "__main__":
    main()
