"""A chat: a page at /ROOM, and a WebSocket at /chat/ROOM; a message goes to everyone in the room.

Run it and open http://localhost:8080/lobby in two browser tabs. Each WebSocket joins its room
when it opens and leaves it at its "close"; a message from one is sent to every member of the
room, its sender included (each line prefixed with the sender's number).

Listeners run on the server's pool, so two rooms' messages are handled in parallel: the rooms
are shared state, guarded by a lock. ``ws.send`` is safe from any thread; off the loop it
waits while that member's output is over the high-water mark, so a slow reader slows the
rooms it is in rather than growing the server's memory.
"""

import itertools
import threading

import vestespy
from vestespy.tools import Dispatcher

PAGE = """<!doctype html>
<html>
<head><meta charset="utf-8"><title>VestesPy chat</title></head>
<body>
<h1>Room <span id="room"></span></h1>
<ul id="lines"></ul>
<form id="say"><input id="text" autocomplete="off" autofocus><button>Send</button></form>
<script>
  const room = decodeURIComponent(location.pathname.slice(1)) || "lobby";
  document.getElementById("room").textContent = room;
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  const ws = new WebSocket(scheme + location.host + "/chat/" + encodeURIComponent(room));
  ws.onmessage = (event) => {
    const line = document.createElement("li");
    line.textContent = event.data;
    document.getElementById("lines").append(line);
  };
  document.getElementById("say").onsubmit = (event) => {
    event.preventDefault();
    const text = document.getElementById("text");
    if (text.value) ws.send(text.value);
    text.value = "";
  };
</script>
</body>
</html>
"""

rooms = {}  # room name -> set of WebSockets
rooms_lock = threading.Lock()
numbers = itertools.count(1)


def page(server, req, res, room=None):
    res.set_header("Content-Type", "text/html; charset=utf-8")
    res.send_all(PAGE)


def broadcast(room, line):
    with rooms_lock:
        members = list(rooms.get(room, ()))
    for member in members:
        try:
            member.send(line)
        except vestespy.ClientDisconnected:
            pass  # closing: its "close" listener removes it


def join(server, ws, req, room=None):
    number = next(numbers)
    ws.accept()  # now, rather than when this listener returns: the greeting goes to it too
    with rooms_lock:
        rooms.setdefault(room, set()).add(ws)

    def on_message(ws, text):
        if isinstance(text, str):  # a chat of text lines; binary messages are ignored
            broadcast(room, f"{number}: {text}")

    def on_close(ws, code, reason):
        with rooms_lock:
            members = rooms.get(room, set())
            members.discard(ws)
            if not members:
                rooms.pop(room, None)
        broadcast(room, f"{number} left")

    ws.on("message", on_message)
    ws.on("close", on_close)
    broadcast(room, f"{number} joined")


dispatcher = Dispatcher()
dispatcher.register("/:room", page)
dispatcher.register("/", page)
dispatcher.register_websocket("/chat/:room", join)

server = vestespy.Server(("localhost", 8080))
server.on("request", dispatcher.as_handler())
server.on("websocket", dispatcher.as_websocket_handler())
server.serve_forever()
