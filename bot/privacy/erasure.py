"""Erasing everything keyed by a conversation id, at once.

Whatever keeps data under a conversation id registers an eraser here (the reply-route cache
does so when it is created; the tracker store for the hand-off's cases and the campaigns'
subscribers). The tracker store calls ``erase`` when a quick exit or "forget me" is saved,
after deleting the conversation's own events, and ``erase(..., expiry=True)`` when it deletes
an idle conversation: an eraser registered with ``on_expiry=False`` (a subscription, whose
consent outlives the conversation) runs only for the person's own request. An eraser that
needs what another one deletes registers with ``first=True`` and runs before the others (the
Telegram channel reads the chat's recent message ids from the reply route, to delete them
from the person's phone, before the route is forgotten).
"""

from __future__ import annotations

import logging
from typing import Awaitable, Callable, Dict

logger = logging.getLogger(__name__)
Eraser = Callable[[str], Awaitable[None]]
_erasers: Dict[str, Eraser] = {}
_only_on_request: set[str] = set()


def register(name: str, eraser: Eraser, on_expiry: bool = True, first: bool = False) -> None:
    """Adds (or replaces) the eraser called ``name``; ``on_expiry=False``: not when a
    conversation is deleted for idleness; ``first``: runs before the erasers registered
    without it (it reads something they delete)."""
    _erasers.pop(name, None)
    if first:
        others = dict(_erasers)
        _erasers.clear()
        _erasers[name] = eraser
        _erasers.update(others)
    else:
        _erasers[name] = eraser
    if on_expiry:
        _only_on_request.discard(name)
    else:
        _only_on_request.add(name)


def unregister(name: str) -> None:
    _erasers.pop(name, None)
    _only_on_request.discard(name)


def registered() -> tuple[str, ...]:
    return tuple(_erasers)


async def erase(conversation_id: str, expiry: bool = False) -> list[str]:
    """Runs every eraser for ``conversation_id`` (``expiry``: the conversation is deleted for
    idleness, not at the person's request), in order (those registered ``first`` before the
others); returns the names of those that failed.

    A failing eraser does not stop the others; the failure is logged without the id's data.
    """
    failed = []
    for name, eraser in list(_erasers.items()):
        if expiry and name in _only_on_request:
            continue
        try:
            await eraser(conversation_id)
        except Exception as exc:  # one broken store must not keep the others' data
            logger.error("erasure: %s failed (%s)", name, type(exc).__name__)
            failed.append(name)
    return failed
