"""``helpline telegram webhook set|info|delete`` against the local fake Bot API."""

from __future__ import annotations

import pytest

from bot import cli
from tests.utils.fake_telegram import FakeTelegram

SECRET = "webhook-secret_0123456789abcdefghij"
HOOK = "https://helpline.example.org/webhooks/telegram/webhook"


@pytest.fixture
def fake():
    server = FakeTelegram().start()
    yield server
    server.stop()


@pytest.fixture
def credentials(tmp_path, fake, monkeypatch):
    monkeypatch.setenv("TEST_TELEGRAM_TOKEN", fake.token)
    monkeypatch.setenv("TEST_TELEGRAM_SECRET", SECRET)
    path = tmp_path / "credentials.yml"
    path.write_text(
        "channels.rest.HelplineRestInput: {}\n"
        "channels.telegram.TelegramInput:\n"
        "  token: ${TEST_TELEGRAM_TOKEN}\n"
        "  secret_token: ${TEST_TELEGRAM_SECRET}\n"
        f"  api_url: {fake.api_url}\n"
        f"  webhook_url: {HOOK}\n", encoding="utf-8")
    return path


def run(capsys, *args) -> tuple[int, str, str]:
    status = cli.main(["telegram", "webhook", *map(str, args)])
    out, err = capsys.readouterr()
    return status, out, err


def test_set_info_delete(fake, credentials, capsys):
    status, out, err = run(capsys, "set", "--credentials", credentials)
    assert status == 0, err
    assert fake.webhook == {"url": HOOK, "secret_token": SECRET,
                            "allowed_updates": ["message", "edited_message", "callback_query"]}
    assert "bot: @helpline_test_bot" in out and f"webhook set: {HOOK}" in out

    status, out, err = run(capsys, "info", "--credentials", credentials)
    assert status == 0, err
    assert f"url: {HOOK}" in out and "pending updates: 2" in out
    assert "last error: 2023-11-14T22:13:20+00:00: Connection refused" in out

    status, out, err = run(capsys, "delete", "--credentials", credentials)
    assert (status, fake.webhook) == (0, {}) and "webhook deleted" in out
    status, out, err = run(capsys, "info", "--credentials", credentials)
    assert "url: (none: no webhook set)" in out and "last error: none" in out
    assert all(fake.token not in text and SECRET not in text for text in (out, err))


def test_a_refused_token_is_a_clear_error_without_the_token(fake, credentials, capsys, monkeypatch):
    monkeypatch.setenv("TEST_TELEGRAM_TOKEN", "999:WRONG-token_for_tests")
    status, out, err = run(capsys, "info", "--credentials", credentials)
    assert status == 2 and "InvalidToken" in err and "check 'token'" in err
    assert "WRONG-token" not in out + err
    assert [c.answered for c in fake.requests()] == [401]  # a refusal is not retried


def test_missing_settings_are_named(tmp_path, credentials, capsys, monkeypatch):
    monkeypatch.delenv("TEST_TELEGRAM_SECRET")
    status, _, err = run(capsys, "set", "--credentials", credentials)
    assert status == 2 and "${TEST_TELEGRAM_SECRET}" in err

    other = tmp_path / "other.yml"
    other.write_text("channels.rest.HelplineRestInput: {}\ntelegram:\n  access_token: x\n", encoding="utf-8")
    status, _, err = run(capsys, "info", "--credentials", other)
    assert status == 2 and "has no channels.telegram.TelegramInput section" in err
    assert "Rasa's own channel" in err

    status, _, err = run(capsys, "info", "--credentials", tmp_path / "missing.yml")
    assert status == 2 and "does not exist" in err

    credentials.write_text(credentials.read_text(encoding="utf-8").replace(f"  webhook_url: {HOOK}\n", ""),
                           encoding="utf-8")
    monkeypatch.setenv("TEST_TELEGRAM_SECRET", SECRET)
    status, _, err = run(capsys, "set", "--credentials", credentials)
    assert status == 2 and "needs 'webhook_url'" in err
