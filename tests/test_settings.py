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


# -- issue 17 §1: "The action server always listens on 127.0.0.1 (only the Rasa server calls it),
# whatever HELPLINE_BIND says; `scripts/start` and `helpline check` refuse a setting that would
# expose it or the Rasa API without the proxy, with a message saying what to do." and "Rasa's API
# (needed for the console's relay) requires a token of at least 32 random characters (`helpline
# check` refuses weaker), never on a public path".

STRONG = "Zq3_vL9-xR2mT8kWp4Yb7NcJ0hGs5FdA1e"  # 34 characters, every kind


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost", "::1", "[::1]"])
def test_loopback_addresses(host):
    from bot.settings import is_loopback

    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.8.0.1", "192.0.2.7", "helpline.example.org", ""])
def test_addresses_others_can_reach(host):
    from bot.settings import is_loopback

    assert not is_loopback(host)


@pytest.mark.parametrize("token", [
    STRONG, "0123456789abcdef" * 2,  # 32 hex digits (openssl rand -hex 16)
    "abcdefghijklmnopqrstuvwxyz012345",
])
def test_a_long_random_token_is_accepted(token):
    from bot.settings import token_problem

    assert token_problem(token) is None


@pytest.mark.parametrize("token, message", [
    ("s3cret-Token", "is 12 characters; it must be at least 32 random characters"),
    (STRONG[:31], "is 31 characters"),
    ("a" * 40, "does not look random"),
    ("abcdefghijklmnopqrstuvwxyzabcdefgh", "does not look random"),  # one kind of character
    ("12345678901234567890123456789012", "does not look random"),
    ("ab12" * 10, "does not look random"),  # 4 different characters
    (STRONG + "&x=1", "only letters, digits and - _ . ~"),
    (STRONG[:20] + " " + STRONG[20:], "only letters, digits"),
])
def test_a_short_or_weak_token_is_refused_with_how_to_make_one(token, message):
    from bot.settings import MAKE_TOKEN, token_problem

    problem = token_problem(token)
    assert problem and message in problem and MAKE_TOKEN in problem
    assert token not in problem  # the token itself is never printed


def test_no_token_means_no_api_and_nothing_to_check():
    from bot.settings import token_problem

    assert token_problem("") is None


def exposure(env: dict, channels=()) -> list[str]:
    from bot.settings import exposure_problems

    return exposure_problems(Settings.from_env(env), channels)


def test_loopback_with_the_api_and_the_rest_channel_is_fine():
    assert exposure({"HELPLINE_RASA_TOKEN": STRONG},
                    ["channels.rest.HelplineRestInput"]) == []
    assert exposure({"HELPLINE_BIND": "localhost", "HELPLINE_RASA_TOKEN": STRONG,
                     "HELPLINE_ACTION_URL": "http://localhost:5055/webhook"}) == []


@pytest.mark.parametrize("bind", ["0.0.0.0", "10.8.0.1", "::"])
def test_another_address_with_the_api_is_refused_with_what_to_do(bind):
    problems = exposure({"HELPLINE_BIND": bind, "HELPLINE_RASA_TOKEN": STRONG})
    assert len(problems) == 1
    assert f"HELPLINE_BIND={bind} with HELPLINE_RASA_TOKEN set would put Rasa's HTTP API" in problems[0]
    assert "set HELPLINE_BIND=127.0.0.1 and put nginx in front (deploy/nginx/helpline.conf" in problems[0]
    assert STRONG not in problems[0]


def test_another_address_with_the_rest_channel_is_refused():
    problems = exposure({"HELPLINE_BIND": "0.0.0.0"}, ["channels.rest.HelplineRestInput"])
    assert len(problems) == 1 and "channels.rest.HelplineRestInput channel" in problems[0]
    assert "leave that channel out (deploy/credentials.sample.yml)" in problems[0]


def test_another_address_without_api_or_rest_channel_is_allowed():
    """For a proxy on another machine: only the authenticated channels are served."""
    assert exposure({"HELPLINE_BIND": "10.8.0.1"}) == []


def test_an_action_url_off_this_machine_is_refused():
    problems = exposure({"HELPLINE_ACTION_URL": "http://10.0.0.5:5055/webhook",
                         "HELPLINE_ACTION_PORT": "6055"})
    assert len(problems) == 1
    assert "listens on 127.0.0.1 only" in problems[0]
    assert "use http://127.0.0.1:6055/webhook" in problems[0]
