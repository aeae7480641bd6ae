"""Loading the application a worker serves: each wrong kind of value is one clear error."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from vestespy._config import Config, StartupError
from vestespy._worker import load_listener
from vestespy.wsgi import WSGIAdapter

APP = """
VERSION = "1.0"

def listener(server, req, res):
    res.send_all("hi")

class Routes:
    def as_handler(self):
        return listener

routes = Routes()

def application(environ, start_response):
    start_response("200 OK", [])
    return [b""]
"""


@pytest.fixture
def app_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    (tmp_path / "worker_app.py").write_text(APP)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "worker_app"
    sys.modules.pop("worker_app", None)


def test_a_listener_and_a_dispatcher_like_object_load(app_module: str) -> None:
    listener = load_listener(Config(app=f"{app_module}:listener"))
    assert listener is sys.modules[app_module].listener
    assert load_listener(Config(app=f"{app_module}:routes")) is listener  # its as_handler()


def test_a_wsgi_application_gets_the_adapter(app_module: str) -> None:
    listener = load_listener(
        Config(app=f"{app_module}:application", interface="wsgi", root_path="/m")
    )
    assert isinstance(listener, WSGIAdapter)
    assert listener.script_name == "/m"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (Config(app="worker_app:VERSION"), "worker_app:VERSION is a str"),
        (Config(app="worker_app:VERSION", interface="wsgi"), "worker_app:VERSION is a str"),
    ],
)
def test_a_value_that_cannot_serve_is_a_start_up_error(
    app_module: str, config: Config, message: str
) -> None:
    with pytest.raises(StartupError, match=message):
        load_listener(config)
