"""The command's process set-up: ``--chdir``, ``--umask``, ``--pid``, ``--user``, ``--group``.

Theory of operation, in the order :func:`~vestespy.cli.run` applies them:

1. ``--chdir DIR`` and ``--umask MODE`` first, before anything is bound or imported: the
   application is found from the new directory, and a UNIX socket is created with the mode
   the umask leaves.
2. ``--user`` and ``--group`` are resolved before binding too (a wrong name is one line,
   status 1, nothing bound), but applied only after binding, in the supervisor before it
   forks the workers: a privileged port (80, 443) is bound as root, then the process and
   every worker run as the user. UNIX socket files made by the command are handed to the
   user first, so that a restart as that user can replace them.
3. ``--pid FILE`` is written once the sockets are bound (before the drop, so that it can
   live in a directory only root may write, such as ``/run``) and removed at exit if it still
   holds this process's number.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from ._config import StartupError

__all__ = ["Identity", "apply_early", "drop_privileges", "parse_umask", "pid_file", "resolve"]

logger: logging.Logger = logging.getLogger("vestespy.error")


def parse_umask(text: str) -> int:
    """Read a umask in octal: ``022``, ``0o022`` or ``27``.

    Raises:
        ValueError: Not an octal number from 0 to 0o777.
    """
    digits = text.strip().lower().removeprefix("0o")
    try:
        value = int(digits, 8)
    except ValueError:
        raise ValueError(f"--umask {text!r}: write it in octal, such as 022") from None
    if not 0 <= value <= 0o777:
        raise ValueError(f"--umask {text!r}: must be between 000 and 777")
    return value


def apply_early(chdir: str | None, umask: int | None) -> None:
    """``--chdir`` and ``--umask``: before binding and before the application is looked for.

    Raises:
        StartupError: The directory cannot be entered.
    """
    if chdir is not None:
        try:
            os.chdir(chdir)
        except OSError as exc:
            raise StartupError(f"--chdir {chdir}: {exc.strerror or exc}") from None
    if umask is not None:
        os.umask(umask)


@dataclass(frozen=True)
class Identity:
    """Whom to run as after binding (None: unchanged)."""

    uid: int | None = None
    gid: int | None = None
    name: str | None = None  # the user's name, for its supplementary groups

    @property
    def changes(self) -> bool:
        """Whether anything is to be changed."""
        return self.uid is not None or self.gid is not None


def resolve(user: str | None, group: str | None) -> Identity:
    """Look up ``--user`` and ``--group`` (names or numbers) before anything is bound.

    Without ``--group``, the user's primary group.

    Raises:
        StartupError: Unknown user or group, no support on this platform, or the process
            cannot change to them (not root).
    """
    if user is None and group is None:
        return Identity()
    try:
        import grp
        import pwd
    except ImportError:  # pragma: no cover - Windows
        raise StartupError("--user and --group need a POSIX system") from None
    uid = gid = None
    name = None
    if user is not None:
        try:
            entry = pwd.getpwuid(int(user)) if user.isdigit() else pwd.getpwnam(user)
        except KeyError:
            if not user.isdigit():
                raise StartupError(f"--user {user}: no such user") from None
            uid = int(user)
        else:
            uid, name = entry.pw_uid, entry.pw_name
            gid = entry.pw_gid
    if group is not None:
        try:
            gid = grp.getgrgid(int(group)).gr_gid if group.isdigit() else grp.getgrnam(group).gr_gid
        except KeyError:
            if not group.isdigit():
                raise StartupError(f"--group {group}: no such group") from None
            gid = int(group)
    identity = Identity(uid, gid, name)
    wanted = (uid is not None and uid != os.geteuid()) or (gid is not None and gid != os.getegid())
    if wanted and os.geteuid() != 0:
        raise StartupError(
            f"--user/--group: changing to uid {uid} gid {gid} needs root (running as uid"
            f" {os.geteuid()})"
        )
    return identity


def drop_privileges(identity: Identity, owned_paths: Sequence[str] = ()) -> None:
    """Become ``identity``: group first (it needs root), then the user, for good.

    Args:
        identity: From :func:`resolve`.
        owned_paths: Files this process created (UNIX sockets, the pid file), handed to the
            new owner so that it can remove them at exit where the directory allows.

    Raises:
        StartupError: The system refused a change.
    """
    if not identity.changes:
        return
    uid = identity.uid if identity.uid is not None else -1
    gid = identity.gid if identity.gid is not None else -1
    try:
        for path in owned_paths:
            os.chown(path, uid, gid)
        if identity.gid is not None:
            if identity.name is not None:
                os.initgroups(identity.name, identity.gid)
            else:
                os.setgroups([identity.gid])
            os.setgid(identity.gid)
        if identity.uid is not None:
            os.setuid(identity.uid)
    except OSError as exc:
        raise StartupError(f"--user/--group: {exc.strerror or exc}") from None
    logger.info("running as uid %d gid %d", os.getuid(), os.getgid())


@contextlib.contextmanager
def pid_file(path: str | None) -> Iterator[None]:
    """Write this process's number to ``path`` for the duration; remove it afterwards.

    Raises:
        StartupError: Another live process's number is in the file, or it cannot be written.
    """
    if path is None:
        yield
        return
    try:
        with open(path, encoding="ascii") as file:
            other = int(file.read().strip() or "0")
    except (OSError, ValueError, UnicodeDecodeError):
        other = 0
    if other and other != os.getpid() and _alive(other):
        raise StartupError(f"--pid {path}: process {other} is running with this pid file")
    mine = f"{os.getpid()}\n"
    try:
        with open(path, "w", encoding="ascii") as file:
            file.write(mine)
    except OSError as exc:
        raise StartupError(f"--pid {path}: {exc.strerror or exc}") from None
    try:
        yield
    finally:
        try:
            with open(path, encoding="ascii") as file:
                still_ours = file.read() == mine
            if still_ours:
                os.unlink(path)
        except OSError as exc:  # e.g. a root-only directory after --user
            logger.warning("could not remove the pid file %s: %s", path, exc.strerror or exc)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
