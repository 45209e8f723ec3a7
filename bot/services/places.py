"""The place gazetteer: names people type (in any enabled language or script, misspelt) -> places.

Names are compared by key: Unicode-folded (accents and Arabic diacritics removed, Arabic letter
variants unified, case folded, punctuation dropped) and, for names not in Latin script, also
transliterated (``Київ`` -> ``kiyiv``, ``طرابلس`` -> ``trbls``) so that a Latin spelling of it
can match. An exact key wins; otherwise the closest keys by RapidFuzz's ratio above a
threshold; when the two best places are about equally close, both are returned so that the
assistant can ask which one was meant.

Places come from the places file (``data/gazetteer/places.csv``, HXL: ``#loc+name``,
``#loc+code``, ``#loc+type``, ``#country+code``, ``#adm1+code``, ``#adm2+code``, ``#geo+lat``,
``#geo+lon``, ``#loc+name+i_fr`` / ``+i_ar`` / ``+i_es``, ``#loc+name+alt`` with ``;``) and
from the towns and admin areas the services directory names.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Iterable

from rapidfuzz import fuzz, process

# Arabic letters people type interchangeably (hamza forms, alef maqsura, ta marbuta, Persian
# keyboard forms) and the tatweel; also used by the safety words (bot/keywords.py).
ARABIC_VARIANTS = str.maketrans({"أ": "ا", "إ": "ا", "آ": "ا", "ٱ": "ا", "ة": "ه", "ى": "ي",
                                 "ؤ": "و", "ئ": "ي", "ک": "ك", "ی": "ي", "ـ": None})
MIN_SCORE = 80.0
AMBIGUOUS_MARGIN = 4.0


def fold(text: str) -> str:
    """Case-, accent- and punctuation-free form of a name, in its own script."""
    text = unicodedata.normalize("NFKD", text.translate(ARABIC_VARIANTS))
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = re.sub(r"[^\w]+", " ", text.casefold().replace("_", " "))
    return " ".join(text.split())


def keys_of(name: str) -> set[str]:
    """The keys a name is found by: folded, and transliterated to Latin when not Latin."""
    from unidecode import unidecode

    folded = fold(name)
    keys = {folded} if folded else set()
    latin = fold(unidecode(folded))
    if latin and latin != folded:
        keys.add(latin)
    return keys


@dataclass(frozen=True)
class Place:
    """A named place with a point for distance searches."""

    code: str
    kind: str
    country: str
    lat: float
    lon: float
    names: tuple[tuple[str, str], ...] = ()  # (language or "", name)
    admin1_pcode: str = ""
    admin2_pcode: str = ""

    def name_in(self, language: str) -> str:
        for lang, name in self.names:
            if lang == language:
                return name
        return self.names[0][1] if self.names else self.code


@dataclass(frozen=True)
class PlaceMatch:
    place: Place
    score: float
    matched: str


@dataclass
class Gazetteer:
    """Places and the keys of all their names."""

    places: dict[str, Place] = field(default_factory=dict)
    _keys: dict[str, set[str]] = field(default_factory=dict)  # key -> place codes
    _choices: list[str] = field(default_factory=list)

    def add(self, place: Place) -> None:
        existing = self.places.get(place.code)
        if existing is not None:  # merge the names of a place given twice
            names = tuple(dict.fromkeys(existing.names + place.names))
            place = Place(existing.code, existing.kind, existing.country, existing.lat,
                          existing.lon, names, existing.admin1_pcode, existing.admin2_pcode)
        self.places[place.code] = place
        for _, name in place.names:
            for key in keys_of(name):
                if key not in self._keys:
                    self._choices.append(key)
                self._keys.setdefault(key, set()).add(place.code)

    def __len__(self) -> int:
        return len(self.places)

    def named(self, name: str, country: str = "") -> list[Place]:
        """The places whose name is exactly ``name`` (folded), in ``country`` when given."""
        codes = set().union(*(self._keys.get(key, set()) for key in keys_of(name))) if name else set()
        return [self.places[c] for c in sorted(codes)
                if not country or self.places[c].country == country]

    def match(self, text: str, limit: int = 2) -> list[PlaceMatch]:
        """The places ``text`` names: one when clear, several when it is ambiguous, or none.

        ``text`` may be a sentence ("I am near Gwoza camp"): every run of up to three words is
        tried as a name.
        """
        query_keys = set()
        for key in keys_of(text):
            words = key.split()
            query_keys |= {" ".join(words[i:i + n]) for n in (1, 2, 3)
                           for i in range(len(words) - n + 1)}
            query_keys.add(key)
        query_keys = {k for k in query_keys if len(k) >= 3}
        exact_keys = [key for key in query_keys if key in self._keys]
        if exact_keys:  # the longest name found wins: "Mubi North" over "Mubi"
            longest = max(len(key.split()) for key in exact_keys)
            exact = {code for key in exact_keys if len(key.split()) == longest
                     for code in self._keys[key]}
            return [PlaceMatch(self.places[c], 100.0, text) for c in sorted(exact)][:max(limit, len(exact))]
        best: dict[str, tuple[float, str]] = {}
        for key in query_keys:
            for choice, score, _ in process.extract(key, self._choices, scorer=fuzz.ratio,
                                                    score_cutoff=MIN_SCORE, limit=10):
                for code in self._keys[choice]:
                    if score > best.get(code, (0.0, ""))[0]:
                        best[code] = (score, choice)
        ranked = sorted(best.items(), key=lambda item: (-item[1][0], item[0]))
        if not ranked:
            return []
        top = ranked[0][1][0]
        close = [(code, s) for code, s in ranked if top - s[0] <= AMBIGUOUS_MARGIN][:limit]
        return [PlaceMatch(self.places[code], score, choice) for code, (score, choice) in close]


def places_from_rows(rows: Iterable[dict[str, str]]) -> list[Place]:
    """Places from places-file rows (field -> text, see ``read_places``)."""
    places = []
    for row in rows:
        names = [("", row["name"])]
        for lang in ("en", "fr", "ar", "es"):
            if row.get(f"name_{lang}"):
                names.append((lang, row[f"name_{lang}"]))
        names += [("", alt.strip()) for alt in (row.get("alt") or "").split(";") if alt.strip()]
        places.append(Place(code=row["code"], kind=row.get("kind") or "town",
                            country=row["country"].upper(), lat=float(row["lat"]),
                            lon=float(row["lon"]), names=tuple(names),
                            admin1_pcode=row.get("admin1") or "", admin2_pcode=row.get("admin2") or ""))
    return places


PLACE_COLUMNS: dict[str, tuple[str, bool]] = {
    "name": ("#loc+name", True), "code": ("#loc+code", True), "kind": ("#loc+type", False),
    "country": ("#country+code", True), "admin1": ("#adm1+code", False),
    "admin2": ("#adm2+code", False), "lat": ("#geo+lat", True), "lon": ("#geo+lon", True),
    "name_en": ("#loc+name+i_en", False), "name_fr": ("#loc+name+i_fr", False),
    "name_ar": ("#loc+name+i_ar", False), "name_es": ("#loc+name+i_es", False),
    "alt": ("#loc+name+alt", False),
}


def read_places(path) -> list[Place]:
    """Reads a places file (HXL-tagged CSV); raises ValueError naming bad rows."""
    from bot.services.hxl_io import read_rows

    parsed, problems = [], []
    for line, values in read_rows(path, PLACE_COLUMNS):
        values = {key: value.strip() for key, value in values.items()}
        try:
            lat, lon = float(values["lat"]), float(values["lon"])
            if not (-90 <= lat <= 90 and -180 <= lon <= 180):
                raise ValueError
        except ValueError:
            problems.append(f"line {line}: bad coordinates {values.get('lat')!r}, {values.get('lon')!r}")
            continue
        if not values["name"] or not values["code"]:
            problems.append(f"line {line}: #loc+name and #loc+code are required")
            continue
        parsed.append(values)
    if problems:
        raise ValueError(f"{path.name}: " + "; ".join(problems))
    return places_from_rows(parsed)


def import_places(session, places: Iterable[Place]) -> tuple[int, int]:
    """Upserts places (by code) with all their names; returns (created, updated). Commits."""
    import sqlalchemy as sa

    from bot.services.models import Place as PlaceRow, PlaceName

    rows = {row.code: row for row in session.execute(sa.select(PlaceRow)).scalars()}
    created = updated = 0
    for place in places:
        row = rows.get(place.code)
        names = [PlaceName(language=lang, name=name, key=sorted(keys_of(name))[0] if keys_of(name) else "")
                 for lang, name in place.names]
        values = dict(kind=place.kind, country=place.country, lat=place.lat, lon=place.lon,
                      admin1_pcode=place.admin1_pcode, admin2_pcode=place.admin2_pcode)
        if row is None:
            row = rows[place.code] = PlaceRow(code=place.code, **values)
            row.names = names
            session.add(row)
            created += 1
            continue
        old_names = sorted((n.language, n.name) for n in row.names)
        changed = old_names != sorted(place.names) or any(getattr(row, k) != v for k, v in values.items())
        if changed:
            for key, value in values.items():
                setattr(row, key, value)
            row.names = names
            updated += 1
    if created or updated:
        from bot.services.models import bump_directory_version

        bump_directory_version(session)
    session.commit()
    return created, updated


def load_gazetteer(session) -> Gazetteer:
    """The places table, plus every town and admin area the services directory names.

    A name only the directory knows becomes a place at the mean position of its services.
    """
    import sqlalchemy as sa

    from bot.services.models import Place as PlaceRow, Service

    gazetteer = Gazetteer()
    for row in session.execute(sa.select(PlaceRow)).scalars():
        gazetteer.add(Place(row.code, row.kind, row.country, row.lat, row.lon,
                            tuple((n.language, n.name) for n in row.names),
                            row.admin1_pcode, row.admin2_pcode))
    named: dict[tuple[str, str, str], list[tuple[float, float]]] = {}
    query = sa.select(Service.country, Service.place_name, Service.admin2_name, Service.lat, Service.lon)
    for country, place_name, admin2_name, lat, lon in session.execute(query):
        for kind, name in (("town", place_name), ("district", admin2_name)):
            if name:
                named.setdefault((country, kind, name), []).append((lat, lon))
    for (country, kind, name), points in sorted(named.items()):
        if keys_of(name) & set(gazetteer._keys):
            continue  # the places file knows it already
        lat = sum(p[0] for p in points) / len(points)
        lon = sum(p[1] for p in points) / len(points)
        gazetteer.add(Place(f"dir-{country.lower()}-{kind}-{fold(name).replace(' ', '-')}", kind,
                            country, round(lat, 5), round(lon, 5), (("", name),)))
    return gazetteer
