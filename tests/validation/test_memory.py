"""Memory stays bounded by construction: the duplicate table has a fixed ceiling. (Peak RSS on
large files is measured by the benchmark, `make bench`, not asserted here.)"""
from __future__ import annotations


from shared.validation.dedupe import DigestTable


def test_digest_table_finds_repeats_with_their_first_line():
    t = DigestTable(initial_slots=8)
    for i in range(1, 1001):
        assert t.add(hash(f"example {i}"), i) == 0
    assert t.add(hash("example 17"), 2000) == 17
    assert len(t) == 1000 and t.complete


def test_digest_table_memory_has_a_ceiling():
    t = DigestTable(initial_slots=8, max_slots=1 << 10)
    for i in range(1, 5000):
        t.add(hash(("e", i)), i)
    assert t.slots == 1 << 10 and t.nbytes == (1 << 10) * 12
    assert len(t) == (1 << 10) * 3 // 4
    assert not t.complete
    assert t.add(hash(("e", 5)), 9999) == 5  # tracked examples are still recognised
    default = DigestTable()
    assert default._max_slots * 12 == 24 * 1024 * 1024  # the documented 24 MiB bound


def test_reserve_sizes_the_table_once_within_the_bound():
    t = DigestTable(initial_slots=8, max_slots=1 << 12)
    t.add(hash("a"), 1)
    t.reserve(1000)
    assert t.slots == 2048 and len(t) == 1 and t.add(hash("a"), 5) == 1
    t.reserve(10**9)
    assert t.slots == 1 << 12  # never past the ceiling
