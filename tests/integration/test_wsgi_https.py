"""WSGI applications see https and the real client, whoever terminates TLS.

Flask and Django (``wsgi_apps.py``) on the ``vestespy`` command, behind a real nginx that
terminates TLS and says so in ``X-Forwarded-Proto`` (trusted with ``--forwarded-allow-ips``,
configured as the deployment page shows), and with TLS terminated by VestesPy itself
(``--certfile``/``--keyfile``); httpbin over TLS on ``--wsgi``; Flask on ``vestespy.serve``
with ``certfile``. The client connects from 127.0.0.2 (loopback too) so that the client's
address differs from the proxy's. nginx is a Debian package: its tests skip when it is absent
(``.ci/run`` installs it).
"""

from __future__ import annotations

import contextlib
import http.client
import importlib.util
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from support.command import Command, poll
from support.proxies import Proxy

pytestmark = pytest.mark.slow
trustme = pytest.importorskip("trustme")

HERE = Path(__file__).resolve().parent
SRC = HERE.parents[1] / "src"
CLIENT_ADDRESS = "127.0.0.2"  # loopback too; not a trusted proxy
PUBLIC_HOST = "shop.example"  # the site's name, as a browser would send it to nginx
PARTNER_ORIGIN = "https://partner.example"  # in Django's CSRF_TRUSTED_ORIGINS
STARTUP = 120.0  # importing Django or Flask on a loaded two-core machine


@dataclass(frozen=True)
class Certificates:
    certfile: Path
    keyfile: Path
    client: ssl.SSLContext


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost", PUBLIC_HOST)
    directory = tmp_path_factory.mktemp("tls")
    certfile, keyfile = directory / "cert.pem", directory / "key.pem"
    certfile.write_bytes(b"".join(pem.bytes() for pem in cert.cert_chain_pems))
    cert.private_key_pem.write_to_path(keyfile)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return Certificates(certfile, keyfile, client)


def request(
    address: tuple[str, int],
    method: str,
    path: str,
    *,
    context: ssl.SSLContext | None,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """One request on a new connection from CLIENT_ADDRESS (https with ``context``)."""
    connection: http.client.HTTPConnection
    if context is None:
        connection = http.client.HTTPConnection(
            *address, timeout=30, source_address=(CLIENT_ADDRESS, 0)
        )
    else:
        connection = http.client.HTTPSConnection(
            *address, timeout=30, context=context, source_address=(CLIENT_ADDRESS, 0)
        )
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        data = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, data
    finally:
        connection.close()


def wait_answering(address: tuple[str, int], context: ssl.SSLContext | None, what: str) -> None:
    """Poll until the server answers anything (Django redirects plain http: not only 200)."""

    def answers() -> bool:
        try:
            request(address, "GET", "/", context=context)
        except (OSError, http.client.HTTPException):
            return False
        return True

    poll(answers, STARTUP, what)


@dataclass(frozen=True)
class Site:
    """An application as its clients reach it over https."""

    framework: str
    address: tuple[str, int]  # where clients connect: nginx, or VestesPy itself
    host: str  # the Host they send
    origin: str  # the site's origin, as a browser at it would send in Origin
    server_port: str  # the SERVER_PORT the application should see
    remote_port_known: bool  # whether the client's port reaches the application
    multiprocess: bool
    context: ssl.SSLContext

    def request(
        self,
        method: str,
        path: str,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        sent = {"Host": self.host, **(headers or {})}
        return request(self.address, method, path, context=self.context, headers=sent, body=body)


def start(directory: Path, app: str, args: list[str]) -> Command:
    """``vestespy --wsgi wsgi_apps:APP`` (or another module's app) in ``directory``."""
    shutil.copy(HERE / "wsgi_apps.py", directory / "wsgi_apps.py")
    return Command(["--wsgi", app, "--port", "0", "--no-access-log", *args], directory)


@pytest.fixture(
    scope="module",
    params=[
        ("flask", "nginx"),
        ("flask", "vestespy"),
        ("django", "nginx"),
        ("django", "vestespy"),
    ],
    ids=lambda p: f"{p[0]}-tls-by-{p[1]}",
)
def site(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    certificates: Certificates,
) -> Iterator[Site]:
    framework, terminator = request.param
    if terminator == "nginx" and Proxy.binary("nginx") is None:
        pytest.skip("nginx is not installed (apt-get install nginx; .ci/run does)")
    directory = tmp_path_factory.mktemp(f"{framework}-{terminator}")
    app = f"wsgi_apps:{framework}_app"
    if terminator == "nginx":
        # One worker: wsgi.multiprocess is False. nginx speaks plain HTTP to VestesPy.
        args = ["--workers", "1", "--forwarded-allow-ips", "127.0.0.1"]
    else:
        args = ["--workers", "2"]
        args += ["--certfile", str(certificates.certfile), "--keyfile", str(certificates.keyfile)]
    with start(directory, app, args) as command:
        host, port = command.address()
        proxy = None
        try:
            if terminator == "nginx":
                wait_answering((host, port), None, f"{framework} to answer")
                proxy = Proxy(
                    "nginx",
                    directory,
                    f"{host}:{port}",
                    tls=(certificates.certfile, certificates.keyfile),
                ).start()
                # nginx on 443 in production: `Host $host` drops the port, and so do browsers.
                served = Site(
                    framework,
                    proxy.address,
                    PUBLIC_HOST,
                    f"https://{PUBLIC_HOST}",
                    "443",
                    False,
                    False,
                    certificates.client,
                )
            else:
                served = Site(
                    framework,
                    (host, port),
                    f"127.0.0.1:{port}",
                    f"https://127.0.0.1:{port}",
                    str(port),
                    True,
                    True,
                    certificates.client,
                )
            wait_answering(served.address, served.context, f"{framework} over https")
            yield served
        finally:
            if proxy is not None:
                proxy.stop()
            status = command.stop()
            assert status == 0, command.stderr


def env_of(site: Site, host: str | None = None) -> dict[str, Any]:
    headers = {"Host": host} if host else None
    status, _, body = site.request("GET", "/env", headers)
    assert status == 200, body  # Django redirects what it takes for plain http
    report: dict[str, Any] = json.loads(body)
    return report


def test_the_application_sees_https_and_the_real_client(site: Site) -> None:
    env = env_of(site)
    assert env["wsgi.url_scheme"] == "https"
    assert env["HTTPS"] == "on"
    assert env["secure"] is True  # request.is_secure (Flask) / is_secure() (Django)
    assert env["url"] == f"{site.origin}/"  # url_for(_external=True) / build_absolute_uri
    assert env["REMOTE_ADDR"] == CLIENT_ADDRESS
    if site.remote_port_known:
        assert env["REMOTE_PORT"].isdigit()
    else:
        assert env["REMOTE_PORT"] == ""  # X-Forwarded-For carries no port
    assert (env["SERVER_NAME"], env["SERVER_PORT"]) == (site.host.split(":")[0], site.server_port)
    assert env["HTTP_HOST"] == site.host
    assert env["wsgi.multiprocess"] is site.multiprocess
    assert env["SERVER_SOFTWARE"].startswith("VestesPy/")


def test_a_host_without_a_port_is_port_443(site: Site) -> None:
    env = env_of(site, PUBLIC_HOST)
    assert (env["SERVER_NAME"], env["SERVER_PORT"]) == (PUBLIC_HOST, "443")
    assert env["url"] == f"https://{PUBLIC_HOST}/"


def test_redirects_say_https_and_can_be_followed(site: Site) -> None:
    status, headers, _ = site.request("GET", "/go")
    assert status == 302
    assert headers["location"] == f"{site.origin}/"
    # Followed as a browser would: to the same server, over https.
    status, _, body = site.request("GET", headers["location"].removeprefix(site.origin))
    assert (status, body) == (200, f"{site.framework} index".encode())


def test_head_on_a_streaming_route_has_no_content_length_0(site: Site) -> None:
    status, headers, body = site.request("GET", "/stream")
    assert (status, body) == (200, b"line 0\nline 1\nline 2\n")
    assert "content-length" not in headers  # streamed: chunked
    status, headers, body = site.request("HEAD", "/stream")
    assert (status, body) == (200, b"")
    # RFC 9110 9.3.2: the head GET would have; its length is unknown, not 0.
    assert "content-length" not in headers, headers


def test_django_csrf_protected_post_over_https(site: Site) -> None:
    if site.framework != "django":
        pytest.skip("Django's CSRF middleware")
    status, headers, token = site.request("GET", "/token")
    assert status == 200
    cookie = headers["set-cookie"].split(";")[0]
    assert cookie.startswith("csrftoken=")
    assert "Secure" in headers["set-cookie"]

    def post(**extra: str) -> tuple[int, bytes]:
        sent = {
            "Cookie": cookie,
            "X-CSRFToken": token.decode(),
            "Content-Type": "application/x-www-form-urlencoded",
            **extra,
        }
        status, _, body = site.request("POST", "/post", sent, b"item=hat")
        return status, body

    # The site's own origin passes without being listed: Django sees https, as the browser.
    assert post(Origin=site.origin) == (200, b"posted hat")
    assert post(Origin=PARTNER_ORIGIN) == (200, b"posted hat")
    assert post(Origin="https://evil.example")[0] == 403
    # Without Origin, Django checks the Referer of a secure request (only of a secure one).
    assert post(Referer=f"{site.origin}/form") == (200, b"posted hat")
    assert post(Referer="https://evil.example/form")[0] == 403


@pytest.fixture(scope="module")
def httpbin_site(
    tmp_path_factory: pytest.TempPathFactory, certificates: Certificates
) -> Iterator[tuple[str, int]]:
    if importlib.util.find_spec("httpbin") is None:
        pytest.skip("httpbin is not installed (pip install httpbin; the test extra has it)")
    directory = tmp_path_factory.mktemp("httpbin")
    args = ["--certfile", str(certificates.certfile), "--keyfile", str(certificates.keyfile)]
    with start(directory, "httpbin:app", args) as command:
        address = command.address()
        try:
            wait_answering(address, certificates.client, "httpbin over https")
            yield address
        finally:
            status = command.stop()
            assert status == 0, command.stderr


def test_httpbin_absolute_redirect_says_https(
    httpbin_site: tuple[str, int], certificates: Certificates
) -> None:
    context = certificates.client
    status, headers, _ = request(httpbin_site, "GET", "/absolute-redirect/1", context=context)
    location = f"https://127.0.0.1:{httpbin_site[1]}/get"
    assert (status, headers["location"]) == (302, location)
    status, _, body = request(httpbin_site, "GET", "/get", context=context)
    assert status == 200
    seen = json.loads(body)
    assert seen["url"] == location
    assert seen["origin"] == CLIENT_ADDRESS


SERVE_SCRIPT = """\
import logging
import sys

import vestespy
import wsgi_apps

logging.basicConfig(level=logging.INFO, format="%(name)s %(message)s", stream=sys.stderr)
vestespy.serve(
    wsgi_apps.flask_app, port=0, certfile=sys.argv[1], keyfile=sys.argv[2], max_workers=4
)
"""


@contextlib.contextmanager
def serve_process(directory: Path, certificates: Certificates) -> Iterator[tuple[str, int]]:
    """``vestespy.serve(flask_app, certfile=...)`` in a process of its own."""
    shutil.copy(HERE / "wsgi_apps.py", directory / "wsgi_apps.py")
    (directory / "serve_app.py").write_text(SERVE_SCRIPT)
    output = directory / "serve.log"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(SRC), str(directory)]))
    with open(output, "wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "serve_app.py",
                str(certificates.certfile),
                str(certificates.keyfile),
            ],
            cwd=directory,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:

        def port() -> int | None:
            match = re.search(r" on https?://127\.0\.0\.1:(\d+)", output.read_text())
            if match is None and process.poll() is not None:
                raise AssertionError(f"serve() exited:\n{output.read_text()}")
            return int(match.group(1)) if match else None

        yield "127.0.0.1", poll(port, STARTUP, "serve() to say where it serves")
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            assert process.wait(30) == 0, output.read_text()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(10)


def test_vestespy_serve_with_certfile(tmp_path: Path, certificates: Certificates) -> None:
    with serve_process(tmp_path, certificates) as address:
        wait_answering(address, certificates.client, "serve() over https")
        headers = {"Host": f"127.0.0.1:{address[1]}"}
        status, _, body = request(
            address, "GET", "/env", context=certificates.client, headers=headers
        )
        assert status == 200, body
        env = json.loads(body)
        assert env["wsgi.url_scheme"] == "https"
        assert env["url"] == f"https://127.0.0.1:{address[1]}/"
        assert env["REMOTE_ADDR"] == CLIENT_ADDRESS
        assert env["SERVER_PORT"] == str(address[1])
        assert env["wsgi.multiprocess"] is False  # one process
