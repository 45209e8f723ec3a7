"""Language detection: only from messages long enough to trust (threshold: 20 letters)."""

import pytest

from bot.language import count_letters, detect_language


@pytest.mark.parametrize(
    "text, expected",
    [
        ("I received a job offer abroad and they want my passport", "en"),
        ("bonjour, j'ai recu une offre de travail en France, est-ce que c'est serieux", "fr"),
        ("hola, me ofrecieron un trabajo en otro pais y me piden dinero por adelantado", "es"),
        ("السلام عليكم، عرضوا علي عمل في الخارج وطلبوا جواز سفري", "ar"),
    ],
)
def test_long_messages_are_detected(text, expected):
    assert detect_language(text) == expected


@pytest.mark.parametrize(
    "text",
    ["ok", "merci", "si", "2", "hola amigo", "bonjour ca va", "مرحبا", "yes please thank you"],
)
def test_short_messages_keep_the_current_language(text):
    assert count_letters(text)[0] < 20
    assert detect_language(text) is None


def test_the_threshold_is_counted_in_letters_not_characters():
    # 14 letters padded with digits and punctuation to 33 characters: still too short.
    text = "je veux partir!!! 1234567 ...  ab"
    assert len(text) > 20 and count_letters(text)[0] == 14
    assert detect_language(text) is None
    assert detect_language("je veux partir de ce travail maintenant", min_letters=20) == "fr"


def test_the_threshold_is_configurable():
    text = "bonjour je cherche de l'aide"
    assert detect_language(text, min_letters=40) is None
    assert detect_language(text, min_letters=10) == "fr"


def test_only_candidate_languages_are_returned():
    text = "bonjour, j'ai recu une offre de travail en France, est-ce que c'est serieux"
    assert detect_language(text, candidates=("en", "es")) is None
    arabic = "السلام عليكم، عرضوا علي عمل في الخارج وطلبوا جواز سفري"
    assert detect_language(arabic, candidates=("en", "fr")) is None


def test_arabic_in_latin_letters_keeps_the_current_language():
    assert detect_language("salam 3alaykom ana 3ayez a3raf law el sho8l da 7a2i2i") is None


def test_detection_is_deterministic():
    text = "necesito ayuda con mis documentos por favor"
    assert len({detect_language(text) for _ in range(5)}) == 1
