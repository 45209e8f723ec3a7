"""Typed option numbers map to the last menu's buttons, else to the main menu."""

from channels.menus import payloads_of, resolve_choice

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
