"""Safety keywords: exact words that always mean one intent (see ``keywords.yml``)."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import yaml

KEYWORDS_FILE = Path(__file__).resolve().parent / "keywords.yml"
_PUNCTUATION = re.compile(r"[^\w\s]", re.UNICODE)


def normalise(text: str) -> str:
    """Lower-case, drop punctuation and combining marks, collapse spaces.

    Dropping combining marks removes accents (é -> e), Arabic diacritics and the hamza on
    alef (أ, إ -> ا), so people's many spellings meet the lists in ``keywords.yml``.
    """
    text = unicodedata.normalize("NFKD", text or "").casefold()
    text = "".join(c for c in text if unicodedata.category(c) != "Mn")
    text = unicodedata.normalize("NFKC", text)
    return " ".join(_PUNCTUATION.sub(" ", text).split())


def _read(path: Path) -> dict:
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{Path(path).name}: must map intents to lists of words")
    return data


def load_patterns(path: Path = KEYWORDS_FILE) -> List[Tuple[re.Pattern, str]]:
    """The ``patterns`` section: (compiled pattern, intent) pairs, in file order.

    Raises:
        ValueError: naming a pattern that does not compile.
    """
    patterns: List[Tuple[re.Pattern, str]] = []
    for intent, expressions in (_read(path).get("patterns") or {}).items():
        for expression in expressions:
            try:
                patterns.append((re.compile(expression), intent))
            except re.error as exc:
                raise ValueError(f"{Path(path).name}: pattern {expression!r}: {exc}") from None
    return patterns


def match_pattern(text: str, patterns: List[Tuple[re.Pattern, str]]) -> Optional[str]:
    """The intent of the first pattern found in the normalised ``text``, or None."""
    normal = normalise(text)
    return next((intent for pattern, intent in patterns if pattern.search(normal)), None)


def load_keywords(path: Path = KEYWORDS_FILE) -> Dict[str, str]:
    """Reads the exact keywords into a map of normalised word -> intent.

    Raises:
        ValueError: if the file is malformed or one word is listed for two intents.
    """
    data = {k: v for k, v in _read(path).items() if k != "patterns"}
    keywords: Dict[str, str] = {}
    for intent, words in data.items():
        if not isinstance(words, list):
            raise ValueError(f"{Path(path).name}: {intent} must list words")
        for word in words:
            key = normalise(str(word))
            if not key:
                raise ValueError(f"{Path(path).name}: {word!r} is empty once normalised")
            if keywords.get(key, intent) != intent:
                raise ValueError(f"{Path(path).name}: {word!r} is listed for two intents")
            keywords[key] = intent
    return keywords
