"""The shipped credentials files: credentials.yml opens only channels that need no secrets,
and deploy/credentials.sample.yml lists every production channel with settings each channel
accepts, and not the REST channel (issue 17 §1: "The REST channel stays for local use and
tests; production credentials (`deploy/credentials.sample.yml`) leave it out or require a
shared secret header; documented.")."""

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
REST = "channels.rest.HelplineRestInput"
CHANNELS = {"channels.webchat.WebChatInput", "channels.sms.SmsInput",
            "channels.telegram.TelegramInput"}


def channel_class(path: str):
    module, name = path.rsplit(".", 1)
    return getattr(importlib.import_module(module), name)


def test_the_default_file_needs_no_secret():
    text = (PROJECT_ROOT / "credentials.yml").read_text(encoding="utf-8")
    assert "${" not in text
    assert set(read_config_file(str(PROJECT_ROOT / "credentials.yml"))) == {
        REST, "channels.webchat.WebChatInput"}


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
        assert channel_class(path).name() in {"webchat", "sms", "telegram"}


def test_the_sample_has_no_rest_channel_and_says_why():
    text = (PROJECT_ROOT / "deploy" / "credentials.sample.yml").read_text(encoding="utf-8")
    channels = [line.split(":")[0] for line in text.splitlines()
                if line and not line.startswith((" ", "#"))]
    assert REST not in channels and "rest" not in channels
    assert channels and all(channel_class(c).name() != "helpline" for c in channels)
    assert "No REST channel" in text and "no authentication" in text


def test_the_sample_passes_the_exposure_check_on_any_address(tmp_path):
    """With the sample's channels and no API token, another HELPLINE_BIND exposes only the
    authenticated channels (a proxy on another machine)."""
    from bot.cli import check_exposure
    from bot.settings import Settings

    settings = Settings.from_env({"HELPLINE_BIND": "10.8.0.1"})
    assert check_exposure(settings, PROJECT_ROOT / "deploy" / "credentials.sample.yml") == []
    assert check_exposure(settings, PROJECT_ROOT / "credentials.yml")  # the REST channel


def test_a_missing_secret_is_named(monkeypatch):
    for name in FICTIONAL:
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(Exception, match="HELPLINE_TWILIO_ACCOUNT_SID|environment variable"):
        read_config_file(str(PROJECT_ROOT / "deploy" / "credentials.sample.yml"))
