"""What of a Rasa event may be written: the redaction every tracker store write goes through.

Kept: event types and timestamps, intent names and confidences, entities whose type has a
closed list of values (languages, need categories) and whose value is on it, slot values from
closed sets, action / loop / response names, the input channel's name.

Dropped: the person's text, the bot's text, every ``metadata`` (providers put phone numbers
there) except a response's name, message ids (a provider's id can be looked up in the
provider's own logs), the session-start metadata slot, entity positions, and every field the
rules below do not name, including unexpected extra fields.

Masked: a slot outside a closed set that has a value keeps the fact that it is set
(``[redacted]``, or ``[]`` for a list) but not the value.

``redact_event`` works on the dictionary form (``Event.as_dict()``) and is idempotent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Optional

from bot.deployment import SUPPORTED_LANGUAGES
from bot.triage import NEED_CATEGORIES

MASK = "[redacted]"
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]{0,127}$")  # action, intent, slot, response names
MAX_RANKING = 10

# Entities whose values form a closed list; any other entity is dropped.
CLOSED_ENTITIES: dict[str, frozenset[str]] = {
    "language": frozenset(SUPPORTED_LANGUAGES),
    "detected_language": frozenset(SUPPORTED_LANGUAGES),
    "need": frozenset(NEED_CATEGORIES),
}
# Slots never kept, whatever their type.
DROPPED_SLOTS = frozenset({"session_started_metadata"})


def _name(value: Any) -> Optional[str]:
    return value if isinstance(value, str) and NAME.match(value) else None


def _number(value: Any) -> Optional[float]:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


@dataclass
class SlotRules:
    """Which slot values are from closed sets.

    ``categorical``: slot -> allowed values (case-insensitive, as Rasa compares them);
    ``booleans``: bool slots; ``lists``: list slot -> allowed items;
    ``texts``: text slot -> allowed values (the deployment's area codes, its name);
    ``names``: slots whose value must be a slot name (``requested_slot``);
    ``kinds``: slot -> Rasa type name, to mask unknown values by kind.
    """

    categorical: dict[str, frozenset[str]] = field(default_factory=dict)
    booleans: frozenset[str] = frozenset()
    lists: dict[str, frozenset[str]] = field(default_factory=dict)
    texts: dict[str, frozenset[str]] = field(default_factory=dict)
    names: frozenset[str] = frozenset({"requested_slot"})
    slot_names: frozenset[str] = frozenset()
    kinds: dict[str, str] = field(default_factory=dict)

    def value(self, slot: Any, value: Any) -> Any:
        """The value that may be written for ``slot``."""
        name = _name(slot)
        if value is None or name is None or name in DROPPED_SLOTS:
            return None
        if name in self.categorical:
            text = str(value).lower() if isinstance(value, (str, bool, int, float)) else None
            allowed = {v.lower(): v for v in self.categorical[name]}
            return allowed.get(text) if text is not None else None
        if name in self.booleans:
            return value if isinstance(value, bool) else None
        if name in self.lists:
            items = value if isinstance(value, list) else []
            return [v for v in items if isinstance(v, str) and v in self.lists[name]]
        if name in self.texts:
            return value if isinstance(value, str) and value in self.texts[name] else MASK
        if name in self.names:
            return value if isinstance(value, str) and value in self.slot_names else None
        kind = self.kinds.get(name)
        if kind == "list":
            return []
        if kind == "float":
            return None
        return MASK

    @classmethod
    def from_domain(cls, domain: Any, texts: Optional[Mapping[str, Iterable[str]]] = None,
                    lists: Optional[Mapping[str, Iterable[str]]] = None) -> "SlotRules":
        """Rules for a Rasa ``Domain``'s slots, plus closed sets for chosen text and list slots."""
        categorical, booleans, kinds = {}, set(), {}
        for slot in getattr(domain, "slots", []):
            kind = getattr(slot, "type_name", "any")
            kinds[slot.name] = kind
            if kind == "categorical":
                categorical[slot.name] = frozenset(
                    str(v) for v in slot.values if str(v) != "__other__"
                )
            elif kind == "bool":
                booleans.add(slot.name)
        return cls(
            categorical=categorical,
            booleans=frozenset(booleans),
            lists={k: frozenset(v) for k, v in (lists or {}).items()},
            texts={k: frozenset(v) for k, v in (texts or {}).items()},
            slot_names=frozenset(kinds),
            kinds=kinds,
        )


def redact_entities(entities: Any) -> list[dict]:
    kept = []
    for entity in entities if isinstance(entities, list) else []:
        if not isinstance(entity, dict):
            continue
        kind, value = entity.get("entity"), entity.get("value")
        if kind in CLOSED_ENTITIES and isinstance(value, str) and value in CLOSED_ENTITIES[kind]:
            item = {"entity": kind, "value": value}
            extractor = _name(entity.get("extractor"))
            if extractor:
                item["extractor"] = extractor
            kept.append(item)
    return kept


def _intent(intent: Any) -> dict:
    if not isinstance(intent, dict) or _name(intent.get("name")) is None:
        return {}
    result: dict = {"name": intent["name"]}
    confidence = _number(intent.get("confidence"))
    if confidence is not None:
        result["confidence"] = confidence
    return result


def _user(event: dict, rules: SlotRules) -> dict:
    parse = event.get("parse_data") if isinstance(event.get("parse_data"), dict) else {}
    intent = _intent(parse.get("intent") or event.get("intent"))
    ranking = [
        _intent(item) for item in (parse.get("intent_ranking") or [])[:MAX_RANKING]
        if _intent(item)
    ] if isinstance(parse.get("intent_ranking"), list) else []
    entities = redact_entities(parse.get("entities", event.get("entities")))
    parse_data = {"intent": intent, "entities": entities, "text": None,
                  "message_id": None, "metadata": {}}
    if ranking:
        parse_data["intent_ranking"] = ranking
    return {"text": None, "parse_data": parse_data,
            "input_channel": _name(event.get("input_channel")), "message_id": None,
            "metadata": {}}


def _bot(event: dict, rules: SlotRules) -> dict:
    data = event.get("data") if isinstance(event.get("data"), dict) else {}
    buttons = [
        {"payload": b["payload"]} for b in data.get("buttons") or []
        if isinstance(b, dict) and isinstance(b.get("payload"), str) and b["payload"].startswith("/")
    ] if isinstance(data.get("buttons"), list) else []
    metadata = event.get("metadata") if isinstance(event.get("metadata"), dict) else {}
    response = _name(metadata.get("utter_action"))
    result: dict = {"text": None, "data": {"buttons": buttons} if buttons else {}}
    if response:
        result["metadata"] = {"utter_action": response}
    return result


def _action(event: dict, rules: SlotRules) -> dict:
    result = {"name": _name(event.get("name")), "policy": _name(event.get("policy")),
              "confidence": _number(event.get("confidence")), "action_text": None}
    if isinstance(event.get("hide_rule_turn"), bool):
        result["hide_rule_turn"] = event["hide_rule_turn"]
    return result


def _slot(event: dict, rules: SlotRules) -> dict:
    return {"name": _name(event.get("name")), "value": rules.value(event.get("name"), event.get("value"))}


def _name_only(event: dict, rules: SlotRules) -> dict:
    return {"name": _name(event.get("name"))}


def _rejected(event: dict, rules: SlotRules) -> dict:
    return {"name": _name(event.get("name")), "policy": _name(event.get("policy")),
            "confidence": _number(event.get("confidence"))}


def _reminder(event: dict, rules: SlotRules) -> dict:
    result = {"intent": _name(event.get("intent")), "entities": redact_entities(event.get("entities")),
              "name": _name(event.get("name"))}
    if isinstance(event.get("date_time"), str):
        result["date_time"] = event["date_time"]
    if isinstance(event.get("kill_on_user_msg"), bool):
        result["kill_on_user_msg"] = event["kill_on_user_msg"]
    return result


def _flag(key: str) -> Callable[[dict, SlotRules], dict]:
    return lambda event, rules: {key: bool(event.get(key))}


def _nothing(event: dict, rules: SlotRules) -> dict:
    return {}


def _entities(event: dict, rules: SlotRules) -> dict:
    return {"entities": redact_entities(event.get("entities"))}


def _agent(event: dict, rules: SlotRules) -> dict:
    return {"text": None, "data": None}


RULES: dict[str, Callable[[dict, SlotRules], dict]] = {
    "user": _user,
    "bot": _bot,
    "action": _action,
    "slot": _slot,
    "active_loop": _name_only,
    "form": _name_only,
    "followup": _name_only,
    "loop_interrupted": _flag("is_interrupted"),
    "form_validation": _flag("validate"),
    "action_execution_rejected": _rejected,
    "user_featurization": _flag("use_text_for_featurization"),
    "entities": _entities,
    "reminder": _reminder,
    "cancel_reminder": _reminder,
    "agent": _agent,
    "session_started": _nothing,
    "restart": _nothing,
    "rewind": _nothing,
    "reset_slots": _nothing,
    "undo": _nothing,
    "pause": _nothing,
    "resume": _nothing,
    "export": _nothing,
    # Evaluation-only subclasses from rasa.core.test (written only by `rasa test`).
    "wrong_utterance": _user,
    "wrong_action": _action,
    "warning_predicted": _action,
}


def redact_event(event: Mapping[str, Any], rules: SlotRules) -> dict:
    """The writable form of one event (as from ``Event.as_dict()``).

    An event type not named in ``RULES`` keeps only its type and timestamp.
    """
    kind = event.get("event")
    result: dict = {"event": kind if isinstance(kind, str) else "unknown"}
    timestamp = _number(event.get("timestamp"))
    if timestamp is not None:
        result["timestamp"] = timestamp
    result.update(RULES.get(result["event"], _nothing)(dict(event), rules))
    return result
