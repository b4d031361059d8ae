"""Bounded-memory detection of repeated lines.

Each example is reduced to a 64-bit digest (Python's SipHash of the line's
bytes, keyed per process: fine for finding repeats within one run) and stored
with its line number in an open-addressing table of two flat arrays: 8 + 4 = 12
bytes per slot, no Python object per entry.

Bound: the table grows by doubling up to ``max_slots`` (default 2**21) and is
kept at most 3/4 full, so it tracks up to 1,572,864 distinct examples in at
most 24 MiB (36 MiB for a moment while it grows to its last size). Past that,
lines are still checked against the examples already tracked but no longer
added, and ``complete`` turns False (the report says so). The chance that two
different examples share a digest is about n^2 / 2^65, i.e. below 10^-7 for
a million examples.
"""
from __future__ import annotations

from array import array

__all__ = ["DigestTable"]


class DigestTable:
    __slots__ = ("keys", "lines", "mask", "room", "_max_slots", "complete")

    def __init__(self, initial_slots: int = 1 << 16, max_slots: int = 1 << 21):
        if initial_slots & (initial_slots - 1) or max_slots & (max_slots - 1):
            raise ValueError("slot counts must be powers of two")
        self._max_slots = max_slots
        self.complete = True
        self._alloc(min(initial_slots, max_slots), 0)

    def _alloc(self, slots: int, used: int) -> None:
        # keys: digests (0 = empty slot); lines: where each was first seen. ``room`` counts the
        # insertions left before the table is 3/4 full (the validator's inlined probe reads these).
        self.keys = array("q", [0]) * slots
        self.lines = array("I", [0]) * slots
        self.mask = slots - 1
        self.room = slots * 3 // 4 - used

    @property
    def slots(self) -> int:
        return self.mask + 1

    @property
    def nbytes(self) -> int:
        return self.slots * (self.keys.itemsize + self.lines.itemsize)

    def __len__(self) -> int:
        return self.slots * 3 // 4 - self.room

    def add(self, digest: int, line: int) -> int:
        """Record ``digest`` seen on ``line``; return the line it was first seen on, or 0."""
        if digest == 0:
            digest = 1
        keys = self.keys
        mask = self.mask
        i = digest & mask
        while True:
            k = keys[i]
            if k == 0:
                break
            if k == digest:
                return self.lines[i]
            i = (i + 1) & mask
        if self.room <= 0:
            if self.slots >= self._max_slots:
                self.complete = False
                return 0
            self._grow()
            return self.add(digest, line)
        keys[i] = digest
        self.lines[i] = line
        self.room -= 1
        return 0

    def reserve(self, examples: int) -> None:
        """Sizes the table for about ``examples`` distinct examples at once (within the bound),
        sparing the rehashes of growing step by step."""
        slots = self.slots
        while slots * 3 // 4 < examples and slots < self._max_slots:
            slots *= 2
        if slots > self.slots:
            self._grow(slots)

    def _grow(self, slots: int | None = None) -> None:
        old_keys, old_lines = self.keys, self.lines
        self._alloc(slots or self.slots * 2, len(self))
        keys, lines, mask = self.keys, self.lines, self.mask
        for j in range(len(old_keys)):
            k = old_keys[j]
            if k:
                i = k & mask
                while keys[i]:
                    i = (i + 1) & mask
                keys[i] = k
                lines[i] = old_lines[j]
