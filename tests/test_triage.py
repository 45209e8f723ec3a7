"""Triage, case by case. Answers: yes / no / skipped; None = not asked (or stopped before)."""

import copy

import pytest
import yaml

from bot.triage import (
    QUESTIONS,
    RULES_FILE,
    UNKNOWN,
    TriageRulesError,
    load_rules,
    parse_rules,
    questions_to_ask,
    triage,
)

SAFE_ADULT = {
    "q_safe_now": "yes", "q_under_18": "no", "q_free_to_leave": "yes", "q_documents": "yes",
    "q_threats": "no", "q_work_as_promised": "yes", "q_debt": "no",
}


def answers(**changes):
    return {**SAFE_ADULT, **changes}


def test_no_warning_signs_is_low():
    result = triage(SAFE_ADULT)
    assert (result.level, result.needs, result.score, result.answered) == ("low", (), 0, 7)


def test_all_skipped_is_unknown_not_low_and_counts_no_answers():
    """Nothing was learnt: "low" would reassure on nothing (issue 16, 'Skipping every
    question gives "unknown", not "low"')."""
    result = triage({q: "skipped" for q in QUESTIONS})
    assert result.level == UNKNOWN
    assert result.needs == ()
    assert result.answered == 0


def test_nothing_answered_at_all_is_unknown():
    result = triage({})
    assert result.level == UNKNOWN and result.answered == 0


def test_one_plain_answer_is_enough_for_a_level():
    assert triage({"q_safe_now": "yes"}).level == "low"
    assert triage({"q_safe_now": "skipped", "q_debt": "yes"}).level == "medium"


def test_not_safe_now_is_an_emergency_whatever_else():
    result = triage({"q_safe_now": "no"})
    assert result.level == "emergency"
    assert "emergency" in result.needs and "shelter" in result.needs


def test_threats_alone_are_high():
    result = triage(answers(q_threats="yes"))
    assert result.level == "high"
    assert {"anti_trafficking", "legal_aid"} <= set(result.needs)


def test_documents_held_is_medium():
    result = triage(answers(q_documents="no"))
    assert result.level == "medium"
    assert {"documentation", "legal_aid", "anti_trafficking"} <= set(result.needs)


def test_several_signs_add_up_to_high():
    result = triage(answers(q_free_to_leave="no", q_documents="no"))
    assert result.score == 6
    assert result.level == "high"


# The level each answer alone requires, at least: one strong indicator is enough for the
# guide to consider referring to a trained person (004 line 932: "at least one or more
# indicators"); threats of harm are high; not safe now is an emergency.
SINGLE = {("q_safe_now", "no"): "emergency", ("q_threats", "yes"): "high",
          ("q_free_to_leave", "no"): "medium", ("q_documents", "no"): "medium",
          ("q_work_as_promised", "no"): "medium", ("q_debt", "yes"): "medium",
          ("q_under_18", "yes"): "medium",
          # the child indicators (GPC 004 lines 918, 920, 923, 930; one is enough: line 932)
          ("q_child_school", "yes"): "high", ("q_child_parents", "no"): "high",
          ("q_child_travel", "yes"): "high", ("q_child_money", "yes"): "high"}
ORDER = ("unknown", "low", "medium", "high", "emergency")


def _every_combination():
    """Every combination of the answers a person can be asked: an adult's (q_under_18 not yes:
    the child questions never asked) and a child's (the adult-only questions never asked);
    3 x 4^6 adult and 4^6 child combinations (4^7 in all) instead of 4^11."""
    import itertools

    rules = load_rules()
    adult = [q for q in QUESTIONS if q not in rules.child_only]
    for values in itertools.product((None, "yes", "no", "skipped"), repeat=len(adult)):
        combination = dict(zip(adult, values))
        if combination["q_under_18"] != "yes":
            yield combination
    child = [q for q in QUESTIONS if q not in rules.adult_only and q != "q_under_18"]
    for values in itertools.product((None, "yes", "no", "skipped"), repeat=len(child)):
        yield {"q_under_18": "yes", **dict(zip(child, values))}


def test_over_every_combination_the_level_is_never_below_its_strongest_single_indicator():
    checked = 0
    for combination in _every_combination():
        result = triage(combination)
        child = combination["q_under_18"] == "yes"
        required = [level for (question, answer), level in SINGLE.items()
                    if combination.get(question) == answer]
        floor = max((ORDER.index(level) for level in required), default=0)
        assert ORDER.index(result.level) >= floor, (combination, result.level)
        if required:
            assert result.level != UNKNOWN and "anti_trafficking" in result.needs or child or (
                result.level == "emergency"), combination
        if child:  # a child always gets child protection, and a level that offers a person
            assert "child_protection" in result.needs and ORDER.index(result.level) >= 2
        plain = [a for a in combination.values() if a in ("yes", "no")]
        assert (result.level == UNKNOWN) == (not plain), combination
        checked += 1
    assert checked == 3 * 4 ** 6 + 4 ** 6


def test_a_childs_stray_adult_answers_and_an_adults_stray_child_answers_are_ignored():
    assert triage(answers(q_under_18="yes", q_free_to_leave="no", q_documents="no")).score == 0
    assert triage(answers(q_under_18="no", q_child_school="yes")).level == "low"


@pytest.mark.parametrize("question, answer", [("q_work_as_promised", "no"), ("q_debt", "yes"),
                                              ("q_free_to_leave", "no"), ("q_documents", "no")])
def test_each_strong_indicator_alone_is_at_least_medium(question, answer):
    assert triage(answers(**{question: answer})).level == "medium"


def test_work_terms_and_debt_together_are_medium():
    result = triage(answers(q_work_as_promised="no", q_debt="yes"))
    assert result.score == 4 and result.level == "medium"


def test_under_18_always_routes_to_child_protection():
    result = triage(answers(q_under_18="yes"))
    assert result.under_18
    assert "child_protection" in result.needs
    assert result.level == "medium"


def test_under_18_ignores_adult_only_answers():
    # Not asked of a child; a stray answer must not raise the level or add needs.
    result = triage(answers(q_under_18="yes", q_work_as_promised="no", q_debt="yes"))
    assert result.score == 0
    assert "livelihoods" not in result.needs


def test_under_18_with_threats_is_high_with_child_protection():
    result = triage(answers(q_under_18="yes", q_threats="yes"))
    assert result.level == "high" and "child_protection" in result.needs


def test_contradictory_answers_do_not_cancel_warning_signs():
    # Safe right now, yet not free to leave and threatened: the signs still count.
    result = triage(answers(q_safe_now="yes", q_free_to_leave="no", q_threats="yes"))
    assert result.level == "high"
    assert result.score == 7


def test_stopped_half_way_uses_the_answers_given():
    result = triage({"q_safe_now": "yes", "q_under_18": "no", "q_free_to_leave": "no"})
    assert result.level == "medium" and result.answered == 3


def test_skipping_a_question_is_not_a_warning_sign():
    assert triage(answers(q_threats="skipped")).level == "low"


@pytest.mark.parametrize(
    "bad, message",
    [({"q_name": "yes"}, "unknown screening question"), ({"q_threats": "maybe"}, "yes, no or skipped")],
)
def test_bad_answers_are_refused(bad, message):
    with pytest.raises(ValueError, match=message):
        triage(bad)


def test_question_order_for_an_adult():
    rules = load_rules()
    assert questions_to_ask({}, rules) == [q for q in QUESTIONS if q not in rules.child_only]
    assert questions_to_ask({"q_safe_now": "yes"}, rules)[0] == "q_under_18"


def test_a_child_gets_the_child_questions_instead_of_the_adult_ones():
    """Not the questions whose "no" is normal for a child (free to leave a workplace, own ID
    documents) nor those on work terms and debts; the guide's child indicators instead."""
    remaining = questions_to_ask({"q_safe_now": "yes", "q_under_18": "yes"}, load_rules())
    assert remaining == ["q_child_school", "q_child_parents", "q_child_travel", "q_child_money",
                         "q_threats"]


def test_an_adult_never_gets_the_child_questions():
    remaining = questions_to_ask({"q_safe_now": "yes", "q_under_18": "no"}, load_rules())
    assert not [q for q in remaining if q.startswith("q_child_")]
    assert remaining[0] == "q_free_to_leave"


def test_not_safe_now_ends_the_questions():
    assert questions_to_ask({"q_safe_now": "no"}, load_rules()) == []


def test_the_rules_file_is_checked():
    data = yaml.safe_load(RULES_FILE.read_text(encoding="utf-8"))
    broken = copy.deepcopy(data)
    broken["questions"]["q_debt"]["yes"]["needs"] = ["money"]
    with pytest.raises(TriageRulesError, match="unknown category money"):
        parse_rules(broken)
    broken = copy.deepcopy(data)
    broken["order"] = list(reversed(broken["order"]))
    with pytest.raises(TriageRulesError, match="order and questions"):
        parse_rules(broken)
    with pytest.raises(TriageRulesError, match="malformed"):
        parse_rules({"levels": ["low"]})


def test_the_form_asks_the_questions_in_the_triage_order(domain):
    assert tuple(domain["forms"]["screening_form"]["required_slots"]) == QUESTIONS
    assert load_rules().order == QUESTIONS
