"""A real Flask application and a real Django project, for the WSGI adapter's tests.

Imported by test_wsgi_frameworks.py (in-process servers), or run as a script to serve one of
them with ``vestespy.serve`` in its own process, whose memory the tests measure::

    python tests/functional/wsgi_frameworks.py flask|django
"""

from __future__ import annotations

import hashlib
import logging
import sys
from collections.abc import Iterator
from typing import Any

# The Django URLconf is this module: Django imports it by this name on the first request.
urlpatterns: list[Any] = []


def _digest(chunks: Iterator[bytes]) -> dict[str, Any]:
    digest = hashlib.sha256()
    size = 0
    for chunk in chunks:
        digest.update(chunk)
        size += len(chunk)
    return {"size": size, "sha256": digest.hexdigest()}


def make_flask() -> Any:
    """The Flask application: routes, forms, uploads, streaming, errors, cookies, redirects."""
    from flask import Flask, Response, make_response, redirect, request, send_file, url_for

    app = Flask("vestespy_flask_test")

    @app.get("/")
    def index() -> str:
        return "flask index"

    @app.get("/items/<int:item_id>")
    def item(item_id: int) -> dict[str, Any]:
        return {"id": item_id, "q": request.args.getlist("q")}

    @app.post("/form")
    def form() -> dict[str, Any]:
        return {"name": request.form["name"], "tags": request.form.getlist("tag")}

    @app.post("/upload")
    def upload() -> dict[str, Any]:
        stream = request.files["file"].stream
        result = _digest(iter(lambda: stream.read(1 << 16), b""))
        result["note"] = request.form["note"]
        return result

    @app.get("/file")
    def file() -> Response:
        return send_file(__file__, mimetype="text/plain")  # this module's source

    @app.get("/stream")
    def stream() -> Response:
        return Response((f"line {i}\n" for i in range(1000)), mimetype="text/plain")

    @app.get("/error")
    def error() -> str:
        raise RuntimeError("the Flask view failed")

    @app.get("/cookies/set")
    def set_cookies() -> Response:
        response = make_response("set")
        response.set_cookie("flavour", "oat")
        response.set_cookie("size", "big")
        return response

    @app.get("/whoami")
    def whoami() -> dict[str, Any]:
        return {
            "cookies": request.cookies.to_dict(),
            "url": request.url,
            "script_root": request.script_root,
        }

    @app.get("/go")
    def go() -> Response:
        return redirect(url_for("index"))

    return app


def make_django() -> Any:
    """The Django project (settings configured in-process) and its WSGI application."""
    import django
    from django.conf import settings

    if not settings.configured:
        settings.configure(
            DEBUG=False,
            SECRET_KEY="vestespy-tests-only",
            ALLOWED_HOSTS=["*"],
            ROOT_URLCONF=__name__,
            MIDDLEWARE=[],
            INSTALLED_APPS=[],
            USE_TZ=True,
            # Uploads over 2.5 MB go to a temporary file, as by default: said here because
            # the memory test depends on it.
            FILE_UPLOAD_MAX_MEMORY_SIZE=2_621_440,
            LOGGING_CONFIG=None,
        )
        django.setup()
    from django.core.wsgi import get_wsgi_application
    from django.http import (
        FileResponse,
        HttpRequest,
        HttpResponse,
        HttpResponseRedirect,
        JsonResponse,
        StreamingHttpResponse,
    )
    from django.urls import path

    def index(request: HttpRequest) -> HttpResponse:
        return HttpResponse("django index")

    def item(request: HttpRequest, item_id: int) -> JsonResponse:
        return JsonResponse({"id": item_id, "q": request.GET.getlist("q")})

    def form(request: HttpRequest) -> JsonResponse:
        return JsonResponse({"name": request.POST["name"], "tags": request.POST.getlist("tag")})

    def upload(request: HttpRequest) -> JsonResponse:
        result = _digest(request.FILES["file"].chunks())
        result["note"] = request.POST["note"]
        return JsonResponse(result)

    def file(request: HttpRequest) -> FileResponse:
        return FileResponse(open(__file__, "rb"), content_type="text/plain")

    def stream(request: HttpRequest) -> StreamingHttpResponse:
        return StreamingHttpResponse(
            (f"line {i}\n" for i in range(1000)), content_type="text/plain"
        )

    def error(request: HttpRequest) -> HttpResponse:
        raise RuntimeError("the Django view failed")

    def set_cookies(request: HttpRequest) -> HttpResponse:
        response = HttpResponse("set")
        response.set_cookie("flavour", "oat")
        response.set_cookie("size", "big")
        return response

    def whoami(request: HttpRequest) -> JsonResponse:
        return JsonResponse(
            {
                "cookies": request.COOKIES,
                "url": request.build_absolute_uri(),
                "script_root": request.META["SCRIPT_NAME"],
            }
        )

    def go(request: HttpRequest) -> HttpResponseRedirect:
        return HttpResponseRedirect(request.META["SCRIPT_NAME"] + "/")

    urlpatterns[:] = [
        path("", index),
        path("items/<int:item_id>", item),
        path("form", form),
        path("upload", upload),
        path("file", file),
        path("stream", stream),
        path("error", error),
        path("cookies/set", set_cookies),
        path("whoami", whoami),
        path("go", go),
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


def main() -> None:
    import vestespy

    logging.basicConfig(level=logging.INFO, format="%(name)s %(message)s", stream=sys.stderr)
    vestespy.serve(FACTORIES[sys.argv[1]](), host="127.0.0.1", port=0, max_workers=4)


if __name__ == "__main__":
    main()
