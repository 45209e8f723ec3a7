"""The production topology, shipped and tested (issue 17 §1).

    "`deploy/nginx/helpline.conf` (Debian's nginx; install it in the test set-up like
    Chromium): the only public entry. It forwards `/webhooks/sms/`, `/webhooks/telegram/`,
    `/webhooks/webchat/` (and the web chat page) to the Rasa server, and nothing else: Rasa's
    HTTP API, `/webhooks/helpline/` (REST) and the action server are never reachable through
    it. Body limit (64 KB), per-client request rate limits with 429, timeouts, TLS settings with
    placeholders for the certificate, HSTS, no server version. The console gets its own server
    block, meant for a private network or VPN, with its own stricter limits on sign-in."

    "Tests start real nginx in front of the real servers on loopback addresses (127.0.0.1 and
    127.0.0.2 as two different clients): API and REST paths unreachable (404/403), oversized
    bodies 413 before reaching Rasa, a flood from one client gets 429 while the other client's
    conversation goes on, the channels work through the proxy (the SMS signature checked
    against the public URL that nginx serves)."

The shipped template is filled by ``helpline nginx-config`` (``bot/nginx.py``) with loopback
addresses and a self-signed certificate made here, and included in Debian's own nginx.conf
(its paths moved to a temporary folder); nginx runs as the current user over TLS, in front of
a real Rasa server (API enabled with a token, the REST channel open: both must stay behind),
the action server and the console. Debian's nginx comes from scripts/nginx (scripts/test).
"""

from __future__ import annotations

import http.client
import json
import re
import secrets
import ssl
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pytest
import yaml
from twilio.request_validator import RequestValidator

from bot.nginx import NginxConfig, NginxConfigError, render_config
from bot.settings import PROJECT_ROOT
from tests.utils.assistant import free_port, quiet_env, start_rasa_server, stop, wait_for
from tests.utils.channel_clients import (
    SMS_SENDER, TELEGRAM_SECRET, telegram_env, telegram_text, wait_until, write_credentials)
from tests.utils.nginx import (
    check_config, client_context, installed, start_nginx, stop_nginx, write_certificate,
    write_main_config)

needs_nginx = pytest.mark.skipif(installed() is None,
                                 reason="nginx is missing: run scripts/nginx (scripts/test does)")
FLOODER = "127.0.0.2"  # a second client: 127.0.0.0/8 is all loopback on Linux
TOKEN = secrets.token_urlsafe(32)  # Rasa's API token
WEBCHAT_SESSION = "0123456789abcdef0123456789abcdef"


# -- rendering (fast) -----------------------------------------------------------------------------

def rendered(folder: Path, **values) -> str:
    certificate, key = write_certificate(folder)
    return render_config(NginxConfig(certificate=str(certificate), certificate_key=str(key),
                                     log_dir=str(folder), **values))


def test_every_placeholder_is_filled_and_certificates_default_to_certbot():
    text = render_config(NginxConfig(server_name="help.example.net", rasa_port=6005,
                                     console_port=6010, console_allow=("10.8.0.0/24", "::1")))
    assert not re.search(r"@[A-Z_]+@", text)
    assert "ssl_certificate /etc/letsencrypt/live/help.example.net/fullchain.pem;" in text
    assert "ssl_certificate_key /etc/letsencrypt/live/help.example.net/privkey.pem;" in text
    assert "server 127.0.0.1:6005;" in text and "server 127.0.0.1:6010;" in text
    assert "allow 10.8.0.0/24;" in text and "allow ::1/128;" in text


@pytest.mark.parametrize("values, option", [
    ({"server_name": "helpline.example.org; include /etc/passwd"}, "--server-name"),
    ({"server_name": ""}, "--server-name"),
    ({"listen": "443 ssl; return 200"}, "--listen"),
    ({"listen": "0.0.0.0:99999"}, "--listen"),
    ({"console_listen": "::1:443"}, "--console-listen"),
    ({"console_listen": "vpn:443"}, "--console-listen"),
    ({"certificate": "relative/cert.pem"}, "--certificate"),
    ({"certificate_key": "/etc/ssl/key.pem;}"}, "--certificate-key"),
    ({"console_certificate": "/etc/ssl/my cert.pem"}, "--console-certificate"),
    ({"console_allow": ("everyone",)}, "--console-allow"),
    ({"console_allow": ()}, "--console-allow"),
    ({"log_dir": "/var/log/../../etc"}, "--log-dir"),
    ({"rasa_port": 0}, "--rasa-port"),
])
def test_a_value_that_could_change_the_configuration_is_refused(values, option):
    with pytest.raises(NginxConfigError, match=option):
        render_config(NginxConfig(**values))


def test_an_unknown_placeholder_in_the_template_is_named(tmp_path):
    template = tmp_path / "helpline.conf"
    template.write_text("server { listen @PUBLIC_LISTEN@; root @WEB_ROOT@; }\n")
    with pytest.raises(NginxConfigError, match="WEB_ROOT"):
        render_config(NginxConfig(), template)


def test_the_command_writes_the_file_and_refuses_bad_values(tmp_path, capsys, monkeypatch):
    from bot.cli import main

    monkeypatch.setenv("HELPLINE_RASA_PORT", "6005")
    output = tmp_path / "helpline"
    assert main(["nginx-config", "--server-name", "help.example.net", "--console-allow",
                 "10.8.0.0/24", "--console-allow", "10.9.0.7", "-o", str(output)]) == 0
    text = output.read_text()
    assert "server 127.0.0.1:6005;" in text and "server_name help.example.net;" in text
    assert "allow 10.8.0.0/24;\n    allow 10.9.0.7/32;\n    deny all;" in text
    assert main(["nginx-config", "--rasa-port", "7005", "--console-port", "7010",
                 "-o", str(output)]) == 0
    text = output.read_text()
    assert "server 127.0.0.1:7005;" in text and "server 127.0.0.1:7010;" in text
    assert main(["nginx-config", "--listen", "443;"]) == 2
    assert "--listen: expected PORT" in capsys.readouterr().err
    assert main(["nginx-config", "--rasa-port", "70000"]) == 2
    assert "--rasa-port: not a port number" in capsys.readouterr().err


@needs_nginx
def test_the_shipped_file_is_valid_in_debians_nginx_conf(tmp_path):
    """``nginx -t`` on the shipped template as ``helpline nginx-config`` fills it (only the
    certificate, made here, and the log folder differ from the defaults), included where
    Debian includes its sites: the directives fit that context and none repeats Debian's."""
    site = tmp_path / "helpline.conf"
    site.write_text(rendered(tmp_path))
    checked = check_config(write_main_config(tmp_path, site), tmp_path)
    assert checked.returncode == 0, checked.stderr


@needs_nginx
def test_nginx_t_catches_a_missing_certificate(tmp_path):
    """The check above is real: the same file with a certificate path that does not exist."""
    site = tmp_path / "helpline.conf"
    site.write_text(render_config(NginxConfig(certificate=str(tmp_path / "none.pem"),
                                              log_dir=str(tmp_path))))
    checked = check_config(write_main_config(tmp_path, site), tmp_path)
    assert checked.returncode != 0 and "none.pem" in checked.stderr


# -- the real processes (slow) ---------------------------------------------------------------------

@dataclass
class Stack:
    """nginx (public entry, its http redirect, the console block) in front of the servers."""

    folder: Path
    public: int
    redirect: int
    console_entry: int
    rasa: int
    console: int
    action_url: str
    context: ssl.SSLContext
    twilio: object
    telegram: object

    @property
    def sms_url(self) -> str:
        """The public URL Twilio is given (and signs)."""
        return f"https://127.0.0.1:{self.public}/webhooks/sms/webhook"


def request(port: int, method: str, path: str, body: bytes = b"", headers: Optional[dict] = None,
            source: str = "127.0.0.1", context: Optional[ssl.SSLContext] = None,
            connection: Optional[http.client.HTTPConnection] = None
            ) -> tuple[int, http.client.HTTPMessage, bytes]:
    """One request from ``source``; over TLS when ``context`` is given."""
    own = connection is None
    if own:
        connection = (http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=60,
                                                  source_address=(source, 0))
                      if context else
                      http.client.HTTPConnection("127.0.0.1", port, timeout=60,
                                                 source_address=(source, 0)))
    try:
        connection.request(method, path, body=body or None, headers=headers or {})
        reply = connection.getresponse()
        return reply.status, reply.headers, reply.read()
    finally:
        if own:
            connection.close()


def helpline(env: dict, *args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "bot.cli", *args], cwd=PROJECT_ROOT,
                          env=quiet_env(**env), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, (args, done.stdout, done.stderr)


@pytest.fixture(scope="module")
def stack(model_path, action_server, tmp_path_factory):
    if installed() is None:
        pytest.skip("nginx is missing: run scripts/nginx (scripts/test does)")
    from tests.utils.fake_telegram import FakeTelegram
    from tests.utils.fake_twilio import FakeTwilio

    folder = tmp_path_factory.mktemp("nginx")
    public, redirect, console_entry, rasa, console = (free_port() for _ in range(5))
    certificate, key = write_certificate(folder)
    site = folder / "helpline.conf"
    site.write_text(render_config(NginxConfig(
        server_name="localhost", listen=f"127.0.0.1:{public}",
        redirect_listen=f"127.0.0.1:{redirect}", certificate=str(certificate),
        certificate_key=str(key), console_listen=f"127.0.0.1:{console_entry}",
        console_allow=("127.0.0.1",), rasa_port=rasa, console_port=console,
        log_dir=str(folder))))
    main = write_main_config(folder, site)

    twilio, telegram = FakeTwilio().start(), FakeTelegram().start()
    credentials = write_credentials(folder / "credentials.yml", rasa, twilio=twilio,
                                    telegram=telegram)
    channels = yaml.safe_load(credentials.read_text())
    channels["channels.sms.SmsInput"]["webhook_url"] = f"https://127.0.0.1:{public}/webhooks/sms/webhook"
    credentials.write_text(yaml.safe_dump(channels))
    env = {"HELPLINE_SECRETS_FILE": str(folder / "secrets.json"),
           "HELPLINE_DATABASE_URL": f"sqlite:///{folder / 'helpline.db'}",
           "HELPLINE_RASA_PORT": str(rasa), "HELPLINE_CONSOLE_PORT": str(console),
           "HELPLINE_BIND": "127.0.0.1", "HELPLINE_RASA_TOKEN": TOKEN}
    helpline(env, "secrets", "init")
    helpline(env, "db", "upgrade")
    processes = []
    try:
        processes.append(start_nginx(main, folder, [public, redirect, console_entry]))
        with open(folder / "console.log", "wb") as log:
            processes.append(subprocess.Popen([sys.executable, "-m", "bot.cli", "console"],
                                              cwd=PROJECT_ROOT, env=quiet_env(**env),
                                              stdout=log, stderr=subprocess.STDOUT))
        processes.append(start_rasa_server(
            model_path, rasa, action_server, folder / "rasa.log",
            ("--enable-api", "--auth-token", TOKEN), credentials=str(credentials),
            **env, **telegram_env(telegram)))
        wait_for(f"http://127.0.0.1:{console}/sign-in", processes[1], seconds=60)
        yield Stack(folder, public, redirect, console_entry, rasa, console, action_server,
                    client_context(certificate), twilio, telegram)
    finally:
        for process in reversed(processes):
            (stop_nginx if process is processes[0] else stop)(process)
        twilio.stop()
        telegram.stop()


def public(stack: Stack, method: str, path: str, body: bytes = b"", headers: Optional[dict] = None,
           source: str = "127.0.0.1"):
    return request(stack.public, method, path, body, headers, source, stack.context)


def webchat(stack: Stack, text: str, source: str = "127.0.0.1", session: str = WEBCHAT_SESSION):
    return public(stack, "POST", "/webhooks/webchat/webhook",
                  json.dumps({"sender": session, "message": text}).encode(),
                  {"Content-Type": "application/json"}, source)


API_AND_REST = [
    ("GET", "/"), ("GET", "/status"), ("GET", "/version"), ("GET", f"/status?token={TOKEN}"),
    ("GET", f"/version?token={TOKEN}"), ("PUT", f"/model?token={TOKEN}"),
    ("GET", f"/conversations/someone/tracker?token={TOKEN}"),
    ("POST", f"/conversations/someone/messages?token={TOKEN}"),
    ("POST", f"/conversations/someone/trigger_intent?token={TOKEN}"),
    ("GET", "/domain"), ("POST", "/model/parse"),
    ("GET", "/webhooks/helpline/"), ("POST", "/webhooks/helpline/webhook"),
    ("GET", "/webhooks/rest/"), ("POST", "/webhooks/rest/webhook"),
    # the action server's paths (it is on another port; nothing forwards there either)
    ("GET", "/health"), ("GET", "/actions"), ("POST", "/webhook"),
    # ways round the forwarded prefixes
    ("GET", f"/webhooks/webchat/../../version?token={TOKEN}"),
    ("POST", "/webhooks/sms/../helpline/webhook"),
    ("POST", "/webhooks/webchat/%2e%2e/helpline/webhook"),
    ("POST", "/webhooks/webchat/..%2fhelpline%2fwebhook"),
    ("GET", f"/webhooks/webchat/..%2f..%2fversion?token={TOKEN}"),
    ("GET", f"//version?token={TOKEN}"), ("GET", f"/webhooks/webchat//../../status?token={TOKEN}"),
    ("GET", "/webhooks/telegram/../../domain"),
]


@pytest.mark.model
@pytest.mark.slow
def test_the_api_the_rest_channel_and_the_actions_stay_behind(stack):
    # reachable directly, on 127.0.0.1 ...
    assert request(stack.rasa, "GET", f"/version?token={TOKEN}")[0] == 200
    assert request(stack.rasa, "GET", f"/status?token={TOKEN}")[0] == 200
    assert request(stack.rasa, "GET", "/webhooks/helpline/")[0] == 200
    action_port = int(stack.action_url.rsplit(":", 1)[1].split("/")[0])
    assert request(action_port, "GET", "/health")[0] == 200
    # ... never through the public entry
    for method, path in API_AND_REST:
        body = json.dumps({"sender": "someone", "message": "hello"}).encode() if method != "GET" else b""
        status, headers, content = public(stack, method, path, body,
                                          {"Content-Type": "application/json"})
        assert status in (400, 403, 404), (method, path, status, content[:200])
        assert b'"version"' not in content and b"Hello from Rasa" not in content, (path, content)
        assert headers["Server"] == "nginx"  # no version number
    # other methods on the forwarded paths
    assert public(stack, "PUT", "/webhooks/webchat/webhook", b"{}")[0] == 403
    assert public(stack, "DELETE", "/webhooks/sms/webhook")[0] == 403


@pytest.mark.model
@pytest.mark.slow
def test_the_web_chat_page_and_its_files_come_through_with_hsts(stack):
    from channels.webchat import STATIC_FILES

    for path in ["/webhooks/webchat/", "/webhooks/webchat/neutral",
                 *(f"/webhooks/webchat/{name}" for name in STATIC_FILES)]:
        status, headers, _ = public(stack, "GET", path)
        assert status == 200, path
        assert headers["Strict-Transport-Security"] == "max-age=63072000"
        assert headers["Server"] == "nginx"
        assert "no-store" in headers["Cache-Control"]  # the channel's own headers pass
        assert len(headers.get_all("X-Content-Type-Options")) == 1
    status, headers, _ = public(stack, "GET", "/webhooks/webchat")
    assert status == 301 and headers["Location"].endswith("/webhooks/webchat/")
    status, headers, _ = public(stack, "GET", "/status")
    assert status == 404 and headers["Strict-Transport-Security"]  # on every answer


@pytest.mark.model
@pytest.mark.slow
def test_plain_http_only_redirects_to_https(stack):
    for method, path in [("GET", "/webhooks/webchat/"), ("POST", "/webhooks/helpline/webhook"),
                         ("GET", f"/version?token={TOKEN}")]:
        status, headers, _ = request(stack.redirect, method, path, b"{}" if method == "POST" else b"")
        assert status == 301, path
        assert headers["Location"] == f"https://127.0.0.1{path}"  # the port: https's own
        assert headers["Server"] == "nginx"
    # certbot's renewal challenge is served from its folder (none here), not redirected
    assert request(stack.redirect, "GET", "/.well-known/acme-challenge/none")[0] == 404


@pytest.mark.model
@pytest.mark.slow
def test_an_oversized_body_is_refused_before_rasa(stack):
    """100 KB: 413 from nginx. Rasa's own answer would differ (its limit is far higher: the SMS
    channel says 400 for a long Body, the web chat 400 for a wrong session), and nginx's log
    shows no upstream status for those requests."""
    big = "x" * 100_000
    params = {"From": "+15550001111", "To": SMS_SENDER, "Body": big, "NumMedia": "0",
              "MessageSid": "SM" + "1" * 32}
    signature = RequestValidator(stack.twilio.auth_token).compute_signature(stack.sms_url, params)
    import urllib.parse

    status, headers, _ = public(stack, "POST", "/webhooks/sms/webhook",
                                urllib.parse.urlencode(params).encode(),
                                {"X-Twilio-Signature": signature,
                                 "Content-Type": "application/x-www-form-urlencoded"})
    assert status == 413 and headers["Server"] == "nginx"
    status, _, _ = webchat(stack, big)
    assert status == 413
    # the same without a length announced (chunked): nginx counts as it reads
    connection = http.client.HTTPSConnection("127.0.0.1", stack.public, context=stack.context,
                                             timeout=60)
    try:
        connection.request("POST", "/webhooks/webchat/webhook",
                            body=(b"x" * 8192 for _ in range(13)), encode_chunked=True,
                            headers={"Content-Type": "application/json",
                                     "Transfer-Encoding": "chunked"})
        assert connection.getresponse().status == 413
    finally:
        connection.close()
    # below the limit the same request reaches the channel, which answers for itself
    params["Body"] = "x" * 2000
    signature = RequestValidator(stack.twilio.auth_token).compute_signature(stack.sms_url, params)
    status, _, content = public(stack, "POST", "/webhooks/sms/webhook",
                                urllib.parse.urlencode(params).encode(),
                                {"X-Twilio-Signature": signature,
                                 "Content-Type": "application/x-www-form-urlencoded"})
    assert status == 400 and b"longer than 1600" in content
    time.sleep(0.2)  # the access log line is written after the answer
    refused = [line for line in (stack.folder / "helpline-access.log").read_text().splitlines()
               if " 413 " in line]
    assert len(refused) >= 2 and all(line.endswith("upstream=-") for line in refused), refused


@pytest.mark.model
@pytest.mark.slow
def test_a_flood_from_one_client_gets_429_while_another_conversation_goes_on(stack):
    statuses: list[int] = []
    done = threading.Event()

    def flood() -> None:
        connection = http.client.HTTPSConnection("127.0.0.1", stack.public, context=stack.context,
                                                 timeout=30, source_address=(FLOODER, 0))
        try:
            while not done.is_set() or len(statuses) < 300:
                try:
                    statuses.append(request(stack.public, "POST", "/webhooks/webchat/webhook",
                                            b"{}", {"Content-Type": "application/json"},
                                            connection=connection)[0])
                except (http.client.HTTPException, OSError):
                    connection.close()
                    connection = http.client.HTTPSConnection(
                        "127.0.0.1", stack.public, context=stack.context, timeout=30,
                        source_address=(FLOODER, 0))
        finally:
            connection.close()

    started = time.monotonic()
    with ThreadPoolExecutor(1) as pool:
        flooding = pool.submit(flood)
        answers = []
        try:
            wait_until(lambda: 429 in statuses, 20, "the first 429")
            for text in ["hello", "what is a fake job offer?", "menu"]:
                status, _, content = webchat(stack, text)
                answers.append((status, json.loads(content) if status == 200 else content))
        finally:
            done.set()
            flooding.result()
    seconds = time.monotonic() - started
    assert [status for status, _ in answers] == [200, 200, 200], answers
    assert all(messages and messages[-1]["text"] for _, messages in answers)
    passed = [s for s in statuses if s != 429]
    assert set(passed) <= {400}, set(passed)  # the channel's answer to an empty body
    # burst 40, then 10 a second: the rest was refused by nginx
    assert len(passed) <= 40 + 10 * seconds + 5, (len(passed), len(statuses), seconds)
    assert len(statuses) - len(passed) > 100


@pytest.mark.model
@pytest.mark.slow
def test_sms_through_the_proxy_is_checked_against_the_public_url(stack):
    import urllib.parse

    def sms(url: str, body: str) -> int:
        params = {"From": "+15550002222", "To": SMS_SENDER, "Body": body, "NumMedia": "0",
                  "MessageSid": f"SM{secrets.token_hex(16)}"}
        signature = RequestValidator(stack.twilio.auth_token).compute_signature(url, params)
        return public(stack, "POST", "/webhooks/sms/webhook",
                      urllib.parse.urlencode(params).encode(),
                      {"X-Twilio-Signature": signature,
                       "Content-Type": "application/x-www-form-urlencoded"})[0]

    before = len(stack.twilio.delivered())
    # signed over the Rasa server's own address: not what Twilio signs, refused
    assert sms(f"http://127.0.0.1:{stack.rasa}/webhooks/sms/webhook", "hello") == 403
    assert sms(f"http://127.0.0.1:{stack.public}/webhooks/sms/webhook", "hello") == 403
    # signed over the public https URL nginx serves: accepted and answered
    assert sms(stack.sms_url, "hello") == 200
    replies = wait_until(lambda: stack.twilio.delivered()[before:], 30, "the SMS reply")
    assert replies[0]["To"] == "+15550002222" and replies[0]["Body"]


@pytest.mark.model
@pytest.mark.slow
def test_telegram_through_the_proxy_needs_its_secret(stack):
    update = telegram_text(5550007777, "hello")
    body = json.dumps(update).encode()
    status, _, _ = public(stack, "POST", "/webhooks/telegram/webhook", body,
                          {"Content-Type": "application/json",
                           "X-Telegram-Bot-Api-Secret-Token": "wrong-secret_0123456789abcdef"})
    assert status == 403
    status, _, _ = public(stack, "POST", "/webhooks/telegram/webhook", body,
                          {"Content-Type": "application/json",
                           "X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET})
    assert status == 200
    sent = stack.telegram.wait_for("sendMessage", 1, seconds=30)
    assert str(sent[0]["chat_id"]) == "5550007777" and sent[0]["text"]


@pytest.mark.model
@pytest.mark.slow
def test_the_console_block_allows_its_network_only_and_limits_sign_in(stack):
    def console(method: str, path: str, source: str = "127.0.0.1"):
        return request(stack.console_entry, method, path, b"name=x&password=y" if method == "POST"
                       else b"", {"Content-Type": "application/x-www-form-urlencoded"},
                       source, stack.context)

    status, headers, content = console("GET", "/sign-in")
    assert status == 200 and b"<form" in content
    assert headers["Strict-Transport-Security"] and headers["Server"] == "nginx"
    # a client outside the allowed network (here only 127.0.0.1) never reaches the console
    assert console("GET", "/sign-in", FLOODER)[0] == 403
    assert console("POST", "/sign-in", FLOODER)[0] == 403
    # sign-in attempts: 1 + a burst of 5 reach the console (which refuses them: no CSRF
    # token), the next are 429 from nginx; the page itself is still served
    statuses = [console("POST", "/sign-in")[0] for _ in range(10)]
    assert 429 not in statuses[:6] and set(statuses[6:]) == {429}, statuses
    assert console("GET", "/sign-in")[0] == 200
    assert console("GET", "/")[0] in (200, 302, 303)  # the console's own redirect to sign-in


@pytest.mark.model
@pytest.mark.slow
def test_nginx_logs_no_address_no_query_and_no_token(stack):
    """Runs last in this file (pytest keeps the order), so every request above is in the logs
    too; these few make it stand alone."""
    for source in ("127.0.0.1", FLOODER):
        public(stack, "GET", f"/webhooks/webchat/?session={WEBCHAT_SESSION}", source=source)
        public(stack, "GET", f"/status?token={TOKEN}", source=source)
        request(stack.console_entry, "GET", f"/sign-in?next=/cases/1&token={TOKEN}",
                source=source, context=stack.context)
    request(stack.redirect, "GET", f"/version?token={TOKEN}")
    time.sleep(0.2)
    logs = {path.name: path.read_text() for path in stack.folder.glob("*.log")
            if path.name.startswith("helpline")}
    assert logs["helpline-access.log"].count("\n") >= 5
    assert logs["helpline-console-access.log"].count("\n") >= 2
    for name, text in logs.items():
        for secret in (FLOODER, "127.0.0.1", TOKEN, WEBCHAT_SESSION, "+1555", "?"):
            assert secret not in text, (name, secret)
