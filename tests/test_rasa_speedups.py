"""The faster check of action server answers gives the same verdicts as Rasa's own."""

from __future__ import annotations

import pytest
from jsonschema import ValidationError, validate
from rasa.core.actions.action import RemoteAction
from rasa.utils.endpoints import EndpointConfig

from bot import rasa_speedups

GOOD = [
    {"events": [], "responses": []},
    {"events": [{"event": "slot", "name": "language", "value": "fr", "timestamp": None}],
     "responses": [{"text": "Bonjour", "buttons": [{"title": "Menu", "payload": "/menu"}],
                    "metadata": {"language": "fr"}}]},
    {"events": [{"event": "active_loop", "name": None}, {"event": "followup", "name": "action_listen"}],
     "responses": []},
]
BAD = [
    {"events": "not a list", "responses": []},
    {"events": [{"event": "slot", "name": 3}], "responses": []},
    {"events": [], "responses": ["a bare string"]},
    {"events": [{"event": "no_such_event"}], "responses": []},
]


def action() -> RemoteAction:
    rasa_speedups.install()
    rasa_speedups.install()  # twice is harmless
    return RemoteAction("action_any", EndpointConfig("http://127.0.0.1:1/webhook"))


@pytest.mark.parametrize("result", GOOD)
def test_valid_answers_pass_as_with_rasas_check(result):
    validate(result, RemoteAction.action_response_format_spec())
    assert action()._validate_action_result(result) is True


@pytest.mark.parametrize("result", BAD)
def test_invalid_answers_fail_as_with_rasas_check(result):
    with pytest.raises(ValidationError):
        validate(result, RemoteAction.action_response_format_spec())
    with pytest.raises(ValidationError, match="Failed to validate Action server response"):
        action()._validate_action_result(result)


def test_the_tracker_store_installs_it():
    from bot.tracker_store import PrivateTrackerStore

    PrivateTrackerStore(backend="memory")
    assert RemoteAction._validate_action_result.__module__ == "bot.rasa_speedups"
