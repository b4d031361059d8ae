"""The order a monitor tick visits open jobs in: longest unvisited first, except that waiting
jobs are visited oldest request first, so that two created in one tick reach Azure in order."""
from shared.monitor import visiting_order
from shared.state.tables import Row


def row(key, updated, status="running"):
    return Row({"PartitionKey": "job", "RowKey": key, "updated_at": updated, "status": status}, etag=None)


def test_rows_looked_at_longest_ago_come_first():
    rows = [row("a", "2026-12-01T10:00:03Z"), row("b", "2026-12-01T10:00:01Z"), row("c", "2026-12-01T10:00:02Z")]
    assert [r.row_key for r in visiting_order(rows, [])] == ["b", "c", "a"]


def test_waiting_jobs_keep_their_places_but_go_oldest_request_first():
    rows = [row("run1", "2026-12-01T10:00:01Z"),
            row("w-new", "2026-12-01T10:00:02Z", "waiting"),   # visited earlier than w-old last tick
            row("run2", "2026-12-01T10:00:03Z"),
            row("w-old", "2026-12-01T10:00:04Z", "waiting")]
    order = visiting_order(rows, ["w-old", "w-new"])          # the queue: oldest request first
    assert [r.row_key for r in order] == ["run1", "w-old", "run2", "w-new"]
