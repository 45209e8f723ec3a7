"""Safety keywords and danger patterns (see ``keywords.yml``), matched the way people type.

A message is compared in its *safety form*: lower case, no punctuation, accents or Arabic
diacritics, Arabic letter variants folded (أ إ آ -> ا, ى -> ي, ة -> ه), and letters stretched
three times or more cut to one ("heeelp" -> "help"). A keyword then matches exactly, with its
spaces missing ("quickexit"), or within a small edit distance ("exitt", "socoro", "au secour"):
one edit for words of four to seven letters (at four, a letter added, dropped or swapped, not
changed: "edit" is not "exit"), two from eight; words shorter than four letters ("x", "sos")
match only exactly, since one edit turns them into other words.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from typing import Collection, Dict, List, Optional, Set, Tuple

import yaml

# Arabic letter variants and the tatweel: one table for the safety words and place names.
from bot.services.places import ARABIC_VARIANTS as _ARABIC_FOLD

KEYWORDS_FILE = Path(__file__).resolve().parent / "keywords.yml"
_PUNCTUATION = re.compile(r"[^\w\s]", re.UNICODE)
_STRETCHED = re.compile(r"(\w)\1{2,}", re.UNICODE)
FUZZY_MIN_LENGTH = 4  # shorter keywords match exactly only


def _letters(text: str) -> str:
    """Accents, diacritics and Arabic letter variants folded; nothing else changed."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if unicodedata.category(c) != "Mn")
    return unicodedata.normalize("NFKC", text).translate(_ARABIC_FOLD)


def normalise(text: str) -> str:
    """Lower-case, drop punctuation, accents and Arabic diacritics, fold Arabic letter variants,
    collapse spaces.

    Dropping combining marks removes accents (é -> e), Arabic diacritics and the hamza on
    alef (أ, إ -> ا), so people's many spellings meet the lists in ``keywords.yml``.
    """
    text = _letters((text or "").casefold())
    return " ".join(_PUNCTUATION.sub(" ", text).split())


def safety_form(text: str) -> str:
    """``normalise`` with letters stretched three times or more cut to one."""
    return _STRETCHED.sub(r"\1", normalise(text))


def _read(path: Path) -> dict:
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{Path(path).name}: must map intents to lists of words")
    return data


def load_patterns(path: Path = KEYWORDS_FILE) -> List[Tuple[re.Pattern, str]]:
    """The ``patterns`` section: (compiled pattern, intent) pairs, in file order.

    The patterns' letters are folded like the messages' (accents, Arabic variants), so a
    pattern written with أ or ة still matches.

    Raises:
        ValueError: naming a pattern that does not compile.
    """
    patterns: List[Tuple[re.Pattern, str]] = []
    for intent, expressions in (_read(path).get("patterns") or {}).items():
        for expression in expressions:
            try:
                patterns.append((re.compile(_letters(expression)), intent))
            except re.error as exc:
                raise ValueError(f"{Path(path).name}: pattern {expression!r}: {exc}") from None
    return patterns


def _forms(text: str) -> Tuple[str, ...]:
    """The safety form, and the normalised form when stretching was cut (a pattern may look
    for the stretching itself: "HELPPP" is a cry, "help" asks for the menu)."""
    normal, safe = normalise(text), safety_form(text)
    return (safe,) if safe == normal else (safe, normal)


def match_patterns(text: str, patterns: List[Tuple[re.Pattern, str]]) -> Set[str]:
    """The intents of every pattern found in the safety or normalised form of ``text``."""
    forms = _forms(text)
    return {intent for pattern, intent in patterns if any(pattern.search(f) for f in forms)}


def match_pattern(text: str, patterns: List[Tuple[re.Pattern, str]]) -> Optional[str]:
    """The intent of the first pattern found in the safety or normalised form of ``text``."""
    forms = _forms(text)
    return next((intent for pattern, intent in patterns
                 if any(pattern.search(f) for f in forms)), None)


def load_keywords(path: Path = KEYWORDS_FILE) -> Dict[str, str]:
    """Reads the exact keywords into a map of safety form -> intent.

    Raises:
        ValueError: if the file is malformed or one word is listed for two intents.
    """
    data = {k: v for k, v in _read(path).items() if k != "patterns"}
    keywords: Dict[str, str] = {}
    for intent, words in data.items():
        if not isinstance(words, list):
            raise ValueError(f"{Path(path).name}: {intent} must list words")
        for word in words:
            key = safety_form(str(word))
            if not key:
                raise ValueError(f"{Path(path).name}: {word!r} is empty once normalised")
            if keywords.get(key, intent) != intent:
                raise ValueError(f"{Path(path).name}: {word!r} is listed for two intents")
            keywords[key] = intent
    return keywords


def _allowed_edits(length: int) -> int:
    if length < FUZZY_MIN_LENGTH:
        return 0
    return 1 if length <= 7 else 2


def _other_short_word(a: str, b: str) -> bool:
    """Four letters with one changed are often another word ("edit", "exit"): at that length
    only a letter added, dropped or swapped counts as a typo."""
    return min(len(a), len(b)) == FUZZY_MIN_LENGTH and len(a) == len(b) and sorted(a) != sorted(b)


def match_keyword(text: str, keywords: Dict[str, str],
                  fuzzy: bool = True) -> Optional[str]:
    """The intent of the keyword ``text`` is, allowing for typos and missing spaces.

    A message of more than four words is never a keyword. When two keywords of different
    intents are equally close, nothing matches.
    """
    form = safety_form(text)
    if not form:
        return None
    if form in keywords:
        return keywords[form]
    if not fuzzy or len(form.split()) > 4:
        return None
    joined = form.replace(" ", "")
    best: Dict[str, int] = {}
    from rapidfuzz.distance import DamerauLevenshtein

    for key, intent in keywords.items():
        key_joined = key.replace(" ", "")
        if key_joined == joined:
            return intent
        limit = _allowed_edits(min(len(key_joined), len(joined)))
        if limit == 0:
            continue
        distance = DamerauLevenshtein.distance(joined, key_joined, score_cutoff=limit)
        if distance <= limit and not _other_short_word(joined, key_joined):
            best[intent] = min(best.get(intent, distance), distance)
    if not best:
        return None
    closest = min(best.values())
    intents = [intent for intent, d in best.items() if d == closest]
    return intents[0] if len(intents) == 1 else None


def keyword_false_alarms(keywords: Dict[str, str], patterns: List[Tuple[re.Pattern, str]],
                         texts: Collection[str]) -> List[Tuple[str, str]]:
    """(text, intent) for each of ``texts`` that the keywords or patterns would make urgent."""
    alarms = []
    for text in texts:
        intent = match_keyword(text, keywords)
        if intent is None:
            signals = match_patterns(text, patterns)
            intent = "quick_exit" if "quick_exit" in signals else next(iter(signals), None)
        if intent is not None:
            alarms.append((text, intent))
    return alarms
