"""Shared fixtures: a fresh dispatcher, a sample deployment, the domain."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from rasa_sdk.executor import CollectingDispatcher

from bot.settings import PROJECT_ROOT

SAMPLE_DEPLOYMENT = PROJECT_ROOT / "deploy" / "sample.yml"
os.environ.setdefault("HELPLINE_DEPLOYMENT", str(SAMPLE_DEPLOYMENT))

# The tests (and every process they start) keep their secrets and databases in a folder of
# their own, never in the project's var/.
TEST_STATE = Path(tempfile.mkdtemp(prefix="helpline-tests-"))
os.environ.setdefault("HELPLINE_SECRETS_FILE", str(TEST_STATE / "secrets.json"))
os.environ.setdefault("HELPLINE_DATABASE_URL", f"sqlite:///{TEST_STATE / 'helpline.db'}")


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(TEST_STATE, ignore_errors=True)


@pytest.fixture
def dispatcher() -> CollectingDispatcher:
    return CollectingDispatcher()


@pytest.fixture(scope="session")
def domain() -> dict:
    from rasa.shared.core.domain import Domain

    return Domain.load(str(PROJECT_ROOT / "bot" / "domain")).as_dict()


def responses_sent(dispatcher: CollectingDispatcher) -> list[str]:
    """Names of the responses an action sent, in order."""
    return [m.get("utter_action") for m in dispatcher.messages]


@pytest.fixture(autouse=True)
def _person_availability_asked_afresh():
    """Each test finds out afresh whether a person can come (bot.cases.availability keeps
    the answer per process for some seconds, and tests change the accounts and databases)."""
    from bot.cases.availability import forget

    forget()
    yield
    forget()


@pytest.fixture
def caseworker_database(tmp_path, monkeypatch) -> str:
    """A migrated database with one caseworker account, as HELPLINE_DATABASE_URL: a person
    can be connected, so texts offer one."""
    from tests.test_handoff import migrated

    url = migrated(tmp_path)
    monkeypatch.setenv("HELPLINE_DATABASE_URL", url)
    return url


@pytest.fixture
def sample_path() -> Path:
    return SAMPLE_DEPLOYMENT


@pytest.fixture(scope="session")
def model_path() -> Path:
    """The model for the current training inputs (scripts/test trains it first)."""
    from bot.cli import model_path as current_model
    from bot.settings import Settings

    path = current_model(Settings.from_env())
    if not path.exists():
        pytest.fail(f"no trained model for the current inputs ({path.name}): run `helpline train`")
    return path


@pytest.fixture(scope="session")
def action_server(tmp_path_factory):
    """A real action server process on a free port; yields its webhook URL."""
    from tests.utils.assistant import free_port, start_action_server, stop

    port = free_port()
    log = tmp_path_factory.mktemp("actions") / "actions.log"
    process = start_action_server(port, log)
    yield f"http://127.0.0.1:{port}/webhook"
    stop(process)


@pytest.fixture(scope="session")
def assistant(model_path, action_server):
    """The trained assistant in-process, talking to the real action server."""
    from tests.utils.assistant import Assistant

    bot = Assistant(model_path, action_server)
    yield bot
    bot.close()


# -- real services (PostgreSQL and Redis on this machine; see README "Tests") -----------------

POSTGRES_ADMIN_URL = os.environ.get("HELPLINE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_TEST_URL = os.environ.get("HELPLINE_TEST_REDIS", "redis://127.0.0.1:6379/13")


@pytest.fixture
def postgres_url():
    """A fresh, empty PostgreSQL database for one test; dropped afterwards."""
    import uuid

    import sqlalchemy as sa

    name = f"helpline_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        pytest.fail(f"PostgreSQL is needed at {POSTGRES_ADMIN_URL} (HELPLINE_TEST_POSTGRES): {exc}")
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    yield url
    with admin.connect() as connection:
        connection.execute(sa.text(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :name"
        ), {"name": name})
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


@pytest.fixture
def redis_url():
    """A Redis database (number 13 by default) emptied before and after the test."""
    import redis

    client = redis.Redis.from_url(REDIS_TEST_URL)
    try:
        client.flushdb()
    except redis.exceptions.ConnectionError as exc:
        pytest.fail(f"Redis is needed at {REDIS_TEST_URL} (HELPLINE_TEST_REDIS): {exc}")
    yield REDIS_TEST_URL
    client.flushdb()
    client.close()
