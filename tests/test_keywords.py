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


from bot.keywords import load_patterns, match_pattern  # noqa: E402

PATTERNS = load_patterns()


@pytest.mark.parametrize(
    "text",
    ["help help", "HELP HELP HELP", "ayuda ayuda", "ساعدوني ساعدوني", "he is beating me", "they locked me in the room", "I'm in danger", "il me frappe",
     "ils nous tiennent enfermés", "je suis prisonnière", "me esta pegando", "estoy encerrada",
     "estamos en peligro", "بيضربني", "حبسوني في الغرفة", "أنا محبوسة", "أخدوا بنتي"],
)
def test_danger_patterns(text):
    assert match_pattern(text, PATTERNS) == "emergency"


@pytest.mark.parametrize(
    "text",
    ["help", "help me find a doctor", "my boss keeps my passport", "la dame a enferme mon passeport", "what is trafficking",
     "لو هربت من الشغل بيحبسوني؟", "اخدوا اوراقي لما وصلت", "I'm in Tripoli", "danger signs of a job"],
)
def test_ongoing_situations_and_questions_are_not_emergencies(text):
    assert match_pattern(text, PATTERNS) is None


def test_hide_the_screen_is_a_quick_exit():
    assert match_pattern("clear the screen", PATTERNS) == "quick_exit"
    assert match_pattern("امسح الشاشة", PATTERNS) == "quick_exit"


def test_a_broken_pattern_is_named(tmp_path):
    path = tmp_path / "keywords.yml"
    path.write_text("patterns:\n  emergency:\n    - '(unclosed'\n", encoding="utf-8")
    with pytest.raises(ValueError, match="pattern '\\(unclosed'"):
        load_patterns(path)
