"""Consent says what is true (issue 16 §3): each consent text names everything that is kept
under it, read from the code, in every language.

The fields come from the code itself: the columns of the cases and subscribers tables and the
slots the screening keeps in the tracker store. Each field either maps to the words that name
it in each language, or is listed as not needing a mention with the reason. A new column or
slot without either fails here, so the consent cannot fall behind what is stored. Informed
consent in the GPC guide (004, the box near line 950): what is collected, why, who sees it,
that the person may refuse without losing help, and how to withdraw.
"""

from __future__ import annotations

import string

import pytest
import yaml

from bot.campaigns.models import Subscriber
from bot.cases.models import Case, CaseMessage
from bot.catalog import load_catalog
from bot.deployment import load_deployment
from bot.settings import PROJECT_ROOT
from bot.triage import QUESTIONS
from tests.conftest import SAMPLE_DEPLOYMENT

CATALOG = load_catalog()
DEPLOYMENT = load_deployment(SAMPLE_DEPLOYMENT)
LANGUAGES = ("en", "fr", "ar", "es")


def words(**by_language: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """Per language, alternatives: the text must contain one of them (case-insensitive)."""
    assert set(by_language) == set(LANGUAGES)
    return by_language


ANSWERS = words(en=("answers",), fr=("réponses",), ar=("الإجابات", "إجاباتك"), es=("respuestas",))
CODE = words(en=("under a code",), fr=("sous un code",), ar=("تحت رمز",), es=("con un código",))
NOT_NUMBER = words(en=("not your number", "never your number"), fr=("ni numéro", "jamais votre numéro"),
                   ar=("لا رقمك", "لن يرى رقمك"), es=("ni número", "nunca su número"))
LEVEL = words(en=("how urgent",), fr=("l'urgence",), ar=("مدى الاستعجال",), es=("la urgencia",))
NEEDS = words(en=("help you need",), fr=("l'aide dont vous avez besoin",),
              ar=("المساعدة التي تحتاجها",), es=("la ayuda que necesita",))
AREA = words(en=("area",), fr=("zone",), ar=("منطقتك",), es=("zona",))
ENCRYPTED = words(en=("encrypted",), fr=("chiffr",), ar=("مشفّر",), es=("cifrad",))
LANGUAGE = words(en=("language",), fr=("langue",), ar=("لغتك",), es=("idioma",))
NUMBER = words(en=("your number",), fr=("votre numéro",), ar=("رقمك",), es=("su número",))

# ---------------------------------------------------------------------------------------
# The hand-off consent: everything a case holds.

CASE_FIELDS = {
    "triage_level": LEVEL,
    "needs": NEEDS,
    "area": AREA,
    "conversation_id": NOT_NUMBER,   # a code made from the number, never the number
    "transcript": ENCRYPTED,          # case_messages: the encrypted words of the hand-off
}
CASE_NOT_NAMED = {
    "id": "the case's number in the console, nothing about the person",
    "urgency": "the triage level's rank, for the queue's order (the level is named)",
    "channel": "the channel the person is writing on, which they know",
    "language": "the language the person is writing in, which they know",
    "status": "the caseworkers' work on the case (waiting, active, closed)",
    "caseworker": "the caseworker's user name, not the person's",
    "outcome": "what the caseworker recorded at closing, from a closed list",
    "created_at": "times, covered by 'until the case closes' and the days kept after",
    "claimed_at": "times, covered by 'until the case closes'",
    "closed_at": "times, covered by the days kept after closing",
    "replies_blocked": "that the provider refused replies to the number (the person's own "
                       "opt-out), a delivery fact",
    "held_until": "a time: the case waits for the shift the person is told of, covered by "
                  "'until the case closes'",
}

# ---------------------------------------------------------------------------------------
# The subscription consent: everything a subscriber row holds.

SUBSCRIBER_FIELDS = {
    "address": NUMBER,
    "language": LANGUAGE,
    "area": AREA,
}
SUBSCRIBER_NOT_NAMED = {
    "id": "a row number",
    "conversation_id": "the code the number is known by; the number itself is named",
    "channel": "the channel the person subscribes on, which they know",
    "consented_at": "the time of this consent, covered by 'for {months}'",
    "reminded_at": "when the consent's reminder was queued, covered by 'for {months}'",
}

# ---------------------------------------------------------------------------------------
# The screening consent (utter_screening_about): the slots the questions keep.

SCREENING_FIELDS = {**{q: ANSWERS for q in QUESTIONS},
                    "disclosed": ANSWERS,      # what was told, as the same answers
                    "triage_level": ANSWERS,   # computed from the answers, cleared with them
                    "triage_needs": ANSWERS}
SCREENING_NOT_NAMED = {
    "screening_consent": "the consent itself",
    "requested_slot": "which question is being asked",
}
TOPICS = {
    "en": ("work", "documents", "moving freely", "threats", "debts", "age", "school", "family"),
    "fr": ("travail", "papiers", "liberté de partir", "menaces", "dettes", "âge", "école",
           "famille"),
    "ar": ("عملك", "وثائقك", "حرية المغادرة", "التهديدات", "الديون", "العمر", "المدرسة",
           "العائلة"),
    "es": ("trabajo", "documentos", "libertad para irse", "amenazas", "deudas", "edad",
           "escuela", "familia"),
}
PROMISES = {  # automated, skip any, no changes nothing, how to erase (a forget-me phrase)
    "en": ("automated", "skip any", "saying no changes nothing", "forget me"),
    "fr": ("automatique", "passez", "dire non ne change rien", "oublie moi"),
    "ar": ("آلي", "تخطي أي سؤال", "الرفض لا يغيّر شيئًا", "انسوني"),
    "es": ("automático", "salte cualquiera", "decir que no no cambia", "olvidame"),
}
NOT_ANONYMOUS = ("anonymous", "anonyme", "anónim", "مجهول", "لا يكشف هويتك")


def columns(model) -> set[str]:
    return {c.name for c in model.__table__.columns}


def screening_slots() -> set[str]:
    domain = yaml.safe_load((PROJECT_ROOT / "bot/domain/screening.yml").read_text("utf-8"))
    return set(domain["slots"]) | set(QUESTIONS) | {"requested_slot"}


def rendered(name: str, language: str) -> str:
    values = {"org_name": DEPLOYMENT.organisation_name, "per_week": "2", "months": "12",
              "keep_hours": str(DEPLOYMENT.retention.conversation_idle_hours),
              "keep_days": str(DEPLOYMENT.retention.closed_case_days)}
    text = CATALOG.texts[language][name]
    used = {f for _, f, _, _ in string.Formatter().parse(text) if f}
    return text.format_map({**CATALOG.channel_words(language, "sms"),
                            **{k: v for k, v in values.items() if k in used}}).casefold()


def missing(text: str, fields: dict, language: str) -> list[str]:
    return [field for field, alternatives in fields.items()
            if not any(w.casefold() in text for w in alternatives[language])]


def test_every_stored_field_is_named_or_has_a_reason():
    """Derived from the code: a new column or screening slot must be added to a list above."""
    case_fields = columns(Case) | {"transcript"}
    assert columns(CaseMessage) >= {"body"}  # the transcript's encrypted words
    assert case_fields == set(CASE_FIELDS) | set(CASE_NOT_NAMED)
    assert columns(Subscriber) == set(SUBSCRIBER_FIELDS) | set(SUBSCRIBER_NOT_NAMED)
    assert screening_slots() == set(SCREENING_FIELDS) | set(SCREENING_NOT_NAMED)


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_hand_off_consent_names_everything_a_case_holds_and_how_long(language):
    text = rendered("utter_handoff_consent", language)
    assert missing(text, CASE_FIELDS, language) == []
    assert str(DEPLOYMENT.retention.closed_case_days) in text


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_subscription_consent_names_the_number_language_and_area(language):
    text = rendered("utter_subscribe_consent", language)
    assert missing(text, SUBSCRIBER_FIELDS, language) == []
    assert ENCRYPTED[language][0].casefold() in text


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_screening_consent_says_who_asks_what_is_kept_how_long_and_how_to_erase(language):
    text = rendered("utter_screening_about", language)
    assert missing(text, SCREENING_FIELDS, language) == []
    assert any(w.casefold() in text for w in CODE[language])
    assert any(w.casefold() in text for w in NOT_NUMBER[language])
    assert str(DEPLOYMENT.retention.conversation_idle_hours) in text
    for phrase in TOPICS[language] + PROMISES[language]:
        assert phrase.casefold() in text, phrase


def test_the_erase_phrase_each_consent_names_is_read_as_forget_me():
    """The words the screening consent tells people to write are training examples of
    forget_me, which the trained assistant reads word for word (bot.nlu.ExampleMemory)."""
    examples = {}
    for language in LANGUAGES:
        for path in (PROJECT_ROOT / "data/nlu" / language).glob("*.yml"):
            for block in yaml.safe_load(path.read_text("utf-8")).get("nlu", []):
                if block.get("intent") == "forget_me":
                    examples[language] = {line[2:].strip().casefold()
                                          for line in block["examples"].splitlines()
                                          if line.strip().startswith("- ")}
    for language in LANGUAGES:
        assert PROMISES[language][-1] in examples[language], language


@pytest.mark.parametrize("name", ["utter_screening_about", "utter_screening_consent",
                                  "utter_handoff_consent", "utter_subscribe_consent"])
def test_no_consent_calls_the_person_anonymous(name):
    """Pseudonymous, in plain words ("under a code, not your number"), never "anonymous"."""
    for language in LANGUAGES:
        text = CATALOG.texts[language][name].casefold()
        assert not any(word in text for word in NOT_ANONYMOUS), (language, name)
