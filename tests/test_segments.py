"""SMS segment counting (GSM-7 and UCS-2, concatenation) and splitting to a segment budget."""

from __future__ import annotations

import pytest

from channels.segments import count_segments, encoding_of, split_to_budget
from channels.sms_text import sms_friendly


@pytest.mark.parametrize("text, encoding, units, segments", [
    ("", "gsm7", 0, 0),
    ("a" * 160, "gsm7", 160, 1),
    ("a" * 161, "gsm7", 161, 2),
    ("a" * 306, "gsm7", 306, 2),
    ("a" * 307, "gsm7", 307, 3),
    ("Café à Genève? Très bien: ÄÖÑÜ ¿¡ §", "gsm7", 35, 1),  # all in the basic set
    ("€" * 80, "gsm7", 160, 1),  # extension characters take two septets
    ("€" * 81, "gsm7", 162, 2),
    ("a" * 159 + "€", "gsm7", 161, 2),  # the € tips it over one message
    ("ê", "ucs2", 1, 1),  # not in GSM-7: the whole message becomes UCS-2
    ("س" * 70, "ucs2", 70, 1),
    ("س" * 71, "ucs2", 71, 2),
    ("س" * 134, "ucs2", 134, 2),
    ("س" * 135, "ucs2", 135, 3),
    ("🙂" * 35, "ucs2", 70, 1),  # outside the BMP: a surrogate pair each
    ("🙂" * 36, "ucs2", 72, 2),
])
def test_segments_are_counted_as_phones_send_them(text, encoding, units, segments):
    count = count_segments(text)
    assert (count.encoding, count.units, count.segments) == (encoding, units, segments)


def test_an_escape_and_its_character_are_never_split_across_parts():
    # 152 plain septets then an extension character: 154 septets, the € moves to part two.
    assert count_segments("a" * 152 + "€" + "a" * 10).segments == 2
    assert count_segments("a" * 152 + "€" + "a" * 152).segments == 3
    # Same for a surrogate pair at a UCS-2 part's end.
    assert count_segments("س" * 66 + "🙂" + "س" * 66).segments == 3


def test_french_with_a_circumflex_or_curly_quote_is_ucs2():
    assert encoding_of("Où êtes-vous ?") == "ucs2"
    assert encoding_of("l’aide") == "ucs2"
    assert encoding_of("l'aide") == "gsm7"


def test_a_long_answer_is_split_at_sentence_ends_within_the_budget():
    sentences = [f"Sentence number {i} says something useful about staying safe." for i in range(12)]
    text = " ".join(sentences)
    parts = split_to_budget(text, 2)
    assert len(parts) > 1
    assert all(count_segments(p).segments <= 2 for p in parts)
    assert all(p.endswith(".") for p in parts)  # cut only at sentence ends
    assert " ".join(parts) == text


def test_arabic_is_split_by_its_own_budget_and_question_mark():
    text = " ".join(["هل أنت في أمان الآن؟"] * 20)
    parts = split_to_budget(text, 1)
    assert all(count_segments(p).segments == 1 and p.endswith("؟") for p in parts)
    assert " ".join(parts) == text


def test_a_sentence_too_long_for_the_budget_is_cut_between_words_then_characters():
    long_sentence = " ".join(["word"] * 100)
    parts = split_to_budget(long_sentence, 1)
    assert all(count_segments(p).segments == 1 for p in parts)
    assert " ".join(parts).split() == long_sentence.split()
    url = "x" * 400
    parts = split_to_budget(url, 1)
    assert "".join(parts) == url and all(len(p) <= 160 for p in parts)


def test_a_text_within_the_budget_is_one_part():
    assert split_to_budget("Ok.", 2) == ["Ok."]


def test_a_budget_below_one_is_an_error():
    with pytest.raises(ValueError, match="at least 1"):
        split_to_budget("hello", 0)


@pytest.mark.parametrize("text", ["Un lieu sûr près de vous", "C'est dû à la dette",
                                  "La côte est loin"])
def test_a_word_that_folding_would_turn_into_another_keeps_its_accents(text):
    """GSM-7 has no û or ô: "sûr" (safe) folded is "sur" (on), a different word."""
    assert sms_friendly(text) == text
    assert encoding_of(sms_friendly(text)) == "ucs2"


def test_other_accents_are_still_folded_to_stay_in_gsm7():
    assert sms_friendly("Vous êtes en sécurité") == "Vous etes en sécurité"
