"""Provider addresses become keyed-hash pseudonyms before Rasa sees them."""

import pytest

from bot.privacy.pseudonyms import is_pseudonym, normalise_address, pseudonym

KEY = b"a-test-key-of-thirty-two-bytes!!"
OTHER_KEY = b"another-test-key-of-32-bytes...."


def test_a_pseudonym_is_stable_and_reveals_nothing():
    first = pseudonym(KEY, "sms", "+999 555 0100")
    assert first == pseudonym(KEY, "sms", "+999 555 0100")
    assert is_pseudonym(first) and len(first) == 33
    assert "999" not in first and "5550100" not in first


@pytest.mark.parametrize("written", ["+9995550100", "+999 555 0100", "+999-555-0100",
                                     " +999 (555) 0100 ", "+999.555.0100"])
def test_one_phone_number_in_any_format_is_one_conversation(written):
    assert pseudonym(KEY, "sms", written) == pseudonym(KEY, "sms", "+9995550100")


def test_the_key_and_the_channel_change_the_pseudonym():
    base = pseudonym(KEY, "sms", "+9995550100")
    assert pseudonym(OTHER_KEY, "sms", "+9995550100") != base
    assert pseudonym(KEY, "telegram", "+9995550100") != base
    assert pseudonym(KEY, "sms", "+9995550101") != base


def test_non_phone_addresses_are_kept_as_given():
    assert normalise_address(" web-session-AbC ") == "web-session-AbC"
    assert normalise_address("123456789") == "123456789"
    assert pseudonym(KEY, "web", "session-a") != pseudonym(KEY, "web", "session-A")


@pytest.mark.parametrize("channel, address", [("", "x"), ("sms", ""), ("sms", "   ")])
def test_empty_input_is_refused(channel, address):
    with pytest.raises(ValueError, match="non-empty address"):
        pseudonym(KEY, channel, address)
