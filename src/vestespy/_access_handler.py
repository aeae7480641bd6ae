"""The logging handler the command puts on ``vestespy.access``.

Its own module, not in ``_access_buffer`` (compiled by mypyc): mypyc cannot compile a class
whose base is chosen at run time (``logging.StreamHandler`` is generic only for the type
checker), and this class costs nothing per request.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, TextIO

__all__ = ["CommandAccessHandler"]

if TYPE_CHECKING:
    _StreamHandler = logging.StreamHandler[TextIO]
else:  # not subscriptable at run time before Python 3.11
    _StreamHandler = logging.StreamHandler


class CommandAccessHandler(_StreamHandler):
    """The handler the command puts on ``vestespy.access``: its mark that nothing was changed."""
