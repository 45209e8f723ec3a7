"""NLU on examples never trained on: the development set and the independent test set.

``tests/nlu_dev/`` (formerly the held-out set) is a development set: it was used to find weak
intents and to choose the urgency thresholds. ``tests/nlu_test/`` was written by helpers who
saw only ``tests/nlu_test/BRIEF.md`` (no training data) and is used for nothing but measuring.
Both print their tables (``helpline nlu report`` prints the same with the confusions).

The floors on the test set sit below what the model reached when it was written (see the
README's table) so that a retraining's normal wobble passes and a real regression fails.
"""

from __future__ import annotations

from collections import Counter

import pytest

from bot.nlu_report import LANGUAGES, SETS, format_report, load_set, read_examples, score
from bot.settings import PROJECT_ROOT

DEV_MACRO_F1_FLOOR = 0.84
INTENT_F1_FLOOR = 0.40
# The pipeline and the thresholds were chosen for recall 1.0 of emergency and quick exit on
# the development set; trainings from scratch differ by a message (one French emergency in
# eight was missed in some benchmark trainings of the same data), so the test allows one.
DEV_SAFETY_RECALL_FLOOR = 0.85
# The test set: measured, never tuned on. Floors about 0.05 under the lowest language reached
# (README), so that a retraining's wobble passes and a real regression fails.
TEST_ACCURACY_FLOOR = 0.82
TEST_EMERGENCY_RECALL_FLOOR = 0.80
TEST_QUICK_EXIT_RECALL_FLOOR = 0.80
FALSE_URGENT_CEILING = 0.05


def _training_texts() -> set[str]:
    from bot.nlu.urgency import read_corpus

    texts = {e.text.strip().lower() for path in (PROJECT_ROOT / "data" / "nlu").rglob("*.yml")
             if path.name != "lookups.yml" for e in read_examples(path)}
    return texts | {text.strip().lower() for text, _, _ in read_corpus()}


def test_the_development_set_is_not_in_the_training_data():
    training = _training_texts()
    for language, examples in load_set("dev").items():
        overlap = [e.text for e in examples if e.text.strip().lower() in training]
        assert not overlap, f"dev {language}: also in the training data: {overlap[:5]}"


def _short(text: str) -> bool:
    return len(text.split()) <= 4


def test_the_test_set_was_not_taken_from_the_training_data():
    """Independent writers meet the training data on common short messages ("yes", "exit",
    "thank you so much") and on a few canonical questions ("can my employer keep my
    passport"); copying would show as dozens."""
    training = _training_texts()
    for language, examples in load_set("test").items():
        shared = [e.text for e in examples if e.text.strip().lower() in training]
        long_shared = [t for t in shared if not _short(t)]
        assert len(shared) <= 0.25 * len(examples), f"test {language}: {len(shared)} shared"
        assert len(long_shared) <= 10, f"test {language}: {long_shared}"


def test_the_test_set_is_independent_of_the_development_set():
    dev = {e.text.strip().lower() for examples in load_set("dev").values() for e in examples}
    for language, examples in load_set("test").items():
        shared = [e.text for e in examples if e.text.strip().lower() in dev]
        assert all(_short(t) for t in shared), f"test {language}: also in dev: {shared}"


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_test_set_covers_every_intent_with_enough_messages(domain, language):
    examples = read_examples(SETS["test"] / f"{language}.yml")
    assert len(examples) >= 120, f"{language}: {len(examples)} messages"
    counts = Counter(e.intent for e in examples)
    assert set(counts) == set(domain["intents"]), set(domain["intents"]) ^ set(counts)
    assert counts["emergency"] >= 30 and counts["quick_exit"] >= 20, counts


@pytest.fixture(scope="module")
def predictions(assistant):
    parsed = {}
    for name in SETS:
        for language, examples in load_set(name).items():
            guesses = [assistant.parse(e.text)["intent"]["name"] for e in examples]
            parsed[name, language] = score(examples, guesses)
    return parsed


@pytest.mark.model
@pytest.mark.parametrize("language", LANGUAGES)
def test_development_set(predictions, language, capsys):
    scores = predictions["dev", language]
    with capsys.disabled():
        print("\n" + format_report({"dev": {language: scores}}, misses=True))
    assert scores.macro_f1 >= DEV_MACRO_F1_FLOOR, f"{language}: macro F1 {scores.macro_f1:.3f}"
    weak = {i: round(s[2], 2) for i, s in scores.per_intent.items() if s[2] < INTENT_F1_FLOOR}
    assert not weak, f"{language}: intents under F1 {INTENT_F1_FLOOR}: {weak}"
    for intent in ("emergency", "quick_exit"):
        missed = [m for m in scores.misses if m[1] == intent
                  and not (intent == "quick_exit" and m[2] == "forget_me")]
        assert scores.safety_recall[intent] >= DEV_SAFETY_RECALL_FLOOR, (
            f"{language}: {intent} missed: {missed}")


@pytest.mark.model
@pytest.mark.parametrize("language", LANGUAGES)
def test_independent_test_set(predictions, language, capsys):
    scores = predictions["test", language]
    with capsys.disabled():
        print("\n" + format_report({"test": {language: scores}}))
    recall = scores.safety_recall
    assert scores.accuracy >= TEST_ACCURACY_FLOOR, f"{language}: accuracy {scores.accuracy:.3f}"
    assert recall["emergency"] >= TEST_EMERGENCY_RECALL_FLOOR, (
        f"{language}: emergency recall {recall['emergency']:.3f}: "
        f"{[m for m in scores.misses if m[1] == 'emergency']}")
    assert recall["quick_exit"] >= TEST_QUICK_EXIT_RECALL_FLOOR, (
        f"{language}: quick exit recall {recall['quick_exit']:.3f}: "
        f"{[m for m in scores.misses if m[1] == 'quick_exit']}")
    assert scores.urgent_false_positive_rate <= FALSE_URGENT_CEILING, (
        f"{language}: {scores.urgent_false_positive_rate:.3f} of the calm messages read as "
        "urgent or exit")
