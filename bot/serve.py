"""``helpline serve rasa|actions|console``: the servers, started the one way scripts/start and
the tests start them.

Rasa's HTTP API token never goes on a command line: a process's arguments are readable by every
user of the machine (/proc/<pid>/cmdline, ``ps``), its environment only by the same user and root.
So the Rasa server is not started as ``rasa run --auth-token TOKEN``: this reads
HELPLINE_RASA_TOKEN from the environment and runs Rasa's own ``rasa run`` in this process, with
the token put into its parsed arguments (the ones rasa/cli/run.py hands to ``rasa.run``).
"""

from __future__ import annotations

import os
import sys
from typing import Optional, Sequence

from bot.settings import Settings

KINDS = ("rasa", "actions", "console")


def command(kind: str, *extra: str) -> list[str]:
    """The command line that starts server ``kind``: what scripts/start runs as
    ``helpline serve KIND``, for tests that must start the servers exactly as it does."""
    return [sys.executable, "-m", "bot.cli", "serve", kind, *extra]


def rasa_arguments(settings: Settings, model: str, extra: Sequence[str] = ()) -> list[str]:
    """``rasa run``'s arguments (no token among them): the model, HELPLINE_BIND and
    HELPLINE_RASA_PORT, the project's channels and endpoints, then ``extra`` (later wins)."""
    return ["run", "--model", model, "--interface", settings.bind, "--port",
            str(settings.rasa_port), "--credentials", "credentials.yml",
            "--endpoints", "endpoints.yml", *extra]


def action_arguments(settings: Settings, extra: Sequence[str] = ()) -> list[str]:
    """``rasa run actions``'s arguments: the project's actions on HELPLINE_ACTION_PORT."""
    return ["run", "actions", "--actions", "actions", "--port", str(settings.action_port), *extra]


def run_rasa(argv: list[str], auth_token: Optional[str] = None) -> None:
    """Runs Rasa's command line ``rasa ARGV`` in this process, as rasa/__main__.py does, with
    ``auth_token`` (if any) set in the parsed arguments: the API on, the token off argv."""
    import logging

    import rasa.utils.io
    from rasa.__main__ import create_argument_parser
    from rasa.plugin import plugin_manager
    import rasa.utils.tensorflow.environment as tensorflow_env
    from rasa.utils.common import configure_logging_and_warnings
    from rasa.utils.log_utils import configure_structlog

    arguments = create_argument_parser().parse_args(argv)
    if auth_token:
        arguments.enable_api = True
        arguments.auth_token = auth_token
    log_level = getattr(arguments, "loglevel", None)
    configure_logging_and_warnings(log_level, getattr(arguments, "logging_config_file", None),
                                   warn_only_once=True, filter_repeated_logs=True)
    tensorflow_env.setup_tf_environment()
    tensorflow_env.check_deterministic_ops()
    sys.path.insert(1, os.getcwd())  # the project's modules (channels, actions) are found
    rasa.utils.io.configure_colored_logging(log_level)
    plugin_manager().hook.configure_commandline(cmdline_arguments=arguments)
    configure_structlog(log_level)
    logging.getLogger(__name__).debug("starting rasa %s", argv[:2])
    arguments.func(arguments)


def serve_command(settings: Settings, kind: str, extra: Sequence[str],
                  insecure_cookies: bool = False) -> int:
    """``helpline serve KIND [rasa's options]``: starts one server in this process."""
    from bot.cli import model_path

    if kind == "rasa":
        model = model_path(settings)
        if not model.exists():
            print(f"serve: no model for the current inputs (expected {model}); run "
                  "`helpline train`", file=sys.stderr)
            return 2
        run_rasa(rasa_arguments(settings, str(model), extra), settings.rasa_token or None)
        return 0
    if kind == "actions":
        # Called by the Rasa server only: on 127.0.0.1 whatever HELPLINE_BIND says.
        os.environ["SANIC_HOST"] = "127.0.0.1"
        run_rasa(action_arguments(settings, extra))
        return 0
    from console.cli import serve

    if extra:
        print(f"serve: the console takes no other options ({' '.join(extra)})", file=sys.stderr)
        return 2
    return serve(settings, insecure_cookies=insecure_cookies)
