"""Render the site's diagrams: each ``*.dot`` here becomes the ``*.svg`` beside it.

The SVGs are committed, so building the docs needs no Graphviz; run this after editing a
``.dot`` file (Graphviz's ``dot`` is the Debian package ``graphviz``)::

    python docs/diagrams/build.py
"""

from __future__ import annotations

import pathlib
import re
import shutil
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent


def main() -> int:
    dot = shutil.which("dot")
    if dot is None:
        print("dot not found: install Graphviz (apt-get install graphviz)", file=sys.stderr)
        return 1
    for source in sorted(HERE.glob("*.dot")):
        target = source.with_suffix(".svg")
        # No comments in the output: the SVG then depends only on the source and dot's version.
        svg = subprocess.run(
            [dot, "-Tsvg", str(source)], check=True, capture_output=True, text=True
        ).stdout
        svg = re.sub(r"<!--.*?-->\n?", "", svg, flags=re.DOTALL)
        target.write_text(svg)
        print(f"{source.name} -> {target.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
