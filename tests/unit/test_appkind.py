"""--interface auto: which applications are served natively and which through WSGI."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

import pytest

import vestespy
from vestespy._appkind import classify
from vestespy._config import StartupError, UsageError
from vestespy.tools import Dispatcher


def listener(server: Any, req: Any, res: Any) -> None:
    pass


def listener_with_default(server: Any, req: Any, res: Any, extra: int = 0) -> None:
    pass


def wsgi_function(environ: Any, start_response: Any) -> Iterable[bytes]:
    return []


class WSGIClass:
    def __call__(self, environ: Any, start_response: Any) -> Iterable[bytes]:
        return []


class ListenerClass:
    def method(self, server: Any, req: Any, res: Any) -> None:
        pass


def anything(*args: Any) -> None:
    pass


async def asgi(scope: Any, receive: Any, send: Any) -> None:
    pass


class ASGIClass:
    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        pass


@pytest.mark.parametrize(
    ("app", "kind"),
    [
        (Dispatcher(), "vestespy"),
        (listener, "vestespy"),
        (listener_with_default, "vestespy"),
        (ListenerClass().method, "vestespy"),
        (functools.partial(listener_with_default, extra=1), "vestespy"),
        (wsgi_function, "wsgi"),
        (WSGIClass(), "wsgi"),
        (lambda environ, start_response: [], "wsgi"),
    ],
)
def test_auto_detects(app: object, kind: str) -> None:
    assert classify(app, "auto", "m:app") == kind


def test_flask_is_wsgi() -> None:
    flask = pytest.importorskip("flask")
    assert classify(flask.Flask("x"), "auto", "m:app") == "wsgi"


def test_django_handler_is_wsgi() -> None:
    pytest.importorskip("django")
    from django.core.handlers.wsgi import WSGIHandler

    assert classify(WSGIHandler.__new__(WSGIHandler), "auto", "m:app") == "wsgi"


def test_auto_cannot_tell_asks_for_interface() -> None:
    with pytest.raises(UsageError, match="cannot tell what kind of application m:app is") as info:
        classify(anything, "auto", "m:app")
    assert "--interface vestespy" in str(info.value)
    assert "--interface wsgi" in str(info.value)
    assert info.value.status == 2


def test_explicit_interface_is_taken() -> None:
    assert classify(anything, "wsgi", "m:app") == "wsgi"
    assert classify(anything, "vestespy", "m:app") == "vestespy"
    assert classify(wsgi_function, "vestespy", "m:app") == "vestespy"


def test_dispatcher_under_wsgi_is_refused() -> None:
    with pytest.raises(UsageError, match="--interface wsgi: m:routes is a vestespy Dispatcher"):
        classify(Dispatcher(), "wsgi", "m:routes")


def test_listener_function_under_wsgi_is_refused() -> None:
    with pytest.raises(UsageError, match="takes 3 arguments"):
        classify(listener, "wsgi", "m:app")


@pytest.mark.parametrize("app", [asgi, ASGIClass()])
def test_asgi_is_refused(app: object) -> None:
    with pytest.raises(StartupError, match="coroutine function"):
        classify(app, "auto", "m:app")


def test_not_callable() -> None:
    with pytest.raises(StartupError, match="m:VERSION is a str, not a 'request' listener"):
        classify("1.0", "auto", "m:VERSION")


def test_demo_is_native() -> None:
    from vestespy.demo import build_demo

    assert classify(build_demo(), "auto", "demo") == "vestespy"
    assert isinstance(vestespy.tools.Dispatcher(), Dispatcher)
