"""Reading ahead: a stream of chunks produced by a thread while the caller works on the last one.

Intake validates a blob as it downloads it. One after the other, a 512 MB blob waited for
each range before validating it, so the wall time was download + validation. Here a
thread fetches (and hashes) the next range while the validator parses the current one: both
release the GIL for most of their work (socket reads, SHA-256 of large buffers), so the wall
time comes close to the longer of the two. At most ``depth`` chunks are fetched ahead of the
one the caller holds: memory stays bounded by the chunk size.
"""
from __future__ import annotations

import queue
import threading
from typing import Iterable, Iterator, TypeVar

__all__ = ["read_ahead"]

T = TypeVar("T")
_END = object()
_POLL_SECONDS = 0.1  # how often a blocked producer looks whether the reader has gone


def read_ahead(chunks: Iterable[T], depth: int = 1) -> Iterator[T]:
    """What ``chunks`` yields, in order, produced by a thread at most ``depth`` chunks ahead of
    the reader: the thread starts fetching the next chunk only when fewer than ``depth`` wait
    (the reader's current chunk, plus ``depth`` fetched or being fetched, are all in memory).

    An exception raised by ``chunks`` is raised here, at the point the stream reached it.
    Closing this iterator (or dropping it) stops the thread: it takes no further chunk."""
    if depth < 1:
        raise ValueError(f"depth must be at least 1, not {depth}")
    handoff: queue.SimpleQueue = queue.SimpleQueue()
    room = threading.Semaphore(depth)
    stop = threading.Event()

    def produce() -> None:
        source = iter(chunks)
        try:
            while True:
                while not room.acquire(timeout=_POLL_SECONDS):
                    if stop.is_set():
                        return
                if stop.is_set():
                    return
                try:
                    chunk = next(source)
                except StopIteration:
                    handoff.put((_END, None))
                    return
                handoff.put((chunk, None))
        except BaseException as exc:  # handed to the reader, raised there
            handoff.put((_END, exc))

    worker = threading.Thread(target=produce, name="read-ahead", daemon=True)
    worker.start()

    def consume() -> Iterator[T]:
        try:
            while True:
                item, error = handoff.get()
                room.release()
                if item is _END:
                    if error is not None:
                        raise error
                    return
                yield item
        finally:
            stop.set()

    return consume()
