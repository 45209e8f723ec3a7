"""Numbered options: a typed digit means the matching button of the last menu shown.

Channel-independent. The payloads of the last bot turn's buttons (``/find_services``...) are
kept in the conversation's encrypted reply route (``channels.gateway``). When nothing is
remembered, digits refer to the main menu, which is reachable at any time.
"""

from __future__ import annotations

from typing import Optional, Sequence

from bot.catalog import parse_choice


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
