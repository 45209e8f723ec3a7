"""Every text fits the channel it is shown on: no SMS text invites a provider's opt-out word,
nothing on SMS says "tap", and the words a text asks the person to type do what it promises.

Outside truth: Twilio's documentation of its default opt-out handling, "By default, Twilio
handles standard English-language reply messages: STOP, UNSUBSCRIBE, END, QUIT, STOPALL,
REVOKE, OPTOUT, and CANCEL" (twilio.com/docs/messaging/tutorials/advanced-opt-out). After one
of them Twilio answers with its own text and refuses every later message to the number
(error 21610), the emergency contacts and a caseworker's replies included. Other providers
add ARRET, TD and REMOVE (AWS End User Messaging, "Required opt-out keywords").
"""

from __future__ import annotations

import ast
import shutil
import string
from pathlib import Path

import pytest
import yaml
from rasa.core.nlg.generator import ResponseVariationFilter

from bot.catalog import (CHANNEL_WORDS, CHANNELS, PLACEHOLDERS, WITHOUT_PERSON, CatalogError,
                         build_responses, load_catalog)
from bot.deployment import SUPPORTED_LANGUAGES
from bot.keywords import load_keywords as load_safety_keywords
from bot.keywords import match_keyword, normalise
from bot.settings import PROJECT_ROOT
from channels.sms_keywords import load_keywords

CATALOG = load_catalog()
TWILIO_OPT_OUT = {"stop", "unsubscribe", "end", "quit", "stopall", "revoke", "optout", "cancel"}
OTHER_PROVIDERS_OPT_OUT = {"arret", "td", "remove"}
# Texts about the safety messages themselves: there STOP is meant to end the subscription
# at the provider too (the subscriber is deleted on our side as well).
SUBSCRIPTION_TEXTS = {"utter_subscribe_consent", "utter_subscribe_done",
                      "utter_subscribe_already", "utter_subscribe_reminder"}
# Words that tell a person to touch the screen, per language (as typed, normalised).
TOUCH_WORDS = {"en": {"tap", "click", "press"},
               "fr": {"appuyez", "touchez", "cliquez", "tapez"},
               "es": {"toque", "pulse", "presione", "haga clic"},
               "ar": {"اضغط", "الضغط", "انقر"}}
VALUES = {field: "x" for field in PLACEHOLDERS} | {"org_name": "Lantern Line (sample)"}


def _words(text: str) -> set[str]:
    return set(normalise(text).split())


def _shown(name: str, language: str, channel: str) -> str:
    """The text as the person sees it on ``channel``: for a response in the domain, the
    variation Rasa itself picks for that output channel (a ``_without_person`` text: the
    variation for ``person_available`` false); otherwise the actions' rendering."""
    person = not name.endswith(WITHOUT_PERSON)
    name = name if person else name[: -len(WITHOUT_PERSON)]
    domain = DOMAIN.get(name)
    if domain is None:
        return CATALOG.render(name, language, channel, person, **VALUES)["text"]
    chosen = ResponseVariationFilter({name: domain}).responses_for_utter_action(
        name, channel, {"language": language, "person_available": person})
    assert len(chosen) == 1, (name, language, channel, chosen)
    return chosen[0]["text"].format_map(VALUES)


DOMAIN = build_responses(CATALOG)


def test_the_provider_words_the_channel_knows_are_twilios():
    assert load_keywords().provider_stop == frozenset(TWILIO_OPT_OUT)


@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
@pytest.mark.parametrize("name", sorted(CATALOG.texts["en"]))
def test_no_sms_text_invites_a_provider_opt_out_word(name, language):
    text = _shown(name, language, "sms")
    found = _words(text) & (TWILIO_OPT_OUT | OTHER_PROVIDERS_OPT_OUT)
    if name in SUBSCRIPTION_TEXTS:
        assert found <= {"stop"}, (name, language, found)
    else:
        assert not found, (name, language, found, text)


@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
def test_the_channels_own_words_on_sms_name_no_provider_word(language):
    for key, text in CATALOG.channel[language].items():
        assert not _words(text) & (TWILIO_OPT_OUT | OTHER_PROVIDERS_OPT_OUT), (key, text)
    for channel in ("all", *CHANNELS):
        for key, text in CATALOG.words[language].get(channel, {}).items():
            assert not _words(text) & (TWILIO_OPT_OUT | OTHER_PROVIDERS_OPT_OUT), (channel, key)


@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
@pytest.mark.parametrize("name", sorted(CATALOG.texts["en"]))
def test_nothing_on_sms_asks_to_tap(name, language):
    text = normalise(_shown(name, language, "sms"))
    assert not any(f" {word} " in f" {text} " for word in TOUCH_WORDS[language]), (name, text)


@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
def test_the_menu_says_tap_where_there_are_buttons_and_number_on_sms(language):
    on_sms = normalise(_shown("utter_menu", language, "sms"))
    for channel in ("telegram", "webchat"):
        with_buttons = normalise(_shown("utter_menu", language, channel))
        assert with_buttons != on_sms
        assert any(f" {word} " in f" {with_buttons} " for word in TOUCH_WORDS[language])


@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
def test_the_word_that_leaves_the_questions_does_so_on_sms_without_opting_out(language):
    word = CATALOG.channel_words(language, "sms")["stop_word"]
    keywords = load_keywords()
    assert keywords.payload(word) == "/stop"
    assert not keywords.is_provider_stop(word)
    for name in ("utter_screening_consent", "utter_screening_reprompt"):
        assert word in _shown(name, language, "sms"), name


@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
@pytest.mark.parametrize("channel", CHANNELS)
def test_the_exit_word_a_text_names_is_a_quick_exit_on_every_channel(language, channel):
    word = CATALOG.channel_words(language, channel)["exit_word"]
    assert match_keyword(word, load_safety_keywords()) == "quick_exit"
    assert not load_keywords().is_provider_stop(word)
    assert word in CATALOG.render("utter_handoff_queued", language, channel, **VALUES)["text"]


def test_every_action_sending_a_text_with_channel_words_passes_the_channel():
    """say(dispatcher, "<response>", language) without the channel would show another
    channel's words (a web chat's "tap" on SMS)."""
    with_words = {name for name, text in CATALOG.texts["en"].items()
                  if {f for _, f, _, _ in string.Formatter().parse(text) if f} & set(CHANNEL_WORDS)}
    assert {"utter_menu", "utter_handoff_queued", "utter_screening_consent"} <= with_words
    missing = []
    for path in sorted((PROJECT_ROOT / "actions").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and getattr(node.func, "id", "") == "say"):
                continue
            response = node.args[1] if len(node.args) > 1 else None
            if isinstance(response, ast.Constant) and response.value in with_words:
                if len(node.args) < 4 and not any(k.arg == "channel" for k in node.keywords):
                    missing.append(f"{path.name}:{node.lineno} {response.value}")
    assert not missing


@pytest.fixture()
def messages(tmp_path) -> Path:
    folder = tmp_path / "messages"
    shutil.copytree(PROJECT_ROOT / "bot" / "messages", folder)
    return folder


def _edit(folder: Path, change) -> None:
    path = folder / "fr.yml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data["channel_words"])
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")


@pytest.mark.parametrize("change, message", [
    (lambda words: words.pop("all"), "fr.yml: channel_words must have 'all'"),
    (lambda words: words["all"].pop("exit_word"), "fr.yml: channel_words.all.exit_word missing"),
    (lambda words: words.update(whatsapp={"choose": "x"}),
     "fr.yml: channel_words.whatsapp: unknown channel"),
    (lambda words: words["sms"].update(stop_words="PAUSE"),
     "fr.yml: channel_words.sms.stop_words is not one of"),
    (lambda words: words["sms"].update(choose="Tapez {org_name}"),
     "fr.yml: channel_words.sms.choose must be plain words"),
    (lambda words: words["sms"].update(choose=" "), "fr.yml: channel_words.sms.choose must be"),
])
def test_a_broken_channel_words_section_is_refused_with_its_place(messages, change, message):
    _edit(messages, change)
    load_catalog.cache_clear()
    try:
        with pytest.raises(CatalogError, match=message.replace(".", r"\.")):
            load_catalog(messages)
    finally:
        load_catalog.cache_clear()


@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
def test_erased_says_our_copy_and_how_to_clear_the_phone_on_each_channel(language):
    """We erase our copy; the SMS thread, the Telegram chat and the browser's history are on
    the person's device, and only they can clear them (issue 16: "Erased" says honestly what
    was erased)."""
    shown = {channel: _shown("utter_forget_me_done", language, channel) for channel in CHANNELS}
    assert len(set(shown.values())) == len(CHANNELS)
    for channel, text in shown.items():
        assert CATALOG.channel_words(language, channel)["clear_phone"] in text
    assert "SMS" in shown["sms"] and "Telegram" in shown["telegram"] or language == "ar"
    if language == "ar":
        assert "تيليغرام" in shown["telegram"]


def test_no_canned_reply_invites_a_provider_opt_out_word():
    """A caseworker's canned reply goes to the person's channel, SMS included: "you can stop
    at any time" invites a reply STOP, which opts the number out of every later message
    (Twilio's Advanced Opt-Out docs)."""
    from console.canned import load_canned

    for reply in load_canned():
        for language, text in reply.texts.items():
            found = _words(text) & (TWILIO_OPT_OUT | OTHER_PROVIDERS_OPT_OUT)
            assert not found, (reply.key, language, found)
