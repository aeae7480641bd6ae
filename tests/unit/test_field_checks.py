"""Response header fields are checked with exactly h11's rules, since h11 is told to skip them.

The driver hands the head to h11 as already checked (``_parsed=True``): a field VestesPy lets
through that h11 would refuse would go out on the wire. These tests pin VestesPy's checks to
h11's own grammar (``h11._abnf``), byte by byte and on random fields.
"""

from __future__ import annotations

import re

import h11._abnf as abnf
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vestespy import _strict
from vestespy.response import _checked_field

FIELD_VALUE = re.compile(abnf.field_value.encode("ascii"))
TOKEN = re.compile(abnf.token.encode("ascii"))


def accepted(name: bytes, value: bytes) -> bool:
    try:
        _checked_field(name.decode("latin-1"), value.decode("latin-1"))
    except ValueError:
        return False
    return True


def h11_accepts(name: bytes, value: bytes) -> bool:
    return TOKEN.fullmatch(name) is not None and FIELD_VALUE.fullmatch(value) is not None


@pytest.mark.parametrize("byte", range(256))
def test_each_byte_in_each_position_as_h11_decides(byte: int) -> None:
    one = bytes([byte])
    for value in (one, b"a" + one, one + b"a", b"a" + one + b"a"):
        assert accepted(b"X", value) == h11_accepts(b"X", value), value
    for name in (one, b"X" + one):
        assert accepted(name, b"v") == h11_accepts(name, b"v"), name


@given(st.binary(max_size=12), st.binary(max_size=24))
def test_random_fields_as_h11_decides(name: bytes, value: bytes) -> None:
    assert accepted(name, value) == h11_accepts(name, value)


def test_a_refused_field_says_why() -> None:
    with pytest.raises(ValueError, match="must be an RFC 9110 token"):
        _checked_field("Bad Name", "v")
    with pytest.raises(ValueError, match="must be an RFC 9110 token"):
        _checked_field("", "v")
    with pytest.raises(ValueError, match="nor whitespace at either end"):
        _checked_field("X", "v ")
    with pytest.raises(ValueError, match="outside Latin-1"):
        _checked_field("X", "\u20ac")


@pytest.mark.parametrize("byte", range(256))
def test_head_control_check_matches_its_pattern(byte: int) -> None:
    head = b"GET / HTTP/1.1\r\nX: a" + bytes([byte]) + b"b\r\n\r\n"
    found = _strict.check_head(head, frozenset()) is _strict.CONTROL
    assert found == (_strict._CONTROL_RE.search(head) is not None)
