"""The Table Storage helper against real Azurite: optimistic concurrency and safe keys."""
from __future__ import annotations

import threading

import pytest
from azure.data.tables import TableServiceClient

from shared.state.tables import (AlreadyExistsError, ConcurrencyError, TableStore, decode_key,
                                 encode_key)


@pytest.fixture
def table(storage_conn, unique):
    store = TableStore(TableServiceClient.from_connection_string(storage_conn))
    return store.table(f"T{unique}")


def test_stale_etag_update_is_refused(table):
    table.insert({"PartitionKey": "p", "RowKey": "r", "status": "running"})
    first = table.get("p", "r")
    second = table.get("p", "r")
    table.replace(first, {"status": "succeeded"})
    with pytest.raises(ConcurrencyError):
        table.replace(second, {"status": "failed"})  # read before the first write: refused
    assert table.get("p", "r")["status"] == "succeeded"


def test_insert_is_a_claim(table):
    table.insert({"PartitionKey": "p", "RowKey": "once"})
    with pytest.raises(AlreadyExistsError):
        table.insert({"PartitionKey": "p", "RowKey": "once"})


def test_nested_values_round_trip(table):
    table.insert({"PartitionKey": "p", "RowKey": "n", "hyper": {"n_epochs": 3}, "events": [1, 2]})
    row = table.get("p", "n")
    assert row["hyper"] == {"n_epochs": 3} and row["events"] == [1, 2]


def test_update_with_retry_applies_every_concurrent_increment(table):
    table.insert({"PartitionKey": "p", "RowKey": "c", "count": 0})

    def bump():
        for _ in range(5):
            table.update_with_retry("p", "c", lambda d: {"count": d["count"] + 1}, attempts=50)

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert table.get("p", "c")["count"] == 20  # no lost update


def test_query_values_are_parameters_not_filter_text(table):
    table.insert({"PartitionKey": "p", "RowKey": "a", "name": "x' or '1' eq '1"})
    table.insert({"PartitionKey": "p", "RowKey": "b", "name": "other"})
    rows = list(table.query("name eq @name", {"name": "x' or '1' eq '1"}))
    assert [r.row_key for r in rows] == ["a"]


@pytest.mark.parametrize("name", ["plain", "a/b/c.jsonl", "back\\slash", "hash#tag?q=1", "100%",
                                  "tab\there", "ünïcödé 名前", "x" * 2000])
def test_any_name_becomes_a_valid_key(table, name):
    key = encode_key(name)
    assert not any(c in key for c in "/\\#?") and all(ord(c) >= 32 for c in key)
    table.insert({"PartitionKey": "keys", "RowKey": key, "name": name})
    assert table.get("keys", key)["name"] == name
    if len(name) < 500:
        assert decode_key(key) == name


def test_paging_returns_continuation_tokens(table):
    for i in range(7):
        table.insert({"PartitionKey": "page", "RowKey": f"{i:02d}"})
    seen, token = [], None
    while True:
        rows, token = table.page("PartitionKey eq @pk", {"pk": "page"}, size=3, token=token)
        seen += [r.row_key for r in rows]
        if not token:
            break
    assert seen == [f"{i:02d}" for i in range(7)]
