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

from bot.keywords import KEYWORDS_FILE, load_keywords, normalise
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
    """Sets the intent with certainty when the whole message is a listed safety word."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {"keywords_file": str(KEYWORDS_FILE)}

    def __init__(self, keywords: Dict[str, str]) -> None:
        self.keywords = keywords  # normalised text -> intent

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "SafetyKeywordClassifier":
        return cls(load_keywords(Path(config["keywords_file"])))

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        return training_data

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            intent = self.keywords.get(normalise(message.get(TEXT) or ""))
            if intent is None:
                continue
            ranking = [
                r for r in message.get(INTENT_RANKING_KEY, []) or [] if r.get("name") != intent
            ]
            top = {"name": intent, "confidence": 1.0}
            message.set(INTENT, top, add_to_output=True)
            message.set(INTENT_RANKING_KEY, [top, *ranking], add_to_output=True)
        return messages
