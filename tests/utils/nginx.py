"""Running Debian's nginx as the current user with a temporary prefix: a self-signed
certificate, the main configuration (Debian's own /etc/nginx/nginx.conf with its paths moved
into the folder, the site file included where Debian includes sites-enabled/), and the
process."""

from __future__ import annotations

import datetime as dt
import getpass
import ipaddress
import os
import re
import shutil
import socket
import ssl
import subprocess
import time
from pathlib import Path
from typing import Optional

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
DEBIAN_MAIN = Path("/etc/nginx/nginx.conf")
# What a minimal main configuration holds when Debian's is not there.
FALLBACK_MAIN = """\
worker_processes 1;
events { worker_connections 256; }
http {
    include /etc/nginx/mime.types;
    access_log /var/log/nginx/access.log;
    include /etc/nginx/sites-enabled/*;
}
"""


def write_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost: (certificate, key) PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.timezone.utc)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "certificate.pem", folder / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def client_context(certificate: Path) -> ssl.SSLContext:
    """Trusts only the test's certificate."""
    return ssl.create_default_context(cafile=str(certificate))


def write_main_config(folder: Path, site: Path) -> Path:
    """Debian's nginx.conf with the pid file, the logs and the temporary files in ``folder``,
    and ``site`` included where Debian includes its sites (conf.d/ and sites-enabled/ left out)."""
    text = DEBIAN_MAIN.read_text(encoding="utf-8") if DEBIAN_MAIN.exists() else FALLBACK_MAIN
    text = re.sub(r"(?m)^\s*(user|pid|error_log|access_log)\s[^;]*;", "", text)
    text = re.sub(r"(?m)^\s*include\s+/etc/nginx/conf\.d/\*\.conf;", "", text)
    site_include = (f"include {site};\n"
                    + "".join(f"{kind}_temp_path {folder / kind};\n"
                              for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
                    + f"access_log {folder / 'default-access.log'};\n")
    text, found = re.subn(r"(?m)^\s*include\s+/etc/nginx/sites-enabled/\*;", site_include, text)
    assert found == 1, "the main configuration has no sites-enabled include"
    head = f"pid {folder / 'nginx.pid'};\nerror_log {folder / 'error.log'};\n"
    if os.geteuid() == 0:  # workers would otherwise run as nobody, who cannot read the folder
        head += f"user {getpass.getuser()};\n"
    main = folder / "nginx.conf"
    main.write_text(head + text, encoding="utf-8")
    return main


def check_config(main: Path, prefix: Path) -> subprocess.CompletedProcess:
    """``nginx -t``: its exit status and messages."""
    return subprocess.run([NGINX, "-t", "-q", "-p", str(prefix), "-c", str(main)],
                          capture_output=True, text=True, timeout=30)


def start_nginx(main: Path, prefix: Path, ports: list[int],
                seconds: float = 15) -> subprocess.Popen:
    """nginx in the foreground; returns once every port accepts connections."""
    log = open(prefix / "nginx.out", "wb")
    process = subprocess.Popen([NGINX, "-p", str(prefix), "-c", str(main), "-g", "daemon off;"],
                               stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + seconds
    for port in ports:
        while not _accepts(port):
            if process.poll() is not None or time.monotonic() > deadline:
                stop_nginx(process)
                raise RuntimeError(f"nginx did not start: {(prefix / 'nginx.out').read_text()}"
                                   f"{_read(prefix / 'error.log')}")
            time.sleep(0.1)
    return process


def stop_nginx(process: subprocess.Popen) -> None:
    process.terminate()  # SIGTERM: fast shutdown
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _accepts(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def installed() -> Optional[str]:
    """The nginx binary, or None when it is missing (scripts/nginx installs it)."""
    return NGINX if os.access(NGINX, os.X_OK) else None
