"""Real WebSocket clients over real sockets: ``websockets``, Node's ``ws`` and headless Chromium.

An echo server (``"websocket"`` listener: every message sent back as it came) runs in this
process; each client runs the exchange of ``support.wsclients`` against it (messages of 0,
125, 126, 65535 and 65536 bytes as binary and text, 10,000 messages in order, a 16 MiB one with
``websocket_max_message_size`` raised), over ``ws://`` and ``wss://`` (``certfile``/``keyfile``,
trustme certificates) and through nginx as a WebSocket proxy. Chromium opens the WebSocket
from a page the same server serves, and POSTs its report back to it.

Compression: each client offers permessage-deflate. The server's ``ws.extensions`` must name
it, and a :class:`~support.wstap.Tap` between client and server must see compressed frames
(RSV1) whose payloads are far smaller than the messages (over TLS, where the tap sees
ciphertext, the bytes on the wire are compared instead).

Node (with its ws package, ``npm ci --prefix tests/integration/websocket_clients``), Chromium
and nginx are installed by ``.ci/run``; their tests skip and say so where one is absent.
"""

from __future__ import annotations

import contextlib
import json
import ssl
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import vestespy
from support import poll
from support.proxies import Proxy
from support.server import ServerThread, serve
from support.wsclients import (
    CLIENTS_DIR,
    chromium,
    message_bytes,
    node_exchange,
    python_exchange,
)
from support.wstap import Tap

pytestmark = pytest.mark.slow
trustme = pytest.importorskip("trustme")

MIB = 1 << 20
CLIENT_ADDRESS = "127.0.0.2"  # loopback too; not the trusted proxy
#: Around the 7-bit, 16-bit and 64-bit payload length encodings (RFC 6455 5.2), and nothing.
SIZES = [0, 125, 126, 65535, 65536]
COUNT = 10_000
#: Over TLS: each small message is a TLS record of its own (about 30 bytes of overhead), so
#: fewer of them, for the bytes on the wire to show the compression of the others.
TLS_COUNT = 1_000
#: A compressible message within the default 1 MiB limit: most of the exchange's bytes, so
#: that the compression ratio shows whatever the small messages cost.
HALF_MIB = MIB // 2
BIG = 16 * MIB
#: What the server's limit is raised to for the 16 MiB message.
BIG_LIMIT = BIG + MIB
#: How much smaller than the messages the compressed frames (or the TLS bytes) must be.
COMPRESSED_RATIO = 0.25
#: The subprotocols the echo server speaks.
SUBPROTOCOLS = ("echo.v2", "echo.v1")
CLIENT_TIMEOUT = 180.0  # a 16 MiB message through pure-Python masking on a loaded machine


@dataclass
class EchoSite:
    """The server's side: echoes messages, serves the page, keeps what the tests check."""

    #: Each WebSocket's negotiated extensions, as the server saw them once it accepted.
    extensions: list[list[str]] = field(default_factory=list)
    #: The scheme of each handshake's request (https behind a trusted nginx that did TLS).
    schemes: list[str] = field(default_factory=list)
    #: The client address of each handshake's request (the browser's behind a trusted nginx).
    clients: list[str] = field(default_factory=list)
    #: The (code, reason) of each WebSocket's "close" event.
    closes: list[tuple[int, str]] = field(default_factory=list)
    #: The reports the page POSTed, by report path.
    reports: dict[str, dict[str, Any]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def install(self, server: vestespy.Server) -> None:
        server.on("websocket", self.on_websocket)
        server.on("request", self.on_request)

    def on_websocket(
        self, server: vestespy.Server, ws: vestespy.WebSocket, req: vestespy.Request
    ) -> None:
        # The first subprotocol of ours the client offers (none if it offers none of them).
        chosen = next((p for p in ws.subprotocols if p in SUBPROTOCOLS), None)
        ws.accept(chosen)  # extensions are negotiated by the 101, sent here, not on return
        with self.lock:
            self.extensions.append(list(ws.extensions))
            self.schemes.append(req.scheme)
            address = req.client_address
            self.clients.append(str(address[0] if isinstance(address, tuple) else address))
        ws.on("message", lambda ws, data: ws.send(data))
        ws.on("close", self.on_close)

    def on_close(self, ws: vestespy.WebSocket, code: int, reason: str) -> None:
        with self.lock:
            self.closes.append((code, reason))

    def on_request(
        self, server: vestespy.Server, req: vestespy.Request, res: vestespy.Response
    ) -> None:
        if req.method == "GET" and req.path in ("/page.html", "/exchange.mjs"):
            name = req.path.lstrip("/")
            kind = "text/html" if name.endswith(".html") else "text/javascript"
            res.set_header("Content-Type", f"{kind}; charset=utf-8")
            res.send_all((CLIENTS_DIR / name).read_bytes())
        elif req.method == "POST" and req.path.startswith("/report/"):
            body = bytearray()
            req.on("data", lambda req, _, res, chunk: body.extend(chunk))
            req.on("end", lambda req, _, res: self.on_report(req.path, bytes(body), res))
        else:
            res.status = 404
            res.send_all()

    def on_report(self, path: str, body: bytes, res: vestespy.Response) -> None:
        with self.lock:
            self.reports[path] = json.loads(body)
        res.status = 204
        res.send_all()

    def report(self, path: str, timeout: float = CLIENT_TIMEOUT) -> dict[str, Any]:
        """Wait for the page's report to ``path``."""
        return poll(lambda: self.reports.get(path), timeout, f"the page's report to {path}")


@dataclass(frozen=True)
class Certificates:
    certfile: Path
    keyfile: Path
    ca_file: Path
    client: ssl.SSLContext


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    directory = tmp_path_factory.mktemp("tls")
    certfile, keyfile, ca_file = (directory / n for n in ("cert.pem", "key.pem", "ca.pem"))
    certfile.write_bytes(b"".join(pem.bytes() for pem in cert.cert_chain_pems))
    cert.private_key_pem.write_to_path(keyfile)
    ca.cert_pem.write_to_path(ca_file)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return Certificates(certfile, keyfile, ca_file, client)


@contextlib.contextmanager
def echo_server(
    workers: int = 4, tls: Certificates | None = None, **options: Any
) -> Iterator[tuple[ServerThread, EchoSite]]:
    site = EchoSite()
    if tls is not None:
        options.update(certfile=str(tls.certfile), keyfile=str(tls.keyfile))
    with serve(None, max_workers=workers, **options) as thread:
        site.install(thread.server)
        yield thread, site


def url(scheme: str, address: tuple[str, int], path: str = "/echo") -> str:
    return f"{scheme}://{address[0]}:{address[1]}{path}"


def check_report(report: dict[str, Any], *, sizes: list[int], count: int, big: int) -> None:
    """The client saw every echo right, in order, and a clean close with 1000."""
    assert report["errors"] == []
    assert report["sized"] == 2 * len(sizes)
    assert report["ordered"] == count
    assert report["big"] == bool(big)
    assert report["close"]["code"] == 1000
    assert report["close"]["wasClean"]


def check_server(site: EchoSite, websockets: int = 1) -> None:
    """The server negotiated permessage-deflate and saw each close as 1000 "done"."""
    poll(lambda: len(site.closes) >= websockets, 30, "the server's close events")
    assert len(site.extensions) == websockets
    for extensions in site.extensions:
        assert "permessage-deflate" in extensions
    assert site.closes == [(1000, "done")] * websockets


def check_compressed(tap: Tap, sent: int) -> None:
    """Compressed frames both ways, their payloads far smaller than the messages."""
    client, server = tap.snapshot()
    assert client.upgrades == server.upgrades == 1
    for direction in (client, server):
        assert direction.compressed_frames > 0
        assert direction.data_payload_bytes < sent * COMPRESSED_RATIO, (direction, sent)


def check_compressed_wire(tap: Tap, sent: int) -> None:
    """Over TLS: far fewer bytes on the wire, each way, than the messages."""
    client, server = tap.snapshot()
    for direction in (client, server):
        assert 0 < direction.wire_bytes < sent * COMPRESSED_RATIO, (direction, sent)


# --- Python's websockets -------------------------------------------------------------------


def test_websockets_client(workers: int) -> None:
    sent = message_bytes(SIZES, COUNT, HALF_MIB)
    with echo_server(workers) as (server, site), Tap(server.address) as tap:
        report = python_exchange(url("ws", tap.address), sizes=SIZES, count=COUNT, big=HALF_MIB)
        check_report(report, sizes=SIZES, count=COUNT, big=HALF_MIB)
        assert report["extensions"] == "permessage-deflate"
        check_server(site)
        check_compressed(tap, sent)


def test_websockets_client_16_mib_message() -> None:
    with echo_server(websocket_max_message_size=BIG_LIMIT) as (server, site):
        report = python_exchange(url("ws", server.address), big=BIG, timeout=CLIENT_TIMEOUT)
        check_report(report, sizes=[], count=0, big=BIG)
        check_server(site)


def test_websockets_client_over_tls(certificates: Certificates) -> None:
    sent = message_bytes(SIZES, TLS_COUNT, HALF_MIB)
    with echo_server(tls=certificates) as (server, site), Tap(server.address, parse=False) as tap:
        report = python_exchange(
            url("wss", tap.address),
            sizes=SIZES,
            count=TLS_COUNT,
            big=HALF_MIB,
            context=certificates.client,
        )
        check_report(report, sizes=SIZES, count=TLS_COUNT, big=HALF_MIB)
        check_server(site)
        check_compressed_wire(tap, sent)


def test_websockets_client_without_compression() -> None:
    # The tap's control: a client that offers no extension gets none and no frame has RSV1.
    with echo_server() as (server, site), Tap(server.address) as tap:
        report = python_exchange(url("ws", tap.address), sizes=SIZES, compression=None)
        check_report(report, sizes=SIZES, count=0, big=0)
        poll(lambda: site.closes, 30, "the server's close event")
        assert site.extensions == [[]]
        client, server_side = tap.snapshot()
        assert client.compressed_frames == server_side.compressed_frames == 0
        assert client.data_payload_bytes == server_side.data_payload_bytes == 2 * sum(SIZES)


def test_compression_turned_off() -> None:
    # websocket_compression=False: the offer is declined, and nothing is compressed.
    with echo_server(websocket_compression=False) as (server, site), Tap(server.address) as tap:
        report = python_exchange(url("ws", tap.address), sizes=SIZES)
        check_report(report, sizes=SIZES, count=0, big=0)
        assert report["extensions"] == ""
        poll(lambda: site.closes, 30, "the server's close event")
        assert site.extensions == [[]]
        client, server_side = tap.snapshot()
        assert client.compressed_frames == server_side.compressed_frames == 0


@pytest.mark.parametrize("client", ["websockets", "node-ws"])
def test_subprotocol_chosen(client: str, workers: int) -> None:
    exchange = python_exchange if client == "websockets" else node_exchange
    with echo_server(workers) as (server, _):
        report = exchange(url("ws", server.address), sizes=[10], protocols=["chat", "echo.v1"])
        check_report(report, sizes=[10], count=0, big=0)
        assert report["protocol"] == "echo.v1"


# --- Node's ws -----------------------------------------------------------------------------


def test_node_ws_client(workers: int) -> None:
    # On the pool and inline (max_workers=0): the same echo, listeners on the loop thread.
    sent = message_bytes(SIZES, COUNT, BIG)
    with (
        echo_server(workers, websocket_max_message_size=BIG_LIMIT) as (server, site),
        Tap(server.address) as tap,
    ):
        report = node_exchange(
            url("ws", tap.address), sizes=SIZES, count=COUNT, big=BIG, timeout=CLIENT_TIMEOUT
        )
        check_report(report, sizes=SIZES, count=COUNT, big=BIG)
        assert report["extensions"].startswith("permessage-deflate")
        check_server(site)
        check_compressed(tap, sent)


def test_node_ws_client_over_tls(certificates: Certificates) -> None:
    sent = message_bytes(SIZES, TLS_COUNT, HALF_MIB)
    with echo_server(tls=certificates) as (server, site), Tap(server.address, parse=False) as tap:
        report = node_exchange(
            url("wss", tap.address),
            sizes=SIZES,
            count=TLS_COUNT,
            big=HALF_MIB,
            ca_file=certificates.ca_file,
        )
        check_report(report, sizes=SIZES, count=TLS_COUNT, big=HALF_MIB)
        check_server(site)
        check_compressed_wire(tap, sent)


# --- Chromium ------------------------------------------------------------------------------


def page_url(scheme: str, address: tuple[str, int], report: str, **config: Any) -> str:
    config.update(path="/echo", report=report)
    query = urllib.parse.urlencode({"config": json.dumps(config)})
    return f"{url(scheme, address, '/page.html')}?{query}"


def test_chromium_ws(tmp_path: Path) -> None:
    sent = message_bytes(SIZES, COUNT, BIG)
    with (
        echo_server(websocket_max_message_size=BIG_LIMIT) as (server, site),
        Tap(server.address) as tap,
    ):
        page = page_url(
            "http",
            tap.address,
            "/report/ws",
            sizes=SIZES,
            count=COUNT,
            big=BIG,
            protocols=["echo.v2"],
        )
        with chromium(page, tmp_path):
            report = site.report("/report/ws")
        check_report(report, sizes=SIZES, count=COUNT, big=BIG)
        assert report["extensions"].startswith("permessage-deflate")
        assert report["protocol"] == "echo.v2"
        check_server(site)
        check_compressed(tap, sent)


def test_chromium_wss(tmp_path: Path, certificates: Certificates) -> None:
    sent = message_bytes(SIZES, TLS_COUNT, HALF_MIB)
    with echo_server(tls=certificates) as (server, site), Tap(server.address, parse=False) as tap:
        page = page_url(
            "https", tap.address, "/report/wss", sizes=SIZES, count=TLS_COUNT, big=HALF_MIB
        )
        with chromium(page, tmp_path):
            report = site.report("/report/wss")
        check_report(report, sizes=SIZES, count=TLS_COUNT, big=HALF_MIB)
        assert report["extensions"].startswith("permessage-deflate")
        check_server(site)
        check_compressed_wire(tap, sent)


# --- through nginx -------------------------------------------------------------------------


@contextlib.contextmanager
def behind_nginx(
    directory: Path, tls: Certificates | None = None, **options: Any
) -> Iterator[tuple[Proxy, EchoSite]]:
    """The echo server behind nginx configured for WebSockets (terminating TLS with ``tls``),
    trusting nginx's X-Forwarded-* fields as the WebSocket page says to."""
    if Proxy.binary("nginx") is None:
        pytest.skip("nginx is not installed (apt-get install nginx; .ci/run does)")
    with echo_server(trusted_proxies=("127.0.0.1",), **options) as (server, site):
        host, port = server.address
        certs = None if tls is None else (tls.certfile, tls.keyfile)
        proxy = Proxy("nginx", directory, f"{host}:{port}", tls=certs, websocket=True).start()
        try:
            yield proxy, site
        finally:
            proxy.stop()


Exchange = Callable[..., dict[str, Any]]


def run_node(address_url: str, certificates: Certificates | None, **kwargs: Any) -> dict[str, Any]:
    ca_file = None if certificates is None else certificates.ca_file
    return node_exchange(address_url, ca_file=ca_file, **kwargs)


def run_python(
    address_url: str, certificates: Certificates | None, **kwargs: Any
) -> dict[str, Any]:
    context = None if certificates is None else certificates.client
    return python_exchange(address_url, context=context, **kwargs)


@pytest.mark.parametrize("client", [run_python, run_node], ids=["websockets", "node-ws"])
@pytest.mark.parametrize("scheme", ["ws", "wss"])
def test_through_nginx(
    client: Exchange, scheme: str, tmp_path: Path, certificates: Certificates
) -> None:
    tls = certificates if scheme == "wss" else None
    with behind_nginx(tmp_path, tls) as (proxy, site):
        report = client(url(scheme, proxy.address), tls, sizes=SIZES, count=COUNT, big=HALF_MIB)
        check_report(report, sizes=SIZES, count=COUNT, big=HALF_MIB)
        # nginx passes Sec-WebSocket-Extensions through: compression is end to end.
        assert report["extensions"].startswith("permessage-deflate")
        check_server(site)
        assert site.schemes == ["https" if scheme == "wss" else "http"]


def test_origin_address_and_scheme_through_nginx(
    tmp_path: Path, certificates: Certificates
) -> None:
    client = pytest.importorskip("websockets.sync.client")
    exceptions = pytest.importorskip("websockets.exceptions")
    origin = "https://example.com"
    with behind_nginx(tmp_path, certificates, websocket_allowed_origins=(origin,)) as (
        proxy,
        site,
    ):
        address = url("wss", proxy.address)
        # From 127.0.0.2 (loopback too), so that the client's address is not nginx's.
        with client.connect(
            address, ssl=certificates.client, origin=origin, source_address=(CLIENT_ADDRESS, 0)
        ) as ws:
            ws.send("through")
            assert ws.recv(30) == "through"
        with pytest.raises(exceptions.InvalidStatus) as refused:
            client.connect(address, ssl=certificates.client, origin="https://elsewhere.example")
        assert refused.value.response.status_code == 403
        assert site.schemes == ["https"]
        assert site.clients == [CLIENT_ADDRESS]


def test_chromium_through_nginx(tmp_path: Path) -> None:
    with behind_nginx(tmp_path) as (proxy, site):
        page = page_url("http", proxy.address, "/report/nginx", sizes=SIZES, count=COUNT)
        with chromium(page, tmp_path):
            report = site.report("/report/nginx")
        check_report(report, sizes=SIZES, count=COUNT, big=0)
        check_server(site)
