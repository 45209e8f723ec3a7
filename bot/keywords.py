"""Safety keywords: exact words that always mean one intent (see ``keywords.yml``)."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from typing import Dict

import yaml

KEYWORDS_FILE = Path(__file__).resolve().parent / "keywords.yml"
_PUNCTUATION = re.compile(r"[^\w\s]", re.UNICODE)


def normalise(text: str) -> str:
    """Lower-case, drop punctuation and combining marks (Arabic diacritics), collapse spaces."""
    text = unicodedata.normalize("NFKC", text or "").casefold()
    text = "".join(c for c in text if unicodedata.category(c) != "Mn")
    return " ".join(_PUNCTUATION.sub(" ", text).split())


def load_keywords(path: Path = KEYWORDS_FILE) -> Dict[str, str]:
    """Reads the keyword file into a map of normalised word -> intent.

    Raises:
        ValueError: if the file is malformed or one word is listed for two intents.
    """
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{Path(path).name}: must map intents to lists of words")
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
