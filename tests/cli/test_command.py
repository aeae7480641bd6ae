"""The ``vestespy`` command, run as a subprocess: signals, exit codes, workers, sockets, reload."""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path

import pytest

from support import poll
from support.command import APP, Command, get, process_exists, write_app
from support.scheduling import batch_policy_allowed

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not hasattr(os, "fork"), reason="worker processes need os.fork"),
]


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    write_app(tmp_path)
    return tmp_path


def pids_seen(address: tuple[str, int] | str, count: int) -> set[int]:
    return {int(get(address, "/pid")[2].split()[0]) for _ in range(count)}


def wait_for_pids(address: tuple[str, int], workers: int) -> set[int]:
    """Poll until requests reach ``workers`` distinct processes; return their pids."""

    def seen() -> set[int] | None:
        pids = pids_seen(address, 20)
        return pids if len(pids) == workers else None

    return poll(seen, 20, f"{workers} workers to answer")


# -- the command line ---------------------------------------------------------------------


def test_demo_serves_and_sigterm_exits_0(tmp_path: Path) -> None:
    with Command(["--port", "0"], tmp_path) as command:
        address = command.wait_ready(path="/hello/you")
        agent = 'x"\tforged\xe9'
        status, _, body = get(address, "/hello/you", headers={"User-Agent": agent})
        assert (status, body) == (200, b"Hello, you!\n")
        poll(lambda: "GET /hello/you HTTP/1.1" in command.stdout, 10, "the access log line")
        command.send_signal(signal.SIGTERM)
        assert command.wait() == 0
    lines = [line for line in command.stdout.splitlines() if "forged" in line]
    # One line per response; the header's quote, tab and non-ASCII are escaped.
    assert len(lines) == 1
    assert '"x\\x22\\x09forged\\xe9"' in lines[0]
    assert " 200 12 " in lines[0]


def test_version(tmp_path: Path) -> None:
    import vestespy

    with Command(["--version"], tmp_path) as command:
        assert command.wait() == 0
    # The version, then which build and which protocol core are in use: the command runs the
    # build the tests run (the compiled wheel in the compiled tox envs, not the sources).
    assert command.stdout.splitlines()[0] == str(vestespy.build_info())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--workers", "x"], "invalid int value"),
        (["--workers", "0"], "--workers must be at least 1"),
        (["nocolon"], "write the application as MODULE:ATTRIBUTE"),
        (["--bind", "localhost"], "expected HOST:PORT"),
        (["--bind", "::1:80"], "brackets"),
        (["--keep-alive-timeout", "-1"], "--keep-alive-timeout: '-1': a duration cannot be"),
        (["--max-body-size", "10X"], "--max-body-size: '10X' is not a size"),
        (["--graceful-timeout", "soon"], "--graceful-timeout: 'soon' is not a duration"),
        (["--interface", "asgi"], "invalid choice: 'asgi'"),
        (["--wsgi", "app:app", "--interface", "vestespy"], "--wsgi is --interface wsgi"),
        (["--trusted-proxies", "not-an-ip"], "not-an-ip"),
        (["--access-log-format", "{nope}"], "unknown access log field"),
        (["--root-path", "/x", "--interface", "vestespy"], "--root-path applies to WSGI"),
        (["--wsgi", "app:app", "--threads", "0"], "--interface wsgi needs --threads >= 1"),
        (["--backend", "nosuch"], "invalid choice"),
        (["--port", "99999"], "not a port number (0-65535)"),
    ],
)
def test_bad_argument_exits_2(tmp_path: Path, args: list[str], message: str) -> None:
    with Command(args, tmp_path) as command:
        assert command.wait() == 2
    assert message in command.stderr
    # One line naming the problem, not the whole usage.
    assert len(command.stderr.strip().splitlines()) == 1, command.stderr
    assert "Traceback" not in command.stderr


def test_a_missing_module_is_refused_before_binding(tmp_path: Path) -> None:
    with Command(["nosuchmodule:app", "--port", "0"], tmp_path) as command:
        assert command.wait() == 1
    assert (
        command.stderr.strip() == "vestespy: error: cannot import module 'nosuchmodule': not found"
    )


@pytest.mark.parametrize(
    ("app", "message"),
    [
        ("nosuchmodule:app", "cannot import module 'nosuchmodule': not found"),
        ("app:nosuch", "module 'app' has no attribute 'nosuch'"),
        (
            "app:VERSION",
            "app:VERSION is a str, not a 'request' listener, a Dispatcher or a WSGI application",
        ),
        ("broken:app", "error while importing 'broken': ZeroDivisionError: division by zero"),
    ],
)
def test_start_up_failure_is_one_line_and_exit_1(app_dir: Path, app: str, message: str) -> None:
    (app_dir / "broken.py").write_text("1 / 0\n")
    with Command([app, "--port", "0", "--workers", "2"], app_dir) as command:
        assert command.wait() == 1
    errors = [line for line in command.stderr.splitlines() if "vestespy: error:" in line]
    assert errors == [f"vestespy: error: {message}"], command.stderr  # once, not per worker
    assert "Traceback" not in command.stderr


def test_debug_log_level_shows_the_traceback(app_dir: Path) -> None:
    (app_dir / "broken.py").write_text("1 / 0\n")
    with Command(["broken:app", "--port", "0", "--log-level", "debug"], app_dir) as command:
        assert command.wait() == 1
    assert "Traceback" in command.stderr
    assert "ZeroDivisionError" in command.stderr


def test_port_in_use_exits_1(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        with Command(["--bind", f"127.0.0.1:{port}"], tmp_path) as command:
            assert command.wait() == 1
    assert f"vestespy: error: cannot bind 127.0.0.1:{port}: Address already in use" in (
        command.stderr
    )
    assert "Traceback" not in command.stderr


def test_worker_crashing_at_start_up_makes_the_supervisor_give_up(tmp_path: Path) -> None:
    # Crashes in the workers only: the start-up check imports the module before the
    # supervisor (vestespy._supervisor) is loaded, and must pass.
    (tmp_path / "crash.py").write_text(
        "import os, sys\n"
        "if 'vestespy._supervisor' in sys.modules:\n"
        "    os._exit(5)\n"
        "def app(server, req, res):\n"
        "    pass\n"
    )
    started = time.monotonic()
    with Command(["crash:app", "--port", "0"], tmp_path) as command:
        assert command.wait(60) == 1
    assert "failed to start 5 times in a row (last: exit status 5); giving up" in command.stderr
    assert time.monotonic() - started < 30


def test_factory_threads_0_and_ipv6(app_dir: Path) -> None:
    try:
        socket.create_server(("::1", 0), family=socket.AF_INET6).close()
    except OSError as exc:
        pytest.skip(f"no IPv6 loopback here: {exc}")
    args = ["app:make_app", "--factory", "--threads", "0", "--bind", "[::1]:0"]
    with Command(args, app_dir) as command:
        address = command.wait_ready()
        assert address[0] == "::1"
        assert command.stop() == 0


def test_server_options_flags_apply(app_dir: Path) -> None:
    with Command(["app:app", "--port", "0", "--max-body-size", "10"], app_dir) as command:
        address = command.wait_ready()
        status, _, _ = get(address, "/upload", method="POST", body=b"x" * 100)
        assert status == 413
        assert get(address, "/upload", method="POST", body=b"x" * 5)[0] == 200
        assert command.stop() == 0


def test_access_log_format_and_off(app_dir: Path) -> None:
    fmt = "{method} {path} {status} {bytes_sent} {header[X-Request-ID]}"
    with Command(["app:app", "--port", "0", "--access-log-format", fmt], app_dir) as command:
        address = command.wait_ready()
        get(address, "/client", headers={"X-Request-ID": "abc"})
        poll(lambda: "abc" in command.stdout, 10, "the access log line")
        assert command.stop() == 0
    assert "GET /client 200 " in command.stdout
    with Command(["app:app", "--port", "0", "--no-access-log"], app_dir) as command:
        address = command.wait_ready()
        for _ in range(3):
            assert get(address, "/pid")[0] == 200
        assert command.stop() == 0
    assert command.stdout == ""


def test_forwarded_allow_ips(app_dir: Path) -> None:
    headers = {"X-Forwarded-For": "203.0.113.9, 10.0.0.1", "X-Forwarded-Proto": "https"}
    args = ["app:app", "--port", "0", "--forwarded-allow-ips", "127.0.0.1,10.0.0.0/8"]
    with Command(args, app_dir) as command:
        address = command.wait_ready()
        body = get(address, "/client", headers=headers)[2].decode()
        client, peer, scheme, _ = body.split("|")
        assert (client, scheme) == ("203.0.113.9", "https")
        assert "127.0.0.1" in peer
        assert command.stop() == 0
    with Command(["app:app", "--port", "0"], app_dir) as command:  # not trusted: ignored
        address = command.wait_ready()
        body = get(address, "/client", headers=headers)[2].decode()
        assert body.split("|")[0] == "127.0.0.1"
        assert body.split("|")[2] == "http"
        assert command.stop() == 0


def test_wsgi_application(app_dir: Path) -> None:
    (app_dir / "wsgiapp.py").write_text(
        "def application(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        "    return [environ['SCRIPT_NAME'].encode(), b'|', environ['PATH_INFO'].encode()]\n"
    )
    args = ["--wsgi", "wsgiapp:application", "--root-path", "/mount", "--port", "0"]
    with Command(args, app_dir) as command:
        address = command.wait_ready(path="/mount/x")
        assert get(address, "/mount/x")[2] == b"/mount|/x"
        assert command.stop() == 0


# -- signals and draining -----------------------------------------------------------------


def _request_in_thread(
    address: tuple[str, int], path: str, results: list[object]
) -> threading.Thread:
    def run() -> None:
        try:
            results.append(get(address, path, timeout=30))
        except Exception as exc:
            results.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_drains_a_request_in_flight(app_dir: Path, signum: int) -> None:
    with Command(["app:app", "--port", "0", "--workers", "2"], app_dir) as command:
        address = command.wait_ready()
        results: list[object] = []
        thread = _request_in_thread(address, "/slow/700", results)
        poll(lambda: (app_dir / "inflight-700").exists(), 10, "the request to arrive")
        command.send_signal(signum)
        assert command.wait() == 0
        thread.join(10)
    assert len(results) == 1
    status, headers, body = results[0]  # type: ignore[misc]
    assert status == 200
    assert body.startswith(b"slept 700")
    assert headers["connection"] == "close"


def test_idle_keep_alive_connections_do_not_hold_the_drain(app_dir: Path) -> None:
    with Command(["app:app", "--port", "0"], app_dir) as command:
        address = command.wait_ready()
        idle = socket.create_connection(address, timeout=10)
        idle.sendall(b"GET /pid HTTP/1.1\r\nHost: x\r\n\r\n")
        assert b" 200 " in idle.recv(4096)
        started = time.monotonic()
        command.send_signal(signal.SIGTERM)
        assert command.wait() == 0
        assert time.monotonic() - started < 10  # not the 30 s graceful timeout
        assert idle.recv(4096) == b""  # closed by the server
        idle.close()


def test_graceful_timeout_closes_what_is_left(app_dir: Path) -> None:
    args = ["app:app", "--port", "0", "--graceful-timeout", "1"]
    with Command(args, app_dir) as command:
        address = command.wait_ready()
        results: list[object] = []
        thread = _request_in_thread(address, "/slow/20000", results)
        poll(lambda: (app_dir / "inflight-20000").exists(), 10, "the request to arrive")
        started = time.monotonic()
        command.send_signal(signal.SIGTERM)
        assert command.wait() == 0
        assert time.monotonic() - started < 10
        thread.join(10)
    assert isinstance(results[0], OSError | Exception)  # closed without a response


def test_second_signal_closes_at_once(app_dir: Path) -> None:
    with Command(["app:app", "--port", "0"], app_dir) as command:
        address = command.wait_ready()
        results: list[object] = []
        _request_in_thread(address, "/slow/20000", results)
        poll(lambda: (app_dir / "inflight-20000").exists(), 10, "the request to arrive")
        started = time.monotonic()
        command.send_signal(signal.SIGTERM)
        command.wait_for_log("SIGTERM: draining")
        command.send_signal(signal.SIGINT)
        assert command.wait() == 0
        assert time.monotonic() - started < 10
    assert "SIGINT again: closing every connection now" in command.stderr


@pytest.mark.parametrize("sockets", ["--reuse-port", "--no-reuse-port"])
def test_sighup_replaces_every_worker(app_dir: Path, sockets: str) -> None:
    # A socket per worker (SO_REUSEPORT, the default on Linux), or one shared by all.
    with Command(["app:app", "--port", "0", "--workers", "2", sockets], app_dir) as command:
        address = command.wait_ready()
        before = wait_for_pids(address, 2)
        command.send_signal(signal.SIGHUP)
        command.wait_for_log("reloaded: 2 new workers serving")
        for pid in before:
            poll(lambda pid=pid: not process_exists(pid), 20, f"old worker {pid} to exit")
        after = pids_seen(address, 20)
        assert after
        assert not after & before
        assert command.stop() == 0


def test_killed_worker_is_replaced(app_dir: Path) -> None:
    with Command(["app:app", "--port", "0", "--workers", "2"], app_dir) as command:
        address = command.wait_ready()
        victim = int(get(address, "/pid")[2].split()[0])
        os.kill(victim, signal.SIGKILL)
        command.wait_for_log(rf"worker {victim} died \(killed by SIGKILL\); starting a new one")
        pids = wait_for_pids(address, 2)
        assert victim not in pids
        assert command.stop() == 0


def test_max_requests_recycles_workers_without_failures(app_dir: Path) -> None:
    args = ["app:app", "--port", "0", "--max-requests", "5", "--max-requests-jitter", "2"]
    with Command(args, app_dir) as command:
        address = command.wait_ready()
        pids = []
        for _ in range(30):
            status, _, body = get(address, "/pid")
            assert status == 200
            pids.append(int(body.split()[0]))
        # Each worker serves 5 to 7 requests (the first one also served wait_ready's probes).
        assert len(set(pids)) >= 4
        assert command.stop() == 0
    assert "reached --max-requests; replacing it" in command.stderr


def test_supervisor_killed_makes_workers_exit(app_dir: Path) -> None:
    with Command(["app:app", "--port", "0", "--workers", "2"], app_dir) as command:
        address = command.wait_ready()
        pids = wait_for_pids(address, 2)
        command.process.kill()
        command.wait()
        for pid in pids:
            poll(lambda pid=pid: not process_exists(pid), 20, f"orphan worker {pid} to exit")


# -- sockets --------------------------------------------------------------------------------


def test_unix_socket_served_removed_and_stale_one_replaced(app_dir: Path) -> None:
    path = str(app_dir / "app.sock")
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(path)  # as a crashed server leaves it: a socket file nobody listens on
    stale.close()
    with Command(["app:app", "--bind", f"unix:{path}", "--workers", "2"], app_dir) as command:
        command.wait_for_log(f"serving .* on unix:{path}")
        poll(lambda: _unix_answers(path), 20, "the UNIX socket to answer")
        assert get(path, "/client")[0] == 200
        assert command.stop() == 0
    assert not os.path.exists(path)


def _unix_answers(path: str) -> bool:
    try:
        return get(path, "/pid", timeout=2)[0] == 200
    except OSError:
        return False


def test_unix_socket_in_use_is_refused(app_dir: Path) -> None:
    path = str(app_dir / "busy.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as busy:
        busy.bind(path)
        busy.listen()
        with Command(["app:app", "--bind", f"unix:{path}"], app_dir) as command:
            assert command.wait() == 1
    assert f"cannot bind unix:{path}: another server is listening on it" in command.stderr
    assert os.path.exists(path)  # not removed: it is not ours


def test_bind_fd(app_dir: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as listening:
        fd = listening.fileno()
        args = ["app:app", "--bind", f"fd://{fd}", "--workers", "2"]
        with Command(args, app_dir, pass_fds=[fd]) as command:
            address = command.wait_ready()
            assert address == listening.getsockname()
            assert command.stop() == 0


def test_bind_fd_that_is_not_a_listening_socket(app_dir: Path) -> None:
    with open(app_dir / "app.py") as regular:
        fd = regular.fileno()
        with Command(["app:app", "--bind", f"fd://{fd}"], app_dir, pass_fds=[fd]) as command:
            assert command.wait() == 1
    assert f"cannot use fd://{fd}" in command.stderr


def test_systemd_socket_activation(app_dir: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as listening:
        fd = listening.fileno()
        # systemd passes the sockets from descriptor 3 and names this process in LISTEN_PID.
        script = (
            f"import os, sys; os.dup2({fd}, 3); os.environ['LISTEN_FDS'] = '1';"
            " os.environ['LISTEN_PID'] = str(os.getpid()); os.execv(sys.argv[1], sys.argv[1:])"
        )
        prefix = [sys.executable, "-c", script]
        with Command(["app:app"], app_dir, pass_fds=[fd], prefix=prefix) as command:
            address = command.wait_ready()
            assert address == listening.getsockname()
            assert "fd://3" not in command.url()
            assert command.stop() == 0


# -- --reload -------------------------------------------------------------------------------


def test_reload_flag_picks_up_an_edited_file(app_dir: Path) -> None:
    with Command(["app:app", "--port", "0", "--reload"], app_dir) as command:
        address = command.wait_ready()
        assert get(address, "/pid")[2].endswith(b" one")
        (app_dir / "app.py").write_text(APP.replace('VERSION = "one"', 'VERSION = "second"'))
        # The edit changes the file's size: Python would take a cached .pyc written in the
        # same second for a file of the same size as up to date.
        poll(lambda: get(address, "/pid")[2].endswith(b" second"), 20, "the edited code")
        # A broken edit keeps the last good workers serving.
        (app_dir / "app.py").write_text(APP + "\n1 / 0\n")
        command.wait_for_log("reload failed")
        assert get(address, "/pid")[2].endswith(b" second")
        assert command.stop() == 0


def test_reloads_under_a_client_loop_fail_no_request(app_dir: Path) -> None:
    with Command(["app:app", "--port", "0", "--workers", "2"], app_dir) as command:
        address = command.wait_ready()
        stop = threading.Event()
        outcomes: list[object] = []

        def client() -> None:
            while not stop.is_set():
                try:
                    outcomes.append(get(address, "/pid")[0])
                except Exception as exc:
                    outcomes.append(exc)

        threads = [threading.Thread(target=client, daemon=True) for _ in range(4)]
        for thread in threads:
            thread.start()
        for count in range(1, 4):
            enough = 50 * count
            poll(lambda n=enough: len(outcomes) > n, 20, "requests between reloads")
            command.send_signal(signal.SIGHUP)
            command.wait_for_log("reloaded: 2 new workers", count=count)
        poll(lambda: len(outcomes) > 50 * 4, 20, "requests after the reloads")
        stop.set()
        for thread in threads:
            thread.join(20)
        assert command.stop() == 0
    failures = [o for o in outcomes if o != 200]
    assert not failures, failures[:5]
    assert len(outcomes) > 200


@pytest.mark.skipif(
    not batch_policy_allowed(), reason="no SCHED_BATCH here (not Linux, or refused)"
)
@pytest.mark.parametrize(
    ("flags", "policy"),
    [
        ([], "SCHED_BATCH"),
        (["--no-sched-batch"], "SCHED_OTHER"),
        (["--threads", "0"], "SCHED_OTHER"),  # one thread: nobody to take turns with
    ],
)
def test_workers_with_listener_threads_run_under_sched_batch(
    app_dir: Path, flags: list[str], policy: str
) -> None:
    with Command(["app:app", "--port", "0", *flags], app_dir) as command:
        address = command.wait_ready()
        worker = int(get(address, "/pid")[2].split()[0])  # a listener thread has run
        threads = [int(tid) for tid in os.listdir(f"/proc/{worker}/task")]
        policies = {os.sched_getscheduler(tid) for tid in threads}
        assert policies == {getattr(os, policy)}, (threads, policies)
        assert os.sched_getscheduler(command.pid) == os.SCHED_OTHER  # the supervisor's
        assert command.stop() == 0
