"""A real Flask application and a real Django project on the WSGI adapter.

Both run in-process behind :func:`wsgiref.validate.validator` for the routes; for the 100 MB
upload each runs alone in a child process served by ``vestespy.serve``, so that the
server's own peak RSS can be measured.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from wsgiref.validate import validator

import pytest
import wsgi_frameworks

from support import RawClient, ServerThread, poll, serve
from vestespy.wsgi import WSGIAdapter

HERE = Path(__file__).resolve().parent
FRAMEWORKS = ["flask", "django"]
BOUNDARY = "vestespy-boundary-7MA4YWxkTrZu0gW"


@pytest.fixture(scope="module", params=FRAMEWORKS)
def framework(request: pytest.FixtureRequest) -> Iterator[tuple[str, ServerThread]]:
    """Each framework's application served in-process, mounted at ``/mount``."""
    name = str(request.param)
    app = wsgi_frameworks.FACTORIES[name]()
    adapter = WSGIAdapter(validator(app), script_name="/mount")
    with serve(adapter, max_workers=4) as thread:
        yield name, thread


def multipart(fields: dict[str, str], file_head: bytes) -> tuple[bytes, bytes]:
    """The multipart body up to a file's content, and what closes it after the content."""
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in fields.items()
    ]
    head = (
        "".join(parts).encode()
        + (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
    )
    return head + file_head, f"\r\n--{BOUNDARY}--\r\n".encode()


def upload(address: tuple[str, int], target: str, size: int) -> dict[str, Any]:
    """Send a multipart upload of ``size`` bytes in 1 MiB writes of one block (so the client
    holds no more than that) and return the JSON answer."""
    block = bytes(range(256)) * 4096  # 1 MiB
    head, tail = multipart({"note": "hi"}, b"")
    length = len(head) + size + len(tail)
    digest = hashlib.sha256()
    with RawClient(address, timeout=60) as client:
        client.send(
            f"POST {target} HTTP/1.1\r\nHost: t\r\nContent-Length: {length}\r\n"
            f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n\r\n".encode()
            + head
        )
        left = size
        while left:
            piece = block if left >= len(block) else block[:left]
            client.send(piece)
            digest.update(piece)
            left -= len(piece)
        client.send(tail)
        response = client.read_response()
    assert response.status == 200, response
    result: dict[str, Any] = json.loads(response.body)
    assert result == {"size": size, "sha256": digest.hexdigest(), "note": "hi"}
    return result


def test_routes_and_query_strings(framework: tuple[str, ServerThread]) -> None:
    name, thread = framework
    with RawClient(thread.address) as client:
        response = client.request("GET", "/mount/")
        assert (response.status, response.body) == (200, f"{name} index".encode())
        response = client.request("GET", "/mount/items/42?q=a%20b&q=%C3%A9")
        assert json.loads(response.body) == {"id": 42, "q": ["a b", "é"]}
        assert client.request("GET", "/mount/nowhere").status == 404


def test_form_post(framework: tuple[str, ServerThread]) -> None:
    _, thread = framework
    body = b"name=J%C3%BCrgen&tag=a&tag=b"
    headers = [("Content-Type", "application/x-www-form-urlencoded")]
    with RawClient(thread.address) as client:
        response = client.request("POST", "/mount/form", body=body, headers=headers)
    assert json.loads(response.body) == {"name": "Jürgen", "tags": ["a", "b"]}


@pytest.mark.parametrize("name", FRAMEWORKS)
def test_chunked_form_post(name: str) -> None:
    # Not behind validator(): Werkzeug reads a body that wsgi.input_terminated says ends with
    # read(), which PEP 3333's read(size), and so validator(), do not allow; the key exists
    # for that.
    app = wsgi_frameworks.FACTORIES[name]()
    body = b"name=chunked&tag=x"
    with (
        serve(WSGIAdapter(app, script_name="/mount"), max_workers=4) as thread,
        RawClient(thread.address) as client,
    ):
        client.send(
            b"POST /mount/form HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n\r\n"
            + b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in (body[:5], body[5:]))
            + b"0\r\n\r\n"
        )
        response = client.read_response()
    if name == "flask":
        # Werkzeug reads to the end of a body that wsgi.input_terminated says ends.
        assert json.loads(response.body) == {"name": "chunked", "tags": ["x"]}
    else:
        # Django reads CONTENT_LENGTH bytes only, under any server: no form without it.
        assert response.status == 500


def test_small_multipart_upload(framework: tuple[str, ServerThread]) -> None:
    _, thread = framework
    upload(thread.address, "/mount/upload", 3 << 20)


def test_streamed_response(framework: tuple[str, ServerThread]) -> None:
    _, thread = framework
    with RawClient(thread.address) as client:
        response = client.request("GET", "/mount/stream")
    assert response.chunked  # no length given: streamed as it is produced
    assert response.body == "".join(f"line {i}\n" for i in range(1000)).encode()


def test_a_file_goes_through_the_file_wrapper_and_sendfile(
    framework: tuple[str, ServerThread], sendfile_calls: list[int]
) -> None:
    # Flask's send_file and Django's FileResponse hand the open file to wsgi.file_wrapper.
    name, thread = framework
    source = Path(wsgi_frameworks.__file__).read_bytes()
    with RawClient(thread.address) as client:
        response = client.request("GET", "/mount/file")
    assert response.status == 200
    assert response.header("Content-Length") == str(len(source))
    assert response.body == source
    # The loop thread records a sendfile's count after the kernel took the bytes, which the
    # client may have read first: wait for the record (the server here stays up).
    poll(lambda: sum(sendfile_calls) == len(source) or None, 10, f"{name}'s file sent by sendfile")


def test_error_page(framework: tuple[str, ServerThread], caplog: pytest.LogCaptureFixture) -> None:
    _, thread = framework
    with RawClient(thread.address) as client:
        response = client.request("GET", "/mount/error")
        assert response.status == 500
        assert b"Server Error" in response.body
        # The framework answered the error itself: the connection goes on.
        assert client.request("GET", "/mount/").status == 200


def test_cookies_and_redirects(framework: tuple[str, ServerThread]) -> None:
    _, thread = framework
    with RawClient(thread.address) as client:
        response = client.request("GET", "/mount/cookies/set")
        cookies = [c.split(";")[0] for c in response.header_all("Set-Cookie")]
        assert sorted(cookies) == ["flavour=oat", "size=big"]
        response = client.request(
            "GET",
            "/mount/whoami",
            headers=[("Host", "example.com:81"), *[("Cookie", c) for c in cookies]],
        )
        seen = json.loads(response.body)
        assert seen["cookies"] == {"flavour": "oat", "size": "big"}
        assert seen["url"] == "http://example.com:81/mount/whoami"
        assert seen["script_root"] == "/mount"
        response = client.request("GET", "/mount/go")
        assert response.status == 302
        assert response.header("Location") in ("/mount/", "http://test/mount/")


# -- a 100 MB upload, and the server's memory ------------------------------------------------


def _status(pid: int, field: str) -> int:
    """A ``/proc/PID/status`` figure in KiB."""
    text = Path(f"/proc/{pid}/status").read_text()
    match = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
    assert match, text
    return int(match.group(1))


@contextlib.contextmanager
def child_server(*args: str) -> Iterator[tuple[subprocess.Popen[str], tuple[str, int]]]:
    """Run a server in a child process: ``wsgi_frameworks.py NAME``, or ``-m vestespy ...``."""
    if args[0] != "-m":
        args = (str(HERE / "wsgi_frameworks.py"), *args)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE), *sys.path]))
    process = subprocess.Popen(
        [sys.executable, *args],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stderr is not None
        lines = []
        for line in process.stderr:
            lines.append(line)
            match = re.search(r"on http://([\d.]+):(\d+)/", line)
            if match:
                break
        else:
            raise AssertionError(f"the server did not start: {''.join(lines)}")
        yield process, (match.group(1), int(match.group(2)))
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        finally:
            if process.poll() is None:
                process.kill()
            assert process.stderr is not None
            process.stderr.close()


@pytest.mark.parametrize("name", FRAMEWORKS)
def test_command_line_serves_a_wsgi_app(name: str) -> None:
    command = ["-m", "vestespy", "--wsgi", f"wsgi_frameworks:{name}_app", "--port", "0"]
    with child_server(*command, "--root-path", "/site") as (process, address):
        with RawClient(address) as client:
            response = client.request("GET", "/site/items/7?q=x")
            assert json.loads(response.body) == {"id": 7, "q": ["x"]}
            response = client.request("GET", "/site/whoami")
            assert json.loads(response.body)["script_root"] == "/site"
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0


#: How much the server's peak RSS may grow over its size after warm-up while a 100 MB body
#: streams through: its buffers (the adapter's 256 KiB input, the server's 1 MiB of body read
#: ahead, one 124 KiB read) and the frameworks' parsers' (64 KiB pieces; files over 500 KB
#: (Flask) or 2.5 MB (Django) spooled to disk), plus the allocator's slack.
RSS_GROWTH_LIMIT_KIB = 8 * 1024


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("name", FRAMEWORKS)
def test_100_mb_upload_streams_through_in_bounded_memory(name: str) -> None:
    size = 100 * 1000 * 1000
    with child_server(name) as (process, address):
        upload(address, "/upload", 5 << 20)  # warm up: imports, temporary files, buffers
        baseline = _status(process.pid, "VmRSS")
        Path(f"/proc/{process.pid}/clear_refs").write_text("5")  # reset the peak (VmHWM)
        upload(address, "/upload", size)
        peak = _status(process.pid, "VmHWM")
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0  # serve() returns on SIGTERM
    growth = peak - baseline
    print(f"{name}: RSS {baseline} KiB before, peak {peak} KiB during: +{growth} KiB")
    assert growth < RSS_GROWTH_LIMIT_KIB, f"{name}: peak RSS grew by {growth} KiB"
