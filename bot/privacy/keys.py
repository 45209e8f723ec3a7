"""The deployment's secrets: the pseudonym (HMAC) key and the reply-route encryption keys.

Each comes from the environment when set there, otherwise from the secrets file
(setting ``HELPLINE_SECRETS_FILE``, default ``var/secrets.json``), which is created on first use with
permissions 0600 in a 0700 directory. A secrets file that others can read is refused.

- ``HELPLINE_PSEUDONYM_KEY``: at least 32 characters. Changing it changes every conversation
  id: existing conversations become unreachable (which is also how to cut every link at once).
- ``HELPLINE_ROUTE_KEYS``: comma-separated Fernet keys, newest first. The newest encrypts;
  all of them decrypt. ``rotate`` puts a new key in front; ``retire`` keeps only the newest
  (after stored routes were re-encrypted, see ``bot.privacy.routes``).

Nothing here logs or prints a key.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional

from cryptography.fernet import Fernet, MultiFernet

PSEUDONYM_KEY_VAR = "HELPLINE_PSEUDONYM_KEY"
ROUTE_KEYS_VAR = "HELPLINE_ROUTE_KEYS"
MIN_PSEUDONYM_KEY_CHARS = 32


class SecretsError(RuntimeError):
    """The secrets cannot be used; the message says what to do (and never holds a key)."""


@dataclass(frozen=True)
class Secrets:
    """The keys a running helpline needs. ``repr`` never shows them."""

    pseudonym_key: bytes = field(repr=False)
    route_keys: tuple[str, ...] = field(repr=False)
    source: str = "file"

    def fernet(self) -> MultiFernet:
        """Encrypts with the newest route key, decrypts with any."""
        return MultiFernet([Fernet(k.encode("ascii")) for k in self.route_keys])


def new_pseudonym_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode("ascii")


def load_secrets(
    path: Path, environ: Optional[Mapping[str, str]] = None, create: bool = True
) -> Secrets:
    """The secrets, from the environment first and the secrets file for what is missing.

    Args:
        path: the secrets file.
        environ: variables to read (default ``os.environ``).
        create: create the secrets file when it does not exist.

    Raises:
        SecretsError: a key is malformed, or the file is unreadable, too open or missing.
    """
    env = os.environ if environ is None else environ
    env_pseudonym = env.get(PSEUDONYM_KEY_VAR, "").strip()
    env_routes = env.get(ROUTE_KEYS_VAR, "").strip()
    stored: dict = {}
    if not (env_pseudonym and env_routes):
        if not path.exists():
            if not create:
                raise SecretsError(
                    f"no secrets file at {path}; run `helpline secrets init` or set "
                    f"{PSEUDONYM_KEY_VAR} and {ROUTE_KEYS_VAR}"
                )
            create_secrets_file(path)
        stored = read_secrets_file(path)
    pseudonym = env_pseudonym or stored.get("pseudonym_key", "")
    routes_text = env_routes or ",".join(stored.get("route_keys", []))
    return Secrets(
        pseudonym_key=_check_pseudonym_key(pseudonym),
        route_keys=_check_route_keys(routes_text),
        source="environment" if env_pseudonym and env_routes else "file",
    )


def create_secrets_file(path: Path) -> bool:
    """Creates a secrets file with fresh keys, mode 0600, unless one exists.

    Safe when several processes start at once: the file appears complete or not at all.
    Returns whether this call created it.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    content = {"pseudonym_key": new_pseudonym_key(), "route_keys": [Fernet.generate_key().decode()]}
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    _write_private(temporary, content)
    try:
        os.link(temporary, path)  # fails if another process was first
        return True
    except FileExistsError:
        return False
    finally:
        temporary.unlink()


def read_secrets_file(path: Path) -> dict:
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise SecretsError(f"cannot read the secrets file {path}: {exc.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SecretsError(
            f"the secrets file {path} can be read by other users (mode {stat.S_IMODE(mode):o}); "
            f"run `chmod 600 {path}`"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SecretsError(f"the secrets file {path} is not readable JSON ({type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise SecretsError(f"the secrets file {path} must hold a JSON object")
    return data


def _write_private(path: Path, content: dict) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(content, handle, indent=2)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())


def _replace_private(path: Path, content: dict) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    _write_private(temporary, content)
    os.replace(temporary, path)


def _check_pseudonym_key(text: str) -> bytes:
    if len(text) < MIN_PSEUDONYM_KEY_CHARS:
        raise SecretsError(
            f"the pseudonym key must have at least {MIN_PSEUDONYM_KEY_CHARS} characters "
            f"(set {PSEUDONYM_KEY_VAR} or use the secrets file)"
        )
    return text.encode("utf-8")


def _check_route_keys(text: str) -> tuple[str, ...]:
    keys = tuple(k.strip() for k in text.split(",") if k.strip())
    if not keys:
        raise SecretsError(f"no reply-route key (set {ROUTE_KEYS_VAR} or use the secrets file)")
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key.encode("ascii"))
        except (ValueError, UnicodeEncodeError):
            raise SecretsError(
                f"reply-route key {position} is not a Fernet key (32 url-safe base64 bytes)"
            ) from None
    return keys


def rotate_route_key(path: Path) -> int:
    """Puts a new route key in front of the file's keys; returns how many keys it now holds."""
    data = read_secrets_file(path)
    keys = [Fernet.generate_key().decode()] + list(data.get("route_keys", []))
    data["route_keys"] = keys
    _replace_private(path, data)
    return len(keys)


def retire_route_keys(path: Path) -> int:
    """Keeps only the newest route key in the file; returns how many were removed."""
    data = read_secrets_file(path)
    keys = list(data.get("route_keys", []))
    if not keys:
        raise SecretsError(f"the secrets file {path} holds no route key")
    data["route_keys"] = keys[:1]
    _replace_private(path, data)
    return len(keys) - 1
