"""What to do next when someone looks for services: the decision, without any wording.

``next_step`` takes what is known in the conversation (the need, whether it was asked, what
the person typed as a place or the code of a place already resolved, who they are, which
page of results) and returns one ``Step``: ask the need, ask the place, say the place is
unknown, ask which of two places was meant, show results, say nothing is near, or say there
are no more. The action that speaks it (and the channel that fits it to SMS) come after.

Privacy: a search may start from a shared position or from a camp, but what the conversation
keeps for "more" is only ``Step.area``: the code of a coarse place (a town, city, district or
region; the admin-level-2 area or coarser), never the point or a camp. Later pages are
searched around that area, so after a shared position or a camp they may repeat a service.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Optional

from bot.services.geo import haversine_km
from bot.services.lookup import Found, Need
from bot.services.places import Gazetteer, Place
from bot.services.runtime import Loaded

ANY_NEED = "any"
PAGE_SIZE = 3
# Kinds of place coarse enough to be kept with a conversation (admin level 2 or coarser).
COARSE_KINDS = frozenset({"country", "region", "district", "city", "town"})
# How far a shared position may be from the nearest coarse place for it to be named.
NAMED_AREA_KM = 60.0
# When nothing is near, the nearest suitable service up to this far is still named.
FAR_KM = 3000.0


def coarse_area(gazetteer: Gazetteer, place: Optional[Place] = None,
                point: Optional[tuple[float, float]] = None) -> Optional[Place]:
    """The coarse place that may be kept for ``place`` or ``point``, or None.

    A coarse place is itself; a camp (or any finer kind) gives its admin-2 area when the
    gazetteer has it, else the nearest coarse place of the same country; a point gives the
    nearest coarse place within ``NAMED_AREA_KM``.
    """
    if place is not None and place.kind in COARSE_KINDS:
        return place
    if place is not None and place.admin2_pcode in gazetteer.places:
        parent = gazetteer.places[place.admin2_pcode]
        if parent.kind in COARSE_KINDS:
            return parent
    if place is not None:
        point = (place.lat, place.lon)
    if point is None:
        return None
    best, best_km = None, float("inf")
    for candidate in gazetteer.places.values():
        if candidate.kind not in COARSE_KINDS or candidate.kind in ("country", "region"):
            continue
        if place is not None and candidate.country != place.country:
            continue
        km = haversine_km(point[0], point[1], candidate.lat, candidate.lon)
        if km < best_km:
            best, best_km = candidate, km
    if place is None and best_km > NAMED_AREA_KM:
        return None
    return best


@dataclass(frozen=True)
class Step:
    """One next step: ``kind`` says which; the other fields carry what it needs."""

    kind: str  # unavailable | ask_need | ask_place | unknown_place | which_place | results | none_near | no_more
    need: Optional[str] = None
    place: Optional[Place] = None
    choices: tuple[Place, ...] = ()
    found: tuple[Found, ...] = ()  # for none_near: the nearest suitable one further away
    page: int = 0
    area: Optional[Place] = None  # the coarse place the conversation may keep for "more"
    shared: bool = False  # searched from a shared position (distances are from the person)


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
    point: Optional[tuple[float, float]] = None,
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
        point: a shared position (latitude, longitude); it wins over a place.
    """
    if not len(loaded.directory):
        return Step("unavailable", need=need)
    if need is None and not need_asked and not place_text and not place_code and point is None:
        return Step("ask_need")
    category = None if need in (None, ANY_NEED) else need
    wanted = Need(category=category, group=group, age=age, open_at=open_at)
    if point is not None:
        area = coarse_area(loaded.gazetteer, point=point)
        found = loaded.directory.nearest(point[0], point[1], wanted, limit=PAGE_SIZE,
                                         offset=page * PAGE_SIZE, max_km=max_km)
        kind = "results" if found else ("no_more" if page else "none_near")
        if kind == "none_near":
            found = loaded.directory.nearest(point[0], point[1], wanted, limit=1, max_km=FAR_KM)
        return Step(kind, need=need, place=area, found=tuple(found), page=page, area=area,
                    shared=True)
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
    area = coarse_area(loaded.gazetteer, place=place)
    found = loaded.directory.nearest(place.lat, place.lon, wanted, limit=PAGE_SIZE,
                                     offset=page * PAGE_SIZE, max_km=max_km)
    if not found and page:
        return Step("no_more", need=need, place=place, page=page, area=area)
    if not found:
        further = loaded.directory.nearest(place.lat, place.lon, wanted, limit=1, max_km=FAR_KM)
        return Step("none_near", need=need, place=place, found=tuple(further), area=area)
    return Step("results", need=need, place=place, found=tuple(found), page=page, area=area)
