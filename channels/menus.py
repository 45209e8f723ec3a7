"""Numbered options: a typed digit means the matching button of the last menu shown.

Channel-independent. The payloads of the last bot turn's buttons (``/find_services``...) are
kept in the conversation's encrypted reply route (``channels.gateway``). When nothing is
remembered, digits refer to the main menu, which is reachable at any time.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Optional, Sequence, Text

import yaml

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


DOMAIN_DIR = Path(__file__).resolve().parents[1] / "bot" / "domain"
_PAYLOAD = re.compile(r"/([a-z_]{1,64})(\{.{0,400}\})?", re.DOTALL)
MAX_ENTITY_CHARS = 64
MENU_PAYLOAD = "/menu"


@lru_cache(maxsize=1)
def _domain_names() -> tuple[frozenset[str], frozenset[str]]:
    """The intents and entities of the assistant's domain (``bot/domain/*.yml``)."""
    intents: set[str] = set()
    entities: set[str] = set()
    for path in sorted(DOMAIN_DIR.glob("*.yml")):
        part = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for item in part.get("intents") or []:
            intents.add(next(iter(item)) if isinstance(item, dict) else str(item))
        for item in part.get("entities") or []:
            entities.add(next(iter(item)) if isinstance(item, dict) else str(item))
    return frozenset(intents), frozenset(entities)


def is_own_payload(text: str) -> bool:
    """Whether ``text`` has the form of the assistant's own payloads: ``/intent`` of an intent
    of the domain, with at most a JSON object of the domain's entities with short scalar
    values (``/find_services{"need":"shelter"}``, ``/inform_location{"latitude":..}``)."""
    match = _PAYLOAD.fullmatch(text)
    if match is None:
        return False
    intents, entities = _domain_names()
    if match.group(1) not in intents:
        return False
    if match.group(2) is None:
        return True
    try:
        values = json.loads(match.group(2))
    except ValueError:
        return False
    return isinstance(values, dict) and all(
        key in entities and (isinstance(value, (int, float)) and not isinstance(value, bool)
                             or isinstance(value, str) and len(value) <= MAX_ENTITY_CHARS)
        for key, value in values.items())


def as_text_unless_payload(text: str, shown: Sequence[str] = ()) -> str:
    """What a person wrote, with its leading slashes dropped unless it is one of the
    assistant's own payloads: a button of the last menu (``shown``), or of the form of the
    assistant's payloads (a keyword or command a channel mapped, an earlier button).

    Rasa reads any message starting with "/" as ``/intent{entities}`` and warns, quoting the
    whole text, when the intent is unknown; a person who starts a message with "/" means
    words, and a forged ``/intent{...}`` must not set entities the assistant never offers.
    Slashes alone ask for the menu.
    """
    if not text.startswith("/") or text in shown or is_own_payload(text):
        return text
    return text.lstrip("/").lstrip() or MENU_PAYLOAD


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
