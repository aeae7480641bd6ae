"""The conformance cases, as data: raw request bytes and the responses they must produce.

Each :class:`Case` names the RFC section that decides it. Where llhttp's test corpus
(``../shared/corpora/llhttp``) gives a different verdict, ``note`` says why RFC 9112/9110
decide otherwise (see docs/conformance.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Echo:
    """An accepted request, as the echo handler saw it."""

    method: str = "GET"
    target: str = "/"
    version: str = "1.1"
    body: bytes = b""
    #: If given, the header fields exactly as the handler saw them (names as received).
    headers: tuple[tuple[str, str], ...] | None = None
    trailers: tuple[tuple[str, str], ...] = ()


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
        return len(self.responses) == 1 and isinstance(self.responses[0], Echo)


CASES: list[Case] = []

H = b"Host: t\r\n"


def ok(category: str, name: str, section: str, raw: bytes, *echo: Echo, **kw: object) -> None:
    CASES.append(Case(name, category, section, raw, echo or (Echo(),), **kw))  # type: ignore[arg-type]


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
    Echo("POST", body=b"hello"),
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
ok(
    C,
    "shorter-than-body",
    S86,
    post(b"Content-Length: 3\r\n", b"abcGET /x HTTP/1.1\r\nHost: t\r\n\r\n"),
    Echo("POST", body=b"abc"),
    Echo("GET", "/x"),
)
bad(C, "shorter-than-body-garbage", S86, post(b"Content-Length: 3\r\n", b"abcdef\r\n\r\n"))
CASES[-1] = Case(
    "shorter-than-body-garbage",
    C,
    S86,
    CASES[-1].raw,
    (Echo("POST", body=b"abc"), Reject(400)),
    closes=True,
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

# -- Transfer-Encoding ------------------------------------------------------------------------
T = "transfer-encoding"
S61 = "RFC 9112 6.1"
body = b"5\r\nhello\r\n0\r\n\r\n"
ok(
    T,
    "chunked-mixed-case",
    "RFC 9110 10.1.4",
    post(b"Transfer-Encoding: Chunked\r\n", body),
    chunked(b"hello"),
)
ok(
    T,
    "chunked-upper",
    "RFC 9110 10.1.4",
    post(b"Transfer-Encoding: CHUNKED\r\n", body),
    chunked(b"hello"),
)
ok(T, "chunked-ows", S61, post(b"Transfer-Encoding: \t chunked \t\r\n", body), chunked(b"hello"))
for value in [
    b"gzip, chunked",
    b"deflate, chunked",
    b"compress, chunked",
    b"x-custom, chunked",
    b"identity",
    b"gzip",
]:
    bad(
        T,
        f"unknown-coding-{value.decode()}",
        "RFC 9112 6.1",
        post(b"Transfer-Encoding: " + value + b"\r\n", body),
        501,
    )
for value in [b"chunked, gzip", b"chunked, chunked", b"chunked;q=1"]:
    bad(
        T,
        f"chunked-not-last-{value.decode()}",
        S61,
        post(b"Transfer-Encoding: " + value + b"\r\n", body),
        501,
    )
bad(
    T,
    "repeated-headers",
    S61,
    post(b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", body),
    501,
)
bad(T, "with-content-length", "RFC 9112 6.3", post(TE + b"Content-Length: 5\r\n", body))
bad(T, "content-length-first", "RFC 9112 6.3", post(b"Content-Length: 5\r\n" + TE, body))
bad(T, "in-http-1.0", "RFC 9112 6.1", post(TE, body, b"1.0"))
for name, value in [
    ("trailing-space-name", b"Transfer-Encoding : chunked"),
    ("vtab", b"Transfer-Encoding: \x0bchunked"),
    # RFC 9110 5.6.1 lets a list hold empty elements, but h11 refuses
    # them (501) and a stricter verdict is safe.
    ("leading-comma", b"Transfer-Encoding: ,chunked"),
    ("trailing-comma", b"Transfer-Encoding: chunked,"),
    ("chunked-x", b"Transfer-Encoding: chunkedx"),
    ("xchunked", b"Transfer-Encoding: xchunked"),
    ("quoted", b'Transfer-Encoding: "chunked"'),
    ("nul", b"Transfer-Encoding: chun\x00ked"),
    ("obs-fold", b"Transfer-Encoding:\r\n chunked"),
    ("underscore-name", b"Transfer_Encoding: chunked"),
    ("bare-lf", b"Transfer-Encoding: chunked\n"),
    ("cr-in-value", b"Transfer-Encoding: chun\rked"),
]:
    status = (
        501
        if name in ("chunked-x", "xchunked", "quoted", "leading-comma", "trailing-comma")
        else 400
    )
    if name == "underscore-name":
        # Not Transfer-Encoding at all: a plain field, and the body is then a new request.
        CASES.append(
            Case(
                "obfuscated-" + name,
                T,
                S61,
                post(value + b"\r\n", body),
                (Echo("POST"), Reject(400)),
                closes=True,
            )
        )
        continue
    bad(T, "obfuscated-" + name, S61, post(value + b"\r\n", body), status)

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
bad(R, "connect-origin-form", "RFC 9112 3.2.3", get(target=b"/", method=b"CONNECT"), 501)
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
# Empty lines are skipped only before the first request of a connection: once h11 holds the
# bytes after a request it refuses them (see docs/conformance.md).
ok(R, "leading-crlf", "RFC 9112 2.2", b"\r\n" + get(), pipeline=False)
ok(R, "leading-crlf-twice", "RFC 9112 2.2", b"\r\n\r\n" + get(), pipeline=False)

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
ok(F, "many-fields", S52, get(b"".join(b"X-%d: %d\r\n" % (i, i) for i in range(100))))
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
    CASES.append(
        Case(
            f"pipeline-{count}",
            M,
            "RFC 9112 9.3.2",
            b"".join(get(target=b"/%d" % i) for i in range(count)),
            tuple(Echo(target=f"/{i}") for i in range(count)),
        )
    )
CASES.append(
    Case(
        "pipeline-mixed-bodies",
        M,
        "RFC 9112 9.3.2",
        post(b"Content-Length: 3\r\n", b"abc") + get(target=b"/x") + post(TE, body),
        (Echo("POST", body=b"abc"), Echo(target="/x"), chunked(b"hello")),
    )
)
CASES.append(
    Case(
        "pipeline-then-bad",
        M,
        "RFC 9112 9.3.2",
        get() + get(b"X-A : b\r\n"),
        (Echo(), Reject(400)),
        closes=True,
    )
)
CASES.append(
    Case(
        "pipeline-then-close",
        M,
        "RFC 9112 9.6",
        get(b"Connection: close\r\n") + get(target=b"/never"),
        (Echo(),),
        closes=True,
    )
)
