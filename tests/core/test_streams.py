"""read_ahead: the same chunks in the same order, errors where the stream reached them,
at most ``depth`` chunks fetched ahead of the reader, and no fetching after it stops."""
import threading
import time

import pytest

from shared.core.streams import read_ahead


def test_yields_every_chunk_in_order():
    assert list(read_ahead(iter([b"a", b"b", b"c"]))) == [b"a", b"b", b"c"]
    assert list(read_ahead(iter([]))) == []


def test_an_error_of_the_source_is_raised_after_the_chunks_before_it():
    def source():
        yield 1
        yield 2
        raise LookupError("the blob was deleted")

    got = []
    with pytest.raises(LookupError, match="deleted"):
        for chunk in read_ahead(source()):
            got.append(chunk)
    assert got == [1, 2]


def counted(n: int, fetched: list):
    """0 .. n-1, each noted in ``fetched`` as the thread takes it."""
    for i in range(n):
        fetched.append(i)
        yield i


def test_fetches_at_most_depth_ahead_of_the_reader():
    fetched = []
    stream = read_ahead(counted(10, fetched), depth=1)
    assert next(stream) == 0
    deadline = time.monotonic() + 10
    while len(fetched) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)  # room for a wrong third fetch to show
    # the reader holds 0; 1 was fetched ahead, and the thread waits for the reader to take it
    assert fetched == [0, 1]
    assert list(stream) == list(range(1, 10))


def test_closing_stops_the_thread_taking_more():
    fetched = []
    stream = read_ahead(counted(1000, fetched), depth=1)
    next(stream)
    stream.close()
    deadline = time.monotonic() + 10
    while any(t.name == "read-ahead" and t.is_alive() for t in threading.enumerate()):
        assert time.monotonic() < deadline, "the thread kept going after the reader closed the stream"
        time.sleep(0.05)
    assert len(fetched) <= 2


def test_the_next_chunk_is_fetched_while_the_reader_works_on_this_one():
    fetching_second = threading.Event()

    def source():
        yield 0
        fetching_second.set()
        yield 1

    stream = read_ahead(source())
    assert next(stream) == 0
    # without reading ahead, nothing would fetch chunk 1 until the reader asked for it
    assert fetching_second.wait(timeout=10)
    assert list(stream) == [1]


def test_depth_must_be_positive():
    with pytest.raises(ValueError, match="depth"):
        read_ahead(iter([1]), depth=0)
