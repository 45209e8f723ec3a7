"""The urgency detector alone: cross-validation, and thresholds chosen on the development set.

Usage:
    .venv/bin/python -m benchmarks.urgency [--folds 5] [--config NAME ...]

For each configuration: stratified k-fold cross-validation over the training rows (the
corpus ``data/urgency/`` and the intent examples of ``data/nlu/``), then a model trained on
all of them scored on the development set (``tests/nlu_dev/``): for a range of thresholds,
the recall of urgent and exit messages and the share of the other messages it would turn
into an emergency or an exit. It prints the thresholds chosen: for each label the lowest
whose false alarms on the development set's calm messages stay at or under 1 % (urgent) or
0.25 % (exit: a false exit erases the conversation). The test set is never read here.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from bot.nlu.urgency import LABELS, UrgencyConfig, UrgencyModel, label_of_intent, read_corpus, training_rows
from bot.nlu_report import load_set, read_examples
from bot.settings import PROJECT_ROOT

THRESHOLDS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
# The rule: the lowest threshold (the most urgent messages caught) whose false alarms on the
# development set's calm messages stay at or under this share. A false exit erases the
# person's conversation; a false emergency costs one message with the emergency contacts.
MAX_FALSE_ALARMS = {"urgent": 0.01, "exit": 0.0025}

CONFIGS = {
    "default": UrgencyConfig(),
    "no-joined": UrgencyConfig(joined_ngrams=(0, 0)),
    "chars-1-4": UrgencyConfig(char_ngrams=(1, 4)),
    "chars-2-6": UrgencyConfig(char_ngrams=(2, 6)),
    "c-1": UrgencyConfig(c=1.0),
    "c-100": UrgencyConfig(c=100.0),
}


def intent_examples() -> list[tuple[str, str]]:
    rows = []
    for path in sorted((PROJECT_ROOT / "data" / "nlu").rglob("*.yml")):
        if path.name == "lookups.yml":
            continue
        rows += [(e.text, e.intent) for e in read_examples(path)]
    return rows


def cross_validate(config: UrgencyConfig, texts, labels, folds: int) -> dict:
    from sklearn.model_selection import StratifiedKFold

    texts, labels = np.array(texts, dtype=object), np.array(labels)
    predicted = np.empty(len(texts), dtype=object)
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=7).split(texts, labels):
        model = UrgencyModel(config).fit(list(texts[train]), list(labels[train]))
        probabilities = model.probabilities(list(texts[test]))
        predicted[test] = [LABELS[i] for i in probabilities.argmax(axis=1)]
    result = {}
    for label in ("urgent", "exit"):
        mask = labels == label
        result[f"{label} recall"] = float((predicted[mask] == label).mean())
    calm = labels == "neither"
    result["false alarms"] = float((predicted[calm] != "neither").mean())
    return result


def sweep(model: UrgencyModel) -> None:
    dev = [e for examples in load_set("dev").values() for e in examples]
    probabilities = model.probabilities([e.text for e in dev])
    truth = np.array([label_of_intent(e.intent) for e in dev])
    urgent_p, exit_p = probabilities[:, 1], probabilities[:, 2]
    print(f"  development set: {len(dev)} messages, {int((truth == 'urgent').sum())} urgent, "
          f"{int((truth == 'exit').sum())} exit")
    print("  threshold  urgent recall  exit recall  false urgent  false exit")
    for threshold in THRESHOLDS:
        urgent_hit = urgent_p >= threshold
        exit_hit = exit_p >= threshold
        print(f"  {threshold:9.2f}  {urgent_hit[truth == 'urgent'].mean():13.3f}  "
              f"{exit_hit[truth == 'exit'].mean():11.3f}  "
              f"{urgent_hit[truth == 'neither'].mean():12.3f}  "
              f"{exit_hit[truth == 'neither'].mean():10.3f}")
    for index, label in ((1, "urgent"), (2, "exit")):
        lowest = probabilities[truth == label, index].min()
        print(f"  lowest {label} probability of a development {label} message: {lowest:.3f}")
        calm = probabilities[truth == "neither", index]
        cap = MAX_FALSE_ALARMS[label]
        chosen = next((t for t in THRESHOLDS if (calm >= t).mean() <= cap), None)
        print(f"  chosen {label} threshold (the lowest with at most {cap:.2%} false alarms): "
              f"{chosen}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--config", action="append", choices=list(CONFIGS))
    args = parser.parse_args()
    corpus = read_corpus()
    texts, labels = training_rows(intent_examples(), corpus)
    counts = {label: labels.count(label) for label in LABELS}
    print(f"training rows: {len(texts)} {counts} (corpus {len(corpus)})")
    for name in args.config or list(CONFIGS):
        config = CONFIGS[name]
        started = time.perf_counter()
        cv = cross_validate(config, texts, labels, args.folds)
        model = UrgencyModel(config).fit(texts, labels)
        seconds = time.perf_counter() - started
        print(f"\n{name}: {config.as_dict()}")
        print("  cross-validation: " + ", ".join(f"{k} {v:.3f}" for k, v in cv.items())
              + f" ({seconds:.1f} s with the final fit)")
        sweep(model)


if __name__ == "__main__":
    main()
