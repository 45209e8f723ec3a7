"""The public entry's nginx configuration, rendered from ``deploy/nginx/helpline.conf``.

The shipped file is a template with placeholders between ``@`` signs (``@SERVER_NAME@``); :func:`render_config` fills them
after checking each value (an address, a name or a path that could end a directive or open a
block is refused, so nothing given on the command line can add to the configuration).

Usage::

    helpline nginx-config --server-name helpline.example.org \\
        --console-server-name console.helpline.internal --console-listen 10.8.0.1:443 \\
        --console-allow 10.8.0.0/24 --output /etc/nginx/sites-available/helpline
"""

from __future__ import annotations

import argparse
import ipaddress
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from bot.settings import PROJECT_ROOT, Settings

TEMPLATE = PROJECT_ROOT / "deploy" / "nginx" / "helpline.conf"
_PLACEHOLDER = re.compile(r"@([A-Z_]+)@")
_SERVER_NAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9*](?:[A-Za-z0-9.\-]*[A-Za-z0-9])?$")
_PATH = re.compile(r"^/[A-Za-z0-9._/\-+@=,]*$")


class NginxConfigError(ValueError):
    """A value given for the nginx configuration cannot be used."""


@dataclass(frozen=True)
class NginxConfig:
    """What the template needs: where nginx listens, the certificates, the upstreams.

    ``listen``, ``redirect_listen`` and ``console_listen`` are nginx ``listen`` addresses
    (``443``, ``192.0.2.1:443``, ``[2001:db8::1]:443``); the console's certificate is the
    public one unless given; ``console_allow`` are the addresses or networks (CIDR) that may
    reach the console.
    """

    server_name: str = "helpline.example.org"
    listen: str = "443"
    redirect_listen: str = "80"
    certificate: str = ""
    certificate_key: str = ""
    console_server_name: str = "console.helpline.internal"
    console_listen: str = "127.0.0.1:8443"
    console_allow: Sequence[str] = field(default=("127.0.0.1",))
    console_certificate: str = ""
    console_certificate_key: str = ""
    rasa_port: int = 5005
    console_port: int = 5010
    log_dir: str = "/var/log/nginx"


def render_config(config: NginxConfig, template: Path = TEMPLATE) -> str:
    """The template with every placeholder filled.

    The certificate paths default to where certbot keeps them for the server name
    (``/etc/letsencrypt/live/NAME/fullchain.pem`` and ``privkey.pem``).

    Raises:
        NginxConfigError: naming the value that cannot be used.
    """
    certificate = config.certificate or f"/etc/letsencrypt/live/{config.server_name}/fullchain.pem"
    key = config.certificate_key or f"/etc/letsencrypt/live/{config.server_name}/privkey.pem"
    if not config.console_allow:
        raise NginxConfigError("--console-allow: give at least one address or network")
    values = {
        "SERVER_NAME": _server_name("--server-name", config.server_name),
        "PUBLIC_LISTEN": _listen("--listen", config.listen),
        "REDIRECT_LISTEN": _listen("--redirect-listen", config.redirect_listen),
        "CERTIFICATE": _path("--certificate", certificate),
        "CERTIFICATE_KEY": _path("--certificate-key", key),
        "CONSOLE_SERVER_NAME": _server_name("--console-server-name", config.console_server_name),
        "CONSOLE_LISTEN": _listen("--console-listen", config.console_listen),
        "CONSOLE_ALLOW": "\n".join(f"    allow {_network(a)};" for a in config.console_allow),
        "CONSOLE_CERTIFICATE": _path("--console-certificate",
                                     config.console_certificate or certificate),
        "CONSOLE_CERTIFICATE_KEY": _path("--console-certificate-key",
                                         config.console_certificate_key or key),
        "RASA": f"127.0.0.1:{_port('--rasa-port', config.rasa_port)}",
        "CONSOLE": f"127.0.0.1:{_port('--console-port', config.console_port)}",
        "LOG_DIR": _path("--log-dir", config.log_dir.rstrip("/") or "/"),
    }
    text = template.read_text(encoding="utf-8")
    unknown = sorted(set(_PLACEHOLDER.findall(text)) - set(values))
    if unknown:
        raise NginxConfigError(f"{template}: unknown placeholder(s) {', '.join(unknown)}")
    return _PLACEHOLDER.sub(lambda match: values[match.group(1)], text)


def _server_name(option: str, value: str) -> str:
    if not _SERVER_NAME.match(value):
        raise NginxConfigError(f"{option}: expected a host name such as helpline.example.org, "
                               f"got {value!r}")
    return value


def _listen(option: str, value: str) -> str:
    """``PORT``, ``IPv4:PORT`` or ``[IPv6]:PORT``."""
    host, _, port = value.rpartition(":")
    try:
        if host:
            ipaddress.ip_address(host[1:-1] if host.startswith("[") and host.endswith("]") else host)
            if ":" in host and not host.startswith("["):
                raise ValueError
        _port(option, int(port))
    except (ValueError, NginxConfigError):
        raise NginxConfigError(f"{option}: expected PORT, ADDRESS:PORT or [IPv6]:PORT, "
                               f"got {value!r}") from None
    return value


def _port(option: str, value: int) -> int:
    if not 1 <= int(value) <= 65535:
        raise NginxConfigError(f"{option}: not a port number: {value}")
    return int(value)


def _path(option: str, value: str) -> str:
    if not _PATH.match(value) or "/../" in value + "/":
        raise NginxConfigError(f"{option}: expected an absolute path without spaces, quotes, "
                               f"';', '{{' or '}}', got {value!r}")
    return value


def _network(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value, strict=False))
    except ValueError:
        raise NginxConfigError(f"--console-allow: expected an address or a network such as "
                               f"10.8.0.0/24, got {value!r}") from None


def add_parser(commands) -> None:
    """Adds ``nginx-config`` to the ``helpline`` sub-commands."""
    defaults = NginxConfig()
    parser = commands.add_parser(
        "nginx-config", help="write the nginx configuration of the public entry and the console")
    parser.add_argument("--server-name", default=defaults.server_name,
                        help="the public host name (default: %(default)s)")
    parser.add_argument("--listen", default=defaults.listen,
                        help="public https address: PORT or ADDRESS:PORT (default: %(default)s)")
    parser.add_argument("--redirect-listen", default=defaults.redirect_listen,
                        help="plain http address that redirects to https (default: %(default)s)")
    parser.add_argument("--certificate", default="",
                        help="certificate chain (default: certbot's fullchain.pem for the name)")
    parser.add_argument("--certificate-key", default="",
                        help="its private key (default: certbot's privkey.pem for the name)")
    parser.add_argument("--console-server-name", default=defaults.console_server_name,
                        help="the console's host name on the private network (default: "
                             "%(default)s)")
    parser.add_argument("--console-listen", default=defaults.console_listen,
                        help="the console's https address, on the private network or VPN "
                             "(default: %(default)s)")
    parser.add_argument("--console-allow", action="append",
                        help="an address or network that may reach the console; repeat for "
                             "more (default: 127.0.0.1 only)")
    parser.add_argument("--console-certificate", default="",
                        help="the console's certificate (default: the public one)")
    parser.add_argument("--console-certificate-key", default="",
                        help="its private key (default: the public one's)")
    parser.add_argument("--rasa-port", type=int,
                        help="the Rasa server's port on 127.0.0.1 (default: HELPLINE_RASA_PORT)")
    parser.add_argument("--console-port", type=int,
                        help="the console's port on 127.0.0.1 (default: HELPLINE_CONSOLE_PORT)")
    parser.add_argument("--log-dir", default=defaults.log_dir,
                        help="where nginx writes the helpline's logs (default: %(default)s)")
    parser.add_argument("--output", "-o", help="write to this file instead of the terminal")


def nginx_command(settings: Settings, args: argparse.Namespace) -> int:
    """``helpline nginx-config``: the Rasa and console ports come from the settings unless
    given."""
    config = NginxConfig(
        server_name=args.server_name, listen=args.listen, redirect_listen=args.redirect_listen,
        certificate=args.certificate, certificate_key=args.certificate_key,
        console_server_name=args.console_server_name, console_listen=args.console_listen,
        console_allow=tuple(args.console_allow or NginxConfig().console_allow),
        console_certificate=args.console_certificate,
        console_certificate_key=args.console_certificate_key,
        rasa_port=args.rasa_port or settings.rasa_port,
        console_port=args.console_port or settings.console_port, log_dir=args.log_dir)
    try:
        text = render_config(config)
    except NginxConfigError as exc:
        print(f"nginx-config: {exc}", file=sys.stderr)
        return 2
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"{args.output} written; check it with `nginx -t`, then `systemctl reload nginx`")
    else:
        sys.stdout.write(text)
    return 0
