"""Request ids: one per request, a trusted proxy's ``X-Request-ID`` or one made here.

Theory of operation: an id is made only when something asks for it (the access log's
``request_id`` field, :attr:`Request.request_id <vestespy.Request.request_id>`, the WSGI
environ, ``echo_request_id``), so a server that uses none pays nothing per request. A made id
is this process's random prefix (64 bits, hex) and a decimal counter: unique across the workers of
one command and across restarts, without a system call per request (``uuid4`` reads
``os.urandom`` each time: about twenty times the cost, measured with ``timeit``). The prefix
is drawn again in a forked child, so that workers forked from one parent never share it.

A proxy's id is taken only from a peer in ``trusted_proxies`` (the client's own header is
anyone's to forge), and only when it is 1 to :data:`MAX_LENGTH` visible ASCII characters:
anything else (spaces, controls, quotes that would need escaping, a huge value) gets a
made id instead.
"""

from __future__ import annotations

import itertools
import os
import re

__all__ = ["MAX_LENGTH", "new_request_id", "valid_request_id"]

#: The longest ``X-Request-ID`` a trusted proxy's id may be (longer: an id is made).
MAX_LENGTH = 200

# Visible ASCII but the quote and the backslash, which log formats would have to escape.
_VALID = re.compile(rf"[!#-\[\]-~]{{1,{MAX_LENGTH}}}")


def _reseed() -> None:
    global _prefix, _counter
    _prefix = os.urandom(8).hex() + "-"
    _counter = itertools.count(1)


_prefix = ""
_counter = itertools.count(1)
_reseed()
os.register_at_fork(after_in_child=_reseed)


def new_request_id() -> str:
    """A request id unique to this process and its run, such as ``"3f9a1c0e5b7d2a48-26"``."""
    # next() on itertools.count is atomic: threads never get the same number.
    return f"{_prefix}{next(_counter)}"  # decimal: half the cost of format(n, "x")


def valid_request_id(value: str | None) -> bool:
    """Whether a proxy's ``X-Request-ID`` value may be used as the request's id."""
    return value is not None and _VALID.fullmatch(value) is not None
