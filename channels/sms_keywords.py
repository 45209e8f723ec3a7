"""The SMS keywords (``sms_keywords.yml``): whole-message words with a fixed meaning.

``load_keywords`` is what the SMS channel (``channels.sms``) uses: a message that is exactly one
of the words (after ``bot.keywords.normalise``: lower case, no punctuation, no accents) becomes
the word's payload. ``stop_words(language)`` is what a campaign text in that language must
contain to say how to stop (``bot.campaigns.definition``): the words every language shares
(``all``) and the language's own. Kept apart from ``channels.sms`` so that reading the words
does not import Rasa.

A meaning's ``words`` is a list, or a mapping of language codes (and ``all``) to lists; the
channel understands every word whatever the conversation's language.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict

import yaml

from bot.keywords import normalise

KEYWORDS_FILE = Path(__file__).resolve().parent / "sms_keywords.yml"
EVERY_LANGUAGE = "all"


@dataclass(frozen=True)
class Keywords:
    """Normalised whole-message words and what they mean on SMS."""

    payloads: Dict[str, str]  # word -> payload
    provider_stop: frozenset  # words Twilio opts a number out on
    more: frozenset
    help: frozenset = frozenset()  # the words of ``help``: the emergency contacts and the menu
    # language (or "all") -> the normalised words whose payload is /unsubscribe
    stop_by_language: Dict[str, tuple] = field(default_factory=dict)

    def payload(self, text: str) -> str | None:
        return self.payloads.get(normalise(text))

    def is_provider_stop(self, text: str) -> bool:
        return normalise(text) in self.provider_stop

    def is_help(self, text: str) -> bool:
        return normalise(text) in self.help

    def is_more(self, text: str) -> bool:
        return normalise(text) in self.more or text.strip() == "/more"

    def stop_words(self, language: str) -> tuple[str, ...]:
        """The normalised words that end a subscription, for a text in ``language``: those of
        every language first, then the language's own, in the file's order."""
        shared = self.stop_by_language.get(EVERY_LANGUAGE, ())
        own = self.stop_by_language.get(language, ()) if language != EVERY_LANGUAGE else ()
        return tuple(shared) + tuple(own)


def _words_by_language(name: str, meaning: str, words: Any) -> Dict[str, list]:
    if isinstance(words, list):
        return {EVERY_LANGUAGE: words}
    if isinstance(words, dict) and all(isinstance(v, list) for v in words.values()):
        return {str(language): list(values) for language, values in words.items()}
    raise ValueError(f"{name}: {meaning} must have a list of words (or lists per language)")


@lru_cache(maxsize=2)
def load_keywords(path: Path = KEYWORDS_FILE) -> Keywords:
    """Reads ``sms_keywords.yml``.

    Raises:
        ValueError: a malformed file, or a word listed under two meanings (or twice).
    """
    name = Path(path).name
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{name}: must map meanings to their words")
    payloads: Dict[str, str] = {}
    more: set = set()
    stop_by_language: Dict[str, tuple] = {}
    for meaning, entry in data.items():
        if not isinstance(entry, dict) or "words" not in entry:
            raise ValueError(f"{name}: {meaning} must have a list of words")
        for language, words in _words_by_language(name, meaning, entry["words"]).items():
            keys = []
            for word in words:
                key = normalise(str(word))
                if not key or key in payloads or key in more:
                    raise ValueError(f"{name}: {word!r} is empty or listed twice")
                if meaning == "more":
                    more.add(key)
                elif "payload" in entry:
                    payloads[key] = str(entry["payload"])
                else:
                    raise ValueError(f"{name}: {meaning} needs a payload")
                keys.append(key)
            if entry.get("payload") == "/unsubscribe":
                stop_by_language[language] = stop_by_language.get(language, ()) + tuple(keys)
    provider = frozenset(normalise(str(w)) for w in (data.get("stop") or {}).get("provider", []))
    help_words = frozenset(
        normalise(str(word))
        for words in _words_by_language(name, "help", (data.get("help") or {}).get("words", []))
        .values() for word in words)
    return Keywords(payloads, provider, frozenset(more), help_words, stop_by_language)


def stop_words(language: str, path: Path = KEYWORDS_FILE) -> tuple[str, ...]:
    """The normalised SMS words that end a subscription, for a text in ``language``."""
    return load_keywords(path).stop_words(language)
