"""Tracker stores that erase a conversation's history when the person asks.

``ErasingInMemoryTrackerStore`` is Rasa's in-memory store, except that after a quick exit or a
"forget me" it keeps nothing from before that moment: the stored history restarts at the
reset, so what the person wrote is gone at once, not at the next restart of the server.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

from rasa.core.brokers.broker import EventBroker
from rasa.core.tracker_store import InMemoryTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, Event, Restarted
from rasa.shared.core.trackers import DialogueStateTracker

ERASING_ACTIONS = frozenset({"action_quick_exit", "action_forget_me"})


def erase_point(events: Sequence[Event]) -> Optional[int]:
    """Index of the last reset made by an erasing action, or None.

    Everything before that index is what the person asked to erase.
    """
    for index in range(len(events) - 1, -1, -1):
        if not isinstance(events[index], Restarted):
            continue
        previous = next(
            (e for e in reversed(events[:index]) if isinstance(e, ActionExecuted)), None
        )
        if previous is not None and previous.action_name in ERASING_ACTIONS:
            return index
        return None
    return None


class ErasingInMemoryTrackerStore(InMemoryTrackerStore):
    """In-memory tracker store that drops the history before a quick exit or forget-me."""

    def __init__(
        self,
        domain: Domain,
        event_broker: Optional[EventBroker] = None,
        **kwargs: Any,
    ) -> None:
        kwargs.pop("host", None)  # Rasa passes the endpoint's url as host
        super().__init__(domain, event_broker, **kwargs)

    async def save(self, tracker: DialogueStateTracker) -> None:
        events = list(tracker.events)
        cut = erase_point(events)
        if cut:
            tracker = DialogueStateTracker.from_events(
                tracker.sender_id, events[cut:], slots=self.domain.slots,
                max_event_history=tracker._max_event_history,
            )
        await super().save(tracker)
