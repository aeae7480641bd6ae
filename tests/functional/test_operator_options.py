"""Operators' options over real sockets: limit_concurrency, default headers, client certificates."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

import vestespy
from support import RawClient, poll, serve

DEADLINE = 10.0


def _wait_for(condition: Callable[[], object], what: str) -> None:
    poll(lambda: bool(condition()), DEADLINE, what, step=0.01)


# -- limit_concurrency ---------------------------------------------------------------------


@pytest.mark.parametrize("workers", [4, 0], ids=["pool", "inline"])
def test_limit_concurrency_answers_503_past_the_limit(workers: int) -> None:
    """N=2: two slow requests in flight, the third gets 503 at once; later ones pass again."""
    release = threading.Event()
    started: list[str] = []
    held: list[vestespy.Response] = []

    def listener(server: vestespy.Server, req: vestespy.Request, res: vestespy.Response) -> None:
        started.append(req.path)
        if req.path == "/slow":
            if workers:
                assert release.wait(DEADLINE)
                res.send_all(b"slow done")
            else:  # inline: hold the response open without blocking the loop
                held.append(res)
        else:
            res.send_all(b"fast")

    with serve(listener, max_workers=workers, limit_concurrency=2) as thread:
        slow = [RawClient(thread.address) for _ in range(2)]
        for client in slow:
            client.send(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        _wait_for(lambda: len(started) == 2, "two slow requests in flight")
        with RawClient(thread.address) as third:
            response = third.request("GET", "/third")
            assert response.status == 503
            assert response.header("Retry-After") == "1"
            assert response.closes
            assert b"too many requests" in response.body
            assert third.is_closed_by_server()
        assert "/third" not in started  # never reached a listener
        release.set()
        for response_ in held:
            response_.send_all(b"slow done")
        for client in slow:
            assert client.read_response().body == b"slow done"
            client.close()
        # The slots are free again once the slow responses are over.
        with RawClient(thread.address) as later:
            _wait_for(
                lambda: (
                    thread.server._admission is not None and thread.server._admission.in_flight == 0
                ),
                "the slots to be released",
            )
            assert later.request("GET", "/later").status == 200


def test_limit_concurrency_counts_keep_alive_requests_one_at_a_time() -> None:
    """Sequential requests on one connection never count more than one at a time."""

    def listener(server: vestespy.Server, req: vestespy.Request, res: vestespy.Response) -> None:
        res.send_all(b"ok")

    with serve(listener, limit_concurrency=1) as thread, RawClient(thread.address) as client:
        for _ in range(5):
            response = client.request("GET", "/")
            assert response.status == 200
            _wait_for(
                lambda: (
                    thread.server._admission is not None and thread.server._admission.in_flight == 0
                ),
                "the slot to be released",
            )


@pytest.mark.parametrize("held_by", ["an end listener", "the access log hook"])
def test_limit_concurrency_frees_the_slot_before_the_response_leaves(held_by: str) -> None:
    """A client that has its whole response may send its next request at once: the request
    it answered no longer counts, however late its listener thread finishes.

    The window is forced open: after the response is ended (and, on a pool thread, sent
    directly), the listener thread blocks until the next request has been answered, in the
    request's "end" listener or in the access log hook (which runs after the response is
    queued, as in the command, where the access log is on). The slot used to be given back
    by "close", which comes after both: the next request got 503.
    """
    second_answered = threading.Event()

    def hold(*_: object) -> None:
        assert second_answered.wait(DEADLINE)

    def listener(server: vestespy.Server, req: vestespy.Request, res: vestespy.Response) -> None:
        if req.path == "/first" and held_by == "an end listener":
            req.on("end", hold)
        res.send_all(b"ok")

    def access_log(req: vestespy.Request, status: int, size: int, duration: float) -> None:
        if req.path == "/first" and held_by == "the access log hook":
            hold()

    with serve(listener, limit_concurrency=1, access_log=access_log) as thread:
        admission = thread.server._admission
        assert admission is not None
        with RawClient(thread.address) as first:
            assert first.request("GET", "/first").status == 200
            try:
                # Given back before the response left, or (when the listener answered before
                # the loop had parsed the request's end) by the loop, before it read more.
                with RawClient(thread.address) as second:
                    assert second.request("GET", "/second").status == 200
            finally:
                second_answered.set()
            assert first.request("GET", "/third").status == 200
        assert admission.refused == 0


def test_limit_concurrency_counts_a_request_answered_early_until_its_body_is_read() -> None:
    """A response sent before the request's body arrived: the request is in flight until
    the body is read (the client is still sending), then its slot is free at once."""

    def listener(server: vestespy.Server, req: vestespy.Request, res: vestespy.Response) -> None:
        res.send_all(b"early")

    with serve(listener, limit_concurrency=1) as thread:
        admission = thread.server._admission
        assert admission is not None
        with RawClient(thread.address) as first:
            first.send(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n")
            assert first.read_response().body == b"early"
            with RawClient(thread.address) as second:
                assert second.request("GET", "/second").status == 503
            first.send(b"hello")
            assert first.request("GET", "/next").status == 200  # read after the body
            with RawClient(thread.address) as third:
                assert third.request("GET", "/third").status == 200
        assert admission.refused == 1


def test_limit_concurrency_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="limit_concurrency"):
        vestespy.ServerOptions(limit_concurrency=0)


# -- default headers ------------------------------------------------------------------------


def _answer(server: vestespy.Server, req: vestespy.Request, res: vestespy.Response) -> None:
    if req.path == "/own":
        res.set_header("X-Frame-Options", "SAMEORIGIN")
    res.send_all(b"ok")


def test_response_headers_are_added_and_the_application_can_replace_them() -> None:
    with (
        serve(
            _answer,
            response_headers=("X-Frame-Options: DENY", "Cache-Control: no-cache, no-store"),
        ) as thread,
        RawClient(thread.address) as client,
    ):
        response = client.request("GET", "/")
        assert response.header_all("X-Frame-Options") == ["DENY"]
        assert response.header("Cache-Control") == "no-cache, no-store"
        assert response.header("Server") == "vestespy"
        assert response.header("Date") is not None
        own = client.request("GET", "/own")
        assert own.header_all("X-Frame-Options") == ["SAMEORIGIN"]


def test_server_and_date_headers_can_be_turned_off() -> None:
    with (
        serve(_answer, server_header=False, date_header=False) as thread,
        RawClient(thread.address) as client,
    ):
        response = client.request("GET", "/")
        assert response.status == 200
        assert response.header("Server") is None
        assert response.header("Date") is None


def test_by_default_server_and_date_are_sent() -> None:
    with serve(_answer) as thread, RawClient(thread.address) as client:
        response = client.request("GET", "/")
        assert response.header("Server") == "vestespy"
        assert response.header("Date") is not None
        assert thread.server._admission is None  # nothing asked for: no step at all


@pytest.mark.parametrize(
    "line", ["no colon", ": empty name", "Bad Name: x", "X-Ok: a\nb"], ids=repr
)
def test_bad_response_headers_are_refused(line: str) -> None:
    with pytest.raises(ValueError, match="header"):
        vestespy.ServerOptions(response_headers=(line,))


# -- client certificates ---------------------------------------------------------------------

trustme = pytest.importorskip("trustme")


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_files(ca: trustme.CA, tmp_path: Path) -> dict[str, str]:
    cert = ca.issue_cert("localhost", "127.0.0.1")
    certfile = tmp_path / "cert.pem"
    keyfile = tmp_path / "key.pem"
    cafile = tmp_path / "ca.pem"
    cert.cert_chain_pems[0].write_to_path(str(certfile))
    for blob in cert.cert_chain_pems[1:]:
        blob.write_to_path(str(certfile), append=True)
    cert.private_key_pem.write_to_path(str(keyfile))
    ca.cert_pem.write_to_path(str(cafile))
    return {"certfile": str(certfile), "keyfile": str(keyfile), "ssl_ca_certs": str(cafile)}


def _client(
    address: tuple[str, int], ca: trustme.CA, *, with_cert: bool
) -> tuple[socket.socket, ssl.SSLSocket]:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    if with_cert:
        ca.issue_cert("alice@example.com", common_name="alice").configure_cert(context)
    raw = socket.create_connection(address, timeout=DEADLINE)
    return raw, context.wrap_socket(raw, server_hostname="localhost")


def _subject(server: vestespy.Server, req: vestespy.Request, res: vestespy.Response) -> None:
    cert = req.peer_certificate
    if cert is None:
        res.send_all(b"no certificate")
        return
    names = dict(pair[0] for pair in cert["subject"])
    res.send_all(f"CN={names.get('commonName')}")


def _read_all(sock: ssl.SSLSocket) -> bytes:
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk


@pytest.mark.parametrize("workers", [4, 0], ids=["pool", "inline"])
def test_required_client_certificate(
    ca: trustme.CA, tls_files: dict[str, str], workers: int
) -> None:
    with serve(_subject, max_workers=workers, ssl_cert_reqs="required", **tls_files) as thread:
        raw, sock = _client(thread.address, ca, with_cert=True)
        with raw, sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert _read_all(sock).endswith(b"\r\n\r\nCN=alice")
        # Without a certificate: TLS 1.3 reports the refusal after the handshake, on the
        # first read; either way no response comes.
        with pytest.raises((ssl.SSLError, ConnectionError)):  # noqa: PT012
            raw, sock = _client(thread.address, ca, with_cert=False)
            with raw, sock:
                sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                assert _read_all(sock) == b""
                raise ConnectionError("closed without a response")


def test_optional_client_certificate(ca: trustme.CA, tls_files: dict[str, str]) -> None:
    with serve(_subject, ssl_cert_reqs="optional", **tls_files) as thread:
        for with_cert, expected in ((True, b"CN=alice"), (False, b"no certificate")):
            raw, sock = _client(thread.address, ca, with_cert=with_cert)
            with raw, sock:
                sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                assert _read_all(sock).endswith(b"\r\n\r\n" + expected)


def test_minimum_tls_version(ca: trustme.CA, tls_files: dict[str, str]) -> None:
    with serve(_subject, ssl_min_version="1.3", **tls_files) as thread:
        context = ssl.create_default_context()
        ca.configure_trust(context)
        context.maximum_version = ssl.TLSVersion.TLSv1_2
        with (
            socket.create_connection(thread.address, timeout=DEADLINE) as raw,
            pytest.raises(ssl.SSLError),
        ):
            context.wrap_socket(raw, server_hostname="localhost")


def test_client_certificates_need_a_ca_file(tls_files: dict[str, str]) -> None:
    del tls_files["ssl_ca_certs"]
    with pytest.raises(ValueError, match="ssl_ca_certs"):
        vestespy.Server(("127.0.0.1", 0), ssl_cert_reqs="required", **tls_files)  # type: ignore[arg-type]


def test_tls_options_need_certfile() -> None:
    with pytest.raises(ValueError, match="ssl_ciphers option needs certfile"):
        vestespy.Server(("127.0.0.1", 0), ssl_ciphers="HIGH")


def test_encrypted_key_with_its_password(ca: trustme.CA, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    cert = ca.issue_cert("localhost")
    key = serialization.load_pem_private_key(cert.private_key_pem.bytes(), password=None)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"s3cret"),
    )
    certfile, keyfile = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.cert_chain_pems[0].write_to_path(str(certfile))
    keyfile.write_bytes(encrypted)
    server = vestespy.Server(
        ("127.0.0.1", 0),
        certfile=str(certfile),
        keyfile=str(keyfile),
        ssl_keyfile_password="s3cret",
    )
    server.close()
    with pytest.raises(ssl.SSLError):
        vestespy.Server(
            ("127.0.0.1", 0),
            certfile=str(certfile),
            keyfile=str(keyfile),
            ssl_keyfile_password="wrong",
        )


def test_wsgi_environ_has_the_client_certificate(ca: trustme.CA, tls_files: dict[str, str]) -> None:
    from vestespy.wsgi import WSGIAdapter

    def app(environ: dict[str, object], start_response: object) -> list[bytes]:
        keys = ("SSL_CLIENT_VERIFY", "SSL_CLIENT_S_DN", "SSL_CLIENT_S_DN_CN")
        body = "|".join(str(environ.get(key)) for key in keys).encode()
        start_response("200 OK", [("Content-Length", str(len(body)))])  # type: ignore[operator]
        return [body]

    with serve(WSGIAdapter(app), ssl_cert_reqs="optional", **tls_files) as thread:
        raw, sock = _client(thread.address, ca, with_cert=True)
        with raw, sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            body = _read_all(sock).partition(b"\r\n\r\n")[2]
        verify, subject, common_name = body.decode().split("|")
        assert verify == "SUCCESS"
        assert common_name == "alice"
        assert subject.startswith("CN=alice")
        raw, sock = _client(thread.address, ca, with_cert=False)
        with raw, sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert _read_all(sock).endswith(b"\r\n\r\nNone|None|None")
