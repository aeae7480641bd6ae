"""Trusted-proxy resolution: right-most untrusted address, schemes, hosts, RFC 7239."""

from __future__ import annotations

import pytest

from vestespy.headers import Headers
from vestespy.proxies import Forwarded, TrustedProxies, parse_forwarded, resolve

PEER = ("10.0.0.2", 50000)
TRUSTED = TrustedProxies(["10.0.0.0/8", "192.0.2.1", "fd00::/8"])

# (peer, header fields, expected Forwarded or None)
CASES: list[tuple[object, list[tuple[str, str]], Forwarded | None]] = [
    # Untrusted peer: every forwarding field ignored.
    (("203.0.113.7", 1), [("X-Forwarded-For", "1.2.3.4")], None),
    (("203.0.113.7", 1), [("Forwarded", "for=1.2.3.4;proto=https")], None),
    # Trusted peer, nothing forwarded.
    (PEER, [], None),
    # One proxy.
    (PEER, [("X-Forwarded-For", "198.51.100.7")], Forwarded(("198.51.100.7", 0))),
    # The right-most untrusted entry wins; what the client wrote to its left is ignored.
    (
        PEER,
        [("X-Forwarded-For", "6.6.6.6, 198.51.100.7, 10.1.1.1")],
        Forwarded(("198.51.100.7", 0)),
    ),
    # Several field lines are one list, in order.
    (
        PEER,
        [("X-Forwarded-For", "6.6.6.6"), ("X-Forwarded-For", "198.51.100.7, 192.0.2.1")],
        Forwarded(("198.51.100.7", 0)),
    ),
    # Every entry trusted: the left-most one.
    (PEER, [("X-Forwarded-For", "10.9.9.9, 10.1.1.1")], Forwarded(("10.9.9.9", 0))),
    # A port, IPv6 with and without brackets, IPv4-mapped IPv6.
    (PEER, [("X-Forwarded-For", "198.51.100.7:4711")], Forwarded(("198.51.100.7", 4711))),
    (PEER, [("X-Forwarded-For", "2001:db8::1")], Forwarded(("2001:db8::1", 0))),
    (PEER, [("X-Forwarded-For", "[2001:db8::1]:80")], Forwarded(("2001:db8::1", 80))),
    (PEER, [("X-Forwarded-For", "1.1.1.1, ::ffff:10.0.0.9")], Forwarded(("1.1.1.1", 0))),
    # Garbage ends the walk and is reported as written.
    (PEER, [("X-Forwarded-For", "1.1.1.1, unknown")], Forwarded(("unknown", 0))),
    # Scheme and host: the right-most value; invalid ones ignored.
    (
        PEER,
        [
            ("X-Forwarded-For", "198.51.100.7"),
            ("X-Forwarded-Proto", "http, HTTPS"),
            ("X-Forwarded-Host", "evil.example, shop.example"),
        ],
        Forwarded(("198.51.100.7", 0), "https", "shop.example"),
    ),
    (
        PEER,
        [("X-Forwarded-Proto", "gopher"), ("X-Forwarded-Host", "a b")],
        None,
    ),
    # Proto and host without a client list: the peer stays the client.
    (PEER, [("X-Forwarded-Proto", "https")], Forwarded(PEER, "https")),
    # RFC 7239, and it wins over X-Forwarded-For.
    (
        PEER,
        [
            ("X-Forwarded-For", "6.6.6.6"),
            ("Forwarded", 'for=6.6.6.6, for="[2001:db8:cafe::17]:4711";proto=https;host=a.example'),
            ("Forwarded", "for=10.1.1.1;proto=http"),
        ],
        Forwarded(("2001:db8:cafe::17", 4711), "https", "a.example"),
    ),
    (PEER, [("Forwarded", "for=_hidden, for=10.1.1.1")], Forwarded(("_hidden", 0))),
    (
        PEER,
        [("Forwarded", "For=198.51.100.7;Proto=HTTPS")],
        Forwarded(("198.51.100.7", 0), "https"),
    ),
    # An element without for= names an unknown client.
    (PEER, [("Forwarded", "proto=https")], Forwarded(("unknown", 0), "https")),
]


@pytest.mark.parametrize(("peer", "fields", "expected"), CASES)
def test_resolve(peer: object, fields: list[tuple[str, str]], expected: Forwarded | None) -> None:
    assert resolve(peer, Headers(fields), TRUSTED) == expected


def test_unix_peers_and_trust_all() -> None:
    fields = Headers([("X-Forwarded-For", "198.51.100.7")])
    assert resolve("", fields, TRUSTED) is None
    assert resolve("", fields, TrustedProxies(["unix"])) == Forwarded(("198.51.100.7", 0))
    everyone = TrustedProxies.parse("*")
    assert resolve(("203.0.113.7", 1), fields, everyone) == Forwarded(("198.51.100.7", 0))
    # With "*" every entry is trusted: the left-most is the client.
    chain = Headers([("X-Forwarded-For", "6.6.6.6, 198.51.100.7")])
    assert resolve(PEER, chain, everyone) == Forwarded(("6.6.6.6", 0))


def test_trusted_proxies_parsing() -> None:
    assert not TrustedProxies([])
    assert TrustedProxies.parse("127.0.0.1, ::1")
    assert TrustedProxies.parse("127.0.0.1").trusts_address("127.0.0.1")
    assert not TrustedProxies.parse("127.0.0.1").trusts_address("127.0.0.2")
    assert TrustedProxies.parse("10.0.0.0/8").trusts_peer(("10.200.0.1", 80))
    with pytest.raises(ValueError, match="'bogus' is not an address"):
        TrustedProxies(["bogus"])


def test_parse_forwarded_quoting() -> None:
    assert parse_forwarded(['for="a\\"b;c,d";by=x, for=y']) == [
        {"for": 'a"b;c,d', "by": "x"},
        {"for": "y"},
    ]
    # A malformed pair ends its element; the rest still parse.
    assert parse_forwarded(["for=1.2.3.4;===;proto=https, for=5.6.7.8"]) == [
        {"for": "1.2.3.4"},
        {"for": "5.6.7.8"},
    ]
