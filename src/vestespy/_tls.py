"""TLS settings of a server: its SSL context from the options, and the values they may take.

Made once per server (``Server.__init__``); nothing here runs per connection.
"""

from __future__ import annotations

import dataclasses
import ssl
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .options import ServerOptions

__all__ = ["SSL_CERT_REQS", "SSL_MIN_VERSIONS", "server_tls_context"]

#: The values of the ``ssl_cert_reqs`` option.
SSL_CERT_REQS = ("none", "optional", "required")
#: The values of the ``ssl_min_version`` option.
SSL_MIN_VERSIONS = ("1.2", "1.3")


def server_tls_context(
    ssl_context: ssl.SSLContext | None, options: ServerOptions
) -> ssl.SSLContext | None:
    """The server's TLS context: the one given, or one made from ``certfile``/``keyfile``.

    Either way ALPN offers ``http/1.1`` only: a client must not pick h2 on a server that
    speaks HTTP/1.1.
    """
    if options.certfile is not None:
        if ssl_context is not None:
            raise ValueError("give ssl_context or the certfile option, not both")
        ssl_context = _make_tls_context(options)
    else:
        defaults = {field.name: field.default for field in dataclasses.fields(options)}
        for name in _TLS_OPTIONS:
            if getattr(options, name) != defaults[name]:
                raise ValueError(f"the {name} option needs certfile")
    if ssl_context is not None:
        ssl_context.set_alpn_protocols(["http/1.1"])
    return ssl_context


_TLS_OPTIONS = (
    "keyfile",
    "ssl_keyfile_password",
    "ssl_ca_certs",
    "ssl_cert_reqs",
    "ssl_ciphers",
    "ssl_min_version",
)


def _make_tls_context(options: ServerOptions) -> ssl.SSLContext:
    """A server-side TLS context from the ``certfile`` and ``ssl_*`` options.

    Raises:
        ValueError: ``ssl_cert_reqs`` asks for client certificates without ``ssl_ca_certs``.
        OSError, ssl.SSLError: A file cannot be read or does not hold what it should.
    """
    assert options.certfile is not None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = (
        ssl.TLSVersion.TLSv1_3 if options.ssl_min_version == "1.3" else ssl.TLSVersion.TLSv1_2
    )
    context.load_cert_chain(options.certfile, options.keyfile, options.ssl_keyfile_password)
    if options.ssl_ciphers is not None:
        context.set_ciphers(options.ssl_ciphers)
    if options.ssl_ca_certs is not None:
        context.load_verify_locations(cafile=options.ssl_ca_certs)
    if options.ssl_cert_reqs != "none":
        if options.ssl_ca_certs is None:
            raise ValueError(
                f"ssl_cert_reqs={options.ssl_cert_reqs!r} needs ssl_ca_certs, the authorities"
                " that sign client certificates"
            )
        context.verify_mode = (
            ssl.CERT_REQUIRED if options.ssl_cert_reqs == "required" else ssl.CERT_OPTIONAL
        )
    return context
