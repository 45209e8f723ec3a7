"""The services search's next step, on the sample directory."""

from __future__ import annotations

import pytest

from bot.services.answer import next_step
from bot.services.lookup import Directory
from bot.services.places import Gazetteer, Place
from bot.services.runtime import DirectoryCache, Loaded
from tests.utils.directory import sample_database


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    return DirectoryCache(sample_database(tmp_path_factory.mktemp("answer"), places=True)).get()


def test_an_empty_directory_is_said_to_be_unavailable():
    assert next_step(Loaded(Directory([]), Gazetteer(), None), need="shelter").kind == "unavailable"


def test_the_need_is_asked_first_then_the_place(loaded):
    assert next_step(loaded).kind == "ask_need"
    step = next_step(loaded, need="legal_aid")
    assert (step.kind, step.need) == ("ask_place", "legal_aid")
    assert next_step(loaded, need_asked=True).kind == "ask_place"  # skipped: any kind of help


def test_a_typed_place_gives_the_nearest_suitable_services(loaded):
    step = next_step(loaded, need="legal_aid", place_text="i am in maidugury")
    assert step.kind == "results" and step.place.code == "ng-maiduguri"
    assert [f.card.code for f in step.found][:2] == ["NG-BOR-009", "NG-BOR-002"]
    assert len(step.found) <= 3


def test_more_pages_then_no_more(loaded):
    first = next_step(loaded, need="any", place_code="ly-tripoli")
    second = next_step(loaded, need="any", place_code="ly-tripoli", page=1)
    assert first.kind == second.kind == "results"
    assert not {f.card.code for f in first.found} & {f.card.code for f in second.found}
    assert next_step(loaded, need="any", place_code="ly-tripoli", page=5).kind == "no_more"


def test_unknown_and_ambiguous_places_are_asked_about(loaded):
    assert next_step(loaded, need="medical", place_text="somewhere nice").kind == "unknown_place"
    ambiguous = Loaded(loaded.directory, Gazetteer(), loaded.version)
    ambiguous.gazetteer.add(Place("a", "town", "NG", 11.5, 13.6, (("", "Banki"),)))
    ambiguous.gazetteer.add(Place("b", "town", "NG", 11.6, 13.7, (("", "Banku"),)))
    step = next_step(ambiguous, need="medical", place_text="Bank")
    assert step.kind == "which_place" and {p.code for p in step.choices} == {"a", "b"}


def test_nothing_near_is_said_honestly(loaded):
    step = next_step(loaded, need="child_protection", place_text="Kyiv", max_km=50)
    assert step.kind == "none_near" and step.place.code == "ua-kyiv"


def test_who_is_looking_narrows_the_results(loaded):
    step = next_step(loaded, need="any", place_text="Maiduguri", group="children", age=12)
    assert step.kind == "results"
    assert all(f.card.serves_children for f in step.found)
