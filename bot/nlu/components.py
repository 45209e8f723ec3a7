"""Two small Rasa NLU components.

``LanguageDetector`` adds a ``detected_language`` entity when a message is long enough to trust
(see ``bot.language``); the ``language`` slot maps from it. ``SafetyKeywordClassifier``
overrides the statistical intent for a short list of exact safety words (``bot/keywords.yml``),
so "exit" always exits and "sos" is always an emergency.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import (
    ENTITIES,
    ENTITY_ATTRIBUTE_CONFIDENCE,
    ENTITY_ATTRIBUTE_END,
    ENTITY_ATTRIBUTE_START,
    ENTITY_ATTRIBUTE_TYPE,
    ENTITY_ATTRIBUTE_VALUE,
    EXTRACTOR,
    INTENT,
    INTENT_RANKING_KEY,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.keywords import KEYWORDS_FILE, load_keywords, load_patterns, match_pattern, normalise
from bot.language import detect_language
from bot.settings import Settings

@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR], is_trainable=False
)
class LanguageDetector(GraphComponent):
    """Adds a ``detected_language`` entity to messages long enough to detect."""

    ENTITY = "detected_language"

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {"languages": ["en", "fr", "ar", "es"]}

    def __init__(self, config: Dict[Text, Any], settings: Settings) -> None:
        self.languages = tuple(config["languages"])
        self.min_letters = settings.lang_min_letters
        self.min_probability = settings.lang_min_probability

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "LanguageDetector":
        return cls(config, Settings.from_env())

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        return training_data

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            text = message.get(TEXT) or ""
            if text.startswith("/"):
                continue  # a button payload, not free text
            language = detect_language(
                text, self.min_letters, self.min_probability, self.languages
            )
            if language is None:
                continue
            entity = {
                ENTITY_ATTRIBUTE_TYPE: self.ENTITY,
                ENTITY_ATTRIBUTE_VALUE: language,
                ENTITY_ATTRIBUTE_START: 0,
                ENTITY_ATTRIBUTE_END: len(text),
                ENTITY_ATTRIBUTE_CONFIDENCE: 1.0,
                EXTRACTOR: self.__class__.__name__,
            }
            message.set(ENTITIES, [*message.get(ENTITIES, []), entity], add_to_output=True)
        return messages

@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=False
)
class SafetyKeywordClassifier(GraphComponent):
    """Safety words and patterns from ``keywords.yml`` that override the model's intent.

    A message that is exactly a listed word gets its intent. Otherwise, when the model chose
    neither emergency nor quick exit, a matching danger or hide-the-screen pattern sets it.
    """

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {"keywords_file": str(KEYWORDS_FILE)}

    OVERRIDABLE = ("emergency", "quick_exit")

    def __init__(self, keywords: Dict[str, str], patterns: list) -> None:
        self.keywords = keywords  # normalised text -> intent
        self.patterns = patterns  # (regex, intent): safety net under the model

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "SafetyKeywordClassifier":
        path = Path(config["keywords_file"])
        return cls(load_keywords(path), load_patterns(path))

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        return training_data

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            text = message.get(TEXT) or ""
            if text.startswith("/"):
                continue  # a button payload names its intent already
            intent = self.keywords.get(normalise(text))
            if intent is None:
                current = (message.get(INTENT) or {}).get("name")
                if current not in self.OVERRIDABLE:
                    intent = match_pattern(text, self.patterns)
            if intent is None:
                continue
            # An override is certain: the other intents drop to 0, so the fallback classifier
            # doesn't see two close candidates.
            ranking = [
                {**r, "confidence": 0.0}
                for r in message.get(INTENT_RANKING_KEY, []) or []
                if r.get("name") != intent
            ]
            top = {"name": intent, "confidence": 1.0}
            message.set(INTENT, top, add_to_output=True)
            message.set(INTENT_RANKING_KEY, [top, *ranking], add_to_output=True)
        return messages
