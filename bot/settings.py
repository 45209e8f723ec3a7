"""One settings object for everything configurable, read from environment variables.

Every variable has a documented default (see the table in README.md, which a test keeps in
step with ``SETTINGS_DOC``). Reading settings does no I/O beyond ``os.environ``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Mapping, Optional

PROJECT_ROOT = Path(__file__).resolve().parent.parent
BOT_DIR = Path(__file__).resolve().parent

# name of the environment variable -> (field, default as text, description)
SETTINGS_DOC: dict[str, tuple[str, str, str]] = {
    "HELPLINE_DEPLOYMENT": (
        "deployment_file",
        "deploy/sample.yml",
        "The deployment file: organisation, emergency contacts, languages, hours, retention.",
    ),
    "HELPLINE_MODEL_DIR": ("model_dir", "models", "Where trained models are kept."),
    "HELPLINE_BIND": (
        "bind",
        "127.0.0.1",
        "Address the servers listen on; 0.0.0.0 only behind a reverse proxy that adds TLS.",
    ),
    "HELPLINE_RASA_PORT": ("rasa_port", "5005", "Port of the Rasa server."),
    "HELPLINE_ACTION_PORT": ("action_port", "5055", "Port of the action server."),
    "HELPLINE_ACTION_URL": (
        "action_url",
        "http://127.0.0.1:5055/webhook",
        "Where the Rasa server reaches the action server.",
    ),
    "HELPLINE_LANG_MIN_LETTERS": (
        "lang_min_letters",
        "20",
        "A message needs at least this many letters before its language is detected.",
    ),
    "HELPLINE_LANG_MIN_PROB": (
        "lang_min_probability",
        "0.90",
        "langdetect's probability needed to switch language.",
    ),
    "HELPLINE_LOG_LEVEL": ("log_level", "INFO", "Log level of the project's processes."),
}


class SettingsError(ValueError):
    """A setting has a value that cannot be used."""


@dataclass(frozen=True)
class Settings:
    """Everything configurable about a running helpline."""

    deployment_file: Path
    model_dir: Path
    bind: str
    rasa_port: int
    action_port: int
    action_url: str
    lang_min_letters: int
    lang_min_probability: float
    log_level: str

    @classmethod
    def from_env(cls, environ: Optional[Mapping[str, str]] = None) -> "Settings":
        """Builds settings from ``environ`` (default: ``os.environ``).

        Raises:
            SettingsError: when a value has the wrong type or range, naming the variable.
        """
        env = os.environ if environ is None else environ
        raw = {field: env.get(var, default) for var, (field, default, _) in SETTINGS_DOC.items()}
        values = {
            "deployment_file": _path(raw["deployment_file"]),
            "model_dir": _path(raw["model_dir"]),
            "bind": raw["bind"],
            "rasa_port": _port("HELPLINE_RASA_PORT", raw["rasa_port"]),
            "action_port": _port("HELPLINE_ACTION_PORT", raw["action_port"]),
            "action_url": raw["action_url"],
            "lang_min_letters": _int("HELPLINE_LANG_MIN_LETTERS", raw["lang_min_letters"], 1),
            "lang_min_probability": _probability(raw["lang_min_probability"]),
            "log_level": raw["log_level"].upper(),
        }
        if values["log_level"] not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise SettingsError(f"HELPLINE_LOG_LEVEL: unknown level {raw['log_level']!r}")
        return cls(**values)


def _path(text: str) -> Path:
    path = Path(text)
    return path if path.is_absolute() else PROJECT_ROOT / path


def _int(name: str, text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise SettingsError(f"{name}: expected a whole number, got {text!r}") from None
    if value < minimum:
        raise SettingsError(f"{name}: must be at least {minimum}, got {value}")
    return value


def _port(name: str, text: str) -> int:
    value = _int(name, text, 1)
    if value > 65535:
        raise SettingsError(f"{name}: not a port number: {value}")
    return value


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise SettingsError(f"HELPLINE_LANG_MIN_PROB: expected a number, got {text!r}") from None
    if not 0.0 < value <= 1.0:
        raise SettingsError(f"HELPLINE_LANG_MIN_PROB: must be in (0, 1], got {value}")
    return value


assert {f.name for f in fields(Settings)} == {f for f, _, _ in SETTINGS_DOC.values()}
