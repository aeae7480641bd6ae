"""TLS: HTTPS on every backend, certificates made at test time with trustme."""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest

import vestespy
from support import RawClient, Serve, serve
from support.timing import deadline_bound, latency_bound

trustme = pytest.importorskip("trustme")


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def server_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(context)
    return context


@pytest.fixture
def client_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    context.set_alpn_protocols(["h2", "http/1.1"])
    return context


#: For what is not backend-specific: the first backend, pool and inline.
FIRST_BACKEND_ONLY = pytest.mark.parametrize("backend", vestespy.available_backends()[:1])


def tls_client(address: tuple[str, int], context: ssl.SSLContext) -> RawClient:
    client = RawClient.__new__(RawClient)
    raw = socket.create_connection(address, timeout=10)
    client.sock = context.wrap_socket(raw, server_hostname="localhost")
    client.buffer = bytearray()
    client.eof = False
    return client


def describe(server: vestespy.Server, req: vestespy.Request, res: vestespy.Response) -> None:
    parts: list[bytes] = []
    req.on("data", lambda ev, req, res, chunk: parts.append(chunk))

    def onend(ev: object, r: object, s: object) -> None:
        if req.path == "/big":
            res.send_all(b"b" * (5 * 1024 * 1024))
        else:
            res.send_all(f"{req.scheme} {len(b''.join(parts))}")

    req.on("end", onend)


def test_https_on_every_backend(
    served: Serve, server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    with served(describe, ssl_context=server_context) as thread:
        assert thread.server.tls
        with tls_client(thread.address, client_context) as client:
            assert client.sock.selected_alpn_protocol() == "http/1.1"  # not h2
            assert client.request().body == b"https 0"
            # Keep-alive, a body of many records, and a response far past the buffers.
            assert client.request("POST", body=b"x" * 1_000_000).body == b"https 1000000"
            big = client.request("GET", "/big")
            assert len(big.body) == 5 * 1024 * 1024
            assert client.request().body == b"https 0"


def test_send_file_reads_the_file_over_tls(
    served: Serve,
    server_context: ssl.SSLContext,
    client_context: ssl.SSLContext,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The kernel cannot encrypt: the file is read in blocks, and may still be closed at once.
    data = os.urandom(3 * 1024 * 1024 + 7)
    path = tmp_path / "data.bin"
    path.write_bytes(data)
    sendfile_calls: list[int] = []
    monkeypatch.setattr(os, "sendfile", lambda *args: sendfile_calls.append(0) or 0)

    def listener(server: vestespy.Server, req: vestespy.Request, res: vestespy.Response) -> None:
        with path.open("rb") as file:
            file.seek(7)
            res.send_file(file)

    with (
        served(listener, ssl_context=server_context) as thread,
        tls_client(thread.address, client_context) as client,
    ):
        for _ in range(2):
            response = client.request()
            assert response.header("Content-Length") == str(len(data) - 7)
            assert response.body == data[7:]
    assert sendfile_calls == []


@FIRST_BACKEND_ONLY
def test_plain_http_scheme_is_http(served: Serve) -> None:
    with served(describe) as thread, RawClient(thread.address) as client:
        assert client.request().body == b"http 0"


def test_certfile_and_keyfile_options(
    ca: trustme.CA, client_context: ssl.SSLContext, tmp_path: Path
) -> None:
    cert = ca.issue_cert("localhost")
    certfile, keyfile = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.cert_chain_pems[0].write_to_path(certfile)
    for pem in cert.cert_chain_pems[1:]:
        pem.write_to_path(certfile, append=True)
    cert.private_key_pem.write_to_path(keyfile)
    with (
        serve(describe, certfile=str(certfile), keyfile=str(keyfile)) as thread,
        tls_client(thread.address, client_context) as client,
    ):
        assert client.request().body == b"https 0"
        assert client.sock.selected_alpn_protocol() == "http/1.1"
    with pytest.raises(ValueError, match="keyfile option needs certfile"):
        vestespy.Server(("127.0.0.1", 0), keyfile=str(keyfile))


def stalled_handshakes(address: tuple[str, int]) -> list[socket.socket]:
    """Two clients stalled in the handshake: one sends nothing, one half a ClientHello."""
    stalled = socket.create_connection(address, timeout=10)
    half_hello = socket.create_connection(address, timeout=10)
    half_hello.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")  # and no more
    return [stalled, half_hello]


def test_a_stalled_handshake_delays_nobody(
    served: Serve, server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    # header_timeout (30 s) closes the stalled clients long after the bound below: a server
    # that waited on them would miss it, even relaxed for a busy machine.
    with served(describe, ssl_context=server_context, header_timeout=30) as thread:
        stalled = stalled_handshakes(thread.address)
        try:
            started = time.monotonic()
            with tls_client(thread.address, client_context) as client:
                assert client.request().body == b"https 0"
            assert time.monotonic() - started < latency_bound(1.0)
        finally:
            for sock in stalled:
                sock.close()


def test_a_stalled_handshake_meets_header_timeout(
    served: Serve, server_context: ssl.SSLContext
) -> None:
    with served(describe, ssl_context=server_context, header_timeout=0.5) as thread:
        # The server's deadline runs from its accept, which cannot come before the connect
        # starts: the lower bound is measured from here, not from after the handshake bytes.
        opened = time.monotonic()
        stalled = stalled_handshakes(thread.address)
        try:
            # Both are closed at header_timeout (no response: not a byte of a request came).
            for sock in stalled:
                assert sock.recv(100) == b""
            closed = time.monotonic()
            assert 0.5 <= closed - opened < deadline_bound(0.5)
        finally:
            for sock in stalled:
                sock.close()


def test_a_plaintext_request_to_the_tls_port_gets_a_plaintext_400(
    served: Serve, server_context: ssl.SSLContext
) -> None:
    with (
        served(describe, ssl_context=server_context) as thread,
        RawClient(thread.address) as client,
    ):
        response = client.request()
        assert response.status == 400
        assert response.closes
        assert b"HTTPS" in response.body
        assert client.is_closed_by_server()


def test_the_plaintext_400_has_an_access_log_line(server_context: ssl.SSLContext) -> None:
    lines: list[tuple[int, str | None, int, str]] = []

    def log(req: vestespy.Request, status: int, sent: int, duration: float) -> None:
        lines.append((status, req.rejection, sent, req.method))

    with (
        serve(describe, ssl_context=server_context, access_log=log) as thread,
        RawClient(thread.address) as client,
    ):
        response = client.request()
        assert response.status == 400
        assert lines == [(400, "plain HTTP request on the TLS port", len(response.body), "-")]


def test_sni_callback_runs_as_the_ssl_module_provides(
    served: Serve, server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    names: list[str | None] = []

    def sni(sslobj: object, name: str | None, context: ssl.SSLContext) -> None:
        names.append(name)

    server_context.sni_callback = sni
    with (
        served(describe, ssl_context=server_context) as thread,
        tls_client(thread.address, client_context) as client,
    ):
        assert client.request().body == b"https 0"
    assert names == ["localhost"]


def test_a_failed_handshake_closes_only_that_connection(
    served: Serve, server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    untrusting = ssl.create_default_context()  # does not trust the test CA
    with served(describe, ssl_context=server_context) as thread:
        with pytest.raises(ssl.SSLCertVerificationError):
            tls_client(thread.address, untrusting)
        with socket.create_connection(thread.address, timeout=10) as garbage:
            garbage.sendall(b"\x16\x03\x01\x00\x05hello")  # a record that is no ClientHello
            assert garbage.recv(100)[:1] in (b"\x15", b"")  # an alert, or a close
        with tls_client(thread.address, client_context) as client:
            assert client.request().body == b"https 0"


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(path)
    return path


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
@FIRST_BACKEND_ONLY
def test_curl_over_https(served: Serve, server_context: ssl.SSLContext, ca_file: Path) -> None:
    with served(describe, ssl_context=server_context) as thread:
        port = thread.address[1]
        result = subprocess.run(
            [
                "curl",
                "-sS",
                "--cacert",
                str(ca_file),
                "--data",
                "abc",
                "--resolve",
                f"localhost:{port}:127.0.0.1",
                f"https://localhost:{port}/",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout == "https 3"
