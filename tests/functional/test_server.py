"""Server lifecycle: binding, options, threads, shutdown from anywhere, closing."""

from __future__ import annotations

import os
import signal
import socket
import threading

import pytest

import vestespy
from support import RawClient, serve


def hello(server: vestespy.Server, req: vestespy.Request, res: vestespy.Response) -> None:
    res.send_all("hello")


def test_port_zero_binds_a_real_port_and_reports_it() -> None:
    with vestespy.Server(("127.0.0.1", 0)) as server:
        host, port = server.address
        assert host == "127.0.0.1"
        assert port > 0
        probe = socket.create_connection((host, port), timeout=5)  # listening already
        probe.close()


@pytest.mark.parametrize("port", [65536, 70000, 99999, -1, 2**32])
def test_a_port_outside_16_bits_is_refused(port: int) -> None:
    # getaddrinfo keeps 16 bits: 70000 would bind 4464 without a word.
    with pytest.raises(ValueError, match=f"port must be in 0-65535.*not {port}"):
        vestespy.Server(("127.0.0.1", port))


def test_a_port_that_is_not_an_int_is_refused() -> None:
    with pytest.raises(TypeError, match="port must be an int"):
        vestespy.Server(("127.0.0.1", "8080"))  # type: ignore[arg-type]


def test_the_highest_port_is_accepted() -> None:
    try:
        server = vestespy.Server(("127.0.0.1", 65535))
    except OSError as exc:  # in use here: the check itself passed
        pytest.skip(f"port 65535 is taken: {exc}")
    with server:
        assert server.address[1] == 65535


def test_ipv6_loopback(backend: str) -> None:
    if not socket.has_ipv6:
        pytest.skip("this Python has no IPv6 support")
    try:
        socket.create_server(("::1", 0), family=socket.AF_INET6).close()
    except OSError as exc:
        pytest.skip(f"no IPv6 loopback here: {exc}")
    with serve(hello, select=backend, host="::1") as thread:
        assert thread.address[0] == "::1"
        with RawClient(thread.address) as client:
            assert client.request().body == b"hello"


def test_unknown_option_is_a_type_error_and_bad_value_a_value_error() -> None:
    with pytest.raises(TypeError, match="keep_alive_timeout"):
        vestespy.Server(("127.0.0.1", 0), keepalive=5)
    with pytest.raises(ValueError, match="write_buffer_size"):
        vestespy.Server(("127.0.0.1", 0), write_buffer_size=-1)
    with pytest.raises(ValueError, match="max_body_size"):
        vestespy.ServerOptions(max_body_size=-1)
    assert vestespy.ServerOptions().max_body_size is None  # no limit unless asked


def test_options_are_applied() -> None:
    with vestespy.Server(("127.0.0.1", 0), keep_alive_timeout=3, max_workers=0) as server:
        assert server.options.keep_alive_timeout == 3
        assert server.max_workers == 0
        assert server.backend == vestespy.available_backends()[0]


@pytest.mark.parametrize(("workers", "expect_loop_thread"), [(0, True), (3, False)])
def test_which_thread_runs_listeners(workers: int, expect_loop_thread: bool) -> None:
    names: list[str] = []

    def onrequest(server: vestespy.Server, req: vestespy.Request, res: vestespy.Response) -> None:
        names.append(threading.current_thread().name)
        res.send_all("ok")

    with serve(onrequest, max_workers=workers) as thread, RawClient(thread.address) as client:
        client.request()
    assert (names[0] == "test-server") is expect_loop_thread
    assert names[0].startswith("vestespy-worker") is not expect_loop_thread


def test_shutdown_from_a_listener(workers: int) -> None:
    server = vestespy.Server(("127.0.0.1", 0), max_workers=workers)

    def onrequest(srv: vestespy.Server, req: vestespy.Request, res: vestespy.Response) -> None:
        res.send_all("bye")
        srv.shutdown()

    server.on("request", onrequest)
    runner = threading.Thread(target=server.serve_forever)
    runner.start()
    with RawClient(server.address) as client:
        assert client.request().body == b"bye"
    runner.join(10)
    assert not runner.is_alive()
    server.close()


def test_shutdown_from_a_signal_handler() -> None:
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers run on the main thread")
    server = vestespy.Server(("127.0.0.1", 0))
    server.on("request", hello)
    answered: list[bytes] = []

    def client_then_signal() -> None:
        with RawClient(server.address) as client:
            answered.append(client.request().body)
        os.kill(os.getpid(), signal.SIGUSR1)

    previous = signal.signal(signal.SIGUSR1, lambda signum, frame: server.shutdown())
    try:
        helper = threading.Thread(target=client_then_signal)
        helper.start()
        server.serve_forever()  # returns once the handler has run
        helper.join(10)
    finally:
        signal.signal(signal.SIGUSR1, previous)
        server.close()
    assert answered == [b"hello"]


def test_context_manager_closes_sockets_and_waits_for_the_loop() -> None:
    with vestespy.Server(("127.0.0.1", 0)) as server:
        server.on("request", hello)
        runner = threading.Thread(target=server.serve_forever)
        runner.start()
        address = server.address
        idle = RawClient(address)
        assert idle.request().body == b"hello"
    # close() from another thread stopped the loop and waited for serve_forever to return.
    runner.join(10)
    assert not runner.is_alive()
    assert idle.is_closed_by_server()
    idle.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(address, timeout=5)
    server.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        server.serve_forever()


def test_serving_twice_at_once_is_an_error() -> None:
    with serve(hello) as thread, pytest.raises(RuntimeError, match="already serving"):
        thread.server.serve_forever()


def test_handler_subclass_is_used() -> None:
    class TimedRequest(vestespy.Request):
        def __init__(self, **kwargs: object) -> None:
            super().__init__(**kwargs)  # type: ignore[arg-type]
            self.tag = "custom"

    seen: list[object] = []

    def onrequest(server: vestespy.Server, req: vestespy.Request, res: vestespy.Response) -> None:
        seen.append(req)
        res.send_all(getattr(req, "tag", "none"))

    with serve(onrequest, handler=TimedRequest) as thread, RawClient(thread.address) as client:
        assert client.request().body == b"custom"
    assert isinstance(seen[0], TimedRequest)


@pytest.mark.parametrize("workers", [0, 2])
def test_close_from_a_listener(workers: int) -> None:
    server = vestespy.Server(("127.0.0.1", 0), max_workers=workers)

    def onrequest(srv: vestespy.Server, req: vestespy.Request, res: vestespy.Response) -> None:
        res.send_all("closing")
        srv.close()

    server.on("request", onrequest)
    runner = threading.Thread(target=server.serve_forever)
    runner.start()
    address = server.address
    with RawClient(address) as client:
        assert client.request().body == b"closing"
    runner.join(10)
    assert not runner.is_alive()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(address, timeout=5)


def test_a_blocked_listener_does_not_hold_up_other_connections(backend: str) -> None:
    # The pool runs a burst of requests on the thread already awake; a listener that blocks
    # must still not keep the next request (on another connection) waiting behind it: here
    # the first listener waits for the second to run, which deadlocks unless another thread
    # is woken for it.
    second_ran = threading.Event()

    def listener(server: vestespy.Server, req: vestespy.Request, res: vestespy.Response) -> None:
        if req.path == "/first":
            res.send_all("first" if second_ran.wait(10) else "timed out")
        else:
            second_ran.set()
            res.send_all("second")

    with serve(listener, select=backend, max_workers=50) as thread:
        first, second = RawClient(thread.address), RawClient(thread.address)
        with first, second:
            first.send(b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n")
            second.send(b"GET /second HTTP/1.1\r\nHost: x\r\n\r\n")
            assert second.read_response().body == b"second"
            assert first.read_response().body == b"first"
