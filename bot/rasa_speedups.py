"""A fix for a slow spot in Rasa 3.6 with the jsonschema it pins (4.17).

After every custom action, Rasa checks the action server's answer with
``jsonschema.validate(result, schema)``, which first checks the (constant, large) schema
itself against the JSON Schema meta-schema. That meta-check took about 45 ms of CPU per
action call here, most of a turn (measured with cProfile on the random walk: 29 of 39.5 s).
``install`` replaces the method with one that checks the schema once per process and then
validates each answer with the same rules and the same error message. Installed by the
tracker store, which every Rasa server of this project loads (endpoints.yml).
"""

from __future__ import annotations

from typing import Any, Dict, Text

_INSTALLED: list = []


def install() -> None:
    """Makes ``RemoteAction._validate_action_result`` reuse one compiled validator."""
    if _INSTALLED:
        return
    from jsonschema.exceptions import best_match
    from jsonschema.validators import validator_for
    from rasa.core.actions.action import RemoteAction
    from rasa.shared.constants import DOCS_BASE_URL

    schema = RemoteAction.action_response_format_spec()
    validator_class = validator_for(schema)
    validator_class.check_schema(schema)
    validator = validator_class(schema)

    def _validate_action_result(self: RemoteAction, result: Dict[Text, Any]) -> bool:
        error: Any = best_match(validator.iter_errors(result))
        if error is None:
            return True
        error.message += (
            ". Failed to validate Action server response from API, make sure your response "
            "from the Action endpoint is valid. For more information about the format visit "
            f"{DOCS_BASE_URL}/custom-actions"
        )
        raise error

    RemoteAction._validate_action_result = _validate_action_result
    _INSTALLED.append(True)
