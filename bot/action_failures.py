"""A safe answer when the action server fails (issue 17 §5).

Rasa 3.6 waits up to five minutes for the action server (``DEFAULT_REQUEST_TIMEOUT``); when it
cannot be reached or fails, Rasa logs the error, drops the action's events and goes on: the
person gets no answer at all, at the moment they may need the emergency contacts most.

``install`` wraps ``RemoteAction.run`` in the Rasa server: an action that fails to connect, fails
with a server error or takes longer than ``HELPLINE_ACTION_TIMEOUT_SECONDS`` (default 5) is
answered, from the Rasa side alone, with a short message in the conversation's language: the
assistant cannot answer properly now, please try again in a few minutes, and the emergency
contacts (the catalog's ``actions_down`` and the deployment's contacts for the person's area).
The person's message is then taken back (with what it changed: a slot filled from it, a
question the form could not ask) and the turn ends, so that
the conversation is where it was before that message when the action server is back. Only
in a turn the person started. An action the console runs through Rasa's API (a caseworker's
reply, the end of a case) makes the API answer an error instead of 200, so that the console
withdraws the reply and tells the caseworker it was not sent.
Form validation refusals (HTTP 400, ``ActionExecutionRejection``) pass through untouched.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, List, Optional

from rasa.shared.exceptions import RasaException

logger = logging.getLogger(__name__)
_INSTALLED: list = []
_FAILED: set = set()  # conversations whose current action failed on the action server
# The actions the console runs through Rasa's API (console/relay.py): when they fail, the
# API answers an error, so that the console withdraws the reply and says it was not sent.
API_ACTIONS = frozenset({"action_relay_caseworker", "action_handoff_closed"})


def in_person_turn(tracker: Any) -> Optional[str]:
    """The id of the person's message this turn answers (None when the latest user message
    was already answered, e.g. an action run through the API after ``action_listen``)."""
    for event in reversed(tracker.events):
        name = type(event).__name__
        if name == "ActionExecuted" and getattr(event, "action_name", None) == "action_listen":
            return None
        if name == "UserUttered":
            return getattr(event, "message_id", None) or str(id(event))
    return None


def failure_message(tracker: Any) -> dict:
    """The Rasa-side answer: the catalog's ``actions_down`` and the emergency contacts, in
    the conversation's language (the deployment's default when it has none)."""
    from bot.catalog import load_catalog
    from bot.deployment import cached_deployment
    from bot.settings import Settings

    deployment = cached_deployment(Settings.from_env().deployment_file)
    language = deployment.language_or_default(tracker.get_slot("language"))
    area = tracker.get_slot("area")
    try:
        contacts = deployment.render_contacts(language, area)
    except KeyError:
        contacts = deployment.render_contacts(language)
    text = f"{load_catalog().channel_text('actions_down', language)} {contacts}"
    return {"text": text, "metadata": {"language": language}}


def take_back_turn(tracker: Any) -> None:
    """Removes the latest user message and every event after it, and replays the rest."""
    from rasa.shared.core.events import UserUttered

    if not any(isinstance(event, UserUttered) for event in tracker.events):
        return
    while not isinstance(tracker.events[-1], UserUttered):
        tracker.events.pop()
    tracker.events.pop()
    tracker._reset()
    tracker.replay_events()


class ActionServerUnavailable(RasaException):
    """The action server could not run an action: unreachable, a server error, or too slow.
    A RasaException, as Rasa's own: its callers that catch those (slot mappings' validation)
    go on as they did."""


def install(timeout_seconds: Optional[float] = None) -> None:
    """Wraps ``RemoteAction.run`` and ``MessageProcessor._run_action`` (once per process)."""
    if _INSTALLED:
        return
    from aiohttp import ClientError
    from rasa.core.actions.action import ActionExecutionRejection, RemoteAction
    from rasa.core.processor import MessageProcessor

    from bot.settings import Settings

    timeout = timeout_seconds or Settings.from_env().action_timeout_seconds
    original_run = RemoteAction.run
    original_run_action = MessageProcessor._run_action

    async def run(self: RemoteAction, output_channel: Any, nlg: Any, tracker: Any,
                  domain: Any) -> List[Any]:
        try:
            return await asyncio.wait_for(
                original_run(self, output_channel, nlg, tracker, domain), timeout)
        except ActionExecutionRejection:  # a form's validation refusing a value
            raise
        except (RasaException, ClientError, asyncio.TimeoutError) as exc:
            logger.error("action %s failed (%s)", self.name(), type(exc).__name__)
            _FAILED.add(tracker.sender_id)
            raise ActionServerUnavailable(self.name()) from None

    async def _run_action(self: MessageProcessor, action: Any, tracker: Any,
                          output_channel: Any, nlg: Any, prediction: Any) -> bool:
        _FAILED.discard(tracker.sender_id)
        go_on = await original_run_action(self, action, tracker, output_channel, nlg,
                                          prediction)
        if tracker.sender_id not in _FAILED:
            return go_on
        _FAILED.discard(tracker.sender_id)  # Rasa logged the error and dropped the events
        if action.name() in API_ACTIONS:
            raise ActionServerUnavailable(action.name())
        if in_person_turn(tracker) is None:
            return go_on  # no message of the person's to answer
        message = failure_message(tracker)
        await output_channel.send_response(tracker.sender_id, message)
        # The person is asked to try again: their message is taken back with all it changed
        # (a slot filled from it, a question the form could not ask), so that the
        # conversation is where it was before it once the action server is back. The events
        # are cut off rather than rewound: Rasa folds a form's turns together when it logs the
        # failed form action, and a rewind would then go back one answer too far. Nothing of
        # this turn is stored yet (Rasa saves the tracker when the turn ends).
        take_back_turn(tracker)
        return False

    RemoteAction.run = run
    MessageProcessor._run_action = _run_action
    _INSTALLED.append((original_run, original_run_action))
