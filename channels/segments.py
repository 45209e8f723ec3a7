"""SMS segments: how many a text costs, and splitting a long answer at sentence boundaries.

An SMS is GSM-7 encoded when every character is in the GSM 03.38 basic set or its extension
table (an extension character, such as ``€`` or ``[``, takes two septets: an escape and the
character); otherwise the whole message is UCS-2 (UTF-16 code units, so an emoji outside the
Basic Multilingual Plane takes two). A single message holds 160 septets or 70 UCS-2 units; a
longer one is sent as concatenated parts whose user-data header leaves 153 septets or 67 units
each. A part never ends between an escape and its character, nor between the two halves of a
surrogate pair, which is why counting walks the text rather than dividing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")
SINGLE = {"gsm7": 160, "ucs2": 70}
CONCATENATED = {"gsm7": 153, "ucs2": 67}
_SENTENCE_END = re.compile(r"(?<=[.!?؟。;؛])\s+|\n+")  # after ; too: contact lists


@dataclass(frozen=True)
class SegmentCount:
    encoding: str  # "gsm7" or "ucs2"
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    segments: int


def encoding_of(text: str) -> str:
    return "gsm7" if all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text) else "ucs2"


def _units(ch: str, encoding: str) -> int:
    if encoding == "gsm7":
        return 2 if ch in GSM7_EXTENSION else 1
    return 2 if ord(ch) > 0xFFFF else 1


def count_segments(text: str) -> SegmentCount:
    """The encoding, length in units and number of segments of ``text`` as one SMS."""
    encoding = encoding_of(text)
    units = [_units(ch, encoding) for ch in text]
    total = sum(units)
    if total <= SINGLE[encoding]:
        return SegmentCount(encoding, total, 1 if text else 0)
    per_part, segments, used = CONCATENATED[encoding], 1, 0
    for size in units:  # a character's units never straddle two parts
        if used + size > per_part:
            segments, used = segments + 1, 0
        used += size
    return SegmentCount(encoding, total, segments)


def split_to_budget(text: str, budget: int) -> list[str]:
    """``text`` cut into parts of at most ``budget`` segments each, at sentence ends.

    A sentence longer than the budget on its own is cut between words (or, failing that,
    between characters). Joining the parts with spaces gives back the text's words, except a
    word too long for a whole budget, which is cut.

    Raises:
        ValueError: when ``budget`` is below 1.
    """
    if budget < 1:
        raise ValueError(f"the segment budget must be at least 1, not {budget}")
    fits = lambda part: count_segments(part).segments <= budget  # noqa: E731
    if fits(text):
        return [text]
    return pack([(" ", piece) for piece in sentence_pieces(text, fits)], fits)


def pack(units: list[tuple[str, str]], fits: Callable[[str], bool]) -> list[str]:
    """Greedily joins (separator, piece) units into as few parts as ``fits`` allows, in order;
    each piece must fit alone. The separator goes between a piece and the one before it."""
    parts: list[str] = []
    current = ""
    for separator, piece in units:
        candidate = f"{current}{separator}{piece}" if current else piece
        if fits(candidate):
            current = candidate
        else:
            parts.append(current)
            current = piece
    if current:
        parts.append(current)
    return parts


def sentence_pieces(text: str, fits: Callable[[str], bool]) -> list[str]:
    """Sentences, each cut further into words or characters when it alone is too long."""
    pieces: list[str] = []
    for sentence in (s.strip() for s in _SENTENCE_END.split(text)):
        if not sentence:
            continue
        if fits(sentence):
            pieces.append(sentence)
            continue
        for word in sentence.split():
            while not fits(word):  # one endless "word" (a URL, Arabic without spaces...)
                cut = max(i for i in range(1, len(word) + 1) if fits(word[:i]))
                pieces.append(word[:cut])
                word = word[cut:]
            pieces.append(word)
    return pieces
