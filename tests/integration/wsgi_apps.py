"""A Flask application and a Django project set up as for an https deployment, served by the
``vestespy`` command in the integration tests (copied to the test's directory).

Each answers ``/env`` with what it sees of the request (the environ's keys that say who and
where the client is, the absolute URL the framework builds, whether it thinks the request is
secure), redirects ``/go`` to an absolute URL of its own, and streams ``/stream`` (no
``Content-Length``). The Django project is configured as its deployment checklist asks for
https (``SECURE_SSL_REDIRECT``, secure cookies, ``CSRF_TRUSTED_ORIGINS``), with the CSRF
middleware in front of ``/post``.
"""

from __future__ import annotations

from typing import Any

#: The hosts the tests send; the partner origin Django trusts for cross-origin POSTs.
HOSTS = ["127.0.0.1", "shop.example"]
PARTNER_ORIGIN = "https://partner.example"

#: The environ keys reported by ``/env``.
KEYS = [
    "wsgi.url_scheme",
    "wsgi.multiprocess",
    "HTTPS",
    "REMOTE_ADDR",
    "REMOTE_PORT",
    "SERVER_NAME",
    "SERVER_PORT",
    "SERVER_SOFTWARE",
    "HTTP_HOST",
]

# The Django URLconf is this module: Django imports it by this name on the first request.
urlpatterns: list[Any] = []


def _report(environ: dict[str, Any], url: str, secure: bool) -> dict[str, Any]:
    report = {key: environ.get(key) for key in KEYS}
    report.update(url=url, secure=secure)
    return report


def make_flask() -> Any:
    """The Flask application."""
    from flask import Flask, Response, jsonify, redirect, request, url_for

    app = Flask("wsgi_apps")

    @app.get("/")
    def index() -> str:
        return "flask index"

    @app.get("/env")
    def env() -> Response:
        url = url_for("index", _external=True)
        return jsonify(_report(request.environ, url, request.is_secure))

    @app.get("/go")
    def go() -> Response:
        return redirect(url_for("index", _external=True))

    @app.get("/stream")
    def stream() -> Response:
        return Response((f"line {i}\n" for i in range(3)), mimetype="text/plain")

    return app


def make_django() -> Any:
    """The Django project (settings configured in-process) and its WSGI application."""
    import django
    from django.conf import settings

    if not settings.configured:
        settings.configure(
            DEBUG=False,
            SECRET_KEY="vestespy-tests-only",
            ALLOWED_HOSTS=HOSTS,
            ROOT_URLCONF=__name__,
            MIDDLEWARE=[
                "django.middleware.security.SecurityMiddleware",
                "django.middleware.csrf.CsrfViewMiddleware",
            ],
            INSTALLED_APPS=[],
            USE_TZ=True,
            LOGGING_CONFIG=None,
            # What Django's deployment checklist asks for under https: a request that Django
            # takes for plain http is redirected, and its cookies only travel over https.
            SECURE_SSL_REDIRECT=True,
            CSRF_COOKIE_SECURE=True,
            SESSION_COOKIE_SECURE=True,
            # Another site allowed to POST here; the site's own origin needs no entry when
            # Django sees the scheme the client used.
            CSRF_TRUSTED_ORIGINS=[PARTNER_ORIGIN],
        )
        django.setup()
    from django.core.wsgi import get_wsgi_application
    from django.http import (
        HttpRequest,
        HttpResponse,
        HttpResponseRedirect,
        JsonResponse,
        StreamingHttpResponse,
    )
    from django.middleware.csrf import get_token
    from django.urls import path

    def index(request: HttpRequest) -> HttpResponse:
        return HttpResponse("django index")

    def env(request: HttpRequest) -> JsonResponse:
        url = request.build_absolute_uri("/")
        return JsonResponse(_report(request.META, url, request.is_secure()))

    def go(request: HttpRequest) -> HttpResponseRedirect:
        return HttpResponseRedirect(request.build_absolute_uri("/"))

    def token(request: HttpRequest) -> HttpResponse:
        return HttpResponse(get_token(request))  # and the csrftoken cookie

    def post(request: HttpRequest) -> HttpResponse:
        return HttpResponse("posted " + request.POST["item"])

    def stream(request: HttpRequest) -> StreamingHttpResponse:
        return StreamingHttpResponse((f"line {i}\n" for i in range(3)), content_type="text/plain")

    urlpatterns[:] = [
        path("", index),
        path("env", env),
        path("go", go),
        path("token", token),
        path("post", post),
        path("stream", stream),
    ]
    return get_wsgi_application()


FACTORIES = {"flask": make_flask, "django": make_django}


def __getattr__(name: str) -> Any:
    """``flask_app`` and ``django_app``, built when first asked for (``--wsgi`` loads them)."""
    if name.endswith("_app") and name[:-4] in FACTORIES:
        app = FACTORIES[name[:-4]]()
        globals()[name] = app
        return app
    raise AttributeError(name)
