"""The ``helpline`` command: check the configuration, build the domain, train, chat.

Usage:
    helpline check            validate settings, deployment file, messages (the consent
                              reminder within the SMS budget too), triage rules
    helpline build-domain     regenerate bot/domain/responses.yml from bot/messages/
    helpline train [--force]  train the model unless one exists for the current inputs
    helpline model-path       print the model file for the current inputs
    helpline chat [--url U]   chat with a running assistant in the terminal
    helpline purge            delete conversations idle longer than the retention time, and
                              campaign subscribers whose consent ran out
    helpline secrets init     create the secrets file (0600) unless it exists
    helpline secrets rotate   add a new reply-route key in front of the old ones
    helpline secrets retire   re-encrypt stored routes with the newest key, drop the others
    helpline db upgrade       bring the database schema to the newest migration
    helpline services import FILE... [--dry-run] [--quiet]
                              validate and upsert HXL-tagged CSV service lists
    helpline services export FILE
                              write the directory back as HXL-tagged CSV ('-' for stdout)
    helpline places import FILE
                              add or update gazetteer places (names per language, spellings)
    helpline services sample  with the sample deployment file and an empty directory only:
                              import the fictional sample directory and places
    helpline telegram webhook set|info|delete [--credentials FILE]
                              register the Telegram webhook (webhook_url, secret_token),
                              show its state, or remove it
    helpline users add NAME [--supervisor] [--language L] [--password-stdin]
                              create a console user (password typed twice, or one stdin line)
    helpline users list       the console's users, their role and state
    helpline users disable NAME
                              the user can no longer sign in; their sessions end
    helpline users enable NAME
                              a disabled user may sign in again (a lock-out ends too)
    helpline users unlock NAME
                              end a lock-out after too many wrong passwords
    helpline users password NAME [--password-stdin]
                              set a new password; the lock-out and the user's sessions end
    helpline messages sheet [--out DIR]
                              every message in every language side by side (HTML and CSV),
                              with where it is shown, its buttons and its SMS segments
    helpline messages check FILE.csv
                              check an edited sheet (keys, placeholders, length, SMS words)
    helpline console [--insecure-cookies]
                              serve the caseworker console on HELPLINE_BIND:HELPLINE_CONSOLE_PORT
    helpline nginx-config [--server-name N] [--console-listen A] [--console-allow NET]... [-o F]
                              the nginx configuration of the public entry and the console
                              (deploy/nginx/helpline.conf filled in)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Iterable, Optional

from bot.settings import PROJECT_ROOT, Settings, SettingsError

# Everything that changes the trained model; the model file is named after their hash.
TRAINING_INPUTS = (
    "bot/config.yml",
    "bot/domain",
    "data/nlu",
    "data/stories",
    "data/urgency",
    "data/gazetteer/places.csv",
    "data/services",
    "bot/nlu",
    "bot/keywords.py",
)


def training_files(root: Path = PROJECT_ROOT) -> list[Path]:
    files: list[Path] = []
    for item in TRAINING_INPUTS:
        path = root / item
        if path.is_dir():
            files += sorted(p for p in path.rglob("*")
                            if p.is_file() and p.suffix in {".yml", ".py", ".csv"})
        elif path.exists():
            files.append(path)
    return files


def fingerprint(root: Path = PROJECT_ROOT) -> str:
    """A short hash of the training inputs (paths and contents) and the Rasa version."""
    from rasa.version import __version__ as rasa_version

    digest = hashlib.sha256(rasa_version.encode())
    for path in training_files(root):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def model_path(settings: Settings, root: Path = PROJECT_ROOT) -> Path:
    return settings.model_dir / f"helpline-{fingerprint(root)}.tar.gz"


def check(settings: Settings) -> list[str]:
    """Every configuration problem found, as readable lines (empty when all is well)."""
    from bot.catalog import CatalogError, load_catalog, render_domain_file, RESPONSES_FILE
    from bot.deployment import DeploymentError, load_deployment
    from bot.keywords import load_keywords
    from bot.triage import TriageRulesError, load_rules

    problems: list[str] = []
    deployment = catalog = None
    try:
        deployment = load_deployment(settings.deployment_file)
    except DeploymentError as exc:
        problems.append(str(exc))
    try:
        catalog = load_catalog()
        if not RESPONSES_FILE.exists() or RESPONSES_FILE.read_text("utf-8") != render_domain_file(catalog):
            problems.append(
                f"{RESPONSES_FILE.relative_to(PROJECT_ROOT)} is out of date: run `helpline build-domain`"
            )
    except CatalogError as exc:
        problems.append(f"messages: {exc}")
    if deployment is not None and catalog is not None:
        # the consent reminder (`helpline campaign remind`): the organisation's name in it must
        # leave each language's text within sms.segment_budget
        from bot.campaigns.reminders import reminder_problems

        problems += reminder_problems(deployment, catalog)
    try:
        load_rules()
    except TriageRulesError as exc:
        problems.append(str(exc))
    try:
        load_keywords()
    except ValueError as exc:
        problems.append(str(exc))
    problems += check_secrets(settings)
    problems += check_exposure(settings)
    return problems


# Channels that let anyone speak as anyone (no signature, secret or session check).
OPEN_CHANNELS = ("channels.rest.HelplineRestInput", "rest", "rasa.core.channels.rest.RestInput")


def check_exposure(settings: Settings, credentials: Path = PROJECT_ROOT / "credentials.yml"
                   ) -> list[str]:
    """Rasa's API token, and what the settings would expose without the proxy (scripts/start
    runs the Rasa server with ``credentials``)."""
    import yaml

    from bot.settings import exposure_problems, token_problem

    problems = [p for p in [token_problem(settings.rasa_token)] if p]
    channels: dict = {}
    if credentials.exists():
        try:  # the channel names only: no ${VAR} needs to be set for this check
            channels = yaml.safe_load(credentials.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            problems.append(f"{credentials.name}: not YAML ({exc})")
    if not isinstance(channels, dict):
        problems.append(f"{credentials.name}: expected a mapping of channels")
        channels = {}
    return problems + exposure_problems(settings, [c for c in OPEN_CHANNELS if c in channels])


def cover_note(settings: Settings) -> str:
    """What the hours of cover mean for the hand-off (``bot.cases.service.hold_note``)."""
    import datetime as dt

    from bot.cases.service import hold_note
    from bot.deployment import load_deployment

    note = hold_note(load_deployment(settings.deployment_file), dt.datetime.now(dt.timezone.utc))
    return note or "hours of cover: none, or without a break"


def check_secrets(settings: Settings) -> list[str]:
    """Problems with the secrets (a missing file is fine: it is created on first run)."""
    import os

    from bot.privacy.keys import PSEUDONYM_KEY_VAR, ROUTE_KEYS_VAR, SecretsError, load_secrets

    from_env = os.environ.get(PSEUDONYM_KEY_VAR) and os.environ.get(ROUTE_KEYS_VAR)
    if not from_env and not settings.secrets_file.exists():
        return []
    try:
        load_secrets(settings.secrets_file, create=False)
    except SecretsError as exc:
        return [f"secrets: {exc}"]
    return []


def purge(settings: Settings) -> tuple[int, int, int]:
    """Deletes idle conversations (and their reply routes), then closes the hand-off cases
    idle as long (a Redis tracker store expires conversations unseen), then deletes the
    campaign subscribers (and their encrypted addresses) whose consent is older than the
    deployment's ``campaigns.consent_months``; returns the three counts (0 for what the
    database has no tables for)."""
    import asyncio

    from rasa.shared.core.domain import Domain

    from bot.campaigns.service import subscribers_for
    from bot.cases.service import cases_for
    from bot.deployment import load_deployment
    from bot.tracker_store import PrivateTrackerStore
    from channels.gateway import shared_routes

    async def run() -> int:
        shared_routes()  # registers the route cache with the erasure registry
        store = PrivateTrackerStore(Domain.load(str(PROJECT_ROOT / "bot" / "domain")),
                                    settings=settings)
        return await store.purge()

    conversations = asyncio.run(run())
    cases = cases_for(settings.database_url, settings)
    if cases is None:  # not migrated: no cases, no subscribers either
        return conversations, 0, 0
    deployment = load_deployment(settings.deployment_file)
    closed = len(cases.expire_idle(deployment.retention.conversation_idle_hours))
    subscribers = subscribers_for(settings.database_url, settings)
    expired = 0 if subscribers is None else subscribers.expire(
        deployment.campaigns.consent_months)
    return conversations, closed, expired


def secrets_command(settings: Settings, action: str) -> int:
    """``helpline secrets init|rotate|retire``; prints what was done, never a key."""
    import asyncio
    import os

    from bot.privacy.keys import (
        PSEUDONYM_KEY_VAR, ROUTE_KEYS_VAR, SecretsError, create_secrets_file, load_secrets,
        retire_route_keys, rotate_route_key,
    )

    path = settings.secrets_file
    if action == "init" and os.environ.get(PSEUDONYM_KEY_VAR) and os.environ.get(ROUTE_KEYS_VAR):
        print(f"the keys come from {PSEUDONYM_KEY_VAR} and {ROUTE_KEYS_VAR}: no secrets file needed")
        return 0
    if action == "init":
        created = create_secrets_file(path)
        print(f"{path}: {'created (mode 600)' if created else 'exists, left as it is'}")
        return 0
    if os.environ.get(ROUTE_KEYS_VAR):
        print(f"the route keys come from {ROUTE_KEYS_VAR}: rotate them there (newest first, "
              f"comma-separated), restart, then drop the old key", file=sys.stderr)
        return 2
    try:
        if action == "rotate":
            count = rotate_route_key(path)
            print(f"{path}: new route key added in front ({count} keys). Restart the Rasa "
                  f"server(s); after that, `helpline secrets retire` re-encrypts stored routes "
                  f"and drops the old keys.")
            return 0
        secrets = load_secrets(path, create=False)
        moved = 0
        if settings.redis_url:
            from bot.privacy.routes import RedisRouteCache

            async def reencrypt() -> int:
                cache = RedisRouteCache(secrets.fernet(), 3600, settings.redis_url)
                try:
                    return await cache.reencrypt()
                finally:
                    await cache.aclose()

            moved = asyncio.run(reencrypt())
        rewrapped, addresses = _reencrypt_database(settings, secrets)
        dropped = retire_route_keys(path)
        print(f"{path}: {moved} stored route(s) re-encrypted, {rewrapped} open case key(s) "
              f"re-wrapped, {addresses} subscriber address(es) re-encrypted, {dropped} old "
              f"key(s) dropped. Restart the Rasa server(s), the console and the campaign "
              f"dispatcher. Routes kept in memory are re-created by the next message.")
        return 0
    except SecretsError as exc:
        print(f"secrets: {exc}", file=sys.stderr)
        return 2


def _reencrypt_database(settings: Settings, secrets) -> tuple[int, int]:
    """Re-wraps the open cases' keys and re-encrypts the subscribers' addresses with the
    newest route key; (0, 0) where the database is not migrated."""
    from bot.campaigns.subscribers import Subscribers
    from bot.cases.queue import Cases
    from bot.storage import SchemaError, make_engine, require_current, session_factory

    engine = make_engine(settings.database_url)
    try:
        require_current(engine)
    except SchemaError:
        return 0, 0
    try:
        sessions, fernet = session_factory(engine), secrets.fernet()
        return Cases(sessions, fernet).reencrypt_keys(), Subscribers(sessions, fernet).reencrypt()
    finally:
        engine.dispose()


def db_upgrade(settings: Settings) -> str:
    """Runs the migrations; returns the schema version reached."""
    from bot.storage import current_revision, make_engine, upgrade

    engine = make_engine(settings.database_url)
    try:
        upgrade(engine)
        return current_revision(engine) or "none"
    finally:
        engine.dispose()


def services_import(settings: Settings, files: list[str], dry_run: bool, quiet: bool) -> int:
    """Imports each file; prints a summary and every refused row. Exit status: 0 all rows
    imported, 1 some rows refused, 2 a file could not be read at all."""
    from bot.services.categories import CategoriesError
    from bot.services.hxl_io import DirectoryFileError, import_file
    from bot.storage import SchemaError, make_engine, require_current, session_factory

    engine = make_engine(settings.database_url)
    status = 0
    try:
        require_current(engine)
        sessions = session_factory(engine)
        for name in files:
            path = Path(name)
            if not path.is_file():
                print(f"{name}: no such file", file=sys.stderr)
                status = 2
                continue
            with _progress(path, quiet) as bar, sessions() as session:
                try:
                    report = import_file(session, path, dry_run=dry_run, progress=bar.update)
                except (DirectoryFileError, CategoriesError) as exc:
                    print(str(exc), file=sys.stderr)
                    status = 2
                    continue
            for line, problem in report.problems:
                print(f"{path.name} line {line}: {problem}", file=sys.stderr)
            print(f"{path.name}: {report.summary()}" + (" (dry run: nothing written)" if dry_run else ""))
            if report.rejected:
                status = max(status, 1)
    except SchemaError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    return status


def _progress(path: Path, quiet: bool):
    from tqdm import tqdm

    total = max(0, sum(1 for _ in path.open("rb")) - 2)
    return tqdm(total=total, unit="rows", desc=path.name, file=sys.stderr,
                disable=quiet or not sys.stderr.isatty(), leave=False)


def places_import(settings: Settings, name: str) -> int:
    from bot.services.places import import_places, read_places
    from bot.storage import SchemaError, make_engine, require_current, session_factory

    engine = make_engine(settings.database_url)
    try:
        require_current(engine)
        places = read_places(Path(name))
        with session_factory(engine)() as session:
            created, updated = import_places(session, places)
        print(f"{Path(name).name}: {len(places)} places: {created} created, {updated} updated")
        return 0
    except (SchemaError, ValueError, OSError) as exc:
        print(str(exc), file=sys.stderr)
        return 2
    finally:
        engine.dispose()


SAMPLE_DEPLOYMENT_FILE = PROJECT_ROOT / "deploy" / "sample.yml"
SAMPLE_SERVICES = sorted((PROJECT_ROOT / "data" / "services").glob("*.csv"))
SAMPLE_PLACES = PROJECT_ROOT / "data" / "gazetteer" / "places.csv"


def services_sample(settings: Settings) -> int:
    """Imports the sample directory for a first try-out: only with the sample deployment file
    (fictional numbers must never reach a real deployment) and only into an empty directory."""
    import sqlalchemy as sa

    from bot.services.models import Service
    from bot.storage import SchemaError, make_engine, require_current, session_factory

    if Path(settings.deployment_file).resolve() != SAMPLE_DEPLOYMENT_FILE.resolve():
        print("services sample: not the sample deployment, so the fictional sample directory "
              "is not imported (use `helpline services import`)")
        return 0
    engine = make_engine(settings.database_url)
    try:
        require_current(engine)
        with session_factory(engine)() as session:
            count = session.execute(sa.select(sa.func.count()).select_from(Service)).scalar_one()
    except SchemaError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    if count:
        print(f"services sample: the directory already has {count} services; nothing imported")
        return 0
    print("services sample: importing the fictional sample directory (sample deployment)")
    status = services_import(settings, [str(p) for p in SAMPLE_SERVICES], False, True)
    return max(status, places_import(settings, str(SAMPLE_PLACES)))


def services_export(settings: Settings, target: str) -> int:
    from bot.services.hxl_io import export_file
    from bot.storage import SchemaError, make_engine, require_current, session_factory

    engine = make_engine(settings.database_url)
    try:
        require_current(engine)
        with session_factory(engine)() as session:
            if target == "-":
                try:
                    export_file(session, sys.stdout)
                    sys.stdout.flush()
                except BrokenPipeError:  # `| head` closed the pipe: not an error
                    import os

                    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            else:
                with open(target, "w", encoding="utf-8", newline="") as out:
                    count = export_file(session, out)
                print(f"{target}: {count} services written", file=sys.stderr)
        return 0
    except SchemaError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    finally:
        engine.dispose()


TELEGRAM_CHANNEL = "channels.telegram.TelegramInput"
TELEGRAM_WEBHOOK_PATH = "/webhooks/telegram/webhook"


def telegram_webhook(action: str, credentials: Path) -> int:
    """``helpline telegram webhook set|info|delete``: the settings come from the channel's
    section of the credentials file (${VARS} expanded as Rasa does); never prints the token."""
    import asyncio

    from rasa.shared.exceptions import RasaException
    from rasa.shared.utils.io import read_config_file

    from channels.telegram_api import (
        ALLOWED_UPDATES, SendError, TelegramConfig, TelegramSender, TelegramSettingsError,
    )

    try:
        channels = read_config_file(credentials)
    except (RasaException, OSError, ValueError) as exc:
        print(f"credentials: {exc}", file=sys.stderr)
        return 2
    if TELEGRAM_CHANNEL not in (channels or {}):
        also = " (the `telegram` section is Rasa's own channel, not this one)" if "telegram" in (channels or {}) else ""
        print(f"credentials: {credentials} has no {TELEGRAM_CHANNEL} section{also}", file=sys.stderr)
        return 2
    try:
        config = TelegramConfig.from_credentials(channels[TELEGRAM_CHANNEL])
    except TelegramSettingsError as exc:
        print(f"credentials: {exc}", file=sys.stderr)
        return 2
    if action == "set" and not config.webhook_url:
        print(f"credentials: {TELEGRAM_CHANNEL} needs 'webhook_url' (the public https URL ending "
              f"in {TELEGRAM_WEBHOOK_PATH}) to set the webhook", file=sys.stderr)
        return 2

    async def run() -> list[str]:
        sender = TelegramSender(config, max_attempts=3)
        try:
            me = await sender.call("getMe", lambda bot: bot.get_me())
            lines = [f"bot: @{me.username}"]
            if action == "set":
                await sender.call("setWebhook", lambda bot: bot.set_webhook(
                    config.webhook_url, secret_token=config.secret_token,
                    allowed_updates=list(ALLOWED_UPDATES)))
                lines.append(f"webhook set: {config.webhook_url} "
                             f"(updates: {', '.join(ALLOWED_UPDATES)}; with the secret token)")
                if not config.webhook_url.rstrip("/").endswith(TELEGRAM_WEBHOOK_PATH):
                    lines.append(f"warning: the channel listens on {TELEGRAM_WEBHOOK_PATH}; "
                                 f"a proxy must forward the webhook URL there")
            elif action == "info":
                info = await sender.call("getWebhookInfo", lambda bot: bot.get_webhook_info())
                error = "none"
                if info.last_error_message:
                    when = info.last_error_date.isoformat() if info.last_error_date else "?"
                    error = f"{when}: {info.last_error_message}"
                lines += [f"url: {info.url or '(none: no webhook set)'}",
                          f"pending updates: {info.pending_update_count}",
                          f"last error: {error}"]
                if info.allowed_updates:
                    lines.append(f"allowed updates: {', '.join(info.allowed_updates)}")
            else:
                await sender.call("deleteWebhook", lambda bot: bot.delete_webhook())
                lines.append("webhook deleted")
            return lines
        finally:
            await sender.close()

    try:
        lines = asyncio.run(run())
    except SendError as exc:
        hint = " (check 'token')" if exc.reason == "InvalidToken" else ""
        print(f"telegram: {exc}{hint}", file=sys.stderr)
        return 2
    print("\n".join(lines))
    return 0


def train(settings: Settings, force: bool = False) -> Path:
    """Trains into ``model_path`` unless that file exists; returns the model path."""
    target = model_path(settings)
    if target.exists() and not force:
        print(f"model is up to date: {target.relative_to(PROJECT_ROOT)}")
        return target
    settings.model_dir.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable, "-m", "rasa", "train",
        "--config", str(PROJECT_ROOT / "bot/config.yml"),
        "--domain", str(PROJECT_ROOT / "bot/domain"),
        "--data", str(PROJECT_ROOT / "data/nlu"), str(PROJECT_ROOT / "data/stories"),
        "--out", str(settings.model_dir),
        "--fixed-model-name", target.name[: -len(".tar.gz")],
        "--force",
        # `rasa data validate --fail-on-warnings` runs in tests/test_stories.py (stricter than
        # the warnings training would print); skipping it here saves 8-15 s of every training
        "--skip-validation",
    ]
    print("training the model (a few minutes)...", flush=True)
    subprocess.run(command, check=True, cwd=PROJECT_ROOT)
    for old in settings.model_dir.glob("helpline-*.tar.gz"):
        if old != target:
            old.unlink()
    return target


def chat(url: str, lines: Optional[Iterable[str]] = None) -> None:
    """A terminal chat: prints the bot's messages and numbers their buttons. An empty line
    asks for messages pushed meanwhile (a caseworker's replies during a hand-off)."""
    sender = f"local-{uuid.uuid4().hex[:12]}"
    poll_url = url.rsplit("/", 1)[0] + "/poll"
    print("Type a message (or a button's number); press Enter alone for new messages. "
          "Ctrl-D or /bye to leave.\n")
    source = lines if lines is not None else _stdin_lines()
    for text in source:
        if text.strip() in {"/bye"}:
            break
        if text.strip():
            target, body = url, {"sender": sender, "message": text}
        else:
            target, body = poll_url, {"sender": sender}
        request = urllib.request.Request(target, json.dumps(body).encode(),
                                         {"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=60) as reply:
                messages = json.load(reply)
        except (urllib.error.URLError, OSError) as exc:
            print(f"[cannot reach the assistant at {target}: {exc}]")
            continue
        if not messages and not text.strip():
            print("[no new message]")
        for message in messages:
            if message.get("text"):
                print(f"bot> {message['text']}")
            for number, button in enumerate(message.get("buttons") or [], start=1):
                print(f"     {number}. {button['title']}")


def _stdin_lines() -> Iterable[str]:
    while True:
        try:
            yield input("you> ")
        except EOFError:
            print()
            return


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="helpline", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("check", help="validate the configuration")
    commands.add_parser("build-domain", help="regenerate bot/domain/responses.yml")
    train_parser = commands.add_parser("train", help="train unless up to date")
    train_parser.add_argument("--force", action="store_true")
    commands.add_parser("model-path", help="print the model file for the current inputs")
    chat_parser = commands.add_parser("chat", help="chat in the terminal")
    chat_parser.add_argument("--url", default=None)
    commands.add_parser("purge", help="delete conversations idle longer than the retention "
                        "time, and subscribers whose consent ran out")
    secrets_parser = commands.add_parser("secrets", help="create or rotate the secrets")
    secrets_parser.add_argument("action", choices=["init", "rotate", "retire"])
    db_parser = commands.add_parser("db", help="database schema")
    db_parser.add_argument("action", choices=["upgrade"])
    services_parser = commands.add_parser("services", help="the services directory")
    services_commands = services_parser.add_subparsers(dest="services_command", required=True)
    import_parser = services_commands.add_parser("import", help="import HXL-tagged CSV files")
    import_parser.add_argument("files", nargs="+")
    import_parser.add_argument("--dry-run", action="store_true", help="validate, write nothing")
    import_parser.add_argument("--quiet", action="store_true", help="no progress bar")
    export_parser = services_commands.add_parser("export", help="write HXL-tagged CSV")
    export_parser.add_argument("file")
    services_commands.add_parser(
        "sample", help="import the fictional sample directory (sample deployment, empty directory)")
    places_parser = commands.add_parser("places", help="the place gazetteer")
    places_commands = places_parser.add_subparsers(dest="places_command", required=True)
    places_import_parser = places_commands.add_parser("import", help="import a places file")
    places_import_parser.add_argument("file")
    telegram_parser = commands.add_parser("telegram", help="the Telegram channel")
    telegram_commands = telegram_parser.add_subparsers(dest="telegram_command", required=True)
    webhook_parser = telegram_commands.add_parser("webhook", help="set, show or delete the webhook")
    webhook_parser.add_argument("action", choices=["set", "info", "delete"])
    webhook_parser.add_argument("--credentials", default=str(PROJECT_ROOT / "credentials.yml"),
                                help="the credentials file (default: the project's)")
    users_parser = commands.add_parser("users", help="the caseworker console's users")
    users_commands = users_parser.add_subparsers(dest="users_command", required=True)
    users_add_parser = users_commands.add_parser("add", help="create a user")
    users_add_parser.add_argument("name")
    users_add_parser.add_argument("--supervisor", action="store_true",
                                  help="may read, transfer and close every case")
    users_add_parser.add_argument("--language", default="en", choices=["en", "fr", "ar", "es"],
                                  help="language of need and place names in the console")
    users_add_parser.add_argument("--password-stdin", action="store_true",
                                  help="read the password from the first line of stdin")
    users_commands.add_parser("list", help="list the users")
    users_disable_parser = users_commands.add_parser("disable", help="disable a user")
    users_disable_parser.add_argument("name")
    users_enable_parser = users_commands.add_parser("enable", help="enable a disabled user")
    users_enable_parser.add_argument("name")
    users_unlock_parser = users_commands.add_parser(
        "unlock", help="end a lock-out after too many wrong passwords")
    users_unlock_parser.add_argument("name")
    users_password_parser = users_commands.add_parser(
        "password", help="set a user's password (ends their lock-out and sessions)")
    users_password_parser.add_argument("name")
    users_password_parser.add_argument("--password-stdin", action="store_true",
                                       help="read the password from the first line of stdin")
    console_parser = commands.add_parser("console", help="serve the caseworker console")
    console_parser.add_argument("--insecure-cookies", action="store_true",
                                help="cookies without Secure, for plain http on 127.0.0.1 only")
    serve_parser = commands.add_parser(
        "serve", help="start the Rasa server, the action server or the console (as scripts/start "
        "does); the API token is read from HELPLINE_RASA_TOKEN, never from the command line")
    serve_parser.add_argument("kind", choices=["rasa", "actions", "console"])
    serve_parser.add_argument("--insecure-cookies", action="store_true",
                              help="console: cookies without Secure, for http://127.0.0.1 only")
    serve_parser.add_argument("options", nargs=argparse.REMAINDER,
                              help="more of `rasa run`'s options (e.g. --debug --log-file FILE)")
    from bot.campaigns.cli import add_parser as add_campaign_parser

    add_campaign_parser(commands)  # helpline campaign check|preview|queue|send|status|remind
    from bot.figures import add_parser as add_figures_parser

    add_figures_parser(commands)  # helpline figures [cases|subscribers|messages]
    from bot.nlu_report import add_parser as add_nlu_parser

    add_nlu_parser(commands)  # helpline nlu report
    from bot.messages_sheet import add_parser as add_messages_parser

    add_messages_parser(commands)  # helpline messages sheet|check
    from bot.nginx import add_parser as add_nginx_parser

    add_nginx_parser(commands)  # helpline nginx-config
    args = parser.parse_args(argv)

    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"settings: {exc}", file=sys.stderr)
        return 2
    if args.command == "check":
        problems = check(settings)
        for problem in problems:
            print(problem, file=sys.stderr)
        if not problems:
            print("configuration ok")
            print(cover_note(settings))
        return 2 if problems else 0
    if args.command == "build-domain":
        from bot.catalog import CatalogError, load_catalog, write_domain_file

        try:
            changed = write_domain_file(load_catalog())
        except CatalogError as exc:
            print(f"messages: {exc}", file=sys.stderr)
            return 2
        print("bot/domain/responses.yml " + ("written" if changed else "already up to date"))
        return 0
    if args.command == "train":
        train(settings, force=args.force)
        return 0
    if args.command == "model-path":
        path = model_path(settings)
        if not path.exists():
            print(f"no model for the current inputs (expected {path}); run `helpline train`",
                  file=sys.stderr)
            return 2
        print(path)
        return 0
    if args.command == "chat":
        url = args.url or f"http://127.0.0.1:{settings.rasa_port}/webhooks/helpline/webhook"
        chat(url)
        return 0
    if args.command == "purge":
        conversations, cases, expired = purge(settings)
        print(f"deleted {conversations} idle conversation(s); closed {cases} idle hand-off "
              f"case(s); deleted {expired} subscriber(s) whose consent expired")
        return 0
    if args.command == "secrets":
        return secrets_command(settings, args.action)
    if args.command == "db":
        print(f"database schema at {db_upgrade(settings)}")
        return 0
    if args.command == "services" and args.services_command == "import":
        return services_import(settings, args.files, args.dry_run, args.quiet)
    if args.command == "services" and args.services_command == "sample":
        return services_sample(settings)
    if args.command == "services":
        return services_export(settings, args.file)
    if args.command == "places":
        return places_import(settings, args.file)
    if args.command == "telegram":
        return telegram_webhook(args.action, Path(args.credentials))
    if args.command == "users":
        from console.cli import users_command

        return users_command(settings, args.users_command, getattr(args, "name", None),
                             getattr(args, "supervisor", False),
                             getattr(args, "password_stdin", False),
                             getattr(args, "language", "en"))
    if args.command == "console":
        from console.cli import serve

        return serve(settings, insecure_cookies=args.insecure_cookies)
    if args.command == "serve":
        from bot.serve import serve_command

        return serve_command(settings, args.kind, args.options, args.insecure_cookies)
    if args.command == "campaign":
        from bot.campaigns.cli import campaign_command

        return campaign_command(settings, args)
    if args.command == "figures":
        from bot.figures import figures_command

        return figures_command(settings, args)
    if args.command == "nlu":
        from bot.nlu_report import nlu_command

        return nlu_command(settings, args)
    if args.command == "messages":
        from bot.messages_sheet import messages_command

        return messages_command(settings, args)
    if args.command == "nginx-config":
        from bot.nginx import nginx_command

        return nginx_command(settings, args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
