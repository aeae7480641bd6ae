"""The WSGI (PEP 3333) adapter: a ``"request"`` listener that runs a WSGI application.

Theory of operation, per request (all on the public API of Server, Request and Response):

* Where the application runs. A listener runs on the connection's strand, which also
  delivers the request's ``"data"`` events; an application that blocks reading
  ``wsgi.input`` there would wait for itself. So:

  - no body (no ``Content-Length`` or 0, no ``Transfer-Encoding``): the application runs at
    once in the ``"request"`` listener, on the strand;
  - a small body (``Content-Length`` up to ``buffer_size``, no ``Expect: 100-continue``):
    the body is collected on the strand and the application runs in the ``"end"`` listener,
    with the body in a :class:`io.BytesIO`. No thread hand-off for the common cases;
  - any other body (larger, chunked, or awaiting ``100 Continue``): the application runs on
    a thread of the adapter's own :class:`~vestespy._pool.WorkerPool` and reads an
    :class:`~vestespy.wsgi._input.InputStream` that the strand feeds. The strand blocks when
    that input is full, which makes the server stop reading the socket (backpressure).

* That pool starts a thread whenever none is idle, and its count is not capped on purpose.
  A cap would let every pool worker of the server block feeding the full input of an
  application that waits for a thread, while the running applications wait for data that
  only those workers can deliver: a deadlock. Uncapped, every strand blocked in ``"data"``
  belongs to an application that is running, which either reads (freeing it) or finishes
  (the input then discards). Idle threads exit after ``_IDLE_TIMEOUT`` seconds.

* ``100 Continue`` is sent when the application first reads ``wsgi.input``, never before.
  The server sends it as soon as a ``"data"`` or ``"end"`` listener is added, and a ``"data"``
  event with no listener is lost; so for such a request the ``"request"`` listener holds the
  strand (nothing of the body can be delivered meanwhile) until the application, started on
  its own thread, either reads (the listener then adds the input's listeners, which sends
  ``100 Continue``, and returns) or finishes without reading (it returns, and the server
  discards any body). This holds one pool worker while such an application runs.

* The response: see ``_response.py``. Headers wait for the first non-empty piece of the
  body; the body streams with the server's backpressure on the thread the application ran on.

* Errors. An exception before anything was sent becomes a 500 (with the traceback when the
  server has ``debug=True``); after, the connection is closed. Either way it is logged on the
  ``vestespy.wsgi`` logger and the server goes on; a header field that cannot be sent (two
  ``Content-Length`` values, a hop-by-hop field) in one line, naming it. The iterable's
  ``close()`` is always called.

* Who the client is: the environ takes the scheme, client and host from the request, as the
  server resolved them (TLS, trusted proxies); the adapter parses no forwarding field.
"""

from __future__ import annotations

import io
import logging
import threading
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import unquote_to_bytes

from .._header_fields import header_triples
from .._mypyc import mypyc_attr
from .._pool import WorkerPool
from ._input import EMPTY_INPUT, EmptyInput, ErrorStream, InputStream
from ._response import Call, FileWrapper
from ._types import Environ, WSGIApplication

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from ..request import Request
    from ..response import Response
    from ..server import Server

__all__ = ["WSGIAdapter"]

logger: logging.Logger = logging.getLogger("vestespy.wsgi")

_INLINE_ERROR = (
    "a WSGI application blocks (it reads wsgi.input and writes with backpressure): run the "
    "server with max_workers >= 1, not inline (max_workers=0)"
)
#: Seconds an idle application thread waits for the next streaming request before it exits.
_IDLE_TIMEOUT = 30.0


class _ReadGate:
    """Tells the strand whether the application read its body (True) or finished (False)."""

    __slots__ = ("_event", "read")

    def __init__(self) -> None:
        self._event = threading.Event()
        self.read = False

    def open(self) -> None:
        """The application's first read (its thread)."""
        self.read = True
        self._event.set()

    def close(self) -> None:
        """The application is done (its thread)."""
        self._event.set()

    def wait(self) -> bool:
        """Wait for either (the strand); return whether the application reads."""
        self._event.wait()
        return self.read


# Public: an application may subclass it (mypyc allows that only when asked).
@mypyc_attr(allow_interpreted_subclasses=True)
class WSGIAdapter:
    """A ``"request"`` listener that serves a WSGI (PEP 3333) application.

    Example:
        .. code-block:: python

            import vestespy
            from vestespy.wsgi import WSGIAdapter
            from myproject import app  # Flask, Django's get_wsgi_application(), ...

            server = vestespy.Server(("127.0.0.1", 8080), max_workers=16)
            server.on("request", WSGIAdapter(app))
            server.serve_forever()

    The server must run listeners on a pool (``max_workers`` >= 1): a request answered
    inline gets a 500 and the error is logged. See :doc:`/wsgi` for the environ, threads and
    streaming.

    The environ tells the application what the server resolved about each request: the
    scheme (``https`` over TLS, or when a trusted proxy says the client used it; see the
    server's ``trusted_proxies`` option and :mod:`vestespy.proxies`), the client's address
    and the host it asked for, as :class:`~vestespy.Request` has them. The adapter reads no
    forwarding field itself.

    Args:
        app: The WSGI application.
        script_name: The URL prefix the application is mounted at (``SCRIPT_NAME``), such as
            ``"/app"``; a request path that starts with it has it moved out of ``PATH_INFO``.
        url_scheme: Force ``wsgi.url_scheme`` to ``"http"`` or ``"https"`` (a proxy that
            terminates TLS but sends no ``X-Forwarded-Proto``); None, the default, takes the
            request's :attr:`~vestespy.Request.scheme`.
        multiprocess: ``wsgi.multiprocess``: True when several processes serve the app (the
            ``vestespy`` command sets it when ``--workers`` is above 1).
        buffer_size: Bodies of at most this many bytes (with ``Content-Length``) are read
            whole before the application runs; larger ones stream in as it reads.
        input_buffer: Bytes of a streaming body buffered ahead of the application; the
            server stops reading from the client above it (and its ``max_body_buffer``).

    Raises:
        ValueError: ``url_scheme`` is neither None, ``"http"`` nor ``"https"``, or
            ``script_name`` does not start with ``/``.
    """

    def __init__(
        self,
        app: WSGIApplication,
        *,
        script_name: str = "",
        url_scheme: str | None = None,
        multiprocess: bool = False,
        buffer_size: int = 64 * 1024,
        input_buffer: int = 256 * 1024,
    ) -> None:
        if url_scheme not in (None, "http", "https"):
            raise ValueError(f"url_scheme must be None, 'http' or 'https', not {url_scheme!r}")
        script_name = script_name.rstrip("/")
        if script_name and not script_name.startswith("/"):
            raise ValueError(f"script_name must start with '/': {script_name!r}")
        if buffer_size < 0 or input_buffer < 1:
            raise ValueError("buffer_size must be >= 0 and input_buffer >= 1")
        self.app: WSGIApplication = app
        self._script_name = script_name
        # PEP 3333 native strings hold bytes as Latin-1: the prefix as it appears in paths.
        self._script_bytes = script_name.encode("utf-8").decode("latin-1")
        self._url_scheme = url_scheme
        self._multiprocess = multiprocess
        self.buffer_size: int = buffer_size
        self.input_buffer: int = input_buffer
        self._threads = WorkerPool(None, idle_timeout=_IDLE_TIMEOUT, name="vestespy-wsgi")
        # One wsgi.errors for every request: it keeps a partial line per thread, and the
        # call flushes its thread's at the end of each request.
        self._errors = ErrorStream(logger)
        self._server_address: tuple[object, tuple[str, str]] = (None, ("", ""))
        # Host -> (SERVER_NAME, port or "" when it has none): a server sees few values.
        self._hosts: dict[str, tuple[str, str]] = {}
        self._base: Environ = {}
        self._rebuild_base()

    def _rebuild_base(self) -> None:
        """Build the environ every request starts from (a copy of it; see :meth:`environ`).

        It holds the per-server values, and a placeholder for every key each request sets,
        so that the copy's table already has room for them: the request's values replace
        the placeholders, which grows nothing.
        """
        from .. import __version__  # here: the package imports this module first

        self._base = {
            "REQUEST_METHOD": "",
            "SCRIPT_NAME": self._script_bytes,
            "PATH_INFO": "",
            "QUERY_STRING": "",
            "RAW_URI": "",
            "REQUEST_URI": "",
            "SERVER_PROTOCOL": "",
            "SERVER_SOFTWARE": f"VestesPy/{__version__}",
            "SERVER_NAME": "",
            "SERVER_PORT": "",
            "REMOTE_ADDR": "",
            "REMOTE_PORT": "",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": self._url_scheme or "http",
            "wsgi.input": None,
            "wsgi.errors": self._errors,
            "wsgi.multithread": True,
            "wsgi.multiprocess": self._multiprocess,
            "wsgi.run_once": False,
            "wsgi.file_wrapper": FileWrapper,
            "vestespy.request_id": "",
        }

    # The options the environ's shared part is built from: set, they rebuild it.

    @property
    def script_name(self) -> str:
        """The URL prefix the application is mounted at (``SCRIPT_NAME``)."""
        return self._script_name

    @script_name.setter
    def script_name(self, value: str) -> None:
        value = value.rstrip("/")
        if value and not value.startswith("/"):
            raise ValueError(f"script_name must start with '/': {value!r}")
        self._script_name = value
        self._script_bytes = value.encode("utf-8").decode("latin-1")
        self._rebuild_base()

    @property
    def url_scheme(self) -> str | None:
        """The forced ``wsgi.url_scheme``, or None to take the request's."""
        return self._url_scheme

    @url_scheme.setter
    def url_scheme(self, value: str | None) -> None:
        if value not in (None, "http", "https"):
            raise ValueError(f"url_scheme must be None, 'http' or 'https', not {value!r}")
        self._url_scheme = value
        self._rebuild_base()

    @property
    def multiprocess(self) -> bool:
        """``wsgi.multiprocess``."""
        return self._multiprocess

    @multiprocess.setter
    def multiprocess(self, value: bool) -> None:
        self._multiprocess = value
        self._rebuild_base()

    def __repr__(self) -> str:
        return f"<WSGIAdapter {self.app!r} script_name={self.script_name!r}>"

    # -- the "request" listener (the strand) ----------------------------------------------------

    def __call__(self, server: Server, req: Request, res: Response) -> None:
        """Serve ``req`` with the application (the server calls this for each request).

        Raises:
            RuntimeError: The server runs listeners inline (``max_workers=0``).
        """
        if not server.max_workers:
            raise RuntimeError(_INLINE_ERROR)
        # The environ first: its keys answer the questions below without more header scans.
        # It starts with the shared empty input, replaced below when there is a body.
        environ = self.environ(server, req, EMPTY_INPUT)
        length = environ.get("CONTENT_LENGTH")
        chunked = "HTTP_TRANSFER_ENCODING" in environ
        if not chunked and (length is None or length == "0"):
            Call(self.app, self._threads, server.debug, req, res).run(environ)
            return
        expects_continue = "HTTP_EXPECT" in environ and req.http_version == "1.1"
        if not chunked and not expects_continue:
            try:
                small = length is not None and int(length) <= self.buffer_size
            except ValueError:
                small = False
            if small:
                parts: list[bytes] = []
                call = Call(self.app, self._threads, server.debug, req, res)

                def run_with_body(_e: object, _q: object, _r: object) -> None:
                    environ["wsgi.input"] = io.BytesIO(b"".join(parts))
                    call.run(environ)

                req.on("data", lambda _e, _q, _r, chunk: parts.append(chunk))
                req.on("end", run_with_body)
                return
        call = Call(self.app, self._threads, server.debug, req, res)
        if not expects_continue:
            stream = environ["wsgi.input"] = InputStream(self.input_buffer)
            self._listen(req, stream)
            self._threads.submit(self._run_streaming, call, environ, stream, None)
            return
        gate = _ReadGate()
        stream = environ["wsgi.input"] = InputStream(self.input_buffer, gate.open)
        self._threads.submit(self._run_streaming, call, environ, stream, gate)
        if gate.wait():
            self._listen(req, stream)  # sends 100 Continue

    @staticmethod
    def _listen(req: Request, stream: InputStream) -> None:
        req.on("data", stream.on_data)
        req.on("end", stream.on_end)
        req.on("error", stream.on_error)

    @staticmethod
    def _run_streaming(
        call: Call, environ: Environ, stream: InputStream, gate: _ReadGate | None
    ) -> None:
        try:
            call.run(environ)
        finally:
            stream.close()
            if gate is not None:
                gate.close()

    # -- the environ ----------------------------------------------------------------------------

    def environ(
        self, server: Server, req: Request, stream: InputStream | EmptyInput | BinaryIO | None
    ) -> Environ:
        """Build the PEP 3333 environ of ``req``, with ``stream`` as ``wsgi.input``.

        Args:
            server: The server that received the request.
            req: The request.
            stream: The ``wsgi.input`` object.

        Returns:
            The environ.
        """
        # A copy of the shared part, whose placeholders the request's values replace.
        environ = self._base.copy()
        raw_path = req.raw_path
        # PATH_INFO: the percent-decoded bytes, as Latin-1 (PEP 3333 "bytes as native str").
        path = unquote_to_bytes(raw_path).decode("latin-1") if "%" in raw_path else raw_path
        script_name = self._script_bytes
        if script_name and (path == script_name or path.startswith(script_name + "/")):
            path = path[len(script_name) :]
        environ["REQUEST_METHOD"] = req.method
        environ["PATH_INFO"] = path
        environ["QUERY_STRING"] = req.query
        target = req.target
        environ["RAW_URI"] = target
        environ["REQUEST_URI"] = target
        version = req.http_version
        environ["SERVER_PROTOCOL"] = "HTTP/1.1" if version == "1.1" else "HTTP/" + version
        client = req.client_address
        if isinstance(client, tuple):
            environ["REMOTE_ADDR"] = client[0]
            # A port of 0 is one no proxy reported: unknown, not a port.
            port = client[1]
            if port:
                environ["REMOTE_PORT"] = str(port)
        elif client:
            environ["REMOTE_ADDR"] = client
        scheme = self._url_scheme or req.scheme
        environ["wsgi.url_scheme"] = scheme
        environ["wsgi.input"] = stream
        # The server's id for the request (HTTP_X_REQUEST_ID stays the client's field).
        environ["vestespy.request_id"] = req.request_id
        if scheme == "https":
            environ["HTTPS"] = "on"  # the CGI variable, which some applications read
        keys = _ENVIRON_KEYS
        # The triples hold each name lower-cased already: the key is one lookup away.
        for lower, _, value in header_triples(req.headers):
            key = keys.get(lower)
            if key is None:
                key = _environ_key(lower)
            if not key:
                continue  # a name with "_": it could pass for a dash-named one translated
            if key[0] == "H" and key in environ:
                # A repeated field (HTTP_*), joined; CONTENT_* are set, the last one wins.
                environ[key] += ("; " if key == "HTTP_COOKIE" else ", ") + value
            else:
                environ[key] = value
        # The stream always ends with the body, but the key is only set where CONTENT_LENGTH
        # cannot say where (a chunked body): Werkzeug tests for its presence, and without it
        # reads CONTENT_LENGTH bytes with read(size), as PEP 3333 has it, not read().
        if "HTTP_TRANSFER_ENCODING" in environ:
            environ["wsgi.input_terminated"] = True
        # The host the client asked for: what a trusted proxy reported (the server resolved
        # it), else Host (h11 refuses a repeated one), read from the environ rather than by
        # Request.host's second scan of the fields. Frameworks build absolute URLs from
        # HTTP_HOST, so it says the same.
        host = req._host
        if host is None:
            host = environ.get("HTTP_HOST")
        if host:
            environ["HTTP_HOST"] = host
            hosts = self._hosts
            split = hosts.get(host)
            if split is None:
                if len(hosts) > 256:
                    hosts.clear()  # a client inventing Host values cannot grow it
                split = hosts[host] = _split_host(host)
            name, port_text = split
            if not port_text:
                port_text = "443" if scheme == "https" else "80"
        else:
            name, port_text = self._address_of(server)
        environ["SERVER_NAME"] = name
        environ["SERVER_PORT"] = port_text
        cert = req.peer_certificate
        if cert:
            _add_client_certificate(environ, cert)
        return environ

    def _address_of(self, server: Server) -> tuple[str, str]:
        cached_server, address = self._server_address
        if cached_server is not server:
            host, port = server.address[:2]
            address = (str(host), str(port))
            self._server_address = (server, address)
        return address


#: Attribute names of a distinguished name as OpenSSL and mod_ssl abbreviate them.
_DN_NAMES = {
    "commonName": "CN",
    "countryName": "C",
    "stateOrProvinceName": "ST",
    "localityName": "L",
    "organizationName": "O",
    "organizationalUnitName": "OU",
    "domainComponent": "DC",
    "userId": "UID",
}


def _distinguished_name(rdns: Sequence[Iterable[tuple[str, object]]]) -> str:
    """An RFC 4514 string (``CN=alice,O=Example``) from ``getpeercert()``'s nested tuples."""
    parts = []
    for rdn in reversed(rdns):  # RFC 4514 writes the most specific name first
        values = []
        for key, value in rdn:
            escaped = "".join("\\" + c if c in ',+"\\<>;=' else c for c in str(value))
            values.append(f"{_DN_NAMES.get(key, key)}={escaped}")
        parts.append("+".join(values))
    return ",".join(parts)


# Any: as getpeercert() types its dict (str, int or nested tuples, by key).
def _add_client_certificate(environ: Environ, cert: dict[str, Any] | None) -> None:
    """Add mod_ssl's ``SSL_CLIENT_*`` keys for a verified client certificate, if any.

    ``SSL_CLIENT_VERIFY`` is ``SUCCESS`` (only verified certificates reach a request);
    ``SSL_CLIENT_S_DN`` and ``SSL_CLIENT_I_DN`` are the subject and the issuer in RFC 4514
    form, ``SSL_CLIENT_S_DN_CN`` the subject's common name, ``SSL_CLIENT_M_SERIAL`` the
    serial number, ``SSL_CLIENT_V_START`` and ``SSL_CLIENT_V_END`` the validity.
    """
    if not cert:
        return
    environ["SSL_CLIENT_VERIFY"] = "SUCCESS"
    subject = cert.get("subject", ())
    environ["SSL_CLIENT_S_DN"] = _distinguished_name(subject)
    environ["SSL_CLIENT_I_DN"] = _distinguished_name(cert.get("issuer", ()))
    for rdn in subject:
        for key, value in rdn:
            if key == "commonName":
                environ["SSL_CLIENT_S_DN_CN"] = str(value)
    for key, name in (
        ("serialNumber", "SSL_CLIENT_M_SERIAL"),
        ("notBefore", "SSL_CLIENT_V_START"),
        ("notAfter", "SSL_CLIENT_V_END"),
    ):
        if key in cert:
            environ[name] = str(cert[key])


def _split_host(host: str) -> tuple[str, str]:
    """Split a Host value into ``(SERVER_NAME, port)``; the port is ``""`` if it has none."""
    if host.startswith("["):  # an IPv6 literal
        end = host.find("]")
        if end > 0:
            rest = host[end + 1 :]
            return host[1:end], rest[1:] if rest.startswith(":") and rest[1:].isdigit() else ""
        return host, ""
    name, sep, port = host.rpartition(":")
    if sep and port.isdigit():
        return name, port
    return host, ""


#: Lower-cased field name -> environ key ("" for a name that is left out); filled as names
#: are seen, and bounded (:func:`_environ_key`).
_ENVIRON_KEYS: dict[str, str] = {}
_MAX_ENVIRON_KEYS = 512


def _environ_key(lower: str) -> str:
    """The environ key of a field name (``"HTTP_X_A"``, ``"CONTENT_TYPE"``), or ``""``.

    A name with ``_`` is left out (``""``): once ``-`` is translated to ``_`` it could pass
    for another field (a spoofed ``X_Forwarded_For`` for ``X-Forwarded-For``).
    """
    if "_" in lower:
        key = ""
    else:
        key = lower.upper().replace("-", "_")
        if key != "CONTENT_TYPE" and key != "CONTENT_LENGTH":
            key = "HTTP_" + key
    if len(_ENVIRON_KEYS) < _MAX_ENVIRON_KEYS:  # a client inventing names cannot grow it
        _ENVIRON_KEYS[lower] = key
    return key
