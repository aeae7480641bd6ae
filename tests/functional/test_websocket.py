"""WebSockets over real sockets: the handshake, messages both ways, the close handshake.

Every test runs on each backend, with listeners on a pool and inline (the ``served`` fixture).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

import pytest

import vestespy
from support import Serve, ServerThread
from support.polling import poll
from support.websocket import (
    CLOSE,
    PING,
    PONG,
    TEXT,
    Frame,
    HandshakeError,
    WebSocketClient,
    close_payload,
    encode_frame,
)

WAIT = 10.0


def _echo(server: vestespy.Server, ws: vestespy.WebSocket, req: vestespy.Request) -> None:
    ws.on("message", lambda ws, data: ws.send(data))


def _with_websocket(thread: ServerThread, listener: Callable[..., None]) -> ServerThread:
    thread.server.on("websocket", listener)
    return thread


class Closes:
    """Records each WebSocket's "close" (and its other events) from the listeners."""

    def __init__(self) -> None:
        self.closes: queue.Queue[tuple[int, str]] = queue.Queue()
        self.events: list[tuple[str, Any]] = []
        self.lock = threading.Lock()

    def attach(self, ws: vestespy.WebSocket) -> None:
        ws.on("close", lambda ws, code, reason: self._closed(code, reason))
        ws.on("error", lambda ws, exc: self._record("error", exc))
        ws.on("ping", lambda ws, payload: self._record("ping", payload))
        ws.on("pong", lambda ws, payload: self._record("pong", payload))

    def _record(self, name: str, value: Any) -> None:
        with self.lock:
            self.events.append((name, value))

    def _closed(self, code: int, reason: str) -> None:
        self._record("close", code)
        self.closes.put((code, reason))

    def next_close(self) -> tuple[int, str]:
        return self.closes.get(timeout=WAIT)


def test_echo_text_and_binary(served: Serve) -> None:
    with served() as thread:
        _with_websocket(thread, _echo)
        with WebSocketClient(thread.address, "/echo") as client:
            client.send("héllo")
            assert client.recv_message() == "héllo"
            client.send(b"\x00\x01\xff")
            assert client.recv_message() == b"\x00\x01\xff"
            client.send("")
            assert client.recv_message() == ""
            for size in (125, 126, 65535, 65536):
                client.send(b"x" * size)
                assert client.recv_message() == b"x" * size


def test_messages_in_order(served: Serve) -> None:
    with served() as thread:
        _with_websocket(thread, _echo)
        with WebSocketClient(thread.address) as client:
            client.send_raw(b"".join(encode_frame(TEXT, str(n).encode()) for n in range(500)))
            assert [client.recv_message() for _ in range(500)] == [str(n) for n in range(500)]


def test_frames_sent_with_the_handshake_are_not_lost(served: Serve) -> None:
    """h11's trailing_data: frames in the same write as the handshake reach wsproto."""
    with served() as thread:
        _with_websocket(thread, _echo)
        early = encode_frame(TEXT, b"first") + encode_frame(TEXT, b"second")
        with WebSocketClient(thread.address, after_handshake=early) as client:
            assert client.recv_message() == "first"
            assert client.recv_message() == "second"


def test_fragmented_message_reassembled(served: Serve) -> None:
    with served() as thread:
        _with_websocket(thread, _echo)
        with WebSocketClient(thread.address) as client:
            client.send_raw(
                encode_frame(TEXT, "h\xc3".encode("latin-1"), fin=False)
                + encode_frame(PING, b"in between")
                + encode_frame(0, b"\xa9llo", fin=True)
            )
            pong = client.recv_message(control=True)
            assert isinstance(pong, Frame)
            assert pong.opcode == PONG
            assert pong.payload == b"in between"
            assert client.recv_message() == "héllo"


def test_client_closes(served: Serve) -> None:
    closes = Closes()

    def listener(server: vestespy.Server, ws: vestespy.WebSocket, req: vestespy.Request) -> None:
        closes.attach(ws)

    with served() as thread:
        _with_websocket(thread, listener)
        with WebSocketClient(thread.address) as client:
            client.close(4000, "done")
            reply = client.recv_frame()
            assert reply.opcode == CLOSE
            assert reply.close_code == 4000
            assert client.recv_eof()  # the server closes the TCP connection first
        assert closes.next_close() == (4000, "done")


def test_server_closes(served: Serve) -> None:
    closes = Closes()

    def listener(server: vestespy.Server, ws: vestespy.WebSocket, req: vestespy.Request) -> None:
        closes.attach(ws)
        ws.on("message", lambda ws, data: ws.close(1000, "bye"))

    with served() as thread:
        _with_websocket(thread, listener)
        with WebSocketClient(thread.address) as client:
            client.send("close me")
            frame = client.recv_frame()
            assert frame.opcode == CLOSE
            assert (frame.close_code, frame.close_reason) == (1000, "bye")
            client.close(1000)
            assert client.recv_eof()
        assert closes.next_close() == (1000, "")


def test_peer_gone_reports_1006(served: Serve) -> None:
    closes = Closes()

    def listener(server: vestespy.Server, ws: vestespy.WebSocket, req: vestespy.Request) -> None:
        closes.attach(ws)

    with served() as thread:
        _with_websocket(thread, listener)
        client = WebSocketClient(thread.address)
        client.close_socket()
        assert closes.next_close() == (1006, "")


def test_ping_answered_and_reported(served: Serve) -> None:
    closes = Closes()

    def listener(server: vestespy.Server, ws: vestespy.WebSocket, req: vestespy.Request) -> None:
        closes.attach(ws)

    with served() as thread:
        _with_websocket(thread, listener)
        with WebSocketClient(thread.address) as client:
            client.send_frame(PING, b"are you there")
            pong = client.recv_frame()
            assert (pong.opcode, pong.payload) == (PONG, b"are you there")
            client.close()
            client.recv_frame()
        closes.next_close()
        assert ("ping", b"are you there") in closes.events


def test_without_a_websocket_listener_an_upgrade_is_a_request(served: Serve) -> None:
    def listener(server: vestespy.Server, req: vestespy.Request, res: vestespy.Response) -> None:
        res.send_all("plain")

    with served(listener) as thread:
        with pytest.raises(HandshakeError) as caught:
            WebSocketClient(thread.address)
        assert caught.value.status == 200
        assert caught.value.body == b"plain"


@pytest.mark.parametrize(
    ("headers", "version", "status"),
    [((), "8", 426), ((("Origin", "https://evil.example"),), "13", 403), ((), "13", 403)],
    ids=["version", "origin", "no-origin"],
)
def test_handshake_refused(
    served: Serve, headers: tuple[tuple[str, str], ...], version: str, status: int
) -> None:
    with served(websocket_allowed_origins=("https://good.example",)) as thread:
        _with_websocket(thread, _echo)
        client = WebSocketClient(thread.address, connect=False)
        with client, pytest.raises(HandshakeError) as caught:
            client.handshake("/", headers, version=version)
        assert caught.value.status == status
        if status == 426:
            assert "Sec-WebSocket-Version: 13" in caught.value.head


def test_allowed_origin_accepted(served: Serve) -> None:
    with served(websocket_allowed_origins=("https://Good.example",)) as thread:
        _with_websocket(thread, _echo)
        headers = (("Origin", "https://good.example"),)
        with WebSocketClient(thread.address, headers=headers) as client:
            client.send("ok")
            assert client.recv_message() == "ok"


def test_malformed_handshake_400(served: Serve) -> None:
    with served() as thread:
        _with_websocket(thread, _echo)
        import socket

        with socket.create_connection(thread.address, timeout=WAIT) as sock:
            sock.sendall(
                b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n\r\n"
            )
            data = b""
            while True:
                piece = sock.recv(65536)
                if not piece:
                    break
                data += piece
        assert data.startswith(b"HTTP/1.1 400 ")


def test_listener_rejects(served: Serve) -> None:
    def listener(server: vestespy.Server, ws: vestespy.WebSocket, req: vestespy.Request) -> None:
        ws.reject(401, b"who are you?", [("WWW-Authenticate", "Bearer")])

    with served() as thread:
        _with_websocket(thread, listener)
        with pytest.raises(HandshakeError) as caught:
            WebSocketClient(thread.address)
        assert caught.value.status == 401
        assert caught.value.body == b"who are you?"
        assert "WWW-Authenticate: Bearer" in caught.value.head


def test_subprotocol_chosen(served: Serve) -> None:
    seen: list[tuple[str, ...]] = []

    def listener(server: vestespy.Server, ws: vestespy.WebSocket, req: vestespy.Request) -> None:
        seen.append(ws.subprotocols)
        with pytest.raises(ValueError, match="not offered"):
            ws.accept("mqtt")
        ws.accept("chat.v2")
        ws.send(f"{ws.subprotocol} at {req.path}")

    with served() as thread:
        _with_websocket(thread, listener)
        headers = (("Sec-WebSocket-Protocol", "chat.v1, chat.v2"),)
        with WebSocketClient(thread.address, "/room", headers=headers) as client:
            assert client.response_headers["sec-websocket-protocol"] == "chat.v2"
            assert client.recv_message() == "chat.v2 at /room"
        assert seen == [("chat.v1", "chat.v2")]


def test_close_payload_helper() -> None:
    assert close_payload(1000, "x") == b"\x03\xe8x"
    assert close_payload(None) == b""


def test_dispatcher_routes_websockets(served: Serve) -> None:
    from vestespy.tools import Dispatcher

    dispatcher = Dispatcher()

    @dispatcher.websocket("/chat/:room")
    def chat(
        server: vestespy.Server, ws: vestespy.WebSocket, req: vestespy.Request, room: str
    ) -> None:
        ws.on("message", lambda ws, data: ws.send(f"{room}: {data}"))

    with served() as thread:
        _with_websocket(thread, dispatcher.dispatch_websocket)
        with WebSocketClient(thread.address, "/chat/l%C3%A9man") as client:
            client.send("hi")
            assert client.recv_message() == "léman: hi"
        with pytest.raises(HandshakeError) as caught:
            WebSocketClient(thread.address, "/nowhere")
        assert caught.value.status == 404


def test_message_over_the_limit_closes_1009(served: Serve) -> None:
    closes = Closes()

    def listener(server: vestespy.Server, ws: vestespy.WebSocket, req: vestespy.Request) -> None:
        closes.attach(ws)
        ws.on("message", lambda ws, data: ws.send(data))

    with served(websocket_max_message_size=1000) as thread:
        _with_websocket(thread, listener)
        with WebSocketClient(thread.address) as client:
            client.send(b"a" * 1000)
            assert client.recv_message() == b"a" * 1000
            # Fragments: the limit applies to the message, checked as each piece comes, and
            # the frame's announced length (far past the limit) is not awaited.
            client.send_frame(0x2, b"b" * 600, fin=False)
            client.send_raw(encode_frame(0x0, b"c" * 600, length=10_000_000))
            frame = client.recv_frame()
            assert (frame.opcode, frame.close_code) == (CLOSE, 1009)
            assert frame.close_reason == "message too big"
            assert client.recv_eof()
        assert closes.next_close() == (1009, "message too big")
        assert any(name == "error" for name, _ in closes.events)


def test_deflate_negotiated_and_used(served: Serve) -> None:
    seen: list[tuple[str, ...]] = []

    def listener(server: vestespy.Server, ws: vestespy.WebSocket, req: vestespy.Request) -> None:
        ws.accept()
        seen.append(ws.extensions)
        ws.on("message", lambda ws, data: ws.send(data))

    with served() as thread:
        _with_websocket(thread, listener)
        with WebSocketClient(thread.address, deflate=True) as client:
            assert client.deflate
            client.send("z" * 5000, compress=True)
            assert client.recv_message() == "z" * 5000
            client.send(b"plain")  # an uncompressed message on a deflate connection
            assert client.recv_message() == b"plain"
        assert seen == [("permessage-deflate",)]


def test_deflate_off(served: Serve) -> None:
    with served(websocket_compression=False) as thread:
        _with_websocket(thread, _echo)
        with WebSocketClient(thread.address, deflate=True) as client:
            assert not client.deflate
            assert "sec-websocket-extensions" not in client.response_headers


def test_decompression_bomb_refused_at_the_limit(served: Serve) -> None:
    import zlib

    closes = Closes()

    def listener(server: vestespy.Server, ws: vestespy.WebSocket, req: vestespy.Request) -> None:
        closes.attach(ws)

    with served(websocket_max_message_size=64 * 1024) as thread:
        _with_websocket(thread, listener)
        with WebSocketClient(thread.address, deflate=True) as client:
            compressor = zlib.compressobj(wbits=-15)
            bomb = compressor.compress(b"\0" * (256 * 1024 * 1024))
            bomb += compressor.flush(zlib.Z_SYNC_FLUSH)
            assert len(bomb) < 512 * 1024  # 256 MiB of zeros in a few hundred KiB
            client.send_frame(0x2, bomb[:-4], rsv1=True)
            frame = client.recv_frame()
            assert (frame.opcode, frame.close_code) == (CLOSE, 1009)
            # The same reason as without compression (wsproto's would be "error in extension").
            assert frame.close_reason == "message too big"
        assert closes.next_close() == (1009, "message too big")


def test_shutdown_closes_websockets_with_1001(served: Serve) -> None:
    closes = Closes()

    def listener(server: vestespy.Server, ws: vestespy.WebSocket, req: vestespy.Request) -> None:
        closes.attach(ws)

    with served() as thread:
        _with_websocket(thread, listener)
        with WebSocketClient(thread.address) as client:
            thread.server.shutdown(timeout=WAIT)
            frame = client.recv_frame()
            assert (frame.opcode, frame.close_code) == (CLOSE, 1001)
            client.close(1001)
            assert client.recv_eof()
            assert thread.server.wait_stopped(WAIT)
        assert closes.next_close() == (1001, "")


def test_access_log_lines(served: Serve) -> None:
    lines: queue.Queue[tuple[str, int, int]] = queue.Queue()

    def hook(req: vestespy.Request, status: int, sent: int, duration: float) -> None:
        lines.put((req.path, status, sent))

    with served(access_log=hook) as thread:
        _with_websocket(thread, _echo)
        with WebSocketClient(thread.address, "/logged") as client:
            assert lines.get(timeout=WAIT) == ("/logged", 101, 0)
            client.send(b"12345")
            assert client.recv_message() == b"12345"
            client.close()
            client.recv_frame()
        path, status, sent = lines.get(timeout=WAIT)
        assert (path, status) == ("/logged", 101)
        assert sent == 7  # the frame of the echoed message (2 + 5)


@pytest.mark.parametrize("workers", [4])
def test_client_that_stops_reading_bounds_memory_and_is_closed_at_the_pong_timeout(
    served: Serve,
) -> None:
    closes = Closes()
    outcome: queue.Queue[object] = queue.Queue()
    buffered: list[int] = []

    def flood(ws: vestespy.WebSocket) -> None:
        chunk = b"x" * 65536
        try:
            for _ in range(10_000):  # 640 MiB, far more than any buffer
                ws.send(chunk)
                buffered.append(ws._link._wire.waiting_writers)  # type: ignore[attr-defined]
        except vestespy.ClientDisconnected as exc:
            outcome.put(exc)
            return
        outcome.put("sent everything")

    def listener(server: vestespy.Server, ws: vestespy.WebSocket, req: vestespy.Request) -> None:
        closes.attach(ws)
        ws.on("message", lambda ws, data: threading.Thread(target=flood, args=(ws,)).start())

    options = {
        "websocket_ping_interval": 0.2,
        "websocket_ping_timeout": 0.5,
        "write_buffer_size": 64 * 1024,
    }
    with served(**options) as thread:
        _with_websocket(thread, listener)
        with WebSocketClient(thread.address) as client:
            client.sock.setsockopt(__import__("socket").SOL_SOCKET, 8, 4096)  # small SO_RCVBUF
            client.send("go")  # ...and never read again
            result = outcome.get(timeout=WAIT * 3)
            assert isinstance(result, vestespy.ClientDisconnected)
        assert closes.next_close()[0] == 1006


def test_listeners_run_on_the_strand_in_order(served: Serve, workers: int) -> None:
    """Pool: listener threads, never the loop; inline: the loop thread. In order, one at a
    time; send works from a thread of the application's."""
    threads: list[str] = []
    received: list[str] = []
    done = threading.Event()

    def on_message(ws: vestespy.WebSocket, data: str | bytes) -> None:
        threads.append(threading.current_thread().name)
        received.append(str(data))
        if data == "last":
            worker = threading.Thread(target=ws.send, args=("from another thread",))
            worker.start()
            worker.join()
            done.set()

    def listener(server: vestespy.Server, ws: vestespy.WebSocket, req: vestespy.Request) -> None:
        threads.append(threading.current_thread().name)
        ws.on("message", on_message)

    with served() as thread:
        _with_websocket(thread, listener)
        with WebSocketClient(thread.address) as client:
            client.send_raw(b"".join(encode_frame(TEXT, str(n).encode()) for n in range(50)))
            client.send("last")
            assert client.recv_message() == "from another thread"
        assert done.wait(WAIT)
    assert received == [*(str(n) for n in range(50)), "last"]
    if workers:
        assert all(name.startswith("vestespy-worker") for name in threads), set(threads)
    else:
        assert set(threads) == {"test-server"}


def test_invalid_utf8_fails_with_1007(served: Serve) -> None:
    closes = Closes()

    def listener(server: vestespy.Server, ws: vestespy.WebSocket, req: vestespy.Request) -> None:
        closes.attach(ws)

    with served() as thread:
        _with_websocket(thread, listener)
        with WebSocketClient(thread.address) as client:
            client.send_frame(TEXT, b"caf\xc3", fin=False)
            client.send_frame(0x0, b"\x28")  # an invalid sequence split across frames
            frame = client.recv_frame()
            assert (frame.opcode, frame.close_code) == (CLOSE, 1007)
            assert client.recv_eof()
        assert closes.next_close()[0] == 1007
        errors = [value for name, value in closes.events if name == "error"]
        assert isinstance(errors[0], vestespy.WebSocketError)
        assert errors[0].code == 1007


def test_listener_that_raises_closes_with_1011(served: Serve) -> None:
    closes = Closes()

    def boom(ws: vestespy.WebSocket, data: str | bytes) -> None:
        raise RuntimeError("boom")

    def listener(server: vestespy.Server, ws: vestespy.WebSocket, req: vestespy.Request) -> None:
        closes.attach(ws)
        ws.on("message", boom)

    with served() as thread:
        _with_websocket(thread, listener)
        with WebSocketClient(thread.address) as client:
            client.send("x")
            frame = client.recv_frame()
            assert (frame.opcode, frame.close_code) == (CLOSE, 1011)
            client.close(1011)
            assert client.recv_eof()
        assert closes.next_close()[0] == 1011


def test_close_handshake_times_out(served: Serve) -> None:
    closes = Closes()

    def listener(server: vestespy.Server, ws: vestespy.WebSocket, req: vestespy.Request) -> None:
        closes.attach(ws)
        ws.on("message", lambda ws, data: ws.close())

    with served(websocket_close_timeout=0.2) as thread:
        _with_websocket(thread, listener)
        with WebSocketClient(thread.address) as client:
            client.send("close, please")
            assert client.recv_frame().opcode == CLOSE
            assert client.recv_eof()  # never answered: the server gives up
        assert closes.next_close()[0] == 1006


def test_server_pings_and_closes_a_silent_peer(served: Serve) -> None:
    closes = Closes()

    def listener(server: vestespy.Server, ws: vestespy.WebSocket, req: vestespy.Request) -> None:
        closes.attach(ws)

    options = {"websocket_ping_interval": 0.1, "websocket_ping_timeout": 0.3}
    with served(**options) as thread:
        _with_websocket(thread, listener)
        with WebSocketClient(thread.address) as client:
            ping = client.recv_frame()
            assert ping.opcode == PING
            client.send_frame(PONG, ping.payload)  # alive: another ping follows
            assert client.recv_frame().opcode == PING
            # ...now silent: closed at the pong timeout.
            while True:
                try:
                    frame = client.recv_frame()
                except (ConnectionError, TimeoutError):
                    break
                assert frame.opcode == PING
        assert closes.next_close()[0] == 1006


def test_access_logger_line_counts_both_ways(
    served: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    from vestespy.access_log import AccessLogger

    caplog.set_level("INFO", logger="vestespy.access")
    with served(access_log=AccessLogger("{request_line} {status} {bytes}")) as thread:
        _with_websocket(thread, _echo)
        with WebSocketClient(thread.address, "/counted") as client:
            for _ in range(3):
                client.send(b"12345")
                assert client.recv_message() == b"12345"
            client.close()
            client.recv_frame()
            assert client.recv_eof()

        def both() -> list[str] | None:
            found = [r.getMessage() for r in caplog.records if r.name == "vestespy.access"]
            return found if len(found) == 2 else None

        lines = poll(both, WAIT, "the two access log lines")
    # Frames in: three messages of 2 + 4 (mask) + 5 bytes and a close of 2 + 4 + 2.
    assert lines == [
        "GET /counted HTTP/1.1 101 -",
        "GET /counted HTTP/1.1 101 21 ws_in=3/41 ws_out=3/21",
    ]


def test_close_comes_last_and_send_after_close_raises(served: Serve) -> None:
    order: list[object] = []
    after: queue.Queue[object] = queue.Queue()

    def on_close(ws: vestespy.WebSocket, code: int, reason: str) -> None:
        order.append(("close", code))
        try:
            ws.send("too late")
        except vestespy.ClientDisconnected as exc:
            after.put(exc)
        else:
            after.put("sent")

    def listener(server: vestespy.Server, ws: vestespy.WebSocket, req: vestespy.Request) -> None:
        with pytest.raises(RuntimeError, match="not accepted yet"):
            ws.send("early")
        ws.accept()
        with pytest.raises(RuntimeError, match="already answered"):
            ws.accept()
        with pytest.raises(RuntimeError, match="already answered"):
            ws.reject(403)
        ws.on("message", lambda ws, data: order.append(data))
        ws.on("close", on_close)

    with served() as thread:
        _with_websocket(thread, listener)
        with WebSocketClient(thread.address) as client:
            client.send_raw(
                encode_frame(TEXT, b"one")
                + encode_frame(TEXT, b"two")
                + encode_frame(CLOSE, close_payload(1000, "done"))
            )
            assert client.recv_frame().close_code == 1000
            assert client.recv_eof()
        assert isinstance(after.get(timeout=WAIT), vestespy.ClientDisconnected)
    assert order == ["one", "two", ("close", 1000)]


def test_bad_arguments_are_refused_at_once(served: Serve) -> None:
    problems: queue.Queue[list[str]] = queue.Queue()

    def listener(server: vestespy.Server, ws: vestespy.WebSocket, req: vestespy.Request) -> None:
        found = []
        for call in (
            lambda: ws.send(12),  # type: ignore[arg-type]
            lambda: ws.close(1005),
            lambda: ws.close(1000, "x" * 124),
            lambda: ws.ping(b"x" * 126),
        ):
            try:
                call()
            except (TypeError, ValueError) as exc:
                found.append(type(exc).__name__)
        problems.put(found)

    with served() as thread:
        _with_websocket(thread, listener)
        with WebSocketClient(thread.address):
            assert problems.get(timeout=WAIT) == [
                "TypeError",
                "ValueError",
                "ValueError",
                "ValueError",
            ]


@pytest.mark.parametrize("workers", [0])
def test_a_flood_of_tiny_frames_does_not_starve_another_client(served: Serve) -> None:
    """Inline, where listeners hold the loop: one slice of messages per pass, so another
    client's message is handled after a slice or two of the flood, not after a whole read of
    it (124 KiB: some 11,000 of these frames)."""
    import time

    flooded = [0]
    seen_at: queue.Queue[int] = queue.Queue()

    def on_message(ws: vestespy.WebSocket, data: str | bytes) -> None:
        if data == "flood":
            flooded[0] += 1
            time.sleep(0.0002)  # a listener's work, so that the flood lasts
        else:
            seen_at.put(flooded[0])
            ws.send(data)

    def listener(server: vestespy.Server, ws: vestespy.WebSocket, req: vestespy.Request) -> None:
        ws.on("message", on_message)

    with served() as thread:
        _with_websocket(thread, listener)
        with WebSocketClient(thread.address) as other, WebSocketClient(thread.address) as flood:
            flood.send_raw(encode_frame(TEXT, b"flood") * 30_000)
            other.send("me too")
            assert other.recv_message() == "me too"
            assert seen_at.get(timeout=WAIT) < 2_000


def test_websocket_listener_that_raises(served: Serve) -> None:
    def before(server: vestespy.Server, ws: vestespy.WebSocket, req: vestespy.Request) -> None:
        if req.path == "/before":
            raise RuntimeError("boom before the answer")
        ws.accept()
        raise RuntimeError("boom after the answer")

    with served() as thread:
        _with_websocket(thread, before)
        with pytest.raises(HandshakeError) as caught:
            WebSocketClient(thread.address, "/before")
        assert caught.value.status == 500
        with WebSocketClient(thread.address, "/after") as client:
            frame = client.recv_frame()
            assert (frame.opcode, frame.close_code) == (CLOSE, 1011)


def test_server_stats_count_websockets(served: Serve) -> None:
    with served() as thread:
        _with_websocket(thread, _echo)
        server = thread.server
        with WebSocketClient(thread.address) as client:
            poll(lambda: server.stats().websockets_open == 1, WAIT, "the WebSocket counted open")
            for _ in range(3):
                client.send("x")
                assert client.recv_message() == "x"
            client.close()
            client.recv_frame()
            assert client.recv_eof()

        def closed() -> bool:
            stats = server.stats()
            return stats.websockets_open == 0 and stats.websocket_messages_sent == 3

        poll(closed, WAIT, "the WebSocket counted closed")
        assert server.stats().websocket_messages_received == 3
