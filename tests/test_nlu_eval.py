"""NLU on held-out examples (tests/nlu_holdout/, never trained on): per-intent F1 per language.

Prints a table; asserts a floor per language and per intent, and recall 1.0 for emergency and
quick_exit (a missed emergency or a missed exit is the costliest mistake).
"""

from __future__ import annotations

from collections import Counter, defaultdict

import pytest
import yaml

from bot.settings import PROJECT_ROOT

HOLDOUT = PROJECT_ROOT / "tests" / "nlu_holdout"
LANGUAGES = ("en", "fr", "ar", "es")
MACRO_F1_FLOOR = 0.85
INTENT_F1_FLOOR = 0.40
MUST_NOT_MISS = ("emergency", "quick_exit")


def holdout(language: str) -> list[tuple[str, str]]:
    """(text, intent) pairs, entity markup removed."""
    import re

    data = yaml.safe_load((HOLDOUT / f"{language}.yml").read_text(encoding="utf-8"))
    pairs = []
    for block in data["nlu"]:
        for line in block["examples"].splitlines():
            line = line.strip()
            if line.startswith("- "):
                text = re.sub(r"\[([^\]]+)\](\([^)]*\)|\{[^}]*\})", r"\1", line[2:])
                pairs.append((text, block["intent"]))
    return pairs


def f1_scores(pairs: list[tuple[str, str]]) -> dict[str, tuple[float, float, float, int]]:
    """intent -> (precision, recall, f1, support) over (expected, predicted) pairs."""
    tp, fp, fn, support = Counter(), Counter(), Counter(), Counter()
    for expected, predicted in pairs:
        support[expected] += 1
        if expected == predicted:
            tp[expected] += 1
        else:
            fn[expected] += 1
            fp[predicted] += 1
    scores = {}
    for intent in support:
        p = tp[intent] / (tp[intent] + fp[intent]) if tp[intent] + fp[intent] else 0.0
        r = tp[intent] / support[intent]
        f = 2 * p * r / (p + r) if p + r else 0.0
        scores[intent] = (p, r, f, support[intent])
    return scores


@pytest.fixture(scope="module")
def predictions(assistant):
    results = defaultdict(list)
    misses = defaultdict(list)
    for language in LANGUAGES:
        for text, intent in holdout(language):
            predicted = assistant.parse(text)["intent"]["name"]
            results[language].append((intent, predicted))
            if predicted != intent:
                misses[language].append((text, intent, predicted))
    return results, misses


def test_holdout_sets_are_not_in_the_training_data():
    from rasa.shared.nlu.training_data.loading import load_data

    training = {m.get("text").strip().lower() for m in load_data(str(PROJECT_ROOT / "data" / "nlu")).nlu_examples}
    for language in LANGUAGES:
        overlap = [t for t, _ in holdout(language) if t.strip().lower() in training]
        assert not overlap, f"{language}: held-out examples also in training: {overlap[:5]}"


@pytest.mark.model
@pytest.mark.parametrize("language", LANGUAGES)
def test_intent_f1_per_language(predictions, language, capsys):
    results, misses = predictions
    scores = f1_scores(results[language])
    macro = sum(s[2] for s in scores.values()) / len(scores)
    with capsys.disabled():
        print(f"\nNLU held-out, {language}: macro F1 {macro:.3f} over {len(results[language])} examples")
        for intent, (p, r, f, n) in sorted(scores.items()):
            print(f"  {intent:28s} P {p:.2f}  R {r:.2f}  F1 {f:.2f}  n={n}")
        for text, expected, predicted in misses[language]:
            print(f"  miss: {text!r}: {expected} -> {predicted}")
    assert macro >= MACRO_F1_FLOOR, f"{language}: macro F1 {macro:.3f} < {MACRO_F1_FLOOR}"
    weak = {i: round(s[2], 2) for i, s in scores.items() if s[2] < INTENT_F1_FLOOR}
    assert not weak, f"{language}: intents under F1 {INTENT_F1_FLOOR}: {weak}"
    for intent in MUST_NOT_MISS:
        assert scores[intent][1] == 1.0, (
            f"{language}: {intent} recall {scores[intent][1]:.2f}: "
            f"{[m for m in misses[language] if m[1] == intent]}"
        )
