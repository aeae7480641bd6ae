"""Server options a type checker must refuse (see test_typing.py for expected errors)."""

from __future__ import annotations

import vestespy

wrong_type = vestespy.Server(("127.0.0.1", 0), keep_alive_timeout="5")
unknown = vestespy.Server(("127.0.0.1", 0), no_such_option=1)
