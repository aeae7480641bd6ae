"""Real reverse proxies (nginx, HAProxy) in front of the command, for the integration tests.

Each proxy runs in the foreground from a configuration written to the test's directory,
listening on 127.0.0.1 and forwarding to the command with keep-alive upstream connections.
nginx may terminate TLS (``tls=(certfile, keyfile)``), as the deployment page configures it,
and pass WebSockets through (``websocket=True``), as the WebSocket page configures it.
Tests skip (never install) when the binary is absent.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
from pathlib import Path

from .polling import poll

NGINX_CONF = """\
daemon off;
master_process on;
worker_processes 1;
{user}
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;
events {{ worker_connections 512; }}
http {{
    access_log off;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
{maps}    upstream vestespy {{
        server {upstream};
        keepalive 16;
    }}
    server {{
        listen 127.0.0.1:{port}{ssl};
{certificates}        client_max_body_size 100m;
        location / {{
            proxy_pass http://vestespy;
            proxy_http_version 1.1;
{connection}            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_request_buffering off;
            proxy_buffering off;
        }}
    }}
}}
"""

HAPROXY_CONF = """\
global
    maxconn 512
defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    option forwardfor
    retries 3
    retry-on conn-failure empty-response
frontend web
    bind 127.0.0.1:{port}
    default_backend vestespy
backend vestespy
    http-reuse safe
    server app {upstream}
"""


#: The Connection header nginx sends upstream: none (upstream keep-alive) by default.
NGINX_KEEP_ALIVE = """\
            proxy_set_header Connection "";
"""

#: With ``websocket=True``: Upgrade passed on, and ``Connection: upgrade`` with it, as the
#: WebSocket page (docs/websocket_nginx.rst) configures nginx; a request without Upgrade still
#: goes on a kept-alive upstream connection.
NGINX_WEBSOCKET_MAP = """\
    map $http_upgrade $connection_upgrade {
        default upgrade;
        ''      '';
    }
"""
NGINX_WEBSOCKET = """\
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Proxy:
    """nginx or HAProxy in the foreground, forwarding to ``upstream`` (``host:port``).

    ``tls``: nginx only, the certificate chain and key files it serves https with.
    ``websocket``: nginx only, pass WebSocket upgrades through (see NGINX_WEBSOCKET).
    """

    def __init__(
        self,
        kind: str,
        directory: Path,
        upstream: str,
        tls: tuple[Path, Path] | None = None,
        websocket: bool = False,
    ) -> None:
        assert tls is None or kind == "nginx", "TLS is configured for nginx only"
        assert not websocket or kind == "nginx", "WebSockets are configured for nginx only"
        self.websocket = websocket
        self.kind = kind
        self.directory = directory
        self.upstream = upstream
        self.tls = tls
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0

    @staticmethod
    def binary(kind: str) -> str | None:
        name = "nginx" if kind == "nginx" else "haproxy"
        return shutil.which(name) or next(
            (p for p in (f"/usr/sbin/{name}", f"/usr/local/sbin/{name}") if os.access(p, os.X_OK)),
            None,
        )

    def start(self) -> Proxy:
        binary = self.binary(self.kind)
        assert binary is not None
        for _ in range(5):  # the free port may be taken before the proxy binds it
            self.port = free_port()
            config = self.directory / f"{self.kind}.conf"
            if self.kind == "nginx":
                user = "user root;" if os.geteuid() == 0 else ""
                if not user:
                    user = f"# running as {pwd.getpwuid(os.geteuid()).pw_name}"
                ssl, certificates = "", ""
                if self.tls is not None:
                    ssl = " ssl"
                    certificates = (
                        f"        ssl_certificate {self.tls[0]};\n"
                        f"        ssl_certificate_key {self.tls[1]};\n"
                    )
                config.write_text(
                    NGINX_CONF.format(
                        dir=self.directory,
                        upstream=self.upstream,
                        port=self.port,
                        user=user,
                        ssl=ssl,
                        certificates=certificates,
                        maps=NGINX_WEBSOCKET_MAP if self.websocket else "",
                        connection=NGINX_WEBSOCKET if self.websocket else NGINX_KEEP_ALIVE,
                    )
                )
                args = [binary, "-p", str(self.directory), "-c", str(config)]
            else:
                config.write_text(HAPROXY_CONF.format(upstream=self.upstream, port=self.port))
                args = [binary, "-db", "-f", str(config)]
            log = open(self.directory / f"{self.kind}.log", "wb")  # noqa: SIM115
            self.process = subprocess.Popen(args, stdout=log, stderr=log, cwd=self.directory)
            log.close()
            if poll(self._listening_or_dead, 20, f"{self.kind} to listen") == "listening":
                return self
        raise AssertionError(f"{self.kind} did not start:\n{self.log}")

    def _listening_or_dead(self) -> str | None:
        assert self.process is not None
        if self.process.poll() is not None:
            return "dead"
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
        except OSError:
            return None
        return "listening"

    @property
    def log(self) -> str:
        path = self.directory / f"{self.kind}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        error_log = self.directory / "nginx-error.log"
        if error_log.exists():
            text += error_log.read_text(errors="replace")
        return text

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
