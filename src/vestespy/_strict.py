"""Strict RFC 9112 checks that h11 0.16 does not make, as a table of rules.

Theory of operation: :func:`check_head` scans the raw bytes of a request head before h11
parses it (h11 normalises away bare LF, obs-fold and list-form Content-Length, so they can
only be seen in the raw bytes); :func:`check_request` looks at the parsed head, and
:func:`check_trailers` at the trailer fields. Each returns the :class:`Rule` broken, or None.
A rule whose ``option`` is set in ``relaxed`` is skipped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["RULES", "ChunkScanner", "Rule", "check_head", "check_request", "check_trailers"]


@dataclass(frozen=True, slots=True)
class Rule:
    """One check VestesPy makes beyond h11."""

    #: Short identifier, used in the error response and in docs/conformance.md.
    name: str
    #: The RFC section that requires (or allows) the rejection.
    section: str
    #: The response status sent on a violation.
    status: int
    #: The ServerOptions field that relaxes the rule, or "" if it cannot be relaxed.
    option: str = ""


BARE_LF = Rule("bare-lf", "RFC 9112 2.2", 400, "allow_bare_lf")
OBS_FOLD = Rule("obs-fold", "RFC 9112 5.2", 400, "allow_obs_fold")
CONTROL = Rule("control-in-field-value", "RFC 9110 5.5", 400)
CL_LIST = Rule("content-length-list", "RFC 9110 8.6", 400)
TE_AND_CL = Rule("transfer-encoding-with-content-length", "RFC 9112 6.3", 400)
TE_HTTP10 = Rule("transfer-encoding-in-http-1.0", "RFC 9112 6.1", 400)
AUTHORITY_FORM = Rule("authority-form-not-connect", "RFC 9112 3.2.3", 400)
ASTERISK_FORM = Rule("asterisk-form-not-options", "RFC 9112 3.2.4", 400)
VERSION = Rule("unsupported-version", "RFC 9110 15.6.6", 505)
LONG_LINE = Rule("request-line-too-long", "RFC 9112 3", 414)
EXPECT = Rule("unknown-expectation", "RFC 9110 10.1.1", 417)
TRAILER = Rule("forbidden-trailer-field", "RFC 9110 6.5.1", 400)
HEAD_TOO_LARGE = Rule("head-too-large", "RFC 6585 5", 431)
CONNECT = Rule("connect-not-supported", "RFC 9110 9.3.6", 501)
CL_RANGE = Rule("content-length-past-2^63", "RFC 9110 8.6", 400)
CHUNK_LINE = Rule("chunk-line-not-crlf", "RFC 9112 7.1", 400)
CHUNK_SIZE = Rule("chunk-size-past-2^63", "RFC 9112 7.1", 400)
CHUNK_EXT = Rule("control-in-chunk-extension", "RFC 9112 7.1.1", 400)
CHUNK_TOO_LARGE = Rule("chunk-line-too-large", "RFC 6585 5", 431)

#: The largest Content-Length accepted: a signed 64-bit integer, as other parsers allow, so
#: that no proxy in front of VestesPy can read the number differently.
MAX_CONTENT_LENGTH = 2**63 - 1

RULES: tuple[Rule, ...] = (
    BARE_LF,
    OBS_FOLD,
    CONTROL,
    CL_LIST,
    TE_AND_CL,
    TE_HTTP10,
    AUTHORITY_FORM,
    ASTERISK_FORM,
    VERSION,
    LONG_LINE,
    EXPECT,
    TRAILER,
    CL_RANGE,
    HEAD_TOO_LARGE,
    CONNECT,
    CHUNK_LINE,
    CHUNK_SIZE,
    CHUNK_EXT,
    CHUNK_TOO_LARGE,
)

# A field value may hold HTAB, SP, VCHAR and obs-text; any other control (h11 already
# refuses NUL, CR and LF) is refused here.
_CONTROL_RE = re.compile(rb"[\x01-\x08\x0b\x0c\x0e-\x1f\x7f]")
_CL_LIST_RE = re.compile(rb"\ncontent-length[ \t]*:[^\r\n]*,", re.IGNORECASE)
#: Fields that frame, route or authenticate a message may not be sent as trailers.
_FORBIDDEN_TRAILERS = frozenset(
    {
        "content-length",
        "transfer-encoding",
        "host",
        "content-type",
        "content-encoding",
        "content-range",
        "trailer",
        "authorization",
        "set-cookie",
        "cookie",
        "expect",
        "te",
        "connection",
        "keep-alive",
        "upgrade",
        "cache-control",
        "max-forwards",
        "proxy-authorization",
    }
)


def head_end(data: bytes) -> int:
    """Return the end of the head in ``data`` (past its empty line), or -1 if incomplete."""
    end = data.find(b"\r\n\r\n")
    if end >= 0:
        bare = data.find(b"\n\n", 0, end)
        return end + 4 if bare < 0 else bare + 2
    end = data.find(b"\n\n")
    if end >= 0:
        return end + 2
    end = data.find(b"\n\r\n")
    return end + 3 if end >= 0 else -1


#: Every byte but the controls _CONTROL_RE matches: deleting these leaves only the controls.
_NOT_CONTROL = bytes(b for b in range(256) if not _CONTROL_RE.match(bytes([b])))


def check_head(head: bytes, relaxed: frozenset[str]) -> Rule | None:
    """Check the raw bytes of a request head (request line to the empty line).

    The common case, a well-formed head, is decided by a few passes of C string methods;
    the regular expressions only tell the rules apart once something is off.
    """
    if head.count(b"\n") != head.count(b"\r\n") and BARE_LF.option not in relaxed:
        return BARE_LF
    if (b"\n " in head or b"\n\t" in head) and OBS_FOLD.option not in relaxed:
        return OBS_FOLD
    if head.translate(None, _NOT_CONTROL):
        return CONTROL
    if b"," in head and _CL_LIST_RE.search(head):
        return CL_LIST
    return None


def check_line_length(data: bytes, limit: int) -> Rule | None:
    """Return :data:`LONG_LINE` if ``data`` holds more than ``limit`` bytes of request line."""
    if len(data) > limit and data.find(b"\n", 0, limit + 1) < 0:
        return LONG_LINE
    return None


def check_request(
    method: str, target: str, version: str, headers: list[tuple[str, str, str]]
) -> Rule | None:
    """Check a parsed request head."""
    if version != "1.1" and version != "1.0":
        return VERSION
    if target[0] != "/":
        if target == "*":
            if method != "OPTIONS":
                return ASTERISK_FORM
        elif "://" not in target and method != "CONNECT":
            return AUTHORITY_FORM
    if method == "CONNECT":
        # VestesPy does not tunnel; h11 would wait for a protocol switch that never comes.
        return CONNECT
    te = cl = False
    for name, _, value in headers:
        if name == "transfer-encoding":
            te = True
        elif name == "content-length":
            cl = True
            # h11 has checked that the value is digits; only long ones can be too large.
            if len(value) > 18 and int(value) > MAX_CONTENT_LENGTH:
                return CL_RANGE
        elif name == "expect" and value.strip().lower() != "100-continue":
            return EXPECT
    if te:
        if cl:
            return TE_AND_CL
        if version == "1.0":
            return TE_HTTP10
    return None


def check_trailers(trailers: list[tuple[str, str, str]]) -> Rule | None:
    """Check trailer fields for ones that may not be sent as trailers."""
    for name, _, _ in trailers:
        if name in _FORBIDDEN_TRAILERS:
            return TRAILER
    return None


_HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")
_SIZE, _DATA, _DATA_END, _TRAILER, _DONE = range(5)


class ChunkScanner:
    """Follows the chunked framing of one request body over its raw bytes (RFC 9112 7.1).

    h11 parses chunk-size lines and trailer lines itself and lets through a bare CR or LF
    in them, chunk sizes up to 20 hex digits and a whole line of any length that arrives in
    one read. The scanner sees the same bytes first and records the first :class:`Rule`
    broken in :attr:`error`. It skips chunk data by counting, so a body costs it a few
    operations per chunk, not per byte. Grammar h11 already enforces is left to h11: on
    anything it cannot follow, the scanner stops and h11 gives the verdict.

    Args:
        max_line: The longest chunk-size or trailer line, like ``max_header_size``.
    """

    __slots__ = ("_line", "_max_line", "_remaining", "_state", "error")

    def __init__(self, max_line: int) -> None:
        self._state = _SIZE
        self._line = b""
        self._remaining = 0
        self._max_line = max_line
        self.error: Rule | None = None

    @property
    def done(self) -> bool:
        """Whether the body ended (or scanning stopped)."""
        return self._state == _DONE

    def feed(self, data: bytes) -> None:
        """Scan the next bytes received for this body; bytes past its end are ignored."""
        position, size = 0, len(data)
        while position < size and self._state != _DONE:
            if self._state == _DATA:
                take = min(self._remaining, size - position)
                position += take
                self._remaining -= take
                if not self._remaining:
                    self._state = _DATA_END
                continue
            newline = data.find(b"\n", position)
            if newline < 0:
                self._line += data[position:]
                if len(self._line) > self._max_line:
                    self._fail(CHUNK_TOO_LARGE)
                return
            line = self._line + data[position : newline + 1]
            self._line = b""
            position = newline + 1
            if len(line) > self._max_line:
                self._fail(CHUNK_TOO_LARGE)
            elif not line.endswith(b"\r\n") or b"\r" in line[:-2]:
                self._fail(CHUNK_LINE)
            else:
                self._on_line(line[:-2])

    def _on_line(self, line: bytes) -> None:
        state = self._state
        if state == _SIZE:
            size_text, _, extension = line.partition(b";")
            size_text = size_text.rstrip(b" \t")
            if not size_text or not _HEX_DIGITS.issuperset(size_text):
                self._state = _DONE  # h11 refuses it
            elif len(size_text.lstrip(b"0")) > 16 or int(size_text, 16) > MAX_CONTENT_LENGTH:
                self._fail(CHUNK_SIZE)
            elif _CONTROL_RE.search(extension):
                self._fail(CHUNK_EXT)
            else:
                self._remaining = int(size_text, 16)
                self._state = _DATA if self._remaining else _TRAILER
        elif state == _DATA_END:
            # Anything but an empty line after the data is refused by h11.
            self._state = _SIZE if not line else _DONE
        elif not line:  # _TRAILER: the empty line ends the body
            self._state = _DONE

    def _fail(self, rule: Rule) -> None:
        self.error = rule
        self._state = _DONE
