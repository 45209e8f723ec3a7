"""The console's commands, called by ``bot.cli``: ``helpline users ...`` and ``helpline console``."""

from __future__ import annotations

import getpass
import logging
import sys
from typing import Optional, TextIO

from bot.settings import Settings


def _users(settings: Settings):
    from bot.storage import SchemaError, make_engine, require_current, session_factory
    from console.users import Users

    engine = make_engine(settings.database_url)
    try:
        require_current(engine)
    except SchemaError as exc:
        raise SystemExit(f"users: {exc}") from None
    return Users(session_factory(engine))


def read_password(stdin: bool, source: Optional[TextIO] = None) -> Optional[str]:
    """The new password: one line of ``source`` (default: stdin) with ``stdin``, else typed
    twice without echo (None: the two differ)."""
    if stdin:
        return (source or sys.stdin).readline().rstrip("\r\n")
    first = getpass.getpass("Password (at least 12 characters): ")
    second = getpass.getpass("The same password again: ")
    return first if first == second else None


def users_command(settings: Settings, action: str, name: Optional[str] = None,
                  supervisor: bool = False, password_stdin: bool = False,
                  language: str = "en") -> int:
    """``helpline users add|list|disable|enable|unlock|password``; prints what was done, never
    a password. ``unlock`` ends a lock-out and forgets the failed sign-ins in a row. ``password`` asks for the new one like ``add`` (typed twice, or one stdin line),
    ends the user's lock-out and signs them out everywhere."""
    from console.users import UserError, check_name, check_password

    try:
        users = _users(settings)
    except SystemExit as exc:
        print(exc, file=sys.stderr)
        return 2
    try:
        if action == "list":
            accounts = users.list()
            if not accounts:
                print("no users yet: `helpline users add NAME` creates one")
            for account in accounts:
                state = "disabled" if account.disabled else "active"
                if not account.disabled and account.locked_until is not None:
                    from console.users import utcnow

                    if account.locked_until > utcnow():
                        state = f"locked until {account.locked_until:%Y-%m-%d %H:%M} UTC"
                last = (f"{account.last_sign_in:%Y-%m-%d %H:%M} UTC" if account.last_sign_in
                        else "never")
                print(f"{account.name}\t{account.role}\t{account.language}\t{state}\t"
                      f"last sign-in: {last}")
            return 0
        check_name(name)
        if action == "disable":
            users.disable(name)
            print(f"{name}: disabled, signed out everywhere")
            return 0
        if action == "enable":
            if users.enable(name):
                print(f"{name}: enabled, may sign in again")
            else:
                print(f"{name}: was not disabled; any lock-out is lifted")
            return 0
        if action == "unlock":
            if users.unlock(name):
                print(f"{name}: unlocked, may sign in again")
            else:
                print(f"{name}: was not locked; the count of failed sign-ins starts afresh")
            return 0
        if action == "password":
            account = users.account(name)  # an unknown user is told before typing a password
        password = read_password(password_stdin)
        if password is None:
            print("users: the two passwords differ; nothing changed", file=sys.stderr)
            return 2
        check_password(password)
        if action == "password":
            users.set_password(name, password)
            print(f"{name}: password set, lock-out lifted, signed out everywhere"
                  + (" (the account is still disabled: `helpline users enable "
                     f"{name}`)" if account.disabled else ""))
            return 0
        account = users.add(name, password, supervisor=supervisor, language=language)
        print(f"{account.name}: created ({account.role}, names in {account.language})")
        return 0
    except UserError as exc:
        print(f"users: {exc}", file=sys.stderr)
        return 2


def _throttle(settings: Settings, key: bytes):
    """The per-client sign-in waits: in Redis when HELPLINE_REDIS_URL is set, so that every
    console process of the deployment (and one restarted) counts the same client; else in
    this process."""
    if not settings.redis_url:
        return None
    from console.throttle import RedisClientThrottle

    return lambda clock: RedisClientThrottle(settings.redis_url, key, clock=clock)


def serve(settings: Settings, insecure_cookies: bool = False) -> int:
    """``helpline console``: serves the console on HELPLINE_BIND:HELPLINE_CONSOLE_PORT."""
    from aiohttp import web

    from bot.deployment import DeploymentError, load_deployment
    from bot.privacy.keys import SecretsError, load_secrets
    from bot.privacy.logs import install_log_scrubber
    from bot.services.runtime import DirectoryCache
    from bot.storage import SchemaError, make_engine, require_current, session_factory
    from console.access_log import TemplateAccessLogger, logger as access_logger
    from console.app import Config, create_app
    from console.relay import RasaRelay

    logging.basicConfig(level=settings.log_level,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    install_log_scrubber()  # a caseworker's reply quoted in an error never reaches a log
    if insecure_cookies and settings.bind not in ("127.0.0.1", "localhost", "::1"):
        print("console: --insecure-cookies is only for http://127.0.0.1; behind a proxy the "
              "console must be reached over https", file=sys.stderr)
        return 2
    try:
        deployment = load_deployment(settings.deployment_file)
        secrets = load_secrets(settings.secrets_file, create=False)
        engine = make_engine(settings.database_url)
        require_current(engine)
    except (DeploymentError, SecretsError, SchemaError) as exc:
        print(f"console: {exc}", file=sys.stderr)
        return 2
    directory = DirectoryCache(settings.database_url, deployment.human_cover.timezone)
    config = Config(secure_cookies=not insecure_cookies, timezone=deployment.human_cover.timezone,
                    places=directory.get,
                    closed_case_days=deployment.retention.closed_case_days,
                    idle_case_hours=deployment.retention.conversation_idle_hours,
                    figures_min_cell=deployment.figures_min_cell,
                    languages=deployment.languages, deployment=deployment,
                    throttle=_throttle(settings, secrets.pseudonym_key))
    relay = RasaRelay(f"http://127.0.0.1:{settings.rasa_port}", settings.rasa_token)
    app = create_app(session_factory(engine), secrets.fernet(), relay, config)
    print(f"caseworker console: http://{settings.bind}:{settings.console_port}/", flush=True)
    # a short grace on stop: the event streams end at once (on_shutdown), a form post is quick
    web.run_app(app, host=settings.bind, port=settings.console_port, print=None,
                shutdown_timeout=5, access_log_class=TemplateAccessLogger,
                access_log=access_logger)
    return 0
