"""Language detection from free text, trusted only for messages long enough.

Short messages ("ok", "2", "merci") say little about the language and keep the current one.
A message is considered when it has at least ``min_letters`` letters (default 20, setting
``HELPLINE_LANG_MIN_LETTERS``). Arabic script is recognised by its letters; other texts go to
langdetect (seeded, so the same text always gives the same answer), whose top guess must be a
supported language with probability at least ``min_probability`` (default 0.90). Arabic in
Latin letters ("3ayez shoghl") is not detected: it keeps the current language.
"""

from __future__ import annotations

import threading
import unicodedata
from typing import Iterable, Optional

from bot.deployment import SUPPORTED_LANGUAGES

_lock = threading.Lock()
_factory_ready = False


def _ensure_langdetect() -> None:
    """Loads langdetect's profiles once (reads files; never at import time)."""
    global _factory_ready
    with _lock:
        if not _factory_ready:
            from langdetect import DetectorFactory

            DetectorFactory.seed = 0
            from langdetect.detector_factory import init_factory

            init_factory()
            _factory_ready = True


def count_letters(text: str) -> tuple[int, int]:
    """(letters, Arabic-script letters) in ``text``."""
    letters = arabic = 0
    for char in text:
        if char.isalpha():
            letters += 1
            if "ARABIC" in unicodedata.name(char, ""):
                arabic += 1
    return letters, arabic


def detect_language(
    text: str,
    min_letters: int = 20,
    min_probability: float = 0.90,
    candidates: Iterable[str] = SUPPORTED_LANGUAGES,
) -> Optional[str]:
    """The language of ``text`` if it is long and clear enough, else None.

    Args:
        text: the person's message.
        min_letters: fewer letters than this: no detection.
        min_probability: langdetect's probability needed.
        candidates: the languages that may be returned.

    Returns:
        A language code from ``candidates``, or None to keep the current language.
    """
    candidates = tuple(candidates)
    letters, arabic = count_letters(text or "")
    if letters < min_letters:
        return None
    if arabic * 2 > letters:
        return "ar" if "ar" in candidates else None
    _ensure_langdetect()
    from langdetect import detect_langs
    from langdetect.lang_detect_exception import LangDetectException

    try:
        guesses = detect_langs(text)
    except LangDetectException:
        return None
    if not guesses:
        return None
    best = guesses[0]
    if best.lang in candidates and best.lang != "ar" and best.prob >= min_probability:
        return best.lang
    return None
