"""What a person told us about their own situation, as the screening answers it implies.

``disclosed(text)`` maps a message to ``{question: answer}`` with the closed values of
``bot/triage.yml`` (``q_documents: "no"`` for "my boss keeps my passport"), from the patterns of
``disclosures.yml`` in every language. A question ("can my boss keep my passport?") discloses
nothing. The message itself is only read in memory; nothing here keeps it.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Dict

from bot.keywords import load_patterns, match_patterns
from bot.triage import QUESTIONS

DISCLOSURES_FILE = Path(__file__).resolve().parent / "disclosures.yml"
EXCEPTIONS_FILE = Path(__file__).resolve().parent / "disclosures_not.yml"
# Every value the ``disclosed`` slot may hold: "<question>=<answer>" (a closed set).
LABELS = tuple(f"{q}={a}" for q in QUESTIONS for a in ("yes", "no"))
_DIGITS = str.maketrans("٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹", "01234567890123456789")
# A message that asks rather than tells: a question mark, or a question's first words.
_QUESTION_START = re.compile(
    r"^\s*(¿|can|could|is|are|should|may|what|how|does|do|est ce|est-ce|peut|puis|"
    r"ai-je|a-t-il|puede|pueden|debo|se puede|هل|ممكن|يجوز)\b", re.IGNORECASE)


class DisclosuresError(ValueError):
    """The patterns file is unreadable or names an unknown question or answer."""


@lru_cache(maxsize=2)
def _patterns(path: Path = DISCLOSURES_FILE) -> tuple:
    patterns = load_patterns(path)
    for _, label in patterns:
        question, _, answer = label.partition("=")
        if question not in QUESTIONS or answer not in ("yes", "no"):
            raise DisclosuresError(f"{Path(path).name}: {label!r} is not <question>=yes|no "
                                   f"for a question of bot/triage.yml")
    return tuple(patterns)


@lru_cache(maxsize=2)
def _exceptions(path: Path = DISCLOSURES_FILE, exceptions_path: Path = EXCEPTIONS_FILE) -> tuple:
    """What cancels a disclosure (``disclosures_not.yml``): "all" (someone else's situation,
    a hypothetical), or one label (a negation: "nobody threatens me", "I still have my
    passport")."""
    known = {label for _, label in _patterns(path)} | {"all"}
    exceptions = load_patterns(exceptions_path)
    for _, label in exceptions:
        if label not in known:
            raise DisclosuresError(f"{Path(exceptions_path).name}: {label!r} is neither 'all' "
                                   f"nor a label of {Path(path).name}")
    return tuple(exceptions)


def is_question(text: str) -> bool:
    return "?" in text or "؟" in text or bool(_QUESTION_START.match(text))


def disclosed(text: str, path: Path = DISCLOSURES_FILE) -> Dict[str, str]:
    """The screening answers ``text`` gives about the writer's own situation."""
    text = (text or "").translate(_DIGITS)
    if not text.strip() or is_question(text):
        return {}
    labels = match_patterns(text, list(_patterns(path)))
    if labels:
        cancelled = match_patterns(text, list(_exceptions(path)))  # (the default exceptions)
        labels = set() if "all" in cancelled else labels - cancelled
    return dict(sorted(label.split("=", 1) for label in labels))


def labels(answers: Dict[str, str]) -> list[str]:
    """The ``disclosed`` slot's value for ``answers`` ({question: answer})."""
    return [f"{q}={a}" for q, a in answers.items()]


def told(labels) -> Dict[str, str]:
    """The ``disclosed`` slot's labels as {question: answer}; anything else is ignored."""
    return dict(label.split("=", 1) for label in labels or () if label in LABELS)
