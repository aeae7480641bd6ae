"""The minimum-rate rule of _rates.RateMeter (times are given, no clock)."""

from __future__ import annotations

from vestespy._rates import RateMeter


def test_nothing_is_too_slow_within_the_grace_period() -> None:
    meter = RateMeter()
    meter.start(100.0)
    assert not meter.too_slow(104.9, rate=240, grace=5)
    assert meter.too_slow(105.1, rate=240, grace=5)  # not a byte in 5.1 s


def test_the_average_over_the_running_time_counts() -> None:
    meter = RateMeter()
    meter.start(0.0)
    meter.add(1200)  # 240 B/s over the first 5 s
    assert not meter.too_slow(5.0, rate=240, grace=4)
    assert meter.too_slow(5.1, rate=240, grace=4)  # 1200 B in 5.1 s is under 240 B/s
    meter.add(100)
    assert not meter.too_slow(5.4, rate=240, grace=4)  # 1300 B in 5.4 s


def test_stopped_time_does_not_count() -> None:
    meter = RateMeter()
    meter.start(0.0)
    meter.add(240)
    meter.stop(1.0)  # the server stops reading for a minute
    assert not meter.running
    assert not meter.too_slow(61.0, rate=240, grace=0.5)
    meter.start(61.0)
    assert meter.too_slow(61.6, rate=240, grace=0.5)  # 240 B in 1.6 s of running time


def test_reset_starts_a_new_transfer() -> None:
    meter = RateMeter()
    meter.start(0.0)
    meter.add(10)
    meter.reset()
    assert (meter.bytes, meter.running) == (0, False)
    assert not meter.too_slow(100.0, rate=240, grace=5)
