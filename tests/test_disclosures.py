"""A person who tells us about their situation is acknowledged before the questions are
offered (issue 16 §5; GPC guide 004 line 1116: respect their decisions, tell them they need
not decide now and can change their mind, ask permission before acting).

The messages below were written for this test, in the ways the issue names ("they took my
passport", "I am 15 and work for a man", "they lock the door at night"); questions and other
people's situations must disclose nothing about the writer."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.disclosure import ActionExplainQuestions
from bot.catalog import load_catalog
from bot.disclosures import LABELS, DisclosuresError, _patterns, disclosed
from tests.conftest import responses_sent

DISCLOSURES = {
    "en": [
        ("they took my passport", {"q_documents": "no"}),
        ("I am 15 and work for a man", {"q_under_18": "yes"}),
        ("they lock the door at night", {"q_free_to_leave": "no"}),
        ("madam said she will kill me if i run", {"q_threats": "yes"}),
        ("i still owe the agent for the ticket", {"q_debt": "yes"}),
        ("the job is not what they promised", {"q_work_as_promised": "no"}),
        ("im 16, my boss has my id and won't let me go out",
         {"q_under_18": "yes", "q_documents": "no", "q_free_to_leave": "no"}),
    ],
    "fr": [
        ("ils ont pris mon passeport", {"q_documents": "no"}),
        ("J'ai 15 ans et je travaille pour un homme", {"q_under_18": "yes"}),
        ("ils ferment la porte à clé la nuit", {"q_free_to_leave": "no"}),
        ("le patron me menace", {"q_threats": "yes"}),
        ("je dois rembourser le voyage", {"q_debt": "yes"}),
        ("ce n'est pas le travail qu'on m'avait promis", {"q_work_as_promised": "no"}),
    ],
    "es": [
        ("me quitaron mi pasaporte", {"q_documents": "no"}),
        ("tengo 15 años y trabajo para un hombre", {"q_under_18": "yes"}),
        ("nos encierran con llave por la noche", {"q_free_to_leave": "no"}),
        ("me amenazan con hacerle daño a mi familia", {"q_threats": "yes"}),
        ("tengo que pagar la deuda del viaje", {"q_debt": "yes"}),
        ("no es el trabajo que me prometieron", {"q_work_as_promised": "no"}),
    ],
    "ar": [
        ("أخذوا جوازي", {"q_documents": "no"}),
        ("عمري ١٥ وأشتغل عند رجل", {"q_under_18": "yes"}),
        ("يقفلون علي الباب في الليل", {"q_free_to_leave": "no"}),
        ("هددوني إذا تكلمت", {"q_threats": "yes"}),
        ("أنا مديون للسمسار", {"q_debt": "yes"}),
        ("الشغل غير اللي وعدوني فيه", {"q_work_as_promised": "no"}),
        ("a5ado jawazi", {"q_documents": "no"}),
    ],
}

NOTHING_DISCLOSED = [
    "can my employer keep my passport?",          # a question about rights
    "is it normal that they keep the passport",   # a question without its mark
    "my sister's husband took her passport",      # someone else
    "i am 5 minutes away from the office",        # a number that is not an age
    "I am 25 and looking for work",               # an adult
    "hello", "check my situation", "",
    "est-ce que mon patron peut garder mon passeport ?",
    "¿puede mi jefe quedarse con mi pasaporte?",
    "هل يحق لصاحب العمل أخذ جوازي؟",
    "J'ai 25 ans",
]


@pytest.mark.parametrize("language", DISCLOSURES)
def test_disclosures_give_the_answers_they_imply(language):
    for text, answers in DISCLOSURES[language]:
        assert disclosed(text) == answers, text


@pytest.mark.parametrize("text", NOTHING_DISCLOSED)
def test_questions_and_other_peoples_situations_disclose_nothing(text):
    assert disclosed(text) == {}


def test_a_patterns_file_with_an_unknown_question_or_a_broken_pattern_is_refused(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("patterns:\n  q_salary=maybe:\n    - paid\n", encoding="utf-8")
    with pytest.raises(DisclosuresError, match="q_salary=maybe"):
        _patterns(bad)
    broken = tmp_path / "broken.yml"
    broken.write_text("patterns:\n  q_debt=yes:\n    - '(unclosed'\n", encoding="utf-8")
    with pytest.raises(ValueError, match="unclosed"):
        _patterns(broken)


def run(text: str, language: str):
    tracker = Tracker("c" + "3" * 31, {"language": language},
                      {"intent": {"name": "check_situation"}, "text": text, "entities": []},
                      [], False, None, {}, "action_listen")
    dispatcher = CollectingDispatcher()
    events = asyncio.run(ActionExplainQuestions().run(dispatcher, tracker, {}))
    return events, dispatcher


@pytest.mark.parametrize("language", DISCLOSURES)
def test_the_action_acknowledges_a_disclosure_and_keeps_only_closed_answers(language):
    text, answers = DISCLOSURES[language][0]
    events, dispatcher = run(text, language)
    # no text: only the screening's own closed answers, as labels of a closed list
    assert events == [{"event": "slot", "timestamp": None, "name": "disclosed",
                       "value": [f"{q}={a}" for q, a in answers.items()]}]
    assert set(events[0]["value"]) <= set(LABELS)
    assert responses_sent(dispatcher) == ["utter_disclosure_ack", "utter_screening_about"]
    assert dispatcher.messages[0]["text"] == load_catalog().texts[language]["utter_disclosure_ack"]
    events, dispatcher = run("can you check my situation", language)
    assert events == [] and responses_sent(dispatcher) == ["utter_screening_about"]


def test_the_tracker_store_keeps_the_labels_and_masks_anything_else():
    from rasa.shared.core.domain import Domain

    from bot.deployment import load_deployment
    from bot.settings import PROJECT_ROOT
    from bot.tracker_store import slot_rules

    rules = slot_rules(Domain.load(str(PROJECT_ROOT / "bot" / "domain")),
                       load_deployment(PROJECT_ROOT / "deploy" / "sample.yml"))
    assert rules.value("disclosed", ["q_documents=no"]) == ["q_documents=no"]
    assert rules.value("disclosed", ["my boss keeps my passport"]) != ["my boss keeps my passport"]


def screening_tracker(slots: dict, intent: str, last_bot: str) -> Tracker:
    events = [{"event": "bot", "metadata": {"utter_action": last_bot}},
              {"event": "user", "text": "", "parse_data": {"intent": {"name": intent}}}]
    return Tracker("c" + "4" * 31, {"language": "en", "screening_consent": True, **slots},
                   {"intent": {"name": intent}, "text": "", "entities": []}, events, False,
                   None, {"name": "screening_form"}, "action_listen")


@pytest.mark.parametrize("language", DISCLOSURES)
def test_after_consent_what_was_told_is_asked_back_not_asked_again(language):
    from actions.screening import ASK_ACTIONS

    slots = {"language": language, "disclosed": ["q_documents=no"]}
    for question, expected in (("q_documents", "utter_confirm_q_documents"),
                               ("q_threats", "utter_ask_q_threats")):
        dispatcher = CollectingDispatcher()
        asyncio.run(ASK_ACTIONS[question]().run(
            dispatcher, screening_tracker(slots, "affirm", "utter_ask_q_safe_now"), {}))
        assert responses_sent(dispatcher) == [expected]
        assert dispatcher.messages[0]["text"] == load_catalog().texts[language][expected]


@pytest.mark.parametrize("told, reply, answer", [
    ("q_documents=no", "yes", "no"),     # "someone else keeps your documents" - "yes"
    ("q_documents=no", "no", "yes"),     # ... - "no, that's wrong": they have them
    ("q_under_18=yes", "yes", "yes"),
    ("q_under_18=yes", "no", "no"),
    ("q_debt=yes", "skipped", "skipped"),
])
def test_a_confirmation_gives_the_answer_it_confirms_or_the_other_one(told, reply, answer):
    from actions.screening import ValidateScreeningForm

    question = told.split("=")[0]
    validate = getattr(ValidateScreeningForm(), f"validate_{question}")
    tracker = screening_tracker({"disclosed": [told]}, "affirm", f"utter_confirm_{question}")
    assert asyncio.run(validate(reply, CollectingDispatcher(), tracker, {})) == {question: answer}
    # the question itself (not its confirmation) is read as it always was
    tracker = screening_tracker({"disclosed": [told]}, "affirm", f"utter_ask_{question}")
    assert asyncio.run(validate(reply, CollectingDispatcher(), tracker, {})) == {question: reply}


def test_no_to_the_questions_forgets_what_was_told():
    from actions.screening import ActionRecordConsent

    tracker = screening_tracker({"disclosed": ["q_debt=yes"], "screening_consent": None}, "deny",
                                "utter_screening_consent")
    events = asyncio.run(ActionRecordConsent().run(CollectingDispatcher(), tracker, {}))
    assert {"event": "slot", "timestamp": None, "name": "disclosed", "value": None} in events


def test_the_acknowledgement_gives_no_verdict_and_no_label():
    """GPC 004 line 1116: do not assume, do not label; the person decides."""
    forbidden = ("victim", "trafficked", "trafficking", "victime", "traite", "víctima", "trata",
                 "ضحية", "الاتجار")
    for language, texts in load_catalog().texts.items():
        ack = texts["utter_disclosure_ack"].casefold()
        assert not any(word in ack for word in forbidden), (language, ack)


# Training examples of check_situation that disclose something, one per language: the
# trained assistant reads them as check_situation (tests/test_example_memory.py).
TOLD = {"en": "my boss keeps my passport", "fr": "mon patron garde mon passeport",
        "ar": "مديري ماسك جوازي", "es": "mi jefe tiene mi pasaporte"}


@pytest.mark.model
@pytest.mark.parametrize("language", TOLD)
def test_with_the_trained_assistant_the_acknowledgement_comes_before_the_consent(
        assistant, language):
    sender = f"told-{language}-{uuid.uuid4().hex[:8]}"
    assistant.open(sender, "/change_language" + json.dumps({"language": language}))
    turn = assistant.say(sender, TOLD[language])
    assert turn.responses == ["utter_disclosure_ack", "utter_screening_about",
                              "utter_screening_consent"]
    assert turn.slots["disclosed"] == ["q_documents=no"]
    for text, expected in [("/affirm", ["utter_ask_q_safe_now"]),
                           ("/affirm", ["utter_ask_q_under_18"]),
                           ("/deny", ["utter_ask_q_free_to_leave"]),
                           ("/affirm", ["utter_confirm_q_documents"]),  # told, so asked back
                           ("/affirm", ["utter_ask_q_threats"])]:
        turn = assistant.say(sender, text)
        assert turn.responses == expected, (text, turn.responses)
    assert turn.slots["q_documents"] == "no"  # confirmed: someone else keeps them
    turn = assistant.say(sender, "/stop")
    assert turn.slots["disclosed"] is None  # forgotten with the answers
    turn = assistant.say(sender, "/check_situation")
    assert turn.responses == ["utter_screening_about", "utter_screening_consent"]  # no ack


# Issue 16 §5, measured against messages written by a helper who never saw the patterns (not
# in the repository; figures in the README): violence, deception about the work, the phone
# as a document, ages said in other ways, debts "that keep growing" were missed; negations,
# hypotheticals and other people's situations were taken as the writer's own. These
# examples are written here, not taken from that set.
HEARD = [
    ("the supervisor slapped me and my friend yesterday", {"q_threats": "yes"}),
    ("madam go flog me if i complain", {"q_threats": "yes"}),
    ("el encargado me pegó en la cara", {"q_threats": "yes"}),
    ("le chef m'a frappé hier soir", {"q_threats": "yes"}),
    ("المدير ضربني امبارح", {"q_threats": "yes"}),
    ("they said cashier job in a supermarket but now i clean toilets all day", {"q_work_as_promised": "no"}),
    ("on m'a menti sur le travail", {"q_work_as_promised": "no"}),
    ("me dijeron que era de mesera pero ahora trabajo de noche en un bar", {"q_work_as_promised": "no"}),
    ("كذبوا علي بالشغل", {"q_work_as_promised": "no"}),
    ("my boss collected my fone and my id", {"q_documents": "no"}),
    ("je n'ai plus mon téléphone, le patron le garde", {"q_documents": "no"}),
    ("i dey 16, abeg help", {"q_under_18": "yes"}),
    ("je suis mineure", {"q_under_18": "yes"}),
    ("soy menor de edad", {"q_under_18": "yes"}),
    ("we still owe the agent for the flight", {"q_debt": "yes"}),
    ("je dois encore de l'argent au passeur", {"q_debt": "yes"}),
    ("guards watching us day and night at the site", {"q_free_to_leave": "no"}),
    ("صاحب المطعم ماسك هويتي", {"q_documents": "no"}),
    ("ما بقدر اطلع من المصنع", {"q_free_to_leave": "no"}),
    ("tengo 13 y trabajo en una casa", {"q_under_18": "yes"}),
    ("la agencia dijo que era de cocinera y ahora limpio baños", {"q_work_as_promised": "no"}),
    ("nos tienen encerradas en la bodega", {"q_free_to_leave": "no"}),
]
NOT_HEARD = [
    "nobody threatens me, i just want information",
    "no one took my passport, it is in my bag",
    "i still have my passport and my phone",
    "the manager never hit me",
    "what if they take my passport at the border",
    "suppose the agent keeps my documents, what then",
    "my cousin's boss beats her every day",
    "ma voisine est enfermée chez ses patrons",
    "personne ne me menace",
    "j'ai encore mes papiers",
    "nadie me amenaza",
    "mi amiga tiene 15 años y trabaja en una casa",
    "صديقي ضربه صاحب الشغل",
    "i can go out whenever i want",
    "لو اخدوا جوازي شو بعمل",
    "ما علي فلوس لحدا",
    "no le debo nada al patrón",
]


@pytest.mark.parametrize("text, answers", HEARD)
def test_more_ways_of_telling_are_heard(text, answers):
    assert disclosed(text) == answers


@pytest.mark.parametrize("text", NOT_HEARD)
def test_negations_hypotheticals_and_other_people_disclose_nothing(text):
    assert disclosed(text) == {}


def test_an_exception_for_an_unknown_label_is_refused(tmp_path):
    from bot import disclosures

    bad = tmp_path / "not.yml"
    bad.write_text("patterns:\n  q_salary=no:\n    - paid\n", encoding="utf-8")
    with pytest.raises(DisclosuresError, match="q_salary=no"):
        disclosures._exceptions(disclosures.DISCLOSURES_FILE, bad)
