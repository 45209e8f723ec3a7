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

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from bot.keywords import normalise
from bot.settings import PROJECT_ROOT

PLACES_FILE = PROJECT_ROOT / "data" / "gazetteer" / "places.csv"
DIRECTORY_DIR = PROJECT_ROOT / "data" / "services"
MAX_WORDS = 4
FUZZY_MIN_LETTERS = 6
# One-letter Arabic prepositions and conjunctions written joined to the next word.
ARABIC_PREFIXES = ("ب", "ل", "و", "ف")
_WORD = re.compile(r"\w+", re.UNICODE)


class PlacesError(ValueError):
    """A places or directory file that cannot be read, naming it."""


# The directory's name columns, by their HXL hashtags (as ``bot.services.hxl_io`` reads them).
DIRECTORY_NAMES = {"place": ("#loc+name", False), "admin2": ("#adm2+name", False),
                   "admin1": ("#adm1+name", False)}


def read_place_names(places_file: Path = PLACES_FILE,
                     directory: Optional[Path] = DIRECTORY_DIR) -> List[str]:
    """Every place name the deployment's files know, each once, in file order.

    The files are read with the project's own HXL readers (``bot.services.places.read_places``
    and ``bot.services.hxl_io.read_rows``), so a column is found by its hashtag.

    Raises:
        PlacesError: a file that cannot be read, naming it and the problem.
    """
    from bot.services.hxl_io import read_rows
    from bot.services.places import read_places

    names: Dict[str, str] = {}

    def add(name: str) -> None:
        if name and name.strip():
            names.setdefault(normalise(name), name.strip())

    try:
        for place in read_places(Path(places_file)):
            for _, name in place.names:
                add(name)
    except (OSError, ValueError) as exc:
        raise PlacesError(f"{places_file}: {exc}") from None
    for path in sorted(Path(directory).glob("*.csv")) if directory is not None else []:
        try:
            for _, row in read_rows(path, DIRECTORY_NAMES):
                for name in row.values():
                    add(name)
        except (OSError, ValueError) as exc:
            raise PlacesError(f"{path}: {exc}") from None
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
