"""Typed option numbers map to the last menu's buttons, else to the main menu."""

import pytest

from channels.menus import as_text_unless_payload, is_own_payload, payloads_of, resolve_choice

MAIN = ["/ask_trafficking_info", "/find_services", "/request_human", "/check_situation",
        "/change_language"]


def test_a_digit_picks_from_the_last_menu():
    assert resolve_choice("2", ["/affirm", "/deny", "/skip"], MAIN) == "/deny"


def test_without_a_remembered_menu_digits_mean_the_main_menu():
    assert resolve_choice("4", None, MAIN) == "/check_situation"
    assert resolve_choice("٣", None, MAIN) == "/request_human"


def test_out_of_range_and_words_are_left_alone():
    assert resolve_choice("9", None, MAIN) == "9"
    assert resolve_choice("help me", ["/affirm"], MAIN) == "help me"


def test_payloads_of_the_last_message_with_buttons():
    messages = [
        {"text": "a", "buttons": [{"title": "1", "payload": "/one"}]},
        {"text": "b", "buttons": [{"title": "2", "payload": "/two"}, {"title": "3", "payload": "/three"}]},
        {"text": "c"},
    ]
    assert payloads_of(messages) == ["/two", "/three"]
    assert payloads_of([{"text": "no buttons"}]) == []


@pytest.mark.parametrize("payload", [
    "/request_human", "/menu", '/find_services{"need":"shelter"}',
    '/inform_location{"place":"NG-BO"}', '/inform_location{"latitude":11.8,"longitude":13.1}',
    '/change_language{"language": "fr"}',
])
def test_the_assistants_own_payloads_pass(payload):
    assert as_text_unless_payload(payload) == payload


@pytest.mark.parametrize("typed, text", [
    ("/amina they took my passport", "amina they took my passport"),  # no such intent
    ("//  help me", "help me"),
    ('/greet{"name": "Amina"}', 'greet{"name": "Amina"}'),  # not an entity of the domain
    ('/find_services{"need": {"nested": 1}}', 'find_services{"need": {"nested": 1}}'),
    ('/find_services{"need": "' + "x" * 65 + '"}', 'find_services{"need": "' + "x" * 65 + '"}'),
    ("/find_services{broken", "find_services{broken"),
    ("/Request_Human", "Request_Human"),
    ("/", "/menu"), ("///", "/menu"),
    ("no slash /request_human", "no slash /request_human"),
])
def test_a_message_starting_with_a_slash_is_text_unless_it_is_an_own_payload(typed, text):
    """Issue 17 §3: only the assistant's own payload forms reach Rasa as ``/intent``."""
    assert as_text_unless_payload(typed) == text


def test_every_button_payload_of_the_catalog_is_an_own_payload():
    from bot.catalog import load_catalog

    payloads = load_catalog().payloads.values()
    assert payloads and all(is_own_payload(p) for p in payloads)


def test_the_payloads_channels_make_are_own_payloads():
    """SMS keywords, Telegram commands and shared positions go to Rasa as payloads."""
    from bot.services.reply import location_payload
    from channels.sms_keywords import load_keywords
    from channels.telegram import COMMANDS, UNKNOWN_COMMAND

    made = [*load_keywords().payloads.values(), *COMMANDS.values(), UNKNOWN_COMMAND,
            location_payload(-12.3456789, 45.6)]
    assert all(is_own_payload(p) for p in made), [p for p in made if not is_own_payload(p)]
