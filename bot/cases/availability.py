"""Whether a person can be connected at all, asked before every text that would offer one.

``HandOff.of`` reads the users table (about 1 ms on SQLite); the texts ask it every turn
(the ``person_available`` slot) and for every message that offers a person, so the answer is
kept per process for ``TTL_SECONDS``: a new or removed caseworker account shows in the
offers within that time. Asking for a person always checks afresh (``actions/handoff.py``).
A database that cannot be read means no person: no text then promises one (ARCHITECTURE,
promise 8: a text promises only what the deployment can do).
"""

from __future__ import annotations

import logging
import time
from typing import Callable, Optional

from sqlalchemy.exc import SQLAlchemyError

from bot.cases.service import HandOff
from bot.settings import Settings

logger = logging.getLogger(__name__)
TTL_SECONDS = 15.0
_SEEN: dict[str, tuple[float, bool]] = {}  # database URL -> (when asked, answer)


def person_available(url: str, settings: Optional[Settings] = None, ttl: float = TTL_SECONDS,
                     clock: Callable[[], float] = time.monotonic) -> bool:
    """Whether a caseworker can be connected on ``url`` (cases tables and an active account),
    as known at most ``ttl`` seconds ago.

    Raises:
        ValueError: for a negative ``ttl``.
    """
    if ttl < 0:
        raise ValueError(f"ttl must be 0 or more seconds, got {ttl}")
    now = clock()
    seen = _SEEN.get(url)
    if seen is not None and now - seen[0] < ttl:
        return seen[1]
    try:
        available = HandOff.of(url, settings) is not None
    except SQLAlchemyError as exc:  # the person still gets an answer, one without a promise
        logger.warning("hand-off availability: the database cannot be read (%s)",
                       type(exc).__name__)
        available = False
    _SEEN[url] = (now, available)
    return available


def forget() -> None:
    """Drops what is known (tests; a process that just changed the accounts)."""
    _SEEN.clear()
