"""Keeping message text, addresses and metadata out of every log line, at every level.

``install_log_scrubber()`` (idempotent) puts ``scrub`` into every log record the process
creates, whichever library logs it (Rasa's processor at DEBUG quotes whole messages; its
structlog output goes through the standard ``logging`` too), before any handler, file or
console sees it. It does two things:

- words of values this process was told are sensitive (``remember_sensitive``: the channels
  register each incoming message's text, the provider address and metadata values, for ten
  minutes, in memory only) are replaced wherever they appear, ignoring case;
- anything shaped like a phone number, an e-mail address or a long ID number is replaced,
  whether or not it was registered.

The replacement is ``[redacted]``. Pseudonymous conversation ids are kept: they are what
operators need to follow a conversation in the logs.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections import OrderedDict
from typing import Any, Iterable

REDACTED = "[redacted]"
REMEMBER_SECONDS = 600
MAX_REMEMBERED = 200_000
MIN_WORD_CHARS = 3

PATTERNS = (
    # e-mail addresses. The look-behind lets a match start only where a run of address
    # characters starts: without it a long run with no "@" was rescanned from each of its
    # characters (quadratic: 40-85 ms for a 4 KB line of letters and dots).
    re.compile(r"(?<![\w.+\-])[\w.+\-]+@[\w\-]+(?:\.[\w\-]+)+"),
    # international numbers: +999 555 0100, +9995550100, +999-555-0100
    re.compile(r"(?<![\w+])\+\d[\d ().\-]{5,}\d(?!\w)"),
    # local numbers in groups: (0999) 555-0100, 0999.555.0100, 0803 555 0100
    re.compile(r"(?<![\w.])\(?\d{2,5}\)?[ .\-]\d{2,4}[ .\-]\d{2,5}(?:[ .\-]\d{1,5})?(?![\w]|\.\d)"),
    # long digit runs (numbers, chat ids, ID numbers), but not decimals such as timestamps
    re.compile(r"(?<![\w.])\d{7,}(?![\w]|\.\d)"),
    # letter-prefixed document numbers: A12345678, ZX4471928
    re.compile(r"(?<![\w\-])[A-Z]{1,3}\d{5,12}[A-Z]?(?![\w\-])"),
)
# Words of Rasa's, Sanic's and the project's own log lines, never treated as sensitive on
# their own (a whole message containing them still is).
LOG_VOCABULARY = frozenset("""
    action actions active and bot confidence conversation current debug default entities entity
    event events false form intent intents key language latest level listen loop message name
    none null policy predicted prediction previous requested rule session slot slots started
    state states text the tracker true type user utter value with
""".split())
_PSEUDONYM = re.compile(r"c[0-9a-f]{32}")


# A word as it appears in a log line, JSON-escaped non-ASCII letters included ("\u0645...").
TOKEN = re.compile(r"(?:\\u[0-9a-fA-F]{4}|\w)+")


class _Remembered:
    """Recently seen sensitive words (casefolded), with expiry. Memory only.

    Lookup is a set membership per word of the log line, so scrubbing costs the same with
    ten remembered words or a hundred thousand.
    """

    def __init__(self) -> None:
        self._items: "OrderedDict[str, float]" = OrderedDict()
        self._lock = threading.Lock()
        self._swept = time.monotonic()

    def add(self, values: Iterable[str]) -> None:
        now = time.monotonic()
        with self._lock:
            for value in values:
                self._items[value] = now + REMEMBER_SECONDS
                self._items.move_to_end(value)
            while len(self._items) > MAX_REMEMBERED:
                self._items.popitem(last=False)
            if now - self._swept > 30:
                self._sweep(now)

    def _sweep(self, now: float) -> None:
        self._swept = now
        while self._items:
            key, until = next(iter(self._items.items()))
            if until > now:
                break
            del self._items[key]

    def __contains__(self, word: str) -> bool:
        return word in self._items

    def __bool__(self) -> bool:
        now = time.monotonic()
        if now - self._swept > 30:  # forget expired words even when no message comes in
            with self._lock:
                self._sweep(now)
        return bool(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


_remembered = _Remembered()


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item)
    elif isinstance(value, (list, tuple, set)):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield str(value)


def remember_sensitive(*values: Any) -> None:
    """Marks strings (and every string inside dicts and lists) as never to be logged.

    Each value is remembered word by word (words of 3 characters or more outside
    ``LOG_VOCABULARY``, also as JSON writes them when escaped), and as its digits alone, so
    that a log line quoting a message, part of it, or its JSON-escaped form is scrubbed.
    """
    found = set()
    for text in _strings(list(values)):
        for token in TOKEN.findall(text) + TOKEN.findall(json.dumps(text)):
            folded = token.casefold()
            if (len(token) >= MIN_WORD_CHARS and folded not in LOG_VOCABULARY
                    and not _PSEUDONYM.fullmatch(token)):
                found.add(folded)
        digits = re.sub(r"\D", "", text)
        if len(digits) >= 6:
            found.add(digits)
    if found:
        _remembered.add(found)


def forget_sensitive() -> None:
    _remembered.clear()


def scrub(text: str) -> str:
    """``text`` with sensitive values and identifier-shaped strings replaced."""
    if not text:
        return text
    if _remembered:
        text = TOKEN.sub(lambda m: REDACTED if m.group(0).casefold() in _remembered else m.group(0), text)
    for shape in PATTERNS:
        text = shape.sub(lambda m: m.group(0) if _PSEUDONYM.fullmatch(m.group(0)) else REDACTED, text)
    return text


def scrub_record(record: logging.LogRecord) -> logging.LogRecord:
    """Replaces the record's message (and exception text) with scrubbed text."""
    if getattr(record, "_helpline_scrubbed", False):
        return record
    try:
        message = record.getMessage()
    except Exception:  # a broken format string: keep nothing of it but the template
        message = str(record.msg)
    record.msg = scrub(message)
    record.args = None
    if record.exc_info:
        formatter = logging.Formatter()
        record.exc_text = scrub(formatter.formatException(record.exc_info))
        record.exc_info = None
    if record.stack_info:
        record.stack_info = scrub(record.stack_info)
    record._helpline_scrubbed = True
    return record


class ScrubbingFilter(logging.Filter):
    """A logging filter doing ``scrub_record``; usable on any handler or logger."""

    def filter(self, record: logging.LogRecord) -> bool:
        scrub_record(record)
        return True


_installed = False
_install_lock = threading.Lock()


def install_log_scrubber() -> None:
    """Scrubs every log record this process creates from now on (idempotent).

    A record factory sees each record of every logger (Rasa's, the action server's, Sanic's,
    the project's) at creation, before handlers added at any time, so it cannot be bypassed
    by a handler configured later; the filter is also put on the handlers present now.
    Python warnings are routed through logging (``logging.captureWarnings``): Rasa warns
    with the whole text of a message that looks like a payload of an unknown intent, and a
    warning written straight to stderr would pass no scrubber.
    """
    global _installed
    with _install_lock:
        if _installed:
            return
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            return scrub_record(previous(*args, **kwargs))

        logging.setLogRecordFactory(factory)
        for handler in logging.getLogger().handlers:
            handler.addFilter(ScrubbingFilter())
        logging.captureWarnings(True)
        _installed = True
