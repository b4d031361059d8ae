"""Table Storage access: one small repository per table, ETag-guarded updates,
parameterised queries, and key encoding for names that Table keys cannot hold.

Every write that changes an existing row passes the ETag it read; a row changed
by someone else in between is refused with :class:`ConcurrencyError`, so two
workers (overlapping timer ticks, scaled-out instances) never both act on it.
"""
from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, TableServiceClient, UpdateMode

log = logging.getLogger(__name__)

__all__ = [
    "ConcurrencyError", "LostClaim", "NotFoundError", "AlreadyExistsError", "Row", "Table", "TableStore",
    "encode_key", "decode_key",
]


class ConcurrencyError(Exception):
    """The row changed (or appeared, or vanished) since it was read."""


class LostClaim(Exception):
    """Another worker holds the row now: stop acting on it."""


class NotFoundError(KeyError):
    pass


class AlreadyExistsError(Exception):
    pass


# Characters Table Storage refuses in PartitionKey/RowKey, plus '%' which we use as the escape.
_UNSAFE_KEY = re.compile(r"[/\\#?%\x00-\x1f\x7f-\x9f]")
_MAX_KEY_BYTES = 1024


def encode_key(name: str) -> str:
    """Turns any name into a valid Table key, reversibly and readably: the characters
    Table Storage refuses (``/ \\ # ?`` and control characters) and ``%`` become ``%XX``
    escapes; a key that would exceed the 1 KiB limit is replaced by a hash-suffixed form
    (the original name is always kept in a property of the row as well)."""
    encoded = _UNSAFE_KEY.sub(lambda m: "".join(f"%{b:02X}" for b in m.group().encode()), name)
    if len(encoded.encode("utf-16-le")) // 2 > _MAX_KEY_BYTES // 2 or len(encoded.encode()) > _MAX_KEY_BYTES:
        import hashlib

        digest = hashlib.sha256(name.encode()).hexdigest()[:32]
        encoded = encoded[:400] + "~" + digest
    return encoded


def decode_key(key: str) -> str:
    raw = re.sub(r"(%[0-9A-F]{2})+", lambda m: bytes.fromhex(m.group().replace("%", "")).decode("utf-8", "replace"), key)
    return raw


# Properties stored as JSON strings (Table Storage has no nested types).
_JSON_PREFIX = "json:"


def _to_entity(data: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in data.items():
        if isinstance(v, (dict, list, tuple)):
            out[k] = _JSON_PREFIX + json.dumps(v, separators=(",", ":"), default=str)
        elif v is None:
            continue
        else:
            out[k] = v
    return out


def _from_entity(entity: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in entity.items():
        if isinstance(v, str) and v.startswith(_JSON_PREFIX):
            try:
                out[k] = json.loads(v[len(_JSON_PREFIX):])
                continue
            except ValueError:
                pass
        out[k] = v
    return out


@dataclass
class Row:
    """A row as read: its properties (nested values decoded) and the ETag to write it back."""

    data: dict[str, Any]
    etag: str | None

    @property
    def partition_key(self) -> str:
        return self.data["PartitionKey"]

    @property
    def row_key(self) -> str:
        return self.data["RowKey"]

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def __getitem__(self, key: str) -> Any:
        return self.data[key]


def _row(entity) -> Row:
    etag = getattr(entity, "metadata", {}).get("etag")
    return Row(_from_entity(dict(entity)), etag)


class Table:
    """One table. Thin, synchronous, with the error mapping the domain relies on."""

    def __init__(self, client: TableClient) -> None:
        self.client = client
        self.name = client.table_name

    def get(self, partition_key: str, row_key: str) -> Row:
        try:
            return _row(self.client.get_entity(partition_key, row_key))
        except ResourceNotFoundError:
            raise NotFoundError(f"{self.name}: no row {partition_key!r}/{row_key!r}") from None

    def find(self, partition_key: str, row_key: str) -> Row | None:
        try:
            return self.get(partition_key, row_key)
        except NotFoundError:
            return None

    def insert(self, data: Mapping[str, Any]) -> Row:
        """Creates the row; :class:`AlreadyExistsError` if it exists (the insert is the claim)."""
        try:
            meta = self.client.create_entity(_to_entity(data))
        except ResourceExistsError:
            raise AlreadyExistsError(f"{self.name}: row {data['PartitionKey']!r}/{data['RowKey']!r} exists") from None
        return Row(dict(data), meta.get("etag"))

    def replace(self, row: Row, changes: Mapping[str, Any] | None = None) -> Row:
        """Writes the row back (merged with ``changes``) only if it has not changed since read."""
        data = dict(row.data)
        if changes:
            data.update(changes)
        data = {k: v for k, v in data.items() if v is not None}
        try:
            meta = self.client.update_entity(
                _to_entity(data), mode=UpdateMode.REPLACE, etag=row.etag,
                match_condition=MatchConditions.IfNotModified,
            )
        except (ResourceModifiedError, ResourceNotFoundError) as exc:
            raise ConcurrencyError(f"{self.name}: row {data['PartitionKey']!r}/{data['RowKey']!r} "
                                   f"changed since it was read") from exc
        return Row(data, meta.get("etag"))

    def replace_with(self, row: Row, changes: Mapping[str, Any] | None, inserts: list[Mapping[str, Any]]) -> Row:
        """:meth:`replace` and the ``inserts`` (rows of the same partition) in one entity-group
        transaction: all are written, or none (ConcurrencyError when the row changed)."""
        if not inserts:
            return self.replace(row, changes)
        from azure.data.tables import TableTransactionError

        data = dict(row.data)
        if changes:
            data.update(changes)
        data = {k: v for k, v in data.items() if v is not None}
        operations: list[Any] = [("update", _to_entity(data), {"mode": UpdateMode.REPLACE, "etag": row.etag,
                                                               "match_condition": MatchConditions.IfNotModified})]
        for extra in inserts:
            if extra["PartitionKey"] != data["PartitionKey"]:
                raise ValueError("a transaction writes one partition only")
            operations.append(("create", _to_entity(extra)))
        try:
            results = self.client.submit_transaction(operations)
        except TableTransactionError as exc:
            code = str(getattr(exc, "error_code", "") or "")
            if "UpdateConditionNotSatisfied" in code or "ResourceNotFound" in code or \
                    getattr(exc, "status_code", None) in (404, 412):
                raise ConcurrencyError(f"{self.name}: row {data['PartitionKey']!r}/{data['RowKey']!r} changed "
                                       f"since it was read") from exc
            raise
        etag = (results[0] or {}).get("etag") if results else None
        return Row(data, etag)

    def save_claimed(self, row: Row, changes: Mapping[str, Any], worker: str) -> Row:
        """Writes ``changes`` to a row this worker has claimed (``claimed_by``). If someone
        else wrote the row meanwhile, merges onto the fresh row once, as long as the claim is
        still ours; otherwise raises :class:`LostClaim`."""
        try:
            return self.replace(row, changes)
        except ConcurrencyError:
            fresh = self.get(row.partition_key, row.row_key)
            if fresh.get("claimed_by") != worker:
                raise LostClaim(row.row_key) from None
            try:
                return self.replace(fresh, changes)
            except ConcurrencyError:
                raise LostClaim(row.row_key) from None

    def claim(self, row: Row, worker: str, until: Any, now: Any, changes: Mapping[str, Any] | None = None) -> Row | None:
        """The one claim routine: takes the row for ``worker`` until ``until`` (ISO text or a
        datetime), with ``changes`` in the same write, unless another worker holds a claim
        that has not run out at ``now``. Returns the claimed row, or None when it is held
        or changed since it was read (someone else got there first)."""
        from ..core.clock import parse_time, utc_iso

        holder, held_until = row.get("claimed_by"), parse_time(row.get("claimed_until"))
        if holder and holder != worker and held_until is not None and held_until > parse_time(now):
            return None
        try:
            return self.replace(row, {**(changes or {}), "claimed_by": worker,
                                      "claimed_until": utc_iso(parse_time(until))})
        except ConcurrencyError:
            return None

    def upsert(self, data: Mapping[str, Any]) -> Row:
        """Unconditional write: only for rows that a single writer owns (e.g. append-only events)."""
        meta = self.client.upsert_entity(_to_entity(data), mode=UpdateMode.REPLACE)
        return Row(dict(data), meta.get("etag"))

    def delete(self, row: Row) -> None:
        try:
            self.client.delete_entity(row.partition_key, row.row_key, etag=row.etag,
                                      match_condition=MatchConditions.IfNotModified)
        except ResourceModifiedError as exc:
            raise ConcurrencyError(f"{self.name}: row changed since it was read") from exc
        except ResourceNotFoundError:
            pass

    def query(self, filter: str, parameters: Mapping[str, Any] | None = None, *,
              select: list[str] | None = None, page_size: int | None = None) -> Iterator[Row]:
        """A parameterised OData query: values go in ``parameters`` (``@name`` in the
        filter), never into the filter string itself."""
        for entity in self.client.query_entities(filter, parameters=dict(parameters or {}),
                                                 select=select, results_per_page=page_size):
            yield _row(entity)

    def page(self, filter: str | None, parameters: Mapping[str, Any] | None, *, size: int,
             token: Any = None) -> tuple[list[Row], Any]:
        """One page of a query and the continuation token for the next (None at the end)."""
        if filter:
            pager = self.client.query_entities(filter, parameters=dict(parameters or {}),
                                               results_per_page=size).by_page(continuation_token=token)
        else:
            pager = self.client.list_entities(results_per_page=size).by_page(continuation_token=token)
        try:
            items = [_row(e) for e in next(pager)]
        except StopIteration:
            return [], None
        return items, pager.continuation_token

    def partition(self, partition_key: str) -> Iterator[Row]:
        return self.query("PartitionKey eq @pk", {"pk": partition_key})

    def update_with_retry(self, partition_key: str, row_key: str,
                          mutate: Callable[[dict[str, Any]], Mapping[str, Any] | None],
                          attempts: int = 5) -> Row:
        """Read-modify-write with ETag, retried on conflict. ``mutate`` gets a copy of the
        current properties and returns the changes (or None to leave the row as it is)."""
        for attempt in range(attempts):
            row = self.get(partition_key, row_key)
            changes = mutate(dict(row.data))
            if not changes:
                return row
            try:
                return self.replace(row, changes)
            except ConcurrencyError:
                log.info("%s %s/%s changed under us (attempt %d), re-reading", self.name,
                         partition_key, row_key, attempt + 1)
        raise ConcurrencyError(f"{self.name}: {partition_key}/{row_key} kept changing; gave up after {attempts} tries")


class TableStore:
    """The tables of the service, created on first use."""

    def __init__(self, service: TableServiceClient) -> None:
        self.service = service
        self._tables: dict[str, Table] = {}

    def table(self, name: str) -> Table:
        table = self._tables.get(name)
        if table is None:
            try:
                self.service.create_table(name)
            except ResourceExistsError:
                pass
            table = self._tables[name] = Table(self.service.get_table_client(name))
        return table
