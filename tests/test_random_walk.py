"""Seeded random walks through the trained assistant (500 conversations).

Random intents in random order, random skips and stops, emergencies and quick exits at random
points. In every conversation: its first message gets "is it safe to write now?" unless it
is an emergency or a way out (actions/first_contact.py); no screening question before consent
was affirmed (and only while that consent is open); an emergency is always answered with the
emergency contacts first; a quick exit always resets the conversation.
"""

from __future__ import annotations

import random
import time

import pytest

from actions.first_contact import ANSWERED_AT_ONCE
from bot.triage import QUESTIONS

pytestmark = pytest.mark.model

SEED = 20261125
CONVERSATIONS = 500
INTENTS = [
    "greet", "goodbye", "affirm", "deny", "thank", "bot_challenge", "skip", "more", "menu", "stop",
    "out_of_scope", "ask_trafficking_info", "ask_job_offer", "ask_rights", "ask_smuggling_difference",
    "ask_safe_travel", "worried_about_someone", "find_services", "inform_location", "request_human",
    "emergency", "quick_exit", "forget_me", "change_language", "check_situation", "subscribe",
    "unsubscribe", "nlu_fallback",
]
ANSWERS = ["affirm", "deny", "skip"]
CLOSERS = {"utter_triage_low", "utter_triage_medium", "utter_triage_high", "utter_triage_child",
           "utter_screening_stopped", "utter_emergency_contacts", "utter_quick_exit",
           "utter_forget_me_done"}


def next_message(rng: random.Random, last_responses: list[str]) -> str:
    """A user message: answers are likelier after a question, check_situation is common."""
    asked = any(r and (r.startswith("utter_ask_q_") or r == "utter_screening_consent")
                for r in last_responses)
    roll = rng.random()
    if asked and roll < 0.7:
        return "/" + rng.choice(ANSWERS)
    if roll < 0.15:
        return "/check_situation"
    if roll < 0.22:
        return "/emergency"
    if roll < 0.27:
        return "/quick_exit"
    if roll < 0.30:
        return '/change_language{"language": "%s"}' % rng.choice(["en", "fr", "ar", "es"])
    return "/" + rng.choice(INTENTS)


def test_random_walks_keep_the_safety_promises(assistant, capsys):
    rng = random.Random(SEED)
    turns = 0
    started = time.monotonic()
    for number in range(CONVERSATIONS):
        sender = f"walk-{SEED}-{number}"
        consent_open = False
        new = True  # the next message starts a conversation
        last: list[str] = []
        for _ in range(rng.randint(4, 12)):
            message = next_message(rng, last)
            turn = assistant.say(sender, message)
            turns += 1
            responses = [r or "" for r in turn.responses]
            where = f"conversation {number}, after {message!r}: {responses}"
            affirmed_consent = message == "/affirm" and last and last[-1] == "utter_screening_consent"

            intent = message[1:].split("{")[0]
            if new:
                assert (responses == ["utter_first_contact"]) == (intent not in ANSWERED_AT_ONCE), \
                    f"first message of a conversation in {where}"
            new = intent in ("quick_exit", "forget_me")  # the conversation is erased
            if affirmed_consent:
                consent_open = True
            if any(r.startswith("utter_ask_q_") for r in responses):
                assert consent_open, f"question without consent in {where}"
            if message == "/emergency":
                assert responses and responses[0] == "utter_emergency_contacts", where
            if message == "/quick_exit":
                assert responses == ["utter_quick_exit"], where
                assert turn.active_loop is None, where
                for slot in (*QUESTIONS, "screening_consent", "offer", "topic", "triage_level"):
                    assert turn.slots.get(slot) is None, f"{slot} survived a quick exit in {where}"
                assert turn.slots.get("language") == "en", where
            if CLOSERS & set(responses) or turn.active_loop is None:
                consent_open = False
            assert responses, f"no reply (dead end) in {where}"
            last = responses
    elapsed = time.monotonic() - started
    with capsys.disabled():
        print(f"\nrandom walk: {CONVERSATIONS} conversations, {turns} turns in {elapsed:.0f} s "
              f"({1000 * elapsed / turns:.1f} ms per turn)")
    assert turns >= CONVERSATIONS * 4
