"""Tells which catalog language a sent text belongs to."""

from __future__ import annotations

import re
from functools import lru_cache

from bot.catalog import CHANNEL_WORDS, load_catalog

# Placeholders whose value may be anything in the sent text.
_OPEN = ("org_name", "contacts", "keep_hours", "keep_days", *CHANNEL_WORDS)


@lru_cache(maxsize=1)
def _patterns() -> dict[str, list[re.Pattern]]:
    catalog = load_catalog()
    patterns: dict[str, list[re.Pattern]] = {}
    for language, texts in catalog.texts.items():
        patterns[language] = [re.compile("^" + _open(re.escape(text)) + "$", re.S)
                              for text in texts.values()]
    return patterns


def _open(pattern: str) -> str:
    for name in _OPEN:
        pattern = pattern.replace(re.escape("{" + name + "}"), ".+?")
    return pattern


def languages_of(text: str) -> set[str]:
    """The catalog languages that have a response rendering to ``text``."""
    return {lang for lang, pats in _patterns().items() if any(p.match(text) for p in pats)}
