"""Triage: a pure function from screening answers to a level and a set of needs.

Weights, thresholds and question order live in ``triage.yml`` beside this module. The level
decides what the assistant offers (emergency contacts first, a caseworker, services,
information); it is never shown to the person as a judgement about them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping, Optional

import yaml

RULES_FILE = Path(__file__).resolve().parent / "triage.yml"
ANSWERS = ("yes", "no", "skipped")
# The screening questions (slot names), in the order they are asked. triage.yml must use the
# same names and order; the domain's form lists them too (a test checks all three).
QUESTIONS = (
    "q_safe_now", "q_under_18", "q_child_school", "q_child_parents", "q_child_travel",
    "q_child_money", "q_free_to_leave", "q_documents", "q_threats", "q_work_as_promised",
    "q_debt",
)
NEED_CATEGORIES = (
    "shelter", "medical", "mental_health", "legal_aid", "documentation", "child_protection",
    "gbv_support", "food_and_basic_needs", "livelihoods", "family_tracing", "anti_trafficking",
    "emergency",
)


class TriageRulesError(ValueError):
    """The triage rules file is inconsistent."""


@dataclass(frozen=True)
class AnswerRule:
    points: int = 0
    min_level: Optional[str] = None
    needs: tuple[str, ...] = ()


@dataclass(frozen=True)
class TriageRules:
    """The parsed contents of ``triage.yml``."""

    levels: tuple[str, ...]
    thresholds: Mapping[str, int]
    questions: Mapping[str, Mapping[str, AnswerRule]]
    adult_only: frozenset[str]
    child_only: frozenset[str]
    order: tuple[str, ...]
    stop_after: Mapping[str, str]
    level_needs: Mapping[str, tuple[str, ...]]

    def rank(self, level: str) -> int:
        return self.levels.index(level)


UNKNOWN = "unknown"  # no yes/no answer at all: nothing to reassure with


@dataclass(frozen=True)
class TriageResult:
    """What the answers point to: ``level`` in low/medium/high/emergency, or ``unknown`` when
    no question got a yes or a no; sorted ``needs``."""

    level: str
    needs: tuple[str, ...]
    score: int
    answered: int
    under_18: bool


def parse_rules(data: Any) -> TriageRules:
    """Builds ``TriageRules`` from parsed YAML, checking every name it mentions."""
    try:
        levels = tuple(data["levels"])
        questions = {
            q: {a: AnswerRule(int(r.get("points", 0)), r.get("min_level"), tuple(r.get("needs", ())))
                for a, r in answers.items()}
            for q, answers in data["questions"].items()
        }
        rules = TriageRules(
            levels=levels,
            thresholds=dict(data["thresholds"]),
            questions=questions,
            adult_only=frozenset(data.get("adult_only", ())),
            child_only=frozenset(data.get("child_only", ())),
            order=tuple(data["order"]),
            stop_after=dict(data.get("stop_after", {})),
            level_needs={k: tuple(v) for k, v in data.get("level_needs", {}).items()},
        )
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise TriageRulesError(f"triage rules are malformed: {exc!r}") from None
    problems = []
    if levels != ("low", "medium", "high", "emergency"):
        problems.append(f"levels must be low, medium, high, emergency; got {levels}")
    for level in rules.thresholds:
        if level not in levels:
            problems.append(f"thresholds: unknown level {level}")
    if rules.order != QUESTIONS or set(questions) != set(QUESTIONS):
        problems.append(f"order and questions must be exactly {', '.join(QUESTIONS)}")
    for q, answers in questions.items():
        for answer, rule in answers.items():
            if answer not in ANSWERS:
                problems.append(f"{q}.{answer}: answers are yes, no, skipped")
            if rule.min_level is not None and rule.min_level not in levels:
                problems.append(f"{q}.{answer}.min_level: unknown level {rule.min_level}")
            for need in rule.needs:
                if need not in NEED_CATEGORIES:
                    problems.append(f"{q}.{answer}.needs: unknown category {need}")
    if rules.adult_only & rules.child_only:
        problems.append("a question cannot be both adult_only and child_only")
    for q in rules.adult_only | rules.child_only | set(rules.stop_after):
        if q not in questions:
            problems.append(f"unknown question {q}")
    for level, needs in rules.level_needs.items():
        if level not in levels or any(n not in NEED_CATEGORIES for n in needs):
            problems.append(f"level_needs.{level}: unknown level or category")
    if problems:
        raise TriageRulesError("; ".join(problems))
    return rules


@lru_cache(maxsize=1)
def load_rules(path: Path = RULES_FILE) -> TriageRules:
    """Reads and checks the rules file (once per process)."""
    return parse_rules(yaml.safe_load(Path(path).read_text(encoding="utf-8")))


def questions_to_ask(answers: Mapping[str, Optional[str]], rules: TriageRules) -> list[str]:
    """The questions still to ask, in order, given the answers so far.

    A child (``q_under_18`` = yes) is asked the child-only questions instead of the adult-only
    ones; anyone else, never the child-only ones. An answer named in ``stop_after`` (not safe
    right now) ends the questions.
    """
    for question, answer in rules.stop_after.items():
        if answers.get(question) == answer:
            return []
    skip = rules.adult_only if answers.get("q_under_18") == "yes" else rules.child_only
    return [q for q in rules.order if q not in skip and answers.get(q) is None]


def triage(answers: Mapping[str, Optional[str]], rules: Optional[TriageRules] = None) -> TriageResult:
    """Maps screening answers to a level and needs.

    Args:
        answers: question slot -> "yes" / "no" / "skipped", or None when not asked.
        rules: defaults to ``triage.yml``.

    Returns:
        The level (low, medium, high, emergency; unknown when no answer was a yes or a no)
        and the sorted need categories.

    Raises:
        ValueError: for an unknown question or an answer outside yes/no/skipped.
    """
    rules = rules or load_rules()
    for question, answer in answers.items():
        if question not in rules.questions:
            raise ValueError(f"unknown screening question {question!r}")
        if answer is not None and answer not in ANSWERS:
            raise ValueError(f"{question}: answer must be yes, no or skipped, got {answer!r}")
    under_18 = answers.get("q_under_18") == "yes"
    score = 0
    floor = 0
    needs: set[str] = set()
    answered = 0
    for question in rules.order:
        answer = answers.get(question)
        if answer is None:
            continue
        if question in (rules.adult_only if under_18 else rules.child_only):
            continue  # never asked of this person; ignore a stray answer
        if answer != "skipped":
            answered += 1
        rule = rules.questions[question].get(answer)
        if rule is None:
            continue
        score += rule.points
        needs.update(rule.needs)
        if rule.min_level:
            floor = max(floor, rules.rank(rule.min_level))
    by_score = 0
    for level, threshold in rules.thresholds.items():
        if score >= threshold:
            by_score = max(by_score, rules.rank(level))
    level = rules.levels[max(floor, by_score)]
    if answered == 0:
        level = UNKNOWN  # every question skipped: "low" would reassure on nothing
    needs.update(rules.level_needs.get(level, ()))
    return TriageResult(level=level, needs=tuple(sorted(needs)), score=score,
                        answered=answered, under_18=under_18)
