"""How well the assistant understands people: scores of a trained model on labelled examples.

The examples are Rasa NLU YAML files, one per language: the development set
(``tests/nlu_dev/``, used to choose thresholds and to find weak intents) and the independent
test set (``tests/nlu_test/``, written without seeing the training data and never used to
choose anything). ``helpline nlu report`` prints, per language and set: accuracy, macro F1,
precision and recall per intent, the most frequent confusions, the recall of the intents
that must not be missed, the share of the marked places found as place entities, and the
urgency detector's own recall and false alarms.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import yaml

from bot.settings import PROJECT_ROOT

LANGUAGES = ("en", "fr", "ar", "es")
SETS = {"dev": PROJECT_ROOT / "tests" / "nlu_dev", "test": PROJECT_ROOT / "tests" / "nlu_test"}
# The intents whose recall is reported on its own: missing one of these costs the most.
SAFETY_INTENTS = ("emergency", "quick_exit", "forget_me", "request_human")
# A quick exit read as forget-me still erases at once (without the neutral screen), so for the
# quick exit's safety recall either counts.
ERASING = ("quick_exit", "forget_me")
URGENT = ("emergency", "quick_exit")

_MARKUP = re.compile(r"\[([^\]]+)\](\([^)]*\)|\{[^}]*\})")
_PLACE = re.compile(r"\[([^\]]+)\]\((place)\)|\[([^\]]+)\]\{\"entity\": \"place\"[^}]*\}")


class ExamplesError(ValueError):
    """An examples file that cannot be read, naming the file and what is wrong."""


@dataclass(frozen=True)
class Example:
    text: str
    intent: str
    places: Tuple[str, ...] = ()


def read_examples(path: Path) -> List[Example]:
    """The examples of one Rasa NLU YAML file, entity markup removed (places kept aside).

    Raises:
        ExamplesError: the file is missing, is not NLU YAML, or holds an empty example.
    """
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ExamplesError(f"{path}: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("nlu"), list):
        raise ExamplesError(f"{path}: not Rasa NLU data (no 'nlu' list)")
    examples: List[Example] = []
    for block in data["nlu"]:
        if not isinstance(block, dict) or "intent" not in block:
            continue  # lookups, synonyms, regexes
        for line in str(block.get("examples") or "").splitlines():
            line = line.strip()
            if not line.startswith("- "):
                continue
            raw = line[2:].strip()
            places = tuple(m.group(1) or m.group(3) for m in _PLACE.finditer(raw))
            text = _MARKUP.sub(r"\1", raw).strip()
            if not text:
                raise ExamplesError(f"{path}: an empty example under {block['intent']}")
            examples.append(Example(text, str(block["intent"]), places))
    return examples


def load_set(name: str, languages: Sequence[str] = LANGUAGES) -> Dict[str, List[Example]]:
    """language -> examples of the named set (``dev`` or ``test``).

    Raises:
        ExamplesError: an unknown set name or a missing file.
    """
    if name not in SETS:
        raise ExamplesError(f"unknown set {name!r}: choose from {', '.join(SETS)}")
    return {language: read_examples(SETS[name] / f"{language}.yml") for language in languages}


@dataclass
class Scores:
    """Scores of one language on one set."""

    n: int
    accuracy: float
    macro_f1: float
    per_intent: Dict[str, Tuple[float, float, float, int]]  # precision, recall, F1, support
    confusions: List[Tuple[str, str, int]]  # expected, predicted, count; most frequent first
    safety_recall: Dict[str, float]
    urgent_false_positive_rate: float  # non-urgent examples read as emergency or quick exit
    misses: List[Tuple[str, str, str]] = field(default_factory=list)  # text, expected, predicted
    # Of the places marked in the examples, the share found as a place entity (None: no
    # places marked, or no entities given).
    place_recall: Optional[float] = None
    # The urgency detector's own decisions (before the keywords and the intent model):
    # recall of urgent among the emergencies, of exit among the quick exits, and the share
    # of calm messages it called urgent or exit. None when the parser gave no decisions.
    detector: Optional[Dict[str, float]] = None

    def as_dict(self) -> dict:
        return {
            "n": self.n, "accuracy": round(self.accuracy, 4), "macro_f1": round(self.macro_f1, 4),
            "per_intent": {i: {"precision": round(p, 4), "recall": round(r, 4),
                               "f1": round(f, 4), "support": s}
                           for i, (p, r, f, s) in sorted(self.per_intent.items())},
            "confusions": [list(c) for c in self.confusions],
            "safety_recall": {i: round(r, 4) for i, r in self.safety_recall.items()},
            "urgent_false_positive_rate": round(self.urgent_false_positive_rate, 4),
            "place_recall": None if self.place_recall is None else round(self.place_recall, 4),
            "detector": None if self.detector is None else {
                k: round(v, 4) for k, v in self.detector.items()},
        }


def _same_place(marked: str, found: Iterable[str]) -> bool:
    from bot.keywords import normalise

    marked = normalise(marked)
    return any(marked and (marked in normalise(f) or normalise(f) in marked)
               for f in found if normalise(f))


def detector_scores(examples: Sequence[Example], decisions: Sequence[str]) -> Dict[str, float]:
    """The urgency detector's recall and false alarms from its decisions per example."""
    def share(selected, wanted):
        chosen = [d for e, d in zip(examples, decisions) if selected(e)]
        return sum(d in wanted for d in chosen) / len(chosen) if chosen else float("nan")

    return {
        "urgent_recall": share(lambda e: e.intent == "emergency", ("urgent",)),
        "exit_recall": share(lambda e: e.intent == "quick_exit", ("exit",)),
        "false_alarms": share(lambda e: e.intent not in URGENT, ("urgent", "exit")),
    }


def score(examples: Sequence[Example], predicted: Sequence[str],
          places: Optional[Sequence[Sequence[str]]] = None,
          decisions: Optional[Sequence[str]] = None) -> Scores:
    """Scores ``predicted`` intents against the examples' labels.

    Precision and F1 are computed over the intents that have examples; a prediction of an
    intent without examples counts against precision of nothing but lowers recall of the
    expected one. ``places``, when given, are the place entities found in each example.
    """
    if len(examples) != len(predicted):
        raise ValueError(f"{len(examples)} examples but {len(predicted)} predictions")
    if not examples:
        raise ValueError("no examples to score")
    tp, fp, fn, support = Counter(), Counter(), Counter(), Counter()
    confusions: Counter = Counter()
    misses = []
    for example, guess in zip(examples, predicted):
        support[example.intent] += 1
        if guess == example.intent:
            tp[guess] += 1
        else:
            fn[example.intent] += 1
            fp[guess] += 1
            confusions[(example.intent, guess)] += 1
            misses.append((example.text, example.intent, guess))
    per_intent = {}
    for intent in support:
        p = tp[intent] / (tp[intent] + fp[intent]) if tp[intent] + fp[intent] else 0.0
        r = tp[intent] / support[intent]
        f = 2 * p * r / (p + r) if p + r else 0.0
        per_intent[intent] = (p, r, f, support[intent])
    safety = {}
    for intent in SAFETY_INTENTS:
        pairs = [(e, g) for e, g in zip(examples, predicted) if e.intent == intent]
        if not pairs:
            continue
        accepted = ERASING if intent == "quick_exit" else (intent,)
        safety[intent] = sum(g in accepted for _, g in pairs) / len(pairs)
    calm = [g for e, g in zip(examples, predicted) if e.intent not in URGENT]
    false_alarms = sum(g in URGENT for g in calm) / len(calm) if calm else 0.0
    place_recall = None
    if places is not None:
        marked = [(m, found) for e, found in zip(examples, places) for m in e.places]
        if marked:
            place_recall = sum(_same_place(m, found) for m, found in marked) / len(marked)
    return Scores(
        place_recall=place_recall,
        detector=None if decisions is None else detector_scores(examples, decisions),
        n=len(examples),
        accuracy=sum(tp.values()) / len(examples),
        macro_f1=sum(f for _, _, f, _ in per_intent.values()) / len(per_intent),
        per_intent=per_intent,
        confusions=[(e, g, n) for (e, g), n in confusions.most_common()],
        safety_recall=safety,
        urgent_false_positive_rate=false_alarms,
        misses=misses,
    )


Parsed = Tuple[str, Tuple[str, ...], str]  # intent, place values, the detector's decision


def model_parser(model: Path) -> Callable[[Iterable[str]], List[Parsed]]:
    """A function from texts to the intents and places a trained Rasa model finds in them."""
    import asyncio
    import logging

    from rasa.core.agent import Agent
    from rasa.utils.log_utils import configure_structlog

    # Rasa logs each parsed text at debug level; a report prints scores, not messages.
    configure_structlog(logging.WARNING)
    logging.getLogger("rasa").setLevel(logging.WARNING)
    agent = Agent.load(str(model))
    loop = asyncio.new_event_loop()

    def parse(texts: Iterable[str]) -> List[Parsed]:
        async def run() -> List[Parsed]:
            results = []
            for text in texts:
                parsed = await agent.parse_message(text)
                places = tuple(e.get("value") for e in parsed.get("entities") or []
                               if e.get("entity") == "place" and isinstance(e.get("value"), str))
                decision = (parsed.get("urgency") or {}).get("decision", "neither")
                results.append(((parsed.get("intent") or {}).get("name") or "", places,
                                decision))
            return results

        return loop.run_until_complete(run())

    return parse


def evaluate(parse: Callable[[Iterable[str]], list], sets: Sequence[str],
             languages: Sequence[str] = LANGUAGES) -> Dict[str, Dict[str, Scores]]:
    """set -> language -> scores. ``parse`` gives intents, or (intent, places) pairs."""
    report: Dict[str, Dict[str, Scores]] = {}
    for name in sets:
        report[name] = {}
        for language, examples in load_set(name, languages).items():
            parsed = parse([e.text for e in examples])
            places: Optional[List[Tuple[str, ...]]] = None
            decisions: Optional[List[str]] = None
            if parsed and isinstance(parsed[0], tuple):
                intents = [p[0] for p in parsed]
                places = [p[1] for p in parsed]
                decisions = [p[2] for p in parsed] if len(parsed[0]) > 2 else None
            else:
                intents = list(parsed)
            report[name][language] = score(examples, intents, places, decisions)
    return report


def format_report(report: Dict[str, Dict[str, Scores]], confusions: int = 8,
                  misses: bool = False) -> str:
    """The report as text: a summary table, then per set and language the details."""
    lines = ["set   lang    n  accuracy  macro F1  emergency  quick_exit  forget_me  "
             "request_human  false urgent  places"]
    for name, languages in report.items():
        for language, s in languages.items():
            r = s.safety_recall
            lines.append(
                f"{name:5s} {language:4s} {s.n:4d}  {s.accuracy:8.3f}  {s.macro_f1:8.3f}  "
                f"{r.get('emergency', float('nan')):9.3f}  {r.get('quick_exit', float('nan')):10.3f}  "
                f"{r.get('forget_me', float('nan')):9.3f}  "
                f"{r.get('request_human', float('nan')):13.3f}  "
                f"{s.urgent_false_positive_rate:12.3f}  "
                + ("     -" if s.place_recall is None else f"{s.place_recall:6.3f}"))
    detected = [(n, lang, s) for n, langs in report.items() for lang, s in langs.items()
                if s.detector is not None]
    if detected:
        lines += ["", "the urgency detector alone (before keywords and the intent model):",
                  "set   lang  urgent recall  exit recall  false alarms"]
        for name, language, s in detected:
            d = s.detector
            lines.append(f"{name:5s} {language:4s}  {d['urgent_recall']:13.3f}  "
                         f"{d['exit_recall']:11.3f}  {d['false_alarms']:12.3f}")
    for name, languages in report.items():
        for language, s in languages.items():
            lines.append("")
            lines.append(f"{name} {language}: per intent (precision, recall, F1, n)")
            for intent, (p, r, f, n) in sorted(s.per_intent.items()):
                lines.append(f"  {intent:26s} {p:5.2f} {r:5.2f} {f:5.2f} {n:4d}")
            if s.confusions:
                lines.append("  most frequent confusions (expected -> read as: count)")
                for expected, guess, n in s.confusions[:confusions]:
                    lines.append(f"    {expected} -> {guess or '(none)'}: {n}")
            if misses:
                for text, expected, guess in s.misses:
                    lines.append(f"  miss: {text!r}: {expected} -> {guess}")
    return "\n".join(lines)


def report_json(report: Dict[str, Dict[str, Scores]]) -> str:
    return json.dumps({name: {lang: s.as_dict() for lang, s in languages.items()}
                       for name, languages in report.items()}, indent=2, ensure_ascii=False)


def add_parser(commands) -> None:
    """Adds ``nlu report`` to the ``helpline`` sub-commands."""
    parser = commands.add_parser("nlu", help="how well the model understands people")
    nlu_commands = parser.add_subparsers(dest="nlu_command", required=True)
    report = nlu_commands.add_parser(
        "report", help="accuracy, macro F1, per-intent scores and safety recall on the "
                       "development and test sets")
    report.add_argument("--set", dest="sets", default="dev,test",
                        help="dev, test or dev,test (default)")
    report.add_argument("--language", dest="languages", default=",".join(LANGUAGES),
                        help="comma-separated languages (default: all four)")
    report.add_argument("--model", help="a trained model file (default: the current one)")
    report.add_argument("--format", choices=("table", "json"), default="table")
    report.add_argument("--misses", action="store_true", help="list every misread example")


def nlu_command(settings, args) -> int:
    """Runs ``helpline nlu report``; returns the exit status (2 on bad input)."""
    import sys

    sets = [s.strip() for s in args.sets.split(",") if s.strip()]
    languages = [x.strip() for x in args.languages.split(",") if x.strip()]
    unknown = [s for s in sets if s not in SETS] + [x for x in languages if x not in LANGUAGES]
    if not sets or not languages or unknown:
        print(f"nlu report: unknown or empty choice {unknown or ''}: sets are "
              f"{', '.join(SETS)}; languages {', '.join(LANGUAGES)}", file=sys.stderr)
        return 2
    if args.model:
        model = Path(args.model)
    else:
        from bot.cli import model_path

        model = model_path(settings)
    if not model.is_file():
        print(f"nlu report: no model at {model}: run `helpline train` first", file=sys.stderr)
        return 2
    try:
        report = evaluate(model_parser(model), sets, languages)
    except ExamplesError as exc:
        print(f"nlu report: {exc}", file=sys.stderr)
        return 2
    print(report_json(report) if args.format == "json"
          else format_report(report, misses=args.misses))
    return 0
