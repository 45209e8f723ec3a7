"""A bot turn as SMS: plain text, numbered options, within a segment budget, the rest for "more".

``render_turn`` joins the turn's messages (one per line), puts the last buttons under them as
numbered options ("1. Find help near me"; the person replies with the digit, which
``channels.menus`` maps back to the payload), and, when the whole does not fit in the
deployment's ``sms.segment_budget``, cuts it at sentence ends into parts that each fit with the
"reply MORE" hint appended. The options always travel in the last part, beside the text they
answer. Only the first part is sent at once; the others wait in the reply route.

``sms_friendly`` rewrites typographic punctuation (’ « » — …) and, if the deployment allows,
accents that GSM-7 lacks (ê ç á í ó ú), but only when that makes the text GSM-7: one curly
apostrophe would otherwise make a whole English message UCS-2 and cost 2.3 times as many
segments. A text with a word that folding would turn into another word (French "sûr" into
"sur", "safe" into "on") keeps its accents; the catalog avoids such words (a test keeps every
French and Spanish text in GSM-7). Arabic stays as written (it is UCS-2
whatever we do).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Callable, Sequence

from channels.segments import (GSM7_BASIC, GSM7_EXTENSION, count_segments, encoding_of, pack,
                               sentence_pieces)

_PUNCTUATION = {
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2033": '"',
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2212": "-",
    "\u00a0": " ", "\u202f": " ", "\u2009": " ", "\u200a": " ", "\u2007": " ",
    "\u2026": "...", "\u2022": "-", "\u00b7": "-",
}
_GUILLEMETS = re.compile(r"«\s*|\s*»")
_LIGATURES = {"œ": "oe", "Œ": "OE"}
# Words whose accent GSM-7 lacks and whose folded form is another word with another meaning
# ("safe" would read "on", "fast" would read "young"): a text with one of them keeps its accents.
KEEP_ACCENTS = frozenset({
    "sûr", "sûre", "sûrs", "sûres", "dû", "mûr", "mûre", "mûrs", "crû", "côte", "côtes",
    "jeûne", "tâche", "tâches", "forêt",                                    # French
    "tú", "mí",                                                             # Spanish
})
_WORD = re.compile(r"\w+")


def _fold_letter(ch: str) -> str:
    """``ch`` without the accent GSM-7 cannot carry (ê -> e); ``ch`` when it has no such form."""
    if ch in GSM7_BASIC or ch in GSM7_EXTENSION:
        return ch
    if ch in _LIGATURES:
        return _LIGATURES[ch]
    base = "".join(c for c in unicodedata.normalize("NFD", ch) if not unicodedata.combining(c))
    return base if base and all(c in GSM7_BASIC for c in base) else ch


def sms_friendly(text: str, fold_accents: bool = True) -> str:
    """``text`` rewritten into GSM-7 when punctuation (and, if allowed, accents) are all that
    keep it out; otherwise ``text`` unchanged."""
    if encoding_of(text) == "gsm7":
        return text
    candidate = _GUILLEMETS.sub('"', text)
    candidate = "".join(_PUNCTUATION.get(ch, ch) for ch in candidate)
    if fold_accents and not any(w.lower() in KEEP_ACCENTS for w in _WORD.findall(candidate)):
        candidate = "".join(_fold_letter(ch) for ch in candidate)
    return candidate if encoding_of(candidate) == "gsm7" else text


def options_of(messages: Sequence[dict]) -> list[str]:
    """Titles of the last buttons in the turn (the ones a digit maps to), in order."""
    for message in reversed(messages):
        buttons = message.get("buttons") or []
        if buttons:
            return [str(b.get("title", "")) for b in buttons if "payload" in b]
    return []


def render_turn(messages: Sequence[dict], more_hint: str, budget: int,
                fold_accents: bool = True) -> list[str]:
    """The turn as SMS parts, each within ``budget`` segments; parts but the last end with
    ``more_hint``. An empty turn gives no part.

    Raises:
        ValueError: when ``budget`` is below 1 or the hint alone does not fit in it.
    """
    if budget < 1:
        raise ValueError(f"the segment budget must be at least 1, not {budget}")
    paragraphs = [sms_friendly(m["text"].strip(), fold_accents)
                  for m in messages if (m.get("text") or "").strip()]
    options = [sms_friendly(f"{n}. {title}", fold_accents)
               for n, title in enumerate(options_of(messages), start=1)]
    fits: Callable[[str], bool] = lambda part: count_segments(part).segments <= budget  # noqa: E731
    whole = "\n".join(paragraphs + options)
    if not whole:
        return []
    if fits(whole):
        return [whole]
    hint = sms_friendly(more_hint, fold_accents)
    if not fits(hint):
        raise ValueError("the 'more' hint alone is longer than the segment budget")
    with_hint = lambda part: fits(f"{part}\n{hint}")  # noqa: E731
    units: list[tuple[str, str]] = []  # (separator before it, text)
    for paragraph in paragraphs:
        for index, piece in enumerate(sentence_pieces(paragraph, with_hint)):
            units.append((" " if index else "\n", piece))
    block = "\n".join(options)  # the options stay together unless they cannot
    units += [("\n", block)] if options and with_hint(block) else [("\n", o) for o in options]
    parts = pack(units, with_hint)
    return [f"{part}\n{hint}" for part in parts[:-1]] + parts[-1:]
