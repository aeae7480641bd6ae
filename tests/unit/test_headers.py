"""Headers: ordered, case-insensitive multi-map."""

from __future__ import annotations

from vestespy import Headers


def test_iteration_keeps_order_and_spelling() -> None:
    pairs = [("Host", "a"), ("X-Thing", "1"), ("x-thing", "2"), ("ACCEPT", "*/*")]
    assert list(Headers(pairs)) == pairs
    assert Headers(pairs).items() == pairs


def test_lookups_ignore_case() -> None:
    h = Headers([("Host", "a"), ("X-Thing", "1"), ("x-thing", "2")])
    assert h.get("host") == "a"
    assert h.get("X-THING") == "1"
    assert h.get_all("x-Thing") == ["1", "2"]
    assert h.get("missing") is None
    assert h.get("missing", "d") == "d"
    assert h.get_all("missing") == []
    assert "HOST" in h
    assert "nope" not in h
    assert 3 not in h  # type: ignore[comparison-overlap]
    assert len(h) == 3


def test_set_replaces_all_in_the_first_place() -> None:
    h = Headers([("A", "1"), ("B", "2"), ("a", "3")])
    h.set("a", "x")
    assert list(h) == [("a", "x"), ("B", "2")]
    h.set("C", "y")
    assert list(h)[-1] == ("C", "y")


def test_add_and_remove() -> None:
    h = Headers()
    h.add("Set-Cookie", "a=1")
    h.add("set-cookie", "b=2")
    assert h.get_all("SET-COOKIE") == ["a=1", "b=2"]
    h.remove("Set-cookie")
    assert len(h) == 0
    h.remove("absent")


def test_equality_ignores_name_case_but_not_order() -> None:
    assert Headers([("A", "1"), ("B", "2")]) == Headers([("a", "1"), ("b", "2")])
    assert Headers([("A", "1"), ("B", "2")]) != Headers([("B", "2"), ("A", "1")])
    assert Headers([("A", "1")]) != [("A", "1")]
    assert repr(Headers([("A", "1")])) == "Headers([('A', '1')])"
