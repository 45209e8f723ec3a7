"""Erasing everything keyed by a conversation id, at once.

Whatever keeps data under a conversation id registers an eraser here (the reply-route cache
does so when it is created; cases will too). The tracker store calls ``erase`` when a quick
exit or "forget me" is saved, after deleting the conversation's own events.
"""

from __future__ import annotations

import logging
from typing import Awaitable, Callable, Dict

logger = logging.getLogger(__name__)
Eraser = Callable[[str], Awaitable[None]]
_erasers: Dict[str, Eraser] = {}


def register(name: str, eraser: Eraser) -> None:
    """Adds (or replaces) the eraser called ``name``."""
    _erasers[name] = eraser


def unregister(name: str) -> None:
    _erasers.pop(name, None)


def registered() -> tuple[str, ...]:
    return tuple(_erasers)


async def erase(conversation_id: str) -> list[str]:
    """Runs every eraser for ``conversation_id``; returns the names of those that failed.

    A failing eraser does not stop the others; the failure is logged without the id's data.
    """
    failed = []
    for name, eraser in list(_erasers.items()):
        try:
            await eraser(conversation_id)
        except Exception as exc:  # one broken store must not keep the others' data
            logger.error("erasure: %s failed (%s)", name, type(exc).__name__)
            failed.append(name)
    return failed
