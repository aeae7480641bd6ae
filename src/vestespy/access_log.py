"""The access log: one line per response on the ``vestespy.access`` logger.

Theory of operation: the server calls its ``access_log`` hook once per finished response
(:data:`AccessHook`: the request, the status, the body bytes sent and the duration in seconds);
with no hook set, it does nothing per request at all. :class:`AccessLogFormatter` turns those
into a line from a format of named fields, ``{client} "{request_line}" {status}``, computing
only the fields the format names. Every value that came from the client is escaped (``"``,
``\\``, control characters and non-ASCII become ``\\xHH``), so a request cannot forge a log
line or a field boundary. :class:`AccessLogger` is the hook the command line installs: it
formats only when the ``vestespy.access`` logger would emit the record.

The server's own answers (a 400 for a malformed request, 408 for a deadline, 413, 414, 431,
the 503 of ``limit_concurrency``...) reach the hook too, with a request whose
:attr:`~vestespy.Request.rejection` says why; a line of the text format then ends with
``rejected="reason"`` (unless the format places ``{rejection}`` itself). The format
:data:`JSON_FORMAT` (``"json"``) makes one JSON object per line instead (:data:`JSON_FIELDS`).
"""

from __future__ import annotations

import json
import logging
import os
import re
import string
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from ._mypyc import mypyc_attr

if TYPE_CHECKING:
    from .request import Request

__all__ = [
    "COMBINED_FORMAT",
    "FIELDS",
    "JSON_FIELDS",
    "JSON_FORMAT",
    "AccessHook",
    "AccessLogFormatter",
    "AccessLogger",
    "WebSocketCounts",
    "escape",
    "websocket_line",
]

#: ``hook(request, status, bytes_sent, duration)``: called once per finished response, on the
#: thread that finished it; ``bytes_sent`` counts body bytes, ``duration`` is in seconds from
#: the request head to the response's last byte being queued.
AccessHook = Callable[["Request", int, int, float], object]

#: A WebSocket's counts at its end, as messages in, bytes in, messages out and bytes out (the
#: bytes of frames as they crossed the socket).
WebSocketCounts = tuple[int, int, int, int]


def websocket_line(
    formatter: Callable[[Request, int, int, float], str],
    request: Request,
    duration: float,
    counts: WebSocketCounts,
) -> str:
    """The access log line of a WebSocket's end: the format's line for its handshake's
    request with status 101, the bytes it sent and its duration, then
    ``ws_in=MESSAGES/BYTES ws_out=MESSAGES/BYTES``.

    A hook with a ``websocket_closed(request, duration, counts)`` method (as
    :class:`AccessLogger` has) is called with it at a WebSocket's end; any other hook is called
    as for a response, with status 101, the bytes sent and the duration.
    """
    messages_in, bytes_in, messages_out, bytes_out = counts
    line = formatter(request, 101, bytes_out, duration)
    return f"{line} ws_in={messages_in}/{bytes_in} ws_out={messages_out}/{bytes_out}"


#: The default format, Apache's and nginx's "combined" with the duration in ms appended.
COMBINED_FORMAT = (
    '{client} - - [{time}] "{request_line}" {status} {bytes} "{referer}" "{user_agent}" '
    "{duration_ms}"
)

#: The fields a format may name, and what each holds. ``{header[NAME]}`` gives any request
#: header field.
FIELDS: dict[str, str] = {
    "client": "the client address (through trusted proxies)",
    "peer": "the socket peer address",
    "method": "the request method",
    "target": "the request-target as received",
    "path": "the decoded path",
    "query": "the query string",
    "version": "the protocol, such as HTTP/1.1",
    "request_line": "method, target and protocol, as in the request line",
    "status": "the response status code",
    "bytes": "the body bytes sent ('-' for none)",
    "bytes_sent": "the body bytes sent (0 for none)",
    "duration_ms": "the time taken in milliseconds, three decimals",
    "duration_us": "the time taken in microseconds",
    "duration_s": "the time taken in seconds, six decimals",
    "user_agent": "the User-Agent field",
    "referer": "the Referer field",
    "request_id": "the request's id: a trusted proxy's X-Request-ID, or made by the server",
    "rejection": "why the server answered the request itself ('-' when the application did)",
    "host": "the requested host (through trusted proxies)",
    "scheme": "http or https (through trusted proxies)",
    "time": "the local time, as 10/Oct/2026:13:55:36 +0000",
    "time_iso": "the local time in ISO 8601",
    "pid": "the worker's process id",
    "header": "header[NAME]: the request header field NAME",
}

#: The format that makes each line one JSON object (``--access-log-format json``).
JSON_FORMAT = "json"

#: The keys of a JSON line, and what each holds; a value that is not there is ``null``.
JSON_FIELDS: dict[str, str] = {
    "time": "the local time in ISO 8601 (string)",
    "client": "the client address, through trusted proxies (string)",
    "peer": "the socket peer address (string)",
    "method": "the request method (string; null if the head was not parsed)",
    "target": "the request-target as received (string; null if the head was not parsed)",
    "version": "the protocol, such as HTTP/1.1 (string; null if the head was not parsed)",
    "status": "the response status code (number)",
    "bytes_sent": "the body bytes sent (number)",
    "duration_ms": "the time taken in milliseconds, three decimals (number)",
    "referer": "the Referer field (string or null)",
    "user_agent": "the User-Agent field (string or null)",
    "host": "the requested host, through trusted proxies (string or null)",
    "scheme": "http or https, through trusted proxies (string)",
    "request_id": "the request's id (string)",
    "pid": "the worker's process id (number)",
    "rejected": "whether the server answered the request itself (true or false)",
    "reason": "why the server answered it itself (string; null when the application did)",
}

_ESCAPES = {i: f"\\x{i:02x}" for i in (*range(0x20), 0x22, 0x5C, *range(0x7F, 0x100))}


def escape(value: str) -> str:
    """Escape a value for a log line: quotes, backslashes, controls and non-ASCII as ``\\xHH``.

    Example:
        >>> from vestespy.access_log import escape
        >>> escape('a"b\\nc')
        'a\\\\x22b\\\\x0ac'
    """
    if value.isascii() and value.isprintable() and '"' not in value and "\\" not in value:
        return value
    escaped = value.translate(_ESCAPES)
    if not escaped.isascii():  # beyond Latin-1 (values are Latin-1 from the wire, but...)
        escaped = escaped.encode("ascii", "backslashreplace").decode("ascii")
    return escaped


# The current second and its CLF and ISO 8601 forms: recomputed once a second, not per line.
#: The current second ``[start, end)`` and its CLF and ISO 8601 local forms, recomputed once
#: a second, not per line; one tuple in a list, replaced whole (threads read it unlocked).
_time_cache: list[tuple[float, float, str, str]] = [(0.0, 0.0, "", "")]


def _local_times() -> tuple[float, float, str, str]:
    """The current second ``[start, end)`` and its CLF and ISO 8601 local forms."""
    cache = _time_cache[0]
    now = time.time()
    if not cache[0] <= now < cache[1]:
        second = int(now)
        local = time.localtime(second)
        cache = (
            float(second),
            float(second + 1),
            time.strftime("%d/%b/%Y:%H:%M:%S %z", local),
            time.strftime("%Y-%m-%dT%H:%M:%S%z", local),
        )
        _time_cache[0] = cache
    return cache


def _raw_address(address: object) -> str:
    if isinstance(address, tuple) and address:
        return str(address[0])
    return str(address) if address else "-"


def _address(address: object) -> str:
    if isinstance(address, tuple) and address:
        return escape(str(address[0]))
    return escape(str(address)) if address else "-"


class _Headers:
    __slots__ = ("_request",)

    def __init__(self, request: Request) -> None:
        self._request = request

    def __getitem__(self, name: str) -> str:
        value = self._request.headers.get(name)
        return "-" if value is None else escape(value)


class _Fields:
    """The mapping ``str.format_map`` reads: each field computed when asked for."""

    __slots__ = ("bytes_sent", "duration", "request", "status")

    def __init__(self, request: Request, status: int, bytes_sent: int, duration: float):
        self.request = request
        self.status = status
        self.bytes_sent = bytes_sent
        self.duration = duration

    def __getitem__(self, name: str) -> object:
        request = self.request
        if name == "client":
            return _address(request.client_address)
        if name == "peer":
            return _address(request.peer_address)
        if name == "method":
            return escape(request.method)
        if name == "target":
            return escape(request.target)
        if name == "path":
            return escape(request.path)
        if name == "query":
            return escape(request.query) or "-"
        if name == "version":
            return f"HTTP/{request.http_version}" if request.http_version else "-"
        if name == "request_line":
            if not request.http_version:
                return "-"  # a head the server refused before parsing it
            return escape(f"{request.method} {request.target} HTTP/{request.http_version}")
        if name == "status":
            return self.status
        if name == "bytes":
            return self.bytes_sent or "-"
        if name == "bytes_sent":
            return self.bytes_sent
        if name == "duration_ms":
            return f"{self.duration * 1000:.3f}"
        if name == "duration_us":
            return round(self.duration * 1_000_000)
        if name == "duration_s":
            return f"{self.duration:.6f}"
        if name in ("user_agent", "referer"):
            value = request.headers.get("user-agent" if name == "user_agent" else "referer")
            return "-" if value is None else escape(value)
        if name == "request_id":
            return escape(request.request_id)
        if name == "rejection":
            reason = request.rejection
            return "-" if reason is None else escape(reason)
        if name == "host":
            return escape(request.host) if request.host else "-"
        if name == "scheme":
            return request.scheme
        if name == "time":
            return _local_times()[2]
        if name == "time_iso":
            return _local_times()[3]
        if name == "pid":
            return os.getpid()
        if name == "header":
            return _Headers(request)
        raise KeyError(name)


def _header(request: Request, name: str) -> str:
    value = request.headers.get(name)
    return "-" if value is None else escape(value)


def _mark(reason: str) -> str:
    """What ends a text line of a request the server answered itself."""
    return f' rejected="{escape(reason)}"'


#: Each field as Python statements over ``request, status, bytes_sent, duration`` setting
#: ``v`` (renamed per field), for the compiled formatter, and whether the value came from the
#: client (escaped). What :class:`_Fields` computes, escaping aside (see _compile).
_FIELD_CODE: dict[str, tuple[str, bool]] = {
    "client": ("v = _raw_address(request.client_address)", True),
    "peer": ("v = _raw_address(request.peer_address)", True),
    "method": ("v = request.method", True),
    "target": ("v = request.target", True),
    "path": ("v = request.path", True),
    "query": ('v = request.query or "-"', True),
    "version": ('v = f"HTTP/{request.http_version}" if request.http_version else "-"', False),
    "request_line": (
        'v = f"{request.method} {request.target} HTTP/{request.http_version}"'
        ' if request.http_version else "-"',
        True,
    ),
    "status": ("v = status", False),
    "bytes": ('v = bytes_sent or "-"', False),
    "bytes_sent": ("v = bytes_sent", False),
    "duration_ms": ('v = f"{duration * 1000:.3f}"', False),
    "duration_us": ("v = round(duration * 1_000_000)", False),
    "duration_s": ('v = f"{duration:.6f}"', False),
    "user_agent": ('v = request.headers.get("user-agent")\nif v is None: v = "-"', True),
    "referer": ('v = request.headers.get("referer")\nif v is None: v = "-"', True),
    "request_id": ("v = request.request_id", True),
    "rejection": ('v = request.rejection\nif v is None: v = "-"', True),
    "host": ('v = request.host or "-"', True),
    "scheme": ("v = request.scheme", False),
    "time": (
        "v = _time_cache[0]\nif not v[0] <= _now() < v[1]: v = _local_times()\nv = v[2]",
        False,
    ),
    "time_iso": (
        "v = _time_cache[0]\nif not v[0] <= _now() < v[1]: v = _local_times()\nv = v[3]",
        False,
    ),
    "pid": ("v = _getpid()", False),
}
_HELPERS: dict[str, object] = {
    "_raw_address": _raw_address,
    "_escape": escape,
    "_time_cache": _time_cache,
    "_local_times": _local_times,
    "_now": time.time,
    "_getpid": os.getpid,
    "_mark": _mark,
}


_HEADER_FIELD = re.compile(r"header\[([^\[\]{}.]+)\]")

_LineFunction = Callable[["Request", int, int, float], str]


def _compile(format: str) -> _LineFunction | None:
    """The format as one Python function: its fields computed in line, then one f-string.

    ``str.format_map`` over :class:`_Fields` costs a call and a string of comparisons per
    field, and :func:`escape` checks each client value apart; here the client values are
    checked together, once (escaped one by one only if that finds anything to escape): about
    three times cheaper, for a line per response. The generated source holds only the code of
    :data:`_FIELD_CODE`, names, and the format's literal text as :func:`repr` writes it (a
    plain string literal, which Python joins with the fields' f-strings at compile time):
    format specs and header names are passed in as values, never pasted into the source. A
    format using anything else (an attribute or index of a field, a nested field in a spec)
    returns None: :class:`_Fields` handles it.
    """
    namespace: dict[str, object] = dict(_HELPERS)
    body: list[str] = []
    client: list[str] = []
    pieces: list[str] = []
    names: set[str] = set()
    for index, (literal, name, spec, conversion) in enumerate(string.Formatter().parse(format)):
        if name is not None:
            names.add(name)
        if literal:
            pieces.append(repr(literal))  # a plain string literal, exact whatever it holds
        if name is None:
            continue
        header = _HEADER_FIELD.fullmatch(name)
        if header is not None and not header.group(1).isdigit():
            namespace[f"_h{index}"] = header.group(1)
            code, escaped = f'v = request.headers.get(_h{index})\nif v is None: v = "-"', True
        elif name in _FIELD_CODE:
            code, escaped = _FIELD_CODE[name]
        else:
            return None
        if (spec and "{" in spec) or conversion not in (None, "r", "s", "a"):
            return None
        variable = f"v{index}"
        body += [re.sub(r"\bv\b", variable, statement) for statement in code.split("\n")]
        if escaped:
            client.append(variable)
        piece = variable
        if conversion:
            piece += f"!{conversion}"
        if spec:
            namespace[f"_s{index}"] = spec
            piece += f":{{_s{index}}}"
        pieces.append(f'f"{{{piece}}}"')
    if client:
        # One check of every client value: the common line has nothing to escape.
        body.append(f"raw = {' + '.join(client)}")
        body.append(
            "if not (raw.isascii() and raw.isprintable()"
            " and '\"' not in raw and '\\\\' not in raw):"
        )
        body += [f"    {variable} = _escape({variable})" for variable in client]
    lines = "".join(f"    {statement}\n" for statement in body)
    # Adjacent literals: Python joins them into one f-string when it compiles the function.
    line = " ".join(pieces) or repr("")
    if "rejection" in names:
        end = f"    return {line}\n"
    else:  # the server's own answers are marked whatever the format
        end = (
            f"    line = {line}\n"
            "    reason = request.rejection\n"
            "    return line if reason is None else line + _mark(reason)\n"
        )
    source = f"def _line(request, status, bytes_sent, duration):\n{lines}{end}"
    exec(source, namespace)
    return cast("_LineFunction", namespace["_line"])


def _combined_line(request: Request, status: int, bytes_sent: int, duration: float) -> str:
    """The line of :data:`COMBINED_FORMAT`, the command's default: what :func:`_compile` makes
    of that format, written out so that mypyc compiles it (a function made by ``exec`` runs
    interpreted), for one line per response."""
    client = _raw_address(request.client_address)
    times = _time_cache[0]
    if not times[0] <= time.time() < times[1]:
        times = _local_times()
    version = request.http_version
    request_line = f"{request.method} {request.target} HTTP/{version}" if version else "-"
    headers = request.headers
    referer = headers.get("referer")
    if referer is None:
        referer = "-"
    agent = headers.get("user-agent")
    if agent is None:
        agent = "-"
    # One check of every client value, as _compile's: the common line has nothing to escape.
    raw = client + request_line + referer + agent
    if not (raw.isascii() and raw.isprintable() and '"' not in raw and "\\" not in raw):
        client, request_line = escape(client), escape(request_line)
        referer, agent = escape(referer), escape(agent)
    # Only str values in the f-string, no format spec: mypyc joins them directly, where a
    # spec (or an int) makes it a str.format call that parses the template each time.
    sent = str(bytes_sent) if bytes_sent else "-"
    milliseconds = format(duration * 1000, ".3f")
    code = str(status)
    line = (
        f'{client} - - [{times[2]}] "{request_line}" {code} {sent} "{referer}" "{agent}" '
        f"{milliseconds}"
    )
    reason = request.rejection
    return line if reason is None else line + _mark(reason)


# Public: an application may subclass it (mypyc allows that only when asked).
@mypyc_attr(allow_interpreted_subclasses=True)
class AccessLogFormatter:
    """Formats access log lines from a format of named ``{fields}`` (see :data:`FIELDS`).

    Args:
        format: The line format, :data:`COMBINED_FORMAT` by default; :data:`JSON_FORMAT`
            (``"json"``) for JSON lines.

    Raises:
        ValueError: The format names an unknown field or is malformed.

    Example:
        >>> from vestespy.access_log import AccessLogFormatter
        >>> AccessLogFormatter("{method} {status}").fields
        ('method', 'status')
    """

    def __init__(self, format: str = COMBINED_FORMAT) -> None:
        names: list[str] = []
        if format == JSON_FORMAT:
            self.format: str = format
            self.fields: tuple[str, ...] = tuple(JSON_FIELDS)
            self.line: Callable[[Request, int, int, float], str] = _json_line
            return
        try:
            for _, name, _, _ in string.Formatter().parse(format):
                if name is None:
                    continue
                base = name.partition("[")[0].partition(".")[0]
                if base not in FIELDS:
                    raise ValueError(
                        f"unknown access log field {{{name}}}; known: {', '.join(FIELDS)}"
                    )
                if base == "header" and not name.startswith("header["):
                    raise ValueError("write a header field as {header[Name]}")
                names.append(base)
        except ValueError as exc:
            raise ValueError(f"bad access log format {format!r}: {exc}") from None
        #: The line format, as given.
        self.format = format
        #: The fields the format names, in order (for :data:`JSON_FORMAT`, the JSON keys).
        self.fields = tuple(names)
        #: ``line(request, status, bytes_sent, duration)`` returns the line, as calling the
        #: formatter does, one call less (the format compiled into one function).
        self.line = (
            _combined_line if format == COMBINED_FORMAT else _compile(format) or self._format_map
        )

    def __call__(self, request: Request, status: int, bytes_sent: int, duration: float) -> str:
        """Return the line for one response."""
        return self.line(request, status, bytes_sent, duration)

    def _format_map(self, request: Request, status: int, bytes_sent: int, duration: float) -> str:
        line = self.format.format_map(_Fields(request, status, bytes_sent, duration))
        reason = request.rejection
        if reason is None or "rejection" in self.fields:
            return line
        return line + _mark(reason)


# ensure_ascii: non-ASCII and control characters become \uXXXX, so a line stays one line of
# ASCII whatever the client sent; no spaces after separators; the values are never circular.
_encode_json = json.JSONEncoder(
    ensure_ascii=True, separators=(",", ":"), check_circular=False
).encode


def _json_address(address: object) -> str | None:
    if isinstance(address, tuple) and address:
        return str(address[0])
    return str(address) if address else None


def _json_line(request: Request, status: int, bytes_sent: int, duration: float) -> str:
    """One JSON object: the keys of :data:`JSON_FIELDS`, in that order."""
    parsed = bool(request.http_version)
    headers = request.headers
    reason = request.rejection
    return _encode_json(
        {
            "time": _local_times()[3],
            "client": _json_address(request.client_address),
            "peer": _json_address(request.peer_address),
            "method": request.method if parsed else None,
            "target": request.target if parsed else None,
            "version": f"HTTP/{request.http_version}" if parsed else None,
            "status": status,
            "bytes_sent": bytes_sent,
            "duration_ms": round(duration * 1000, 3),
            "referer": headers.get("referer"),
            "user_agent": headers.get("user-agent"),
            "host": request.host,
            "scheme": request.scheme,
            "request_id": request.request_id,
            "pid": os.getpid(),
            "rejected": reason is not None,
            "reason": reason,
        }
    )


# Public: an application may subclass it (mypyc allows that only when asked).
@mypyc_attr(allow_interpreted_subclasses=True)
class AccessLogger:
    """An access hook that logs one line per response on ``vestespy.access`` at INFO.

    Args:
        format: The line format (see :class:`AccessLogFormatter`).
        logger: The logger; ``logging.getLogger("vestespy.access")`` by default.
    """

    def __init__(self, format: str = COMBINED_FORMAT, logger: logging.Logger | None = None):
        self._formatter: AccessLogFormatter = AccessLogFormatter(format)
        self._logger: logging.Logger = logger or logging.getLogger("vestespy.access")

    def __call__(self, request: Request, status: int, bytes_sent: int, duration: float) -> None:
        """Log the line for one response, if the logger is enabled for INFO."""
        logger = self._logger
        if logger.isEnabledFor(logging.INFO):
            logger.info("%s", self._formatter(request, status, bytes_sent, duration))

    def websocket_closed(self, request: Request, duration: float, counts: WebSocketCounts) -> None:
        """Log a WebSocket's end: its handshake's line (status 101, the bytes sent, the
        WebSocket's duration) and its counts (see :func:`websocket_line`)."""
        logger = self._logger
        if logger.isEnabledFor(logging.INFO):
            logger.info("%s", websocket_line(self._formatter, request, duration, counts))
