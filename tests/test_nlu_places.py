"""Place names inside any sentence (bot/nlu/places.py), from the deployment's own files."""

from __future__ import annotations

import pytest

from bot.nlu.places import PlaceMatcher, PlacesError, read_place_names


@pytest.fixture(scope="module")
def matcher():
    return PlaceMatcher(read_place_names())


def test_names_come_from_the_places_file_and_the_directory():
    names = read_place_names()
    # places.csv: the place, its names in each language, other spellings
    assert {"Maiduguri", "مايدوغوري", "Yerwa", "Maidugiri"} <= set(names)
    # data/services/*.csv: the towns the directory names
    assert "Tripoli" in names
    assert not any(name.startswith("#") for name in names)  # the HXL row is not a place


@pytest.mark.parametrize("text, value", [
    ("i am in Maiduguri now", "Maiduguri"),
    ("we reached MAIDUGRI yesterday", "MAIDUGRI"),  # one typo, capitals
    ("je suis à Sebha depuis 2 semaines", "Sebha"),
    ("انا بطرابلس", "بطرابلس"),  # a preposition joined to the name
    ("near Bama camp", "Bama"),
    ("estamos en Borno State ahora", "Borno State"),  # the longest name wins
])
def test_places_inside_sentences(matcher, text, value):
    found = matcher.find(text)
    assert [f.value for f in found] == [value]
    assert text[found[0].start:found[0].end] == value


@pytest.mark.parametrize("text", ["the gate is open", "mobile", "bam", "i need a doctor"])
def test_ordinary_words_are_not_places(matcher, text):
    assert matcher.find(text) == []


def test_short_names_match_exactly_only(matcher):
    assert matcher.find("i am in Mubi") and not matcher.find("i am in Mobi")


def test_bad_files_are_named(tmp_path):
    places = tmp_path / "places.csv"
    places.write_text("Code,Type\nx,town\n", encoding="utf-8")
    with pytest.raises(PlacesError, match="places.csv.*no row of HXL hashtags"):
        read_place_names(places, None)
    with pytest.raises(PlacesError, match="missing.csv"):
        read_place_names(tmp_path / "missing.csv", None)
    directory = tmp_path / "services"
    directory.mkdir()
    (directory / "bad.csv").write_text("Name\nclinic\n", encoding="utf-8")
    from bot.nlu.places import PLACES_FILE

    with pytest.raises(PlacesError, match="bad.csv"):
        read_place_names(PLACES_FILE, directory)


@pytest.mark.model
@pytest.mark.parametrize("text, place", [
    ("we just arrived in Monguno with my kids", "Monguno"),
    ("salam, ana fi Sebha", "Sebha"),
])
def test_the_trained_assistant_marks_places(assistant, text, place):
    parsed = assistant.parse(text)
    assert place in [e["value"] for e in parsed["entities"] if e["entity"] == "place"]


def _message(text, intent, entities=()):
    from rasa.shared.nlu.training_data.message import Message

    message = Message(data={"text": text})
    message.set("intent", {"name": intent, "confidence": 0.6})
    message.set("intent_ranking", [{"name": intent, "confidence": 0.6}])
    message.set("entities", list(entities))
    return message


def test_the_extractor_adds_places_and_reads_an_out_of_scope_place_as_a_location():
    from bot.nlu.components import PlaceExtractor

    extractor = PlaceExtractor(None, None, ["Maiduguri", "Sebha"])
    diet_found = {"entity": "place", "value": "Sebha", "start": 9, "end": 14,
                  "extractor": "DIETClassifier"}
    messages = [
        _message("we reached Maiduguri", "out_of_scope"),
        _message("they took my passport in Maiduguri", "check_situation"),
        _message("i am in Sebha now", "inform_location", [diet_found]),  # found already
        _message("/inform_location", "inform_location"),  # a payload
    ]
    extractor.process(messages)
    first, second, third, fourth = messages
    assert first.get("intent") == {"name": "inform_location", "confidence": 1.0}
    assert [(e["value"], e["start"], e["end"], e["extractor"]) for e in first.get("entities")] == [
        ("Maiduguri", 11, 20, "PlaceExtractor")]
    # another intent keeps its intent; the place is marked all the same
    assert second.get("intent")["name"] == "check_situation"
    assert [e["value"] for e in second.get("entities")] == ["Maiduguri"]
    assert third.get("entities") == [diet_found]
    assert fourth.get("entities") == []
