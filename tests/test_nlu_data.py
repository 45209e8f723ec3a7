"""The NLU training data: the intents other parts depend on, and enough examples of each."""

from __future__ import annotations

from collections import Counter

import pytest
import yaml

from bot.settings import PROJECT_ROOT
from tests.utils.stories import LANGUAGES

REQUIRED_INTENTS = {
    "greet", "goodbye", "affirm", "deny", "thank", "bot_challenge", "skip", "ask_trafficking_info",
    "ask_job_offer", "ask_rights", "ask_smuggling_difference", "ask_safe_travel", "find_services",
    "inform_location", "request_human", "emergency", "quick_exit", "forget_me", "change_language",
    "worried_about_someone", "check_situation", "subscribe", "unsubscribe", "out_of_scope",
}
CONFUSABLE = {"emergency", "find_services", "quick_exit", "goodbye", "unsubscribe",
              "ask_job_offer", "check_situation", "worried_about_someone"}
MINIMUM = {"en": 25, "fr": 15, "ar": 15, "es": 15}
MINIMUM_CONFUSABLE = {"en": 40, "fr": 25, "ar": 25, "es": 25}


def counts(language: str) -> Counter:
    result: Counter = Counter()
    for path in (PROJECT_ROOT / "data" / "nlu" / language).glob("*.yml"):
        for block in yaml.safe_load(path.read_text(encoding="utf-8"))["nlu"]:
            if "intent" in block:
                result[block["intent"]] += sum(
                    1 for line in block["examples"].splitlines() if line.strip().startswith("- ")
                )
    return result


def test_the_domain_has_every_required_intent(domain):
    assert REQUIRED_INTENTS <= set(domain["intents"])


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_intent_has_enough_examples(language, domain):
    found = counts(language)
    assert set(found) == set(domain["intents"]), set(domain["intents"]) ^ set(found)
    for intent, number in found.items():
        needed = (MINIMUM_CONFUSABLE if intent in CONFUSABLE else MINIMUM)[language]
        assert number >= needed, f"{language}: {intent} has {number} examples, needs {needed}"


def test_arabic_data_has_arabic_script_and_latin_letters():
    from bot.language import count_letters

    texts = []
    for path in (PROJECT_ROOT / "data" / "nlu" / "ar").glob("*.yml"):
        for block in yaml.safe_load(path.read_text(encoding="utf-8"))["nlu"]:
            texts += [line.strip()[2:] for line in block.get("examples", "").splitlines()
                      if line.strip().startswith("- ")]
    script = sum(1 for t in texts if count_letters(t)[1] > 0)
    latin = sum(1 for t in texts if count_letters(t)[1] == 0)
    assert script > 0.6 * len(texts) and latin > 0.1 * len(texts)
