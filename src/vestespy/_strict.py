"""Strict RFC 9112 checks that h11 0.16 does not make, as a table of rules.

Theory of operation: :func:`check_head` scans the raw bytes of a request head before h11
parses it (h11 normalises away bare LF, obs-fold and list-form Content-Length, so they can
only be seen in the raw bytes, and it refuses a Transfer-Encoding other than ``chunked`` with
501 before the driver sees the head); :func:`check_request` looks at the parsed head, and
:func:`check_trailers` at the trailer fields. Each returns the :class:`Rule` broken, or None.
A rule whose ``option`` is set in ``relaxed`` is skipped. :class:`ChunkScanner` follows the
raw bytes of a chunked body, where h11 is lenient.
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
TE_NOT_CHUNKED_LAST = Rule("transfer-encoding-chunked-not-last", "RFC 9112 6.3", 400)
TE_CHUNKED_TWICE = Rule("transfer-encoding-chunked-twice", "RFC 9112 6.1", 400)
TE_CHUNKED_PARAMETERS = Rule("chunked-with-parameters", "RFC 9112 7.1", 400)
AUTHORITY_FORM = Rule("authority-form-not-connect", "RFC 9112 3.2.3", 400)
ASTERISK_FORM = Rule("asterisk-form-not-options", "RFC 9112 3.2.4", 400)
CONNECT_FORM = Rule("connect-not-authority-form", "RFC 9112 3.2.3", 400)
INVALID_HOST = Rule("invalid-host", "RFC 9112 3.2", 400)
VERSION = Rule("unsupported-version", "RFC 9110 15.6.6", 505)
LONG_LINE = Rule("request-line-too-long", "RFC 9112 3", 414)
EXPECT = Rule("unknown-expectation", "RFC 9110 10.1.1", 417)
TRAILER = Rule("forbidden-trailer-field", "RFC 9110 6.5.1", 400)
HEAD_TOO_LARGE = Rule("head-too-large", "RFC 6585 5", 431)
#: More header (or trailer) fields than ``max_header_count``.
TOO_MANY_FIELDS = Rule("too-many-header-fields", "RFC 6585 5", 431)
CONNECT = Rule("connect-not-supported", "RFC 9110 9.3.6", 501)
CL_RANGE = Rule("content-length-past-2^63", "RFC 9110 8.6", 400)
CHUNK_LINE = Rule("chunk-line-not-crlf", "RFC 9112 7.1", 400)
CHUNK_SIZE = Rule("chunk-size-past-2^63", "RFC 9112 7.1", 400)
CHUNK_EXT = Rule("control-in-chunk-extension", "RFC 9112 7.1.1", 400)
CHUNK_SYNTAX = Rule("malformed-chunk-size-line", "RFC 9112 7.1.1", 400)
CHUNK_TOO_LARGE = Rule("chunk-line-too-large", "RFC 6585 5", 431)
TRAILERS_TOO_LARGE = Rule("trailer-section-too-large", "RFC 6585 5", 431)
#: Not a rejection: a Transfer-Encoding that reads as plain ``chunked`` once empty list
#: elements are dropped (RFC 9110 5.6.1: ``,chunked``, ``chunked,``, an empty field beside a
#: ``chunked`` one). h11 refuses those with 501, so the driver rewrites the field first
#: (:func:`normalize_transfer_encoding`). Not in :data:`RULES`.
TE_REWRITE = Rule("transfer-encoding-empty-list-elements", "RFC 9110 5.6.1", 0)
#: Only with the ``max_body_size`` option set: a limit the server chose, not a protocol rule.
BODY_TOO_LARGE = Rule("body-larger-than-max_body_size", "RFC 9110 15.5.14", 413)

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
    TE_NOT_CHUNKED_LAST,
    TE_CHUNKED_TWICE,
    TE_CHUNKED_PARAMETERS,
    AUTHORITY_FORM,
    ASTERISK_FORM,
    CONNECT_FORM,
    INVALID_HOST,
    VERSION,
    LONG_LINE,
    EXPECT,
    TRAILER,
    CL_RANGE,
    HEAD_TOO_LARGE,
    TOO_MANY_FIELDS,
    CONNECT,
    CHUNK_LINE,
    CHUNK_SIZE,
    CHUNK_EXT,
    CHUNK_SYNTAX,
    CHUNK_TOO_LARGE,
    TRAILERS_TOO_LARGE,
    BODY_TOO_LARGE,
)

# A field value may hold HTAB, SP, VCHAR and obs-text; any other control (h11 already
# refuses NUL, CR and LF) is refused here.
_CONTROL_RE = re.compile(rb"[\x01-\x08\x0b\x0c\x0e-\x1f\x7f]")
_CL_LIST_RE = re.compile(rb"\ncontent-length[ \t]*:[^\r\n]*,", re.IGNORECASE)
_TE_RE = re.compile(rb"\ntransfer-encoding[ \t]*:([^\r\n]*)", re.IGNORECASE)
_FOLD_RE = re.compile(rb"\r?\n[ \t]+")
# RFC 9110 7.2 and RFC 3986 3.2.2: Host = uri-host [ ":" port ], uri-host = IP-literal /
# IPv4address / reg-name (unreserved, pct-encoded, sub-delims; an IPv4 address is one too).
_REG_NAME_CHARS = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-._~!$&'()*+,;="
_HOST_RE = re.compile(
    r"(?:\[(?:[0-9A-Fa-f:.]+|[vV][0-9A-Fa-f]+\.[0-9A-Za-z\-._~!$&'()*+,;=:]+)\]"
    r"|(?:[0-9A-Za-z\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})*)(?::[0-9]*)?"
)
# RFC 9112 7.1.1: chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] ),
# chunk-ext-val = token / quoted-string (RFC 9110 5.6.2, 5.6.4). h11 itself refuses
# whitespace between the chunk size and the first ";".
_TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_QUOTED = rb'"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*"'
_CHUNK_EXT_RE = re.compile(
    rb"(?:[ \t]*;[ \t]*" + _TOKEN + rb"(?:[ \t]*=[ \t]*(?:" + _TOKEN + rb"|" + _QUOTED + rb"))?)*"
)
# Controls in a chunk extension, NUL included (h11 refuses NUL in fields, not here).
_EXT_CONTROL_RE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
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


#: The controls _CONTROL_RE matches mapped to one of them (SOH), every other byte to itself:
#: a head without them comes back from ``translate`` as the same object, uncopied, and the
#: SOH search is one C pass (``translate(None, delete)`` builds a 256-entry table per call).
_CONTROL_TO_SOH = bytes(1 if _CONTROL_RE.match(bytes([b])) else b for b in range(256))


def check_head(head: bytes, relaxed: frozenset[str]) -> Rule | None:
    """Check the raw bytes of a request head (request line to the empty line).

    The common case, a well-formed head, is decided by a few passes of C string methods;
    the regular expressions only tell the rules apart once something is off. ``find``, not
    ``in``: CPython's ``bytes.__contains__`` first tries its argument as an int, and raises
    and clears a TypeError for every bytes argument (about 2,000 instructions each, as much
    as the rest of this function).
    """
    if head.count(b"\n") != head.count(b"\r\n") and BARE_LF.option not in relaxed:
        return BARE_LF
    if (head.find(b"\n ") >= 0 or head.find(b"\n\t") >= 0) and OBS_FOLD.option not in relaxed:
        return OBS_FOLD
    if head.translate(_CONTROL_TO_SOH).find(b"\x01") >= 0:
        return CONTROL
    if head.find(b",") >= 0 and _CL_LIST_RE.search(head):
        return CL_LIST
    return _check_transfer_encoding(head, relaxed)


def _check_transfer_encoding(head: bytes, relaxed: frozenset[str]) -> Rule | None:
    """Check a Transfer-Encoding list as RFC 9112 6.1, 6.3 and 7.1 read it.

    h11 answers 501 for anything but one field whose value is exactly ``chunked``. Here:
    chunked not the final coding is 400 (RFC 9112 6.3: the length cannot be determined),
    chunked applied twice is 400 (6.1: a sender MUST NOT), chunked with parameters is 400
    (7.1: their presence SHOULD be treated as an error), and empty list elements are dropped
    (RFC 9110 5.6.1: a recipient MUST ignore them), which :data:`TE_REWRITE` asks the driver
    to do before h11 reads the head. A final ``chunked`` behind codings VestesPy does not
    implement is left to h11 (501, RFC 9112 6.1).
    """
    values = _TE_RE.findall(head)  # one pass, cheaper than any pre-filter
    if not values:
        return None
    if len(values) == 1 and values[0].strip(b" \t").lower() == b"chunked":
        return None  # the common case, as h11 accepts it
    if OBS_FOLD.option in relaxed:
        values = _TE_RE.findall(_FOLD_RE.sub(b" ", head))
    codings = [c.strip(b" \t") for value in values for c in value.split(b",")]
    codings = [c for c in codings if c]  # RFC 9110 5.6.1: empty list elements do not count
    names = [c.partition(b";")[0].rstrip(b" \t").lower() for c in codings]
    if not names or names[-1] != b"chunked":
        return TE_NOT_CHUNKED_LAST
    if names.count(b"chunked") > 1:
        return TE_CHUNKED_TWICE
    if b";" in codings[-1]:
        return TE_CHUNKED_PARAMETERS
    if len(names) == 1:
        return TE_REWRITE
    return None


_TE_LINE_RE = re.compile(rb"(?<=\n)(transfer-encoding)[ \t]*:[^\r\n]*(\r?\n)", re.IGNORECASE)


def normalize_transfer_encoding(head: bytes, relaxed: frozenset[str]) -> bytes:
    """Rewrite a head :func:`check_head` answered :data:`TE_REWRITE` for.

    The first Transfer-Encoding field becomes ``chunked`` (its name kept as sent), the others
    go; with obs-fold allowed, folded lines are first joined as h11 would join them.
    """
    if OBS_FOLD.option in relaxed:
        head = _FOLD_RE.sub(b" ", head)
    first = True

    def replace(match: re.Match[bytes]) -> bytes:
        nonlocal first
        if not first:
            return b""
        first = False
        return match[1] + b": chunked" + match[2]

    return _TE_LINE_RE.sub(replace, head)


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
        elif "://" not in target:
            if method != "CONNECT":
                return AUTHORITY_FORM
        elif method == "CONNECT":
            return CONNECT_FORM
    elif method == "CONNECT":
        return CONNECT_FORM
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
        elif name == "host" and not _valid_host(value):
            # RFC 9112 3.2: a Host field with an invalid value gets 400, as a missing or
            # repeated one does (h11 checks those).
            return INVALID_HOST
    if te:
        if cl:
            return TE_AND_CL
        if version == "1.0":
            return TE_HTTP10
    return None


def _valid_host(value: str) -> bool:
    """Whether ``value`` is a valid Host field value (RFC 9110 7.2)."""
    host, _, port = value.partition(":")
    if not host.strip(_REG_NAME_CHARS) and (not port or (port.isdigit() and port.isascii())):
        return True  # the common case, a name or IPv4 address and a port, without a regex
    return _HOST_RE.fullmatch(value) is not None


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
    in them, chunk sizes up to 20 hex digits, whitespace after the size, any bytes after a
    ";" as extensions, obs-fold and controls in trailer fields, and a whole line (or trailer
    section) of any length that arrives in one read. The scanner sees the same bytes first
    and records the first :class:`Rule` broken in :attr:`error`. It skips chunk data by
    counting, so a body costs it a few operations per chunk, not per byte. Grammar h11
    already enforces is left to h11: on anything it cannot follow, the scanner stops and h11
    gives the verdict.

    Args:
        max_line: The longest chunk-size or trailer line, and the largest trailer section,
            like ``max_header_size``.
        relaxed: Names of the rule options relaxed (only ``allow_obs_fold`` applies here).
    """

    __slots__ = ("_line", "_max_line", "_relaxed", "_remaining", "_state", "_trailers", "error")

    def __init__(self, max_line: int, relaxed: frozenset[str] = frozenset()) -> None:
        self._state = _SIZE
        self._line = b""
        self._remaining = 0
        self._max_line = max_line
        self._relaxed = relaxed
        # Bytes of trailer section seen so far.
        self._trailers = 0
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
            elif not line.endswith(b"\r\n") or line.find(b"\r", 0, -2) >= 0:  # (see check_head)
                self._fail(CHUNK_LINE)
            else:
                self._on_line(line[:-2])

    def _on_line(self, line: bytes) -> None:
        state = self._state
        if state == _SIZE:
            size_text, semicolon, _ = line.partition(b";")
            size_text = size_text.rstrip(b" \t")
            extension = line[len(size_text) :]  # from the whitespace or ";" after the size
            if not size_text or not _HEX_DIGITS.issuperset(size_text):
                self._state = _DONE  # h11 refuses it
            elif (
                len(size_text.lstrip(b"0")) > 16
                or (size := int(size_text, 16)) > MAX_CONTENT_LENGTH
            ):
                self._fail(CHUNK_SIZE)
            elif semicolon and _EXT_CONTROL_RE.search(extension):
                self._fail(CHUNK_EXT)
            elif not semicolon and extension:
                # RFC 9112 7.1: whitespace after the size is allowed only before a ";"
                # (h11 accepts "5 " alone; llhttp refuses it, as the grammar does).
                self._fail(CHUNK_SYNTAX)
            elif semicolon and not _CHUNK_EXT_RE.fullmatch(extension):
                self._fail(CHUNK_SYNTAX)
            else:
                self._remaining = size
                self._state = _DATA if self._remaining else _TRAILER
        elif state == _DATA_END:
            # Anything but an empty line after the data is refused by h11.
            self._state = _SIZE if not line else _DONE
        elif not line:  # _TRAILER: the empty line ends the body
            self._state = _DONE
        else:  # _TRAILER: a trailer field line, checked as a head's field lines are
            self._trailers += len(line) + 2
            if self._trailers > self._max_line:
                self._fail(TRAILERS_TOO_LARGE)
            elif line[0] in b" \t" and OBS_FOLD.option not in self._relaxed:
                self._fail(OBS_FOLD)
            elif _CONTROL_RE.search(line):
                self._fail(CONTROL)

    def _fail(self, rule: Rule) -> None:
        self.error = rule
        self._state = _DONE
