"""Custom Rasa NLU components: language detection and safety keywords."""

from bot.nlu.components import LanguageDetector, SafetyKeywordClassifier

__all__ = ["LanguageDetector", "SafetyKeywordClassifier"]
