"""Sphinx directives for the VestesPy site: tables written from the code, so they cannot drift.

``.. vestespy-options::`` renders one row per field of :class:`vestespy.ServerOptions`: its name
(linked to its entry in the reference), type and default are read from the dataclass, and its
effect from the field's ``#:`` doc comment in ``src/vestespy/options.py``. The directive's
content gives, one line per option, what a client gets when the limit or timeout applies::

    .. vestespy-options::

       max_header_size: 431 Request Header Fields Too Large, then the connection closes.

Every option must have such a line and every line must name an option: a new option fails the
build (the site builds with warnings as errors) until its row says what clients see.

``.. vestespy-command-help::`` shows the command line's ``--help`` as the code prints it.

``.. vestespy-websocket-cases::`` renders the WebSocket conformance cases
(``tests/conformance/websocket_cases.py``): one summary row per section, then one row per case
(the long runs of UTF-8 sequences one row per group), with the RFC section each checks, what
the server must do, the Autobahn|Testsuite case it follows and whether it is a known gap.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.pycode import ModuleAnalyzer
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

logger = logging.getLogger(__name__)


def _size(value: int) -> str:
    for unit, scale in (("MiB", 1024 * 1024), ("KiB", 1024)):
        if value >= scale and value % scale == 0:
            return f"{value // scale} {unit}"
    return f"{value:,} bytes"


def _default(value: Any, doc: str) -> str:
    """Format a default for the table: sizes in KiB/MiB, seconds with a unit."""
    if value is None:
        return "``None``"
    if isinstance(value, bool):
        return f"``{value}``"
    if isinstance(value, int) and "byte" in doc.lower():
        return f"{_size(value)} (``{value}``)"
    if isinstance(value, float) and "seconds" in doc.lower():
        return f"``{value:g}`` seconds"
    return f"``{value!r}``"


class OptionsTable(SphinxDirective):
    """The table of every server option, from ``vestespy.ServerOptions``."""

    has_content = True

    def run(self) -> list[nodes.Node]:
        from vestespy import ServerOptions

        module = ServerOptions.__module__
        docs = ModuleAnalyzer.for_module(module).find_attr_docs()
        client_sees: dict[str, str] = {}
        for line in self.content:
            if not line.strip():
                continue
            name, sep, text = line.partition(":")
            if not sep:
                raise self.error(f"vestespy-options: expected 'option: what clients see': {line!r}")
            client_sees[name.strip()] = text.strip()

        fields = dataclasses.fields(ServerOptions)
        names = {field.name for field in fields}
        for name in sorted(set(client_sees) - names):
            logger.warning(
                "vestespy-options: %r is not a field of ServerOptions",
                name,
                location=self.get_location(),
            )
        rows: list[list[str]] = []
        for field in fields:
            doc = " ".join(line.strip() for line in docs.get(("ServerOptions", field.name), []))
            if not doc:
                logger.warning(
                    "vestespy-options: ServerOptions.%s has no #: doc comment in %s",
                    field.name,
                    module,
                    location=self.get_location(),
                )
            if field.name not in client_sees:
                logger.warning(
                    "vestespy-options: say what clients see for %r in the directive's content",
                    field.name,
                    location=self.get_location(),
                )
            type_name = (
                field.type
                if isinstance(field.type, str)
                else getattr(field.type, "__name__", str(field.type))
            )
            rows.append(
                [
                    f":attr:`~vestespy.ServerOptions.{field.name}`\n\n``{type_name}``",
                    _default(field.default, doc),
                    doc or "-",
                    client_sees.get(field.name, "-"),
                ]
            )
        return [self._table(["Option and type", "Default", "Effect", "What a client gets"], rows)]

    def _table(self, header: list[str], rows: list[list[str]]) -> nodes.table:
        table = nodes.table(classes=["vestespy-options"])
        group = nodes.tgroup(cols=len(header))
        table += group
        for width in (18, 14, 40, 28):
            group += nodes.colspec(colwidth=width)
        thead = nodes.thead()
        group += thead
        thead += self._row(header)
        tbody = nodes.tbody()
        group += tbody
        for row in rows:
            tbody += self._row(row)
        return table

    def _row(self, cells: list[str]) -> nodes.row:
        row = nodes.row()
        for text in cells:
            entry = nodes.entry()
            container = nodes.container()
            self.state.nested_parse(
                StringList(text.split("\n"), source=""), self.content_offset, container
            )
            entry.extend(container.children)
            row += entry
        return row


class CommandHelp(SphinxDirective):
    """The ``--help`` text of ``python -m vestespy``, captured from the code itself."""

    def run(self) -> list[nodes.Node]:
        import contextlib
        import io
        import os
        from unittest import mock

        from vestespy.cli import main

        out = io.StringIO()
        # A fixed width, so the text does not depend on the terminal that builds the site.
        with mock.patch.dict(os.environ, {"COLUMNS": "80"}), contextlib.redirect_stdout(out):
            try:
                main(["--help"])
            except SystemExit:
                pass
        text = out.getvalue().rstrip()
        if not text:
            raise self.error("vestespy-command-help: python -m vestespy --help printed nothing")
        block = nodes.literal_block(text, text)
        block["language"] = "text"
        return [block]


class WebSocketCases(SphinxDirective):
    """The WebSocket conformance cases, from the test suite's data."""

    def run(self) -> list[nodes.Node]:
        import pathlib
        import sys

        tests = pathlib.Path(__file__).resolve().parents[2] / "tests"
        for path in (tests, tests / "conformance"):
            if str(path) not in sys.path:
                sys.path.insert(0, str(path))
        from websocket_cases import CASES, GAPS, SECTIONS

        gaps = {key.strip() for key in GAPS}
        summary: list[list[str]] = []
        for number, name in SECTIONS.items():
            cases = [c for c in CASES if c.section == number]
            rfcs = _rfc_sections(c.rfc for c in cases)
            followed = sum(1 for c in cases if c.autobahn)
            summary.append([f"{number}", name, str(len(cases)), str(followed), rfcs])
        rows: list[list[str]] = []
        index = 0
        while index < len(CASES):
            case = CASES[index]
            group_name, sep, _ = case.title.partition(": ")
            run = [case]
            if case.section == 6 and sep and case.id.count(".") == 2:
                subsection = case.id.rsplit(".", 1)[0]
                while index + len(run) < len(CASES):
                    nxt = CASES[index + len(run)]
                    if nxt.id.rsplit(".", 1)[0] != subsection or not nxt.title.startswith(
                        group_name + ": "
                    ):
                        break
                    run.append(nxt)
            index += len(run)
            if len(run) > 3:
                outcomes = sorted({c.outcome.describe() for c in run})
                rows.append(
                    [
                        f"{run[0].id} - {run[-1].id}",
                        f"{group_name} ({len(run)} sequences, each in one frame)",
                        case.rfc,
                        "; ".join(outcomes) + " (by sequence)"
                        if len(outcomes) > 1
                        else outcomes[0],
                        "yes" if all(c.autobahn for c in run) else "",
                        "gap" if any(c.id in gaps for c in run) else "",
                    ]
                )
                continue
            for one in run:
                title = one.title + (f" [{one.offer}]" if one.offer and one.section == 13 else "")
                rows.append(
                    [
                        one.id,
                        title,
                        one.rfc,
                        one.outcome.describe(),
                        one.autobahn,
                        "gap" if one.id in gaps else "",
                    ]
                )
        return [
            _table(
                ["Section", "Topic", "Cases", "Following Autobahn", "RFC"],
                summary,
                (6, 22, 6, 8, 40),
            ),
            _table(
                ["Case", "The client sends", "RFC", "The server must", "Autobahn", "Status"],
                rows,
                (8, 40, 18, 20, 8, 6),
            ),
        ]


def _rfc_sections(citations: Iterable[str]) -> str:
    """``RFC 6455 5.2, 5.6; RFC 7692 6`` style citations merged: each RFC once, its sections
    in order."""
    sections: dict[str, set[str]] = {}
    for citation in citations:
        for part in citation.split(" (")[0].split(";"):
            words = part.split()
            if len(words) >= 2 and words[0] == "RFC":
                found = sections.setdefault(words[1], set())
                found.update(w.strip(",") for w in words[2:])

    def order(section: str) -> tuple[int, ...]:
        return tuple(int(n) for n in section.split(".") if n.isdigit())

    return "; ".join(
        f"RFC {rfc} {', '.join(sorted(found, key=order))}".rstrip()
        for rfc, found in sorted(sections.items())
    )


def _table(header: list[str], rows: list[list[str]], widths: tuple[int, ...]) -> nodes.table:
    """A table of plain-text cells."""
    table = nodes.table(classes=["vestespy-websocket-cases"])
    group = nodes.tgroup(cols=len(header))
    table += group
    for width in widths:
        group += nodes.colspec(colwidth=width)
    thead = nodes.thead()
    group += thead
    tbody = nodes.tbody()
    group += tbody
    for target, cells in [(thead, header), *((tbody, r) for r in rows)]:
        row = nodes.row()
        for text in cells:
            entry = nodes.entry()
            if text:
                entry += nodes.paragraph(text=text)  # plain text: titles hold `*`, `_` and hex
            row += entry
        target += row
    return table


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("vestespy-options", OptionsTable)
    app.add_directive("vestespy-command-help", CommandHelp)
    app.add_directive("vestespy-websocket-cases", WebSocketCases)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
