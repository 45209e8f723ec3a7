"""Canned safe replies (``bot/messages/canned.yml``): a label and a text per language."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Mapping, Optional

import yaml

from bot.cases.queue import LANGUAGES
from bot.settings import BOT_DIR

CANNED_FILE = BOT_DIR / "messages" / "canned.yml"
MAX_CHARS = 320  # two SMS segments at most, whatever the channel
_KEY = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
# The values a canned text may take from the deployment (``fill``).
PLACEHOLDERS = ("contacts", "confidentiality")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


class CannedError(ValueError):
    """The canned replies file cannot be used; the message lists every problem."""


@dataclass(frozen=True)
class Canned:
    """One canned reply: its key, the caseworker's label, its text per language."""

    key: str
    label: str
    texts: Mapping[str, str]

    def fill(self, language: str, values: Mapping[str, str]) -> Optional[str]:
        """The text in ``language`` with its placeholders filled from ``values``; None when
        one has no value (the deployment sets no confidentiality text): not offered then."""
        text = self.texts[language]
        needed = set(_PLACEHOLDER.findall(text))
        if not all(values.get(name) for name in needed):
            return None
        return _PLACEHOLDER.sub(lambda m: values[m.group(1)], text)


@lru_cache(maxsize=None)
def load_canned(path: Path = CANNED_FILE) -> tuple[Canned, ...]:
    """The canned replies, in the file's order.

    Raises:
        CannedError: unreadable, or a reply without a label or a text in some language, a
            text too long, an unknown placeholder, or a bad key.
    """
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise CannedError(f"{path}: cannot read it ({exc})") from None
    entries = data.get("canned") if isinstance(data, dict) else None
    if not isinstance(entries, dict) or not entries:
        raise CannedError(f"{path}: expected a 'canned:' mapping")
    problems, replies = [], []
    for key, entry in entries.items():
        if not isinstance(key, str) or not _KEY.match(key):
            problems.append(f"{key!r}: keys are lower-case letters, digits and _")
            continue
        if not isinstance(entry, dict):
            problems.append(f"{key}: expected a label and a text per language")
            continue
        if not isinstance(entry.get("label"), str) or not entry["label"].strip():
            problems.append(f"{key}.label: missing")
        for language in LANGUAGES:
            text = entry.get(language)
            if not isinstance(text, str) or not text.strip():
                problems.append(f"{key}.{language}: missing")
            elif len(text) > MAX_CHARS:
                problems.append(f"{key}.{language}: {len(text)} characters (at most {MAX_CHARS})")
            elif (set(_PLACEHOLDER.findall(text)) - set(PLACEHOLDERS)
                  or "{" in _PLACEHOLDER.sub("", text) or "}" in _PLACEHOLDER.sub("", text)):
                problems.append(f"{key}.{language}: the only placeholders are "
                                + ", ".join("{" + p + "}" for p in PLACEHOLDERS))
        unknown = set(entry) - {"label", *LANGUAGES}
        if unknown:
            problems.append(f"{key}: unknown fields {', '.join(sorted(map(str, unknown)))}")
        if not any(p.startswith(f"{key}.") or p.startswith(f"{key}:") for p in problems):
            replies.append(Canned(key, entry["label"].strip(),
                                  {lang: entry[lang].strip() for lang in LANGUAGES}))
    if problems:
        raise CannedError(f"{path}: " + "; ".join(problems))
    return tuple(replies)
