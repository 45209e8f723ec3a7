"""What to do next when someone looks for services: the decision, without any wording.

``next_step`` takes what is known in the conversation (the need, whether it was asked, what
the person typed as a place or the code of a place already resolved, who they are, which
page of results) and returns one ``Step``: ask the need, ask the place, say the place is
unknown, ask which of two places was meant, show results, say nothing is near, or say there
are no more. The action that speaks it (and the channel that fits it to SMS) come after.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Optional

from bot.services.lookup import Found, Need
from bot.services.places import Place
from bot.services.runtime import Loaded

ANY_NEED = "any"
PAGE_SIZE = 3


@dataclass(frozen=True)
class Step:
    """One next step: ``kind`` says which; the other fields carry what it needs."""

    kind: str  # unavailable | ask_need | ask_place | unknown_place | which_place | results | none_near | no_more
    need: Optional[str] = None
    place: Optional[Place] = None
    choices: tuple[Place, ...] = ()
    found: tuple[Found, ...] = ()
    page: int = 0


def next_step(
    loaded: Loaded,
    need: Optional[str] = None,
    need_asked: bool = False,
    place_text: Optional[str] = None,
    place_code: Optional[str] = None,
    group: Optional[str] = None,
    age: Optional[int] = None,
    page: int = 0,
    open_at: Optional[dt.datetime] = None,
    max_km: float = 500.0,
) -> Step:
    """The next step of a services search.

    Args:
        loaded: the process's directory and gazetteer (``bot.services.runtime.current``).
        need: a category, ``"any"``, or None when not known.
        need_asked: the need question was already asked (a skip is an answer).
        place_text: what the person typed for a place, if this message is one.
        place_code: a place resolved earlier in the conversation.
        group, age: who is looking (women / men / children; years), when known.
        page: 0 for the first results, 1 for "more", and so on.
        open_at: only services open at this moment.
    """
    if not len(loaded.directory):
        return Step("unavailable", need=need)
    if need is None and not need_asked and not place_text and not place_code:
        return Step("ask_need")
    place: Optional[Place] = None
    if place_text:
        matches = loaded.gazetteer.match(place_text)
        if not matches:
            return Step("unknown_place", need=need)
        if len(matches) > 1:
            return Step("which_place", need=need, choices=tuple(m.place for m in matches))
        place = matches[0].place
    elif place_code:
        place = loaded.gazetteer.places.get(place_code)
    if place is None:
        return Step("ask_place", need=need)
    category = None if need in (None, ANY_NEED) else need
    found = loaded.directory.nearest(
        place.lat, place.lon, Need(category=category, group=group, age=age, open_at=open_at),
        limit=PAGE_SIZE, offset=page * PAGE_SIZE, max_km=max_km,
    )
    if not found:
        return Step("no_more" if page else "none_near", need=need, place=place, page=page)
    return Step("results", need=need, place=place, found=tuple(found), page=page)
