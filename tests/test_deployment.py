import copy
import datetime as dt
from pathlib import Path

import pytest
import yaml

from bot.deployment import DeploymentError, load_deployment, parse_deployment


@pytest.fixture
def sample_data(sample_path):
    return yaml.safe_load(sample_path.read_text(encoding="utf-8"))


def problems_of(data) -> list[str]:
    with pytest.raises(DeploymentError) as info:
        parse_deployment(data)
    return info.value.problems


def test_the_sample_is_valid_and_visibly_fictional(sample_path):
    deployment = load_deployment(sample_path)
    assert "sample" in deployment.organisation_name.lower()
    assert deployment.languages == ("en", "fr", "ar", "es")
    for contacts in deployment.emergency_contacts.values():
        for contact in contacts:
            assert contact.number.startswith("+999")  # an unassigned country code


def test_contacts_by_area_fall_back_to_default(sample_path):
    deployment = load_deployment(sample_path)
    assert deployment.contacts_for("NG") == deployment.emergency_contacts["NG"]
    assert deployment.contacts_for("ZZ") == deployment.emergency_contacts["default"]
    assert deployment.contacts_for(None) == deployment.emergency_contacts["default"]
    assert deployment.render_contacts("fr").startswith("Ligne d'urgence (exemple): +999 100 000")


def test_a_missing_emergency_contact_is_an_error(sample_data):
    data = copy.deepcopy(sample_data)
    data["emergency_contacts"]["LY"] = []
    assert "emergency_contacts.LY: no emergency contact given" in problems_of(data)


def test_the_default_contacts_are_required(sample_data):
    data = copy.deepcopy(sample_data)
    del data["emergency_contacts"]["default"]
    assert any(p.startswith("emergency_contacts.default: missing") for p in problems_of(data))


def test_a_contact_needs_its_name_in_every_enabled_language(sample_data):
    data = copy.deepcopy(sample_data)
    del data["emergency_contacts"]["NG"][1]["name"]["ar"]
    assert "emergency_contacts.NG[1].name.ar: missing" in problems_of(data)


def test_a_contact_needs_a_plausible_number(sample_data):
    data = copy.deepcopy(sample_data)
    data["emergency_contacts"]["UA"][0]["number"] = "call the police"
    assert "emergency_contacts.UA[0].number: 'call the police' is not a phone number" in problems_of(data)
    data["emergency_contacts"]["UA"][0].pop("number")
    assert "emergency_contacts.UA[0].number: missing" in problems_of(data)


def test_languages_must_be_supported_and_include_the_default(sample_data):
    data = copy.deepcopy(sample_data)
    data["languages"] = ["en", "sw", "en"]
    data["default_language"] = "fr"
    problems = problems_of(data)
    assert "languages[1]: 'sw' is not supported (supported: en, fr, ar, es)" in problems
    assert "languages[2]: 'en' is listed twice" in problems
    assert "default_language: 'fr' is not one of the enabled languages" in problems


def test_fewer_languages_need_fewer_names(sample_data):
    data = copy.deepcopy(sample_data)
    data["languages"] = ["fr"]
    data["default_language"] = "fr"
    for contacts in data["emergency_contacts"].values():
        for contact in contacts:
            contact["name"] = {"fr": contact["name"]["fr"]}
    deployment = parse_deployment(data)
    assert deployment.language_or_default("ar") == "fr"


def test_hours_of_cover(sample_data):
    deployment = parse_deployment(sample_data)
    lagos = dt.timezone(dt.timedelta(hours=1))
    assert deployment.human_cover.is_covered(dt.datetime(2026, 11, 23, 9, 0, tzinfo=lagos))  # Monday
    assert not deployment.human_cover.is_covered(dt.datetime(2026, 11, 23, 21, 0, tzinfo=lagos))
    assert deployment.human_cover.is_covered(dt.datetime(2026, 11, 28, 12, 59, tzinfo=lagos))  # Saturday
    assert not deployment.human_cover.is_covered(dt.datetime(2026, 11, 28, 13, 0, tzinfo=lagos))
    assert not deployment.human_cover.is_covered(dt.datetime(2026, 11, 29, 10, 0, tzinfo=lagos))  # Sunday


def test_bad_hours_and_time_zone(sample_data):
    data = copy.deepcopy(sample_data)
    data["human_cover"]["timezone"] = "Mars/Olympus"
    data["human_cover"]["hours"]["monday"] = "20:00-08:00"
    data["human_cover"]["hours"]["funday"] = "08:00-09:00"
    data["human_cover"]["hours"]["tuesday"] = "8am-5pm"
    problems = problems_of(data)
    assert "human_cover.timezone: unknown time zone 'Mars/Olympus'" in problems
    assert "human_cover.hours.monday: '20:00-08:00' ends before it starts" in problems
    assert any(p.startswith("human_cover.hours.funday: not a weekday") for p in problems)
    assert "human_cover.hours.tuesday: '8am-5pm' is not a range like '08:00-17:00'" in problems


def test_retention_must_be_positive_whole_numbers(sample_data):
    data = copy.deepcopy(sample_data)
    data["retention"]["conversation_idle_hours"] = 0
    data["retention"]["closed_case_days"] = "thirty"
    del data["retention"]["reply_route_idle_hours"]
    problems = problems_of(data)
    assert "retention.conversation_idle_hours: must be a whole number above 0, got 0" in problems
    assert "retention.closed_case_days: must be a whole number above 0, got 'thirty'" in problems
    assert "retention.reply_route_idle_hours: missing" in problems


def test_unknown_and_missing_settings(sample_data):
    data = copy.deepcopy(sample_data)
    data["organisaton"] = data.pop("organisation")
    problems = problems_of(data)
    assert any(p.startswith("organisaton: unknown setting") for p in problems)
    assert "organisation: missing" in problems


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "the file must be a mapping of settings"),
        (b"languages: [en\n", "not valid YAML"),
        (b"\xff\xfe\x00", "the file is not UTF-8 text"),
    ],
)
def test_unreadable_files(tmp_path, content, message):
    path = tmp_path / "deployment.yml"
    path.write_bytes(content)
    with pytest.raises(DeploymentError, match=message):
        load_deployment(path)


def test_a_missing_file(tmp_path):
    with pytest.raises(DeploymentError, match="cannot read the file"):
        load_deployment(Path(tmp_path / "nope.yml"))


def test_the_error_lists_every_problem_readably(sample_data):
    data = copy.deepcopy(sample_data)
    data["emergency_contacts"]["NG"] = None
    data["languages"] = []
    with pytest.raises(DeploymentError) as info:
        parse_deployment(data, Path("deploy/site.yml"))
    text = str(info.value)
    assert text.startswith("deployment file deploy/site.yml is not valid:")
    assert "  - emergency_contacts.NG: no emergency contact given" in text
    assert "  - languages: must be a non-empty list of language codes" in text


def test_the_web_chat_quick_exit_address(sample_data):
    assert parse_deployment(sample_data).web_quick_exit_url is None  # the channel's own page
    data = copy.deepcopy(sample_data)
    for url in ("https://weather.example.org/", "https://example.org:8443/news?today=1", "/recipes"):
        data["web_chat"] = {"quick_exit_url": url}
        assert parse_deployment(data).web_quick_exit_url == url
    for url in ("http://example.org/", "//example.org/", "javascript:alert(1)", "https://", 3):
        data["web_chat"] = {"quick_exit_url": url}
        assert any(p.startswith("web_chat.quick_exit_url: must be an https:// address")
                   for p in problems_of(data)), url
    data["web_chat"] = {"quick_exit": "/recipes"}
    assert "web_chat.quick_exit: unknown setting" in problems_of(data)
    data["web_chat"] = "https://example.org/"
    assert problems_of(data) == ["web_chat: must be a mapping with quick_exit_url"]


def test_the_consent_lasts_twelve_months_unless_the_deployment_says_otherwise(sample_data):
    data = copy.deepcopy(sample_data)
    data.pop("campaigns", None)
    assert parse_deployment(data).campaigns.consent_months == 12
    data["campaigns"] = {"consent_months": 6}
    assert parse_deployment(data).campaigns.consent_months == 6
    data["campaigns"] = {"consent_months": 24}
    assert parse_deployment(data).campaigns.consent_months == 24


@pytest.mark.parametrize("value", [0, 25, -3, 6.5, "12", True, None])
def test_a_bad_consent_duration_is_named_with_its_value(sample_data, value):
    data = copy.deepcopy(sample_data)
    data["campaigns"] = {"consent_months": value}
    assert problems_of(data) == [f"campaigns.consent_months: must be a whole number of months "
                                 f"from 1 to 24, got {value!r}"]


def test_the_confidentiality_text_is_optional_and_checked(sample_data):
    data = copy.deepcopy(sample_data)
    assert set(parse_deployment(data).confidentiality) == {"en", "fr", "ar", "es"}
    del data["organisation"]["confidentiality"]
    assert parse_deployment(data).confidentiality == {}
    data["organisation"]["confidentiality"] = {"en": "x" * 301, "fr": "Rien {x}", "es": " "}
    problems = problems_of(data)
    assert "organisation.confidentiality.en: 301 characters (at most 300)" in problems
    assert "organisation.confidentiality.fr: no placeholders" in problems
    assert "organisation.confidentiality.es: missing" in problems
    assert "organisation.confidentiality.ar: missing" in problems
    data["organisation"]["confidentiality"] = "all kept"
    assert "organisation.confidentiality: must give a text per language" in problems_of(data)


def test_the_cap_of_new_cases_has_a_default_and_is_checked(sample_data):
    assert parse_deployment(sample_data).max_new_cases_per_hour == 30
    sample_data["handoff"] = {"max_new_cases_per_hour": 5}
    assert parse_deployment(sample_data).max_new_cases_per_hour == 5
    for bad in (0, -1, "10", True, 10.5):
        sample_data["handoff"] = {"max_new_cases_per_hour": bad}
        with pytest.raises(DeploymentError, match="handoff.max_new_cases_per_hour"):
            parse_deployment(sample_data)
    sample_data["handoff"] = {"max_cases": 5}
    with pytest.raises(DeploymentError, match="handoff.max_cases: unknown setting"):
        parse_deployment(sample_data)
