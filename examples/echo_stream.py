"""Reading a request body as it arrives, and streaming responses."""

import vestespy
from vestespy.tools import Dispatcher


def echo(ev, req, res):
    # Collect the body piece by piece; answer once it is complete.
    parts = []
    req.on("data", lambda ev, req, res, chunk: parts.append(chunk))
    req.on("end", lambda ev, req, res: res.send_all(b"".join(parts)))


def numbers(ev, req, res):
    # A body of known length, produced lazily: Content-Length framing.
    lines = [f"{n}\n".encode() for n in range(1000)]
    res.send_stream(iter(lines), sum(map(len, lines)))


def countdown(ev, req, res):
    # A body of unknown length: chunked for HTTP/1.1 clients.
    res.set_header("Content-Type", "text/plain")
    res.send_chunked(f"{n}...\n" for n in range(10, 0, -1))


dispatcher = Dispatcher()
dispatcher.register("/echo", echo, methods=["POST"])
dispatcher.register("/numbers", numbers)
dispatcher.register("/countdown", countdown)

if __name__ == "__main__":
    server = vestespy.Server(("127.0.0.1", 8080))
    server.on("request", dispatcher.as_handler())
    host, port = server.address
    print(f"serving on http://{host}:{port}/")
    server.serve_forever()
