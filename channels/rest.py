"""A JSON-over-HTTP channel for local chat, the tests and simple integrations.

POST /webhooks/helpline/webhook with ``{"sender": "<id>", "message": "<text>"}`` and optionally
``"metadata": {...}``; instead of a message, ``"location": {"latitude": .., "longitude": ..}``
shares a position (it becomes an ``/inform_location`` payload for the services search and is
never written anywhere). The reply is the list of bot messages (``text`` and ``buttons``), like
Rasa's REST channel. Messages pushed to the conversation (a caseworker's replies during a
hand-off) wait, encrypted in its reply route, for ``POST /webhooks/helpline/poll`` with
``{"sender": "<id>"}`` or the client's next message, whose answer brings them first. The sender becomes a pseudonym and a typed option number the matching
button's payload (``channels.gateway``). Metadata reaches Rasa for this turn only: the tracker
store never writes it.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Awaitable, Callable, Dict, Optional, Text

from rasa.core.channels.channel import (
    CollectingOutputChannel, InputChannel, OutputChannel, UserMessage,
)
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.services.reply import location_payload
from channels.gateway import Gateway, HeldOutput, held_messages, limit_request_size

logger = logging.getLogger(__name__)
MAX_MESSAGE_CHARS = 4096
MAX_SENDER_CHARS = 128
MAX_METADATA_CHARS = 4096


class RequestError(ValueError):
    """A request the channel refuses, with a message safe to return to the client."""


def location_message(location: Any) -> str:
    """The message for a shared position; RequestError when it is not one."""
    if not isinstance(location, dict):
        raise RequestError("'location' must be an object with 'latitude' and 'longitude'")
    values = []
    for key, limit in (("latitude", 90), ("longitude", 180)):
        value = location.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not -limit <= value <= limit:
            raise RequestError(f"'location.{key}' must be a number from -{limit} to {limit}")
        values.append(float(value))
    return location_payload(*values)


def parse_request(body: Any) -> tuple[str, str, dict]:
    """Checks a webhook body and returns (sender, message, metadata).

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
    if "location" in body:
        if message is not None:
            raise RequestError("send either 'message' or 'location', not both")
        message = location_message(body["location"])
    if not isinstance(message, str) or not message.strip():
        raise RequestError("'message' must be a non-empty string")
    if len(message) > MAX_MESSAGE_CHARS:
        raise RequestError(f"'message' is longer than {MAX_MESSAGE_CHARS} characters")
    metadata = body.get("metadata", {})
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        raise RequestError("'metadata' must be a JSON object")
    if len(json.dumps(metadata)) > MAX_METADATA_CHARS:
        raise RequestError(f"'metadata' is longer than {MAX_METADATA_CHARS} characters as JSON")
    return sender, message, metadata


def json_body(request: Request) -> Any:
    """The request's JSON body, or None when it is not JSON: not JSON at all, nested too
    deep to read, or holding a string that is not Unicode text (a lone surrogate such as
    "\\ud800", which JSON allows and UTF-8 cannot encode)."""
    try:
        body = request.json
        json.dumps(body, ensure_ascii=False).encode("utf-8")
    except Exception:  # sanic's own errors for bad JSON, RecursionError, UnicodeEncodeError
        return None
    return body


def read_request(request: Request) -> tuple[str, str, dict]:
    """``parse_request`` of the request's JSON body."""
    return parse_request(json_body(request))


class HelplineRestInput(InputChannel):
    """JSON webhook with numbered-option mapping."""

    @classmethod
    def name(cls) -> Text:
        return "helpline"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> "HelplineRestInput":
        channel = cls()
        channel.gateway.open()  # an unsafe or broken secrets file stops the server at start
        return channel

    def __init__(self, gateway: Optional[Gateway] = None) -> None:
        self.gateway = gateway or Gateway(self.name())

    def blueprint(
        self, on_new_message: Callable[[UserMessage], Awaitable[Any]]
    ) -> Blueprint:
        hook = limit_request_size(Blueprint("helpline_rest_webhook", __name__))

        @hook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @hook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            try:
                sender, text, metadata = read_request(request)
            except RequestError as exc:
                logger.info("helpline channel: refused a request (%s)", exc)
                return response.json({"error": str(exc)}, status=400)
            admitted = await self.gateway.admit(sender, text, metadata)
            pushed = held_messages(admitted.route)  # not polled yet: they come first
            if admitted.limited:  # one request to slow down, then silence for the minute;
                # what is held for the page stays held for its next poll
                return response.json([rest_message(m) for m in self.gateway.limited_messages(admitted)])
            collector = CollectingOutputChannel()
            await on_new_message(
                UserMessage(admitted.text, collector, admitted.conversation_id,
                            input_channel=self.name(), metadata=metadata)
            )
            await self.gateway.remember_turn(admitted, collector.messages)
            return response.json(pushed + collector.messages)

        @hook.route("/poll", methods=["POST"])
        async def poll(request: Request) -> HTTPResponse:
            body = json_body(request)
            sender = body.get("sender") if isinstance(body, dict) else None
            if not isinstance(sender, str) or not sender.strip() or len(sender) > MAX_SENDER_CHARS:
                return response.json({"error": "'sender' must be a non-empty string of at most "
                                               f"{MAX_SENDER_CHARS} characters"}, status=400)
            return response.json(await self.gateway.take_held(sender))

        return hook

    def get_output_channel(self) -> OutputChannel:
        return HeldOutput(self.gateway, rest_message)


def rest_message(message: Dict[Text, Any]) -> Dict[Text, Any]:
    """A pushed message as the webhook's answers carry them (no recipient id: the client
    knows who it is)."""
    return {key: message[key] for key in ("text", "buttons", "image", "attachment", "custom")
            if message.get(key)}
