"""The command's checks before it binds a socket or starts a worker.

Theory of operation: every mistake the command can find before serving is found here, so that
it is one line on stderr within a second, instead of a traceback per worker start. Each check
raises :class:`~vestespy._config.StartupError` (exit status 1: a file, the application's code)
or :class:`~vestespy._config.UsageError` (exit status 2: the command line itself).

* TLS: the certificate and key files are read and loaded into a context exactly as the workers
  will, after simpler checks that name the problem (missing, unreadable, a key given as the
  certificate, an encrypted key without a password); OpenSSL's own errors are the last resort.
* The application: imported in a child process forked for the purpose, which reports its kind
  (see :mod:`vestespy._appkind`) or the one-line error, and exits. The supervisor itself never
  imports the application, so that each worker (and each reload) imports the code as it is on
  disk then. The application's module is therefore imported once more than there are workers,
  and with ``--factory`` the factory is called once more too.
"""

from __future__ import annotations

import os
import select
import ssl
import sys
import time
from typing import NoReturn

from ._appkind import Kind
from ._config import Config, StartupError, UsageError

__all__ = ["CHECK_TIMEOUT", "check_application", "check_tls"]

#: Seconds the application's import may take in the checking process.
CHECK_TIMEOUT = 60.0

_CERTIFICATE = b"-----BEGIN CERTIFICATE-----"
_PRIVATE_KEY = b"PRIVATE KEY-----"
_ENCRYPTED = (b"-----BEGIN ENCRYPTED PRIVATE KEY-----", b"Proc-Type: 4,ENCRYPTED")


class _NoPassword(Exception):
    """OpenSSL asked for the key's password and there is none (instead of a terminal prompt)."""


def _read(flag: str, path: str) -> bytes:
    try:
        with open(path, "rb") as file:
            return file.read()
    except FileNotFoundError:
        raise StartupError(f"{flag} {path}: no such file") from None
    except IsADirectoryError:
        raise StartupError(f"{flag} {path}: is a directory, not a file") from None
    except PermissionError:
        raise StartupError(f"{flag} {path}: cannot be read (permission denied)") from None
    except OSError as exc:
        raise StartupError(f"{flag} {path}: cannot be read ({exc.strerror or exc})") from None


def _no_password() -> NoReturn:
    raise _NoPassword


def check_tls(certfile: str | None, keyfile: str | None, password: str | None = None) -> None:
    """Check that ``certfile`` and ``keyfile`` make a TLS server context, as the workers will.

    Args:
        certfile: ``--certfile``: the PEM certificate chain (and the key, without keyfile).
        keyfile: ``--keyfile``: the PEM private key, or None when it is in ``certfile``.
        password: The key's password, if it is encrypted.

    Raises:
        StartupError: A file is missing or unreadable, is not what its flag says, the key does
            not match the certificate, or the key is encrypted and no password is given.
        UsageError: ``keyfile`` without ``certfile``.
    """
    if certfile is None:
        if keyfile is not None:
            raise UsageError(f"--keyfile {keyfile}: needs --certfile (the certificate)")
        return
    cert = _read("--certfile", certfile)
    key = _read("--keyfile", keyfile) if keyfile is not None else cert
    key_flag, key_path = ("--keyfile", keyfile) if keyfile is not None else ("--certfile", certfile)
    if _CERTIFICATE not in cert:
        if _PRIVATE_KEY in cert:
            raise StartupError(
                f"--certfile {certfile}: is a private key, not a certificate (give the"
                " certificate chain here and the key with --keyfile)"
            )
        raise StartupError(f"--certfile {certfile}: no PEM certificate in it")
    if _PRIVATE_KEY not in key:
        if keyfile is None:
            raise StartupError(
                f"--certfile {certfile}: no private key in it; give the key with --keyfile"
            )
        if _CERTIFICATE in key:
            raise StartupError(f"--keyfile {keyfile}: is a certificate, not a private key")
        raise StartupError(f"--keyfile {keyfile}: no PEM private key in it")
    if password is None and any(marker in key for marker in _ENCRYPTED):
        raise StartupError(
            f"{key_flag} {key_path}: the private key is encrypted and no password is given"
        )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(
            certfile, keyfile, password if password is not None else _no_password
        )
    except _NoPassword:
        raise StartupError(
            f"{key_flag} {key_path}: the private key is encrypted and no password is given"
        ) from None
    except ssl.SSLError as exc:
        reason = str(exc.reason or exc)
        if "KEY_VALUES_MISMATCH" in reason:
            if keyfile is None:
                raise StartupError(
                    f"--certfile {certfile}: its private key is not the certificate's"
                ) from None
            raise StartupError(
                f"--keyfile {keyfile}: does not match --certfile {certfile} (the key is not"
                " the certificate's)"
            ) from None
        encrypted = any(marker in key for marker in _ENCRYPTED)
        if "BAD_DECRYPT" in reason.upper() or (encrypted and "PEM" in reason.upper()):
            raise StartupError(f"{key_flag} {key_path}: wrong password for the key") from None
        raise StartupError(
            f"--certfile {certfile}: OpenSSL cannot load it with {key_flag} {key_path} ({reason})"
        ) from None
    except OSError as exc:  # the file changed between the checks
        raise StartupError(f"--certfile {certfile}: {exc.strerror or exc}") from None


def _report(write_fd: int, config: Config) -> int:
    """In the checking process: load the application and write the verdict; the exit code."""
    from ._worker import load_application

    try:
        kind, _ = load_application(config)
    except StartupError as exc:
        verdict = f"E{exc.status} {exc}"
    except BaseException as exc:  # whatever the import does (SystemExit too): one line
        verdict = f"E1 error while importing {config.app}: {type(exc).__name__}: {exc}"
    else:
        verdict = f"K {kind}"
    os.write(write_fd, verdict.encode("utf-8", "replace"))
    return 0


def check_application(config: Config) -> Kind:
    """Load the application once, away from the supervisor, and return its kind.

    With ``os.fork`` the import runs in a child process that exits afterwards; without it (the
    command then serves in this process anyway), here.

    Args:
        config: The command line.

    Raises:
        StartupError: The application cannot be imported or served as asked (UsageError: the
            command line does not fit it), or its import ended the process.
    """
    if not hasattr(os, "fork"):
        from ._worker import load_application

        return load_application(config)[0]
    read_fd, write_fd = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: never returns into the command
        status = 1
        try:
            os.close(read_fd)
            status = _report(write_fd, config)
        finally:
            os._exit(status)
    os.close(write_fd)
    try:
        verdict = _read_verdict(read_fd, pid, time.monotonic())
    finally:
        os.close(read_fd)
    if verdict.startswith("K "):
        kind = verdict[2:]
        if kind == "vestespy":
            return "vestespy"
        assert kind == "wsgi", kind
        return "wsgi"
    code, _, message = verdict.partition(" ")
    if code == "E2":
        raise UsageError(message)
    raise StartupError(message)


def _read_verdict(fd: int, pid: int, started: float) -> str:
    data = b""
    deadline = started + CHECK_TIMEOUT
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            raise StartupError(f"loading the application took more than {CHECK_TIMEOUT:g} s")
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        data += chunk
    _, status = os.waitpid(pid, 0)
    if data:
        return data.decode("utf-8", "replace")
    if os.WIFSIGNALED(status):
        how = f"was killed by signal {os.WTERMSIG(status)}"
    else:
        how = f"exited with status {os.waitstatus_to_exitcode(status)}"
    raise StartupError(f"loading the application ended its process: it {how}")
