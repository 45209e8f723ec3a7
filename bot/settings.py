"""One settings object for everything configurable, read from environment variables.

Every variable has a documented default (see the table in README.md, which a test keeps in
step with ``SETTINGS_DOC``). Reading settings does no I/O beyond ``os.environ``.
"""

from __future__ import annotations

import ipaddress
import os
import re
import urllib.parse
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Mapping, Optional, Sequence

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
        "Address the Rasa server and the console listen on (the action server: always "
        "127.0.0.1). Keep 127.0.0.1 with nginx in front (deploy/nginx/helpline.conf); `helpline "
        "check` refuses another address while Rasa's API or the REST channel is on.",
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
    "HELPLINE_TRACKER_STORE": (
        "tracker_store",
        "sql",
        "Where redacted conversations are kept: sql (HELPLINE_DATABASE_URL), redis "
        "(HELPLINE_REDIS_URL) or memory.",
    ),
    "HELPLINE_DATABASE_URL": (
        "database_url",
        "sqlite:///var/helpline.db",
        "SQLAlchemy URL of the database; postgresql://user@host/db for PostgreSQL.",
    ),
    "HELPLINE_REDIS_URL": (
        "redis_url",
        "",
        "redis://host:port/db; when set, reply routes are kept in Redis (shared by replicas).",
    ),
    "HELPLINE_SECRETS_FILE": (
        "secrets_file",
        "var/secrets.json",
        "The secrets file (pseudonym and route keys), created 0600 on first run.",
    ),
    "HELPLINE_PURGE_MINUTES": (
        "purge_minutes",
        "15",
        "How often the Rasa server deletes conversations idle longer than the retention time.",
    ),
    "HELPLINE_CONSOLE_PORT": (
        "console_port",
        "5010",
        "Port of the caseworker console (`helpline console`), on HELPLINE_BIND.",
    ),
    "HELPLINE_MESSAGES_PER_MINUTE": (
        "messages_per_minute",
        "20",
        "Messages one conversation may send in a minute; the next gets one request to slow "
        "down (with the emergency contacts), later ones no answer until the minute passes.",
    ),
    "HELPLINE_ACTION_TIMEOUT_SECONDS": (
        "action_timeout_seconds",
        "5",
        "How long the Rasa server waits for the action server before the person gets the "
        "short failure message with the emergency contacts.",
    ),
    "HELPLINE_RASA_TOKEN": (
        "rasa_token",
        "",
        "Token of the Rasa server's HTTP API (rasa run --enable-api --auth-token); the console "
        "sends caseworkers' replies through it. At least 32 random characters (letters, digits, "
        "- _ . ~); the API is only on 127.0.0.1.",
    ),
}

TRACKER_STORES = ("sql", "redis", "memory")
# Rasa's API token: it travels in the query string (``?token=``), so URL-safe characters only.
MIN_TOKEN_LENGTH = 32
_TOKEN_CHARACTERS = re.compile(r"^[A-Za-z0-9._~-]+$")
_TOKEN_CLASSES = (re.compile(r"[a-z]"), re.compile(r"[A-Z]"), re.compile(r"[0-9]"),
                  re.compile(r"[._~-]"))
MIN_TOKEN_DISTINCT = 10  # 32 hex digits have about 14 different ones
MAKE_TOKEN = "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
PROXY_ADVICE = ("set HELPLINE_BIND=127.0.0.1 and put nginx in front "
                "(deploy/nginx/helpline.conf, README: \"Putting it on the internet\")")


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
    tracker_store: str
    database_url: str = field(repr=False)  # may hold a password
    redis_url: str = field(repr=False)
    secrets_file: Path
    purge_minutes: int
    console_port: int
    messages_per_minute: int
    action_timeout_seconds: float
    rasa_token: str = field(repr=False)

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
            "tracker_store": raw["tracker_store"].strip().lower(),
            "database_url": _database_url(raw["database_url"].strip()),
            "redis_url": raw["redis_url"].strip(),
            "secrets_file": _path(raw["secrets_file"]),
            "purge_minutes": _int("HELPLINE_PURGE_MINUTES", raw["purge_minutes"], 1),
            "console_port": _port("HELPLINE_CONSOLE_PORT", raw["console_port"]),
            "messages_per_minute": _int("HELPLINE_MESSAGES_PER_MINUTE",
                                        raw["messages_per_minute"], 1),
            "action_timeout_seconds": _seconds("HELPLINE_ACTION_TIMEOUT_SECONDS",
                                               raw["action_timeout_seconds"]),
            "rasa_token": raw["rasa_token"].strip(),
        }
        if values["tracker_store"] not in TRACKER_STORES:
            raise SettingsError(
                f"HELPLINE_TRACKER_STORE: expected one of {', '.join(TRACKER_STORES)}, "
                f"got {raw['tracker_store']!r}"
            )
        if values["tracker_store"] == "redis" and not values["redis_url"]:
            raise SettingsError("HELPLINE_TRACKER_STORE is redis but HELPLINE_REDIS_URL is not set")
        if values["redis_url"] and not values["redis_url"].startswith(("redis://", "rediss://", "unix://")):
            raise SettingsError("HELPLINE_REDIS_URL: expected redis://, rediss:// or unix://")
        if not values["database_url"] or "://" not in values["database_url"]:
            raise SettingsError(
                f"HELPLINE_DATABASE_URL: expected an SQLAlchemy URL such as "
                f"sqlite:///var/helpline.db, got {raw['database_url']!r}"
            )
        if values["log_level"] not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise SettingsError(f"HELPLINE_LOG_LEVEL: unknown level {raw['log_level']!r}")
        return cls(**values)


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``: reachable from this machine only."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False


def token_problem(token: str) -> Optional[str]:
    """Why ``token`` is too weak for Rasa's API (None when it will do).

    Anyone holding the token can read every conversation and speak as anyone, so it must be
    long and random: at least ``MIN_TOKEN_LENGTH`` URL-safe characters of at least two kinds
    (lower case, upper case, digits, ``- _ . ~``) with ``MIN_TOKEN_DISTINCT`` different ones.
    """
    if not token:
        return None
    advice = f"make one with: {MAKE_TOKEN}"
    if len(token) < MIN_TOKEN_LENGTH:
        return (f"HELPLINE_RASA_TOKEN is {len(token)} characters; it must be at least "
                f"{MIN_TOKEN_LENGTH} random characters: {advice}")
    if not _TOKEN_CHARACTERS.match(token):
        return ("HELPLINE_RASA_TOKEN may hold only letters, digits and - _ . ~ (it travels in a "
                f"URL): {advice}")
    kinds = sum(1 for kind in _TOKEN_CLASSES if kind.search(token))
    if kinds < 2 or len(set(token)) < MIN_TOKEN_DISTINCT:
        return f"HELPLINE_RASA_TOKEN does not look random (too few kinds of characters): {advice}"
    return None


def exposure_problems(settings: "Settings", open_channels: Sequence[str] = ()) -> list[str]:
    """Settings that would put Rasa's HTTP API, an unauthenticated channel or the action server
    where others can reach them without the proxy, each with what to do instead.

    Args:
        settings: the settings to check.
        open_channels: the unauthenticated channels (the REST channel) of the credentials file
            the Rasa server is started with.
    """
    problems = []
    if not is_loopback(settings.bind):
        if settings.rasa_token:
            problems.append(
                f"HELPLINE_BIND={settings.bind} with HELPLINE_RASA_TOKEN set would put Rasa's HTTP "
                f"API (every conversation, the model) on {settings.bind}: {PROXY_ADVICE}")
        for channel in open_channels:
            problems.append(
                f"HELPLINE_BIND={settings.bind} would put the {channel} channel of credentials.yml "
                "(no authentication: anyone could speak as anyone) on "
                f"{settings.bind}: {PROXY_ADVICE}, or leave that channel out "
                "(deploy/credentials.sample.yml)")
    action_host = urllib.parse.urlsplit(settings.action_url).hostname or ""
    if not is_loopback(action_host):
        problems.append(
            f"HELPLINE_ACTION_URL={settings.action_url}: the action server listens on 127.0.0.1 "
            "only (only the Rasa server on the same machine calls it); use "
            f"http://127.0.0.1:{settings.action_port}/webhook")
    return problems


def _path(text: str) -> Path:
    path = Path(text)
    return path if path.is_absolute() else PROJECT_ROOT / path


def _database_url(url: str) -> str:
    """A relative SQLite path is taken from the project directory, not the current one."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and url != prefix:
        return prefix + str(PROJECT_ROOT / url[len(prefix):])
    return url


def _seconds(name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise SettingsError(f"{name}: expected a number of seconds, got {text!r}") from None
    if not 0.5 <= value <= 300:
        raise SettingsError(f"{name}: must be from 0.5 to 300 seconds, got {text!r}")
    return value


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
