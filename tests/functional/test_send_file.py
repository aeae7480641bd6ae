"""Response.send_file over real sockets: the kernel's sendfile on plain TCP, reads elsewhere."""

from __future__ import annotations

import io
import os
import threading
from pathlib import Path

import pytest

import vestespy
from support import RawClient, Serve, poll

SIZE = 3 * 1024 * 1024 + 123  # past every write buffer: part of it is queued when send_file returns


@pytest.fixture
def data_file(tmp_path: Path) -> tuple[Path, bytes]:
    data = os.urandom(SIZE)
    path = tmp_path / "data.bin"
    path.write_bytes(data)
    return path, data


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_a_file_goes_through_sendfile_whole_and_can_be_closed_at_once(
    served: Serve, data_file: tuple[Path, bytes], sendfile_calls: list[int]
) -> None:
    path, data = data_file
    positions: list[int] = []

    def listener(server: vestespy.Server, req: vestespy.Request, res: vestespy.Response) -> None:
        with path.open("rb") as file:  # closed as soon as send_file returns
            res.send_file(file)
            positions.append(file.tell())

    with served(listener) as thread, RawClient(thread.address) as client:
        for _ in range(2):  # the connection is kept alive after a file
            response = client.request()
            assert response.status == 200
            assert response.header("Content-Length") == str(SIZE)
            assert response.body == data
    assert sum(sendfile_calls) == 2 * SIZE  # every byte went kernel to kernel
    # The client can have the last bytes before the listener thread, back from send_file,
    # has recorded its position (seen in CI, on the pool): wait for it.
    poll(lambda: len(positions) == 2, 10, "the second listener to return from send_file")
    assert positions == [SIZE, SIZE]


def test_a_range_from_the_file_position(
    served: Serve, data_file: tuple[Path, bytes], sendfile_calls: list[int]
) -> None:
    path, data = data_file
    positions: list[int] = []

    def listener(server: vestespy.Server, req: vestespy.Request, res: vestespy.Response) -> None:
        with path.open("rb") as file:
            file.read(10)  # a buffered reader reads ahead: tell() is where the range starts
            file.seek(1000)
            res.send_file(file, 5000)
            positions.append(file.tell())

    with served(listener) as thread, RawClient(thread.address) as client:
        response = client.request()
        assert response.body == data[1000:6000]
        assert client.request("HEAD").header("Content-Length") == "5000"
    assert positions == [6000, 6000]


def test_a_length_past_the_end_of_the_file_is_refused_before_anything_is_sent(
    served: Serve, data_file: tuple[Path, bytes]
) -> None:
    path, _ = data_file
    errors: list[Exception] = []

    def listener(server: vestespy.Server, req: vestespy.Request, res: vestespy.Response) -> None:
        with path.open("rb") as file:
            try:
                res.send_file(file, SIZE + 1)
            except vestespy.StreamLengthError as exc:
                errors.append(exc)
                res.status = 416
                res.send_all("too long")

    with served(listener) as thread, RawClient(thread.address) as client:
        response = client.request()
        assert (response.status, response.body) == (416, b"too long")
    assert "holds 3145851 bytes from its position" in str(errors[0])


def test_a_head_request_gets_the_length_and_no_body(
    served: Serve, data_file: tuple[Path, bytes], sendfile_calls: list[int]
) -> None:
    path, data = data_file

    def listener(server: vestespy.Server, req: vestespy.Request, res: vestespy.Response) -> None:
        with path.open("rb") as file:
            res.send_file(file)

    with served(listener) as thread, RawClient(thread.address) as client:
        head = client.request("HEAD")
        assert head.header("Content-Length") == str(SIZE)
        assert client.request().body == data  # nothing of a body was left after the HEAD
    assert sum(sendfile_calls) == SIZE


def test_readers_that_are_not_regular_files_are_read(
    served: Serve, sendfile_calls: list[int]
) -> None:
    data = os.urandom(300_000)

    def listener(server: vestespy.Server, req: vestespy.Request, res: vestespy.Response) -> None:
        length = None if req.path == "/chunked" else len(data)
        res.send_file(io.BytesIO(data), length)

    with served(listener) as thread, RawClient(thread.address) as client:
        sized = client.request()
        assert sized.header("Content-Length") == str(len(data))
        assert sized.body == data
        chunked = client.request("GET", "/chunked")
        assert chunked.chunked
        assert chunked.body == data
    assert sendfile_calls == []


def test_a_pipe_is_read_to_its_end(served: Serve) -> None:
    def listener(server: vestespy.Server, req: vestespy.Request, res: vestespy.Response) -> None:
        read_end, write_end = os.pipe()

        def produce() -> None:
            with os.fdopen(write_end, "wb") as out:
                for index in range(50):
                    out.write(b"%04d" % index * 1000)

        writer = threading.Thread(target=produce)
        writer.start()
        with os.fdopen(read_end, "rb") as file:
            res.send_file(file)
        writer.join()

    with served(listener, max_workers=2) as thread, RawClient(thread.address) as client:
        response = client.request()
        assert response.chunked
        assert response.body == b"".join(b"%04d" % i * 1000 for i in range(50))


def test_a_file_truncated_while_it_is_sent_closes_the_connection(
    served: Serve, data_file: tuple[Path, bytes]
) -> None:
    # The client reads only once the file was cut to 1 MB: the response cannot be completed,
    # so the connection closes rather than leaving the client waiting for the rest.
    path, _ = data_file
    data = os.urandom(1024 * 1024) * 32  # more than the socket buffers can hold unread
    path.write_bytes(data)
    truncated = threading.Event()

    def listener(server: vestespy.Server, req: vestespy.Request, res: vestespy.Response) -> None:
        with path.open("rb") as file:
            res.send_file(file)
        os.truncate(path, 1024 * 1024)
        truncated.set()

    with served(listener) as thread, RawClient(thread.address) as client:
        client.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert truncated.wait(10)
        head = client.read_head()
        assert head.header("Content-Length") == str(len(data))
        body = client.read_until_close()
        assert len(body) < len(data)
        # What the file still holds arrived intact (bytes the kernel read while the file was
        # being cut may be zeros: that race is the kernel's, as for any server using sendfile).
        kept = min(len(body), 1024 * 1024)
        assert body[:kept] == data[:kept]


def test_a_client_gone_mid_file_leaves_no_descriptor_open(
    served: Serve, data_file: tuple[Path, bytes]
) -> None:
    path, _ = data_file
    sent = threading.Event()

    def listener(server: vestespy.Server, req: vestespy.Request, res: vestespy.Response) -> None:
        with path.open("rb") as file:
            res.send_file(file)
        sent.set()

    with served(listener, write_buffer_size=16384) as thread:
        before = open_fds()
        with RawClient(thread.address) as client:
            client.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert client.read_head().status == 200
            assert sent.wait(10)
        # The server notices the reset on its next sendfile; its duplicate then goes.
        poll(lambda: open_fds() <= before or None, 10, "the server to close its descriptors")


def test_a_response_pipelined_behind_a_file_follows_it_in_order(
    served: Serve, data_file: tuple[Path, bytes], sendfile_calls: list[int]
) -> None:
    path, data = data_file

    def listener(server: vestespy.Server, req: vestespy.Request, res: vestespy.Response) -> None:
        if req.path == "/file":
            with path.open("rb") as file:
                res.send_file(file)
        else:
            res.send_all(req.path)

    with served(listener) as thread, RawClient(thread.address) as client:
        client.send(b"".join(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % p for p in (b"/file", b"/a")))
        assert client.read_response().body == data
        assert client.read_response().body == b"/a"
    assert sum(sendfile_calls) == SIZE
