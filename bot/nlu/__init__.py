"""Custom Rasa NLU components: language detection, places, urgency and safety keywords."""

from bot.nlu.components import (
    LanguageDetector,
    PlaceExtractor,
    SafetyKeywordClassifier,
    UrgencyDetector,
)

__all__ = ["LanguageDetector", "PlaceExtractor", "SafetyKeywordClassifier", "UrgencyDetector"]
