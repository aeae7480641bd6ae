"""Routing with vestespy.tools.Dispatcher: path patterns and a regular expression."""

import re

import vestespy
from vestespy.tools import Dispatcher


def index(ev, req, res):
    res.send_all("test")


def test(ev, req, res, id=None):
    res.send_all(f"ID: {id}")


def archive(ev, req, res, year=None, month=None):
    res.send_all(f"ARCHIVE: {year}-{month}")


dispatcher = Dispatcher()
dispatcher.register("/", index)
dispatcher.register("/test/:id", test)
dispatcher.register(re.compile(r"^/archive/(?P<year>\d{4})/(?P<month>\d{2})$"), archive)

server = vestespy.Server(("localhost", 8080))
server.on("request", dispatcher.as_handler())
server.serve_forever()
