"""Every action, run with a CollectingDispatcher: the events and the responses it sends."""

import pytest
from rasa_sdk.events import ActionExecuted, ActiveLoop, Restarted, SessionStarted, SlotSet

from actions.awareness import ActionMore
from actions.help import ActionAnswerOffer, ActionFindServices, ActionRequestHuman
from actions.language import ActionChangeLanguage, ActionLanguageMenu
from actions.safety import ActionEmergency, ActionForgetMe, ActionQuickExit
from actions.screening import (
    ASK_ACTIONS,
    ActionRecordConsent,
    ActionScreeningResult,
    ActionStopScreening,
    ValidateScreeningForm,
)
from actions.session import ActionSessionStart, ValidateSlotMappings
from bot.catalog import load_catalog
from bot.triage import QUESTIONS
from tests.conftest import responses_sent
from tests.utils.trackers import bot_event, make_tracker

CATALOG = load_catalog()
CONSENTED = {"screening_consent": True}


def texts(dispatcher):
    return [m["text"] for m in dispatcher.messages]


async def run(action, dispatcher, tracker, domain):
    return await action.run(dispatcher, tracker, domain)


# --- session and language -------------------------------------------------------------


async def test_session_start_sets_the_organisation_and_default_language(dispatcher, domain):
    events = await run(ActionSessionStart(), dispatcher, make_tracker(slots={"language": None}), domain)
    assert events == [
        SessionStarted(), SlotSet("org_name", "Lantern Line (sample)"), SlotSet("language", "en"),
        SlotSet("person_available", False),  # no caseworker account: tests/test_person_offers.py
        ActionExecuted("action_listen"),
    ]


async def test_session_start_keeps_a_chosen_language(dispatcher, domain):
    events = await run(ActionSessionStart(), dispatcher, make_tracker(slots={"language": "ar"}), domain)
    assert SlotSet("language", "ar") in events


async def test_language_menu_lists_every_enabled_language(dispatcher, domain):
    await run(ActionLanguageMenu(), dispatcher, make_tracker(), domain)
    [message] = dispatcher.messages
    assert message["utter_action"] == "utter_language_menu"
    assert [b["title"] for b in message["buttons"]] == ["English", "Français", "العربية", "Español"]
    assert message["buttons"][2]["payload"] == '/change_language{"language": "ar"}'
    assert "Choose a language" in message["text"]


async def test_change_language_switches_and_answers_in_the_new_language(dispatcher, domain):
    tracker = make_tracker("change_language", entities=[{"entity": "language", "value": "es"}])
    events = await run(ActionChangeLanguage(), dispatcher, tracker, domain)
    assert events == [SlotSet("language", "es")]
    assert responses_sent(dispatcher) == ["utter_language_set", "utter_menu"]
    assert texts(dispatcher)[0] == CATALOG.texts["es"]["utter_language_set"]


async def test_change_language_inside_the_questions_does_not_show_the_menu(dispatcher, domain):
    tracker = make_tracker("change_language", entities=[{"entity": "language", "value": "fr"}],
                           active_loop="screening_form", slots=CONSENTED)
    await run(ActionChangeLanguage(), dispatcher, tracker, domain)
    assert responses_sent(dispatcher) == ["utter_language_set"]


async def test_change_language_without_a_language_shows_the_menu(dispatcher, domain):
    events = await run(ActionChangeLanguage(), dispatcher, make_tracker("change_language"), domain)
    assert events == []
    assert responses_sent(dispatcher) == ["utter_language_menu"]


async def test_validation_keeps_the_language_within_the_deployment(dispatcher, domain, monkeypatch):
    from bot.deployment import Deployment
    import actions.session as session

    real = session.deployment()
    only_fr = Deployment(real.organisation_name, ("fr",), "fr", real.emergency_contacts,
                         real.human_cover, real.retention)
    monkeypatch.setattr(session, "deployment", lambda: only_fr)
    validator = ValidateSlotMappings()
    assert await validator.validate_language("fr", dispatcher, make_tracker(), domain) == {"language": "fr"}
    assert await validator.validate_language("ar", dispatcher, make_tracker(), domain) == {"language": "fr"}


async def test_validation_restores_the_previous_language(dispatcher, domain):
    events = [{"event": "slot", "name": "language", "value": "es"},
              {"event": "slot", "name": "language", "value": "xx"}]
    tracker = make_tracker(events=events, slots={"language": "xx"})
    result = await ValidateSlotMappings().validate_language("xx", dispatcher, tracker, domain)
    assert result == {"language": "es"}


# --- every message in the conversation's language -----------------------------------


@pytest.mark.parametrize("language", ["en", "fr", "ar", "es"])
async def test_actions_speak_the_conversation_language(dispatcher, domain, language,
                                                       caseworker_database):
    tracker = make_tracker("emergency", slots={"language": language})
    await run(ActionEmergency(), dispatcher, tracker, domain)
    assert texts(dispatcher)[1] == CATALOG.texts[language]["utter_offer_human"].format(
        org_name="Lantern Line (sample)")


# --- awareness ------------------------------------------------------------------------


async def test_more_continues_the_last_topic(dispatcher, domain):
    events = await run(ActionMore(), dispatcher, make_tracker("more", slots={"topic": "job_offer"}), domain)
    assert responses_sent(dispatcher) == ["utter_awareness_job_offer_more"]
    assert events == [SlotSet("topic", None)]


async def test_more_without_a_topic_says_so(dispatcher, domain):
    await run(ActionMore(), dispatcher, make_tracker("more"), domain)
    assert responses_sent(dispatcher) == ["utter_more_none"]


# --- screening: consent gate ------------------------------------------------------------


async def test_consent_is_recorded_for_a_yes_to_the_consent_question(dispatcher, domain):
    tracker = make_tracker("affirm", events=[bot_event("utter_screening_consent")])
    events = await run(ActionRecordConsent(), dispatcher, tracker, domain)
    assert events[-1] == SlotSet("screening_consent", True)
    # answers given before a pause (tests/test_screening_pause.py) are not asked again
    assert not any(SlotSet(q, None) in events for q in QUESTIONS)


@pytest.mark.parametrize(
    "intent, last", [("affirm", "utter_menu"), ("deny", "utter_screening_consent"), ("affirm", None)]
)
async def test_consent_is_not_recorded_otherwise(dispatcher, domain, intent, last):
    tracker = make_tracker(intent, events=[bot_event(last)] if last else [])
    events = await run(ActionRecordConsent(), dispatcher, tracker, domain)
    assert events[-1] == SlotSet("screening_consent", None)


async def test_without_consent_the_form_asks_nothing(dispatcher, domain):
    validator = ValidateScreeningForm()
    assert await validator.required_slots(list(QUESTIONS), dispatcher, make_tracker(), domain) == []
    events = await validator.run(dispatcher, make_tracker(active_loop="screening_form"), domain)
    assert SlotSet("requested_slot", None) in events
    for action in ASK_ACTIONS.values():
        assert await action().run(dispatcher, make_tracker(), domain) == []
    assert dispatcher.messages == []


async def test_with_consent_the_first_question_is_asked(dispatcher, domain):
    validator = ValidateScreeningForm()
    required = await validator.required_slots(list(QUESTIONS), dispatcher,
                                              make_tracker(slots=CONSENTED), domain)
    assert required == [q for q in QUESTIONS if not q.startswith("q_child_")]  # an adult, so far
    await ASK_ACTIONS["q_safe_now"]().run(dispatcher, make_tracker(slots=CONSENTED), domain)
    assert responses_sent(dispatcher) == ["utter_ask_q_safe_now"]
    assert [b["payload"] for b in dispatcher.messages[0]["buttons"]] == ["/affirm", "/deny", "/skip", "/stop"]


async def test_a_child_is_not_asked_the_adult_questions(dispatcher, domain):
    slots = {**CONSENTED, "q_safe_now": "yes", "q_under_18": "yes"}
    tracker = make_tracker(slots=slots)
    required = await ValidateScreeningForm().required_slots(list(QUESTIONS), dispatcher, tracker, domain)
    for adult_only in ("q_free_to_leave", "q_documents", "q_work_as_promised", "q_debt"):
        assert adult_only not in required
    events = await ValidateScreeningForm().run(dispatcher, make_tracker(slots=slots, active_loop="screening_form"), domain)
    assert SlotSet("requested_slot", "q_child_school") in events


async def test_not_safe_now_ends_the_questions(dispatcher, domain):
    tracker = make_tracker(slots={**CONSENTED, "q_safe_now": "no"})
    assert await ValidateScreeningForm().required_slots(list(QUESTIONS), dispatcher, tracker, domain) == []


def test_there_is_an_ask_action_for_every_question(domain):
    assert {a().name() for a in ASK_ACTIONS.values()} == {f"action_ask_{q}" for q in QUESTIONS}
    assert all(f"action_ask_{q}" in domain["actions"] for q in QUESTIONS)


# --- screening: results ------------------------------------------------------------------


def answered(**answers):
    return {**CONSENTED, **answers}


async def test_result_without_consent_is_only_the_menu(dispatcher, domain):
    events = await run(ActionScreeningResult(), dispatcher, make_tracker(slots={"q_threats": "yes"}), domain)
    assert responses_sent(dispatcher) == ["utter_menu"]
    assert SlotSet("q_threats", None) in events
    assert not any(isinstance(e, dict) and e.get("name") == "triage_level" for e in events)


async def test_emergency_result_gives_contacts_first(dispatcher, domain, caseworker_database):
    tracker = make_tracker(slots=answered(q_safe_now="no"))
    events = await run(ActionScreeningResult(), dispatcher, tracker, domain)
    assert responses_sent(dispatcher) == ["utter_emergency_contacts", "utter_offer_human"]
    assert "+999 100 000" in texts(dispatcher)[0]
    assert SlotSet("triage_level", "emergency") in events
    assert SlotSet("offer", "human") in events
    assert SlotSet("screening_consent", None) in events  # answers and consent are not kept


async def test_emergency_contacts_follow_the_area(dispatcher, domain):
    tracker = make_tracker(slots=answered(q_safe_now="no", area="NG"))
    await run(ActionScreeningResult(), dispatcher, tracker, domain)
    assert "+999 234 000" in texts(dispatcher)[0]


async def test_high_result_offers_a_caseworker(dispatcher, domain, caseworker_database):
    tracker = make_tracker(slots=answered(q_safe_now="yes", q_under_18="no", q_threats="yes"))
    events = await run(ActionScreeningResult(), dispatcher, tracker, domain)
    assert responses_sent(dispatcher) == ["utter_triage_high"]
    assert [b["payload"] for b in dispatcher.messages[0]["buttons"]][:2] == ["/request_human", "/find_services"]
    assert SlotSet("triage_level", "high") in events


async def test_child_result_mentions_child_protection(dispatcher, domain):
    tracker = make_tracker(slots=answered(q_safe_now="yes", q_under_18="yes"))
    events = await run(ActionScreeningResult(), dispatcher, tracker, domain)
    assert responses_sent(dispatcher) == ["utter_triage_child", "utter_triage_medium"]
    needs = next(e["value"] for e in events if e.get("name") == "triage_needs")
    assert "child_protection" in needs


async def test_low_result_gives_the_signs_to_watch_and_services(dispatcher, domain):
    tracker = make_tracker(slots=answered(q_safe_now="yes", q_under_18="no",
                                          q_free_to_leave="yes"))
    events = await run(ActionScreeningResult(), dispatcher, tracker, domain)
    assert responses_sent(dispatcher) == ["utter_triage_low"]
    assert SlotSet("offer", "human") not in events


async def test_every_question_skipped_is_unknown_with_the_signs_and_a_person(
        dispatcher, domain, caseworker_database):
    tracker = make_tracker(slots=answered(**{q: "skipped" for q in QUESTIONS}))
    events = await run(ActionScreeningResult(), dispatcher, tracker, domain)
    assert responses_sent(dispatcher) == ["utter_triage_unknown"]
    assert SlotSet("offer", "human") in events
    assert SlotSet("triage_level", "unknown") in events


async def test_no_result_message_calls_anyone_a_victim():
    for language in ("en", "fr", "ar", "es"):
        for name, text in CATALOG.texts[language].items():
            if name.startswith("utter_triage"):
                lowered = text.lower()
                for word in ("victim", "victime", "víctima", "victima", "ضحية"):
                    assert word not in lowered, (language, name)


async def test_stop_ends_the_questions_and_uses_the_answers_so_far(dispatcher, domain):
    tracker = make_tracker("stop", slots=answered(q_safe_now="yes", q_under_18="no", q_free_to_leave="no"),
                           active_loop="screening_form")
    events = await run(ActionStopScreening(), dispatcher, tracker, domain)
    assert events[:2] == [ActiveLoop(None), SlotSet("requested_slot", None)]
    assert responses_sent(dispatcher) == ["utter_screening_stopped", "utter_triage_medium"]


async def test_stop_with_nothing_worrying_just_stops(dispatcher, domain):
    tracker = make_tracker("stop", slots=answered(q_safe_now="yes"), active_loop="screening_form")
    await run(ActionStopScreening(), dispatcher, tracker, domain)
    assert responses_sent(dispatcher) == ["utter_screening_stopped"]


async def test_menu_during_the_questions_stops_and_shows_the_menu(dispatcher, domain):
    tracker = make_tracker("menu", slots=answered(), active_loop="screening_form")
    await run(ActionStopScreening(), dispatcher, tracker, domain)
    assert responses_sent(dispatcher) == ["utter_screening_stopped", "utter_menu"]


# --- safety -----------------------------------------------------------------------------


async def test_emergency_sends_contacts_first_then_the_offer_and_ends_the_questions(
        dispatcher, domain, caseworker_database):
    tracker = make_tracker("emergency", slots=answered(q_safe_now="yes"), active_loop="screening_form")
    events = await run(ActionEmergency(), dispatcher, tracker, domain)
    assert responses_sent(dispatcher) == ["utter_emergency_contacts", "utter_offer_human"]
    assert ActiveLoop(None) in events and SlotSet("q_safe_now", None) in events
    assert SlotSet("offer", "human") in events


@pytest.mark.parametrize("action, response", [(ActionQuickExit, "utter_quick_exit"),
                                              (ActionForgetMe, "utter_forget_me_done")])
async def test_quick_exit_and_forget_me_reset_the_conversation(dispatcher, domain, action, response):
    tracker = make_tracker(slots=answered(q_safe_now="yes", language="ar"), active_loop="screening_form")
    events = await run(action(), dispatcher, tracker, domain)
    assert responses_sent(dispatcher) == [response]
    assert events[-1] == Restarted()
    # the tracker's last message came from no channel: the words every channel shares
    assert texts(dispatcher) == [CATALOG.render(response, "ar")["text"]]


def test_the_quick_exit_reply_is_one_neutral_line():
    for language in ("en", "fr", "ar", "es"):
        text = CATALOG.texts[language]["utter_quick_exit"]
        assert "\n" not in text and len(text) <= 12


# --- services and people -------------------------------------------------------------


async def test_request_human_says_honestly_what_happens(dispatcher, domain):
    events = await run(ActionRequestHuman(), dispatcher, make_tracker("request_human"), domain)
    assert responses_sent(dispatcher) == ["utter_handoff_unavailable"]
    assert "+999 100 000" in texts(dispatcher)[0]
    assert dispatcher.messages[0]["buttons"]  # never a dead end
    assert events == [SlotSet("offer", None), SlotSet("person_available", False)]


async def test_find_services_says_honestly_what_happens(dispatcher, domain):
    await run(ActionFindServices(), dispatcher, make_tracker("find_services"), domain)
    assert responses_sent(dispatcher) == ["utter_services_unavailable"]
    assert dispatcher.messages[0]["buttons"]


async def test_yes_to_the_offer_of_a_person(dispatcher, domain):
    await run(ActionAnswerOffer(), dispatcher, make_tracker("affirm", slots={"offer": "human"}), domain)
    assert responses_sent(dispatcher) == ["utter_handoff_unavailable"]


async def test_no_to_the_offer(dispatcher, domain):
    events = await run(ActionAnswerOffer(), dispatcher, make_tracker("deny", slots={"offer": "human"}), domain)
    assert responses_sent(dispatcher) == ["utter_offer_declined"]
    assert events == [SlotSet("offer", None)]


async def test_yes_with_nothing_offered_shows_the_menu(dispatcher, domain):
    await run(ActionAnswerOffer(), dispatcher, make_tracker("affirm"), domain)
    assert responses_sent(dispatcher) == ["utter_menu"]


def test_every_custom_action_is_in_the_domain(domain):
    from rasa_sdk.executor import ActionExecutor

    executor = ActionExecutor()
    executor.register_package("actions")
    registered = set(executor.actions)
    assert registered <= set(domain["actions"]) | {"action_session_start"}
    custom_in_domain = {a for a in domain["actions"] if a.startswith(("action_", "validate_"))}
    assert custom_in_domain <= registered
