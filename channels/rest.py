"""A JSON-over-HTTP channel for local chat, the tests and simple integrations.

POST /webhooks/helpline/webhook with ``{"sender": "<id>", "message": "<text>"}``; the reply is
the list of bot messages (``text`` and ``buttons``), like Rasa's REST channel. A typed option
number is turned into the matching button's payload (see ``channels.menus``). Request
metadata is not accepted: providers put phone numbers there.
"""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable, Dict, Optional, Text

from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.catalog import load_catalog
from channels.menus import MenuMemory, payloads_of, resolve_choice

logger = logging.getLogger(__name__)
MAX_MESSAGE_CHARS = 4096
MAX_SENDER_CHARS = 128


class RequestError(ValueError):
    """A request the channel refuses, with a message safe to return to the client."""


def parse_request(body: Any) -> tuple[str, str]:
    """Checks a webhook body and returns (sender, message).

    Raises:
        RequestError: naming what is wrong.
    """
    if not isinstance(body, dict):
        raise RequestError("the body must be a JSON object with 'sender' and 'message'")
    sender, message = body.get("sender"), body.get("message")
    if not isinstance(sender, str) or not sender.strip():
        raise RequestError("'sender' must be a non-empty string")
    if len(sender) > MAX_SENDER_CHARS:
        raise RequestError(f"'sender' is longer than {MAX_SENDER_CHARS} characters")
    if not isinstance(message, str) or not message.strip():
        raise RequestError("'message' must be a non-empty string")
    if len(message) > MAX_MESSAGE_CHARS:
        raise RequestError(f"'message' is longer than {MAX_MESSAGE_CHARS} characters")
    return sender, message


class HelplineRestInput(InputChannel):
    """JSON webhook with numbered-option mapping."""

    @classmethod
    def name(cls) -> Text:
        return "helpline"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> "HelplineRestInput":
        return cls()

    def __init__(self, memory: Optional[MenuMemory] = None) -> None:
        self.memory = memory or MenuMemory()
        self._main_menu: Optional[list[str]] = None

    def main_menu(self) -> list[str]:
        if self._main_menu is None:
            self._main_menu = load_catalog().main_menu_payloads()
        return self._main_menu

    def blueprint(
        self, on_new_message: Callable[[UserMessage], Awaitable[Any]]
    ) -> Blueprint:
        hook = Blueprint("helpline_rest_webhook", __name__)

        @hook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @hook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            try:
                body = request.json
            except Exception:  # sanic raises its own error types for bad JSON
                body = None
            try:
                sender, text = parse_request(body)
            except RequestError as exc:
                logger.info("helpline channel: refused a request (%s)", exc)
                return response.json({"error": str(exc)}, status=400)
            text = resolve_choice(text, self.memory.recall(sender), self.main_menu())
            collector = CollectingOutputChannel()
            await on_new_message(
                UserMessage(text, collector, sender, input_channel=self.name())
            )
            self.memory.remember(sender, payloads_of(collector.messages))
            return response.json(collector.messages)

        return hook
