"""The shipped credentials files: credentials.yml opens only channels that need no secrets,
and deploy/credentials.sample.yml lists every channel with settings each channel accepts."""

from __future__ import annotations

import importlib

import pytest
from rasa.shared.utils.io import read_config_file

from bot.settings import PROJECT_ROOT

FICTIONAL = {
    "HELPLINE_TWILIO_ACCOUNT_SID": "AC" + "1" * 32, "HELPLINE_TWILIO_AUTH_TOKEN": "fictional",
    "HELPLINE_TWILIO_SENDER": "+9995550100", "TELEGRAM_BOT_TOKEN": "123456789:fictional_TOKEN-x",
    "TELEGRAM_WEBHOOK_SECRET": "fictional-secret_0123456789abcdef",
}
CHANNELS = {"channels.rest.HelplineRestInput", "channels.webchat.WebChatInput",
            "channels.sms.SmsInput", "channels.telegram.TelegramInput"}


def channel_class(path: str):
    module, name = path.rsplit(".", 1)
    return getattr(importlib.import_module(module), name)


def test_the_default_file_needs_no_secret():
    text = (PROJECT_ROOT / "credentials.yml").read_text(encoding="utf-8")
    assert "${" not in text
    assert set(read_config_file(str(PROJECT_ROOT / "credentials.yml"))) == {
        "channels.rest.HelplineRestInput", "channels.webchat.WebChatInput"}


def test_the_sample_lists_every_channel_with_settings_they_accept(monkeypatch):
    for name, value in FICTIONAL.items():
        monkeypatch.setenv(name, value)
    sample = read_config_file(str(PROJECT_ROOT / "deploy" / "credentials.sample.yml"))
    assert set(sample) == CHANNELS
    from channels.sms import SmsConfig
    from channels.telegram_api import TelegramConfig

    sms = SmsConfig.from_credentials(sample["channels.sms.SmsInput"])
    assert sms.webhook_url.endswith("/webhooks/sms/webhook") and sms.provider_opt_out
    telegram = TelegramConfig.from_credentials(sample["channels.telegram.TelegramInput"])
    assert "fictional" not in repr(telegram)
    for path in CHANNELS:
        assert channel_class(path).name() in {"helpline", "webchat", "sms", "telegram"}


def test_a_missing_secret_is_named(monkeypatch):
    for name in FICTIONAL:
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(Exception, match="HELPLINE_TWILIO_ACCOUNT_SID|environment variable"):
        read_config_file(str(PROJECT_ROOT / "deploy" / "credentials.sample.yml"))
