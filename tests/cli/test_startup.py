"""The command's start-up checks, as a user meets them: real processes, one line, no traceback.

Every refusal here must come before any socket is bound or any worker started: the command
says "serving ... on" right after binding, and its workers log when they start, so neither
may appear.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest

from support.command import Command, get, poll, write_app

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not hasattr(os, "fork"), reason="worker processes need os.fork"),
]

trustme = pytest.importorskip("trustme")

FLASK_APP = """
from flask import Flask

app = Flask(__name__)


@app.get("/")
def index():
    return "hello from flask"
"""


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    write_app(tmp_path)
    return tmp_path


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    from cryptography.hazmat.primitives import serialization

    directory = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    one = ca.issue_cert("127.0.0.1", "localhost")
    other = ca.issue_cert("localhost")
    paths = {name: str(directory / f"{name}.pem") for name in ("cert", "key", "other", "ca")}
    one.cert_chain_pems[0].write_to_path(paths["cert"])
    one.private_key_pem.write_to_path(paths["key"])
    other.private_key_pem.write_to_path(paths["other"])
    ca.cert_pem.write_to_path(paths["ca"])
    key = serialization.load_pem_private_key(one.private_key_pem.bytes(), None)
    paths["encrypted"] = str(directory / "encrypted.pem")
    Path(paths["encrypted"]).write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    )
    return paths


def refused(args: list[str], cwd: Path, status: int) -> str:
    """Run the command, expect it to refuse in one line; return that line."""
    started = time.monotonic()
    with Command([*args, "--port", "0", "--workers", "2"], cwd) as command:
        assert command.wait(30) == status, command.stderr
    elapsed = time.monotonic() - started
    lines = command.stderr.strip().splitlines()
    assert len(lines) == 1, command.stderr
    assert lines[0].startswith("vestespy: error: ")
    assert "Traceback" not in command.stderr
    # Nothing was bound and no worker started (both are logged when they happen).
    assert "serving" not in command.stderr
    assert "worker" not in command.stderr
    # Within a second on an idle machine; the bound allows for a loaded one.
    assert elapsed < 15, elapsed
    return lines[0].removeprefix("vestespy: error: ")


def test_missing_certfile(app_dir: Path, tls_files: dict[str, str]) -> None:
    missing = str(app_dir / "missing.pem")
    line = refused(["app:app", "--certfile", missing, "--keyfile", tls_files["key"]], app_dir, 1)
    assert line == f"--certfile {missing}: no such file"


def test_key_not_matching_the_certificate(app_dir: Path, tls_files: dict[str, str]) -> None:
    args = ["app:app", "--certfile", tls_files["cert"], "--keyfile", tls_files["other"]]
    line = refused(args, app_dir, 1)
    assert line == (
        f"--keyfile {tls_files['other']}: does not match --certfile {tls_files['cert']}"
        " (the key is not the certificate's)"
    )


def test_key_given_as_the_certificate(app_dir: Path, tls_files: dict[str, str]) -> None:
    args = ["app:app", "--certfile", tls_files["key"], "--keyfile", tls_files["key"]]
    line = refused(args, app_dir, 1)
    assert line.startswith(f"--certfile {tls_files['key']}: is a private key, not a certificate")


def test_encrypted_key_without_password(app_dir: Path, tls_files: dict[str, str]) -> None:
    args = ["app:app", "--certfile", tls_files["cert"], "--keyfile", tls_files["encrypted"]]
    line = refused(args, app_dir, 1)
    assert line == (
        f"--keyfile {tls_files['encrypted']}: the private key is encrypted and no password is given"
    )


def test_a_bad_module(app_dir: Path) -> None:
    (app_dir / "broken.py").write_text("import nosuchdependency\n")
    line = refused(["broken:app"], app_dir, 1)
    assert line == (
        "error while importing 'broken': ModuleNotFoundError: No module named 'nosuchdependency'"
    )
    assert refused(["nosuch:app"], app_dir, 1) == "cannot import module 'nosuch': not found"
    assert refused(["app:nosuch"], app_dir, 1) == "module 'app' has no attribute 'nosuch'"


def test_an_import_that_exits_the_process(app_dir: Path) -> None:
    (app_dir / "quits.py").write_text("import os\nos._exit(7)\n")
    line = refused(["quits:app"], app_dir, 1)
    assert line == "loading the application ended its process: it exited with status 7"


def test_dispatcher_under_interface_wsgi(app_dir: Path) -> None:
    line = refused(["app:app", "--interface", "wsgi"], app_dir, 2)
    assert line == (
        "--interface wsgi: app:app is a vestespy Dispatcher, not a WSGI application; serve it"
        " with --interface vestespy (or auto)"
    )
    # --wsgi is the same.
    assert refused(["--wsgi", "app:app"], app_dir, 2) == line


def test_auto_cannot_tell(app_dir: Path) -> None:
    (app_dir / "vague.py").write_text("def app(*args):\n    pass\n")
    line = refused(["vague:app"], app_dir, 2)
    assert line.startswith("cannot tell what kind of application vague:app is")
    assert "--interface" in line


def test_bad_size_names_the_flag_and_value(app_dir: Path) -> None:
    line = refused(["app:app", "--max-body-size", "10Q"], app_dir, 2)
    assert line.startswith("argument --max-body-size: '10Q' is not a size")


def test_flask_app_without_wsgi_flag_is_served(tmp_path: Path) -> None:
    pytest.importorskip("flask")
    (tmp_path / "hello.py").write_text(FLASK_APP)
    with Command(["hello:app", "--port", "0"], tmp_path) as command:
        address = command.wait_ready(path="/")
        status, headers, body = get(address, "/")
        assert (status, body) == (200, b"hello from flask")
        assert headers["content-type"].startswith("text/html")
        assert command.stop() == 0
    assert "serving hello:app (WSGI) on http://127.0.0.1:" in command.stderr


def test_max_body_size_with_a_unit(app_dir: Path) -> None:
    with Command(["app:app", "--port", "0", "--max-body-size", "10M"], app_dir) as command:
        address = command.wait_ready()
        # Exactly the limit is accepted, one byte more refused (before the body is sent).
        body = os.urandom(1024) * 10 * 1024
        status, _, answer = get(address, "/upload", method="POST", body=body, timeout=30)
        assert (status, answer.split()[0]) == (200, str(10 * 1024 * 1024).encode())
        with socket.create_connection(address, timeout=10) as client:
            client.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 10485761\r\n\r\n")
            head = client.recv(4096)
        assert head.startswith(b"HTTP/1.1 413 "), head
        assert command.stop() == 0


def test_tls_start_up_line_says_https(app_dir: Path, tls_files: dict[str, str]) -> None:
    args = ["app:app", "--port", "0", "--certfile", tls_files["cert"]]
    args += ["--keyfile", tls_files["key"], "--workers", "2", "--threads", "4"]
    with Command(args, app_dir) as command:
        url = command.url()
        assert url.startswith("https://127.0.0.1:")
        line = command.wait_for_log(r"serving app:app on .*")[0]
        assert "(2 workers x 4 threads" in line
        assert "vestespy " in line
        assert " on h11" in line
        host, port = command.address()
        context = ssl.create_default_context(cafile=tls_files["ca"])

        def answers() -> bool:
            try:
                with (
                    socket.create_connection((host, port), timeout=5) as raw,
                    context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
                ):
                    tls.sendall(b"GET /pid HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    return tls.recv(4096).startswith(b"HTTP/1.1 200")
            except OSError:
                return False

        poll(answers, 20, "an HTTPS answer")
        assert command.stop() == 0


def test_pure_build_says_so_in_one_line(app_dir: Path) -> None:
    with Command(["app:app", "--port", "0"], app_dir) as command:
        command.wait_ready()
        assert command.stop() == 0
    (line,) = [line for line in command.stderr.splitlines() if "serving app:app on" in line]
    # The start-up line names the build; a pure one adds the way to the compiled one.
    pure = "(pure Python) on " in line
    assert pure or "(compiled) on " in line
    notes = [line for line in command.stderr.splitlines() if "pure-Python build" in line]
    assert len(notes) == (1 if pure else 0)
    if pure:
        assert "speedups" in notes[0]


def test_serve_says_where_without_logging_configured(tmp_path: Path) -> None:
    """vestespy.serve(app, port=0) with no logging set up: the port is still found."""
    script = tmp_path / "serve_it.py"
    script.write_text(
        "import vestespy\n"
        "def app(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        "    return [b'served']\n"
        "vestespy.serve(app, port=0)\n"
    )
    src = str(Path(__file__).resolve().parents[2] / "src")
    env = {**os.environ, "PYTHONPATH": src, "PYTHONUNBUFFERED": "1"}
    err_path = tmp_path / "err.log"
    with open(err_path, "wb") as err:
        process = subprocess.Popen([sys.executable, str(script)], stderr=err, env=env)
    try:
        pattern = re.compile(r"serving <function app at \w+> on http://127\.0\.0\.1:(\d+)/ ")
        match = poll(lambda: pattern.search(err_path.read_text()), 20, "the serving line")
        status, _, body = get(("127.0.0.1", int(match.group(1))), "/")
        assert (status, body) == (200, b"served")
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
    assert "Traceback" not in err_path.read_text()
