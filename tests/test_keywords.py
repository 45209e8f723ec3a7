import pytest

from bot.keywords import load_keywords, normalise


def test_normalise():
    assert normalise("  EXIT!! ") == "exit"
    assert normalise("Au  secours...") == "au secours"
    assert normalise("خُروج") == "خروج"  # diacritics dropped


def test_the_shipped_keywords():
    keywords = load_keywords()
    assert keywords["exit"] == "quick_exit"
    assert keywords["salir"] == "quick_exit"
    assert keywords["خروج"] == "quick_exit"
    assert keywords["sos"] == "emergency"


def test_a_word_listed_for_two_intents_is_an_error(tmp_path):
    path = tmp_path / "keywords.yml"
    path.write_text("quick_exit: [exit]\nemergency: [EXIT]\n", encoding="utf-8")
    with pytest.raises(ValueError, match="listed for two intents"):
        load_keywords(path)


def test_a_malformed_file_is_an_error(tmp_path):
    path = tmp_path / "keywords.yml"
    path.write_text("- exit\n", encoding="utf-8")
    with pytest.raises(ValueError, match="must map intents"):
        load_keywords(path)
