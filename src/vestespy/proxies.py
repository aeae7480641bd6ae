"""Client address, scheme and host as reported by trusted reverse proxies.

Theory of operation: a reverse proxy (nginx, HAProxy, a cloud load balancer) connects to the
server itself, so the socket peer is the proxy, not the client. Proxies report the client in
``X-Forwarded-For`` / ``X-Forwarded-Proto`` / ``X-Forwarded-Host`` or in the standard
``Forwarded`` field (RFC 7239). Anyone can send those fields, so they are believed only from a
peer listed in ``trusted_proxies``, and only as far as the chain of trusted proxies goes:

* Each proxy appends the address it received the request from to the right of the list. The
  list is read from right to left, starting at the socket peer: while the hop that added an
  entry is trusted, the entry names the next hop. The first (right-most) entry that is not a
  trusted proxy is the client; everything to its left was written by the client itself (or by
  proxies we know nothing about) and is ignored. If every entry is trusted, the left-most one
  is the client.
* An entry that is not an IP address (``unknown``, an obfuscated ``_name`` of RFC 7239 6.3)
  ends the walk: it becomes the client as written, since the trusted proxy to its right
  vouches for nothing better.
* ``Forwarded`` wins over the ``X-Forwarded-*`` fields when a request has both. With
  ``Forwarded`` the scheme and host come from the element whose ``for`` was chosen (what the
  outermost trusted proxy received); with ``X-Forwarded-Proto`` and ``X-Forwarded-Host`` the
  right-most value is used (set by the nearest proxy). A scheme other than ``http`` or
  ``https``, or a host with spaces or control characters, is ignored.

Everything here is a pure function of its arguments; the server calls :func:`resolve` once per
request, and only when ``trusted_proxies`` is set.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .headers import Headers

if TYPE_CHECKING:
    from .request import SocketAddress

__all__ = ["Forwarded", "TrustedProxies", "parse_forwarded", "resolve"]

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# RFC 7239 4: forwarded-pair = token "=" value, value = token / quoted-string.
_PAIR = re.compile(
    r'\s*([!#$%&\'*+\-.^_`|~0-9A-Za-z]+)\s*=\s*("(?:[^"\\]|\\.)*"|[!#$%&\'*+\-.^_`|~0-9A-Za-z:\[\]]*)\s*'
)
_BAD_HOST = re.compile(r"[\x00-\x20\x7f\"<>\\^`{|}]")


@dataclass(frozen=True, slots=True)
class Forwarded:
    """What the trusted proxies say about the client.

    Attributes:
        client: The client's address as ``(host, port)``; the port is 0 when the proxies did
            not report one. ``host`` may be a token such as ``"unknown"``.
        scheme: ``"http"`` or ``"https"``, or None if no trusted proxy said.
        host: The ``Host`` the client asked for, or None if no trusted proxy said.
    """

    client: tuple[str, int]
    scheme: str | None = None
    host: str | None = None


class TrustedProxies:
    """A set of trusted proxy addresses and networks.

    Args:
        entries: IP addresses (``"10.0.0.1"``), networks (``"10.0.0.0/8"``, ``"fd00::/8"``),
            ``"*"`` (trust every peer: only when nothing but the proxy can reach the
            server) and ``"unix"`` (trust peers on UNIX domain sockets).

    Raises:
        ValueError: An entry is none of these.
    """

    __slots__ = ("_networks", "trust_all", "trust_unix")

    def __init__(self, entries: Iterable[str]) -> None:
        networks: list[_Network] = []
        #: Whether every peer is trusted (``"*"``).
        self.trust_all: bool = False
        #: Whether peers on UNIX domain sockets are trusted (``"unix"``).
        self.trust_unix: bool = False
        for raw in entries:
            entry = raw.strip()
            if entry == "*":
                self.trust_all = True
            elif entry == "unix":
                self.trust_unix = True
            elif entry:
                try:
                    networks.append(ipaddress.ip_network(entry, strict=False))
                except ValueError:
                    raise ValueError(
                        f"trusted proxy {entry!r} is not an address, a network, '*' or 'unix'"
                    ) from None
        self._networks = tuple(networks)

    @classmethod
    def parse(cls, value: str) -> TrustedProxies:
        """Parse a comma-separated list, as ``--forwarded-allow-ips`` takes it."""
        return cls(value.split(","))

    def __bool__(self) -> bool:
        return self.trust_all or self.trust_unix or bool(self._networks)

    def __repr__(self) -> str:
        names = [str(n) for n in self._networks]
        names += ["*"] * self.trust_all + ["unix"] * self.trust_unix
        return f"TrustedProxies({names!r})"

    def trusts_address(self, address: str) -> bool:
        """Whether an IP address (as text) is a trusted proxy; False for anything else."""
        if self.trust_all:
            return True
        ip = _ip(address)
        if ip is None:
            return False
        return any(ip in network for network in self._networks)

    def trusts_peer(self, peer: SocketAddress) -> bool:
        """Whether a socket peer address (a tuple, or a UNIX socket's name) is trusted."""
        if isinstance(peer, tuple) and peer:
            return self.trusts_address(str(peer[0]))
        return self.trust_unix or self.trust_all


def _ip(text: str) -> _Address | None:
    try:
        ip = ipaddress.ip_address(text.partition("%")[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _split_node(node: str) -> tuple[str, int, bool]:
    """Split ``addr``, ``addr:port``, ``[v6]`` or ``[v6]:port``; say whether addr is an IP."""
    node = node.strip()
    host, port = node, ""
    if node.startswith("["):
        inner, bracket, rest = node[1:].partition("]")
        if bracket:
            host = inner
            port = rest[1:] if rest.startswith(":") else ""
    elif node.count(":") == 1:
        host, _, port = node.partition(":")
    ip = _ip(host)
    number = int(port) if port.isdigit() and int(port) <= 65535 else 0
    if ip is None:
        return node, 0, False
    return str(ip), number, True


def parse_forwarded(values: Iterable[str]) -> list[dict[str, str]]:
    """Parse ``Forwarded`` field values into one dict per element, names lower-cased.

    A malformed element yields the pairs before the error; quoted values are unquoted.
    """
    elements: list[dict[str, str]] = []
    for value in values:
        for element in _split_quoted(value, ","):
            pairs: dict[str, str] = {}
            for pair in _split_quoted(element, ";"):
                match = _PAIR.fullmatch(pair)
                if match is None:
                    break
                name, raw = match.group(1).lower(), match.group(2)
                if raw.startswith('"'):
                    raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
                pairs.setdefault(name, raw)
            elements.append(pairs)
    return elements


def _split_quoted(text: str, separator: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in text:
        if escaped:
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == separator and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return [part for part in parts if part.strip()]


def _walk(nodes: list[str], trusted: TrustedProxies) -> int | None:
    """Return the index of the client in ``nodes`` (right-most untrusted), or None."""
    if not nodes:
        return None
    for index in range(len(nodes) - 1, -1, -1):
        host, _, is_ip = _split_node(nodes[index])
        if not is_ip or not trusted.trusts_address(host):
            return index
    return 0


def _scheme(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip().lower()
    return value if value in ("http", "https") else None


def _host(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value if value and not _BAD_HOST.search(value) else None


def _last(values: list[str]) -> str | None:
    items = [item for value in values for item in value.split(",") if item.strip()]
    return items[-1] if items else None


def resolve(peer: SocketAddress, headers: Headers, trusted: TrustedProxies) -> Forwarded | None:
    """Return what trusted proxies say about a request, or None if nothing applies.

    None when the socket peer is not trusted, or when it sent no forwarding field: the
    request's client is then the peer, and its scheme and host its own.

    Args:
        peer: The socket peer address.
        headers: The request's header fields.
        trusted: The trusted proxies.
    """
    if not trusted.trusts_peer(peer):
        return None
    forwarded = headers.get_all("forwarded")
    if forwarded:
        elements = parse_forwarded(forwarded)
        nodes = [element.get("for", "unknown") for element in elements]
        index = _walk(nodes, trusted)
        if index is None:
            return None
        client, port, _ = _split_node(nodes[index])
        element = elements[index]
        return Forwarded((client, port), _scheme(element.get("proto")), _host(element.get("host")))
    nodes = [item for value in headers.get_all("x-forwarded-for") for item in value.split(",")]
    nodes = [node for node in nodes if node.strip()]
    scheme = _scheme(_last(headers.get_all("x-forwarded-proto")))
    forwarded_host = _host(_last(headers.get_all("x-forwarded-host")))
    index = _walk(nodes, trusted)
    if index is None:
        if scheme is None and forwarded_host is None:
            return None
        if isinstance(peer, tuple) and len(peer) >= 2:
            return Forwarded((str(peer[0]), int(peer[1])), scheme, forwarded_host)
        return Forwarded((str(peer), 0), scheme, forwarded_host)
    address, port, _ = _split_node(nodes[index])
    return Forwarded((address, port), scheme, forwarded_host)
