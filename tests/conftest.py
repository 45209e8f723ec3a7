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
