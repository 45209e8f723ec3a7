"""The services search action on the sample directory: every step, every language, what it keeps."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from rasa_sdk.events import SlotSet

from actions.awareness import ActionMore
from actions.help import ActionFindServices, need_from_context
from bot.catalog import load_catalog
from bot.services.answer import Step
from bot.services.categories import load_categories
from bot.services.places import Place
from bot.services.reply import NEED_CHOICES, Wording, location_payload, messages_for
from tests.conftest import responses_sent
from tests.utils.directory import sample_database
from tests.utils.trackers import bot_event, make_tracker

CATALOG = load_catalog()


@pytest.fixture(scope="module")
def directory_url(tmp_path_factory):
    return sample_database(tmp_path_factory.mktemp("services-actions"), places=True)


@pytest.fixture(autouse=True)
def use_directory(directory_url, monkeypatch):
    monkeypatch.setenv("HELPLINE_DATABASE_URL", directory_url)


def slots_of(events):
    return {e["name"]: e["value"] for e in events if e.get("event") == "slot"}


async def find(dispatcher, domain, intent="find_services", slots=None, entities=None,
               events=None, text="..."):
    tracker = make_tracker(intent, slots=slots, entities=entities, events=events, text=text)
    return await ActionFindServices().run(dispatcher, tracker, domain)


def need(value):
    return [{"entity": "need", "value": value}]


async def test_a_new_search_asks_the_need_with_numbered_choices_and_any(dispatcher, domain):
    events = await find(dispatcher, domain)
    assert responses_sent(dispatcher) == ["utter_services_ask_need"]
    payloads = [b["payload"] for b in dispatcher.messages[0]["buttons"]]
    assert payloads[:len(NEED_CHOICES)] == [
        '/find_services{"need":"%s"}' % n for n in NEED_CHOICES]
    assert '/find_services{"need":"any"}' in payloads and "/menu" in payloads
    assert slots_of(events) == {"services_asking": "need", "service_need": None}


async def test_skipping_the_need_asks_the_place_for_any_help(dispatcher, domain):
    events = await find(dispatcher, domain, intent="skip", slots={"services_asking": "need"})
    assert responses_sent(dispatcher) == ["utter_services_ask_place"]
    assert dispatcher.messages[0]["text"].startswith("Looking for: Any help.")
    assert slots_of(events) == {"services_asking": "place", "service_need": "any"}


async def test_a_need_given_asks_the_place_naming_the_need(dispatcher, domain):
    events = await find(dispatcher, domain, entities=need("legal_aid"))
    assert dispatcher.messages[0]["text"].startswith("Looking for: Legal help.")
    assert slots_of(events)["services_asking"] == "place"
    # another kind of help is one tap away
    assert dispatcher.messages[0]["buttons"][0]["payload"] == "/find_services"


async def test_a_typed_place_gives_up_to_three_services_with_every_detail(dispatcher, domain):
    events = await find(dispatcher, domain, intent="inform_location", text="i am in maidugury",
                        slots={"service_need": "legal_aid", "services_asking": "place"})
    assert responses_sent(dispatcher) == ["utter_services_results"]
    text = dispatcher.messages[0]["text"]
    lines = text.splitlines()
    assert lines[0] == "Legal help, near Maiduguri:"
    assert 1 <= len(lines) - 1 <= 3
    for line in lines[1:]:
        assert line.startswith("- ") and " km away, " in line and "Legal help" in line
        assert "Call +999" in line or "Hotline +999" in line or "Walk in" in line
        assert any(word in line for word in ("Open now", "Closed now", "Open day and night", "Hours:"))
    # no caseworker account in this database: no "talk to a person" (tests/test_person_offers.py)
    assert [b["payload"] for b in dispatcher.messages[0]["buttons"]] == ["/more", "/menu"]
    assert slots_of(events) == {"services_asking": None, "service_need": "legal_aid",
                                "service_place": "ng-maiduguri", "services_page": "1", "area": "NG"}


@pytest.mark.parametrize("text, response, slot, value", [
    ("Tajura", "utter_services_results", "service_place", "ly-tajoura"),
    ("qwzx blorf", "utter_services_unknown_place", "services_asking", "place"),  # asked again
])
async def test_words_the_model_did_not_understand_are_read_as_the_place(
        dispatcher, domain, text, response, slot, value):
    events = await find(dispatcher, domain, intent="nlu_fallback", text=text,
                        slots={"service_need": "any", "services_asking": "place"})
    assert responses_sent(dispatcher) == [response]
    assert slots_of(events)[slot] == value


async def test_more_gives_the_next_services_then_says_there_are_no_more(dispatcher, domain):
    slots = {"service_need": "any", "service_place": "ly-tripoli", "services_page": "1"}
    seen = []
    for page in range(1, 10):
        dispatcher.messages.clear()
        events = await ActionMore().run(dispatcher, make_tracker(
            "more", slots=slots, events=[bot_event("utter_services_results")]), domain)
        if responses_sent(dispatcher) == ["utter_services_no_more"]:
            break
        assert responses_sent(dispatcher) == ["utter_services_results"]
        lines = dispatcher.messages[0]["text"].splitlines()[1:]
        assert not set(lines) & set(seen)
        seen += lines
        slots = {**slots, **slots_of(events)}
        assert slots["services_page"] == str(page + 1)
    assert responses_sent(dispatcher) == ["utter_services_no_more"]
    assert len(seen) > 3  # more than one page of help around Tripoli
    assert "near Tripoli" in dispatcher.messages[0]["text"]


async def test_more_after_an_awareness_topic_still_continues_the_topic(dispatcher, domain):
    await ActionMore().run(dispatcher, make_tracker(
        "more", slots={"topic": "rights", "service_place": "ly-tripoli", "services_page": "1"},
        events=[bot_event("utter_awareness_rights")]), domain)
    assert responses_sent(dispatcher) == ["utter_awareness_rights_more"]


async def test_a_place_chosen_from_the_buttons_is_used_by_its_code(dispatcher, domain):
    events = await find(dispatcher, domain, intent="inform_location",
                        entities=[{"entity": "place", "value": "ua-lviv"}],
                        text='/inform_location{"place":"ua-lviv"}', slots={"service_need": "any"})
    assert responses_sent(dispatcher) == ["utter_services_results"]
    assert slots_of(events)["service_place"] == "ua-lviv"


async def test_a_shared_position_searches_from_it_and_keeps_only_the_town(dispatcher, domain):
    lat, lon = 11.8402, 13.1587  # a point inside Maiduguri
    events = await find(dispatcher, domain, intent="inform_location",
                        entities=[{"entity": "latitude", "value": lat},
                                  {"entity": "longitude", "value": lon}],
                        text=location_payload(lat, lon), slots={"service_need": "medical"})
    assert responses_sent(dispatcher) == ["utter_services_results_near_you"]
    assert dispatcher.messages[0]["text"].startswith("Medical care, near you:")
    kept = slots_of(events)
    assert kept["service_place"] == "ng-maiduguri"
    assert str(lat) not in json.dumps(events) and "11.84" not in json.dumps(events)


async def test_a_camp_is_searched_from_but_only_its_town_is_kept(dispatcher, domain):
    events = await find(dispatcher, domain, intent="inform_location", text="we are in bakasi camp",
                        slots={"service_need": "any"})
    assert responses_sent(dispatcher) == ["utter_services_results"]
    assert "near Bakassi camp" in dispatcher.messages[0]["text"]
    assert slots_of(events)["service_place"] == "ng-maiduguri"


async def test_nothing_near_is_said_honestly_with_contacts_and_the_nearest_further_away(dispatcher, domain):
    events = await find(dispatcher, domain, intent="inform_location",
                        entities=[{"entity": "latitude", "value": 21.0},
                                  {"entity": "longitude", "value": 17.0}],  # the Sahara
                        slots={"service_need": "shelter"})
    assert responses_sent(dispatcher) == ["utter_services_none_near_you"]
    text = dispatcher.messages[0]["text"]
    assert "+999 100 000" in text  # the default emergency line: the area is unknown
    assert "The nearest one I know of is further away:" in text and " km away, " in text
    assert slots_of(events)["service_place"] is None


async def test_nothing_near_a_place_gives_that_countrys_contacts(dispatcher, domain):
    await find(dispatcher, domain, intent="inform_location", text="Sabha",
               slots={"service_need": "child_protection"})
    assert responses_sent(dispatcher) == ["utter_services_none_near"]
    assert "+999 218 000" in dispatcher.messages[0]["text"]


@pytest.mark.parametrize("last, needs, expected", [
    ("utter_triage_child", ["anti_trafficking", "child_protection"], "child_protection"),
    ("utter_triage_high", ["anti_trafficking", "legal_aid"], "anti_trafficking"),
    ("utter_awareness_job_offer", None, "anti_trafficking"),
    ("utter_awareness_rights_more", None, "legal_aid"),
    ("utter_menu", ["legal_aid"], None),
])
def test_the_need_is_pre_filled_after_triage_and_awareness(last, needs, expected):
    tracker = make_tracker("find_services", slots={"triage_needs": needs},
                           events=[bot_event(last)])
    assert need_from_context(tracker, last) == expected


async def test_find_help_after_a_child_triage_asks_only_the_place(dispatcher, domain):
    events = await find(dispatcher, domain, slots={"triage_needs": ["child_protection"]},
                        events=[bot_event("utter_triage_child")])
    assert dispatcher.messages[0]["text"].startswith("Looking for: Help for children.")
    assert slots_of(events)["service_need"] == "child_protection"


async def test_a_known_place_is_reused_for_a_new_need(dispatcher, domain):
    await find(dispatcher, domain, entities=need("medical"), slots={"service_place": "ua-odesa"})
    assert responses_sent(dispatcher) == ["utter_services_results"]
    assert "Medical care, near Odesa:" in dispatcher.messages[0]["text"]


@pytest.mark.parametrize("language, words", [
    ("fr", ("Aide juridique, près de Maiduguri :", "km")),
    ("ar", ("مساعدة قانونية، قرب مايدوغوري:", "كم")),
    ("es", ("Ayuda legal, cerca de Maiduguri:", "km")),
])
async def test_results_are_in_the_conversation_language(dispatcher, domain, language, words):
    await find(dispatcher, domain, intent="inform_location", text="Maiduguri",
               slots={"language": language, "service_need": "legal_aid"})
    text = dispatcher.messages[0]["text"]
    assert text.splitlines()[0] == words[0] and words[1] in text
    assert "Call" not in text and "Open now" not in text and "Closed now" not in text


def test_hours_are_written_with_the_languages_day_names():
    wording = Wording(CATALOG, load_categories(), "fr")
    assert wording.hours("mon-fri 08:00-16:00; sat 09:00-12:00") == "lun-ven 08:00-16:00; sam 09:00-12:00"
    assert Wording(CATALOG, load_categories(), "ar").hours("tue,thu 10:00-14:00") == \
        "الثلاثاء,الخميس 10:00-14:00"


def test_which_place_offers_each_place_as_a_button_naming_the_country_when_names_clash():
    a = Place("ng-a", "town", "NG", 11.5, 13.6, (("", "Banki"),))
    b = Place("cm-a", "town", "CM", 11.6, 13.7, (("", "Banki"),))
    wording = Wording(CATALOG, load_categories(), "en")
    [message] = messages_for(Step("which_place", choices=(a, b)), wording,
                             dt.datetime.now(dt.timezone.utc))
    assert message.text == "Which place do you mean?"
    assert [(x["title"], x["payload"]) for x in message.buttons[:2]] == [
        ("Banki (town, NG)", '/inform_location{"place":"ng-a"}'),
        ("Banki (town, CM)", '/inform_location{"place":"cm-a"}'),
    ]


def test_results_without_a_coarse_area_offer_no_more_button():
    wording = Wording(CATALOG, load_categories(), "en")
    [message] = messages_for(Step("results", need="any", found=(), shared=True), wording,
                             dt.datetime.now(dt.timezone.utc))
    assert "/more" not in [b["payload"] for b in message.buttons]


def test_a_step_without_wording_is_an_error():
    wording = Wording(CATALOG, load_categories(), "en")
    with pytest.raises(ValueError, match="no wording"):
        messages_for(Step("surprise"), wording, dt.datetime.now(dt.timezone.utc))


async def test_a_bad_shared_position_is_ignored(dispatcher, domain):
    events = await find(dispatcher, domain, intent="inform_location",
                        entities=[{"entity": "latitude", "value": "91"},
                                  {"entity": "longitude", "value": "nan"}],
                        slots={"service_need": "any"}, text="...")
    assert responses_sent(dispatcher) == ["utter_services_unknown_place"]
    assert SlotSet("services_asking", "place") in events


async def test_more_after_results_without_a_kept_place_says_that_is_all(dispatcher, domain):
    await ActionMore().run(dispatcher, make_tracker(
        "more", slots={"service_need": "shelter"}, events=[bot_event("utter_services_results_near_you")]),
        domain)
    assert responses_sent(dispatcher) == ["utter_more_none"]


async def test_a_service_at_the_place_named_is_in_it_and_arabic_lists_use_the_arabic_comma(dispatcher, domain):
    await find(dispatcher, domain, intent="inform_location", text="Maiduguri",
               slots={"service_need": "any"})
    first = dispatcher.messages[0]["text"].splitlines()[1]
    assert ". In Maiduguri. " in first and " km away" not in first  # no "0.0 km" from the centre
    dispatcher.messages.clear()
    await find(dispatcher, domain, intent="inform_location", text="طرابلس",
               slots={"service_need": "any", "language": "ar"})
    lines = dispatcher.messages[0]["text"].splitlines()[1:]
    assert "، " in lines[0] and ", " not in lines[0]
    assert "في طرابلس" in lines[0] and "Tripoli." not in lines[0]  # the area in Arabic too


async def test_after_a_childs_triage_only_services_serving_children_are_shown(dispatcher, domain):
    slots = {"service_need": "legal_aid", "services_asking": "place"}
    await find(dispatcher, domain, intent="inform_location", text="Maiduguri", slots=slots)
    await find(dispatcher, domain, intent="inform_location", text="Maiduguri",
               slots={**slots, "triage_needs": ["child_protection", "anti_trafficking"]})
    adult, child = (m["text"] for m in dispatcher.messages)
    # the Lake Chad desk serves women and men only
    assert "Lake Chad legal aid desk" in adult and "Lake Chad legal aid desk" not in child
