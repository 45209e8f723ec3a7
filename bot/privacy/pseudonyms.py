"""Provider address -> pseudonymous conversation id.

``pseudonym("telegram", "123456789")`` is an HMAC-SHA256 of the channel name and the address
under the deployment's pseudonym key, written as ``c`` + 32 hex digits (128 bits). The same
person on the same channel always gets the same id, which is all Rasa needs; without the key
nobody can go back from the id to the number, or test a guessed number against it.

Addresses are normalised first (surrounding space removed; for phone numbers every character
but digits and a leading +), so ``+234 803 000 0000`` and ``+2348030000000`` are one person.
"""

from __future__ import annotations

import hashlib
import hmac
import re

PSEUDONYM_PATTERN = re.compile(r"^c[0-9a-f]{32}$")
_PHONE = re.compile(r"^\+?[0-9 ().\-]{5,40}$")


def normalise_address(address: str) -> str:
    text = address.strip()
    if _PHONE.match(text):
        return ("+" if text.startswith("+") else "") + re.sub(r"[^0-9]", "", text)
    return text


def pseudonym(key: bytes, channel: str, address: str) -> str:
    """The conversation id for ``address`` on ``channel``.

    Raises:
        ValueError: for an empty channel name or address.
    """
    if not channel or not address or not address.strip():
        raise ValueError("a pseudonym needs a channel name and a non-empty address")
    message = f"{channel}\x1f{normalise_address(address)}".encode("utf-8")
    return "c" + hmac.new(key, message, hashlib.sha256).hexdigest()[:32]


def is_pseudonym(text: str) -> bool:
    return bool(PSEUDONYM_PATTERN.match(text))
