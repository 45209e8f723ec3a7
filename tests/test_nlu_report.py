"""The NLU report: reading examples, the scores, and ``helpline nlu report``'s bad input."""

from __future__ import annotations

import json

import pytest

from bot.nlu_report import (
    Example,
    ExamplesError,
    evaluate,
    format_report,
    load_set,
    read_examples,
    report_json,
    score,
)


def _write(tmp_path, text):
    path = tmp_path / "en.yml"
    path.write_text(text, encoding="utf-8")
    return path


def test_examples_lose_their_markup_and_keep_their_places(tmp_path):
    path = _write(tmp_path, 'version: "3.1"\nnlu:\n- intent: inform_location\n  examples: |\n'
                            "    - i am in [Tripoli](place) now\n"
                            '    - [french]{"entity": "language", "value": "fr"} please\n'
                            "- lookup: towns\n  examples: |\n    - Sabha\n")
    examples = read_examples(path)
    assert examples == [Example("i am in Tripoli now", "inform_location", ("Tripoli",)),
                        Example("french please", "inform_location", ())]


@pytest.mark.parametrize("content, message", [
    ("- just a list\n", "no 'nlu' list"),
    ("nlu: [\n", "while parsing"),
    ("nlu:\n- intent: greet\n  examples: |\n    - [ ](place)\n", "empty example"),
])
def test_bad_examples_files_are_named(tmp_path, content, message):
    with pytest.raises(ExamplesError, match=message) as error:
        read_examples(_write(tmp_path, content))
    assert "en.yml" in str(error.value)


def test_a_missing_file_and_an_unknown_set_are_errors(tmp_path):
    with pytest.raises(ExamplesError, match="No such file"):
        read_examples(tmp_path / "xx.yml")
    with pytest.raises(ExamplesError, match="unknown set 'train'"):
        load_set("train")


def test_scores_by_hand():
    examples = [Example("a", "emergency"), Example("b", "emergency"), Example("c", "quick_exit"),
                Example("d", "quick_exit"), Example("e", "greet"), Example("f", "greet"),
                Example("g", "forget_me")]
    predicted = ["emergency", "greet", "forget_me", "quick_exit", "greet", "emergency",
                 "forget_me"]
    s = score(examples, predicted)
    assert s.n == 7 and s.accuracy == pytest.approx(4 / 7)
    # emergency: 1 of 2 found, 1 false alarm -> P 0.5, R 0.5
    assert s.per_intent["emergency"][:2] == (0.5, 0.5)
    # quick_exit: precision 1/1, recall 1/2; a quick exit read as forget-me still erases
    assert s.per_intent["quick_exit"][:2] == (1.0, 0.5)
    assert s.safety_recall["quick_exit"] == 1.0
    assert s.safety_recall["emergency"] == 0.5
    assert "request_human" not in s.safety_recall  # no examples, no figure
    # calm messages: e, f, g; f was read as an emergency
    assert s.urgent_false_positive_rate == pytest.approx(1 / 3)
    assert ("emergency", "greet", 1) in s.confusions
    assert ("b", "emergency", "greet") in s.misses


def test_scores_refuse_mismatched_or_empty_input():
    with pytest.raises(ValueError, match="1 examples but 2 predictions"):
        score([Example("a", "greet")], ["greet", "greet"])
    with pytest.raises(ValueError, match="no examples"):
        score([], [])


def test_evaluate_and_the_two_formats_with_a_stand_in_parser():
    """The report's plumbing, with a parser that reads every message as a greeting."""
    report = evaluate(lambda texts: ["greet" for _ in texts], ["dev"], ["en"])
    scores = report["dev"]["en"]
    assert scores.per_intent["greet"][1] == 1.0 and scores.safety_recall["emergency"] == 0.0
    text = format_report(report)
    assert text.splitlines()[1].startswith("dev   en")
    assert "most frequent confusions" in text and " -> greet: 6" in text
    data = json.loads(report_json(report))
    assert data["dev"]["en"]["safety_recall"]["emergency"] == 0.0


def test_the_command_refuses_bad_choices_and_a_missing_model(tmp_path, capsys):
    from bot.cli import main

    assert main(["nlu", "report", "--set", "train"]) == 2
    assert "unknown or empty choice ['train']" in capsys.readouterr().err
    assert main(["nlu", "report", "--language", "de"]) == 2
    assert main(["nlu", "report", "--model", str(tmp_path / "none.tar.gz")]) == 2
    assert "no model at" in capsys.readouterr().err


def test_place_recall_counts_marked_places_found_as_entities():
    examples = [Example("i am in Tripoli now", "inform_location", ("Tripoli",)),
                Example("near bama camp", "inform_location", ("bama",)),
                Example("hello", "greet")]
    s = score(examples, ["inform_location", "greet", "greet"],
              [("Tripoli",), ("Maiduguri",), ()])
    assert s.place_recall == 0.5
    assert score(examples, ["greet"] * 3).place_recall is None  # no entities given
    found = evaluate(lambda texts: [("greet", ()) for _ in texts], ["dev"], ["en"])
    assert found["dev"]["en"].place_recall == 0.0


def test_the_detectors_own_figures():
    examples = [Example("a", "emergency"), Example("b", "emergency"), Example("c", "quick_exit"),
                Example("d", "greet"), Example("e", "greet"), Example("f", "greet"),
                Example("g", "greet")]
    decisions = ["urgent", "neither", "exit", "urgent", "neither", "neither", "neither"]
    s = score(examples, ["greet"] * 7, decisions=decisions)
    assert s.detector == {"urgent_recall": 0.5, "exit_recall": 1.0, "false_alarms": 0.25}
    report = evaluate(lambda texts: [("greet", (), "neither") for _ in texts], ["dev"], ["en"])
    assert report["dev"]["en"].detector["urgent_recall"] == 0.0
    assert "the urgency detector alone" in format_report(report)
