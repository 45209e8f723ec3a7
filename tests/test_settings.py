from pathlib import Path

import pytest

from bot.settings import PROJECT_ROOT, SETTINGS_DOC, Settings, SettingsError


def test_defaults_need_no_environment():
    settings = Settings.from_env({})
    assert settings.deployment_file == PROJECT_ROOT / "deploy" / "sample.yml"
    assert settings.rasa_port == 5005
    assert settings.lang_min_letters == 20
    assert settings.lang_min_probability == pytest.approx(0.90)


def test_values_come_from_the_environment():
    settings = Settings.from_env(
        {"HELPLINE_DEPLOYMENT": "/etc/helpline/deploy.yml", "HELPLINE_RASA_PORT": "6000",
         "HELPLINE_LANG_MIN_LETTERS": "30", "HELPLINE_LOG_LEVEL": "debug"}
    )
    assert settings.deployment_file == Path("/etc/helpline/deploy.yml")
    assert settings.rasa_port == 6000
    assert settings.lang_min_letters == 30
    assert settings.log_level == "DEBUG"


@pytest.mark.parametrize(
    "variable, value, message",
    [
        ("HELPLINE_RASA_PORT", "http", "HELPLINE_RASA_PORT: expected a whole number"),
        ("HELPLINE_ACTION_PORT", "70000", "HELPLINE_ACTION_PORT: not a port number"),
        ("HELPLINE_LANG_MIN_LETTERS", "0", "must be at least 1"),
        ("HELPLINE_LANG_MIN_PROB", "1.5", "must be in (0, 1]"),
        ("HELPLINE_LANG_MIN_PROB", "high", "expected a number"),
        ("HELPLINE_LOG_LEVEL", "loud", "unknown level"),
    ],
)
def test_bad_values_are_named(variable, value, message):
    with pytest.raises(SettingsError, match=message.replace("(", r"\(").replace(")", r"\)").replace("]", r"\]")):
        Settings.from_env({variable: value})


def test_readme_documents_every_setting():
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    rows = {line.split("|")[1].strip(): line for line in readme.splitlines()
            if line.startswith("| `HELPLINE_")}
    for variable, (_, default, _) in SETTINGS_DOC.items():
        assert f"`{variable}`" in rows, f"README.md's settings table does not document {variable}"
        shown = f"`{default}`" if default else "(not set)"
        assert shown in rows[f"`{variable}`"], f"README.md does not give the default of {variable}"
