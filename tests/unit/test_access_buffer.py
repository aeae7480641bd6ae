"""The command's buffered access log: batching, whole-line writes, time, failures, the loop."""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Iterator

import pytest

from support import poll
from vestespy import Headers, Request
from vestespy._access_buffer import (
    PIPE_BUF,
    BufferedAccessLog,
    CommandAccessHandler,
    LineWriter,
    atomic_write_limit,
    command_access_fd,
)
from vestespy._backends import create_backend
from vestespy._loop import EventLoop
from vestespy.access_log import FIELDS, AccessLogFormatter, _compile
from vestespy.cli import _parse_config as parse_config


class FakeFd:
    """A descriptor's writes, recorded; at most ``most`` bytes taken per call."""

    def __init__(self, most: int | None = None, errors: list[BaseException] | None = None):
        self.writes: list[bytes] = []
        self.most = most
        self.errors = errors or []  # raised, one per call, before anything is written
        self.waited = 0

    def write(self, fd: int, data: memoryview) -> int:
        if self.errors:
            raise self.errors.pop(0)
        taken = bytes(data[: self.most] if self.most else data)
        self.writes.append(taken)
        return len(taken)

    def wait(self, fd: int) -> None:
        self.waited += 1

    @property
    def data(self) -> bytes:
        return b"".join(self.writes)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def writer(
    fake: FakeFd, size: int = 64 * 1024, limit: int | None = None, **kw: object
) -> LineWriter:
    return LineWriter(
        99,
        size,
        write_limit=limit,
        write=fake.write,
        wait_writable=fake.wait,
        **kw,  # type: ignore[arg-type]
    )


def lines(count: int, width: int = 90) -> list[str]:
    return [f"{i:06d} " + "x" * (width - 8) + "\n" for i in range(count)]


def test_a_burst_of_10000_lines_costs_a_handful_of_writes() -> None:
    fake = FakeFd()
    out = writer(fake)
    sent = lines(10_000)
    began = [out.add(line[:-1]) for line in sent]
    out.flush()
    assert began.count(True) == len(fake.writes)  # each batch asked once for a flush
    assert fake.data == "".join(sent).encode()
    assert len(fake.writes) <= 15  # 900 KB in 64 KiB batches
    assert all(w.endswith(b"\n") for w in fake.writes)
    assert max(map(len, fake.writes)) <= 64 * 1024 + 90


def test_a_pipe_gets_writes_of_at_most_pipe_buf_cut_at_line_ends() -> None:
    fake = FakeFd()
    out = writer(fake, limit=4096)
    sent = lines(1000, width=97)
    for line in sent:
        out.add(line[:-1])
    out.flush()
    assert fake.data == "".join(sent).encode()
    assert all(len(w) <= 4096 and w.endswith(b"\n") for w in fake.writes)
    # As full as whole lines allow: 42 lines of 97 bytes.
    assert len(fake.writes[0]) == 42 * 97


def test_a_line_longer_than_the_limit_is_written_alone() -> None:
    fake = FakeFd()
    out = writer(fake, limit=4096)
    long_line = "L" * 5000 + "\n"
    for line in ("a\n", "b\n", long_line, "c\n"):
        out.add(line[:-1])
    out.flush()
    assert fake.writes == [b"a\nb\n", long_line.encode(), b"c\n"]


def test_the_descriptor_kind_sets_the_limit(tmp_path: object) -> None:
    read_fd, write_fd = os.pipe()
    path = os.path.join(str(tmp_path), "file")
    file_fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        assert atomic_write_limit(write_fd) == PIPE_BUF
        assert atomic_write_limit(file_fd) is None
        assert LineWriter(write_fd).write_limit == PIPE_BUF
        assert LineWriter(file_fd).write_limit is None
    finally:
        for fd in (read_fd, write_fd, file_fd):
            os.close(fd)


def test_a_batch_older_than_the_interval_is_written_by_the_next_line() -> None:
    fake = FakeFd()
    clock = Clock()
    out = writer(fake, clock=clock, interval=1.0)
    assert out.add("one") is True
    clock.now += 0.5
    assert out.add("two") is False
    assert fake.writes == []
    clock.now += 0.499
    out.add("three")
    assert fake.writes == []
    clock.now += 0.001
    out.add("four")
    assert fake.writes == [b"one\ntwo\nthree\nfour\n"]
    assert out.pending == 0
    assert out.add("five") is True  # a new batch, timed from now


def test_partial_writes_complete_the_line_at_once() -> None:
    fake = FakeFd(most=7)
    out = writer(fake, limit=4096)
    sent = lines(100, width=50)
    for line in sent:
        out.add(line[:-1])
    out.flush()
    assert fake.data == "".join(sent).encode()
    assert out.dropped == 0


def test_eintr_is_retried_and_eagain_waits_for_the_descriptor() -> None:
    fake = FakeFd(errors=[InterruptedError(), BlockingIOError(), BlockingIOError()])
    out = writer(fake)
    out.add("one")
    out.add("two")
    out.flush()
    assert fake.data == b"one\ntwo\n"
    assert fake.waited == 2
    assert out.dropped == 0


def test_a_failed_descriptor_loses_the_batch_counted_and_logged_once_a_minute(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    fake = FakeFd(errors=[BrokenPipeError(32, "Broken pipe")] * 3)
    out = writer(fake, clock=clock)
    caplog.set_level(logging.WARNING, "vestespy.error")
    for line in ("a", "b", "c"):
        out.add(line)
    out.flush()
    assert out.dropped == 3
    assert [r.getMessage() for r in caplog.records] == [
        "access log: 3 lines lost: cannot write to file descriptor 99: [Errno 32] Broken pipe"
    ]
    out.add("d")
    out.flush()
    assert out.dropped == 4
    assert len(caplog.records) == 1  # not again within the minute
    clock.now += 60
    out.add("e")
    out.flush()
    assert out.dropped == 5
    assert caplog.records[-1].getMessage().startswith("access log: 2 lines lost")
    out.add("f")  # the descriptor works again
    out.flush()
    assert fake.data == b"f\n"


def test_a_failure_after_some_writes_counts_only_the_lines_not_written() -> None:
    fake = FakeFd()
    out = writer(fake, limit=10)
    calls = iter([None, OSError(28, "No space left on device")])

    def write(fd: int, data: memoryview) -> int:
        error = next(calls, None)
        if error is not None:
            raise error
        return fake.write(fd, data)

    out._write = write
    for line in ("aaaa", "bbbb", "cccc", "dddd"):
        out.add(line)
    out.flush()
    assert fake.writes == [b"aaaa\nbbbb\n"]
    assert out.dropped == 2


def test_unbuffered_writes_each_line_at_once() -> None:
    fake = FakeFd()
    out = writer(fake, size=0)
    assert out.add("one") is False
    assert out.add("two") is False
    assert fake.writes == [b"one\n", b"two\n"]
    assert out.pending == 0


def test_threads_adding_to_a_real_pipe_lose_and_cut_no_line() -> None:
    read_fd, write_fd = os.pipe()
    out = LineWriter(write_fd, 8192)
    received = bytearray()

    def read() -> None:
        while data := os.read(read_fd, 65536):
            received.extend(data)

    reader = threading.Thread(target=read)
    reader.start()

    def add(thread: int) -> None:
        for i in range(2000):
            out.add(f"t{thread} {i:05d} {'y' * 60}")

    threads = [threading.Thread(target=add, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    out.flush()
    os.close(write_fd)
    reader.join(10)
    os.close(read_fd)
    got = received.decode().splitlines()
    assert len(got) == 12000
    assert all(re.fullmatch(r"t\d \d{5} y{60}", line) for line in got)
    for n in range(6):  # each thread's lines in its order
        mine = [line for line in got if line.startswith(f"t{n} ")]
        assert mine == sorted(mine)
    assert out.writes < 12000 / 20  # writes of about PIPE_BUF (56 lines), not one per line


def make_request(agent: str = "t", thing: str = "v") -> Request:
    return Request(
        method="GET",
        target="/a?b=1",
        http_version="1.1",
        headers=Headers([("user-agent", agent), ("x-thing", thing)]),
        client_address=("127.0.0.1", 5000),
    )


@pytest.fixture
def loop() -> Iterator[EventLoop]:
    loop = EventLoop(create_backend("auto"))
    thread = threading.Thread(target=loop.run, daemon=True)
    thread.start()
    yield loop
    loop.stop()
    thread.join(10)
    loop.close()


def test_a_line_from_a_pool_thread_is_written_once_the_loop_goes_idle(loop: EventLoop) -> None:
    read_fd, write_fd = os.pipe()
    try:
        hook = BufferedAccessLog(
            AccessLogFormatter("{method} {target} {status}"), LineWriter(write_fd)
        )
        hook.attach(loop)
        # No timer and no full buffer here: only the flush of an idle loop writes it.
        worker = threading.Thread(target=hook, args=(make_request(), 200, 1, 0.0))
        worker.start()
        worker.join()
        assert os.read(read_fd, 100) == b"GET /a?b=1 200\n"
        # From the loop thread too.
        loop.call_soon(hook, make_request(), 404, 0, 0.0)
        assert os.read(read_fd, 100) == b"GET /a?b=1 404\n"
        poll(lambda: hook._timer is None, 5, "the interval timer to lapse once idle")
        assert hook.writer.writes == 2
    finally:
        hook.close()
        os.close(read_fd)
        os.close(write_fd)


def test_a_busy_loop_writes_lines_in_one_batch_once_idle(loop: EventLoop) -> None:
    # While a pool thread is awake the pool's watcher keeps the loop's waits to 2 ms: lines
    # that come one per pass meanwhile wait for the loop to go idle (or a full buffer, or the
    # interval), rather than a write each.
    fake = FakeFd()
    hook = BufferedAccessLog(AccessLogFormatter("{status}"), writer(fake, interval=3600.0))
    hook.attach(loop)
    loop.call_soon(loop.set_watcher, lambda now: 0.002)
    passed = threading.Event()
    for status in range(200, 220):
        hook(make_request(), status, 0, 0.0)
        passed.clear()
        loop.call_soon(passed.set)  # the loop has made a pass since the line came
        assert passed.wait(10)
    assert fake.writes == []
    loop.call_soon(loop.set_watcher, None)  # the pool goes idle
    poll(lambda: fake.writes or None, 10, "the batch to be written")
    assert fake.writes == ["".join(f"{status}\n" for status in range(200, 220)).encode()]
    hook.close()


def test_close_writes_what_no_loop_flushed() -> None:
    fake = FakeFd()
    hook = BufferedAccessLog(AccessLogFormatter("{status}"), writer(fake))
    hook(make_request(), 200, 0, 0.0)
    hook(make_request(), 201, 0, 0.0)
    assert fake.writes == []
    hook.close()
    assert fake.writes == [b"200\n201\n"]


@pytest.mark.parametrize(
    "format",
    [
        " ".join(f"{{{name}}}" for name in FIELDS if name != "header")
        + " {header[X-Thing]} {header[Missing]}",
        "{status:>5}|{bytes!r}|{duration_us:08d}|{client!s:^20}|{{literal}} 'quotes' \"too\"",
        "{method}\\{target}",
    ],
)
def test_the_compiled_format_makes_the_same_line_as_format_map(format: str) -> None:
    formatter = AccessLogFormatter(format)
    assert formatter.line != formatter._format_map  # compiled
    plain = make_request()
    forged = make_request('x"\tforged\xe9 \u2603', "back\\slash")  # escaped, one by one
    for request in (plain, forged):
        for status, sent in ((200, 13), (304, 0)):
            assert formatter(request, status, sent, 0.0123) == formatter._format_map(
                request, status, sent, 0.0123
            )


def test_a_format_the_compiler_does_not_handle_falls_back_to_format_map() -> None:
    assert _compile("{client.upper}") is None
    assert _compile("{status:{status}}") is None
    formatter = AccessLogFormatter("{status:>{bytes_sent}}")
    assert formatter(make_request(), 200, 5, 0.0) == "  200"


def test_direct_writing_only_while_the_access_logger_is_the_commands() -> None:
    access = logging.getLogger("vestespy.test_access_buffer")
    stream = open(os.devnull, "w")  # noqa: SIM115 - closed below
    try:
        access.handlers = [CommandAccessHandler(stream)]
        access.propagate = False
        access.setLevel(logging.INFO)
        assert command_access_fd(access) == stream.fileno()
        access.addHandler(logging.NullHandler())  # a handler added by the application
        assert command_access_fd(access) is None
        access.handlers = [logging.StreamHandler(stream)]  # a --log-config's handler
        assert command_access_fd(access) is None
        access.handlers = [CommandAccessHandler(stream)]
        access.setLevel(logging.WARNING)  # silenced by a --log-config
        assert command_access_fd(access) is None
        access.setLevel(logging.INFO)
        access.propagate = True
        assert command_access_fd(access) is None
        access.propagate = False
        access.addFilter(lambda record: True)
        assert command_access_fd(access) is None
    finally:
        access.handlers = []
        access.filters = []
        stream.close()


def test_the_buffer_flag_takes_sizes_and_0(monkeypatch: pytest.MonkeyPatch) -> None:
    assert parse_config([]).access_log_buffer == 64 * 1024
    assert parse_config(["--access-log-buffer", "0"]).access_log_buffer == 0
    assert parse_config(["--access-log-buffer", "1M"]).access_log_buffer == 1 << 20
    monkeypatch.setenv("VESTESPY_ACCESS_LOG_BUFFER", "8K")
    assert parse_config([]).access_log_buffer == 8192


def test_a_bad_buffer_size_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit:
        parse_config(["--access-log-buffer", "lots"])
    assert exit.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "--access-log-buffer" in err
