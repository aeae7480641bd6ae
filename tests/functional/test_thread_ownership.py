"""Every field labelled "loop thread" is only touched by the loop thread (checked, not assumed).

The fields the loop owns are wrapped in properties that record any get or set from another
thread, then a pool server is put through a mixed load over real sockets: plain and pipelined
requests, bodies, streamed and chunked responses written by pool threads, clients that reset
and clients that read slowly. The fields guarded by a lock are not listed: their owners'
methods take the lock.
"""

from __future__ import annotations

import socket
import struct
import threading

import pytest

import vestespy
import vestespy._loop
from support import RawClient, serve
from vestespy._connection import Connection
from vestespy._deadlines import Deadlines
from vestespy._exchange import Exchange
from vestespy._flow import Flow
from vestespy._sender import Sender
from vestespy._transport import Transport

LOOP_FIELDS = {
    Connection: ["_exchange", "_peer_closed", "_discard_left", "phase"],
    Flow: ["for_response", "for_body", "yielded", "closing", "held"],
    Sender: ["_stream"],
    Deadlines: ["_last_active", "_head_since", "_head_bytes", "_body_meter", "_response_meter"],
    Exchange: ["received", "response_sent"],
    Transport: ["_backlog", "_registered", "_reading", "lingering", "closed"],
}


@pytest.fixture
def violations(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    found: list[str] = []
    loop_threads: set[int] = set()
    original_run = vestespy._loop.EventLoop.run

    def run(self: vestespy._loop.EventLoop) -> None:
        loop_threads.add(threading.get_ident())
        original_run(self)

    monkeypatch.setattr(vestespy._loop.EventLoop, "run", run)

    def guard(cls: type, name: str) -> None:
        slot = cls.__dict__.get(name)  # a member descriptor for slotted classes
        store = f"_owned{name}"

        def check(action: str) -> None:
            # Before the loop runs (construction by the accepting loop) every thread is fine.
            if loop_threads and threading.get_ident() not in loop_threads:
                found.append(f"{cls.__name__}.{name} {action} by {threading.current_thread().name}")

        def get(self: object) -> object:
            check("read")
            return slot.__get__(self, cls) if slot is not None else self.__dict__[store]

        def set_(self: object, value: object) -> None:
            check("written")
            if slot is not None:
                slot.__set__(self, value)
            else:
                self.__dict__[store] = value

        monkeypatch.setattr(cls, name, property(get, set_), raising=False)

    for cls, names in LOOP_FIELDS.items():
        for name in names:
            guard(cls, name)
    return found


def mixed_listener(server: vestespy.Server, req: vestespy.Request, res: vestespy.Response) -> None:
    if req.path == "/stream":
        res.send_stream((b"s" * 65536 for _ in range(32)), 32 * 65536)
    elif req.path == "/chunked":
        res.send_chunked(b"c" * 1000 for _ in range(100))
    else:
        body = bytearray()
        req.on("data", lambda _r, _q, _s, chunk: body.extend(chunk))
        req.on("end", lambda _r, _q, s: s.send_all(bytes(body) or b"hello"))


def test_loop_fields_stay_on_the_loop_thread(violations: list[str]) -> None:
    with serve(mixed_listener, max_workers=4, write_buffer_size=65536) as thread:
        address = thread.address

        def client(index: int) -> None:
            with RawClient(address) as raw:
                raw.send(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n" * 20)
                for _ in range(20):
                    assert raw.read_response().body == b"hello"
                assert raw.request("POST", "/echo", body=b"x" * 300_000).body == b"x" * 300_000
                assert len(raw.request("GET", "/stream").body) == 32 * 65536
                assert raw.request("GET", "/chunked").body == b"c" * 100_000
            # A client that resets mid-body, and one that resets while a stream is sent.
            for request in (
                b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 100000\r\n\r\nxx",
                b"GET /stream HTTP/1.1\r\nHost: h\r\n\r\n",
            ):
                sock = socket.create_connection(address)
                sock.sendall(request)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.close()

        threads = [threading.Thread(target=client, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
            assert not t.is_alive()
        with RawClient(address) as raw:
            assert raw.request("GET", "/").body == b"hello"
    assert not violations, sorted(set(violations))
