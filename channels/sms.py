"""SMS over Twilio: a signed webhook in, the Messages API out.

Twilio POSTs each incoming SMS (form fields From, Body, NumMedia, OptOutType...) to
``/webhooks/sms/webhook``. The channel

1. checks ``X-Twilio-Signature`` against the auth token and the public ``webhook_url`` (the
   exact URL configured at Twilio): a forged or unsigned request gets 403, nothing else
   happens, and the log says so without any of the request's content;
2. reads keywords (``sms_keywords.yml``, through ``channels.sms_keywords``): STOP and its
   French, Arabic and Spanish equivalents become ``/unsubscribe``, START ``/greet``, HELP and
   MENU ``/menu`` (HELP also puts the emergency contacts before the menu: a person who writes
   HELP may be in danger); PAUSE ``/stop`` (stop the questions: the texts never ask for STOP,
   which opts the number out at Twilio); MORE sends the next waiting part of the last answer;
3. answers a message that is only a picture, a voice note or another file with a short text
   in the conversation's language (no Rasa turn);
4. hands the text to Rasa under the sender's pseudonym (``channels.gateway``: typed digits
   become the payload of the matching option of the last menu);
5. renders the turn as SMS (``channels.sms_text``: numbered options, at most the deployment's
   ``sms.segment_budget`` segments per message, the rest kept in the encrypted reply route for
   "more") and sends the first part through ``TwilioSender`` (retries 429, 5xx and timeouts)
   in a background task, so the webhook answers Twilio at once with an empty TwiML response;
   what Twilio still does not take waits in the route and goes out once it does
   (``channels.redelivery``).

With Twilio's default opt-out handling (``provider_opt_out: true``, the default) Twilio
answers STOP itself and blocks the number, so the assistant sends nothing to a STOP word;
the word still reaches Rasa as ``/unsubscribe`` (ending any questions in progress).

Credentials (credentials.yml, ``${VAR}`` is read from the environment by Rasa)::

    channels.sms.SmsInput:
      account_sid: ${HELPLINE_TWILIO_ACCOUNT_SID}
      auth_token: ${HELPLINE_TWILIO_AUTH_TOKEN}
      sender: ${HELPLINE_TWILIO_SENDER}          # +number or Messaging Service SID (MG...)
      webhook_url: https://helpline.example.org/webhooks/sms/webhook
      # api_url: http://127.0.0.1:PORT           # tests only
      # provider_opt_out: true
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Dict, Optional, Sequence, Text
from urllib.parse import parse_qs

from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from twilio.request_validator import RequestValidator

from bot.cases.service import replies_blocked
from bot.catalog import load_catalog
from bot.deployment import SmsSettings, cached_deployment
from bot.settings import Settings
from channels.gateway import Admitted, Gateway, limit_request_size
from channels.limits import keyed
from channels.menus import TurnCollector
from channels.redelivery import Redelivery, unit
from channels.sms_keywords import load_keywords
from channels.sms_text import render_turn
from channels.twilio_api import TWILIO_API_URL, SendError, TwilioConfig, TwilioSender

logger = logging.getLogger(__name__)
MAX_BODY_CHARS = 1600  # Twilio's own limit for one message
# The largest webhook form read: Twilio's fields with a 1,600-character Body, each character
# percent-encoded as up to four UTF-8 bytes (%XX%XX%XX%XX), fit in about 20 KB.
MAX_FORM_BYTES = 24 * 1024
REPLAY_SECONDS = 24 * 3600  # a MessageSid seen within this time is a replay
OPTED_OUT = 21610  # Twilio: "Attempt to send to unsubscribed recipient"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


@dataclass(frozen=True)
class SmsConfig:
    """The channel's credentials and how it speaks SMS."""

    twilio: TwilioConfig
    webhook_url: str
    provider_opt_out: bool = True

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> "SmsConfig":
        """Raises ValueError naming each missing or wrong key (never printing the token)."""
        values = dict(credentials or {})
        missing = [k for k in ("account_sid", "auth_token", "sender", "webhook_url")
                   if not str(values.get(k) or "").strip()]
        if missing:
            raise ValueError("SMS channel (credentials.yml, channels.sms.SmsInput): "
                             f"missing {', '.join(missing)}")
        url = str(values["webhook_url"]).strip()
        if not url.startswith(("https://", "http://127.0.0.1", "http://localhost")):
            raise ValueError("SMS channel: webhook_url must be the https URL Twilio calls")
        opt_out = values.get("provider_opt_out", True)
        if not isinstance(opt_out, bool):
            raise ValueError("SMS channel: provider_opt_out must be true or false")
        twilio = TwilioConfig(
            account_sid=str(values["account_sid"]).strip(),
            auth_token=str(values["auth_token"]).strip(),
            sender=str(values["sender"]).strip(),
            api_url=str(values.get("api_url") or TWILIO_API_URL).strip(),
        )
        return cls(twilio, url, opt_out)


class FormFields(dict):
    """Field -> list of values; ``getlist`` is how Twilio's validator reads several values."""

    def getlist(self, name: str) -> list:
        return self[name]


def signed_form(request: Request) -> FormFields:
    """The webhook's form fields with empty ones kept (Twilio signs the ``Body=`` of a
    picture; Sanic's own form parser drops it); none for a body that is not a form."""
    if not (request.content_type or "").startswith("application/x-www-form-urlencoded"):
        return FormFields()
    try:
        return FormFields(parse_qs((request.body or b"").decode("utf-8"), keep_blank_values=True))
    except (UnicodeDecodeError, ValueError):
        return FormFields()


def form_values(form: FormFields) -> Dict[str, str]:
    """One value per field (Twilio sends each field once)."""
    return {key: values[0] if values else "" for key, values in form.items()}


class SmsInput(InputChannel):
    """Twilio SMS webhook with signature check, keywords, numbered options, segment budget."""

    @classmethod
    def name(cls) -> Text:
        return "sms"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> "SmsInput":
        channel = cls(SmsConfig.from_credentials(credentials))
        channel.gateway.open()
        load_keywords()  # a broken keywords file stops the server at start, not mid-conversation
        return channel

    def __init__(self, config: SmsConfig, gateway: Optional[Gateway] = None,
                 sms: Optional[SmsSettings] = None, background: bool = True,
                 sender: Optional[TwilioSender] = None) -> None:
        """``background``: send after answering the webhook (False: before, for tests)."""
        self.config = config
        self.gateway = gateway or Gateway(self.name())
        self._sms = sms
        self.background = background
        self.sender = sender or TwilioSender(config.twilio)
        self.validator = RequestValidator(config.twilio.auth_token)
        self._tasks: set = set()
        # replies Twilio did not take wait in the route and go out when it takes them again
        self.redelivery = Redelivery(self.name(), lambda: self.gateway.routes, self._send_part,
                                     refused=self._refused)

    @property
    def sms(self) -> SmsSettings:
        if self._sms is None:
            self._sms = cached_deployment(Settings.from_env().deployment_file).sms
        return self._sms

    def blueprint(
        self, on_new_message: Callable[[UserMessage], Awaitable[Any]]
    ) -> Blueprint:
        hook = limit_request_size(Blueprint("helpline_sms_webhook", __name__))

        @hook.listener("after_server_start")
        async def redeliver(*_: Any) -> None:
            self.redelivery.start()

        @hook.listener("before_server_stop")
        async def stop_redelivering(*_: Any) -> None:
            await self.redelivery.stop()

        @hook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @hook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            if len(request.body or b"") > MAX_FORM_BYTES:  # before parsing or checking it
                return response.text(f"the form is larger than {MAX_FORM_BYTES} bytes",
                                     status=413)
            signature = request.headers.get("X-Twilio-Signature", "")
            form = signed_form(request)
            if not signature or not self.validator.validate(self.config.webhook_url, form, signature):
                logger.warning("sms channel: refused a request without a valid Twilio signature")
                return response.text("invalid signature", status=403)
            fields = form_values(form)
            if not await self.first_delivery(fields.get("MessageSid", "")):
                logger.info("sms channel: a message delivered again (same MessageSid within "
                            "%d h) was ignored", REPLAY_SECONDS // 3600)
                return response.text(EMPTY_TWIML, content_type="text/xml")
            address, body = fields.get("From", "").strip(), fields.get("Body", "")
            if not address:
                return response.text("'From' is missing", status=400)
            if len(body) > MAX_BODY_CHARS:
                return response.text(f"'Body' is longer than {MAX_BODY_CHARS} characters", status=400)
            await self.handle(address, body, fields, on_new_message)
            return response.text(EMPTY_TWIML, content_type="text/xml")

        return hook

    async def first_delivery(self, message_sid: str) -> bool:
        """False for a MessageSid seen in the last 24 hours: Twilio retries a webhook it
        thinks failed, and a captured signed request can be replayed. Kept as a keyed hash
        that expires, never the sid itself; a request without a sid is not deduplicated."""
        if not message_sid:
            return True
        key = keyed(self.gateway.secrets.pseudonym_key, "sms-sid", message_sid)
        return await self.gateway.limits.first_time(key, REPLAY_SECONDS)

    async def handle(self, address: str, body: str, fields: Dict[str, str],
                     on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> None:
        """One incoming SMS: keywords, media, "more", or a Rasa turn; then the reply."""
        keywords = load_keywords()
        text = body.strip()
        opt_out = fields.get("OptOutType", "").upper()  # Twilio Advanced Opt-Out
        provider_stop = opt_out == "STOP" or keywords.is_provider_stop(text)
        asks_help = opt_out == "HELP" or keywords.is_help(text)
        has_media = _int(fields.get("NumMedia")) > 0
        if opt_out == "STOP":
            text = "/unsubscribe"
        elif opt_out == "START":
            text = "/greet"
        elif opt_out == "HELP":
            text = "/menu"
        else:
            text = keywords.payload(text) or text
        admitted = await self.gateway.admit(address, text)
        if admitted.limited:  # one request to slow down, then silence for the minute
            await self._reply(admitted, self.render(self.gateway.limited_messages(admitted),
                                                    admitted)[:1])
            return
        if not text and has_media:
            await self._reply(admitted, [self._words("media_unsupported", admitted)])
            return
        if (keywords.is_more(text) or admitted.text == "/more") and admitted.route.pending:
            part = await self.gateway.take_pending(admitted)
            await self._reply(admitted, [part] if part else [])
            return
        if not text:
            return  # an empty SMS: nothing to answer
        collector = TurnCollector(self.name())
        await on_new_message(UserMessage(admitted.text, collector, admitted.conversation_id,
                                         input_channel=self.name()))
        messages = collector.messages
        if asks_help:
            messages = [self.contacts_message(messages, admitted)] + messages
        parts = self.render(messages, admitted)
        await self.gateway.remember_turn(admitted, messages, pending=parts[1:])
        if provider_stop and self.config.provider_opt_out:
            logger.info("sms channel: no reply to an opt-out word (the provider answers it)")
            return
        await self._reply(admitted, parts[:1])

    def render(self, messages: Sequence[dict], admitted: Admitted) -> list[str]:
        from channels.menus import language_of

        language = language_of(messages) or admitted.route.language
        hint = self._words("sms_more", admitted, language)
        return render_turn(messages, hint, self.sms.segment_budget, self.sms.fold_accents)

    def contacts_message(self, turn: Sequence[dict], admitted: Admitted) -> dict:
        """The emergency contacts (the deployment's, for no particular area) in the turn's
        language, as a message to put before it."""
        from channels.menus import language_of

        deployment = cached_deployment(Settings.from_env().deployment_file)
        language = deployment.language_or_default(language_of(turn) or admitted.route.language)
        text = load_catalog().render("utter_emergency_contacts", language, self.name(),
                                     contacts=deployment.render_contacts(language))["text"]
        return {"text": text, "buttons": [], "metadata": {"language": language}}

    def _words(self, key: str, admitted: Admitted, language: str = "") -> str:
        deployment = cached_deployment(Settings.from_env().deployment_file)
        chosen = deployment.language_or_default(language or admitted.route.language)
        return load_catalog().channel_text(key, chosen)

    async def _reply(self, admitted: Admitted, parts: Sequence[str], original: str = "") -> None:
        """Sends ``parts`` (in the background unless ``background`` is off); ``original``:
        the caseworker's reply they carry, if they do."""
        if not parts:
            return
        delivery = self._deliver(admitted.route.address, list(parts), admitted.conversation_id,
                                 original)
        if not self.background:
            await delivery
            return
        task = asyncio.get_running_loop().create_task(delivery)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, address: str, parts: list[str], conversation_id: str = "",
                       original: str = "") -> None:
        """Sends ``parts`` in order; those Twilio did not take (5xx, 429, no answer after the
        sender's retries) wait in the route for ``channels.redelivery``."""
        units = [unit(part, original if index == 0 else "") for index, part in enumerate(parts)]
        await self.redelivery.deliver(conversation_id, address, units)

    async def _send_part(self, address: str, _conversation_id: str, item: dict) -> None:
        await self.sender.send(address, item["m"])

    async def _refused(self, conversation_id: str, item: dict, exc: BaseException) -> None:
        """Twilio refused a part: when the number sent STOP (or QUIT, END...) to Twilio, the
        caseworker is told and their reply goes out again after the person's next message."""
        if isinstance(exc, SendError) and exc.code == OPTED_OUT:
            await replies_blocked(conversation_id, item.get("o") or item["m"])

    def get_output_channel(self) -> OutputChannel:
        return SmsPushOutput(self)


class SmsPushOutput(OutputChannel):
    """Sends messages Rasa pushes to a conversation (``trigger_intent`` with
    ``output_channel=latest``, e.g. a caseworker's reply) to its reply route, if it has one."""

    def __init__(self, channel: SmsInput) -> None:
        self.channel = channel

    @classmethod
    def name(cls) -> Text:
        return SmsInput.name()

    async def send_response(self, recipient_id: Text, message: Dict[Text, Any]) -> None:
        route = await self.channel.gateway.reply_route(recipient_id)
        if route is None or route.channel != SmsInput.name():
            await self.channel.gateway.undeliverable(recipient_id, message)
            return
        admitted = Admitted(recipient_id, "", route)
        turn = [{"text": message.get("text") or "", "buttons": message.get("buttons") or [],
                 "metadata": message.get("metadata") or {}}]
        parts = self.channel.render(turn, admitted)
        await self.channel.gateway.remember_turn(admitted, turn, pending=parts[1:])
        await self.channel._reply(admitted, parts[:1], original=message.get("text") or "")

    async def send_text_message(self, recipient_id: Text, text: Text, **kwargs: Any) -> None:
        await self.send_response(recipient_id, {"text": text, **kwargs})


def _int(value: Optional[str]) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0
