"""The urgency detector: is this message urgent, a quick exit, or neither?

Urgency is its own decision, not one intent among thirty. A small linear model over character
n-grams (robust to typos, missing spaces, SMS spellings and Arabizi) and words decides among
three labels, trained on the families of ``data/urgency/`` and on the intent examples of
``data/nlu/`` (emergency -> urgent, quick_exit -> exit, every other intent -> neither). The
Rasa component ``bot.nlu.components.UrgencyDetector`` runs it beside the intent model and
overrides the intent above thresholds chosen on the development set
(``benchmarks/urgency.py``).

The model is stored as plain numbers (vocabularies, weights) in JSON and NumPy files, not as
a pickle, so loading a model file runs no code from it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Sequence, Tuple

import numpy as np
import yaml

from bot.keywords import normalise
from bot.settings import PROJECT_ROOT

CORPUS_DIR = PROJECT_ROOT / "data" / "urgency"
LABELS = ("neither", "urgent", "exit")
# The intents of the NLU training data that teach each label.
INTENT_LABELS = {"emergency": "urgent", "quick_exit": "exit"}
FAMILY_SECTIONS = {"urgent": "urgent", "exit": "exit", "neither": "neither"}

_REPEATS = re.compile(r"(.)\1+")


class CorpusError(ValueError):
    """A corpus file that cannot be used, naming the file and the problem."""


def squeeze(text: str) -> str:
    """``normalise`` with every run of one letter cut to one ("heeelp" -> "help").

    Digits stay: in Arabizi they are letters (3 = ع, 7 = ح, 2 = ء).

    The detector's features see only squeezed text, so stretched words meet their plain form.
    """
    return _REPEATS.sub(r"\1", normalise(text))


# Words that negate the next few ("he is not here", "il n est pas la", "مش هون"): the word
# features mark the words in their scope, so "not here" does not look like "here".
NEGATIONS = frozenset({
    "not", "no", "never", "t", "nobody", "noone", "nothing", "none", "without",
    "pas", "ne", "n", "jamais", "personne", "rien", "sans",
    "nunca", "nadie", "nada", "ni", "sin",
    "ما", "مش", "مو", "ليس", "لا", "مب", "مافي", "مافيش", "محد", "ماحد",
    "msh", "mish", "mesh", "mush", "mo", "mu", "ma", "la", "mafi", "mafish", "ma7ad",
})
NEGATION_SCOPE = 3


def mark_negations(text: str) -> str:
    """``squeeze``, with the words after a negation prefixed "not_" (three words at most)."""
    words, marked, left = squeeze(text).split(), [], 0
    for word in words:
        if word in NEGATIONS:
            marked.append(word)
            left = NEGATION_SCOPE
        elif left:
            marked.append(f"not_{word}")
            left -= 1
        else:
            marked.append(word)
    return " ".join(marked)


def read_corpus(directory: Path = CORPUS_DIR) -> List[Tuple[str, str, str]]:
    """(text, label, family) for every message of the corpus files (``<language>.yml``).

    Raises:
        CorpusError: a file that is not a mapping of the three sections to families of
            non-empty strings, or a directory without any corpus file.
    """
    rows: List[Tuple[str, str, str]] = []
    files = sorted(Path(directory).glob("*.yml"))
    if not files:
        raise CorpusError(f"{directory}: no corpus files (<language>.yml)")
    for path in files:
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise CorpusError(f"{path.name}: {exc}") from None
        if not isinstance(data, dict):
            raise CorpusError(f"{path.name}: must map urgent, exit and neither to families")
        unknown = set(data) - set(FAMILY_SECTIONS) - {"language"}
        if unknown:
            raise CorpusError(f"{path.name}: unknown sections {sorted(unknown)}")
        for section, label in FAMILY_SECTIONS.items():
            families = data.get(section)
            if not isinstance(families, dict) or not families:
                raise CorpusError(f"{path.name}: {section} must map families to messages")
            for family, messages in families.items():
                if not isinstance(messages, list):
                    raise CorpusError(f"{path.name}: {section}.{family} must list messages")
                for message in messages:
                    if not isinstance(message, str) or not message.strip():
                        raise CorpusError(f"{path.name}: {section}.{family}: {message!r} "
                                          "is not a message")
                    rows.append((message.strip(), label, f"{path.stem}:{section}.{family}"))
    return rows


def label_of_intent(intent: str) -> str:
    return INTENT_LABELS.get(intent, "neither")


@dataclass
class UrgencyConfig:
    """Feature and model settings (the benchmark compares several)."""

    char_ngrams: Tuple[int, int] = (2, 5)
    joined_ngrams: Tuple[int, int] = (3, 5)  # over the text with its spaces removed; (0, 0): off
    word_ngrams: Tuple[int, int] = (1, 2)
    c: float = 10.0
    max_features: int = 200_000

    def as_dict(self) -> dict:
        return {"char_ngrams": list(self.char_ngrams), "joined_ngrams": list(self.joined_ngrams),
                "word_ngrams": list(self.word_ngrams), "c": self.c,
                "max_features": self.max_features}

    @classmethod
    def from_dict(cls, data: dict) -> "UrgencyConfig":
        return cls(char_ngrams=tuple(data.get("char_ngrams", (2, 5))),
                   joined_ngrams=tuple(data.get("joined_ngrams", (3, 5))),
                   word_ngrams=tuple(data.get("word_ngrams", (1, 2))),
                   c=float(data.get("c", 10.0)),
                   max_features=int(data.get("max_features", 200_000)))


def _joined(text: str) -> str:
    return squeeze(text).replace(" ", "")


class UrgencyModel:
    """Character and word n-gram TF-IDF features and a multinomial logistic regression."""

    def __init__(self, config: UrgencyConfig | None = None) -> None:
        self.config = config or UrgencyConfig()
        self.vectorizers: list = []
        self.coef: np.ndarray | None = None
        self.intercept: np.ndarray | None = None
        # Messages taught as "neither" word for word ("help" alone shows the menu): the
        # detector leaves their intent alone whatever its n-grams suggest.
        self.known_calm: frozenset = frozenset()

    def _new_vectorizers(self) -> list:
        from sklearn.feature_extraction.text import TfidfVectorizer

        config = self.config
        common = {"lowercase": False, "sublinear_tf": True, "dtype": np.float32,
                  "max_features": config.max_features}
        vectorizers = [
            ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=config.char_ngrams,
                                      preprocessor=squeeze, **common)),
            ("words", TfidfVectorizer(analyzer="word", ngram_range=config.word_ngrams,
                                      preprocessor=mark_negations,
                                      token_pattern=r"(?u)\b\w+\b", **common)),
        ]
        if config.joined_ngrams[1] > 0:
            vectorizers.append(
                ("joined", TfidfVectorizer(analyzer="char", ngram_range=config.joined_ngrams,
                                           preprocessor=_joined, **common)))
        return vectorizers

    def _features(self, texts: Sequence[str]):
        from scipy.sparse import hstack

        return hstack([v.transform(texts) for _, v in self.vectorizers]).tocsr()

    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> "UrgencyModel":
        """Trains on ``texts`` with labels from ``LABELS``.

        Raises:
            ValueError: an unknown label, or a label without any example.
        """
        from scipy.sparse import hstack
        from sklearn.linear_model import LogisticRegression

        unknown = set(labels) - set(LABELS)
        if unknown:
            raise ValueError(f"unknown labels {sorted(unknown)}: use {LABELS}")
        missing = set(LABELS) - set(labels)
        if missing:
            raise ValueError(f"no examples of {sorted(missing)}")
        self.vectorizers = self._new_vectorizers()
        matrix = hstack([v.fit_transform(texts) for _, v in self.vectorizers]).tocsr()
        classifier = LogisticRegression(C=self.config.c, class_weight="balanced",
                                        max_iter=5000)
        classifier.fit(matrix, list(labels))
        self.known_calm = frozenset(normalise(t) for t, label in zip(texts, labels)
                                    if label == "neither")
        order = [list(classifier.classes_).index(label) for label in LABELS]
        self.coef = classifier.coef_[order].astype(np.float32)
        self.intercept = classifier.intercept_[order].astype(np.float32)
        return self

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """One row per text: the probabilities of ``LABELS`` in order."""
        if self.coef is None:
            raise RuntimeError("the urgency model is not trained")
        scores = self._features(texts) @ self.coef.T + self.intercept
        scores = np.asarray(scores, dtype=np.float64)
        scores -= scores.max(axis=1, keepdims=True)
        exp = np.exp(scores)
        return exp / exp.sum(axis=1, keepdims=True)

    def is_known_calm(self, text: str) -> bool:
        """Whether ``text`` is a message taught as "neither" (case, accents and punctuation
        aside; a stretched "HELPPP" is not the menu's "help")."""
        return normalise(text) in self.known_calm

    def predict(self, text: str) -> Dict[str, float]:
        row = self.probabilities([text])[0]
        return {label: float(p) for label, p in zip(LABELS, row)}

    def save(self, directory: Path) -> None:
        """Writes ``urgency.json`` (settings, vocabularies) and ``urgency.npz`` (weights)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        meta = {"config": self.config.as_dict(), "labels": list(LABELS),
                "known_calm": sorted(self.known_calm),
                "vocabularies": {name: {term: int(i) for term, i in v.vocabulary_.items()}
                                 for name, v in self.vectorizers}}
        (directory / "urgency.json").write_text(json.dumps(meta, ensure_ascii=False),
                                                encoding="utf-8")
        arrays = {f"idf_{name}": v.idf_.astype(np.float32) for name, v in self.vectorizers}
        np.savez(directory / "urgency.npz", coef=self.coef, intercept=self.intercept, **arrays)

    @classmethod
    def load(cls, directory: Path) -> "UrgencyModel":
        """Reads what ``save`` wrote (no pickle: ``allow_pickle`` stays off)."""
        directory = Path(directory)
        meta = json.loads((directory / "urgency.json").read_text(encoding="utf-8"))
        if tuple(meta["labels"]) != LABELS:
            raise ValueError(f"urgency model labels {meta['labels']} are not {LABELS}")
        model = cls(UrgencyConfig.from_dict(meta["config"]))
        arrays = np.load(directory / "urgency.npz", allow_pickle=False)
        model.vectorizers = model._new_vectorizers()
        for name, vectorizer in model.vectorizers:
            vectorizer.vocabulary_ = meta["vocabularies"][name]
            vectorizer.idf_ = arrays[f"idf_{name}"]
        model.known_calm = frozenset(meta.get("known_calm", ()))
        model.coef = arrays["coef"]
        model.intercept = arrays["intercept"]
        return model


def training_rows(intent_examples: Iterable[Tuple[str, str]],
                  corpus: Iterable[Tuple[str, str, str]]) -> Tuple[List[str], List[str]]:
    """Texts and labels from (text, intent) examples and corpus rows, duplicates dropped."""
    texts: List[str] = []
    labels: List[str] = []
    seen = set()
    for text, intent in intent_examples:
        if text.startswith("/") or squeeze(text) in seen:
            continue
        seen.add(squeeze(text))
        texts.append(text)
        labels.append(label_of_intent(intent))
    for text, label, _ in corpus:
        if squeeze(text) in seen:
            continue
        seen.add(squeeze(text))
        texts.append(text)
        labels.append(label)
    return texts, labels
