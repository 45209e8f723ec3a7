"""Secrets: from the environment or a 0600 file made on first run; route-key rotation."""

from __future__ import annotations

import os
import stat
import threading

import pytest
from cryptography.fernet import Fernet, InvalidToken

from bot.privacy.keys import (
    SecretsError,
    create_secrets_file,
    load_secrets,
    read_secrets_file,
    retire_route_keys,
    rotate_route_key,
)

ENV_PSEUDONYM = "k" * 40


def test_first_run_creates_a_private_secrets_file(tmp_path):
    path = tmp_path / "var" / "secrets.json"
    secrets = load_secrets(path, environ={})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert len(secrets.route_keys) == 1 and len(secrets.pseudonym_key) >= 32
    assert load_secrets(path, environ={}) == secrets  # the same keys on the next start
    assert secrets.source == "file"


def test_keys_never_appear_in_repr(tmp_path):
    secrets = load_secrets(tmp_path / "s.json", environ={})
    assert secrets.route_keys[0] not in repr(secrets)
    assert secrets.pseudonym_key.decode() not in repr(secrets)


def test_processes_starting_together_agree_on_one_file(tmp_path):
    path = tmp_path / "secrets.json"
    results: list = []
    threads = [threading.Thread(target=lambda: results.append(create_secrets_file(path)))
               for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(True) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["secrets.json"]  # no temporary files left


def test_the_environment_wins_over_the_file(tmp_path):
    route_key = Fernet.generate_key().decode()
    environ = {"HELPLINE_PSEUDONYM_KEY": ENV_PSEUDONYM, "HELPLINE_ROUTE_KEYS": route_key}
    secrets = load_secrets(tmp_path / "absent.json", environ=environ, create=False)
    assert secrets.pseudonym_key == ENV_PSEUDONYM.encode()
    assert secrets.route_keys == (route_key,)
    assert secrets.source == "environment"
    assert not (tmp_path / "absent.json").exists()


def test_a_secrets_file_others_can_read_is_refused(tmp_path):
    path = tmp_path / "secrets.json"
    create_secrets_file(path)
    os.chmod(path, 0o644)
    with pytest.raises(SecretsError, match="can be read by other users .*chmod 600"):
        load_secrets(path, environ={})


@pytest.mark.parametrize(
    "environ, message",
    [
        ({"HELPLINE_PSEUDONYM_KEY": "short", "HELPLINE_ROUTE_KEYS": Fernet.generate_key().decode()},
         "at least 32 characters"),
        ({"HELPLINE_PSEUDONYM_KEY": ENV_PSEUDONYM, "HELPLINE_ROUTE_KEYS": "not-a-key"},
         "reply-route key 1 is not a Fernet key"),
        ({"HELPLINE_PSEUDONYM_KEY": ENV_PSEUDONYM,
          "HELPLINE_ROUTE_KEYS": Fernet.generate_key().decode() + ",bad"},
         "reply-route key 2 is not a Fernet key"),
    ],
)
def test_bad_keys_are_named_without_showing_them(tmp_path, environ, message):
    with pytest.raises(SecretsError, match=message) as error:
        load_secrets(tmp_path / "s.json", environ=environ)
    for value in environ.values():
        assert value not in str(error.value)


def test_a_missing_file_without_creation_says_what_to_do(tmp_path):
    with pytest.raises(SecretsError, match="helpline secrets init"):
        load_secrets(tmp_path / "none.json", environ={}, create=False)


def test_a_broken_file_is_named(tmp_path):
    path = tmp_path / "secrets.json"
    path.write_text("{not json")
    os.chmod(path, 0o600)
    with pytest.raises(SecretsError, match="not readable JSON"):
        load_secrets(path, environ={})


def test_rotation_keeps_old_routes_readable_and_retiring_drops_the_old_key(tmp_path):
    path = tmp_path / "secrets.json"
    before = load_secrets(path, environ={})
    token = before.fernet().encrypt(b"route under the old key")

    assert rotate_route_key(path) == 2
    rotated = load_secrets(path, environ={})
    assert rotated.route_keys[1] == before.route_keys[0]  # the old key stays, second
    assert rotated.fernet().decrypt(token) == b"route under the old key"
    fresh = rotated.fernet().encrypt(b"new route")
    with pytest.raises(InvalidToken):
        before.fernet().decrypt(fresh)  # the newest key encrypts
    reencrypted = rotated.fernet().rotate(token)

    assert retire_route_keys(path) == 1
    retired = load_secrets(path, environ={})
    assert retired.route_keys == rotated.route_keys[:1]
    assert retired.fernet().decrypt(reencrypted) == b"route under the old key"
    with pytest.raises(InvalidToken):
        retired.fernet().decrypt(token)  # not re-encrypted: unreadable after retiring
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_secrets_file(path)["pseudonym_key"] == before.pseudonym_key.decode()
