"""The message catalog: every response in every language, within SMS length, in step with the domain."""

import string

import pytest
import yaml

from bot.catalog import (
    CHANNEL_WORDS,
    CHANNELS,
    MAX_MESSAGE_CHARS,
    PLACEHOLDERS,
    RESPONSES_FILE,
    CatalogError,
    build_responses,
    load_catalog,
    parse_choice,
    render_domain_file,
    responses_in_rules,
)
from bot.deployment import SUPPORTED_LANGUAGES
from bot.settings import PROJECT_ROOT

CATALOG = load_catalog()
NAMES = sorted(CATALOG.texts["en"])


@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
@pytest.mark.parametrize("name", NAMES)
def test_every_response_exists_in_every_language_within_320_characters(name, language):
    text = CATALOG.texts[language][name]
    assert text.strip()
    values = {field: "x" for field in PLACEHOLDERS}
    values.update(org_name="Lantern Line (sample)", contacts="Sample line: +999 100 000")
    rendered = CATALOG.render(name, language, **values)
    assert len(text) <= MAX_MESSAGE_CHARS
    assert "{" not in rendered["text"]
    for button in rendered.get("buttons", []):
        assert button["title"] and len(button["title"]) <= 30


@pytest.mark.parametrize("language", ["fr", "ar", "es"])
def test_translations_are_not_english_copies(language):
    same = [n for n in NAMES if CATALOG.texts[language][n] == CATALOG.texts["en"][n]]
    # "Ok." may be the same neutral word; a service line is only placeholders and punctuation
    assert set(same) <= {"utter_quick_exit", "utter_services_line"}


def test_arabic_texts_are_in_arabic_script():
    for name in NAMES:
        text = CATALOG.render(name, "ar", **{field: "" for field in PLACEHOLDERS})["text"]
        letters = [c for c in text if c.isalpha()]
        arabic = [c for c in letters if "\u0600" <= c <= "\u06ff"]
        assert len(arabic) >= 0.8 * len(letters), name


def test_the_generated_domain_is_up_to_date():
    assert RESPONSES_FILE.read_text(encoding="utf-8") == render_domain_file(CATALOG), (
        "bot/domain/responses.yml is stale: run `helpline build-domain`"
    )


def test_every_domain_response_has_exactly_one_variation_per_language_and_channel():
    """... and, for a response that offers a person, per value of ``person_available``
    (tests/test_person_offers.py holds what each variation says)."""
    responses = yaml.safe_load(RESPONSES_FILE.read_text(encoding="utf-8"))["responses"]
    assert set(responses) == responses_in_rules()
    for name, variations in responses.items():
        people = (True, False) if CATALOG.offers_person(name) else (None,)
        for person in people:
            for channel in ("", *CHANNELS):
                languages = [v["condition"][0]["value"] for v in variations
                             if v.get("channel", "") == channel
                             and _person_condition(v) == person]
                # a channel has variations only where its words change the text, then in all four
                assert sorted(languages) in ([], sorted(SUPPORTED_LANGUAGES)) if channel else (
                    sorted(languages) == sorted(SUPPORTED_LANGUAGES)), (name, channel, person)
        for variation in variations:
            language = variation["condition"][0]["value"]
            person = _person_condition(variation)
            assert variation["condition"] == [
                {"type": "slot", "name": "language", "value": language},
                *([] if person is None else
                  [{"type": "slot", "name": "person_available", "value": person}]),
            ]


def _person_condition(variation: dict):
    return next((c["value"] for c in variation["condition"]
                 if c["name"] == "person_available"), None)


def test_a_rule_using_an_unknown_response_is_an_error():
    with pytest.raises(CatalogError, match="utter_nonexistent"):
        build_responses(CATALOG, {"utter_nonexistent"})


def test_main_menu_has_the_six_options_in_order_the_last_for_danger_now():
    assert CATALOG.main_menu_payloads() == [
        "/ask_trafficking_info", "/find_services", "/request_human", "/check_situation",
        "/change_language", "/emergency",
    ]
    for language in SUPPORTED_LANGUAGES:
        titles = [b["title"] for b in CATALOG.buttons_for("utter_menu", language)]
        assert titles[-1] == CATALOG.buttons[language]["emergency"]


def test_missing_translation_and_bad_placeholder_are_reported(tmp_path):
    for path in (PROJECT_ROOT / "bot" / "messages").glob("*.yml"):
        (tmp_path / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    fr = yaml.safe_load((tmp_path / "fr.yml").read_text(encoding="utf-8"))
    del fr["responses"]["utter_goodbye"]
    fr["responses"]["utter_greet"] = "Bonjour {name}"
    fr["responses"]["utter_menu"] = "x" * 321
    (tmp_path / "fr.yml").write_text(yaml.safe_dump(fr, allow_unicode=True), encoding="utf-8")
    load_catalog.cache_clear()
    try:
        with pytest.raises(CatalogError) as info:
            load_catalog(tmp_path)
    finally:
        load_catalog.cache_clear()
    message = str(info.value)
    assert "fr.yml: response utter_goodbye missing" in message
    assert "fr.yml: utter_greet uses unknown placeholder {name}" in message
    assert "fr.yml: utter_menu has 321 characters" in message


@pytest.mark.parametrize(
    "text, number",
    [("1", 1), (" 2 ", 2), ("3.", 3), ("4)", 4), ("#5", 5), ("٢", 2), ("۳", 3), ("12", 12),
     ("0", None), ("one", None), ("1 2", None), ("2nd", None), ("", None), ("-1", None)],
)
def test_typed_option_numbers(text, number):
    assert parse_choice(text) == number


def test_placeholders_are_known():
    in_domain = responses_in_rules()
    for language in SUPPORTED_LANGUAGES:
        for name, text in CATALOG.texts[language].items():
            fields = {f for _, f, _, _ in string.Formatter().parse(text) if f}
            assert fields <= PLACEHOLDERS | set(CHANNEL_WORDS), (language, name)
            if name in in_domain:  # Rasa fills these from slots: only org_name is a slot
                # (channel words are filled when the domain is built)
                assert fields - set(CHANNEL_WORDS) <= {"org_name"}, (language, name)


def test_a_broken_layout_is_reported(tmp_path):
    (tmp_path / "layout.yml").write_text("button_payloads: {}\n", encoding="utf-8")
    load_catalog.cache_clear()
    try:
        with pytest.raises(CatalogError, match="layout.yml must have"):
            load_catalog(tmp_path)
    finally:
        load_catalog.cache_clear()
