"""The channel-independent gateway: pseudonyms, reply routes, typed option numbers."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet, MultiFernet

from bot.privacy import erasure
from bot.privacy.keys import Secrets
from bot.privacy.logs import REDACTED, forget_sensitive, scrub
from bot.privacy.pseudonyms import is_pseudonym
from bot.privacy.routes import MemoryRouteCache
from channels.gateway import Gateway

ADDRESS = "+999 555 0123"


@pytest.fixture
def gateway():
    key = Fernet.generate_key().decode()
    secrets = Secrets(pseudonym_key=b"k" * 32, route_keys=(key,))
    routes = MemoryRouteCache(MultiFernet([Fernet(key)]), idle_seconds=60)
    yield Gateway("sms", secrets, routes)
    routes.close()
    forget_sensitive()


async def test_the_address_becomes_a_pseudonym_and_an_encrypted_route(gateway):
    admitted = await gateway.admit(ADDRESS, "hello")
    assert is_pseudonym(admitted.conversation_id)
    assert admitted.conversation_id == gateway.conversation_id("+9995550123")
    route = await gateway.reply_route(admitted.conversation_id)
    assert route.address == ADDRESS and route.channel == "sms"
    assert b"555" not in gateway.routes._items[admitted.conversation_id][1]


async def test_digits_pick_the_last_menu_then_the_main_menu(gateway):
    first = await gateway.admit(ADDRESS, "2")
    assert first.text == gateway.main_menu()[1]
    await gateway.remember_turn(first, [{"text": "?", "buttons": [
        {"title": "Yes", "payload": "/affirm"}, {"title": "No", "payload": "/deny"}]}])
    assert (await gateway.admit(ADDRESS, "2")).text == "/deny"
    assert (await gateway.admit(ADDRESS, "hello")).text == "hello"


async def test_an_erased_conversation_gets_no_route_back(gateway):
    admitted = await gateway.admit(ADDRESS, "exit")
    await erasure.erase(admitted.conversation_id)  # what the tracker store does on quick exit
    await gateway.remember_turn(admitted, [{"text": "Ok.", "buttons": [{"title": "x", "payload": "/greet"}]}])
    assert await gateway.reply_route(admitted.conversation_id) is None


async def test_what_came_in_is_never_logged(gateway):
    await gateway.admit("tg-user-Ozioma", "I am Ozioma Fairweather", {"name": "Ozioma"})
    line = scrub("text 'I am Ozioma Fairweather' from tg-user-Ozioma")
    assert "ozioma" not in line.lower() and "fairweather" not in line.lower()
    assert line.startswith("text 'I am ") and REDACTED in line


async def test_a_turn_that_changes_nothing_writes_nothing(gateway):
    menu = [{"text": "?", "buttons": [{"title": "Yes", "payload": "/affirm"}]}]
    first = await gateway.admit(ADDRESS, "hello")
    await gateway.remember_turn(first, menu)
    stored = gateway.routes._items[first.conversation_id][1]
    again = await gateway.admit(ADDRESS, "hello again")
    await gateway.remember_turn(again, menu)
    # Fernet tokens differ on every encryption: the same token means it was not rewritten.
    assert gateway.routes._items[first.conversation_id][1] == stored
    other = await gateway.admit(ADDRESS, "and now")
    await gateway.remember_turn(other, [{"text": "menu"}])
    assert gateway.routes._items[first.conversation_id][1] != stored
    assert (await gateway.reply_route(first.conversation_id)).menu == ()


async def test_a_typed_slash_is_text_unless_it_is_a_payload_of_the_assistant(gateway):
    """Issue 17 §3, on every channel (they all admit through the gateway): Rasa would read
    "/word ..." as the payload of an unknown intent and warn quoting the whole message."""
    typed = await gateway.admit(ADDRESS, "/amina took my passport")
    assert typed.text == "amina took my passport"
    forged = await gateway.admit(ADDRESS, '/find_services{"need": "shelter", "name": "Amina"}')
    assert forged.text == 'find_services{"need": "shelter", "name": "Amina"}'
    await gateway.remember_turn(typed, [{"text": "?", "buttons": [
        {"title": "a", "payload": "/find_services"}, {"title": "b", "payload": "/skip"}]}])
    assert (await gateway.admit(ADDRESS, "/skip")).text == "/skip"
    assert (await gateway.admit(ADDRESS, "2")).text == "/skip"
