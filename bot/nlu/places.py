"""Place names found in a message, whatever the intent model thinks of it.

The names come from the deployment's data: every name and spelling of the places file
(``data/gazetteer/places.csv``: the place, its name in each language, other spellings) and the
towns and districts of the services directory (``data/services/*.csv``). They are read when the
model is trained and kept in it, so a deployment with other places retrains (the files are
training inputs). A name matches as whole words, after folding (case, accents, Arabic letter
variants), with an Arabic preposition stuck to it (بطرابلس, فسبها), and with one typo when it
has six letters or more ("Maidugri", "Tripolli").
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from bot.keywords import normalise
from bot.settings import PROJECT_ROOT

PLACES_FILE = PROJECT_ROOT / "data" / "gazetteer" / "places.csv"
DIRECTORY_DIR = PROJECT_ROOT / "data" / "services"
NAME_COLUMNS = ("Place", "English", "French", "Arabic", "Spanish")
DIRECTORY_COLUMNS = ("Place", "Admin 2", "Admin 1")
MAX_WORDS = 4
FUZZY_MIN_LETTERS = 6
# One-letter Arabic prepositions and conjunctions written joined to the next word.
ARABIC_PREFIXES = ("ب", "ل", "و", "ف")
_WORD = re.compile(r"\w+", re.UNICODE)


class PlacesError(ValueError):
    """A places or directory file that cannot be read, naming it."""


def _rows(path: Path) -> List[dict]:
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, csv.Error, UnicodeDecodeError) as exc:
        raise PlacesError(f"{path}: {exc}") from None
    # An HXL file's second row holds hashtags, not a place.
    return [r for r in rows if not any(str(v or "").startswith("#") for v in r.values())]


def read_place_names(places_file: Path = PLACES_FILE,
                     directory: Optional[Path] = DIRECTORY_DIR) -> List[str]:
    """Every place name the deployment's files know, each once, in file order.

    Raises:
        PlacesError: a file that cannot be read, or a places file without a name column.
    """
    names: Dict[str, str] = {}
    rows = _rows(Path(places_file))
    if rows and not any(column in rows[0] for column in NAME_COLUMNS):
        raise PlacesError(f"{places_file}: none of the columns {', '.join(NAME_COLUMNS)}")
    for row in rows:
        candidates = [row.get(c) for c in NAME_COLUMNS]
        candidates += (row.get("Other spellings") or "").split(";")
        for name in candidates:
            if name and name.strip():
                names.setdefault(normalise(name), name.strip())
    if directory is not None:
        for path in sorted(Path(directory).glob("*.csv")):
            for row in _rows(path):
                for column in DIRECTORY_COLUMNS:
                    name = row.get(column)
                    if name and name.strip():
                        names.setdefault(normalise(name), name.strip())
    return list(names.values())


@dataclass(frozen=True)
class Found:
    start: int
    end: int
    value: str


class PlaceMatcher:
    """Finds known place names in text (whole words, folded, one typo from six letters)."""

    def __init__(self, names: Iterable[str]) -> None:
        self.names: Dict[Tuple[str, ...], str] = {}
        for name in names:
            words = tuple(normalise(name).split())
            if words and len(words) <= MAX_WORDS:
                self.names.setdefault(words, name)
        self.single = sorted({w[0] for w in self.names if len(w) == 1
                              and len(w[0]) >= FUZZY_MIN_LETTERS})

    def _lookup(self, words: Sequence[str]) -> Optional[Tuple[str, ...]]:
        key = tuple(words)
        if key in self.names:
            return key
        first = words[0]
        if len(first) > 2 and first[0] in ARABIC_PREFIXES:
            stripped = (first[1:], *words[1:])
            if stripped in self.names:
                return stripped
        return None

    def _fuzzy(self, word: str) -> Optional[Tuple[str, ...]]:
        if len(word) < FUZZY_MIN_LETTERS or not self.single:
            return None
        from rapidfuzz import process
        from rapidfuzz.distance import DamerauLevenshtein

        found = process.extractOne(word, self.single, scorer=DamerauLevenshtein.distance,
                                   score_cutoff=1)
        return (found[0],) if found else None

    def find(self, text: str) -> List[Found]:
        """The places in ``text``, longest first at each position, not overlapping."""
        tokens = [(m.start(), m.end(), normalise(m.group())) for m in _WORD.finditer(text)]
        tokens = [t for t in tokens if t[2]]
        found: List[Found] = []
        i = 0
        while i < len(tokens):
            match = None
            for size in range(min(MAX_WORDS, len(tokens) - i), 0, -1):
                words = [t[2] for t in tokens[i:i + size]]
                if self._lookup(words) is not None:
                    match = size
                    break
            if match is None and self._fuzzy(tokens[i][2]) is not None:
                match = 1
            if match is None:
                i += 1
                continue
            start, end = tokens[i][0], tokens[i + match - 1][1]
            found.append(Found(start, end, text[start:end]))
            i += match
        return found
