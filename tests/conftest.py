"""Shared fixtures: a fresh dispatcher, a sample deployment, the domain."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from rasa_sdk.executor import CollectingDispatcher

from bot.settings import PROJECT_ROOT

SAMPLE_DEPLOYMENT = PROJECT_ROOT / "deploy" / "sample.yml"
os.environ.setdefault("HELPLINE_DEPLOYMENT", str(SAMPLE_DEPLOYMENT))


@pytest.fixture
def dispatcher() -> CollectingDispatcher:
    return CollectingDispatcher()


@pytest.fixture(scope="session")
def domain() -> dict:
    from rasa.shared.core.domain import Domain

    return Domain.load(str(PROJECT_ROOT / "bot" / "domain")).as_dict()


def responses_sent(dispatcher: CollectingDispatcher) -> list[str]:
    """Names of the responses an action sent, in order."""
    return [m.get("utter_action") for m in dispatcher.messages]


@pytest.fixture
def sample_path() -> Path:
    return SAMPLE_DEPLOYMENT


@pytest.fixture(scope="session")
def model_path() -> Path:
    """The model for the current training inputs (scripts/test trains it first)."""
    from bot.cli import model_path as current_model
    from bot.settings import Settings

    path = current_model(Settings.from_env())
    if not path.exists():
        pytest.fail(f"no trained model for the current inputs ({path.name}): run `helpline train`")
    return path


@pytest.fixture(scope="session")
def action_server(tmp_path_factory):
    """A real action server process on a free port; yields its webhook URL."""
    from tests.utils.assistant import free_port, start_action_server, stop

    port = free_port()
    log = tmp_path_factory.mktemp("actions") / "actions.log"
    process = start_action_server(port, log)
    yield f"http://127.0.0.1:{port}/webhook"
    stop(process)


@pytest.fixture(scope="session")
def assistant(model_path, action_server):
    """The trained assistant in-process, talking to the real action server."""
    from tests.utils.assistant import Assistant

    bot = Assistant(model_path, action_server)
    yield bot
    bot.close()
