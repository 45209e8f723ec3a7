"""Custom Rasa NLU components: language detection and safety keywords."""

from bot.nlu.components import LanguageDetector, SafetyKeywordClassifier, UrgencyDetector

__all__ = ["LanguageDetector", "SafetyKeywordClassifier", "UrgencyDetector"]
