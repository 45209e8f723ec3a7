"""The services search's next step in words: the messages to send, in the person's language.

``messages_for(step, language, ...)`` turns a ``bot.services.answer.Step`` into one or two
messages (text, buttons, and the catalog response they come from). Every word comes from
the message catalog (``bot/messages/<language>.yml``) or, for needs, from the categories
file, so that each language reads naturally; names of services, places and phone numbers
are shown as the directory gives them.

A results message holds at most ``PAGE_SIZE`` services, each as one line: name, what it
offers, distance and area, how to reach it, and its hours with whether it is open now.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence

from bot.catalog import Catalog
from bot.services.answer import ANY_NEED, Step
from bot.services.lookup import Found
from bot.services.places import Gazetteer

# The needs offered as numbered choices, in this order; any other can be typed.
NEED_CHOICES = ("shelter", "medical", "anti_trafficking", "legal_aid", "documentation",
                "food_and_basic_needs")
_DAY = re.compile(r"\b(mon|tue|wed|thu|fri|sat|sun)\b", re.IGNORECASE)
_DAY_INDEX = {d: i for i, d in enumerate(("mon", "tue", "wed", "thu", "fri", "sat", "sun"))}


@dataclass(frozen=True)
class Message:
    """One message: its text, its buttons and the catalog response it was made from."""

    response: str
    text: str
    buttons: list[dict[str, str]] = field(default_factory=list)


def find_payload(need: str) -> str:
    """The payload of a button that searches for ``need`` (a category or ``any``)."""
    return "/find_services" + json.dumps({"need": need}, separators=(",", ":"))


def place_payload(code: str) -> str:
    """The payload of a button that picks the place ``code``."""
    return "/inform_location" + json.dumps({"place": code}, separators=(",", ":"))


def location_payload(latitude: float, longitude: float) -> str:
    """The payload a channel sends for a shared position."""
    return "/inform_location" + json.dumps(
        {"latitude": round(latitude, 6), "longitude": round(longitude, 6)}, separators=(",", ":")
    )


class Wording:
    """Fills the catalog's service texts for one language."""

    def __init__(self, catalog: Catalog, categories: Mapping[str, Mapping[str, str]],
                 language: str, gazetteer: Optional[Gazetteer] = None, person: bool = True
                 ) -> None:
        self.catalog = catalog
        self.person = person  # False: no text or button offers a person (none can come)
        self.categories = categories
        self.language = language
        self.gazetteer = gazetteer  # to give areas their name in the person's language
        # Lists inside a line (categories, ways to reach): Arabic has its own comma.
        self.separator = "، " if language == "ar" else ", "

    def text(self, response: str, **values: Any) -> str:
        return self.catalog.render(response, self.language, person=self.person, **values)["text"]

    def message(self, response: str, extra_buttons: Sequence[dict[str, str]] = (),
                drop_payloads: Sequence[str] = (), **values: Any) -> Message:
        rendered = self.catalog.render(response, self.language, person=self.person, **values)
        buttons = [*extra_buttons, *(b for b in rendered.get("buttons", [])
                                     if b["payload"] not in drop_payloads)]
        return Message(response, rendered["text"], buttons)

    def need_name(self, need: Optional[str]) -> str:
        if need in (None, ANY_NEED) or need not in self.categories:
            return self.text("utter_services_any_need")
        names = self.categories[need]
        return names.get(self.language) or names.get("en") or need

    def area_name(self, area: str, country: str) -> str:
        """A service's area as the gazetteer names it in this language, when it knows it."""
        if self.gazetteer is None:
            return area
        places = self.gazetteer.named(area, country)
        return places[0].name_in(self.language) if len(places) == 1 else area

    def hours(self, text: str) -> str:
        """Opening hours in this language: day abbreviations translated, times as written."""
        days = self.text("utter_services_days").split()
        if len(days) != 7:
            return text
        return _DAY.sub(lambda m: days[_DAY_INDEX[m.group(1).lower()]], text)

    def line(self, found: Found, now: dt.datetime, default_timezone: str = "UTC") -> str:
        """One service as one line (not numbered: numbers are for the options below it)."""
        card = found.card
        what = self.separator.join(self.need_name(c) for c in card.categories) or card.description
        km = f"{found.km:.1f}" if found.km < 10 else f"{found.km:.0f}"
        area = self.area_name(card.area, card.country) if card.area else ""
        if found.km < 1:  # at the place named: the distance from its centre means nothing
            where = self.text("utter_services_in_area", area=area) if area else ""
        elif area:
            where = self.text("utter_services_distance", km=km, area=area)
        else:
            where = self.text("utter_services_distance_only", km=km)
        reach = []
        if card.walk_in:
            reach.append(self.text("utter_services_walk_in"))
        if card.phone and card.hotline:
            reach.append(self.text("utter_services_hotline", phone=card.phone))
        elif card.phone and (card.by_phone or not card.walk_in):
            reach.append(self.text("utter_services_call", phone=card.phone))
        if card.hours.always:
            hours = self.text("utter_services_always_open")
        else:
            shown = self.hours(card.hours_text)
            is_open = card.is_open(now, default_timezone) if card.hours.known else None
            if is_open is None:
                hours = self.text("utter_services_hours", hours=shown) if shown else ""
            else:
                hours = self.text("utter_services_open_now" if is_open else "utter_services_closed_now",
                                  hours=shown)
        text = self.text("utter_services_line", service=card.name, what=what,
                         where=where, reach=self.separator.join(reach), hours=hours)
        return re.sub(r"(\.\s*){2,}", ". ", text).strip()  # a part left empty

    def lines(self, found: Sequence[Found], now: dt.datetime, default_timezone: str = "UTC") -> str:
        return "\n".join(self.line(f, now, default_timezone) for f in found)


def messages_for(step: Step, wording: Wording, now: dt.datetime, contacts: str = "",
                 default_timezone: str = "UTC") -> list[Message]:
    """What to send for ``step``.

    Args:
        wording: the catalog and category names, in the person's language.
        now: the moment for "open now" (aware).
        contacts: the emergency contacts line, for "nothing near".
    """
    w = wording
    need = w.need_name(step.need)
    if step.kind == "ask_need":
        choices = [{"title": w.need_name(c), "payload": find_payload(c)}
                   for c in NEED_CHOICES if c in w.categories]
        choices.append({"title": w.text("utter_services_any_need"), "payload": find_payload(ANY_NEED)})
        return [w.message("utter_services_ask_need", extra_buttons=choices, drop_payloads=("/skip",))]
    if step.kind == "ask_place":
        other = [{"title": w.text("utter_services_other_need"), "payload": "/find_services"}]
        return [w.message("utter_services_ask_place", extra_buttons=other, need=need)]
    if step.kind == "unknown_place":
        return [w.message("utter_services_unknown_place")]
    if step.kind == "which_place":
        choices = [{"title": _place_label(p, w.language, step.choices), "payload": place_payload(p.code)}
                   for p in step.choices]
        return [w.message("utter_services_which_place", extra_buttons=choices)]
    place = step.place.name_in(w.language) if step.place is not None else ""
    if step.kind == "results":
        response = "utter_services_results_near_you" if step.shared else "utter_services_results"
        services = w.lines(step.found, now, default_timezone=default_timezone)
        drop = () if step.area is not None else ("/more",)
        return [w.message(response, drop_payloads=drop, need=need, place=place, services=services)]
    if step.kind == "none_near":
        response = "utter_services_none_near_you" if step.shared or not place else "utter_services_none_near"
        message = w.message(response, need=need, place=place, contacts=contacts)
        if step.found:  # nothing near: the nearest suitable service further away
            far = w.text("utter_services_nearest_far",
                         services=w.lines(step.found, now, default_timezone=default_timezone))
            message = Message(message.response, f"{message.text}\n{far}", message.buttons)
        return [message]
    if step.kind == "no_more" and not place:  # e.g. "more" after a search from a far position
        return [w.message("utter_more_none")]
    if step.kind == "no_more":
        return [w.message("utter_services_no_more", place=place)]
    raise ValueError(f"no wording for step {step.kind!r}")


def _place_label(place, language: str, among: Sequence) -> str:
    """A place's name, with its kind or country when two choices share a name."""
    name = place.name_in(language)
    if sum(1 for p in among if p.name_in(language) == name) > 1:
        return f"{name} ({place.kind}, {place.country})"
    return name
