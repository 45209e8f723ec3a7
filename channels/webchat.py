"""The web chat: a page the assistant serves itself, talking to Rasa over same-origin fetch.

Under ``/webhooks/webchat/``:

- ``GET /``: the page (``web/index.html``), with the page's words for the enabled languages
  (the catalog's ``web_*`` channel texts) embedded as a JSON data block;
- ``GET /chat.js``, ``/chat.css``: its script and style (no CDN, no framework, no build step);
- ``GET /neutral``: a plain recipe page that says nothing about the helpline, where the quick
  exit goes unless the deployment names another address (``web_chat.quick_exit_url``);
- ``POST /poll``: ``{"sender"}``; the messages pushed to this session since it last asked (a
  caseworker's replies during a hand-off), once each; the page asks every few seconds;
- ``POST /webhook``: like the REST channel (``channels.rest.parse_request``): ``{"sender",
  "message"}`` or ``{"sender", "location"}``; the answer is the bot's messages as JSON
  (``text``, ``buttons``, ``language``). The sender is a random session id the page made and
  keeps in sessionStorage only; the gateway turns it into a pseudonym.

The page's quick exit sends ``/quick_exit`` for its session (the server erases the
conversation and its route), clears the page and its storage, and replaces the history entry
with the neutral page. No response sets a cookie; every response carries a strict
Content-Security-Policy and ``Cache-Control: no-store`` (nothing in the browser's disk cache).
Neither the session id nor message text is ever logged.
"""

from __future__ import annotations

import html
import json
import logging
import re
from functools import lru_cache
from pathlib import Path
from string import Template
from typing import Any, Awaitable, Callable, Dict, Optional, Text

from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.catalog import Catalog, load_catalog
from bot.deployment import Deployment, cached_deployment
from bot.settings import Settings
from channels.gateway import Gateway, HeldOutput, held_messages, limit_request_size
from channels.menus import TurnCollector
from channels.rest import RequestError, json_body, read_request

logger = logging.getLogger(__name__)
WEB_DIR = Path(__file__).resolve().parent / "web"
# The files the channel serves besides the page, with their content types.
STATIC_FILES = {
    "chat.js": "text/javascript; charset=utf-8",
    "chat.css": "text/css; charset=utf-8",
    "neutral.css": "text/css; charset=utf-8",
    # a plain grey dot: a tab or bookmark shows nothing about the helpline (and the browser
    # does not ask the server's root for /favicon.ico)
    "icon.svg": "image/svg+xml",
}
NEUTRAL_PATH = "neutral"  # relative to the page, so that a reverse proxy's prefix is kept
RTL_LANGUAGES = frozenset({"ar"})
# What the page generates: 16 random bytes as hex. Anything address-like is refused.
SESSION_ID = re.compile(r"^[0-9a-f]{32}$")
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "geolocation=(self), camera=(), microphone=(), interest-cohort=()",
    # A year, subdomains included: once seen over https the page is never fetched over plain
    # http, where a network in the middle could read or change it (the proxy serves https).
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
}


def check_session_id(sender: str) -> None:
    """RequestError unless ``sender`` is a session id as the page makes them."""
    if not SESSION_ID.match(sender):
        raise RequestError("'sender' must be the page's session id (32 hexadecimal characters)")


def page_words(deployment: Deployment, catalog: Catalog) -> dict[str, Any]:
    """What the page needs to speak every enabled language: names, direction, its words."""
    return {
        "default": deployment.default_language,
        "quickExitUrl": deployment.web_quick_exit_url or NEUTRAL_PATH,
        "languages": [
            {"code": code, "name": catalog.names[code], "prompt": catalog.prompts[code],
             "dir": "rtl" if code in RTL_LANGUAGES else "ltr"}
            for code in deployment.languages
        ],
        "words": {
            code: {k: v.replace("{keep_hours}", str(deployment.retention.conversation_idle_hours))
                   for k, v in catalog.channel[code].items() if k.startswith("web_")}
            for code in deployment.languages
        },
    }


def _json_in_html(value: Any) -> str:
    """JSON safe inside a <script type="application/json"> block (no "</script>" way out)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_page(template: str, deployment: Deployment, catalog: Catalog) -> str:
    """The page in the default language (the script switches it), its words embedded."""
    words = page_words(deployment, catalog)
    language = deployment.default_language
    values = {key: html.escape(text) for key, text in words["words"][language].items()}
    options = "".join(
        f'<option value="{item["code"]}" lang="{item["code"]}" dir="{item["dir"]}"'
        f'{" selected" if item["code"] == language else ""}>{html.escape(item["name"])}</option>'
        for item in words["languages"]
    )
    return Template(template).substitute(
        values, lang=language, dir="rtl" if language in RTL_LANGUAGES else "ltr",
        language_options=options, page_words=_json_in_html(words),
    )


def page_message(message: dict[str, Any]) -> dict[str, Any]:
    """A bot message as the page gets it: no recipient id, no metadata but the language."""
    buttons = [{"title": str(b.get("title", "")), "payload": str(b["payload"])}
               for b in message.get("buttons") or [] if b.get("payload")]
    return {"text": message.get("text") or "", "buttons": buttons,
            "language": (message.get("metadata") or {}).get("language") or ""}


@lru_cache(maxsize=None)
def _file(name: str) -> str:
    return (WEB_DIR / name).read_text(encoding="utf-8")


class WebChatInput(InputChannel):
    """The web chat page and its JSON webhook."""

    @classmethod
    def name(cls) -> Text:
        return "webchat"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> "WebChatInput":
        channel = cls()
        channel.gateway.open()  # an unsafe or broken secrets file stops the server at start
        return channel

    def __init__(self, gateway: Optional[Gateway] = None,
                 deployment: Optional[Deployment] = None,
                 catalog: Optional[Catalog] = None) -> None:
        self.gateway = gateway or Gateway(self.name())
        self._deployment = deployment
        self._catalog = catalog

    def page(self) -> str:
        deployment = self._deployment or cached_deployment(Settings.from_env().deployment_file)
        return render_page(_file("index.html"), deployment, self._catalog or load_catalog())

    def blueprint(
        self, on_new_message: Callable[[UserMessage], Awaitable[Any]]
    ) -> Blueprint:
        hook = limit_request_size(Blueprint("helpline_webchat", __name__))

        @hook.middleware("response")
        async def security_headers(_: Request, reply: HTTPResponse) -> None:
            reply.headers.update(SECURITY_HEADERS)

        @hook.route("/", methods=["GET"])
        async def page(request: Request) -> HTTPResponse:
            if not request.path.endswith("/"):  # the page's addresses are relative to it
                return response.redirect(request.path.rsplit("/", 1)[-1] + "/")
            return response.html(self.page())

        @hook.route("/neutral", methods=["GET"])
        async def neutral(_: Request) -> HTTPResponse:
            return response.html(_file("neutral.html"))

        def static(name: str) -> Callable[[Request], Awaitable[HTTPResponse]]:
            async def serve(_: Request) -> HTTPResponse:
                return response.text(_file(name), content_type=STATIC_FILES[name])
            return serve

        for name in STATIC_FILES:
            hook.add_route(static(name), f"/{name}", methods=["GET"],
                           name=f"static_{name.replace('.', '_')}")

        @hook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            try:
                # JSON, also a sendBeacon's text/plain body; the page sends no metadata
                sender, text, _ = read_request(request)
                check_session_id(sender)
            except RequestError as exc:
                logger.info("webchat channel: refused a request (%s)", exc)
                return response.json({"error": str(exc)}, status=400)
            admitted = await self.gateway.admit(sender, text)
            pushed = held_messages(admitted.route)  # waiting for a poll: shown before the turn
            if admitted.limited:  # one request to slow down, then silence for the minute;
                # what is held for the page stays held for its next poll
                return response.json([page_message(m) for m in self.gateway.limited_messages(admitted)])
            collector = TurnCollector(self.name())
            await on_new_message(
                UserMessage(admitted.text, collector, admitted.conversation_id,
                            input_channel=self.name())
            )
            await self.gateway.remember_turn(admitted, collector.messages)
            return response.json(pushed + [page_message(m) for m in collector.messages])

        @hook.route("/poll", methods=["POST"])
        async def poll(request: Request) -> HTTPResponse:
            body = json_body(request)
            sender = body.get("sender") if isinstance(body, dict) else None
            try:
                check_session_id(sender if isinstance(sender, str) else "")
            except RequestError as exc:
                return response.json({"error": str(exc)}, status=400)
            return response.json(await self.gateway.take_held(sender))

        return hook

    def get_output_channel(self) -> OutputChannel:
        return HeldOutput(self.gateway, page_message)
