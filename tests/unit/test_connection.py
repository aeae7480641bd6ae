"""The connection, its exchange and its output buffer on fakes: no sockets, forced interleavings.

The test's thread plays the loop thread; a :class:`ListenerThread` plays a pool worker, and a
:class:`ManualStrand` holds listener calls until the test runs them, so that every ordering of
the loop's work and the listeners' can be forced, one step at a time.
"""

from __future__ import annotations

import errno
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from support import poll
from support.fakes import EVENT_READ, EVENT_WRITE, Harness, ListenerThread
from vestespy import ClientDisconnected, Headers, Request, Response
from vestespy._exchange import Exchange
from vestespy._head import ResponseHead
from vestespy._phase import IDLE
from vestespy._sender import HOLD_TIME

HEAD = b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 9\r\n\r\n"
PIECES = [b"aaa", b"bbb", b"ccc"]
OK = b"HTTP/1.1 200 "


@pytest.fixture
def worker() -> Iterator[ListenerThread]:
    thread = ListenerThread()
    yield thread
    thread.stop()


class Recorder:
    """Records a request's events; answers at the point it is told to."""

    def __init__(self, answer_at: str, answer: Callable[[Response], None] | None = None) -> None:
        self.answer_at = answer_at
        self.answer = answer or (lambda res: res.send_all("ok"))
        self.events: list[str] = []
        self.errors: list[Exception] = []
        self.response: Response | None = None
        self.pieces = 0

    def on_request(self, server: object, req: Request, res: Response) -> None:
        self.events.append("request")
        self.response = res
        req.on("data", self.on_data)
        req.on("end", self.on_end)
        req.on("error", self.on_error)
        req.on("close", self.on_close)
        if self.answer_at == "head":
            self.answer(res)

    def on_data(self, req: Request, _: Request, res: Response, chunk: bytes) -> None:
        self.events.append("data")
        self.pieces += 1
        if self.answer_at == f"data{self.pieces}":
            self.answer(res)

    def on_end(self, req: Request, _: Request, res: Response) -> None:
        self.events.append("end")
        if self.answer_at == "end":
            self.answer(res)

    def on_error(self, req: Request, _: Request, res: Response, exc: Exception) -> None:
        self.events.append("error")
        self.errors.append(exc)

    def on_close(self, req: Request, _: Request, res: Response) -> None:
        self.events.append("close")

    def assert_ordered(self) -> None:
        """ "close" once and last, after "end"; nothing after it; no "error"."""
        events = self.events
        assert events[0] == "request", events
        assert events.count("close") == 1, events
        assert events[-1] == "close", events
        assert events.count("end") == 1, events
        assert "error" not in events, events


def silence_limit(h: Harness) -> float | None:
    """The silence limit the connection's deadlines apply now."""
    c = h.connection
    return c.deadlines.silence_limit(c.phase, c.flow.for_body, c.transport.has_backlog)


def run_loop_until_a_writer_waits(h: Harness) -> None:
    """Run the loop's work until the listener thread waits for room in the wire."""

    def waiting() -> bool:
        h.loop.run()
        return h.connection.wire.waiting_writers > 0

    poll(waiting, 10, "the writer to wait for room", step=0.001)


def run_strand(h: Harness, worker: ListenerThread) -> None:
    """Run the listener calls queued so far on the worker, then the loop's share."""
    assert h.strand is not None
    worker.run(h.strand.run_all)
    h.loop.run()


# == "close" after "end", whenever the listener answers ====================================

ANSWER_POINTS = ["head", "data1", "data2", "data3", "end"]


@pytest.mark.parametrize("answer_at", ANSWER_POINTS)
@pytest.mark.parametrize("lagging", [False, True], ids=["in-step", "lagging"])
def test_pool_close_comes_after_end(answer_at: str, lagging: bool, worker: ListenerThread) -> None:
    """On a pool, in step with the loop or behind it, "close" is last and follows "end"."""
    h = Harness()
    recorder = Recorder(answer_at)
    h.server.on("request", recorder.on_request)
    h.receive(HEAD)
    for piece in PIECES:
        if not lagging:
            run_strand(h, worker)
        h.receive(piece)
    run_strand(h, worker)
    recorder.assert_ordered()
    assert h.sock.take_sent().startswith(OK)


@pytest.mark.parametrize("answer_at", ANSWER_POINTS)
def test_inline_close_comes_after_end(answer_at: str) -> None:
    h = Harness(inline=True)
    recorder = Recorder(answer_at)
    h.server.on("request", recorder.on_request)
    h.receive(HEAD)
    for piece in PIECES:
        h.receive(piece)
    recorder.assert_ordered()
    assert h.sock.take_sent().startswith(OK)


@pytest.mark.parametrize("inline", [False, True], ids=["pool", "inline"])
def test_answer_from_another_thread_while_end_is_posted(
    inline: bool, worker: ListenerThread
) -> None:
    """The race of issue 9: a response that ends as the loop posts "end".

    The old connection marked the request ended, then posted "end": a response finished in
    between posted "close" first. Here the response ends (on another thread) at the very
    moment "end" is posted, before it is queued.
    """
    h = Harness(inline=inline)
    # Inline listeners run as they are posted: the last "data" listener, which runs just
    # before "end" is posted, has another thread answer.
    recorder = Recorder("data3", lambda res: worker.run(lambda: res.send_all("ok")))
    if not inline:
        recorder.answer_at = "never"
    h.server.on("request", recorder.on_request)
    h.receive(HEAD + PIECES[0])
    if not inline:
        run_strand(h, worker)
    response = recorder.response
    assert response is not None

    def answer_when_end_is_posted(fn: Callable[..., object]) -> None:
        if getattr(fn, "__name__", "") == "_deliver_end":
            worker.run(lambda: response.send_all("ok"))

    if inline:
        h.receive(PIECES[1])
        h.receive(PIECES[2])
    else:
        assert h.strand is not None
        h.strand.on_post = answer_when_end_is_posted
        h.receive(PIECES[1] + PIECES[2])
        run_strand(h, worker)
    h.loop.run()
    recorder.assert_ordered()
    assert h.sock.take_sent().startswith(OK)


def test_answer_from_another_thread_after_end(worker: ListenerThread) -> None:
    h = Harness()
    recorder = Recorder("never")
    h.server.on("request", recorder.on_request)
    h.receive(HEAD + b"".join(PIECES))
    run_strand(h, worker)
    assert recorder.events == ["request", "data", "end"]
    assert recorder.response is not None
    response = recorder.response
    other = ListenerThread()
    try:
        other.run(lambda: response.send_all("late"))
    finally:
        other.stop()
    run_strand(h, worker)
    recorder.assert_ordered()
    assert h.sock.take_sent().endswith(b"late")


# == output backpressure ========================================================================


def test_writer_waits_above_high_water_until_the_client_reads(worker: ListenerThread) -> None:
    h = Harness(write_buffer_size=1000)
    produced = []
    release = threading.Event()

    def pieces() -> Iterator[bytes]:
        for index in range(10):
            produced.append(index)
            yield bytes([65 + index]) * 600

    def on_request(server: object, req: Request, res: Response) -> None:
        res.send_stream(pieces(), 6000)
        release.set()

    h.server.on("request", on_request)
    h.sock.window = 0  # the client reads nothing
    h.receive(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    assert h.strand is not None
    worker.start(h.strand.run_all)
    # The writer fills the buffer to its mark, then waits for the loop, which cannot send.
    run_loop_until_a_writer_waits(h)
    h.loop.run()
    assert len(produced) <= 3, produced
    assert h.interest & EVENT_WRITE  # the loop waits to send the backlog
    assert not release.is_set()
    # The client reads: the loop sends, the writer goes on, until the stream is done.
    h.sock.window = None

    def finished() -> bool:
        h.writable()
        return release.is_set()

    poll(finished, 10, "the writer to finish", step=0.001)
    worker.wait()
    h.loop.run()
    data = h.sock.take_sent()
    assert data.startswith(OK)
    body = data.split(b"\r\n\r\n", 1)[1]
    assert body == b"".join(bytes([65 + i]) * 600 for i in range(10))
    assert not h.interest & EVENT_WRITE


def test_inline_stream_is_pulled_as_the_client_reads() -> None:
    h = Harness(inline=True, write_buffer_size=1000)
    produced = []

    def pieces() -> Iterator[bytes]:
        for index in range(10):
            produced.append(index)
            yield b"x" * 600

    h.server.on("request", lambda server, req, res: res.send_stream(pieces(), 6000))
    h.sock.window = 700
    h.receive(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    assert len(produced) <= 3, produced
    assert h.interest & EVENT_WRITE
    h.sock.window = None
    while h.interest & EVENT_WRITE:
        h.writable()
    assert len(produced) == 10
    assert h.sock.take_sent().endswith(b"x" * 600)


# == lingering close ==============================================================================


def test_lingering_close_after_a_closing_response() -> None:
    h = Harness(inline=True)
    h.server.on("request", lambda server, req, res: res.send_all("bye"))
    h.receive(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
    assert h.sock.take_sent().endswith(b"bye")
    # FIN sent, the socket still read (and what comes discarded) until the client closes.
    assert h.sock.shut_down_write
    assert not h.sock.closed
    assert h.interest == EVENT_READ
    assert silence_limit(h) == h.context.options.linger_timeout
    h.receive(b"GET /ignored HTTP/1.1\r\n\r\n")
    assert h.sock.take_sent() == b""
    assert not h.sock.closed
    h.receive(b"")
    assert h.sock.closed
    assert h.forgotten == [h.connection]
    assert h.interest == 0


def test_rejected_request_is_answered_then_lingers() -> None:
    h = Harness(inline=True)
    h.receive(b"GET / HTTP/1.1\r\nHost: h\r\nBad Header: x\r\n\r\n")
    assert h.sock.take_sent().startswith(b"HTTP/1.1 400 ")
    assert h.sock.shut_down_write
    h.receive(b"")
    assert h.sock.closed


# == peer reset at each stage =====================================================================

RESET = ConnectionResetError(104, "Connection reset by peer")


def test_reset_before_the_head_is_complete() -> None:
    h = Harness(inline=True)
    calls: list[object] = []
    h.server.on("request", lambda *args: calls.append(args))
    h.receive(b"GET / HTTP/1.1\r\nHo")
    h.receive(RESET)
    assert h.sock.closed
    assert h.forgotten == [h.connection]
    assert calls == []


@pytest.mark.parametrize("inline", [False, True], ids=["pool", "inline"])
def test_reset_mid_body(inline: bool, worker: ListenerThread) -> None:
    h = Harness(inline=inline)
    recorder = Recorder("never")
    h.server.on("request", recorder.on_request)
    h.receive(HEAD + PIECES[0])
    h.receive(RESET)
    if not inline:
        run_strand(h, worker)
    assert recorder.events == ["request", "data", "error", "close"]
    assert isinstance(recorder.errors[0], ClientDisconnected)
    assert h.sock.closed


def test_reset_while_the_listener_prepares_the_response(worker: ListenerThread) -> None:
    h = Harness()
    recorder = Recorder("never")
    h.server.on("request", recorder.on_request)
    h.receive(HEAD + b"".join(PIECES))
    h.receive(RESET)
    run_strand(h, worker)
    # The request was whole: "end", then "close" (the response can no longer be sent).
    assert recorder.events == ["request", "data", "end", "close"]
    response = recorder.response
    assert response is not None
    worker.run(lambda: response.send_all("too late"))  # dropped, not an error
    run_strand(h, worker)
    assert recorder.events.count("close") == 1
    assert h.sock.take_sent() == b""


def test_reset_while_the_response_is_sent(worker: ListenerThread) -> None:
    h = Harness(write_buffer_size=1000)
    recorder = Recorder("never")
    outcome: list[BaseException] = []

    def on_request(server: object, req: Request, res: Response) -> None:
        recorder.on_request(server, req, res)
        try:
            res.send_chunked(b"y" * 500 for _ in range(100))
        except ClientDisconnected as exc:
            outcome.append(exc)
            raise

    h.server.on("request", on_request)
    h.sock.window = 600
    h.receive(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    assert h.strand is not None
    worker.start(h.strand.run_all)
    run_loop_until_a_writer_waits(h)
    h.sock.send_error = RESET
    h.sock.window = None
    h.writable()
    worker.wait()
    run_strand(h, worker)
    assert isinstance(outcome[0], ClientDisconnected)
    assert h.sock.closed
    # The listener let ClientDisconnected out: the request's later events are dropped, but
    # "close" is delivered.
    assert recorder.events == ["request", "close"]


def test_reset_while_lingering() -> None:
    h = Harness(inline=True)
    h.server.on("request", lambda server, req, res: res.send_all("bye"))
    h.receive(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
    assert h.sock.shut_down_write
    h.receive(RESET)
    assert h.sock.closed
    assert h.forgotten == [h.connection]


def _closed_cause(h: Harness) -> str:
    assert h.sock.closed
    (cause,) = h.context.counters.snapshot().connections_closed
    return cause


@pytest.mark.parametrize(
    "error",
    [RESET, BrokenPipeError(32, "Broken pipe"), ConnectionAbortedError(103, "aborted")],
    ids=["ECONNRESET", "EPIPE", "ECONNABORTED"],
)
def test_a_reset_by_the_client_is_counted_as_client_reset(error: OSError) -> None:
    h = Harness(inline=True)
    h.server.on("request", lambda server, req, res: res.send_all("hi"))
    h.receive(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    h.receive(error)
    assert _closed_cause(h) == "client_reset"


def test_a_reset_found_by_a_send_is_counted_as_client_reset() -> None:
    h = Harness(inline=True)
    h.server.on("request", lambda server, req, res: res.send_all("hi"))
    h.sock.send_error = BrokenPipeError(32, "Broken pipe")
    h.receive(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    assert _closed_cause(h) == "client_reset"


def test_another_socket_error_is_counted_as_error() -> None:
    h = Harness(inline=True)
    h.receive(b"GET / HTTP/1.1\r\nHo")
    h.receive(OSError(errno.ENOBUFS, "No buffer space available"))
    assert _closed_cause(h) == "error"


def test_a_reset_while_lingering_keeps_the_servers_cause() -> None:
    h = Harness(inline=True)
    h.server.on("request", lambda server, req, res: res.send_all("bye"))
    h.receive(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
    h.receive(RESET)
    assert _closed_cause(h) == "server"  # it was closing already, after its response


# == listener errors ==============================================================================


@pytest.mark.parametrize("inline", [False, True], ids=["pool", "inline"])
def test_listener_error_is_a_500_and_close_still_comes_once(
    inline: bool, worker: ListenerThread, caplog: pytest.LogCaptureFixture
) -> None:
    h = Harness(inline=inline)
    recorder = Recorder("never")

    def on_request(server: object, req: Request, res: Response) -> None:
        recorder.on_request(server, req, res)
        raise RuntimeError("boom")

    h.server.on("request", on_request)
    h.receive(HEAD + b"".join(PIECES))
    if not inline:
        run_strand(h, worker)
    h.loop.run()
    assert h.sock.take_sent().startswith(b"HTTP/1.1 500 ")
    # Later events of the failed request are dropped, but "close".
    assert recorder.events == ["request", "close"]
    assert "boom" in caplog.text


# == keep-alive accounting =====================================================================


def test_keep_alive_counts_from_the_end_of_the_response(worker: ListenerThread) -> None:
    h = Harness(keep_alive_timeout=5, client_timeout=7)
    recorder = Recorder("never")
    h.server.on("request", recorder.on_request)
    h.receive(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    run_strand(h, worker)
    # The application owes the next move: no timeout runs.
    assert silence_limit(h) is None
    before = h.connection.deadlines.last_active
    response = recorder.response
    assert response is not None
    worker.run(lambda: response.send_all("ok"))
    h.loop.run()
    # The listener thread sent the response itself, without waking the loop; the sweep's
    # look at the deadlines takes its report first.
    h.connection.check_deadlines(time.monotonic())
    assert silence_limit(h) == 5
    assert h.connection.deadlines.last_active > before


def test_a_large_body_is_queued_and_kept_without_a_copy() -> None:
    # A 1 MiB send_all reaches the socket as the very object the listener gave, and what the
    # kernel does not take is kept as a view of it, not a copy.
    body = b"b" * (1 << 20)
    taken: list[object] = []
    h = Harness(inline=True)
    h.server.on("request", lambda ev, req, res: res.send_all(body))
    original = h.sock.send

    def send(data: bytes | bytearray | memoryview) -> int:
        taken.append(data)
        return original(data)

    h.sock.send = send  # type: ignore[method-assign]
    h.sock.window = 1000
    h.receive(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert any(piece is body for piece in taken)
    backlog = list(h.connection.transport._backlog or ())
    assert backlog
    assert all(view.obj is body for view in backlog)
    assert len(body) - 1000 < sum(map(len, backlog)) < len(body)  # the head went
    h.connection.close()
    assert not h.connection.transport.has_backlog


def test_a_pipelining_connection_gets_a_slice_of_the_loop_per_pass() -> None:
    # 20 pipelined requests in one read: 8 are started in this step, the rest in later passes
    # (after the other ready connections), and nothing more is read meanwhile.
    started: list[str] = []
    h = Harness(inline=True)
    h.server.on("request", lambda ev, req, res: (started.append(req.target), res.send_all("k")))
    h.sock.feed(b"".join(b"GET /%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(20)))
    h.connection.on_ready(EVENT_READ)
    assert len(started) == 8
    assert not h.interest & EVENT_READ  # reading waits until the buffered requests are in
    h.loop.run()
    assert started == [f"/{i}" for i in range(20)]
    assert h.interest & EVENT_READ
    assert h.sock.take_sent().count(b"HTTP/1.1 200 OK") == 20


@pytest.mark.parametrize("count", [8, 9])
def test_a_connection_yields_only_when_a_request_beyond_its_slice_is_there(count: int) -> None:
    # Eight pipelined requests fit the slice: no extra pass. A ninth is held, not started,
    # until the connection's next turn.
    started: list[str] = []
    h = Harness(inline=True)
    h.server.on("request", lambda ev, req, res: (started.append(req.target), res.send_all("k")))
    h.sock.feed(b"".join(b"GET /%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(count)))
    h.connection.on_ready(EVENT_READ)
    assert len(started) == 8
    assert bool(h.interest & EVENT_READ) is (count == 8)
    h.loop.run()
    assert started == [f"/{i}" for i in range(count)]
    assert h.interest & EVENT_READ
    assert h.sock.take_sent().count(b"HTTP/1.1 200 OK") == count


# == memory ========================================================================================


@pytest.mark.parametrize("inline", [False, True], ids=["pool", "inline"])
def test_a_finished_exchange_leaves_nothing_for_the_cyclic_collector(
    inline: bool, worker: ListenerThread
) -> None:
    """Refcounting frees each request, response and exchange as soon as it is over."""
    import gc

    h = Harness(inline=inline)
    h.server.on("request", lambda server, req, res: res.send_all("ok"))
    gc.collect()
    gc.disable()
    # Only this test's objects count: threads other tests left behind (a WSGI adapter's idle
    # threads exit after 30 s) may leave cyclic garbage of their own meanwhile.
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for _ in range(50):
            h.receive(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
            if not inline:
                run_strand(h, worker)
            assert h.sock.take_sent().endswith(b"ok")
        gc.collect()
        kinds = (Exchange, Request, Response, Headers, ResponseHead)
        cyclic = [type(o).__name__ for o in gc.garbage if isinstance(o, kinds)]
        assert cyclic == []
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


# == the direct send: a whole response ended on a listener thread leaves from that thread ======

GET = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"
HELLO = b"HTTP/1.1 200 OK"


def loop_calls(h: Harness) -> int:
    """How many calls other threads queued for the loop."""
    return h.loop._calls.qsize()


def test_a_whole_response_leaves_from_the_listener_thread_without_the_loop(
    worker: ListenerThread,
) -> None:
    h = Harness()
    assert h.strand is not None
    h.server.on("request", lambda _s, req, res: res.send_all("one"))
    h.receive(GET)
    worker.run(h.strand.run_all)
    # Sent by the listener thread: the loop was not asked for anything, not even a wake-up.
    assert h.sock.take_sent().startswith(HELLO)
    assert loop_calls(h) == 0
    assert h.connection.wire.sent_directly
    # The next request reaches the loop before the report: the report is taken first, so
    # the connection moved on from the first response before the second request starts.
    h.sock.feed(GET)
    h.connection.on_ready(EVENT_READ)
    assert not h.connection.wire.sent_directly
    assert len(h.strand.tasks) == 1  # the second request, "request" and "end" in one task
    worker.run(h.strand.run_all)
    h.loop.run()
    assert h.sock.take_sent().startswith(HELLO)
    h.connection.check_deadlines(time.monotonic())
    assert h.connection.phase is IDLE


def queued_task_names(h: Harness) -> list[str]:
    assert h.strand is not None
    return [fn.__name__ for fn, _ in h.strand.tasks]


def test_a_request_without_a_body_reaches_the_pool_in_one_task(worker: ListenerThread) -> None:
    """Its end is parsed with its head: "request" and "end" go in one strand task, in order,
    and the request is over for the exchange (the response's end posts "close")."""
    h = Harness()
    recorder = Recorder("end")
    h.server.on("request", recorder.on_request)
    h.receive(GET + GET)  # two pipelined: the second waits for the first's response
    assert queued_task_names(h) == ["_deliver_request_and_end"]
    run_strand(h, worker)
    assert recorder.events == ["request", "end", "close"]
    # The loop started the second request (its response is held to leave with the next).
    assert queued_task_names(h) == ["_deliver_request_and_end"]
    run_strand(h, worker)
    assert recorder.events == ["request", "end", "close"] * 2
    assert h.sock.take_sent().count(HELLO) == 2


def test_a_request_with_a_body_or_trailers_posts_its_end_alone(worker: ListenerThread) -> None:
    h = Harness()
    recorder = Recorder("end")
    h.server.on("request", recorder.on_request)
    h.receive(HEAD + b"".join(PIECES))
    assert queued_task_names(h) == ["_deliver_request", "_deliver_data", "_deliver_end"]
    run_strand(h, worker)
    assert recorder.events == ["request", "data", "end", "close"]
    assert h.sock.take_sent().startswith(OK)
    # No body but trailers: "end" carries them, in a task of its own.
    chunked = b"POST /t HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
    h.receive(chunked + b"0\r\nX-Sum: 1\r\n\r\n")
    assert queued_task_names(h) == ["_deliver_request", "_deliver_end"]
    requests: list[Request] = []
    h.server.on("request", lambda _s, req, _r: requests.append(req))
    run_strand(h, worker)
    trailers = requests[0].trailers
    assert trailers is not None
    assert trailers.get("x-sum") == "1"


def test_inline_a_request_without_a_body_still_reads_its_end_after_the_listeners() -> None:
    """Inline, "request" runs as it is posted, before the loop reads the end: a listener that
    answers at once sees the request not yet over, as before."""
    h = Harness(inline=True)
    recorder = Recorder("head")
    h.server.on("request", recorder.on_request)
    h.receive(GET)
    assert recorder.events == ["request", "end", "close"]
    assert h.sock.take_sent().startswith(HELLO)


def test_a_partial_direct_send_leaves_the_rest_to_the_loop(worker: ListenerThread) -> None:
    h = Harness()
    h.server.on("request", lambda _s, req, res: res.send_all("x" * 1000))
    h.receive(GET)
    h.sock.window = 10
    assert h.strand is not None
    worker.run(h.strand.run_all)
    assert len(h.sock.sent) == 10  # the kernel took 10 bytes from the listener thread
    assert loop_calls(h) == 1  # the rest is the loop's: a flush was asked for at once
    h.sock.window = None
    h.loop.run()
    response = h.sock.take_sent()
    assert response.startswith(HELLO)
    assert response.endswith(b"x" * 1000)
    assert h.connection.phase is IDLE


def test_a_client_that_does_not_read_gets_the_response_through_the_loop(
    worker: ListenerThread,
) -> None:
    h = Harness()
    h.server.on("request", lambda _s, req, res: res.send_all("y" * 500))
    h.receive(GET)
    h.sock.window = 0  # the kernel takes nothing: the direct send would block
    assert h.strand is not None
    worker.run(h.strand.run_all)
    assert h.sock.sent == b""
    h.loop.run()  # the loop's send finds the same: a backlog, written when writable
    assert h.connection.transport.has_backlog
    assert h.interest & EVENT_WRITE
    h.sock.window = None
    h.writable()
    assert h.sock.take_sent().endswith(b"y" * 500)
    assert not h.interest & EVENT_WRITE
    # The emptied backlog's deque goes with it: an idle connection keeps none.
    assert h.connection.transport._backlog is None


def test_a_close_waits_for_a_direct_send_under_way(worker: ListenerThread) -> None:
    # The loop closing the socket while a listener thread sends on it: the close takes the
    # wire's lock first, so the descriptor is closed only once the send returned.
    h = Harness()
    entered, release = threading.Event(), threading.Event()
    order: list[str] = []
    plain_send, plain_close = h.sock.send, h.sock.close

    def send(data: bytes | bytearray | memoryview) -> int:
        entered.set()
        assert release.wait(10)
        order.append("send")
        return plain_send(data)

    def close() -> None:
        order.append("close")
        plain_close()

    h.sock.send = send  # type: ignore[method-assign]
    h.sock.close = close  # type: ignore[method-assign]
    h.server.on("request", lambda _s, req, res: res.send_all("z"))
    h.receive(GET)
    assert h.strand is not None
    worker.start(h.strand.run_all)
    assert entered.wait(10)
    closer = threading.Thread(target=h.connection.close)
    closer.start()
    poll(lambda: h.connection.closed, 10, "the close to start")
    assert order == []  # the close is held at the wire's lock
    release.set()
    closer.join(10)
    worker.wait()
    assert order == ["send", "close"]
    assert h.sock.take_sent().startswith(HELLO)


def test_a_direct_send_on_a_closed_connection_sends_nothing(worker: ListenerThread) -> None:
    h = Harness()
    recorder = Recorder("never")
    h.server.on("request", recorder.on_request)
    h.receive(GET)
    assert h.strand is not None
    worker.run(h.strand.run_all)
    h.connection.close()
    response = recorder.response
    assert response is not None
    worker.run(lambda: response.send_all("late"))  # dropped: the output is closed
    assert h.sock.sent == b""


@pytest.mark.parametrize("why", ["the response closes", "the client closed"])
def test_the_loop_is_woken_when_it_waits_for_a_direct_send(
    worker: ListenerThread, why: str
) -> None:
    h = Harness()
    assert h.strand is not None
    if why == "the response closes":

        def answer(_s: object, req: Request, res: Response) -> None:
            res.set_header("Connection", "close")
            res.send_all("bye")

        h.server.on("request", answer)
    else:
        h.server.on("request", lambda _s, req, res: res.send_all("hi"))
    h.receive(GET)
    if why == "the client closed":
        h.receive(b"")
    worker.run(h.strand.run_all)
    assert h.sock.take_sent().startswith(HELLO)
    assert loop_calls(h) == 1  # the report was asked for at once
    h.loop.run()
    assert h.sock.shut_down_write or h.sock.closed  # the connection closes


# == a pipelined burst on a pool: its responses are held for one send (_sender) ================


def answer_pipelined(h: Harness, worker: ListenerThread) -> None:
    """Run the request the loop started on the listener thread, then the loop's flush."""
    assert h.strand is not None
    assert h.strand.tasks, "no request was started"
    worker.run(h.strand.run_all)
    h.loop.run()


@pytest.mark.parametrize(("buffer", "sends"), [(256 * 1024, 1), (100, 3)])
def test_a_pipelined_burst_on_a_pool_leaves_in_one_send(
    worker: ListenerThread, buffer: int, sends: int
) -> None:
    # With the default buffer, each response is held until the next request's is ready; with
    # a 100-byte one, a response is over the hold's limit (half the buffer) and goes alone.
    h = Harness(write_buffer_size=buffer)
    h.server.on("request", lambda _s, req, res: res.send_all("hi"))
    h.receive(GET * 3)
    for left in (2, 1):
        answer_pipelined(h, worker)
        if sends == 1:
            assert h.sock.sent == b""  # held: the next request is started, its answer awaited
        assert h.connection.request_in_flight(), left
    answer_pipelined(h, worker)
    assert h.sock.take_sent().count(HELLO) == 3
    assert h.sock.sends == sends
    h.connection.check_deadlines(time.monotonic())  # the report of a direct send, if any
    assert h.connection.phase is IDLE
    h.loop.fire_timers()  # the hold's timer, if any, finds nothing left to send
    assert h.sock.sent == b""
    assert h.sock.sends == sends


def test_held_responses_leave_when_the_hold_time_is_up(worker: ListenerThread) -> None:
    h = Harness()
    responses: list[Response] = []

    def answer_the_first(_s: object, req: Request, res: Response) -> None:
        if responses:
            responses.append(res)  # the second waits (a slow listener)
        else:
            responses.append(res)
            res.send_all("first")

    h.server.on("request", answer_the_first)
    h.receive(GET * 2)
    answer_pipelined(h, worker)
    assert h.sock.sent == b""
    assert [timer.when for timer in h.loop.timers] == [HOLD_TIME]
    assert h.loop.fire_timers() == 1
    assert h.sock.take_sent().startswith(HELLO)  # the first, alone: its hold is over
    assert h.connection.request_in_flight()
    assert h.strand is not None
    worker.run(h.strand.run_all)  # the second request's listener, which does not answer yet
    worker.run(lambda: responses[1].send_all("second"))
    h.loop.run()
    assert h.sock.take_sent().endswith(b"second")
    h.connection.check_deadlines(time.monotonic())  # the report of its direct send
    assert h.connection.phase is IDLE


def test_held_responses_leave_before_a_close_that_their_report_makes(
    worker: ListenerThread,
) -> None:
    # Two pipelined requests, a third cut short by the client's end: the report of the
    # second response finds the cut request and closes at once (no one is left to read an
    # error), and the two responses, held until then, leave before the socket closes.
    h = Harness()
    h.server.on("request", lambda _s, req, res: res.send_all("hi"))
    h.receive(GET * 2 + b"GET / HT")
    h.receive(b"")
    answer_pipelined(h, worker)
    assert h.sock.sent == b""
    assert not h.sock.closed
    answer_pipelined(h, worker)
    assert h.sock.take_sent().count(HELLO) == 2
    assert h.sock.closed


def test_a_closing_response_in_a_burst_is_not_held(worker: ListenerThread) -> None:
    h = Harness()

    def answer(_s: object, req: Request, res: Response) -> None:
        res.set_header("Connection", "close")
        res.send_all("bye")

    h.server.on("request", answer)
    h.receive(GET * 2)
    answer_pipelined(h, worker)
    assert h.sock.take_sent().startswith(HELLO)
    assert h.sock.shut_down_write
    assert h.loop.timers == []


def test_a_drain_after_an_unreported_direct_send_keeps_the_connection_for_its_next_request(
    worker: ListenerThread,
) -> None:
    # The server drains while the report of a direct send is still pending: that response let
    # the connection go on, so it stays open and the next request gets "Connection: close".
    h = Harness()
    assert h.strand is not None
    h.server.on("request", lambda _s, req, res: res.send_all("one"))
    h.receive(GET)
    worker.run(h.strand.run_all)
    assert h.connection.wire.sent_directly
    h.connection.stop_keep_alive()
    assert not h.connection.flow.closing
    assert not h.sock.shut_down_write
    h.receive(GET)
    worker.run(h.strand.run_all)
    h.loop.run()
    first, second = h.sock.take_sent().split(b"HTTP/1.1 200 OK")[1:]
    assert b"connection: close" not in first.lower()
    assert b"connection: close" in second.lower()
    assert h.sock.shut_down_write  # closed after the response that said so
