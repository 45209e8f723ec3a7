"""Campaign files: every validation error with its field (alone and several at once), the JSON
stored for the dispatcher, area expansion over the gazetteer, the sending window, and the
deployment file's ``campaigns:`` section."""

from __future__ import annotations

import copy
import datetime as dt
import json
from decimal import Decimal

import pytest
import yaml

from bot.campaigns.definition import (CampaignDefinition, CampaignError, expand_area,
                                      load_campaign, parse_campaign, timezone_for_area)
from bot.deployment import CampaignSettings, DeploymentError, load_deployment, parse_deployment
from bot.services.places import Gazetteer, read_places
from bot.settings import PROJECT_ROOT

SAMPLE_CAMPAIGN = PROJECT_ROOT / "deploy" / "campaigns" / "sample.yml"
PLACES_FILE = PROJECT_ROOT / "data" / "gazetteer" / "places.csv"
UTC = dt.timezone.utc


@pytest.fixture(scope="module")
def gazetteer() -> Gazetteer:
    places = Gazetteer()
    for place in read_places(PLACES_FILE):
        places.add(place)
    return places


SAMPLE_DEPLOYMENT = PROJECT_ROOT / "deploy" / "sample.yml"


@pytest.fixture(scope="module")
def deployment():
    return load_deployment(SAMPLE_DEPLOYMENT)


@pytest.fixture(scope="module")
def sample_deployment_data():
    return yaml.safe_load(SAMPLE_DEPLOYMENT.read_text("utf-8"))


def campaign(**changes) -> dict:
    """A small valid campaign with ``changes`` (None removes a key)."""
    data = {
        "name": "test-campaign-1",
        "texts": {"en": "Job offers abroad can be a trap. Reply STOP (or /stop) to end these "
                        "messages.",
                  "fr": "Les offres d'emploi a l'etranger peuvent etre un piege. STOP ou /stop "
                        "pour arreter."},
        "audience": {"languages": ["en", "fr"], "areas": ["NG008"], "channels": ["sms", "telegram"]},
        "window": {"start": "09:00", "end": "19:00"},
        "cap_per_week": 2,
    }
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return data


def problems_of(data, deployment, gazetteer) -> list[str]:
    with pytest.raises(CampaignError) as info:
        parse_campaign(data, deployment, gazetteer)
    return info.value.problems


# -- the sample and a valid file ---------------------------------------------------------------


def test_the_sample_campaign_is_valid_and_visibly_fictional(deployment, gazetteer):
    definition = load_campaign(SAMPLE_CAMPAIGN, deployment, gazetteer)
    assert definition.name.startswith("sample-")
    assert definition.languages == ("en", "fr", "ar", "es")
    assert definition.channels == ("sms", "telegram")
    assert definition.areas == ("NG008",)
    assert "ng-maiduguri" in definition.area_codes and "ng-mubi" not in definition.area_codes
    assert (definition.window_start, definition.window_end) == (dt.time(9), dt.time(19))
    assert definition.cap_per_week == 1
    text = SAMPLE_CAMPAIGN.read_text("utf-8")
    assert "(sample)" in definition.texts["en"] and "+999" in definition.texts["en"]
    assert "fictional" in text
    assert len(definition.file_hash) == 64


def test_defaults_every_language_with_a_text_everywhere_both_channels(deployment, gazetteer):
    data = campaign(audience=None, cap_per_week=None)
    definition = parse_campaign(data, deployment, gazetteer)
    assert definition.languages == ("en", "fr")
    assert definition.areas is None and definition.area_codes is None
    assert definition.channels == ("sms", "telegram")
    assert definition.cap_per_week == deployment.campaigns.max_per_week == 2
    assert definition.telegram_channel is None


def test_texts_are_stripped_and_sent_sms_friendly(deployment, gazetteer):
    data = campaign(texts={"en": "  Don\u2019t sign \u201cpapers\u201d \u2014 ask us. STOP\n",
                           "fr": "Ne signez rien \u00ab avant \u00bb de v\u00e9rifier. Pr\u00eat ? "
                                 "STOP"})
    definition = parse_campaign(data, deployment, gazetteer)
    assert definition.texts["en"] == "Don\u2019t sign \u201cpapers\u201d \u2014 ask us. STOP"
    assert definition.sms_text("en") == "Don't sign \"papers\" - ask us. STOP"
    assert definition.telegram_text("en") == definition.texts["en"]  # Telegram: as written
    assert definition.sms_text("fr") == "Ne signez rien \"avant\" de v\u00e9rifier. Pret ? STOP"
    assert definition.sms_text("fr", fold_accents=False) == definition.texts["fr"]


# -- each problem on its own -------------------------------------------------------------------

HELLO = "Hello. Reply STOP or /stop to end."  # says how to stop on SMS and Telegram
# 366 GSM-7 characters: 3 segments
LONG_FR = "Attention aux fausses offres d'emploi. " * 9 + "STOP ou /stop."


@pytest.mark.parametrize("changes, expected", [
    ({"texts": {"en": HELLO}, "audience": {"languages": ["en", "ar"]}},
     "texts: no text for 'ar' (the audience includes Arabic speakers)"),
    ({"texts": {"en": HELLO, "fr": LONG_FR}},
     "texts.fr: 3 SMS segments, the deployment allows 2 (sms.segment_budget)"),
    ({"texts": {"en": HELLO, "ar": "احذروا عروض العمل الكاذبة. " * 6 + "أرسل STOP أو /stop."},
      "audience": None},
     "texts.ar: 3 SMS segments, the deployment allows 2 (sms.segment_budget)"),
    ({"texts": {"en": "x" * 4091 + " /stop"}, "audience": {"channels": ["telegram"]}},
     "texts.en: 4097 characters, Telegram allows 4096 in a message"),
    ({"texts": {"en": HELLO, "fr": "   "}}, "texts.fr: empty"),
    ({"texts": {"en": HELLO, "fr": 12}}, "texts.fr: must be a text, got 12"),
    ({"texts": {"en": HELLO, "sw": "Habari."}, "audience": None},
     "texts.sw: 'sw' is not one of the deployment's languages (en, fr, ar, es)"),
    ({"texts": "Hello."}, "texts: must map languages to texts, like en: \"...\""),
    ({"texts": None}, "texts: missing"),
    ({"name": None}, "name: missing"),
    ({"window": None}, "window: missing"),
    ({"name": "Fake Jobs!"}, "name: 'Fake Jobs!' must be lowercase letters, digits and hyphens, "
                             "at most 80 characters (like fake-job-offers-2026-12)"),
    ({"name": "a" * 81}, None),  # too long for campaigns.name: same message
    ({"audience": {"areas": ["XX123"]}},
     "audience.areas: 'XX123' is not a place code of the gazetteer (nor an admin-1 / admin-2 "
     "p-code or country code of its places)"),
    ({"audience": {"areas": ["ng008"]}},
     "audience.areas: 'ng008' is not a place code of the gazetteer (did you mean 'NG008'?)"),
    ({"audience": {"areas": ["Maiduguri"]}},
     "audience.areas: 'Maiduguri' is not a place code of the gazetteer (did you mean "
     "'ng-maiduguri'?)"),
    ({"audience": {"areas": []}},
     "audience.areas: must be a non-empty list of place codes (leave it out for every area)"),
    ({"audience": {"areas": ["NG008", "NG008"]}}, "audience.areas[1]: 'NG008' is listed twice"),
    ({"audience": {"languages": ["en", "sw"]}},
     "audience.languages[1]: 'sw' is not one of the deployment's languages (en, fr, ar, es)"),
    ({"audience": {"languages": ["en", "en"]}}, "audience.languages[1]: 'en' is listed twice"),
    ({"audience": {"languages": []}},
     "audience.languages: must be a non-empty list of language codes (leave it out for every "
     "language with a text)"),
    ({"audience": {"channels": ["sms", "whatsapp"]}},
     "audience.channels[1]: 'whatsapp' is not a channel campaigns send on (sms, telegram; a "
     "Telegram channel is telegram_channel)"),
    ({"audience": {"channels": []}},
     "audience.channels: empty and there is no telegram_channel: the campaign would reach no one"),
    ({"audience": {"region": "NG008"}},
     "audience.region: unknown key (expected one of languages, areas, channels)"),
    ({"audience": ["en"]}, "audience: must be a mapping with languages, areas, channels"),
    ({"window": {"start": "25:00", "end": "19:00"}}, "window.start: '25:00' is not a time (HH:MM)"),
    ({"window": {"start": "9am", "end": "19:00"}}, "window.start: '9am' is not a time (HH:MM)"),
    ({"window": {"start": "09:00", "end": 1140}},  # YAML 1.1 reads an unquoted 19:00 so
     "window.end: 1140 is not a time (HH:MM); put the time in quotes, like \"19:00\""),
    ({"window": {"start": "19:00", "end": "09:00"}},
     "window.end: 09:00 is not after window.start 19:00 (a window is within one day)"),
    ({"window": {"start": "09:00"}}, "window.end: missing"),
    ({"window": {"start": "06:30", "end": "19:00"}},
     "window: 06:30-19:00 reaches into the night; subscribers were promised no message outside "
     "08:00-21:00 (campaigns.daytime, their local time)"),
    ({"window": {"start": "09:00", "end": "23:59"}},
     "window: 09:00-23:59 reaches into the night; subscribers were promised no message outside "
     "08:00-21:00 (campaigns.daytime, their local time)"),
    ({"window": {"start": "09:00", "end": "19:00", "tz": "UTC"}},
     "window.tz: unknown key (expected one of start, end)"),
    ({"window": "09:00-19:00"},
     "window: must give start and end, like {start: \"09:00\", end: \"19:00\"} (the audience's "
     "local time)"),
    ({"cap_per_week": 3}, "cap_per_week: must be a whole number from 1 to 2 (the deployment's "
                         "campaigns.max_per_week), got 3"),
    ({"cap_per_week": 0}, None),
    ({"cap_per_week": "two"}, None),
    ({"cap_per_week": True}, None),
    ({"cap_per_week": 1.5}, None),
    ({"telegram_channel": {"chat": "example", "language": "en"}},
     "telegram_channel.chat: 'example' is not a channel's @username or numeric id (-100...)"),
    ({"telegram_channel": {"chat": "@example_ngo_channel", "language": "ar"}},
     "texts: no text for 'ar' (telegram_channel.language is Arabic)"),
    ({"telegram_channel": {"chat": "@example_ngo_channel", "language": "sw"}},
     "telegram_channel.language: 'sw' is not one of the deployment's languages (en, fr, ar, es)"),
    ({"telegram_channel": {"chat": "@example_ngo_channel"}}, "telegram_channel.language: missing"),
    ({"telegram_channel": {"chat": "@example_ngo_channel", "language": "en", "pin": True}},
     "telegram_channel.pin: unknown key (expected one of chat, language)"),
    ({"telegram_channel": "@example_ngo_channel"}, "telegram_channel: must give chat and language"),
    ({"schedule": "monday"}, "schedule: unknown key (expected one of name, texts, audience, "
                             "window, cap_per_week, telegram_channel)"),
])
def test_each_problem_names_its_field(deployment, gazetteer, changes, expected):
    problems = problems_of(campaign(**changes), deployment, gazetteer)
    assert len(problems) == 1, problems
    if expected is not None:
        assert problems == [expected]
    else:
        assert problems[0].split(":")[0] in {"name", "cap_per_week"}


def test_sms_is_checked_as_sent_not_as_written(deployment, gazetteer):
    # 200 characters with a typographic apostrophe: UCS-2 as written (3 segments), GSM-7 as sent
    text = ("Don\u2019t " + "trust a job offer that is too good. " * 5)[:186] + " STOP or /stop"
    from channels.segments import count_segments

    assert count_segments(text).segments == 3
    definition = parse_campaign(campaign(texts={"en": text}, audience=None), deployment, gazetteer)
    assert definition.sms_text("en").startswith("Don't")
    # without accent folding a French text with ê stays UCS-2 and is over the budget
    data = copy.deepcopy(yaml.safe_load(SAMPLE_DEPLOYMENT.read_text("utf-8")))
    data["sms"]["fold_accents"] = False
    strict = parse_deployment(data)
    fr = ("Une offre d'emploi trop belle peut \u00eatre un pi\u00e8ge. " * 4)[:186]
    fr += " STOP ou /stop"
    assert len(text) == len(fr) == 200
    assert parse_campaign(campaign(texts={"fr": fr}, audience=None), deployment, gazetteer)
    assert problems_of(campaign(texts={"fr": fr}, audience=None), strict, gazetteer) == [
        "texts.fr: 3 SMS segments, the deployment allows 2 (sms.segment_budget)"]


def test_sms_length_is_not_checked_for_a_telegram_only_audience(deployment, gazetteer):
    data = campaign(texts={"en": "Hello. " * 100 + "/stop"}, audience={"channels": ["telegram"]})
    assert parse_campaign(data, deployment, gazetteer).channels == ("telegram",)


def test_a_bigger_segment_budget_allows_longer_texts(deployment, gazetteer, sample_deployment_data):
    data = copy.deepcopy(sample_deployment_data)
    data["sms"]["segment_budget"] = 3
    roomy = parse_deployment(data)
    texts = {"en": HELLO, "fr": LONG_FR}
    assert parse_campaign(campaign(texts=texts), roomy, gazetteer).texts["fr"] == LONG_FR.strip()


def test_only_the_channel_post(deployment, gazetteer):
    data = campaign(audience={"channels": []},
                    telegram_channel={"chat": "@example_ngo_channel", "language": "en"})
    definition = parse_campaign(data, deployment, gazetteer)
    assert definition.channels == ()
    assert definition.telegram_channel.chat == "@example_ngo_channel"
    numeric = campaign(telegram_channel={"chat": -1001234567890, "language": "fr"})
    assert parse_campaign(numeric, deployment, gazetteer).telegram_channel.chat == "-1001234567890"


def test_a_text_for_a_language_the_deployment_does_not_offer(deployment, gazetteer,
                                                            sample_deployment_data):
    data = copy.deepcopy(sample_deployment_data)
    data["languages"], data["default_language"] = ["en"], "en"
    english_only = parse_deployment(data)
    assert problems_of(campaign(audience=None), english_only, gazetteer) == [
        "texts.fr: 'fr' is not one of the deployment's languages (en)"]


# -- saying how to stop -------------------------------------------------------------------------

FR_STOP_WORDS = "STOP, ARRET, ARRETE, ARRETER, DESABONNER, DESINSCRIRE, DESABONNEMENT"
NO_STOP_FR = "Les offres d'emploi a l'etranger peuvent etre un piege. Verifiez avant de partir."


@pytest.mark.parametrize("channels, expected", [
    (["sms"], f"texts.fr: say how to stop (one of, in capitals: {FR_STOP_WORDS})"),
    (["telegram"], f"texts.fr: say how to stop (one of, in capitals: {FR_STOP_WORDS}; or /stop)"),
    (["sms", "telegram"], f"texts.fr: say how to stop (one of, in capitals: {FR_STOP_WORDS})"),
])
def test_a_text_that_does_not_say_how_to_stop(deployment, gazetteer, channels, expected):
    data = campaign(texts={"en": HELLO, "fr": NO_STOP_FR}, audience={"channels": channels})
    assert problems_of(data, deployment, gazetteer) == [expected]


def test_the_accepted_words_are_the_sms_keywords_files(deployment, gazetteer):
    """The words come from channels/sms_keywords.yml: STOP (every language) and the
    language's own words mapped to /unsubscribe, nothing else."""
    from channels.sms_keywords import load_keywords, stop_words

    keywords = load_keywords()
    for language in deployment.languages:
        words = stop_words(language)
        assert words[0] == "stop" and len(words) > 1, language
        assert all(keywords.payload(word) == "/unsubscribe" for word in words)
        data = campaign(texts={language: "Nothing about stopping here."},
                        audience={"channels": ["sms"]})
        assert problems_of(data, deployment, gazetteer) == [
            f"texts.{language}: say how to stop (one of, in capitals: "
            f"{', '.join(word.upper() for word in words)})"]
        for word in words:  # each word, on its own in a sentence, is enough on SMS
            text = f"Safety tips. Reply {word.upper()} to end them."
            parse_campaign(campaign(texts={language: text}, audience={"channels": ["sms"]}),
                           deployment, gazetteer)
    assert "arret" not in stop_words("en") and "baja" not in stop_words("fr")


@pytest.mark.parametrize("language, text", [
    ("en", "Job offers can be a trap. Reply STOP to end these messages."),
    ("en", "Job offers can be a trap. Text UNSUBSCRIBE to leave."),
    ("en", "Job offers can be a trap. STOP: no more messages."),
    ("fr", "Les offres d'emploi peuvent etre un piege. Envoyez ARRÊT pour ne plus rien recevoir."),
    ("fr", "Les offres d'emploi peuvent etre un piege. Répondez « ARRÊTER » pour arrêter."),
    ("fr", "Les offres d'emploi peuvent etre un piege. STOP pour arreter."),
    ("es", "Las ofertas de empleo pueden ser una trampa. Responde BAJA para no recibir mas."),
    ("es", "Las ofertas de empleo pueden ser una trampa. Escribe «PARAR» para salir."),
    ("ar", "عروض العمل قد تكون فخا. أرسل توقف للإيقاف."),
    ("ar", "عروض العمل قد تكون فخا. أرسل «إلغاء» لإلغاء الاشتراك."),  # the hamza ignored
    ("ar", "عروض العمل قد تكون فخا. أرسل STOP للإيقاف."),
])
def test_each_languages_stop_words_count_on_sms(deployment, gazetteer, language, text):
    data = campaign(texts={language: text}, audience={"channels": ["sms"]})
    assert parse_campaign(data, deployment, gazetteer).texts[language] == text


@pytest.mark.parametrize("language, text", [
    ("en", "Jobs that stopped paying are a warning sign."),  # not the whole word
    ("en", "Reply ARRET to leave."),  # French: not an English text's word
    ("fr", "Repondez BAJA pour ne plus rien recevoir."),  # Spanish
    ("es", "Responde STOPP para salir."),
    ("en", "Job offers can be a trap. Ask us before you go, to end the risk."),  # not in capitals
    ("fr", "Les offres peuvent etre un piege. Il faut savoir arreter."),
    ("ar", "عروض العمل قد تكون فخا. أرسل /stop للإيقاف."),  # Telegram's command, not an SMS word
])
def test_words_that_do_not_count_on_sms(deployment, gazetteer, language, text):
    data = campaign(texts={language: text}, audience={"channels": ["sms"]})
    [problem] = problems_of(data, deployment, gazetteer)
    assert problem.startswith(f"texts.{language}: say how to stop (one of, in capitals: STOP, ")


@pytest.mark.parametrize("text, ok", [
    ("Job offers can be a trap. Send /stop to end these messages.", True),
    ("Job offers can be a trap. Send /STOP to end these messages.", True),
    ("Job offers can be a trap. /stop@helpline_bot ends them.", True),
    ("Job offers can be a trap. (/stop to end)", True),
    ("Job offers can be a trap. Reply STOP to end these messages.", True),  # a subscriber's STOP
    ("Job offers can be a trap. Ask us before you go.", False),
    ("Job offers can be a trap. Send /stopnow to end these messages.", False),
])
def test_on_telegram_the_stop_command_counts_too(deployment, gazetteer, text, ok):
    data = campaign(texts={"en": text}, audience={"channels": ["telegram"]})
    if ok:
        assert parse_campaign(data, deployment, gazetteer).channels == ("telegram",)
    else:
        [problem] = problems_of(data, deployment, gazetteer)
        assert problem.startswith("texts.en: say how to stop (one of, in capitals: STOP, ")
        assert problem.endswith("; or /stop)")


def test_the_channel_post_alone_needs_no_stop(deployment, gazetteer):
    """No one subscribes through the NGO's Telegram channel: its post needs no way to stop;
    a language only posted there neither."""
    texts = {"en": "Job offers abroad can be a trap. Ask us before you go.", "fr": NO_STOP_FR}
    post = {"chat": "@example_ngo_channel", "language": "en"}
    only_post = campaign(texts=texts, audience={"channels": []}, telegram_channel=post)
    assert parse_campaign(only_post, deployment, gazetteer).channels == ()
    texts["en"] = HELLO
    french_post = campaign(texts=texts, audience={"languages": ["en"], "channels": ["sms"]},
                           telegram_channel={"chat": "@example_ngo_channel", "language": "fr"})
    assert parse_campaign(french_post, deployment, gazetteer).telegram_channel.language == "fr"
    # ...but a language the subscribers get too must say it
    french_too = campaign(texts=texts, audience={"channels": ["sms"]},
                          telegram_channel={"chat": "@example_ngo_channel", "language": "fr"})
    assert problems_of(french_too, deployment, gazetteer) == [
        f"texts.fr: say how to stop (one of, in capitals: {FR_STOP_WORDS})"]


def test_the_dispatchers_test_texts_are_valid_campaign_texts(deployment, gazetteer):
    from tests.utils.campaigns import TEXTS

    definition = parse_campaign(campaign(texts=dict(TEXTS), audience=None), deployment, gazetteer)
    assert definition.languages == ("en", "fr", "ar", "es")


def test_the_stop_words_of_a_keywords_file(tmp_path):
    """``words`` is a list (every language) or lists per language; the SMS channel
    understands every word whatever the language."""
    from channels.sms_keywords import load_keywords, stop_words

    path = tmp_path / "keywords.yml"
    path.write_text("stop:\n  payload: /unsubscribe\n  provider: [stop]\n  words:\n"
                    "    all: [stop]\n    fr: [arrêt]\nhelp:\n  payload: /menu\n"
                    "  words: [help, aide]\n", "utf-8")
    assert stop_words("fr", path) == ("stop", "arret") and stop_words("en", path) == ("stop",)
    assert load_keywords(path).payload("ARRÊT !") == "/unsubscribe"
    assert load_keywords(path).payload("aide") == "/menu"
    broken = tmp_path / "broken.yml"  # (files are read once: another name each time)
    broken.write_text("stop:\n  payload: /unsubscribe\n  words: {fr: arret}\n", "utf-8")
    with pytest.raises(ValueError, match="stop must have a list of words"):
        load_keywords(broken)
    twice = tmp_path / "twice.yml"
    twice.write_text("stop:\n  payload: /unsubscribe\n  words: {fr: [stop], en: [stop]}\n", "utf-8")
    with pytest.raises(ValueError, match="'stop' is empty or listed twice"):
        load_keywords(twice)


# -- several problems at once; unreadable files ---------------------------------------------------


def test_every_problem_is_listed_at_once(deployment, gazetteer, tmp_path):
    data = campaign(
        name="Bad Name", colour="red",
        texts={"en": HELLO, "fr": LONG_FR, "es": ""},
        audience={"languages": ["en", "fr", "ar"], "areas": ["NG008", "XX123"]},
        window={"start": "25:00", "end": "19:00"}, cap_per_week=9)
    path = tmp_path / "bad.yml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), "utf-8")
    with pytest.raises(CampaignError) as info:
        load_campaign(path, deployment, gazetteer)
    problems = info.value.problems
    expected = [
        "colour: unknown key",
        "name: 'Bad Name' must be lowercase",
        "texts.es: empty",
        "texts: no text for 'ar' (the audience includes Arabic speakers)",
        "audience.areas: 'XX123' is not a place code of the gazetteer",
        "window.start: '25:00' is not a time (HH:MM)",
        "cap_per_week: must be a whole number from 1 to 2",
        "texts.fr: 3 SMS segments, the deployment allows 2 (sms.segment_budget)",
    ]
    for start in expected:
        assert any(p.startswith(start) for p in problems), (start, problems)
    assert len(problems) == len(expected)
    text = str(info.value)
    assert text.startswith(f"campaign file {path} is not valid:\n  - ")
    assert all(f"  - {p}" in text for p in problems)


@pytest.mark.parametrize("content, message", [
    (b"- en: hello\n", "the file must be a mapping with name, texts, audience, window, "
                      "cap_per_week, telegram_channel"),
    (b"", "the file must be a mapping"),
    (b"name: [unclosed\n", "not valid YAML"),
    (b"name: caf\xe9\n", "the file is not UTF-8 text"),
])
def test_unreadable_files(tmp_path, deployment, gazetteer, content, message):
    path = tmp_path / "campaign.yml"
    path.write_bytes(content)
    with pytest.raises(CampaignError, match=message):
        load_campaign(path, deployment, gazetteer)


def test_a_missing_file(tmp_path, deployment, gazetteer):
    with pytest.raises(CampaignError, match="cannot read the file"):
        load_campaign(tmp_path / "nope.yml", deployment, gazetteer)


def test_the_file_hash_follows_the_bytes(tmp_path, deployment, gazetteer):
    path = tmp_path / "c.yml"
    path.write_text(yaml.safe_dump(campaign()), "utf-8")
    first = load_campaign(path, deployment, gazetteer)
    path.write_text(yaml.safe_dump(campaign()) + "# a comment\n", "utf-8")
    second = load_campaign(path, deployment, gazetteer)
    assert first == second  # the same campaign...
    assert first.file_hash != second.file_hash  # ...from another file


# -- JSON: what campaigns.definition stores and the dispatcher reads -------------------------------


def test_the_json_contract(deployment, gazetteer):
    data = campaign(telegram_channel={"chat": "@example_ngo_channel", "language": "en"})
    definition = parse_campaign(data, deployment, gazetteer, file_hash="ab" * 32)
    stored = json.loads(definition.to_json())
    assert stored == {
        "name": "test-campaign-1",
        "texts": data["texts"],
        "audience": {"languages": ["en", "fr"], "areas": ["NG008"], "channels": ["sms", "telegram"]},
        "area_codes": ["NG008", "ng-bama", "ng-camp-bakassi", "ng-camp-dalori", "ng-camp-muna",
                       "ng-damboa", "ng-dikwa", "ng-gwoza", "ng-jere", "ng-konduga",
                       "ng-maiduguri", "ng-monguno"],
        "window": {"start": "09:00", "end": "19:00"},
        "cap_per_week": 2,
        "telegram_channel": {"chat": "@example_ngo_channel", "language": "en"},
    }
    again = CampaignDefinition.from_json(definition.to_json(), file_hash="ab" * 32)
    assert again == definition and again.file_hash == definition.file_hash
    assert again.to_json() == definition.to_json()


def test_the_json_of_defaults_has_nulls(deployment, gazetteer):
    arabic = "انتبه. أرسل STOP أو /stop للإيقاف."
    definition = parse_campaign(campaign(audience=None, texts={"ar": arabic}), deployment, gazetteer)
    stored = json.loads(definition.to_json())
    assert stored["audience"] == {"languages": ["ar"], "areas": None, "channels": ["sms", "telegram"]}
    assert stored["area_codes"] is None and stored["telegram_channel"] is None
    assert "انتبه" in definition.to_json()  # stored as UTF-8, not \u escapes
    assert CampaignDefinition.from_json(definition.to_json().encode("utf-8")) == definition


@pytest.mark.parametrize("text", ["", "[]", '{"name": "x"}', "not json"])
def test_a_broken_stored_definition(text):
    with pytest.raises(CampaignError, match="the stored campaign definition is not valid"):
        CampaignDefinition.from_json(text)


# -- areas and time zones ----------------------------------------------------------------------


def test_a_country_expands_to_every_place_in_it(gazetteer):
    codes = expand_area("NG", gazetteer)
    assert "NG008" in codes and "ng-maiduguri" in codes and "ng-mubi" in codes  # Mubi: NG002
    assert all(gazetteer.places[c].country == "NG" for c in codes)
    assert expand_area("LY", gazetteer) == sorted(c for c in gazetteer.places if c.startswith("ly-"))


def test_an_admin1_code_expands_to_the_places_inside(gazetteer):
    codes = expand_area("NG008", gazetteer)
    assert {"NG008", "ng-maiduguri", "ng-jere", "ng-bama", "ng-camp-dalori"} <= set(codes)
    assert "ng-mubi" not in codes and "ly-tripoli" not in codes
    assert expand_area("UA80", gazetteer) == ["ua-kyiv"]  # a p-code that is no place itself


def test_a_town_is_itself(gazetteer):
    assert expand_area("ng-maiduguri", gazetteer) == ["ng-maiduguri"]
    assert expand_area("XX123", gazetteer) == []


def test_areas_in_a_definition_are_expanded_and_merged(deployment, gazetteer):
    definition = parse_campaign(campaign(audience={"areas": ["ng-maiduguri", "LY", "NG008"]}),
                                deployment, gazetteer)
    assert definition.areas == ("ng-maiduguri", "LY", "NG008")
    # the places inside, and the codes themselves: a subscriber's area may be a country code
    # (the emergency contacts' area slot)
    assert set(definition.area_codes) == set(expand_area("LY", gazetteer)) | set(
        expand_area("NG008", gazetteer)) | {"LY"}
    assert list(definition.area_codes) == sorted(definition.area_codes)


def test_the_time_zone_of_an_area(gazetteer):
    assert timezone_for_area("ng-maiduguri", gazetteer, "UTC") == "Africa/Lagos"
    assert timezone_for_area("ly-tripoli", gazetteer, "UTC") == "Africa/Tripoli"
    assert timezone_for_area("ua-lviv", gazetteer, "UTC") == "Europe/Kyiv"
    assert timezone_for_area(None, gazetteer, "Africa/Lagos") == "Africa/Lagos"
    assert timezone_for_area("somewhere-unknown", gazetteer, "Africa/Lagos") == "Africa/Lagos"


def test_the_window_in_local_time(deployment, gazetteer):
    definition = parse_campaign(campaign(), deployment, gazetteer)
    # 07:30 UTC is 08:30 in Lagos (closed), 09:30 in Tripoli (open) and Kyiv (winter: open)
    moment = dt.datetime(2026, 12, 1, 7, 30, tzinfo=UTC)
    assert not definition.in_window(moment, "Africa/Lagos")
    assert definition.in_window(moment, "Africa/Tripoli")
    opens, closes = definition.next_window(moment, "Africa/Lagos")
    assert (opens.isoformat(), closes.isoformat()) == ("2026-12-01T09:00:00+01:00",
                                                      "2026-12-01T19:00:00+01:00")
    opens, closes = definition.next_window(moment, "Africa/Tripoli")
    assert opens == moment and closes.isoformat() == "2026-12-01T19:00:00+02:00"
    late = dt.datetime(2026, 12, 1, 18, 0, tzinfo=UTC)  # 19:00 in Lagos: closed until tomorrow
    assert not definition.in_window(late, "Africa/Lagos")
    assert definition.next_window(late, "Africa/Lagos")[0].isoformat() == "2026-12-02T09:00:00+01:00"


# -- the deployment file's campaigns: section ---------------------------------------------------


def deployment_problems(data) -> list[str]:
    with pytest.raises(DeploymentError) as info:
        parse_deployment(data)
    return info.value.problems


def test_the_campaigns_section_defaults(sample_deployment_data):
    data = copy.deepcopy(sample_deployment_data)
    data.pop("campaigns", None)
    assert parse_deployment(data).campaigns == CampaignSettings(
        Decimal("0"), "USD", 1.0, 30.0, 2)
    data["campaigns"] = {}
    assert parse_deployment(data).campaigns == CampaignSettings()


def test_the_sample_deployment_sets_a_price(deployment):
    assert deployment.campaigns.sms_price_per_segment == Decimal("0.0075")  # exact, not a float
    assert deployment.campaigns.currency == "USD"


def test_the_campaigns_section_values(sample_deployment_data):
    data = copy.deepcopy(sample_deployment_data)
    data["campaigns"] = {"sms_price_per_segment": 0.05, "currency": "EUR",
                         "twilio_messages_per_second": 10, "telegram_messages_per_second": 0.5,
                         "max_per_week": 7}
    assert parse_deployment(data).campaigns == CampaignSettings(Decimal("0.05"), "EUR", 10.0, 0.5, 7)


@pytest.mark.parametrize("key, value, expected", [
    ("sms_price_per_segment", -0.01, "campaigns.sms_price_per_segment: must be a number of 0 or "
                                     "more (the price of one SMS segment), got -0.01"),
    ("sms_price_per_segment", "cheap", None),
    ("sms_price_per_segment", True, None),
    ("sms_price_per_segment", float("nan"), None),
    ("currency", "usd", "campaigns.currency: must be a 3-letter currency code in capitals like "
                       "USD, got 'usd'"),
    ("currency", "EURO", None),
    ("currency", 978, None),
    ("twilio_messages_per_second", 0, "campaigns.twilio_messages_per_second: must be a number "
                                      "above 0, got 0"),
    ("twilio_messages_per_second", "fast", None),
    ("telegram_messages_per_second", 31, "campaigns.telegram_messages_per_second: must be a "
                                         "number above 0 and at most 30, got 31"),
    ("telegram_messages_per_second", -1, None),
    ("max_per_week", 0, "campaigns.max_per_week: must be a whole number from 1 to 7, got 0"),
    ("max_per_week", 8, None),
    ("max_per_week", 2.5, None),
    ("daytime", "21:00-08:00", "campaigns.daytime: must be the hours campaigns may send in, "
                               "like '08:00-21:00' (within one day, an hour at least), got "
                               "'21:00-08:00'"),
    ("daytime", "09:00-09:30", None),
    ("daytime", "8-21", None),
    ("daytime", "00:00-24:30", None),
    ("daily_cap", 1, "campaigns.daily_cap: unknown setting (expected one of ['consent_months', 'currency', 'daytime', "
                     "'max_per_week', 'sms_price_per_segment', 'telegram_messages_per_second', "
                     "'twilio_messages_per_second'])"),
])
def test_bad_campaigns_settings(sample_deployment_data, key, value, expected):
    data = copy.deepcopy(sample_deployment_data)
    data["campaigns"] = {key: value}
    problems = deployment_problems(data)
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"campaigns.{key}: ")
    if expected:
        assert problems == [expected]


def test_the_campaigns_section_must_be_a_mapping(sample_deployment_data):
    data = copy.deepcopy(sample_deployment_data)
    data["campaigns"] = [1]
    assert deployment_problems(data) == [
        "campaigns: must be a mapping with consent_months, currency, daytime, max_per_week, "
        "sms_price_per_segment, "
        "telegram_messages_per_second, twilio_messages_per_second"]


def test_max_per_week_bounds_every_campaigns_cap(sample_deployment_data, gazetteer):
    data = copy.deepcopy(sample_deployment_data)
    data["campaigns"] = {"max_per_week": 1}
    strict = parse_deployment(data)
    assert problems_of(campaign(), strict, gazetteer) == [
        "cap_per_week: must be a whole number from 1 to 1 (the deployment's "
        "campaigns.max_per_week), got 2"]
    assert parse_campaign(campaign(cap_per_week=None), strict, gazetteer).cap_per_week == 1


def test_the_deployments_daytime_bounds_every_window(sample_deployment_data, gazetteer):
    """The consent message promises "never at night": the deployment says what night is."""
    data = copy.deepcopy(sample_deployment_data)
    data["campaigns"] = {"daytime": "07:00-22:30"}
    wider = parse_deployment(data)
    assert wider.campaigns.daytime == (7 * 60, 22 * 60 + 30)
    early = campaign(window={"start": "07:00", "end": "22:30"})
    assert parse_campaign(early, wider, gazetteer).window_start == dt.time(7)
    assert problems_of(campaign(window={"start": "06:59", "end": "12:00"}), wider, gazetteer) == [
        "window: 06:59-12:00 reaches into the night; subscribers were promised no message "
        "outside 07:00-22:30 (campaigns.daytime, their local time)"]
    data["campaigns"] = {"daytime": "00:00-24:00"}
    assert parse_campaign(campaign(window={"start": "00:00", "end": "23:59"}),
                          parse_deployment(data), gazetteer).window_end == dt.time(23, 59)


def test_keys_left_empty_are_missing(tmp_path, deployment, gazetteer):
    path = tmp_path / "empty-values.yml"
    path.write_text("name:\ntexts:\nwindow:\n", "utf-8")
    with pytest.raises(CampaignError) as info:
        load_campaign(path, deployment, gazetteer)
    assert info.value.problems == ["name: missing", "texts: missing", "window: missing"]
