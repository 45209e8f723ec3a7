"""Custom Rasa NLU components: taught examples, language detection, places, urgency and safety
keywords."""

from bot.nlu.components import (
    ExampleMemory,
    LanguageDetector,
    PlaceExtractor,
    SafetyKeywordClassifier,
    UrgencyDetector,
)

__all__ = ["ExampleMemory", "LanguageDetector", "PlaceExtractor", "SafetyKeywordClassifier", "UrgencyDetector"]
