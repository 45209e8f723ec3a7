"""Every response, in every language, through the SMS renderer: each SMS within the segment
budget, nothing lost, options last, GSM-7 kept where punctuation or accents were all that
broke it."""

from __future__ import annotations

import re
import string

import pytest

from bot.catalog import load_catalog
from bot.deployment import SUPPORTED_LANGUAGES, load_deployment
from channels.segments import count_segments, encoding_of
from channels.sms_text import options_of, render_turn, sms_friendly
from tests.conftest import SAMPLE_DEPLOYMENT

CATALOG = load_catalog()
DEPLOYMENT = load_deployment(SAMPLE_DEPLOYMENT)
BUDGET = DEPLOYMENT.sms.segment_budget


def filled(name: str, language: str) -> str:
    """The response with realistic values: the longest contact list, three service lines."""
    values = {
        "org_name": DEPLOYMENT.organisation_name,
        "contacts": DEPLOYMENT.render_contacts(language, "NG"),
        "need": "Safe shelter", "place": "Maiduguri", "area": "Jere", "km": "12.5",
        "service": "Sample Women's Safe House (fictional)", "what": "safe shelter, medical care",
        "where": "3.4 km, Maiduguri", "reach": "Call +999 234 100", "hours": "Open now",
        "phone": "+999 234 100", "when": "Mon 08:00", "per_week": "7",
        "months": "24 months", "keep_hours": "168", "keep_days": "365",
    }
    line = CATALOG.texts[language]["utter_services_line"].format_map(values)
    values["services"] = "\n".join([line] * 3)
    used = {f for _, f, _, _ in string.Formatter().parse(CATALOG.texts[language][name]) if f}
    # as shown on SMS: the channel's own words (no "tap") beside the values
    return CATALOG.texts[language][name].format_map(
        {**CATALOG.channel_words(language, "sms"), **{k: values[k] for k in used if k in values}})


def words(text: str) -> list[str]:
    return re.findall(r"\w+", text)


CASES = [(name, language) for language in SUPPORTED_LANGUAGES
         for name in sorted(CATALOG.texts[language])]


@pytest.mark.parametrize("name,language", CASES)
def test_every_response_fits_the_budget_in_every_part_and_loses_nothing(name, language):
    message = {"text": filled(name, language), "buttons": CATALOG.buttons_for(name, language)}
    hint = CATALOG.channel_text("sms_more", language)
    parts = render_turn([message], hint, BUDGET)
    assert parts
    for part in parts:
        assert count_segments(part).segments <= BUDGET, part
    assert all(part.endswith("\n" + sms_friendly(hint)) for part in parts[:-1])
    joined = " ".join(p[: -len(sms_friendly(hint)) - 1] for p in parts[:-1]) + " " + parts[-1]
    expected = sms_friendly(message["text"])
    assert words(joined)[: len(words(expected))] == words(expected)
    for number, title in enumerate(options_of([message]), start=1):
        assert sms_friendly(f"{number}. {title}") in parts[-1]
    # at most 5 messages, for three services with their hours in Arabic (UCS-2: 134
    # characters per 2-segment message); 4 for anything else (Arabic again)
    assert len(parts) <= (5 if "services" in name else 4), (name, language, len(parts))


@pytest.mark.parametrize("language", ["en", "fr", "es"])
def test_latin_languages_stay_in_gsm7(language):
    for name in CATALOG.texts[language]:
        assert encoding_of(sms_friendly(filled(name, language))) == "gsm7", name


def test_the_emergency_contacts_come_whole_in_the_first_sms():
    for language in SUPPORTED_LANGUAGES:
        message = {"text": filled("utter_emergency_contacts", language)}
        first = render_turn([message], CATALOG.channel_text("sms_more", language), BUDGET)[0]
        for contact in DEPLOYMENT.contacts_for("NG"):
            assert contact.number in first, language


def test_a_budget_of_one_segment_still_works():
    message = {"text": filled("utter_greet", "ar"), "buttons": CATALOG.buttons_for("utter_greet", "ar")}
    parts = render_turn([message], CATALOG.channel_text("sms_more", "ar"), 1)
    assert len(parts) > 2 and all(count_segments(p).segments == 1 for p in parts)


def test_sms_friendly_rewrites_only_when_that_gives_gsm7():
    assert sms_friendly("Don’t pay — ever…") == "Don't pay - ever..."
    assert sms_friendly("Écrivez « stop » à tout moment, ça marche") == 'Écrivez "stop" à tout moment, ca marche'
    assert sms_friendly("Très bien", fold_accents=False) == "Très bien"  # è is GSM-7
    assert sms_friendly("Prêt", fold_accents=False) == "Prêt"  # ê is not: left as written
    assert sms_friendly("¿Qué necesita? Información") == "¿Qué necesita? Informacion"
    arabic = "حسنًا، توقفنا… «القائمة»"
    assert sms_friendly(arabic) == arabic  # UCS-2 anyway: untouched
    assert sms_friendly("Emoji 🙂 stays’") == "Emoji 🙂 stays’"


def test_render_turn_refuses_a_bad_budget_or_a_hint_that_cannot_fit():
    with pytest.raises(ValueError, match="at least 1"):
        render_turn([{"text": "hi"}], "more", 0)
    with pytest.raises(ValueError, match="hint"):
        render_turn([{"text": "word " * 100}], "x" * 200, 1)
    assert render_turn([], "more", 2) == []


def test_the_deployments_sms_section_is_validated():
    import yaml

    from bot.deployment import DeploymentError, parse_deployment

    data = yaml.safe_load(SAMPLE_DEPLOYMENT.read_text(encoding="utf-8"))
    assert parse_deployment({k: v for k, v in data.items() if k != "sms"}).sms.segment_budget == 2
    data["sms"] = {"segment_budget": 0, "fold_accents": "yes", "colour": "red"}
    with pytest.raises(DeploymentError) as error:
        parse_deployment(data)
    assert error.value.problems == [
        "sms.colour: unknown setting",
        "sms.segment_budget: must be a whole number from 1 to 10, got 0",
        "sms.fold_accents: must be true or false, got 'yes'",
    ]
    data["sms"] = {"segment_budget": 4, "fold_accents": False}
    assert parse_deployment(data).sms == type(DEPLOYMENT.sms)(4, False)
