"""Numbered options: a typed digit means the matching button of the last menu shown.

Channel-independent. ``MenuMemory`` keeps, per conversation, only the button payloads of the
last bot turn (``/find_services``...), in memory, bounded in size and expiring. When nothing is
remembered, digits refer to the main menu, which is reachable at any time.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Callable, Iterable, Optional, Sequence

from bot.catalog import parse_choice


class MenuMemory:
    """The last menu's payloads per conversation id (LRU-bounded, idle expiry)."""

    def __init__(
        self,
        ttl_seconds: float = 24 * 3600,
        max_entries: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl_seconds <= 0 or max_entries <= 0:
            raise ValueError("ttl_seconds and max_entries must be positive")
        self._ttl = ttl_seconds
        self._max = max_entries
        self._clock = clock
        self._items: "OrderedDict[str, tuple[float, tuple[str, ...]]]" = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, conversation_id: str, payloads: Iterable[str]) -> None:
        payloads = tuple(payloads)
        with self._lock:
            if not payloads:
                self._items.pop(conversation_id, None)
                return
            self._items[conversation_id] = (self._clock() + self._ttl, payloads)
            self._items.move_to_end(conversation_id)
            while len(self._items) > self._max:
                self._items.popitem(last=False)

    def recall(self, conversation_id: str) -> Optional[tuple[str, ...]]:
        with self._lock:
            item = self._items.get(conversation_id)
            if item is None:
                return None
            expires, payloads = item
            if expires <= self._clock():
                del self._items[conversation_id]
                return None
            return payloads

    def forget(self, conversation_id: str) -> None:
        with self._lock:
            self._items.pop(conversation_id, None)

    def __len__(self) -> int:
        return len(self._items)


def resolve_choice(
    text: str, last_menu: Optional[Sequence[str]], main_menu: Sequence[str]
) -> str:
    """The payload a typed option number stands for, or ``text`` unchanged.

    Args:
        text: what the person typed.
        last_menu: payloads of the last menu shown in this conversation, if any.
        main_menu: payloads of the main menu, used when no menu is remembered.
    """
    number = parse_choice(text)
    if number is None:
        return text
    options = last_menu or main_menu
    if number > len(options):
        return text
    return options[number - 1]


def payloads_of(messages: Sequence[dict]) -> list[str]:
    """Payloads of the buttons in the last message that has buttons."""
    for message in reversed(messages):
        buttons = message.get("buttons") or []
        if buttons:
            return [b["payload"] for b in buttons if "payload" in b]
    return []
