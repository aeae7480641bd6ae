"""The sans-IO driver: bytes in, events out; responses in, bytes out. No sockets."""

from __future__ import annotations

import time

from vestespy._driver import (
    BodyReceived,
    Driver,
    DriverEvent,
    PeerClosed,
    RequestEnded,
    RequestRejected,
    RequestStarted,
    Wait,
    reason_phrase,
)


def events_of(driver: Driver, data: bytes) -> list[DriverEvent | Wait]:
    driver.receive(data)
    events: list[DriverEvent | Wait] = []
    while True:
        event = driver.next_event()
        events.append(event)
        if isinstance(event, Wait | RequestRejected | PeerClosed):
            return events


def test_simple_get() -> None:
    driver = Driver()
    events = events_of(driver, b"GET /a?b=1 HTTP/1.1\r\nHost: x\r\nX-Y: z\r\n\r\n")
    started = events[0]
    assert isinstance(started, RequestStarted)
    assert (started.method, started.target, started.http_version) == ("GET", "/a?b=1", "1.1")
    assert started.headers == [("host", "Host", "x"), ("x-y", "X-Y", "z")]
    assert not started.expects_continue
    assert events[1:] == [RequestEnded([]), Wait.NEED_DATA]


def test_body_and_response_bytes() -> None:
    driver = Driver()
    events = events_of(driver, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhel")
    assert events[1:] == [BodyReceived(b"hel"), Wait.NEED_DATA]
    assert events_of(driver, b"lo") == [BodyReceived(b"lo"), RequestEnded([]), Wait.NEED_DATA]
    head = driver.start_response(200, [(b"Content-Length", b"2")])
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"".join(driver.send_body(b"ok")) == b"ok"
    assert driver.end_response() == b""
    assert not driver.must_close


def test_pipelined_requests_pause_until_the_response_ends() -> None:
    driver = Driver()
    two = b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n"
    events = events_of(driver, two)
    assert [type(e) for e in events] == [RequestStarted, RequestEnded, Wait]
    assert events[-1] is Wait.PAUSED
    driver.start_response(200, [(b"Content-Length", b"0")])
    driver.end_response()
    events = events_of(driver, b"")
    assert isinstance(events[0], RequestStarted)
    assert events[0].target == "/2"


def test_response_before_body_then_next_cycle_after_body() -> None:
    driver = Driver()
    events_of(driver, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n")
    driver.start_response(200, [(b"Content-Length", b"0")])
    driver.end_response()
    events = events_of(driver, b"abcGET /next HTTP/1.1\r\nHost: x\r\n\r\n")
    assert events[0] == BodyReceived(b"abc")
    assert events[1] == RequestEnded([])
    assert isinstance(events[2], RequestStarted)
    assert events[2].target == "/next"


def test_chunked_body_with_trailers() -> None:
    driver = Driver()
    data = (
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n0\r\nX-Sum: 1\r\n\r\n"
    )
    events = events_of(driver, data)
    assert events[1] == BodyReceived(b"abc")
    assert events[2] == RequestEnded([("x-sum", "X-Sum", "1")])


def test_garbage_is_rejected_with_a_complete_400_and_close() -> None:
    driver = Driver()
    events = events_of(driver, b"\x00\x01garbage\r\n\r\n")
    rejected = events[-1]
    assert isinstance(rejected, RequestRejected)
    assert rejected.status == 400
    assert rejected.response.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert b"Connection: close\r\n" in rejected.response
    assert driver.must_close
    assert driver.next_event() is Wait.STOPPED  # nothing more is parsed


def test_oversized_head_is_431() -> None:
    driver = Driver(max_header_size=1024)
    events = events_of(driver, b"GET / HTTP/1.1\r\nX: " + b"a" * 2000)
    rejected = events[-1]
    assert isinstance(rejected, RequestRejected)
    assert rejected.status == 431


def test_eof_between_requests_is_a_clean_close() -> None:
    driver = Driver()
    events_of(driver, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    driver.start_response(204, [])
    driver.end_response()
    assert events_of(driver, b"") == [PeerClosed()]


def test_eof_mid_body_is_rejected_without_a_response() -> None:
    driver = Driver()
    events_of(driver, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
    events = events_of(driver, b"")
    rejected = events[-1]
    assert isinstance(rejected, RequestRejected)
    assert rejected.peer_closed
    assert rejected.response == b""


def test_expect_100_continue() -> None:
    driver = Driver()
    events = events_of(
        driver,
        b"PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n",
    )
    assert isinstance(events[0], RequestStarted)
    assert events[0].expects_continue
    assert driver.send_continue() == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert driver.send_continue() == b""  # only once


def test_no_continue_once_the_response_started() -> None:
    driver = Driver()
    events_of(
        driver,
        b"PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n",
    )
    driver.start_response(413, [(b"Content-Length", b"0")])
    assert driver.send_continue() == b""


def test_http10_response_closes_and_chunked_becomes_close_delimited() -> None:
    driver = Driver()
    events_of(driver, b"GET / HTTP/1.0\r\n\r\n")
    head = driver.start_response(200, [])
    assert b"Transfer-Encoding" not in head
    assert b"Connection: close" in head
    assert b"".join(driver.send_body(b"abc")) == b"abc"
    driver.end_response()
    assert driver.must_close


def test_chunked_response_framing_for_http11() -> None:
    driver = Driver()
    events_of(driver, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    head = driver.start_response(200, [])
    assert b"Transfer-Encoding: chunked" in head
    assert b"".join(driver.send_body(b"abc")) == b"3\r\nabc\r\n"
    assert driver.end_response() == b"0\r\n\r\n"


def test_head_response_carries_headers_only() -> None:
    driver = Driver()
    events_of(driver, b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n")
    head = driver.start_response(200, [(b"Content-Length", b"5")])
    assert b"Content-Length: 5" in head
    assert driver.end_response() == b""
    assert not driver.must_close


def test_empty_lines_between_pipelined_requests_are_skipped() -> None:
    # RFC 9112 2.2: the CRLF after a body (some clients send one) is not a bad request line.
    driver = Driver()
    data = b"POST /1 HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\na"
    data += b"\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n"
    events = events_of(driver, data)
    assert [type(e) for e in events] == [RequestStarted, BodyReceived, RequestEnded, Wait]
    driver.start_response(200, [(b"Content-Length", b"0")])
    driver.end_response()
    events = events_of(driver, b"")
    assert isinstance(events[0], RequestStarted)
    assert events[0].target == "/2"


def test_a_lone_cr_between_requests_waits_for_its_lf() -> None:
    driver = Driver()
    events = events_of(driver, b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\n\r")
    assert [type(e) for e in events] == [RequestStarted, RequestEnded, Wait]
    driver.start_response(200, [(b"Content-Length", b"0")])
    driver.end_response()
    assert driver.next_event() is Wait.NEED_DATA
    events = events_of(driver, b"\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert isinstance(events[0], RequestStarted)
    assert events[0].target == "/2"


def test_allow_obs_fold_reaches_trailers() -> None:
    body = b"0\r\nX-T: a\r\n b\r\n\r\n"
    head = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    strict = events_of(Driver(), head + body)
    assert isinstance(strict[-1], RequestRejected)
    assert strict[-1].status == 400
    relaxed = events_of(Driver(relaxed=frozenset({"allow_obs_fold"})), head + body)
    assert isinstance(relaxed[1], RequestEnded)
    assert relaxed[1].trailers == [("x-t", "X-T", "a b")]


def test_max_body_size_refuses_a_large_content_length_before_its_body() -> None:
    head = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
    assert isinstance(events_of(Driver(max_body_size=5), head % 5)[0], RequestStarted)
    events = events_of(Driver(max_body_size=5), head % 6)
    assert len(events) == 1
    rejected = events[0]
    assert isinstance(rejected, RequestRejected)
    assert rejected.status == 413
    assert rejected.response.startswith(b"HTTP/1.1 413 ")
    assert b"\r\nConnection: close\r\n" in rejected.response


def test_max_body_size_counts_a_chunked_body_as_it_arrives() -> None:
    driver = Driver(max_body_size=6)
    head = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    events = events_of(driver, head + b"3\r\nabc\r\n3\r\ndef\r\n")
    assert [type(e) for e in events] == [RequestStarted, BodyReceived, BodyReceived, Wait]
    events = events_of(driver, b"1\r\ng\r\n0\r\n\r\n")
    assert isinstance(events[0], RequestRejected)
    assert events[0].status == 413


def test_max_body_size_applies_to_each_request_of_a_connection() -> None:
    driver = Driver(max_body_size=4)
    head = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    for _ in range(2):
        events = events_of(driver, head + b"4\r\nabcd\r\n0\r\n\r\n")
        assert [type(e) for e in events] == [RequestStarted, BodyReceived, RequestEnded, Wait]
        driver.start_response(200, [(b"Content-Length", b"0")])
        driver.end_response()


def test_empty_lines_cost_linear_time() -> None:
    # Empty lines before a request line are skipped with one slice, not one per line: two
    # megabytes of CRLF take ~0.07 s of CPU here, where a slice per line took ~16 s.
    driver = Driver()
    lines = 1_000_000
    started = time.process_time()
    events = events_of(driver, b"\r\n" * lines + b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    spent = time.process_time() - started
    assert isinstance(events[0], RequestStarted)
    assert spent < 2.0, f"{lines} empty lines took {spent:.2f} s of CPU"


def test_reason_phrases_are_rfc_9110s_on_every_python() -> None:
    assert reason_phrase(200) == b"OK"
    assert reason_phrase(413) == b"Content Too Large"
    assert reason_phrase(414) == b"URI Too Long"
    assert reason_phrase(416) == b"Range Not Satisfiable"
    assert reason_phrase(422) == b"Unprocessable Content"
    assert reason_phrase(599) == b""
    driver = Driver()
    events_of(driver, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    assert driver.start_response(414, [(b"Content-Length", b"0")]).startswith(
        b"HTTP/1.1 414 URI Too Long\r\n"
    )


def test_an_early_response_says_close_when_the_body_is_past_max_drain() -> None:
    driver = Driver(max_drain=100)
    events_of(driver, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 101\r\n\r\n")
    head = driver.start_response(405, [(b"Content-Length", b"0")])
    assert b"Connection: close\r\n" in head  # RFC 9110 10.1.1: it will close after it
    driver.end_response()
    assert driver.must_close


def test_an_early_response_keeps_the_connection_when_the_rest_drains() -> None:
    driver = Driver(max_drain=100)
    events_of(driver, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 150\r\n\r\n" + b"a" * 50)
    # 50 bytes read, 100 left: they are read and discarded, and the connection stays.
    head = driver.start_response(200, [(b"Content-Length", b"0")])
    assert b"connection" not in head.lower()
    driver.end_response()
    assert not driver.must_close


def test_an_early_response_to_a_client_waiting_for_100_continue_says_close() -> None:
    driver = Driver()
    events_of(
        driver,
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
    )
    # The client may never send the body: reading on would parse its next request as body.
    head = driver.start_response(405, [(b"Content-Length", b"0")])
    assert b"Connection: close\r\n" in head


def test_an_early_response_to_a_chunked_body_drains_it() -> None:
    driver = Driver(max_drain=100)
    events_of(driver, b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
    head = driver.start_response(200, [(b"Content-Length", b"0")])
    assert b"connection" not in head.lower()  # its size is unknown: drained up to max_drain


def test_a_response_to_a_bodyless_request_is_not_early() -> None:
    driver = Driver(max_drain=0)
    driver.receive(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert isinstance(driver.next_event(), RequestStarted)  # "end" not parsed yet
    head = driver.start_response(200, [(b"Content-Length", b"0")])
    assert b"connection" not in head.lower()


def test_max_header_count_at_and_over() -> None:
    def head(count: int) -> bytes:
        fields = b"".join(b"X-%d: a\r\n" % i for i in range(count - 1))
        return b"GET / HTTP/1.1\r\nHost: x\r\n" + fields + b"\r\n"

    assert isinstance(events_of(Driver(max_header_count=5), head(4))[0], RequestStarted)
    assert isinstance(events_of(Driver(max_header_count=5), head(5))[0], RequestStarted)
    rejected = events_of(Driver(max_header_count=5), head(6))[-1]
    assert isinstance(rejected, RequestRejected)
    assert rejected.status == 431
    assert b"Connection: close" in rejected.response


def test_max_header_count_applies_to_trailers() -> None:
    def body(count: int) -> bytes:
        trailers = b"".join(b"X-%d: a\r\n" % i for i in range(count))
        return (
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n"
            + trailers
            + b"\r\n"
        )

    assert isinstance(events_of(Driver(max_header_count=3), body(3))[1], RequestEnded)
    rejected = events_of(Driver(max_header_count=3), body(4))[-1]
    assert isinstance(rejected, RequestRejected)
    assert rejected.status == 431


def test_reject_timeout_is_a_408_that_closes() -> None:
    driver = Driver()
    driver.receive(b"GET / HT")
    assert driver.next_event() is Wait.NEED_DATA
    rejected = driver.reject_timeout("request head not received in time")
    assert rejected.status == 408
    assert rejected.response.startswith(b"HTTP/1.1 408 ")
    assert b"Connection: close" in rejected.response
    assert driver.must_close
