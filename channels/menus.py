"""Numbered options: a typed digit means the matching button of the last menu shown.

Channel-independent. The payloads of the last bot turn's buttons (``/find_services``...) are
kept in the conversation's encrypted reply route (``channels.gateway``). When nothing is
remembered, digits refer to the main menu, which is reachable at any time.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence, Text

from rasa.core.channels.channel import CollectingOutputChannel

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


def language_of(messages: Sequence[dict]) -> str:
    """The language of a bot turn: the ``language`` of the last message's response metadata.

    Every catalog response carries ``metadata: {language: ..}`` (``bot.catalog``), and
    actions that compose texts pass the same; a message without it gives "".
    """
    for message in reversed(messages):
        metadata = message.get("metadata")
        if isinstance(metadata, dict) and isinstance(metadata.get("language"), str):
            return metadata["language"]
    return ""


class TurnCollector(CollectingOutputChannel):
    """Collects a bot turn's messages whole (Rasa's collector splits texts at blank lines and
    drops the metadata): ``{"recipient_id", "text", "buttons", "metadata"}`` per message.

    It goes by the name of the channel it collects for, so that Rasa picks a response's
    variation for that channel (the catalog's ``channel_words``: no "tap" on SMS).
    """

    def __init__(self, channel: str = "") -> None:
        super().__init__()
        self._channel = channel

    def name(self) -> Text:  # type: ignore[override]  # Rasa calls it on the instance
        return self._channel or super().name()

    async def send_response(self, recipient_id: Text, message: dict[str, Any]) -> None:
        self.messages.append({
            "recipient_id": recipient_id,
            "text": message.get("text") or "",
            "buttons": list(message.get("buttons") or []),
            "metadata": dict(message.get("metadata") or {}),
        })
