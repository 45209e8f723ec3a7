"""Talking to a running Rasa server through each of the project's channels, as the providers
and the page do: signed Twilio webhooks, Telegram updates with the secret header, the web
chat's JSON, the REST channel's JSON; and a credentials file opening all of them."""

from __future__ import annotations

import itertools
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Optional

import yaml
from twilio.request_validator import RequestValidator

TELEGRAM_SECRET = "canary-and-process-tests_0123456789abcdef"
SMS_SENDER = "+9995550100"  # the helpline's own fictional number
_ids = itertools.count(1)


def write_credentials(path: Path, rasa_port: int, twilio: Any = None, telegram: Any = None) -> Path:
    """A credentials file with the REST channel and the web chat, and SMS and Telegram when
    their fake provider is given (the Telegram token and secret are passed as ``${VARS}``,
    see ``telegram_env``)."""
    channels: dict = {"channels.rest.HelplineRestInput": {}, "channels.webchat.WebChatInput": {}}
    if twilio is not None:
        channels["channels.sms.SmsInput"] = {
            "account_sid": twilio.account_sid, "auth_token": twilio.auth_token,
            "sender": SMS_SENDER, "webhook_url": sms_webhook(rasa_port), "api_url": twilio.url}
    if telegram is not None:
        channels["channels.telegram.TelegramInput"] = {
            "token": "${TEST_TELEGRAM_TOKEN}", "secret_token": "${TEST_TELEGRAM_SECRET}",
            "api_url": telegram.api_url}
    path.write_text(yaml.safe_dump(channels), encoding="utf-8")
    return path


@contextmanager
def fake_providers(folder: Path, monkeypatch) -> Iterator[tuple[Any, Any, Path]]:
    """The fake Twilio and Telegram APIs running, the environment the credentials file's
    ``${VARS}`` name, and that file in ``folder``: (twilio, telegram, credentials path)."""
    from tests.utils.fake_telegram import FakeTelegram
    from tests.utils.fake_twilio import FakeTwilio

    twilio, telegram = FakeTwilio().start(), FakeTelegram().start()
    try:
        for name, value in telegram_env(telegram).items():
            monkeypatch.setenv(name, value)
        yield twilio, telegram, write_credentials(Path(folder) / "credentials.yml", 5005,
                                                  twilio=twilio, telegram=telegram)
    finally:
        twilio.stop()
        telegram.stop()


def telegram_env(telegram: Any) -> dict:
    return {"TEST_TELEGRAM_TOKEN": telegram.token, "TEST_TELEGRAM_SECRET": TELEGRAM_SECRET}


def sms_webhook(rasa_port: int) -> str:
    return f"http://127.0.0.1:{rasa_port}/webhooks/sms/webhook"


def _post(url: str, data: bytes, headers: dict) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data, headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def send_sms(rasa_port: int, token: str, sender: str, body: str,
             signature: Optional[str] = None) -> int:
    """POSTs an incoming SMS as Twilio does (signed with ``token`` unless ``signature``)."""
    webhook = sms_webhook(rasa_port)
    params = {"From": sender, "To": SMS_SENDER, "Body": body, "NumMedia": "0",
              "AccountSid": "AC" + "0" * 32, "MessageSid": f"SM{next(_ids):032d}"}
    if signature is None:
        signature = RequestValidator(token).compute_signature(webhook, params)
    status, _ = _post(webhook, urllib.parse.urlencode(params).encode(),
                      {"X-Twilio-Signature": signature,
                       "Content-Type": "application/x-www-form-urlencoded"})
    return status


def telegram_text(chat_id: int, text: str, first_name: str = "Test", last_name: str = "",
                  username: str = "") -> dict:
    """A private-chat text update, with the sender's names as Telegram gives them."""
    person = {"id": chat_id, "is_bot": False, "first_name": first_name}
    person.update({k: v for k, v in (("last_name", last_name), ("username", username)) if v})
    return {"update_id": next(_ids), "message": {
        "message_id": next(_ids), "date": int(time.time()), "text": text,
        "chat": {"id": chat_id, "type": "private", **{k: v for k, v in person.items() if k != "is_bot"}},
        "from": person}}


def send_telegram(rasa_port: int, update: dict, secret: str = TELEGRAM_SECRET) -> int:
    url = f"http://127.0.0.1:{rasa_port}/webhooks/telegram/webhook"
    status, _ = _post(url, json.dumps(update).encode(),
                      {"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": secret})
    return status


def send_json(rasa_port: int, channel: str, body: dict) -> list:
    """POSTs to the REST (``helpline``) or web chat (``webchat``) webhook; the bot's messages."""
    url = f"http://127.0.0.1:{rasa_port}/webhooks/{channel}/webhook"
    status, data = _post(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    assert status == 200, (channel, status, data[:200])
    return json.loads(data)


def wait_until(check, seconds: float = 30, what: str = "the replies") -> Any:
    """Polls ``check()`` until it returns something true (replies are sent in the background)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what} did not arrive within {seconds} s")
