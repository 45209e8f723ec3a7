"""Canary values and a scanner that looks for them in every byte the system left.

A canary is a fake identifying detail (visibly fictional: the +999 country code is not
assigned, example.org is reserved). ``Scanner`` looks for each canary case-folded, for each
of its words of 5+ letters, and, for canaries with 9 or more digits, for the digits alone in
the digits of the scanned text (so ``+999 555 0142`` is found as ``9995550142`` or
``999-555-0142``). Every hit names the place and shows the surrounding bytes.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional

PHONES = ["+999 555 0142", "+9995550143", "(0999) 555-0144", "0999.555.0145", "00999 555 0146"]
NAMES = ["Temperance Oyelaran", "Kwabena Quillfeather"]
EMAILS = ["temperance.oyelaran@example.org", "k.quillfeather@example.org"]
ID_NUMBERS = ["ZX4471928", "19283746501"]
ADDRESSES = ["17 Quillfeather Lane, Maiduguri"]
# A shared position (in Maiduguri, six decimals as channels send it): never to be kept.
COORDINATES = ["11.843171", "13.165293"]
CANARY_SOURCES = {"canary", "test_canary"}
CANARIES = PHONES + NAMES + EMAILS + ID_NUMBERS + ADDRESSES + COORDINATES


@dataclass(frozen=True)
class Hit:
    place: str
    canary: str
    form: str
    context: str

    def __str__(self) -> str:
        return f"{self.place}: {self.canary!r} ({self.form}) in ...{self.context}..."


def forms_of(canary: str) -> list[tuple[str, str]]:
    """(form name, text to look for) for one canary."""
    forms = [("case-folded", canary.casefold())]
    for word in re.findall(r"[^\W\d_]{5,}", canary):
        if word.casefold() not in {"example", "maiduguri"}:  # real words: not identifying alone
            forms.append(("word", word.casefold()))
    digits = re.sub(r"\D", "", canary)
    if len(digits) >= 9:
        forms.append(("digits-only", digits))
    return forms


class Scanner:
    def __init__(self, canaries: Iterable[str] = CANARIES) -> None:
        self.forms = [(c, name, text) for c in canaries for name, text in forms_of(c)]
        self.hits: list[Hit] = []
        self.places: list[str] = []

    def scan_text(self, place: str, text: str) -> None:
        self.places.append(place)
        folded = text.casefold()
        digit_positions = [i for i, ch in enumerate(text) if ch.isdigit()]
        digits = "".join(text[i] for i in digit_positions)
        for canary, form, needle in self.forms:
            if form == "digits-only":
                at = digits.find(needle)
                if at >= 0:
                    start = digit_positions[at]
                    self.hits.append(Hit(place, canary, form, text[max(0, start - 40):start + 60]))
            else:
                at = folded.find(needle)
                if at >= 0:
                    self.hits.append(Hit(place, canary, form, text[max(0, at - 40):at + 60]))

    def scan_bytes(self, place: str, data: bytes) -> None:
        self.scan_text(place, data.decode("utf-8", errors="replace"))
        if b"\x00" in data:  # UTF-16 text inside a binary file
            self.scan_text(place + " (utf-16)", data.decode("utf-16-le", errors="replace"))

    def scan_tree(self, root: Path, since: Optional[float] = None,
                  skip: tuple[str, ...] = (".venv", ".git")) -> int:
        """Scans every file under ``root`` (changed since ``since``, if given); returns how many.

        The canary definitions themselves (this file, the canary test and their compiled
        forms) are not scanned.
        """
        count = 0
        for path in root.rglob("*"):
            if any(part in skip for part in path.relative_to(root).parts):
                continue
            if path.name.split(".")[0] in CANARY_SOURCES and path.parent.name in ("tests", "utils", "__pycache__"):
                continue
            if not path.is_file() or path.is_symlink():
                continue
            if since is not None and path.stat().st_mtime < since:
                continue
            self.scan_bytes(str(path), path.read_bytes())
            count += 1
        return count

    def scan_redis(self, url: str) -> int:
        """Scans every key and value of the Redis database; returns how many keys."""
        import redis

        client = redis.Redis.from_url(url)
        count = 0
        for key in client.scan_iter("*"):
            kind = client.type(key).decode()
            if kind == "string":
                values = [client.get(key) or b""]
            elif kind == "hash":
                values = [k + b"=" + v for k, v in client.hgetall(key).items()]
            elif kind == "list":
                values = client.lrange(key, 0, -1)
            elif kind == "set":
                values = list(client.smembers(key))
            elif kind == "zset":
                values = [m for m, _ in client.zrange(key, 0, -1, withscores=True)]
            else:
                values = [client.dump(key) or b""]
            place = f"redis {url} key {key.decode(errors='replace')}"
            self.scan_bytes(place + " (name)", key)
            self.scan_bytes(place, b"\n".join(values))
            count += 1
        client.close()
        return count

    def scan_postgres(self, url: str) -> str:
        """Scans a pg_dump of the database; returns the dump."""
        dump = subprocess.run(["pg_dump", "--no-owner", url], capture_output=True, check=True).stdout
        self.scan_bytes(f"pg_dump of {url.rsplit('/', 1)[-1]}", dump)
        return dump.decode("utf-8", errors="replace")

    def report(self) -> str:
        return "\n".join(str(hit) for hit in self.hits)
