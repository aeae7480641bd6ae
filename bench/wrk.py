"""Driving wrk (the Debian package) and reading its report."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

# wrk sends whatever request() returns in one write: 16 requests per write is pipelining.
PIPELINE_LUA = """
init = function(args)
  local r = {}
  for i = 1, %(depth)d do r[i] = wrk.format(nil, "/") end
  req = table.concat(r)
end
request = function() return req end
"""

POST_LUA = """
wrk.method = "POST"
wrk.body = string.rep("x", %(size)d)
wrk.headers["Content-Type"] = "application/octet-stream"
"""


def wrk_path() -> str | None:
    return shutil.which("wrk")


def wrk_version() -> str:
    path = wrk_path()
    if path is None:
        return "none"
    # wrk -v prints its version and exits non-zero.
    out = subprocess.run([path, "-v"], capture_output=True, text=True, check=False)
    first = (out.stdout or out.stderr).strip().splitlines()
    return first[0].split(" [")[0] if first else "wrk"


def write_scripts(folder: Path, depth: int, body_size: int) -> dict[str, Path]:
    scripts = {
        "pipeline": folder / "pipeline.lua",
        "post": folder / "post.lua",
    }
    scripts["pipeline"].write_text(PIPELINE_LUA % {"depth": depth})
    scripts["post"].write_text(POST_LUA % {"size": body_size})
    return scripts


def wrk_command(
    port: int, connections: int, seconds: int, script: Path | None, path: str = "/"
) -> list[str]:
    command = [wrk_path() or "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s"]
    if script is not None:
        command += ["-s", str(script)]
    return [*command, f"http://127.0.0.1:{port}{path}"]


def parse_report(text: str) -> dict[str, float]:
    """Requests/s, completed requests and errors (socket errors and non-2xx/3xx responses)."""
    rate = re.search(r"Requests/sec:\s+([\d.]+)", text)
    total = re.search(r"(\d+) requests in", text)
    if rate is None or total is None:
        raise RuntimeError(f"cannot read wrk's report:\n{text}")
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", text))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if bad is not None:
        errors += int(bad.group(1))
    return {"value": float(rate.group(1)), "requests": float(total.group(1)), "errors": errors}
