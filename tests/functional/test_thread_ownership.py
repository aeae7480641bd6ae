"""Every field labelled "loop thread" is only touched by the loop thread (checked, not assumed).

The fields the loop owns are wrapped in properties that record any get or set from another
thread, then a pool server is put through a mixed load over real sockets: plain and pipelined
requests, bodies, streamed and chunked responses written by pool threads, responses that close
the connection, clients that reset and clients that read slowly. The fields guarded by a lock
are not listed: their owners' methods take the lock.

The transport's sending methods are the loop's too, but ``send_now``: a pool thread's direct
send of a whole response, which must be made with the wire's lock held, its output open,
nothing queued or unsent (see ``Transport.send_now``) and no pipelined request waiting (the
loop holds those responses for one send, see ``_sender``); the test checks that, and that the
load did take both paths.

The server runs with ``limit_concurrency`` (high enough never to refuse): the admission slot
of a request is given back by the loop thread (it parsed the request's end) or by the thread
that completes its response, whichever is second, and in the second case before the
response's end reaches the wire (see ``Exchange.hold_slot``): the test checks that every
response end queued or sent directly finds its slot given back once its request is parsed,
and that every slot was given back exactly once.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Callable

import pytest

import vestespy
import vestespy._loop
from support import RawClient, serve
from vestespy._connection import Connection
from vestespy._deadlines import Deadlines
from vestespy._exchange import _PARSED, _RESPONDED, Exchange
from vestespy._flow import Flow
from vestespy._head import ResponseHead
from vestespy._pool import WorkerPool
from vestespy._sender import Sender
from vestespy._transport import Transport
from vestespy._wire import Wire

LOOP_FIELDS = {
    Connection: ["_exchange", "_peer_closed", "_discard_left", "phase"],
    Flow: ["for_response", "for_body", "yielded", "closing", "held"],
    Sender: ["_stream", "_held", "_hold_timer"],
    Deadlines: ["_last_active", "_head_since", "_head_bytes", "_body_meter", "_response_meter"],
    Exchange: ["received", "response_sent", "ends_with_head"],
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

    def loop_only(name: str) -> None:
        original = getattr(Transport, name)

        def method(self: Transport, *args: object) -> object:
            if loop_threads and threading.get_ident() not in loop_threads:
                found.append(f"Transport.{name} called by {threading.current_thread().name}")
            return original(self, *args)

        monkeypatch.setattr(Transport, name, method)

    for name in ("send", "send_backlog", "linger", "close", "set_reading"):
        loop_only(name)

    original_direct = Wire._send_directly_locked

    def send_directly(
        self: Wire[Exchange], send: Callable[[bytes], int], data: bytes, ended: Exchange
    ) -> None:
        output = self._output
        if threading.get_ident() in loop_threads:
            found.append("a direct send on the loop thread")
        if not self._lock.locked() or output.closed or output.size or output.has_pending():
            found.append("a direct send without the lock, on a closed output or out of order")
        if self._driver.holds_pipelined:
            found.append("a direct send while a pipelined request waits (the loop holds those)")
        direct_sends.append(len(data))
        original_direct(self, send, data, ended)

    monkeypatch.setattr(Wire, "_send_directly_locked", send_directly)

    original_hold = Sender._hold

    def hold(self: Sender, data: bytes) -> bool:
        held = original_hold(self, data)
        if held and data:
            holds.append(len(data))
        return held

    monkeypatch.setattr(Sender, "_hold", hold)

    def check_slot(ended: object) -> None:
        # A response's end reaches the wire only once its side is over for the slot, and
        # with its slot given back if its request is parsed too (the client may have the
        # response as soon as this returns).
        if not isinstance(ended, Exchange):
            return
        slot_checks.append(1)
        sides = ended._release_sides
        if not sides & _RESPONDED or (sides & _PARSED and ended._release is not None):
            found.append("a response's end reached the wire before its slot was given back")

    original_start, original_end = Wire.start, Wire.end

    def start(
        self: Wire[Exchange], head: ResponseHead, body: bytes, ended: Exchange | None
    ) -> None:
        check_slot(ended)
        original_start(self, head, body, ended)

    def end(self: Wire[Exchange], ended: Exchange) -> None:
        check_slot(ended)
        original_end(self, ended)

    monkeypatch.setattr(Wire, "start", start)
    monkeypatch.setattr(Wire, "end", end)

    # The loop thread alone watches the pool (its watch bounds the loop's wait for events).
    original_watch = WorkerPool.watch

    def watch(self: WorkerPool, now: float) -> float | None:
        if loop_threads and threading.get_ident() not in loop_threads:
            found.append(f"WorkerPool.watch called by {threading.current_thread().name}")
        watch_calls.append(1)
        return original_watch(self, now)

    monkeypatch.setattr(WorkerPool, "watch", watch)
    return found


direct_sends: list[int] = []
holds: list[int] = []
slot_checks: list[int] = []
watch_calls: list[int] = []


def mixed_listener(server: vestespy.Server, req: vestespy.Request, res: vestespy.Response) -> None:
    if req.path == "/close":
        res.set_header("Connection", "close")
        res.send_all(b"bye")
    elif req.path == "/stream":
        res.send_stream((b"s" * 65536 for _ in range(32)), 32 * 65536)
    elif req.path == "/chunked":
        res.send_chunked(b"c" * 1000 for _ in range(100))
    else:
        body = bytearray()
        req.on("data", lambda _r, _q, _s, chunk: body.extend(chunk))
        req.on("end", lambda _r, _q, s: s.send_all(bytes(body) or b"hello"))


def test_loop_fields_stay_on_the_loop_thread(violations: list[str]) -> None:
    direct_sends.clear()
    holds.clear()
    slot_checks.clear()
    watch_calls.clear()
    with serve(
        mixed_listener, max_workers=4, write_buffer_size=65536, limit_concurrency=1000
    ) as thread:
        address = thread.address
        admission = thread.server._admission
        assert admission is not None

        def client(index: int) -> None:
            with RawClient(address) as raw:
                raw.send(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n" * 20)
                for _ in range(20):
                    assert raw.read_response().body == b"hello"
                assert raw.request("POST", "/echo", body=b"x" * 300_000).body == b"x" * 300_000
                assert len(raw.request("GET", "/stream").body) == 32 * 65536
                assert raw.request("GET", "/chunked").body == b"c" * 100_000
            with RawClient(address) as raw:  # the response closes the connection
                assert raw.request("GET", "/close").body == b"bye"
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
    # Every slot given back, once (twice would go below 0), none refused.
    assert (admission.in_flight, admission.refused) == (0, 0)
    if not vestespy.build_info().compiled:
        assert watch_calls  # the loop watched the pool (the server binds it at construction)
    if not vestespy.build_info().compiled:
        # The pool threads' direct send was taken (and checked), and so were the ends of
        # responses. Compiled, the exchange and the wire call their methods natively and
        # the wrappers never see them.
        assert direct_sends
        assert slot_checks
        assert holds  # the pipelined requests' responses were held for one send
