"""The erasing in-memory tracker store: history before a quick exit or forget-me is gone."""

from __future__ import annotations

from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    BotUttered,
    Restarted,
    SessionStarted,
    SlotSet,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker

from bot.settings import PROJECT_ROOT
from bot.tracker_store import ErasingInMemoryTrackerStore, erase_point

DOMAIN = Domain.load(str(PROJECT_ROOT / "bot" / "domain"))


def conversation(reset_by: str) -> list:
    return [
        ActionExecuted("action_session_start"), SessionStarted(), ActionExecuted("action_listen"),
        UserUttered("my boss took my passport", {"name": "check_situation"}),
        ActionExecuted("utter_screening_consent"), BotUttered("I can ask..."),
        ActionExecuted("action_listen"),
        UserUttered("exit", {"name": "quick_exit"}),
        ActionExecuted(reset_by), BotUttered("Ok."), Restarted(),
        ActionExecuted("action_session_start"), SessionStarted(), SlotSet("language", "en"),
        ActionExecuted("action_listen"),
    ]


def test_the_erase_point_is_the_reset_after_an_erasing_action():
    events = conversation("action_quick_exit")
    assert erase_point(events) == 10
    assert erase_point(conversation("action_forget_me")) == 10
    assert erase_point(conversation("action_restart")) is None
    assert erase_point(events[10:]) is None  # already erased: nothing more to cut
    assert erase_point(events[:5]) is None


async def test_saving_after_a_quick_exit_keeps_nothing_said_before():
    store = ErasingInMemoryTrackerStore(DOMAIN)
    tracker = DialogueStateTracker.from_events("pseudonym-1", conversation("action_quick_exit"),
                                               slots=DOMAIN.slots)
    await store.save(tracker)
    assert "passport" not in store.store["pseudonym-1"]
    assert "exit" not in [e.text for e in (await store.retrieve_full_tracker("pseudonym-1")).events
                          if isinstance(e, UserUttered)]
    stored = await store.retrieve_full_tracker("pseudonym-1")
    assert stored.get_slot("language") == "en"
    assert isinstance(stored.events[0], Restarted)


async def test_an_ordinary_restart_keeps_the_history():
    store = ErasingInMemoryTrackerStore(DOMAIN)
    tracker = DialogueStateTracker.from_events("pseudonym-2", conversation("action_restart"),
                                               slots=DOMAIN.slots)
    await store.save(tracker)
    assert "passport" in store.store["pseudonym-2"]


def test_rasa_builds_it_from_the_endpoints_file():
    from rasa.core.tracker_store import TrackerStore
    from rasa.utils.endpoints import read_endpoint_config

    config = read_endpoint_config(str(PROJECT_ROOT / "endpoints.yml"), "tracker_store")
    store = TrackerStore.create(config, DOMAIN)
    assert isinstance(store, ErasingInMemoryTrackerStore)
