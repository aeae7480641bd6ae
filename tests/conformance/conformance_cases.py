"""The conformance cases, as data: raw request bytes and the responses they must produce.

Each :class:`Case` names the RFC section that decides it. Where llhttp's test corpus
(``/work/shared/corpora/llhttp``) gives a different verdict, ``note`` says why RFC 9112/9110
decide otherwise (see docs/conformance.md).

The echo handler (conftest.py) reports what it saw; the path of the target picks how it
answers: ``/ignore`` without reading the body, ``/status/204`` and ``/status/304`` with that
status, ``/close`` with ``Connection: close``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class Echo:
    """An accepted request, as the echo handler saw it."""

    method: str = "GET"
    target: str = "/"
    version: str = "1.1"
    body: bytes = b""
    #: The header fields exactly as the handler saw them (names as received). Left out, the
    #: case helpers fill it in from the raw request (:func:`fields_of`).
    headers: tuple[tuple[str, str], ...] | None = None
    trailers: tuple[tuple[str, str], ...] = ()
    #: The response status the handler chose (see the module docstring).
    status: int = 200


@dataclass(frozen=True)
class Reject:
    """A rejected request: an error response with ``Connection: close``."""

    status: int


@dataclass(frozen=True)
class Case:
    """One conformance case."""

    name: str
    category: str
    section: str
    raw: bytes
    responses: tuple[Echo | Reject, ...]
    #: Whether the server closes the connection after the last response.
    closes: bool = False
    #: Whether the client half-closes after sending (for truncated messages).
    eof: bool = False
    #: No response at all is expected (the client hung up mid-message).
    silent: bool = False
    #: A known gap: the case states what RFC 9112 requires, and fails today (strict xfail).
    gap: str = ""
    #: Whether the case may be replayed behind another request on the same connection.
    pipeline: bool = True
    note: str = field(default="", compare=False)

    @property
    def id(self) -> str:
        return f"{self.category}/{self.name}"

    @property
    def accepted(self) -> bool:
        """Whether every request is accepted (one or several, pipelined)."""
        return bool(self.responses) and all(isinstance(r, Echo) for r in self.responses)


CASES: list[Case] = []

H = b"Host: t\r\n"


def fields_of(raw: bytes) -> tuple[tuple[str, str], ...]:
    """The header fields of the first request in ``raw``, read the plain RFC 9112 5 way.

    Only for well-formed heads (CRLF line endings, no obs-fold): it gives what the echo
    handler must report for an accepted request, names as sent and values without OWS.
    """
    head = raw.lstrip(b"\r\n").split(b"\r\n\r\n", 1)[0]
    fields = []
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        fields.append((name.decode("latin-1"), value.strip(b" \t").decode("latin-1")))
    return tuple(fields)


def _filled(echo: Echo, raw: bytes) -> Echo:
    return echo if echo.headers is not None else replace(echo, headers=fields_of(raw))


def ok(
    category: str, name: str, section: str, raw: bytes, echo: Echo = Echo(), **kw: object
) -> None:
    """An accepted request: the handler sees ``echo``."""
    CASES.append(Case(name, category, section, raw, (_filled(echo, raw),), **kw))  # type: ignore[arg-type]


def seq(
    category: str, name: str, section: str, *parts: tuple[bytes, Echo | Reject], **kw: object
) -> None:
    """Several requests in one write, each part's bytes followed by its expected response."""
    raw = b"".join(data for data, _ in parts)
    responses = tuple(_filled(r, data) if isinstance(r, Echo) else r for data, r in parts)
    closes = kw.pop("closes", isinstance(responses[-1], Reject))
    CASES.append(Case(name, category, section, raw, responses, closes=closes, **kw))  # type: ignore[arg-type]


def bad(
    category: str, name: str, section: str, raw: bytes, status: int = 400, **kw: object
) -> None:
    CASES.append(Case(name, category, section, raw, (Reject(status),), closes=True, **kw))  # type: ignore[arg-type]


def post(fields: bytes, body: bytes = b"", version: bytes = b"1.1") -> bytes:
    return b"POST / HTTP/" + version + b"\r\n" + H + fields + b"\r\n" + body


def get(fields: bytes = b"", target: bytes = b"/", method: bytes = b"GET") -> bytes:
    return method + b" " + target + b" HTTP/1.1\r\n" + H + fields + b"\r\n"


# -- Content-Length -------------------------------------------------------------------------
C = "content-length"
S86 = "RFC 9110 8.6"
ok(C, "zero", S86, post(b"Content-Length: 0\r\n"), Echo("POST"))
ok(C, "five", S86, post(b"Content-Length: 5\r\n", b"hello"), Echo("POST", body=b"hello"))
ok(
    C,
    "leading-zeros",
    S86,
    post(b"Content-Length: 0005\r\n", b"hello"),
    Echo("POST", body=b"hello"),
)
ok(
    C,
    "many-leading-zeros",
    S86,
    post(b"Content-Length: 00000000000000000005\r\n", b"hello"),
    Echo("POST", body=b"hello"),
)
ok(
    C,
    "identical-duplicates",
    S86,
    post(b"Content-Length: 5\r\nContent-Length: 5\r\n", b"hello"),
    # RFC 9110 8.6 lets the recipient replace the duplicates with a single instance: h11
    # does, so the handler sees one field. (llhttp refuses duplicate Content-Length fields,
    # equal or not; the RFC allows either, and h11's choice frames the body the same way.)
    Echo("POST", body=b"hello", headers=(("Host", "t"), ("Content-Length", "5"))),
)
ok(
    C,
    "ows-around",
    S86,
    post(b"Content-Length:  \t5 \t\r\n", b"hello"),
    Echo("POST", body=b"hello"),
)
ok(C, "no-space", S86, post(b"Content-Length:5\r\n", b"hello"), Echo("POST", body=b"hello"))
ok(C, "lower-case-name", S86, post(b"content-length: 5\r\n", b"hello"), Echo("POST", body=b"hello"))
ok(C, "upper-case-name", S86, post(b"CONTENT-LENGTH: 5\r\n", b"hello"), Echo("POST", body=b"hello"))
ok(C, "on-get", S86, get(b"Content-Length: 3\r\n") + b"abc", Echo(body=b"abc"))
ok(C, "on-get-zero", S86, get(b"Content-Length: 0\r\n"))
ok(
    C,
    "binary-body",
    S86,
    post(b"Content-Length: 4\r\n", b"\x00\r\n\xff"),
    Echo("POST", body=b"\x00\r\n\xff"),
)
ok(
    C,
    "body-looks-like-request",
    S86,
    post(b"Content-Length: 18\r\n", b"GET / HTTP/1.1\r\n\r\n"),
    Echo("POST", body=b"GET / HTTP/1.1\r\n\r\n"),
)
seq(
    C,
    "shorter-than-body",
    S86,
    (post(b"Content-Length: 3\r\n", b"abc"), Echo("POST", body=b"abc")),
    (b"GET /x HTTP/1.1\r\nHost: t\r\n\r\n", Echo("GET", "/x")),
)
seq(
    C,
    "shorter-than-body-garbage",
    S86,
    (post(b"Content-Length: 3\r\n", b"abc"), Echo("POST", body=b"abc")),
    (b"def\r\n\r\n", Reject(400)),
)
CASES.append(
    Case(
        "longer-than-body",
        C,
        S86,
        post(b"Content-Length: 10\r\n", b"abc"),
        (),
        closes=True,
        eof=True,
        silent=True,
    )
)
for value in [b"5, 5", b"5,5", b"5 ,5", b"5, 6", b"5,", b",5"]:
    bad(C, f"list-{value.decode()}", S86, post(b"Content-Length: " + value + b"\r\n", b"hello"))
bad(C, "different-duplicates", S86, post(b"Content-Length: 5\r\nContent-Length: 6\r\n", b"hello!"))
for value in [
    b"+5",
    b"-5",
    b"-0",
    b"0x5",
    b"5.0",
    b"5 5",
    b"five",
    b"5a",
    b"\x0b5",
    b"1e1",
    b"",
    b"\xd9\xa5",
]:
    bad(C, f"malformed-{value!r}", S86, post(b"Content-Length: " + value + b"\r\n", b"hello"))
for value in [b"9223372036854775808", b"18446744073709551616", b"99999999999999999999999"]:
    bad(C, f"past-2^63-{value.decode()}", S86, post(b"Content-Length: " + value + b"\r\n"))

bad(
    C,
    "list-after-single",
    S86,
    post(b"Content-Length: 5\r\nContent-Length: 5, 5\r\n", b"hello"),
)
bad(C, "space-before-colon", "RFC 9112 5.1", post(b"Content-Length : 5\r\n", b"hello"))
bad(C, "cr-instead-of-dash", "RFC 9112 5.1", post(b"Content\rLength: 5\r\n", b"hello"))
bad(
    C,
    "cr-before-body",
    "RFC 9112 2.2",
    post(b"Content-Length: 5\r\n")[:-2] + b"\rhello\r\n\r\n",
    note="llhttp refuses at the bare CR; VestesPy (h11) refuses once the head has ended, so "
    "this case ends the head: without it the server waits for the rest of the head",
)
ok(C, "zero-19-digits", S86, post(b"Content-Length: 0000000000000000000\r\n"), Echo("POST"))
ok(
    C,
    "http-1.0",
    S86,
    b"POST / HTTP/1.0\r\nconTENT-Length: 5\r\n\r\nhello",
    Echo("POST", version="1.0", body=b"hello"),
    closes=True,
)
ok(
    C,
    "on-head",
    S86,
    get(b"Content-Length: 3\r\n", method=b"HEAD") + b"abc",
    Echo("HEAD", body=b"abc"),
)

# -- chunked ----------------------------------------------------------------------------------
K = "chunked"
S71 = "RFC 9112 7.1"
TE = b"Transfer-Encoding: chunked\r\n"


def chunked(body: bytes, trailers: tuple[tuple[str, str], ...] = ()) -> Echo:
    return Echo("POST", body=body, trailers=trailers)


ok(K, "simple", S71, post(TE, b"5\r\nhello\r\n0\r\n\r\n"), chunked(b"hello"))
ok(K, "empty", S71, post(TE, b"0\r\n\r\n"), chunked(b""))
ok(K, "two-chunks", S71, post(TE, b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"), chunked(b"abcde"))
ok(K, "upper-hex", S71, post(TE, b"A\r\n0123456789\r\n0\r\n\r\n"), chunked(b"0123456789"))
ok(K, "lower-hex", S71, post(TE, b"a\r\n0123456789\r\n0\r\n\r\n"), chunked(b"0123456789"))
ok(K, "leading-zeros", S71, post(TE, b"0005\r\nhello\r\n000\r\n\r\n"), chunked(b"hello"))
ok(K, "ext", "RFC 9112 7.1.1", post(TE, b"5;a=b\r\nhello\r\n0\r\n\r\n"), chunked(b"hello"))
ok(K, "ext-no-value", "RFC 9112 7.1.1", post(TE, b"5;a\r\nhello\r\n0\r\n\r\n"), chunked(b"hello"))
ok(
    K,
    "ext-quoted",
    "RFC 9112 7.1.1",
    post(TE, b'5;a="b c"\r\nhello\r\n0\r\n\r\n'),
    chunked(b"hello"),
)
ok(K, "ext-many", "RFC 9112 7.1.1", post(TE, b"5;a=b;c=d\r\nhello\r\n0\r\n\r\n"), chunked(b"hello"))
ok(K, "ext-on-last", "RFC 9112 7.1.1", post(TE, b"5\r\nhello\r\n0;x=y\r\n\r\n"), chunked(b"hello"))
ok(K, "chunk-holds-crlf", S71, post(TE, b"4\r\n\r\n\r\n\r\n0\r\n\r\n"), chunked(b"\r\n\r\n"))
ok(K, "big-chunk", S71, post(TE, b"400\r\n" + b"x" * 1024 + b"\r\n0\r\n\r\n"), chunked(b"x" * 1024))
ok(
    K,
    "trailer",
    "RFC 9112 7.1.2",
    post(TE, b"1\r\nx\r\n0\r\nX-Sum: 1\r\n\r\n"),
    chunked(b"x", (("X-Sum", "1"),)),
)
ok(
    K,
    "two-trailers",
    "RFC 9112 7.1.2",
    post(TE, b"0\r\nA: 1\r\nB: 2\r\n\r\n"),
    chunked(b"", (("A", "1"), ("B", "2"))),
)
for name in [
    "Content-Length",
    "Host",
    "Transfer-Encoding",
    "Content-Type",
    "Authorization",
    "Trailer",
    "Connection",
    "Expect",
    "Cookie",
    "Set-Cookie",
    "content-length",
    "HOST",
]:
    # h11 itself answers 501 for a Transfer-Encoding it cannot decode, trailer or not.
    bad(
        K,
        f"forbidden-trailer-{name}",
        "RFC 9110 6.5.1",
        post(TE, b"0\r\n" + name.encode() + b": 5\r\n\r\n"),
        501 if name == "Transfer-Encoding" else 400,
    )
bad(
    K,
    "ext-oversized",
    "RFC 9112 7.1.1",
    post(TE, b"5;a=" + b"b" * 20000 + b"\r\nhello\r\n0\r\n\r\n"),
    431,
)
bad(K, "ext-bare-lf", "RFC 9112 7.1.1", post(TE, b"5;a=b\nhello\r\n0\r\n\r\n"))
bad(K, "ext-bare-cr", "RFC 9112 7.1.1", post(TE, b"5;a=\rb\r\nhello\r\n0\r\n\r\n"))
bad(K, "size-bare-lf", S71, post(TE, b"5\nhello\r\n0\r\n\r\n"))
bad(K, "missing-crlf-after-data", S71, post(TE, b"5\r\nhello0\r\n\r\n"))
bad(K, "wrong-crlf-after-data", S71, post(TE, b"5\r\nhelloXX0\r\n\r\n"))
bad(K, "lf-after-data", S71, post(TE, b"5\r\nhello\n0\r\n\r\n"))
bad(K, "size-not-hex", S71, post(TE, b"g\r\nhello\r\n0\r\n\r\n"))
bad(K, "size-0x", S71, post(TE, b"0x5\r\nhello\r\n0\r\n\r\n"))
bad(K, "size-negative", S71, post(TE, b"-5\r\nhello\r\n0\r\n\r\n"))
bad(K, "size-plus", S71, post(TE, b"+5\r\nhello\r\n0\r\n\r\n"))
bad(K, "size-empty", S71, post(TE, b"\r\nhello\r\n0\r\n\r\n"))
bad(K, "size-space-inside", S71, post(TE, b"5 5\r\nhello\r\n0\r\n\r\n"))
for size in [
    b"8000000000000000",
    b"FFFFFFFFFFFFFFFF",
    b"10000000000000000",
    b"FFFFFFFFFFFFFFFFFFFF",
    b"00000000000000000008000000000000000",  # leading zeros do not hide the size
]:
    # h11 reads up to 20 hex digits; past 2^63 the driver's chunk scanner refuses it, as it
    # does Content-Length, so that no peer reads the number differently.
    bad(K, f"size-past-2^63-{size.decode()}", S71, post(TE, size + b"\r\nab"))
bad(K, "size-21-hex-digits", S71, post(TE, b"1" + b"0" * 20 + b"\r\n"))
CASES.append(
    Case("truncated-chunk", K, S71, post(TE, b"5\r\nhel"), (), closes=True, eof=True, silent=True)
)
CASES.append(
    Case(
        "truncated-no-last-chunk",
        K,
        S71,
        post(TE, b"5\r\nhello\r\n"),
        (),
        closes=True,
        eof=True,
        silent=True,
    )
)
bad(K, "trailer-bare-lf", "RFC 9112 7.1.2", post(TE, b"0\r\nA: 1\n\r\n"))
bad(K, "trailer-no-colon", "RFC 9112 7.1.2", post(TE, b"0\r\nA 1\r\n\r\n"))

ok(
    K,
    "ext-bws-after-semicolon",
    "RFC 9112 7.1.1",
    post(TE, b"5; a = b\r\nhello\r\n0\r\n\r\n"),
    chunked(b"hello"),
)
ok(
    K,
    "ext-quoted-pair",
    "RFC 9112 7.1.1",
    post(TE, b'5;a="b\\"c;d\\\\";e\r\nhello\r\n0\r\n\r\n'),
    chunked(b"hello"),
)
ok(
    K,
    "ext-quoted-htab-obs-text",
    "RFC 9112 7.1.1",
    post(TE, b'5;a="\t\xe9"\r\nhello\r\n0\r\n\r\n'),
    chunked(b"hello"),
)
ok(
    K,
    "trailer-empty-value",
    "RFC 9112 7.1.2",
    post(TE, b"0\r\nX-A:\r\n\r\n"),
    chunked(b"", (("X-A", ""),)),
)
ok(
    K,
    "trailer-obs-text",
    "RFC 9112 7.1.2",
    post(TE, b"0\r\nX-A: caf\xe9\r\n\r\n"),
    chunked(b"", (("X-A", "caf\xe9"),)),
)
ok(
    K,
    "trailer-after-chunks",
    "RFC 9112 7.1.2",
    post(TE, b"3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nX-A: 1\r\nX-B: 2\r\n\r\n"),
    chunked(b"abcde", (("X-A", "1"), ("X-B", "2"))),
    note="llhttp accepts any trailer field, Content-Type and Vary included; VestesPy refuses "
    "the ones RFC 9110 6.5.1 says must not be sent as trailers (forbidden-trailer-* cases)",
)
for name, chunk_line in [
    ("size-trailing-space", b"5 "),
    ("size-trailing-tab", b"5\t"),
    ("size-trailing-spaces", b"5   "),
]:
    # RFC 9112 7.1: no whitespace after chunk-size except BWS before ";". h11 allows it;
    # llhttp refuses it too ("Space after chunk header").
    bad(K, name, S71, post(TE, chunk_line + b"\r\nhello\r\n0\r\n\r\n"))
bad(
    K,
    "size-space-before-ext",
    "RFC 9112 7.1.1",
    post(TE, b"5 ;a=b\r\nhello\r\n0\r\n\r\n"),
    note="RFC 9112 7.1.1 allows BWS before ';' (and a recipient must remove it); h11 refuses "
    "it and so does llhttp; refusing is the safe side, since a sender must not generate BWS",
)
for name, ext in [
    ("ext-empty", b";"),
    ("ext-empty-between", b";a;;b"),
    ("ext-no-value-after-equals", b";a="),
    ("ext-unbalanced-quote", b';a="b'),
    ("ext-quote-in-token", b';a=b"c"'),
    ("ext-space-in-value", b";a=b c"),
    ("ext-obs-text-unquoted", b";a=\xe9"),
    ("ext-non-token-name", b";a@b=c"),
    ("ext-no-semicolon", b" a=b"),
]:
    # RFC 9112 7.1.1 grammar; h11 takes anything after ";" (llhttp: "Invalid character in
    # chunk extensions", "No extension after semicolon", "Unbalanced ... quoting").
    bad(K, name, "RFC 9112 7.1.1", post(TE, b"5" + ext + b"\r\nhello\r\n0\r\n\r\n"))
for code in [0x00, 0x01, 0x07, 0x0B, 0x1F, 0x7F]:
    bad(
        K,
        f"ext-control-0x{code:02x}",
        "RFC 9112 7.1.1",
        post(TE, b"5;a=" + bytes([code]) + b"\r\nhello\r\n0\r\n\r\n"),
    )
bad(K, "ext-control-in-quoted", "RFC 9112 7.1.1", post(TE, b'5;a="\x01"\r\nhello\r\n0\r\n\r\n'))
bad(K, "missing-last-chunk", S71, post(TE, b"3\r\nfoo\r\n\r\n"))
bad(K, "trailer-obs-fold", "RFC 9112 5.2", post(TE, b"0\r\nX-A: 1\r\n 2\r\n\r\n"))
bad(K, "trailer-obs-fold-tab", "RFC 9112 5.2", post(TE, b"0\r\nX-A: 1\r\n\t2\r\n\r\n"))
for code in [0x00, 0x07, 0x0B, 0x7F]:
    bad(
        K,
        f"trailer-control-0x{code:02x}",
        "RFC 9110 5.5",
        post(TE, b"0\r\nX-A: 1" + bytes([code]) + b"2\r\n\r\n"),
    )
bad(K, "trailer-bare-cr", "RFC 9112 2.2", post(TE, b"0\r\nX-A: 1\r2\r\n\r\n"))
bad(K, "trailer-space-before-colon", "RFC 9112 5.1", post(TE, b"0\r\nX-A : 1\r\n\r\n"))
bad(K, "trailer-empty-name", "RFC 9110 5.1", post(TE, b"0\r\n: 1\r\n\r\n"))
bad(K, "trailer-non-token-name", "RFC 9110 5.1", post(TE, b"0\r\nX(A: 1\r\n\r\n"))
bad(
    K,
    "trailer-field-too-large",
    "RFC 6585 5",
    post(TE, b"0\r\nX-A: " + b"a" * 20000 + b"\r\n\r\n"),
    431,
)
bad(
    K,
    "trailer-section-too-large",
    "RFC 6585 5",
    post(TE, b"0\r\n" + b"".join(b"X-%d: %d\r\n" % (i, i) for i in range(3000)) + b"\r\n"),
    431,
)
# max_header_count applies to trailer fields too: 100 pass, 101 get 431.
ok(
    K,
    "trailer-many-fields",
    "RFC 6585 5",
    post(TE, b"0\r\n" + b"".join(b"X-%d: %d\r\n" % (i, i) for i in range(100)) + b"\r\n"),
    chunked(b"", tuple((f"X-{i}", str(i)) for i in range(100))),
)
bad(
    K,
    "trailer-too-many-fields",
    "RFC 6585 5",
    post(TE, b"0\r\n" + b"".join(b"X-%d: %d\r\n" % (i, i) for i in range(101)) + b"\r\n"),
    431,
)
for name, rest in [
    ("truncated-size-line", b"5"),
    ("truncated-before-data-crlf", b"5\r\nhello"),
    ("truncated-in-trailers", b"0\r\nX-A: 1\r\n"),
]:
    CASES.append(Case(name, K, S71, post(TE, rest), (), closes=True, eof=True, silent=True))

# -- Transfer-Encoding ------------------------------------------------------------------------
T = "transfer-encoding"
S61 = "RFC 9112 6.1"
body = b"5\r\nhello\r\n0\r\n\r\n"
# Coding names are case-insensitive (RFC 9112 7); h11 hands the value on lower-cased.
TE_SEEN = (("Host", "t"), ("Transfer-Encoding", "chunked"))
ok(
    T,
    "chunked-mixed-case",
    "RFC 9112 7",
    post(b"Transfer-Encoding: Chunked\r\n", body),
    replace(chunked(b"hello"), headers=TE_SEEN),
)
ok(
    T,
    "chunked-upper",
    "RFC 9112 7",
    post(b"Transfer-Encoding: CHUNKED\r\n", body),
    replace(chunked(b"hello"), headers=TE_SEEN),
)
ok(T, "chunked-ows", S61, post(b"Transfer-Encoding: \t chunked \t\r\n", body), chunked(b"hello"))
for value in [b"gzip, chunked", b"deflate, chunked", b"compress, chunked", b"x-custom, chunked"]:
    # RFC 9112 6.1: a coding the server does not implement, before a final chunked, gets 501.
    bad(
        T,
        f"unknown-coding-{value.decode()}",
        "RFC 9112 6.1",
        post(b"Transfer-Encoding: " + value + b"\r\n", body),
        501,
        note="llhttp accepts: it only frames the body and leaves decoding to the application",
    )
for value in [b"identity", b"gzip", b"pigeons", b"chunkedchunked"]:
    # RFC 9112 6.3: chunked is not the final coding, so the length is unknown: 400 and close
    # (h11 alone answers 501; llhttp answers 400 "Request has invalid Transfer-Encoding").
    bad(
        T,
        f"unknown-coding-{value.decode()}",
        "RFC 9112 6.3",
        post(b"Transfer-Encoding: " + value + b"\r\n", body),
    )
for value in [b"chunked, gzip", b"chunked, deflate"]:
    # RFC 9112 6.3: chunked is not the final coding (400).
    bad(
        T,
        f"chunked-not-last-{value.decode()}",
        "RFC 9112 6.3",
        post(b"Transfer-Encoding: " + value + b"\r\n", body),
    )
for value in [
    b"chunked, chunked",
    b"chunked,chunked",
    b"chunked, , chunked",
    b"gzip, chunked, chunked",
    b"chunked, gzip, chunked",
]:
    # RFC 9112 6.1: a sender MUST NOT apply chunked more than once; the framing is then
    # malformed (400), not an unimplemented coding (h11 alone answers 501).
    bad(
        T,
        f"chunked-twice-{value.decode()}",
        S61,
        post(b"Transfer-Encoding: " + value + b"\r\n", body),
    )
bad(
    T,
    "repeated-headers",
    S61,
    post(b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", body),
)
for value in [b"chunked;q=1", b"chunked;foo=bar", b"chunked ; foo=bar", b"chunked;x"]:
    # RFC 9112 7.1: chunked defines no parameters, and their presence SHOULD be treated as an
    # error (400; h11 alone answers 501).
    bad(
        T,
        f"chunked-with-parameters-{value.decode()}",
        "RFC 9112 7.1",
        post(b"Transfer-Encoding: " + value + b"\r\n", body),
    )
for name, value in [
    ("leading-comma", b"Transfer-Encoding: ,chunked\r\n"),
    ("trailing-comma", b"Transfer-Encoding: chunked,\r\n"),
    ("commas-around", b"Transfer-Encoding: , chunked ,\r\n"),
    ("empty-field-before", b"Transfer-Encoding:\r\nTransfer-Encoding: chunked\r\n"),
    ("empty-field-after", b"Transfer-Encoding: chunked\r\nTransfer-Encoding: ,\r\n"),
]:
    # RFC 9110 5.6.1: a recipient MUST parse and ignore a reasonable number of empty list
    # elements, so these read as plain chunked (h11 alone answers 501). The handler sees one
    # field, "chunked", as for any accepted Transfer-Encoding (h11 lower-cases its value).
    ok(
        T,
        "empty-elements-" + name,
        "RFC 9110 5.6.1",
        post(value, body),
        replace(chunked(b"hello"), headers=TE_SEEN),
    )
bad(T, "with-content-length", "RFC 9112 6.3", post(TE + b"Content-Length: 5\r\n", body))
bad(T, "content-length-first", "RFC 9112 6.3", post(b"Content-Length: 5\r\n" + TE, body))
bad(T, "in-http-1.0", "RFC 9112 6.1", post(TE, body, b"1.0"))
for name, value in [
    ("trailing-space-name", b"Transfer-Encoding : chunked"),
    ("vtab", b"Transfer-Encoding: \x0bchunked"),
    ("chunked-x", b"Transfer-Encoding: chunkedx"),
    ("xchunked", b"Transfer-Encoding: xchunked"),
    ("quoted", b'Transfer-Encoding: "chunked"'),
    ("nul", b"Transfer-Encoding: chun\x00ked"),
    ("obs-fold", b"Transfer-Encoding:\r\n chunked"),
    ("underscore-name", b"Transfer_Encoding: chunked"),
    ("bare-lf", b"Transfer-Encoding: chunked\n"),
    ("cr-in-value", b"Transfer-Encoding: chun\rked"),
]:
    if name == "underscore-name":
        # Not Transfer-Encoding at all: a plain field, and the body is then a new request.
        seq(
            T, "obfuscated-" + name, S61, (post(value + b"\r\n"), Echo("POST")), (body, Reject(400))
        )
        continue
    bad(T, "obfuscated-" + name, S61, post(value + b"\r\n", body))

ok(
    T,
    "chunked-trailing-space",
    S61,
    post(b"Transfer-Encoding: chunked \r\n", body),
    chunked(b"hello"),
)
ok(T, "chunked-leading-tab", S61, post(b"Transfer-Encoding:\tchunked\r\n", body), chunked(b"hello"))
for name, value, status in [
    ("chunked-then-gzip-fields", b"Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n", 400),
    ("gzip-then-chunked-fields", b"Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n", 501),
    ("empty-value", b"Transfer-Encoding:\r\n", 400),
    ("identity-with-content-length", b"Transfer-Encoding: identity\r\nContent-Length: 5\r\n", 400),
]:
    # Several fields form one list (RFC 9110 5.3), read as above: chunked must be last.
    bad(T, name, "RFC 9112 6.3", post(value, body), status)
for name, value in [
    ("formfeed", b"Transfer-Encoding: \x0cchunked"),
    ("vtab-after", b"Transfer-Encoding: chunked\x0b"),
    ("nbsp", b"Transfer-Encoding: \xa0chunked"),
]:
    bad(T, "obfuscated-" + name, S61, post(value + b"\r\n", body))
bad(T, "with-content-length-zero", "RFC 9112 6.3", post(TE + b"Content-Length: 0\r\n", body))
bad(
    T,
    "in-http-1.0-with-content-length",
    "RFC 9112 6.3",
    post(TE + b"Content-Length: 5\r\n", body, b"1.0"),
)
ok(
    T,
    "chunked-on-get",
    S61,
    get(TE) + b"3\r\nabc\r\n0\r\n\r\n",
    replace(chunked(b"abc"), method="GET"),
)

# -- request line -----------------------------------------------------------------------------
R = "request-line"
S31 = "RFC 9112 3.1"
for method in [
    "GET",
    "HEAD",
    "POST",
    "PUT",
    "DELETE",
    "OPTIONS",
    "PATCH",
    "TRACE",
    "PROPFIND",
    "M-SEARCH",
    "X_Y",
    "a!#$%&'*+-.^_`|~1",
    "get",
]:
    ok(R, f"method-{method}", S31, get(method=method.encode()), Echo(method))
for method in [b"G(T", b"G\x7fT", b"G@T", b"G,T", b'G"T', b"G\xc3\xa9T", b"[GET]", b"G/T", b"G:T"]:
    bad(R, f"bad-method-{method!r}", S31, get(method=method))
ok(R, "origin-form-query", "RFC 9112 3.2.1", get(target=b"/a/b?c=d&e"), Echo(target="/a/b?c=d&e"))
ok(R, "origin-form-pct", "RFC 9112 3.2.1", get(target=b"/a%20b"), Echo(target="/a%20b"))
ok(R, "absolute-form", "RFC 9112 3.2.2", get(target=b"http://t/x?y"), Echo(target="http://t/x?y"))
ok(
    R,
    "absolute-form-https",
    "RFC 9112 3.2.2",
    get(target=b"https://t:443/"),
    Echo(target="https://t:443/"),
)
# VestesPy does not tunnel: CONNECT gets 501 (RFC 9110 15.6.2), after the target is accepted.
bad(R, "authority-form-connect", "RFC 9110 9.3.6", get(target=b"t:443", method=b"CONNECT"), 501)
# CONNECT with a target form other than authority-form does not fit the method: 400.
bad(R, "connect-origin-form", "RFC 9112 3.2.3", get(target=b"/", method=b"CONNECT"))
bad(R, "connect-absolute-form", "RFC 9112 3.2.3", get(target=b"http://t/", method=b"CONNECT"))
bad(R, "connect-asterisk-form", "RFC 9112 3.2.4", get(target=b"*", method=b"CONNECT"))
ok(
    R,
    "asterisk-options",
    "RFC 9112 3.2.4",
    get(target=b"*", method=b"OPTIONS"),
    Echo("OPTIONS", "*"),
)
for method in [b"GET", b"POST", b"HEAD"]:
    bad(
        R,
        f"authority-form-{method.decode()}",
        "RFC 9112 3.2.3",
        get(target=b"t:443", method=method),
    )
    bad(R, f"asterisk-{method.decode()}", "RFC 9112 3.2.4", get(target=b"*", method=method))
ok(R, "http-1.0", "RFC 9112 2.3", b"GET / HTTP/1.0\r\n\r\n", Echo(version="1.0"), closes=True)
ok(
    R,
    "http-1.0-with-host",
    "RFC 9112 2.3",
    b"GET / HTTP/1.0\r\nHost: t\r\n\r\n",
    Echo(version="1.0"),
    closes=True,
)
for version in [b"2.0", b"1.2", b"3.0", b"1.9"]:
    bad(
        R,
        f"version-{version.decode()}",
        "RFC 9110 15.6.6",
        b"GET / HTTP/" + version + b"\r\nHost: t\r\n\r\n",
        505,
    )
for version in [
    b"HTTP/1",
    b"HTTP/1.1.1",
    b"HTTP/11",
    b"http/1.1",
    b"HTTP/ 1.1",
    b"HTTP/a.b",
    b"HTTPS/1.1",
    b"HTTP/1.1 ",
    b"",
    b"HTTP/01.1",
]:
    bad(R, f"junk-version-{version!r}", S31, b"GET / " + version + b"\r\nHost: t\r\n\r\n")
for name, line in [
    ("double-space-after-method", b"GET  / HTTP/1.1"),
    ("double-space-before-version", b"GET /  HTTP/1.1"),
    ("leading-space", b" GET / HTTP/1.1"),
    ("tab-separator", b"GET\t/ HTTP/1.1"),
    ("tab-before-version", b"GET /\tHTTP/1.1"),
    ("space-in-target", b"GET /a b HTTP/1.1"),
    ("no-target", b"GET HTTP/1.1"),
    ("only-method", b"GET"),
    ("nul-in-target", b"GET /\x00 HTTP/1.1"),
    ("del-in-target", b"GET /\x7f HTTP/1.1"),
    ("ctl-in-target", b"GET /\x01 HTTP/1.1"),
    ("bare-cr-in-line", b"GET /\r HTTP/1.1"),
]:
    bad(R, name, S31, line + b"\r\n" + H + b"\r\n")
bad(R, "bare-lf-request-line", "RFC 9112 2.2", b"GET / HTTP/1.1\n" + H + b"\r\n")
bad(R, "over-long-line", "RFC 9112 3", b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n" + H + b"\r\n", 414)
bad(R, "over-long-target-incomplete", "RFC 9112 3", b"GET /" + b"a" * 9000, 414)
ok(
    R,
    "long-line-within-limit",
    "RFC 9112 3",
    get(target=b"/" + b"a" * 8000),
    Echo(target="/" + "a" * 8000),
)
# Empty lines before a request line are skipped, first request or pipelined (RFC 9112 2.2).
ok(R, "leading-crlf", "RFC 9112 2.2", b"\r\n" + get())
ok(R, "leading-crlf-twice", "RFC 9112 2.2", b"\r\n\r\n" + get())

for method in ["QUERY", "PURGE", "ANNOUNCE", "MKCOLA"]:
    ok(
        R,
        f"method-{method}",
        "RFC 9110 9.1",
        get(method=method.encode()),
        Echo(method),
        note="any token is a method (RFC 9110 9.1, 16.1); llhttp knows a fixed list and refuses "
        "the rest (MKCOLA), or allows some only with RTSP (ANNOUNCE): an application answers "
        "501 for methods it does not implement",
    )
bad(
    R,
    "asterisk-M-SEARCH",
    "RFC 9112 3.2.4",
    get(target=b"*", method=b"M-SEARCH"),
    note="llhttp accepts SSDP's 'M-SEARCH *'; SSDP is HTTP over UDP, and over HTTP/1.1 the "
    "asterisk-form is for OPTIONS only",
)
bad(
    R,
    "asterisk-PRI-http-1.1",
    "RFC 9112 3.2.4",
    get(target=b"*", method=b"PRI"),
    note="llhttp pauses for an HTTP/2 upgrade; over HTTP/1.1 PRI * is not a valid request",
)
bad(R, "http2-preface", "RFC 9110 15.6.6", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505)
bad(R, "version-0.9", "RFC 9110 15.6.6", b"GET / HTTP/0.9\r\nHost: t\r\n\r\n", 505)
bad(
    R,
    "no-version",
    S31,
    b"GET /\r\nHost: t\r\n\r\n",
    note="llhttp accepts an HTTP/0.9 simple request; RFC 9112 3 requires the HTTP-version",
)
for protocol in [b"RTSP/1.0", b"ICE/1.0"]:
    bad(
        R,
        f"protocol-{protocol.decode()}",
        S31,
        b"GET / " + protocol + b"\r\nHost: t\r\n\r\n",
        note="llhttp also parses RTSP and ICE; they are not HTTP/1.1",
    )
bad(R, "utf8-in-target", "RFC 9112 3.2", get(target=b"/\xce\xb4"))
bad(R, "leading-bare-lf", "RFC 9112 2.2", b"\n" + get(), pipeline=False)
ok(R, "absolute-form-no-path", "RFC 9112 3.2.2", get(target=b"http://t"), Echo(target="http://t"))
ok(
    R,
    "absolute-form-query-no-path",
    "RFC 9112 3.2.2",
    get(target=b"http://t:1234?x=1"),
    Echo(target="http://t:1234?x=1"),
)
ok(
    R,
    "absolute-form-other-host",
    "RFC 9112 3.2.2",
    b"GET http://a/x HTTP/1.1\r\nHost: b\r\n\r\n",
    Echo(target="http://a/x"),
)
ok(
    R,
    "asterisk-options-1.0",
    "RFC 9112 3.2.4",
    b"OPTIONS * HTTP/1.0\r\n\r\n",
    Echo("OPTIONS", "*", version="1.0"),
    closes=True,
)
ok(
    R,
    "absolute-form-port-no-path",
    "RFC 9112 3.2.2",
    get(target=b"http://t:443"),
    Echo(target="http://t:443"),
)

# -- header fields ----------------------------------------------------------------------------
F = "header-fields"
S52 = "RFC 9112 5"
ok(F, "simple", S52, get(b"X-A: b\r\n"), Echo(headers=(("Host", "t"), ("X-A", "b"))))
ok(F, "empty-value", S52, get(b"X-A:\r\n"), Echo(headers=(("Host", "t"), ("X-A", ""))))
ok(
    F,
    "ows-trimmed",
    S52,
    get(b"X-A: \t b c \t \r\n"),
    Echo(headers=(("Host", "t"), ("X-A", "b c"))),
)
ok(
    F,
    "obs-text",
    "RFC 9110 5.5",
    get(b"X-A: caf\xe9\r\n"),
    Echo(headers=(("Host", "t"), ("X-A", "caf\xe9"))),
)
ok(
    F,
    "htab-inside",
    "RFC 9110 5.5",
    get(b"X-A: a\tb\r\n"),
    Echo(headers=(("Host", "t"), ("X-A", "a\tb"))),
)
ok(
    F,
    "duplicates-kept",
    S52,
    get(b"X-A: 1\r\nX-A: 2\r\n"),
    Echo(headers=(("Host", "t"), ("X-A", "1"), ("X-A", "2"))),
)
ok(
    F,
    "token-chars-name",
    "RFC 9110 5.1",
    get(b"!#$%&'*+-.^_`|~09az: v\r\n"),
    Echo(headers=(("Host", "t"), ("!#$%&'*+-.^_`|~09az", "v"))),
)
ok(
    F,
    "case-preserved",
    S52,
    get(b"x-MiXeD: v\r\n"),
    Echo(headers=(("Host", "t"), ("x-MiXeD", "v"))),
)
ok(F, "value-with-colon", S52, get(b"X-A: b:c\r\n"), Echo(headers=(("Host", "t"), ("X-A", "b:c"))))
# max_header_count (100 by default) counts every field, Host included: 100 pass, 101 get 431.
ok(F, "many-fields", "RFC 6585 5", get(b"".join(b"X-%d: %d\r\n" % (i, i) for i in range(99))))
bad(
    F,
    "one-field-too-many",
    "RFC 6585 5",
    get(b"".join(b"X-%d: %d\r\n" % (i, i) for i in range(100))),
    431,
)
bad(F, "bare-lf-field", "RFC 9112 2.2", get(b"X-A: b\n"))
bad(F, "bare-lf-end", "RFC 9112 2.2", b"GET / HTTP/1.1\r\nHost: t\r\n\n")
bad(F, "all-bare-lf", "RFC 9112 2.2", b"GET / HTTP/1.1\nHost: t\n\n")
bad(F, "obs-fold-space", "RFC 9112 5.2", get(b"X-A: b\r\n c\r\n"))
bad(F, "obs-fold-tab", "RFC 9112 5.2", get(b"X-A: b\r\n\tc\r\n"))
bad(F, "obs-fold-first-line", "RFC 9112 5.2", b"GET / HTTP/1.1\r\n Host: t\r\n\r\n")
bad(F, "space-before-colon", "RFC 9112 5.1", get(b"X-A : b\r\n"))
bad(F, "tab-before-colon", "RFC 9112 5.1", get(b"X-A\t: b\r\n"))
bad(F, "empty-name", "RFC 9110 5.1", get(b": b\r\n"))
bad(F, "no-colon", "RFC 9112 5", get(b"X-A b\r\n"))
for char in [
    b"(",
    b")",
    b"/",
    b"@",
    b"[",
    b"]",
    b"{",
    b"}",
    b'"',
    b"\\",
    b"=",
    b"?",
    b",",
    b";",
    b"\xe9",
    b"\x01",
    b"\x7f",
]:
    bad(F, f"non-token-name-{char!r}", "RFC 9110 5.1", get(b"X" + char + b"A: b\r\n"))
for code in [*range(0x01, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F, 0x00]:
    bad(
        F,
        f"control-0x{code:02x}-in-value",
        "RFC 9110 5.5",
        get(b"X-A: a" + bytes([code]) + b"b\r\n"),
    )
bad(F, "bare-cr-in-value", "RFC 9112 2.2", get(b"X-A: a\rb\r\n"))
bad(F, "missing-host", "RFC 9112 3.2", b"GET / HTTP/1.1\r\n\r\n")
bad(F, "duplicate-host", "RFC 9112 3.2", get(b"Host: u\r\n"))
bad(F, "too-large-field", "RFC 6585 5", get(b"X-A: " + b"a" * 20000 + b"\r\n"), 431)
bad(
    F,
    "too-many-fields",
    "RFC 6585 5",
    get(b"".join(b"X-%d: %d\r\n" % (i, i) for i in range(3000))),
    431,
)
bad(F, "expect-unknown", "RFC 9110 10.1.1", get(b"Expect: foo\r\n"), 417)
bad(F, "expect-100-with-junk", "RFC 9110 10.1.1", get(b"Expect: 100-continue, foo\r\n"), 417)

ok(F, "host-empty", "RFC 9112 3.2", b"GET / HTTP/1.1\r\nHost:\r\n\r\n")
for host in [
    b"t:8080",
    b"127.0.0.1:5000",
    b"[::1]:8080",
    b"[v1.a]",
    b"a_b.example",
    b"0.0.0.0=5000",
    b"a%2Db",
    b"t:",
]:
    ok(
        F,
        f"host-valid-{host.decode()}",
        "RFC 9110 7.2",
        b"GET / HTTP/1.1\r\nHost: " + host + b"\r\n\r\n",
    )
for host in [
    b"a b",
    b"a/b",
    b"u@a",
    b"t:8x",
    b"t:1:2",
    b"caf\xe9",
    b"[::1",
    b"a%2",
    b"a?b",
    b'"t"',
]:
    # RFC 9112 3.2: "a Host header field with an invalid field value" gets 400 (h11 and
    # llhttp do not look at the value).
    bad(
        F,
        f"host-invalid-{host!r}",
        "RFC 9112 3.2",
        b"GET / HTTP/1.1\r\nHost: " + host + b"\r\n\r\n",
    )
bad(F, "host-invalid-http-1.0", "RFC 9112 3.2", b"GET / HTTP/1.0\r\nHost: a/b\r\n\r\n")
bad(F, "duplicate-host-http-1.0", "RFC 9112 3.2", b"GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n")
bad(F, "duplicate-host-same-value", "RFC 9112 3.2", get(b"Host: t\r\n"))
bad(
    F,
    "bare-lf-hides-transfer-encoding",
    "RFC 9112 2.2",
    post(b"X:\nTransfer-Encoding: chunked\r\n", b"0\r\n\r\n"),
)
bad(
    F,
    "bare-cr-hides-transfer-encoding",
    "RFC 9112 2.2",
    post(b"X:\rTransfer-Encoding: chunked\r\n", b"0\r\n\r\n"),
)
bad(F, "name-obs-fold", "RFC 9112 5.2", get(b"X-A\r\n : b\r\n"))
bad(
    F,
    "cr-junk-after-head",
    "RFC 9112 2.2",
    get()[:-2] + b"\rZGET /evil HTTP/1.1\r\nHost: t\r\n\r\n",
)
bad(F, "nul-in-name", "RFC 9110 5.1", get(b"X\x00A: b\r\n"))
ok(
    F,
    "utf8-value",
    "RFC 9110 5.5",
    get(b"X-A: D\xc3\xbcsseldorf\r\n"),
    note="obs-text is passed on as Latin-1, byte for byte",
)
ok(F, "value-ff", "RFC 9110 5.5", get(b"X-A: \xffb\r\n"))
ok(F, "fields-at-size-limit", "RFC 6585 5", get(b"X-A: " + b"a" * 15000 + b"\r\n"))

# -- connection management --------------------------------------------------------------------
M = "connection"
S9 = "RFC 9112 9"
ok(M, "keep-alive-default", "RFC 9112 9.3", get())
ok(M, "close-request", "RFC 9112 9.6", get(b"Connection: close\r\n"), closes=True)
ok(M, "close-mixed-case", "RFC 9112 9.6", get(b"Connection: Close\r\n"), closes=True)
ok(
    M,
    "keep-alive-1.0",
    "RFC 9112 9.3",
    b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    Echo(version="1.0"),
    closes=True,
    note="h11 closes HTTP/1.0 connections; allowed by RFC 9112 9.3",
)
ok(
    M,
    "expect-100-continue",
    "RFC 9110 10.1.1",
    post(b"Expect: 100-continue\r\nContent-Length: 5\r\n", b"hello"),
    Echo("POST", body=b"hello"),
)
ok(
    M,
    "expect-100-continue-case",
    "RFC 9110 10.1.1",
    post(b"Expect: 100-Continue\r\nContent-Length: 5\r\n", b"hello"),
    Echo("POST", body=b"hello"),
)
ok(M, "head", "RFC 9110 9.3.2", get(method=b"HEAD"), Echo("HEAD"))
for count in [1, 2, 3, 8, 16, 32, 64]:
    seq(
        M,
        f"pipeline-{count}",
        "RFC 9112 9.3.2",
        *[(get(target=b"/%d" % i), Echo(target=f"/{i}")) for i in range(count)],
    )
seq(
    M,
    "pipeline-mixed-bodies",
    "RFC 9112 9.3.2",
    (post(b"Content-Length: 3\r\n", b"abc"), Echo("POST", body=b"abc")),
    (get(target=b"/x"), Echo(target="/x")),
    (post(TE, body), chunked(b"hello")),
)
seq(M, "pipeline-then-bad", "RFC 9112 9.3.2", (get(), Echo()), (get(b"X-A : b\r\n"), Reject(400)))
CLOSING = get(b"Connection: close\r\n")
CASES.append(
    Case(
        "pipeline-then-close",
        M,
        "RFC 9112 9.6",
        CLOSING + get(target=b"/never"),
        (_filled(Echo(), CLOSING),),  # the request behind it is never answered
        closes=True,
        note="llhttp reports an error (data after Connection: close); RFC 9112 9.6 only says "
        "the server must not process it, so VestesPy answers the first request, reads no more",
    )
)

ok(M, "keep-alive-explicit", "RFC 9112 9.3", get(b"Connection: keep-alive\r\n"))
ok(M, "close-trailing-tab", "RFC 9112 9.6", get(b"Connection: close\t\r\n"), closes=True)
ok(M, "close-in-list", "RFC 9112 9.6", get(b"Connection: keep-alive, close\r\n"), closes=True)
ok(
    M,
    "close-second-field",
    "RFC 9112 9.6",
    get(b"Connection: x-a\r\nConnection: close\r\n"),
    closes=True,
)
ok(
    M,
    "http-1.0-with-body",
    "RFC 9112 9.3",
    b"POST / HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc",
    Echo("POST", version="1.0", body=b"abc"),
    closes=True,
)
HTTP10 = b"GET / HTTP/1.0\r\n\r\n"
CASES.append(
    Case(
        "http-1.0-then-pipelined",
        M,
        "RFC 9112 9.3",
        HTTP10 + get(target=b"/never"),
        (Echo(version="1.0", headers=()),),
        closes=True,
        note="llhttp reports 'Data after Connection: close'; VestesPy answers the HTTP/1.0 "
        "request and reads no more (RFC 9112 9.6)",
    )
)
# Connection: close from the server's side: the handler sets it, the connection closes after
# the response, and a request pipelined behind is never answered.
ok(M, "close-response", "RFC 9112 9.6", get(target=b"/close"), Echo(target="/close"), closes=True)
CLOSE_RESPONSE = get(target=b"/close")
CASES.append(
    Case(
        "close-response-pipelined",
        M,
        "RFC 9112 9.6",
        CLOSE_RESPONSE + get(target=b"/never"),
        (_filled(Echo(target="/close"), CLOSE_RESPONSE),),
        closes=True,
    )
)
ok(
    M,
    "close-response-to-post",
    "RFC 9112 9.6",
    post(b"Content-Length: 5\r\n", b"hello").replace(b"POST / ", b"POST /close "),
    Echo("POST", "/close", body=b"hello"),
    closes=True,
)
ok(
    M,
    "expect-100-continue-http-1.0",
    "RFC 9110 10.1.1",
    b"POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello",
    Echo("POST", version="1.0", body=b"hello"),
    closes=True,
)
ok(
    M,
    "expect-100-continue-chunked",
    "RFC 9110 10.1.1",
    post(b"Expect: 100-continue\r\n" + TE, body),
    chunked(b"hello"),
)
bad(M, "expect-unknown-http-1.0", "RFC 9110 10.1.1", b"GET / HTTP/1.0\r\nExpect: foo\r\n\r\n", 417)
bad(M, "expect-unknown-on-head", "RFC 9110 10.1.1", get(b"Expect: x\r\n", method=b"HEAD"), 417)
ok(
    M,
    "head-with-query",
    "RFC 9110 9.3.2",
    get(target=b"/x?y", method=b"HEAD"),
    Echo("HEAD", "/x?y"),
)
# Responses without a body (RFC 9110 15.3.5, 15.4.5): nothing follows the head, and the next
# request on the connection still parses.
for status in (204, 304):
    target = f"/status/{status}"
    ok(
        M,
        f"status-{status}",
        "RFC 9110 15.3.5" if status == 204 else "RFC 9110 15.4.5",
        get(target=target.encode()),
        Echo(target=target, status=status),
    )
    ok(
        M,
        f"status-{status}-after-body",
        "RFC 9112 6.3",
        post(b"Content-Length: 5\r\n", b"hello").replace(
            b"POST / ", b"POST " + target.encode() + b" "
        ),
        Echo("POST", target, body=b"hello", status=status),
    )
    seq(
        M,
        f"status-{status}-pipelined",
        "RFC 9112 6.3",
        (get(target=target.encode()), Echo(target=target, status=status)),
        (get(target=b"/next"), Echo(target="/next")),
    )
# A body the handler ignored is read past, and the request behind it parses as sent.
IGNORED = b"POST /ignore HTTP/1.1\r\nHost: t\r\n"
SMUGGLED = get(target=b"/smuggled")
for name, framing, payload in [
    ("content-length", b"Content-Length: 5\r\n", b"hello"),
    ("chunked", TE, b"5\r\nhello\r\n0\r\n\r\n"),
    ("chunked-trailers", TE, b"5\r\nhello\r\n0\r\nX-A: 1\r\n\r\n"),
    # A body that looks like a request must not be parsed as one.
    ("looks-like-request", b"Content-Length: %d\r\n" % len(SMUGGLED), SMUGGLED),
    ("chunked-looks-like-request", TE, b"%x\r\n%s\r\n0\r\n\r\n" % (len(SMUGGLED), SMUGGLED)),
    ("large", b"Content-Length: 100000\r\n", b"x" * 100000),
]:
    seq(
        M,
        f"ignored-body-{name}",
        "RFC 9112 6.3",
        (IGNORED + framing + b"\r\n" + payload, Echo("POST", "/ignore")),
        (get(target=b"/next"), Echo(target="/next")),
    )
# Upgrade is optional (RFC 9110 7.8): a server that does not switch answers normally.
seq(
    M,
    "upgrade-ignored",
    "RFC 9110 7.8",
    (get(b"Connection: upgrade\r\nUpgrade: websocket\r\n"), Echo()),
    (get(target=b"/next"), Echo(target="/next")),
    note="llhttp pauses for the protocol switch; that is not an error",
)
# RFC 9112 2.2: a server SHOULD ignore at least one empty line before a request-line; that
# includes one between pipelined requests (llhttp does; clients have sent CRLF after a body).
seq(
    M,
    "crlf-between-pipelined-requests",
    "RFC 9112 2.2",
    (post(b"Content-Length: 4\r\n", b"q=42"), Echo("POST", body=b"q=42")),
    (b"\r\n" + get(target=b"/next"), Echo(target="/next")),
)
