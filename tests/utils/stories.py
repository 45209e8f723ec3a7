"""Builds the Rasa test stories in tests/stories/: every flow, in every language.

Each flow is written once here as (user intent, expected actions) steps; the user's words in
each language are taken from that language's training examples, so the stories test the
dialogue end to end (NLU + rules) in every language. Regenerate with
``python -m tests.utils.stories`` after changing flows or training data; a test checks that the
files are current.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Optional

import yaml

from actions.first_contact import ANSWERED_AT_ONCE
from bot.language import count_letters, detect_language
from bot.settings import PROJECT_ROOT

STORIES_DIR = PROJECT_ROOT / "tests" / "stories"
LANGUAGES = ("en", "fr", "ar", "es")
FORM = "screening_form"

# A step: ("user", intent, entities or None) | ("action", name) | ("loop", name or None)
#         | ("slot", name, value)


def user(intent: str, **entities: str) -> tuple:
    return ("user", intent, entities or None)


def act(*names: str) -> list[tuple]:
    return [("action", n) for n in names]


def ask(question: Optional[str]) -> tuple:
    return ("slot", "requested_slot", question)


START_QUESTIONS = [
    user("check_situation"), *act("action_explain_questions", "utter_screening_consent"),
    user("affirm"), *act("action_record_consent", FORM), ("loop", FORM), ask("q_safe_now"),
]


def answer(intent: str, question: str, value: str, next_question: Optional[str]) -> list[tuple]:
    steps = [user(intent), ("action", FORM), ("slot", question, value)]
    if next_question:
        return steps + [ask(next_question)]
    return steps + [ask(None), ("loop", None), ("action", "action_screening_result")]


FLOWS: dict[str, list[tuple]] = {
    "first contact and language": [
        user("greet"), *act("action_language_menu"),  # after "is it safe to write now?"
        user("change_language", language="LANG"), *act("action_change_language"),
        user("menu"), *act("utter_menu"),
    ],
    "awareness and more": [
        user("ask_trafficking_info"), *act("utter_awareness_trafficking"),
        user("more"), *act("action_more"),
        user("ask_job_offer"), *act("utter_awareness_job_offer"),
        user("ask_rights"), *act("utter_awareness_rights"),
        user("ask_smuggling_difference"), *act("utter_awareness_smuggling"),
        user("ask_safe_travel"), *act("utter_awareness_safe_travel"),
        user("worried_about_someone"), *act("utter_awareness_worried"),
        user("more"), *act("action_more"),
    ],
    "small talk and fallbacks": [
        user("greet"), *act("action_language_menu"),
        user("bot_challenge"), *act("utter_bot_challenge"),
        user("out_of_scope"), *act("utter_out_of_scope"),
        user("thank"), *act("utter_thanks"),
        user("subscribe"), *act("action_subscribe"),
        user("unsubscribe"), *act("action_unsubscribe"),
        user("skip"), *act("utter_menu"),
        user("stop"), *act("utter_stop_ok"),
        user("goodbye"), *act("utter_goodbye"),
    ],
    "services search, and a person": [
        user("find_services"), *act("action_find_services"), ("slot", "services_asking", "need"),
        user("skip"), *act("action_find_services"), ("slot", "services_asking", "place"),
        # a reply the model reads as out of scope is the place, while the place is asked
        user("out_of_scope"), *act("action_find_services"), ("slot", "services_asking", "place"),
        user("inform_location"), *act("action_find_services"), ("slot", "services_asking", None),
        user("more"), *act("action_more"),
        user("out_of_scope"), *act("utter_out_of_scope"),
        user("find_services", need="shelter"), *act("action_find_services"),
        ("slot", "services_asking", "place"),
        # a search left half-way does not capture what comes after another topic
        user("ask_rights"), *act("utter_awareness_rights"),
        user("out_of_scope"), *act("utter_out_of_scope"),
        user("request_human"), *act("action_request_human"),
    ],
    "screening to the end": [
        *START_QUESTIONS,
        *answer("affirm", "q_safe_now", "yes", "q_under_18"),
        *answer("deny", "q_under_18", "no", "q_free_to_leave"),
        *answer("deny", "q_free_to_leave", "no", "q_documents"),
        *answer("skip", "q_documents", "skipped", "q_threats"),
        *answer("affirm", "q_threats", "yes", "q_work_as_promised"),
        *answer("deny", "q_work_as_promised", "no", "q_debt"),
        *answer("affirm", "q_debt", "yes", None),
        user("affirm"), *act("action_answer_offer"),
    ],
    "a child's questions": [
        *START_QUESTIONS,
        *answer("affirm", "q_safe_now", "yes", "q_under_18"),
        *answer("affirm", "q_under_18", "yes", "q_child_school"),
        *answer("deny", "q_child_school", "no", "q_child_parents"),
        *answer("affirm", "q_child_parents", "yes", "q_child_travel"),
        *answer("deny", "q_child_travel", "no", "q_child_money"),
        *answer("deny", "q_child_money", "no", "q_threats"),
        *answer("deny", "q_threats", "no", None),
    ],
    "consent declined": [
        user("check_situation"), *act("action_explain_questions", "utter_screening_consent"),
        user("deny"), *act("action_record_consent", "utter_screening_declined"),
    ],
    "stop during the questions": [
        *START_QUESTIONS,
        *answer("affirm", "q_safe_now", "yes", "q_under_18"),
        user("stop"), *act("action_stop_screening"), ("loop", None),
    ],
    "other questions during the questions": [
        *START_QUESTIONS,
        user("ask_job_offer"), *act("utter_screening_reprompt", FORM), ("loop", FORM),
        *answer("affirm", "q_safe_now", "yes", "q_under_18"),
        user("menu"), *act("action_stop_screening"), ("loop", None),
    ],
    "a person asked for during the questions: paused, and resumed where they were": [
        *START_QUESTIONS,
        *answer("affirm", "q_safe_now", "yes", "q_under_18"),
        user("request_human"), *act("action_pause_screening"), ("loop", None),
        *act("action_request_human"),
        user("check_situation"), *act("action_explain_questions", "utter_screening_consent"),
        user("affirm"), *act("action_record_consent", FORM), ("loop", FORM), ask("q_under_18"),
    ],
    "services asked for during the questions: paused": [
        *START_QUESTIONS,
        user("find_services"), *act("action_pause_screening"), ("loop", None),
        *act("action_find_services"), ("slot", "services_asking", "need"),
    ],
    "emergency during the questions": [
        *START_QUESTIONS,
        user("emergency"), *act("action_emergency"), ("loop", None),
        user("affirm"), *act("action_answer_offer"),
    ],
    "quick exit during the questions": [
        *START_QUESTIONS,
        user("quick_exit"), *act("action_quick_exit"), ("loop", None),
    ],
    "emergency and leaving": [
        user("emergency"), *act("action_emergency"), ("loop", None),
        user("deny"), *act("action_answer_offer"),
        user("forget_me"), *act("action_forget_me"), ("loop", None),
    ],
    "quick exit": [
        user("ask_job_offer"), *act("utter_awareness_job_offer"),
        user("quick_exit"), *act("action_quick_exit"), ("loop", None),
    ],
}

# The first answer of a new conversation (actions/first_contact.py), written out; FLOWS get
# it added by ``first_contact``.
FIRST_CONTACT_FLOWS: dict[str, list[tuple]] = {
    "first contact: not safe now, then a later message as usual": [
        user("find_services"), *act("action_ask_safe_to_write"),
        user("deny"), *act("action_answer_safe_to_write"),
        user("ask_job_offer"), *act("utter_awareness_job_offer"),
    ],
    "first contact: another message answers the question and is answered": [
        user("greet"), *act("action_ask_safe_to_write"),
        user("ask_rights"), *act("utter_awareness_rights"),
    ],
}


def first_contact(flow: list[tuple]) -> list[tuple]:
    """``flow`` as a new conversation has it: its first message waits for "is it safe to
    write now?" and "yes" answers it as if just sent (the action returns the same user
    message again: here the same user step). A greeting gets the language menu from the
    action itself. A first message answered at once keeps the flow as it is."""
    first = flow[0]
    if first[0] != "user" or first[1] in ANSWERED_AT_ONCE:
        return flow
    exchange = [first, ("action", "action_ask_safe_to_write"),
                user("affirm"), ("action", "action_answer_safe_to_write")]
    if first[1] == "greet":
        following = next(i for i, step in enumerate(flow[1:], 1) if step[0] == "user")
        return exchange + flow[following:]
    return exchange + flow


_MARKUP = re.compile(r"\[([^\]]+)\](\([^)]*\)|\{[^}]*\})")


def _examples(language: str) -> dict[str, list[tuple[str, dict[str, str], str]]]:
    """intent -> [(text, {entity: value}, annotated text)] from data/nlu/<language>/."""
    result: dict[str, list[tuple[str, dict[str, str], str]]] = {}
    for path in sorted((PROJECT_ROOT / "data" / "nlu" / language).glob("*.yml")):
        for block in yaml.safe_load(path.read_text(encoding="utf-8")).get("nlu", []):
            if "intent" not in block:
                continue
            for line in block["examples"].splitlines():
                line = line.strip()
                if not line.startswith("- "):
                    continue
                raw = line[2:]
                entities = {}
                for match in _MARKUP.finditer(raw):
                    spec = match.group(2)
                    if spec.startswith("{"):
                        data = yaml.safe_load(spec)
                        entities[data["entity"]] = str(data.get("value", match.group(1)))
                    else:
                        entities[spec[1:-1]] = match.group(1)
                text = _MARKUP.sub(r"\1", raw)
                result.setdefault(block["intent"], []).append((text, entities, raw))
    return result


def _pick(
    examples: list[tuple[str, dict, str]], wanted: Optional[dict[str, str]], language: str
) -> tuple[str, dict, str]:
    """A deterministic, typical example: plain text of 2+ words, or with the wanted entities.

    An example with entity markup must be too short for language detection (its
    ``detected_language`` entity would overlap the markup). For Arabic, examples in Arabic
    script come first (the files also hold Arabizi and loans).
    """
    if wanted:
        fitting = [e for e in examples if e[1] == wanted and detect_language(e[0]) is None]
    else:
        fitting = [e for e in examples if not e[1] and len(e[0].split()) >= 2 and "/" not in e[0]]
        fitting = fitting or [e for e in examples if not e[1]]
        short = [e for e in examples if detect_language(e[0]) is None]
        fitting = fitting or [e for e in short if len(e[0].split()) >= 2] or short
    if not fitting:
        raise ValueError(f"no usable training example with entities {wanted}")
    if language == "ar":
        arabic = [e for e in fitting if count_letters(e[0])[1] > count_letters(e[0])[0] / 2]
        fitting = arabic or fitting
    return fitting[len(fitting) // 2]


def build(language: str) -> str:
    examples = _examples(language)
    stories: list[dict[str, Any]] = []
    flows = {title: first_contact(flow) for title, flow in FLOWS.items()} | FIRST_CONTACT_FLOWS
    for title, flow in flows.items():
        steps: list[dict[str, Any]] = []
        for step in flow:
            if step[0] == "user":
                intent, entities = step[1], step[2]
                wanted = {k: (language if v == "LANG" else v) for k, v in (entities or {}).items()}
                text, found, annotated = _pick(examples[intent], wanted or None, language)
                detected = detect_language(text)  # default threshold, as in the model
                if detected:  # the whole message carries the detected language
                    annotated = f'[{text}]{{"entity": "detected_language", "value": "{detected}"}}'
                steps.append({"user": annotated, "intent": intent})
            elif step[0] == "action":
                steps.append({"action": step[1]})
            elif step[0] == "loop":
                steps.append({"active_loop": step[1]})
            else:
                steps.append({"slot_was_set": [{step[1]: step[2]}]})
        stories.append({"story": f"{title} ({language})", "steps": steps})
    header = (
        f"# GENERATED by `python -m tests.utils.stories`: every flow in {language}, with the\n"
        f"# user's words taken from data/nlu/{language}/. Run by tests/test_stories.py with\n"
        f"# `rasa test core --fail-on-prediction-errors`.\n"
    )
    body = yaml.safe_dump({"version": "3.1", "stories": stories}, allow_unicode=True,
                          sort_keys=False, width=10_000)
    return header + body


def write_all(directory: Path = STORIES_DIR) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for language in LANGUAGES:
        (directory / f"test_{language}.yml").write_text(build(language), encoding="utf-8")


if __name__ == "__main__":
    write_all()
