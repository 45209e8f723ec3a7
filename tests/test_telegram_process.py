"""The Telegram channel the whole way: a real Rasa server process with the trained model and
the action server, its replies going to the local fake Bot API over HTTP. The quick exit goes
through the real tracker store, whose erasure makes the channel delete the chat's messages
(``tests/test_telegram_erasure.py`` has the rules)."""

from __future__ import annotations

import itertools
import json
import time
import urllib.error
import urllib.request

import pytest

from bot.catalog import load_catalog
from tests.utils.assistant import free_port, start_rasa_server, stop
from tests.utils.fake_telegram import FakeTelegram

pytestmark = [pytest.mark.model, pytest.mark.slow]
CATALOG = load_catalog()
SECRET = "process-test-secret_0123456789abcdef"
CHAT_ID = 5550001234
_ids = itertools.count(1)


@pytest.fixture(scope="module")
def telegram(model_path, action_server, tmp_path_factory):
    """The fake Bot API and the webhook URL of a Rasa server whose channel sends to it."""
    folder = tmp_path_factory.mktemp("telegram")
    fake = FakeTelegram().start()
    credentials = folder / "credentials.yml"
    credentials.write_text(
        "channels.rest.HelplineRestInput: {}\n"
        "channels.telegram.TelegramInput:\n"
        "  token: ${TEST_TELEGRAM_TOKEN}\n"
        "  secret_token: ${TEST_TELEGRAM_SECRET}\n"
        f"  api_url: {fake.api_url}\n", encoding="utf-8")
    port = free_port()
    try:
        rasa = start_rasa_server(model_path, port, action_server, folder / "rasa.log",
                                 credentials=str(credentials), TEST_TELEGRAM_TOKEN=fake.token,
                                 TEST_TELEGRAM_SECRET=SECRET)
    except Exception:
        fake.stop()
        raise
    fake.log = folder / "rasa.log"
    fake.webhook_url = f"http://127.0.0.1:{port}/webhooks/telegram/webhook"
    yield fake
    stop(rasa)
    fake.stop()


def post(fake: FakeTelegram, update: dict, secret: str = SECRET) -> int:
    request = urllib.request.Request(fake.webhook_url, json.dumps(update).encode(), {
        "Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": secret})
    try:
        with urllib.request.urlopen(request, timeout=60) as reply:
            return reply.status
    except urllib.error.HTTPError as error:
        return error.code


def text_update(fake: FakeTelegram, text: str) -> dict:
    """The person's message, kept in the fake's chat (so that it can be deleted)."""
    return {"update_id": next(_ids), "message": fake.incoming(CHAT_ID, text)}


def press(data: str) -> dict:
    return {"update_id": next(_ids), "callback_query": {
        "id": f"press-{next(_ids)}", "chat_instance": "1", "data": data,
        "from": {"id": CHAT_ID, "is_bot": False, "first_name": "Test"},
        "message": {"message_id": 1, "date": int(time.time()), "text": "…",
                    "chat": {"id": CHAT_ID, "type": "private"}}}}


def replies(fake: FakeTelegram, count: int) -> list[dict]:
    """Waits for ``count`` delivered messages, then a little longer for any extra one."""
    fake.wait_for("sendMessage", count, seconds=60)
    time.sleep(0.5)
    return fake.sent()


def test_a_conversation_over_telegram(telegram):
    telegram.clear()
    hello = text_update(telegram, "hello")
    assert post(telegram, hello, secret="wrong") == 403
    assert post(telegram, hello) == 200
    sent = replies(telegram, 1)
    assert len(sent) == 1 and sent[0]["chat_id"] == str(CHAT_ID)
    # first: is it safe to write now? (with Telegram's way to leave fast)
    assert sent[0]["text"] == CATALOG.render("utter_first_contact", "en", "telegram")["text"]
    safe = sent[0]["reply_markup"]["inline_keyboard"]
    assert [row[0]["text"] for row in safe] == ["Yes", "Not now"]

    telegram.clear()
    assert post(telegram, press(safe[0][0]["callback_data"])) == 200  # yes: "hello" answered
    sent = replies(telegram, 1)
    keyboard = sent[0]["reply_markup"]["inline_keyboard"]
    assert [row[0]["text"] for row in keyboard] == ["English", "Français", "العربية", "Español"]

    telegram.clear()
    assert post(telegram, press(keyboard[1][0]["callback_data"])) == 200  # Français
    sent = replies(telegram, 2)
    assert [p["text"] for p in sent] == [CATALOG.texts["fr"]["utter_language_set"],
                                         CATALOG.render("utter_menu", "fr", "telegram")["text"]]
    assert len(telegram.wait_for("answerCallbackQuery", 1)) == 1

    telegram.clear()
    chat = telegram.visible(CHAT_ID)
    assert len(chat) == 5  # "hello" and the bot's four replies (the button presses are none)
    leave = text_update(telegram, "/exit")
    assert post(telegram, leave) == 200
    assert [p["text"] for p in replies(telegram, 1)] == [CATALOG.texts["fr"]["utter_quick_exit"]]
    deleted = telegram.wait_for("deleteMessages", 1)
    assert [sorted(p["message_ids"]) for p in deleted] == [chat + [leave["message"]["message_id"]]]
    assert len(telegram.visible(CHAT_ID)) == 1  # "Ok."

    log = telegram.log.read_text(encoding="utf-8", errors="replace")
    assert str(CHAT_ID) not in log and telegram.token.split(":")[1] not in log


def test_a_reply_arrives_once_after_429_and_500(telegram):
    telegram.clear()
    telegram.script = [429, 500]
    assert post(telegram, text_update(telegram, "/start")) == 200
    sent = replies(telegram, 1)
    assert [c.answered for c in telegram.requests("sendMessage")] == [429, 500, 200]
    assert len(sent) == 1 and sent[0]["reply_markup"]["inline_keyboard"]
