"""Real WebSocket clients for the integration tests: ``websockets``, Node's ``ws``, Chromium.

Each runs the same exchange against an echo server and returns the same report (a dict):

1. each size of ``sizes`` as a binary message, then as a text message, each echo compared;
2. ``count`` text messages "0", "1", ... sent without waiting, the echoes checked in order;
3. ``big`` bytes as one binary message (0: none);
4. a close with 1000 "done".

Report keys: ``errors`` (what went wrong, empty when all went right), ``extensions`` (as the
client negotiated them), ``sized``, ``ordered``, ``big``, ``close`` (the code, reason and
cleanness of the close the client saw). The JavaScript side of the exchange is
``tests/integration/websocket_clients/exchange.mjs``, shared by the page Chromium opens and the
Node client; :func:`python_exchange` is its twin on ``websockets``' synchronous client.
Payloads repeat a short pattern so that permessage-deflate shrinks them.

Tools are never installed here: :func:`node_or_skip` and :func:`chromium_or_skip` skip the test
and say what ``.ci/run`` installs.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import ssl
import subprocess
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

__all__ = [
    "CLIENTS_DIR",
    "binary_payload",
    "chromium",
    "chromium_or_skip",
    "message_bytes",
    "node_exchange",
    "node_or_skip",
    "python_exchange",
    "text_payload",
]

#: The Node package (package.json, package-lock.json), the shared exchange and the page.
CLIENTS_DIR = Path(__file__).resolve().parents[1] / "integration" / "websocket_clients"

_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def binary_payload(size: int) -> bytes:
    """``size`` bytes 0, 1, ..., 255, 0, 1, ... (as exchange.mjs makes them)."""
    return (bytes(range(256)) * (size // 256 + 1))[:size]


def text_payload(size: int) -> str:
    """``size`` letters a-z repeated (as exchange.mjs makes them)."""
    return (_LETTERS * (size // len(_LETTERS) + 1))[:size]


def message_bytes(sizes: Sequence[int], count: int, big: int) -> int:
    """The bytes of every message the exchange sends (and gets back)."""
    return 2 * sum(sizes) + sum(len(str(n)) for n in range(count)) + big


def python_exchange(
    url: str,
    *,
    sizes: Sequence[int] = (),
    count: int = 0,
    big: int = 0,
    context: ssl.SSLContext | None = None,
    compression: str | None = "deflate",
    protocols: Sequence[str] = (),
    timeout: float = 120,
) -> dict[str, Any]:
    """The exchange on ``websockets``' synchronous client (skips if it is not installed)."""
    client = pytest.importorskip("websockets.sync.client")
    report: dict[str, Any] = {
        "errors": [],
        "extensions": None,
        "protocol": None,
        "sized": 0,
        "ordered": 0,
        "big": False,
        "close": None,
    }
    errors: list[str] = report["errors"]
    with client.connect(
        url,
        ssl=context,
        compression=compression,
        subprotocols=list(protocols) or None,
        max_size=None,
        open_timeout=timeout,
        close_timeout=timeout,
    ) as ws:
        report["extensions"] = ", ".join(e.name for e in ws.protocol.extensions)
        report["protocol"] = ws.subprotocol or ""
        for size in sizes:
            for message in (binary_payload(size), text_payload(size)):
                ws.send(message)
                echoed = ws.recv(timeout)
                if echoed == message:
                    report["sized"] += 1
                else:
                    errors.append(f"{type(message).__name__} {size}: got {_describe(echoed)}")

        # Sent from another thread while this one reads: neither side waits on the other.
        def send_all() -> None:
            for n in range(count):
                ws.send(str(n))

        sender = threading.Thread(target=send_all, daemon=True)
        sender.start()
        for n in range(count):
            echoed = ws.recv(timeout)
            if echoed != str(n):
                errors.append(f"message {n}: got {_describe(echoed)}")
                break
            report["ordered"] += 1
        sender.join(timeout)
        if big:
            message = binary_payload(big)
            ws.send(message)
            echoed = ws.recv(timeout)
            report["big"] = echoed == message
            if not report["big"]:
                errors.append(f"big {big}: got {_describe(echoed)}")
        ws.close(1000, "done")
    received = ws.protocol.close_rcvd  # the server's close frame, if one came
    report["close"] = {
        "code": received.code if received else 1006,
        "reason": received.reason if received else "",
        "wasClean": received is not None,
    }
    return report


def _describe(data: object) -> str:
    if isinstance(data, (bytes, str)):
        return f"{type(data).__name__} of {len(data)}"
    return repr(data)


def node_or_skip() -> str:
    """The ``node`` binary, once Node's ws package is installed in CLIENTS_DIR; else skip."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (apt-get install nodejs npm; .ci/run does)")
    if not (CLIENTS_DIR / "node_modules" / "ws" / "package.json").exists():
        pytest.skip(
            "Node's ws package is not installed"
            f" (npm ci --prefix {CLIENTS_DIR.relative_to(CLIENTS_DIR.parents[2])}; .ci/run does)"
        )
    return node


def node_exchange(
    url: str,
    *,
    sizes: Sequence[int] = (),
    count: int = 0,
    big: int = 0,
    ca_file: Path | None = None,
    protocols: Sequence[str] = (),
    timeout: float = 120,
) -> dict[str, Any]:
    """The exchange on Node's ws package (node_client.mjs); TLS trusts ``ca_file``."""
    node = node_or_skip()
    env = dict(os.environ)
    if ca_file is not None:
        env["NODE_EXTRA_CA_CERTS"] = str(ca_file)
    config = json.dumps(
        {"sizes": list(sizes), "count": count, "big": big, "protocols": list(protocols)}
    )
    done = subprocess.run(
        [node, str(CLIENTS_DIR / "node_client.mjs"), url, config],
        capture_output=True,
        env=env,
        timeout=timeout,
        cwd=CLIENTS_DIR,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    report: dict[str, Any] = json.loads(done.stdout.decode().splitlines()[-1])
    return report


def chromium_or_skip() -> str:
    """The Chromium (or Chrome) binary; skip without one."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        binary = shutil.which(name)
        if binary is not None:
            return binary
    pytest.skip("Chromium is not installed (apt-get install chromium; .ci/run does)")


@contextlib.contextmanager
def chromium(url: str, directory: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Headless Chromium showing ``url`` until the block ends (its log in ``directory``).

    Certificate errors are ignored: the tests' certificates come from a throw-away trustme CA
    that Chromium's store does not know. The browser gets a session of its own, so that it
    and every process it starts are ended together.
    """
    binary = chromium_or_skip()
    args = [
        binary,
        "--headless=new",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-extensions",
        "--ignore-certificate-errors",
        f"--user-data-dir={directory / 'chromium-profile'}",
        url,
    ]
    if os.geteuid() == 0:
        args.insert(1, "--no-sandbox")  # Chromium refuses to run as root with its sandbox
    with open(directory / "chromium.log", "wb") as log:
        browser = subprocess.Popen(args, stdout=log, stderr=log, start_new_session=True)
    try:
        yield browser
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(browser.pid, signal.SIGTERM)
        try:
            browser.wait(20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(browser.pid, signal.SIGKILL)
            browser.wait(10)
