"""The services search as whole conversations: the trained model, the rules, the real action
server, and the sample directory (north-east Nigeria, western Libya, Ukraine) with its places.
"""

from __future__ import annotations

import json
import uuid

import pytest

from bot.catalog import load_catalog
from bot.services.categories import load_categories
from bot.services.reply import location_payload
from tests.utils.directory import sample_database
from tests.utils.stories import LANGUAGES

pytestmark = [pytest.mark.model, pytest.mark.slow]
CATALOG = load_catalog()


@pytest.fixture(scope="module")
def directory_url(tmp_path_factory):
    return sample_database(tmp_path_factory.mktemp("services-dialogue"), places=True)


@pytest.fixture(scope="module")
def helpline(model_path, directory_url, tmp_path_factory):
    """The assistant in-process with an action server, both on the sample directory."""
    from tests.utils.assistant import Assistant, free_port, start_action_server, stop

    port = free_port()
    log = tmp_path_factory.mktemp("services-actions") / "actions.log"
    process = start_action_server(port, log, HELPLINE_DATABASE_URL=directory_url)
    bot = Assistant(model_path, f"http://127.0.0.1:{port}/webhook",
                    HELPLINE_DATABASE_URL=directory_url)
    yield bot
    bot.close()
    stop(process)


def find(need: str) -> str:
    return "/find_services" + json.dumps({"need": need})


def choose(language: str) -> str:
    return "/change_language" + json.dumps({"language": language})


class Chat:
    def __init__(self, helpline, language: str = "en") -> None:
        self.helpline = helpline
        self.sender = f"services-{uuid.uuid4().hex[:10]}"
        # the conversation opened: "is it safe to write now?" answered yes (Assistant.open)
        self.turn = helpline.open(self.sender, choose(language))

    def say(self, text: str):
        self.turn = self.helpline.say(self.sender, text)
        return self.turn

    def expect(self, text: str, responses: list[str]):
        turn = self.say(text)
        assert turn.responses == responses, (text, turn.intent, turn.responses, turn.texts)
        return turn


PLACES = {"en": "i am in maidugury", "fr": "je suis à Maiduguri", "ar": "أنا في مايدوغوري",
          "es": "estoy en Maiduguri"}


@pytest.mark.parametrize("language", LANGUAGES)
def test_need_then_place_then_results_then_more_in_each_language(helpline, language):
    chat = Chat(helpline, language)
    chat.expect("/find_services", ["utter_services_ask_need"])
    shelter = load_categories()["shelter"][language]
    turn = chat.expect(find("shelter"), ["utter_services_ask_place"])
    assert turn.texts[0] == CATALOG.render("utter_services_ask_place", language, need=shelter)["text"]
    turn = chat.expect(PLACES[language], ["utter_services_results"])
    place = {"ar": "مايدوغوري"}.get(language, "Maiduguri")
    header = CATALOG.render("utter_services_results", language, need=shelter, place=place,
                            services="")["text"].strip()
    assert turn.texts[0].splitlines()[0] == header
    assert 2 <= len(turn.texts[0].splitlines()) <= 4
    assert turn.slots["service_place"] == "ng-maiduguri" and turn.slots["service_need"] == "shelter"
    turn = chat.say("/more")
    assert turn.responses in (["utter_services_results"], ["utter_services_no_more"])


def test_a_place_the_model_does_not_know_is_still_read_as_the_place(helpline):
    for words in ("bakasi camp", "Tajura", "zwara", "Sykhiv", "Lvov"):
        chat = Chat(helpline)
        chat.expect(find("any"), ["utter_services_ask_place"])
        turn = chat.say(words)
        assert turn.responses == ["utter_services_results"], (words, turn.intent, turn.responses)


def test_a_misspelt_place_is_asked_again_then_found(helpline):
    chat = Chat(helpline)
    chat.expect(find("medical"), ["utter_services_ask_place"])
    chat.expect("xqzt vbnm", ["utter_services_unknown_place"])
    turn = chat.expect("Misrata", ["utter_services_results"])
    assert "near Misrata" in turn.texts[0]


def test_skipping_the_need_searches_for_any_help(helpline):
    chat = Chat(helpline)
    chat.expect("/find_services", ["utter_services_ask_need"])
    turn = chat.expect("/skip", ["utter_services_ask_place"])
    assert turn.texts[0].startswith("Looking for: Any help.")


def test_a_place_given_out_of_the_blue_shows_any_help_there(helpline):
    chat = Chat(helpline)
    chat.expect("/ask_job_offer", ["utter_awareness_job_offer"])
    turn = chat.expect("i am in Kharkiv", ["utter_services_results"])
    assert turn.texts[0].startswith("Any help, near Kharkiv:")


def test_a_shared_location_mid_conversation_gives_services_near_the_person(helpline):
    chat = Chat(helpline)
    chat.expect("/ask_rights", ["utter_awareness_rights"])
    turn = chat.expect(location_payload(49.842, 24.031), ["utter_services_results_near_you"])
    kept = turn.slots["service_place"]  # the nearest town or district: Lviv or its district
    assert kept in ("ua-lviv", "dir-ua-district-lvivskyi")
    stored = json.dumps(helpline.stored_events(chat.sender))
    assert "49.842" not in stored and "24.031" not in stored
    assert f'"{kept}"' in stored


def test_a_search_left_half_way_does_not_capture_later_messages(helpline):
    chat = Chat(helpline)
    chat.expect(find("legal_aid"), ["utter_services_ask_place"])
    chat.expect("/ask_rights", ["utter_awareness_rights"])
    chat.expect("/nlu_fallback", ["utter_fallback"])


def test_more_walks_the_pages_then_says_there_are_no_more(helpline):
    chat = Chat(helpline)
    chat.expect(find("any"), ["utter_services_ask_place"])
    chat.expect("Tripoli", ["utter_services_results"])
    chat.expect("/more", ["utter_services_results"])
    seen = set()
    for _ in range(5):
        turn = chat.say("/more")
        if turn.responses == ["utter_services_no_more"]:
            break
        assert not set(turn.texts[0].splitlines()[1:]) & seen
        seen |= set(turn.texts[0].splitlines()[1:])
    assert turn.responses == ["utter_services_no_more"]


def test_triage_results_offer_the_search_with_the_need_filled_in(helpline):
    chat = Chat(helpline)
    chat.expect("/check_situation", ["utter_screening_about", "utter_screening_consent"])
    chat.say("/affirm")
    chat.say("/affirm")  # safe now
    turn = chat.say("/affirm")  # under 18
    while "utter_triage_child" not in turn.responses:
        turn = chat.say("/skip")
    turn = chat.expect("/find_services", ["utter_services_ask_place"])
    assert turn.texts[0].startswith("Looking for: Help for children.")
    turn = chat.expect("Bama", ["utter_services_results"])
    assert "Help for children" in turn.texts[0]


def test_what_is_kept_is_the_need_and_the_town_never_the_words_or_the_camp(helpline):
    chat = Chat(helpline)
    chat.expect(find("food_and_basic_needs"), ["utter_services_ask_place"])
    chat.expect("near Dalori camp", ["utter_services_results"])
    stored = json.dumps(helpline.stored_events(chat.sender))
    assert "Dalori" not in stored and "ng-camp-dalori" not in stored
    assert '"food_and_basic_needs"' in stored and '"ng-maiduguri"' in stored


def test_nothing_near_is_said_honestly(helpline):
    chat = Chat(helpline)
    chat.expect(find("child_protection"), ["utter_services_ask_place"])
    turn = chat.expect("Sabha", ["utter_services_none_near"])
    assert "+999 218 000" in turn.texts[0]
