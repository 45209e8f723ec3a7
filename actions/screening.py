"""Screening: consent, the questions, and the reply to the triage result.

The consent gate is kept here as well as in the rules: the form asks nothing unless
``screening_consent`` was recorded by ``action_record_consent`` right after the person said
yes to ``utter_screening_consent``; a training mistake that opens the form early gets the menu.
"""

from __future__ import annotations

import abc
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import ActiveLoop, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.common import (
    channel_of,
    clear_screening,
    language_of,
    last_bot_response,
    latest_intent,
    person_available,
    person_slot,
    say,
    say_with_contacts,
)
from bot.disclosures import told
from bot.triage import (QUESTIONS, UNKNOWN, TriageResult, load_rules, questions_to_ask,
                        triage)

CONSENT_QUESTION = "utter_screening_consent"


def answers_of(tracker: Tracker) -> Dict[str, Optional[str]]:
    return {q: tracker.get_slot(q) for q in QUESTIONS}


def has_consent(tracker: Tracker) -> bool:
    return tracker.get_slot("screening_consent") is True


class ActionRecordConsent(Action):
    """Records consent only for an explicit yes given to the consent question itself."""

    def name(self) -> Text:
        return "action_record_consent"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        agreed = latest_intent(tracker) == "affirm" and last_bot_response(tracker) == CONSENT_QUESTION
        if agreed:
            # answers exist here only when the questions were paused in this conversation
            # (action_pause_screening): they are not asked again
            return [SlotSet("screening_consent", True)]
        return [*clear_screening(), SlotSet("screening_consent", None)]


class AskQuestion(Action, abc.ABC):
    """Asks one screening question in the conversation's language (subclassed per question)."""

    question: str

    @abc.abstractmethod
    def name(self) -> Text:
        """``action_ask_<question>``, the name Rasa's form looks for."""

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        if not has_consent(tracker):
            return []  # never ask without consent, whatever predicted this
        if self.question in told(tracker.get_slot("disclosed")):
            # already told us: asked back for confirmation, not asked again
            say(dispatcher, f"utter_confirm_{self.question}", language_of(tracker))
        else:
            say(dispatcher, f"utter_ask_{self.question}", language_of(tracker))
        return []


def _ask_action(question: str) -> type:
    return type(
        f"ActionAsk_{question}",
        (AskQuestion,),
        {"question": question, "name": lambda self: f"action_ask_{question}",
         "__doc__": f"Asks {question}."},
    )


ASK_ACTIONS = {question: _ask_action(question) for question in QUESTIONS}


class ValidateScreeningForm(FormValidationAction):
    """Decides which question comes next; without consent, none."""

    def name(self) -> Text:
        return "validate_screening_form"

    async def required_slots(
        self,
        domain_slots: List[Text],
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> List[Text]:
        if not has_consent(tracker):
            return []
        answers = answers_of(tracker)
        remaining = questions_to_ask(answers, load_rules())
        if not remaining:
            return []
        answered = [q for q in load_rules().order if answers.get(q) is not None]
        return answered + remaining


OTHER_ANSWER = {"yes": "no", "no": "yes"}


def _confirmed(question: str):
    """``validate_<question>``: after a confirmation question, yes keeps the answer the person
    had told us and no gives the other one; skip stays skipped."""

    async def validate(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                       domain: DomainDict) -> Dict[Text, Any]:
        said = told(tracker.get_slot("disclosed")).get(question)
        if said is None or last_bot_response(tracker) != f"utter_confirm_{question}":
            return {question: value}
        if value == "yes":
            return {question: said}
        if value == "no":
            return {question: OTHER_ANSWER[said]}
        return {question: value}

    validate.__name__ = f"validate_{question}"
    validate.__doc__ = f"Reads a yes or no to the confirmation of {question}."
    return validate


for _question in QUESTIONS:
    setattr(ValidateScreeningForm, f"validate_{_question}", _confirmed(_question))


def reply_to_result(
    dispatcher: CollectingDispatcher, tracker: Tracker, result: TriageResult
) -> List[EventType]:
    """Sends the reply for a triage result; emergency contacts always come first. A person
    is offered only where one can come; elsewhere the reply names the services and the
    numbers to call (bot.catalog.WITHOUT_PERSON)."""
    language = language_of(tracker)
    person = person_available()
    events: List[EventType] = [
        SlotSet("triage_level", result.level),
        SlotSet("triage_needs", list(result.needs)),
        person_slot(person),
    ]
    if result.level == "emergency":
        say_with_contacts(dispatcher, tracker, "utter_emergency_contacts", language)
    if result.under_18:
        say(dispatcher, "utter_triage_child", language, person=person)
    if result.level == "emergency":
        say(dispatcher, "utter_offer_human", language, person=person)
    else:
        say_with_contacts(dispatcher, tracker, f"utter_triage_{result.level}", language, person)
    if result.level != "low":  # unknown too: nothing was learnt, a person may help
        events.append(SlotSet("offer", "human" if person else "services"))
    return events


class ActionScreeningResult(Action):
    """After the questions: triage the answers, reply by level, then forget the answers."""

    def name(self) -> Text:
        return "action_screening_result"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        if not has_consent(tracker):
            say(dispatcher, "utter_menu", language_of(tracker), channel_of(tracker))
            return clear_screening()
        result = triage(answers_of(tracker))
        return [*reply_to_result(dispatcher, tracker, result), *clear_screening()]


class ActionStopScreening(Action):
    """Ends the questions when the person says stop (or asks for the menu or says goodbye)."""

    def name(self) -> Text:
        return "action_stop_screening"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        language = language_of(tracker)
        events: List[EventType] = [ActiveLoop(None), SlotSet("requested_slot", None)]
        say(dispatcher, "utter_screening_stopped", language)
        if has_consent(tracker):
            result = triage(answers_of(tracker))
            # stopping says enough; the signs and a person follow only what was answered
            if result.level not in ("low", UNKNOWN) or result.under_18:
                events += reply_to_result(dispatcher, tracker, result)
        if latest_intent(tracker) == "menu":
            say(dispatcher, "utter_menu", language, channel_of(tracker))
        return events + clear_screening()


class ActionPauseScreening(Action):
    """The person asked for a person or for services during the questions: the questions
    pause and the request is done next (by the rule). The answers so far stay, as closed
    values, so a hand-off carries their triage and coming back does not ask them again."""

    def name(self) -> Text:
        return "action_pause_screening"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        events: List[EventType] = [ActiveLoop(None), SlotSet("requested_slot", None)]
        say(dispatcher, "utter_screening_paused", language_of(tracker))
        if has_consent(tracker):
            result = triage(answers_of(tracker))
            if result.level != UNKNOWN:
                events += [SlotSet("triage_level", result.level),
                           SlotSet("triage_needs", list(result.needs))]
        return events
