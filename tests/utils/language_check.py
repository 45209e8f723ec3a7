"""Tells which catalog language a sent text belongs to."""

from __future__ import annotations

import re
from functools import lru_cache

from bot.catalog import load_catalog


@lru_cache(maxsize=1)
def _patterns() -> dict[str, list[re.Pattern]]:
    catalog = load_catalog()
    patterns: dict[str, list[re.Pattern]] = {}
    for language, texts in catalog.texts.items():
        patterns[language] = [
            re.compile(
                "^" + re.escape(text).replace(re.escape("{org_name}"), ".+?")
                .replace(re.escape("{contacts}"), ".+?") + "$",
                re.S,
            )
            for text in texts.values()
        ]
    return patterns


def languages_of(text: str) -> set[str]:
    """The catalog languages that have a response rendering to ``text``."""
    return {lang for lang, pats in _patterns().items() if any(p.match(text) for p in pats)}
