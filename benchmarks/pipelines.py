"""Compares NLU pipelines: training time, model size, memory, and scores on the dev set.

Usage:
    .venv/bin/python -m benchmarks.pipelines [--only NAME ...] [--folds K] [--out FILE]

Each configuration is ``bot/config.yml`` (``current``) with its pipeline changed as named in
``VARIANTS``; it is trained on ``data/nlu/`` (NLU only, in a temporary folder) and scored on the
development set (``tests/nlu_dev/``) with the same code as ``helpline nlu report``. With
``--folds K`` each configuration is also cross-validated on the training data (K trainings
more: slow). The choice rule: the best mean macro F1 among the configurations whose recall of
``emergency`` and ``quick_exit`` is 1.0 on the development set in every language. The test
set is never read here.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import tarfile
import tempfile
import time
from pathlib import Path

import yaml

# Rasa's training cache would let a configuration reuse another run's components and report
# the cache's time instead of a training's.
os.environ.setdefault("RASA_MAX_CACHE_SIZE", "0")

from bot.nlu_report import LANGUAGES, evaluate, model_parser, read_examples, score
from bot.settings import PROJECT_ROOT

BASE_CONFIG = PROJECT_ROOT / "bot" / "config.yml"


def _component(pipeline, name):
    return next(c for c in pipeline if c["name"] == name)


def _diet(**changes):
    def change(pipeline):
        _component(pipeline, "DIETClassifier").update(changes)
    return change


def _chars(low, high):
    def change(pipeline):
        chars = next(c for c in pipeline if c.get("analyzer") == "char_wb")
        chars.update({"min_ngram": low, "max_ngram": high})
    return change


def _without_urgency(pipeline):
    pipeline[:] = [c for c in pipeline if c["name"] != "bot.nlu.UrgencyDetector"]


def _linear(pipeline):
    """No DIET: a logistic regression for intents and a CRF for entities (seconds to train)."""
    at = pipeline.index(_component(pipeline, "DIETClassifier"))
    pipeline[at:at + 1] = [{"name": "LogisticRegressionClassifier", "max_iter": 1000},
                           {"name": "CRFEntityExtractor"}]


def _diet_intents_crf_entities(pipeline):
    """DIET for intents only; a CRF for entities."""
    diet = _component(pipeline, "DIETClassifier")
    diet["entity_recognition"] = False
    at = pipeline.index(diet)
    pipeline.insert(at + 1, {"name": "CRFEntityExtractor"})


VARIANTS = {
    "current": lambda pipeline: None,
    "no-urgency-detector": _without_urgency,
    "epochs-30": _diet(epochs=30),
    "epochs-60": _diet(epochs=60),
    "epochs-100": _diet(epochs=100),
    "chars-1-5": _chars(1, 5),
    "chars-2-5": _chars(2, 5),
    "no-transformer": _diet(number_of_transformer_layers=0),
    "no-transformer-epochs-100": _diet(number_of_transformer_layers=0, epochs=100),
    "transformer-256": _diet(transformer_size=256),
    "chars-max-10000": lambda pipeline: next(
        c for c in pipeline if c.get("analyzer") == "char_wb").update(max_features=10000),
    "batch-128-512": _diet(batch_size=[128, 512]),
    "logistic-regression-crf": _linear,
    "diet-intents-crf-entities": _diet_intents_crf_entities,
}


def config_for(name: str) -> dict:
    config = yaml.safe_load(BASE_CONFIG.read_text(encoding="utf-8"))
    config = copy.deepcopy(config)
    VARIANTS[name](config["pipeline"])
    config.pop("policies", None)
    return config


def train(config: dict, data: Path, folder: Path) -> tuple[Path, float]:
    from rasa.model_training import train_nlu

    folder.mkdir(parents=True, exist_ok=True)
    config_file = folder / "config.yml"
    config_file.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    started = time.perf_counter()
    model = train_nlu(str(config_file), str(data), str(folder), fixed_model_name="nlu")
    return Path(model), time.perf_counter() - started


def cross_validate(config: dict, folds: int, folder: Path) -> dict:
    """Macro F1 and safety recall over K folds of the training data (all languages)."""
    import random

    examples = [e for path in sorted((PROJECT_ROOT / "data" / "nlu").rglob("*.yml"))
                if path.name != "lookups.yml" for e in read_examples(path)]
    random.Random(7).shuffle(examples)
    expected, predicted = [], []
    for k in range(folds):
        held = examples[k::folds]
        kept = [e for i, e in enumerate(examples) if i % folds != k]
        data = folder / f"fold{k}.yml"
        blocks = {}
        for e in kept:
            blocks.setdefault(e.intent, []).append(e.text)
        data.write_text(yaml.safe_dump(
            {"version": "3.1", "nlu": [{"intent": i, "examples": "".join(
                f"- {t}\n" for t in texts)} for i, texts in blocks.items()]},
            allow_unicode=True), encoding="utf-8")
        model, _ = train(config, data, folder / f"fold{k}")
        expected += held
        predicted += [parsed[0] for parsed in model_parser(model)([e.text for e in held])]
    s = score(expected, predicted)
    return {"macro_f1": round(s.macro_f1, 4), "accuracy": round(s.accuracy, 4),
            **{f"recall_{i}": round(r, 4) for i, r in s.safety_recall.items()}}


_SERVE = """
import asyncio, logging, resource, sys, time
from rasa.core.agent import Agent
from rasa.utils.log_utils import configure_structlog
configure_structlog(logging.WARNING)
agent = Agent.load(sys.argv[1])
loop = asyncio.new_event_loop()
texts = ["hello", "they took my passport", "HELP ME PLS", "je suis a Sebha", "ana fi tarablos"] * 40
started = time.perf_counter()
for text in texts:
    loop.run_until_complete(agent.parse_message(text))
per = (time.perf_counter() - started) / len(texts) * 1000
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, per)
"""


def serving(model: Path) -> tuple[float, float]:
    """Peak memory (MiB) of a process that loads the model and parses 200 messages, and the
    mean parse time (ms)."""
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", _SERVE, str(model)], capture_output=True,
                            text=True, check=True, cwd=PROJECT_ROOT)
    memory, per = result.stdout.split()[-2:]
    return float(memory), float(per)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", choices=list(VARIANTS))
    parser.add_argument("--folds", type=int, default=0)
    parser.add_argument("--out", help="append each result as a JSON line to this file")
    args = parser.parse_args()
    for name in args.only or list(VARIANTS):
        config = config_for(name)
        with tempfile.TemporaryDirectory(prefix="helpline-pipeline-") as tmp:
            folder = Path(tmp)
            model, seconds = train(config, PROJECT_ROOT / "data" / "nlu", folder)
            size = model.stat().st_size
            with tarfile.open(model) as archive:
                unpacked = sum(m.size for m in archive.getmembers())
            dev = evaluate(model_parser(model), ["dev"])["dev"]
            memory, per_parse = serving(model)
            result = {
                "name": name, "train_seconds": round(seconds, 1),
                "model_mb": round(size / 2**20, 1), "unpacked_mb": round(unpacked / 2**20, 1),
                "serving_peak_mib": round(memory), "parse_ms": round(per_parse, 1),
                "dev": {lang: {"accuracy": round(s.accuracy, 3), "macro_f1": round(s.macro_f1, 3),
                               **{f"recall_{i}": round(r, 3) for i, r in s.safety_recall.items()},
                               "false_urgent": round(s.urgent_false_positive_rate, 3)}
                        for lang, s in dev.items()},
            }
            result["mean_macro_f1"] = round(
                sum(dev[lang].macro_f1 for lang in LANGUAGES) / len(LANGUAGES), 4)
            result["safe"] = all(dev[lang].safety_recall.get(i) == 1.0
                                 for lang in LANGUAGES for i in ("emergency", "quick_exit"))
            if args.folds:
                result["cross_validation"] = cross_validate(config, args.folds, folder)
        line = json.dumps(result, ensure_ascii=False)
        print(line, flush=True)
        if args.out:
            with open(args.out, "a", encoding="utf-8") as out:
                out.write(line + "\n")


if __name__ == "__main__":
    main()
