"""The training examples are kept word for word (``bot.nlu.ExampleMemory``)."""

from __future__ import annotations

import pytest
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.nlu.components import ExampleMemory


def _message(text: str, intent: str = "emergency", confidence: float = 0.56) -> Message:
    message = Message(data={"text": text})
    message.set("intent", {"name": intent, "confidence": confidence})
    message.set("intent_ranking", [{"name": intent, "confidence": confidence},
                                   {"name": "menu", "confidence": 0.39}])
    return message


class _Storage:
    """Enough of Rasa's model storage for one component: a folder per resource."""

    def __init__(self, root):
        self.root = root

    def write_to(self, resource):
        import contextlib

        @contextlib.contextmanager
        def folder():
            path = self.root / "memory"
            path.mkdir(exist_ok=True)
            yield path
        return folder()

    read_from = write_to


def test_a_taught_example_gets_its_intent_whatever_the_model_said(tmp_path):
    storage = _Storage(tmp_path)
    memory = ExampleMemory(storage, None)
    training = TrainingData([
        Message(data={"text": "ayuda", "intent": "menu"}),
        Message(data={"text": "Help me now!", "intent": "emergency"}),
        Message(data={"text": "stop", "intent": "stop"}),
        Message(data={"text": "STOP!", "intent": "unsubscribe"}),  # folds to the same text
        Message(data={"text": "أوقف الأسئلة", "intent": "stop"}),
    ])
    memory.train(training)
    loaded = ExampleMemory.load({}, storage, None, None)
    messages = [_message("AYUDA!!"), _message("ayuda por favor"), _message("help me now"),
                _message("stop"), _message("اوقف الاسئله", "deny"), _message("/ayuda")]
    loaded.process(messages)
    intents = [(m.get("intent")["name"], m.get("intent")["confidence"]) for m in messages]
    assert intents == [
        ("menu", 1.0),        # folded: capitals and punctuation
        ("emergency", 0.56),  # not an example: the model's reading stays
        ("emergency", 1.0),   # an example of the same intent becomes certain
        ("emergency", 0.56),  # taught under two intents: left to the model
        ("stop", 1.0),        # Arabic letter variants fold too
        ("emergency", 0.56),  # a payload is not typed text
    ]
    assert messages[0].get("intent_ranking")[0] == {"name": "menu", "confidence": 1.0}
    assert all(r["confidence"] == 0.0 for r in messages[0].get("intent_ranking")[1:])


@pytest.mark.model
def test_the_trained_assistant_keeps_the_examples_of_the_data(assistant):
    """Every seventh training example (of one intent only once folded) is read as its intent,
    or raised to an emergency or a quick exit by the safety layers, which may."""
    from bot.keywords import normalise
    from bot.nlu_report import read_examples
    from bot.settings import PROJECT_ROOT

    examples = [e for path in sorted((PROJECT_ROOT / "data" / "nlu").rglob("*.yml"))
                if path.name != "lookups.yml" for e in read_examples(path)]
    memory = ExampleMemory.memorise((e.text, e.intent) for e in examples)
    wrong = [(e.text, e.intent, read) for e in examples[::7]
             if memory.get(normalise(e.text)) == e.intent
             and (read := assistant.parse(e.text)["intent"]["name"]) not in (
                 e.intent, "emergency", "quick_exit")]
    assert not wrong, wrong[:5]
