"""Five small Rasa NLU components.

``ExampleMemory`` gives a message that is one of the training examples (folded: case,
punctuation, accents, Arabic letter variants) that example's intent. ``LanguageDetector`` adds a ``detected_language`` entity when a message is long enough to trust
(see ``bot.language``); the ``language`` slot maps from it. ``PlaceExtractor`` adds a ``place``
entity for every name of the deployment's places file and services directory found in the
message (``bot.nlu.places``), whatever the intent. ``UrgencyDetector`` decides urgent /
exit / neither with a model of its own (``bot.nlu.urgency``) and overrides the intent above its
thresholds. ``SafetyKeywordClassifier`` overrides the intent for the safety words and danger
patterns of ``bot/keywords.yml`` (typos, stretched letters and missing spaces included), so
"exit" always exits and "sos" is always an emergency.

Precedence, when a message is both urgent and a quick exit ("he is here, hide this"): the
quick exit wins. Its reply is neutral on purpose: the person may have seconds, and someone
reading the screen must not see help being offered (GPC guide, "All steps: Safety and
security": avoid exposing people to further harm). An urgent message without a sign of being
watched gets the emergency contacts first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Collection, Dict, Iterator, List, Optional, Text, Tuple

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

from bot.keywords import (KEYWORDS_FILE, load_keywords, load_patterns, match_keyword,
                          match_patterns, normalise)
from bot.language import detect_language
from bot.nlu.places import DIRECTORY_DIR, PLACES_FILE, PlaceMatcher, read_place_names
from bot.nlu.urgency import CORPUS_DIR, UrgencyConfig, UrgencyModel, read_corpus, training_rows
from bot.settings import Settings


def _free_texts(messages: List[Message]) -> Iterator[Tuple[Message, str]]:
    """(message, text) for each message that is typed text, not a button payload ("/...")."""
    for message in messages:
        text = message.get(TEXT) or ""
        if text.strip() and not text.startswith("/"):
            yield message, text


class _PassTrainingData:
    """The components change nothing in the training data."""

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        return training_data


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR], is_trainable=False
)
class LanguageDetector(_PassTrainingData, GraphComponent):
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

    def process(self, messages: List[Message]) -> List[Message]:
        for message, text in _free_texts(messages):
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
    [DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR], is_trainable=True
)
class PlaceExtractor(_PassTrainingData, GraphComponent):
    """``place`` entities from the names of the places file and the services directory.

    The names are read when training and kept in the model. A place the intent model found
    already is left as it is. A message the intent model read as out of scope that names a
    known place becomes ``inform_location``: someone telling where they are.
    """

    ENTITY = "place"

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {"places_file": str(PLACES_FILE), "directory": str(DIRECTORY_DIR)}

    def __init__(self, model_storage: ModelStorage, resource: Resource,
                 names: Optional[List[str]] = None) -> None:
        self.model_storage = model_storage
        self.resource = resource
        self.matcher = PlaceMatcher(names or [])

    @classmethod
    def create(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> "PlaceExtractor":
        return cls(model_storage, resource,
                   read_place_names(Path(config["places_file"]), Path(config["directory"])))

    @classmethod
    def load(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
             execution_context: ExecutionContext, **kwargs: Any) -> "PlaceExtractor":
        import json

        with model_storage.read_from(resource) as directory:
            names = json.loads((directory / "places.json").read_text(encoding="utf-8"))
        return cls(model_storage, resource, names)

    def train(self, training_data: TrainingData) -> Resource:
        import json

        names = sorted(set(self.matcher.names.values()))
        with self.model_storage.write_to(self.resource) as directory:
            (directory / "places.json").write_text(json.dumps(names, ensure_ascii=False),
                                                   encoding="utf-8")
        return self.resource

    def process(self, messages: List[Message]) -> List[Message]:
        for message, text in _free_texts(messages):
            entities = list(message.get(ENTITIES, []) or [])
            taken = [(e[ENTITY_ATTRIBUTE_START], e[ENTITY_ATTRIBUTE_END]) for e in entities
                     if e.get(ENTITY_ATTRIBUTE_TYPE) == self.ENTITY]
            added = [
                {ENTITY_ATTRIBUTE_TYPE: self.ENTITY, ENTITY_ATTRIBUTE_VALUE: found.value,
                 ENTITY_ATTRIBUTE_START: found.start, ENTITY_ATTRIBUTE_END: found.end,
                 ENTITY_ATTRIBUTE_CONFIDENCE: 1.0, EXTRACTOR: self.__class__.__name__}
                for found in self.matcher.find(text)
                if not any(found.start < end and start < found.end for start, end in taken)
            ]
            if not added:
                continue
            message.set(ENTITIES, [*entities, *added], add_to_output=True)
            if (message.get(INTENT) or {}).get("name") == "out_of_scope":
                _override(message, "inform_location")
        return messages


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=True
)
class ExampleMemory(_PassTrainingData, GraphComponent):
    """A message that is, once folded, one of the training examples gets that example's intent.

    The intent model does not fit every example it was taught: at 30 epochs "ayuda", written
    in the data as the menu, came out as an emergency at 0.56. A written example is a decision
    the data has already made, so it is kept word for word. Folded texts that are examples of
    two intents are left to the model; entities are untouched. The urgency detector and the
    safety keywords run after it and may still raise the intent.
    """

    FILE = "examples.json"

    def __init__(self, model_storage: ModelStorage, resource: Resource,
                 examples: Optional[Dict[str, str]] = None) -> None:
        self.model_storage = model_storage
        self.resource = resource
        self.examples = dict(examples or {})

    @classmethod
    def create(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> "ExampleMemory":
        return cls(model_storage, resource)

    @classmethod
    def load(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
             execution_context: ExecutionContext, **kwargs: Any) -> "ExampleMemory":
        import json

        with model_storage.read_from(resource) as directory:
            examples = json.loads((directory / cls.FILE).read_text(encoding="utf-8"))
        return cls(model_storage, resource, examples)

    @staticmethod
    def memorise(pairs: Iterator[Tuple[str, str]]) -> Dict[str, str]:
        """Folded text -> intent, without the texts taught under two intents."""
        seen: Dict[str, str] = {}
        clashes = set()
        for text, intent in pairs:
            key = normalise(text)
            if not key:
                continue
            if seen.get(key, intent) != intent:
                clashes.add(key)
            seen[key] = intent
        return {key: intent for key, intent in seen.items() if key not in clashes}

    def train(self, training_data: TrainingData) -> Resource:
        import json

        self.examples = self.memorise((m.get(TEXT), m.get(INTENT))
                                      for m in training_data.intent_examples
                                      if m.get(TEXT) and m.get(INTENT))
        with self.model_storage.write_to(self.resource) as directory:
            (directory / self.FILE).write_text(
                json.dumps(self.examples, ensure_ascii=False, sort_keys=True), encoding="utf-8")
        return self.resource

    def process(self, messages: List[Message]) -> List[Message]:
        for message, text in _free_texts(messages):
            intent = self.examples.get(normalise(text))
            if intent:
                _override(message, intent)
        return messages


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=False
)
class SafetyKeywordClassifier(_PassTrainingData, GraphComponent):
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

    def process(self, messages: List[Message]) -> List[Message]:
        for message, text in _free_texts(messages):
            intent = match_keyword(text, self.keywords)
            if intent is None:
                current = (message.get(INTENT) or {}).get("name")
                intent = _escalate(current, match_patterns(text, self.patterns))
            if intent is not None:
                _override(message, intent)
        return messages


def _escalate(current: Optional[str], signals: Collection[str]) -> Optional[str]:
    """The intent a message's safety signals make certain, or None to leave it as it is.

    A quick-exit signal wins over everything (see the module docstring); an urgent one over
    everything but a quick exit. Nothing is ever lowered. A signal that agrees with the
    current intent returns it too, so that it becomes certain: an emergency the intent model
    gave only 0.3 must not fall to the fallback.
    """
    if "quick_exit" in signals:
        return "quick_exit"
    if "emergency" in signals and current != "quick_exit":
        return "emergency"
    return None


def _override(message: Message, intent: str) -> None:
    """Sets ``intent`` with confidence 1.0; the others drop to 0, so the fallback classifier
    doesn't see two close candidates."""
    ranking = [
        {**r, "confidence": 0.0}
        for r in message.get(INTENT_RANKING_KEY, []) or []
        if r.get("name") != intent
    ]
    top = {"name": intent, "confidence": 1.0}
    message.set(INTENT, top, add_to_output=True)
    message.set(INTENT_RANKING_KEY, [top, *ranking], add_to_output=True)


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=True
)
class UrgencyDetector(_PassTrainingData, GraphComponent):
    """Urgent / exit / neither from a model of its own, overriding the intent above thresholds.

    Trained on ``data/urgency/`` and the intent examples (``bot.nlu.urgency``). The
    probabilities and its decision go to the parse output as ``urgency`` (the private tracker
    store does not keep them). Intents are only raised: a quick exit stays one, and the intent
    model's emergency becomes a quick exit only at an exit probability of ``SURE`` or more.
    """

    OUTPUT = "urgency"
    SURE = 0.8  # the exit probability that turns the intent model's emergency into an exit

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {"corpus_dir": str(CORPUS_DIR), "urgent_threshold": 0.5, "exit_threshold": 0.5,
                **UrgencyConfig().as_dict()}

    def __init__(self, config: Dict[Text, Any], model_storage: ModelStorage,
                 resource: Resource, model: Optional[UrgencyModel] = None) -> None:
        for key in ("urgent_threshold", "exit_threshold"):
            if not 0.0 < float(config[key]) < 1.0:
                raise ValueError(f"UrgencyDetector: {key} must be between 0 and 1, "
                                 f"not {config[key]!r}")
        self.config = config
        self.model_storage = model_storage
        self.resource = resource
        self.model = model
        self.urgent_threshold = float(config["urgent_threshold"])
        self.exit_threshold = float(config["exit_threshold"])

    @classmethod
    def create(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> "UrgencyDetector":
        return cls(config, model_storage, resource)

    @classmethod
    def load(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
             execution_context: ExecutionContext, **kwargs: Any) -> "UrgencyDetector":
        with model_storage.read_from(resource) as directory:
            model = UrgencyModel.load(directory)
        return cls(config, model_storage, resource, model)

    def train(self, training_data: TrainingData) -> Resource:
        examples = [(m.get(TEXT), m.get(INTENT)) for m in training_data.intent_examples
                    if m.get(TEXT) and m.get(INTENT)]
        texts, labels = training_rows(examples, read_corpus(Path(self.config["corpus_dir"])))
        self.model = UrgencyModel(UrgencyConfig.from_dict(self.config)).fit(texts, labels)
        with self.model_storage.write_to(self.resource) as directory:
            self.model.save(directory)
        return self.resource

    def process(self, messages: List[Message]) -> List[Message]:
        if self.model is None:
            return messages
        for message, text in _free_texts(messages):
            if self.model.is_known_calm(text):
                continue
            p = self.model.predict(text)
            # Both above their thresholds: the likelier one. This model turns an emergency
            # of the intent model into a quick exit only when it is very sure (a wrong turn
            # would hold back the emergency contacts); otherwise the emergency stands, made
            # certain. A keyword or a "someone sees my phone" pattern needs no such margin.
            signals = set()
            if p["exit"] >= self.exit_threshold and p["exit"] >= p["urgent"]:
                signals.add("quick_exit")
            elif p["urgent"] >= self.urgent_threshold:
                signals.add("emergency")
            decision = {"quick_exit": "exit", "emergency": "urgent"}.get(
                next(iter(signals), ""), "neither")
            message.set(self.OUTPUT, {**{k: round(v, 4) for k, v in p.items()},
                                      "decision": decision}, add_to_output=True)
            current = (message.get(INTENT) or {}).get("name")
            intent = _escalate(current, signals)
            if intent == "quick_exit" and current == "emergency" and p["exit"] < self.SURE:
                intent = "emergency"
            if intent is not None:
                _override(message, intent)
        return messages
