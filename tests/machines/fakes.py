"""Fakes for handler tests: Azure's ports with scripted answers, storage in memory,
settings as a plain namespace, and an :class:`Env` at a fixed time.

Every Azure call a test did not script fails the test (``UnexpectedCall``): a
handler that asks Azure for something it should not is a behaviour change. A
scripted answer is a value, an exception (raised, e.g. an :class:`AzureError`), a
callable (called with the call's arguments), :class:`Answers` (one per call) or
:class:`Returns` (returned as it is, even an exception).

Storage is the real :class:`~shared.state.repos.Repositories` over an in-memory
Table client (ETags, inserts that refuse an existing row, the queries the
repositories make), so a handler's lookups and an effect's inserts behave as
they do against Table Storage.
"""
from __future__ import annotations

import copy
import itertools
import re
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any, Iterable

from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError

from shared.adapters.arm import JOB_TAG, OWNER, OWNER_TAG, DeploymentInfo
from shared.adapters.files import FileStatus
from shared.adapters.inference import PingResult
from shared.adapters.metrics import Activity
from shared.core.clock import Clock
from shared.core.errors import AzureError, ErrorKind
from shared.machines.engine import Env, Machine, Step, TickReport
from shared.state.records import DatasetRecord, DeploymentRecord, JobRecord, Record
from shared.state.repos import Repositories
from shared.state.tables import Table, encode_key

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=timezone.utc)
ACCOUNT = "aoai-test"
MODEL = "gpt-4o-mini-2024-07-18.ft-0123456789abcdef0123456789abcdef-demo"


def ago(**kw: float) -> datetime:
    return NOW - timedelta(**kw)


def later(**kw: float) -> datetime:
    return NOW + timedelta(**kw)


# ----------------------------------------------------------------------------- errors
def azure_error(kind: str | ErrorKind = ErrorKind.TRANSIENT, code: str | None = None, message: str = "boom",
                status: int | None = None, retry_after: float | None = None) -> AzureError:
    return AzureError(kind, code, message, status, retry_after)


def transient(message: str = "service unavailable", status: int | None = 503,
              retry_after: float | None = None) -> AzureError:
    return AzureError(ErrorKind.TRANSIENT, None, message, status, retry_after)


def quota(message: str = "InsufficientQuota: no room for another deployment") -> AzureError:
    return AzureError(ErrorKind.QUOTA, "InsufficientQuota", message, 400)


# ----------------------------------------------------------------------------- Azure
class UnexpectedCall(AssertionError):
    pass


class Answers:
    """Successive answers, one per call (the last one repeats)."""

    def __init__(self, *values: Any) -> None:
        self.values = list(values)

    def next(self) -> Any:
        return self.values.pop(0) if len(self.values) > 1 else self.values[0]


class Returns:
    """An answer returned as it is, even an exception (``arm.operation_error`` returns one)."""

    def __init__(self, value: Any) -> None:
        self.value = value


class Port:
    """One Azure surface: ``script`` maps a method name to its answer; ``calls`` records
    every call as ``(method, *args)``."""

    surface = "port"

    def __init__(self, **script: Any) -> None:
        self.script: dict[str, Any] = {**self.defaults(), **script}
        self.calls: list[tuple] = []

    def defaults(self) -> dict[str, Any]:
        return {}

    def answer(self, method: str, *args: Any) -> Any:
        self.calls.append((method, *args))
        if method not in self.script:
            raise UnexpectedCall(f"unexpected call {self.surface}.{method}{args!r}")
        value = self.script[method]
        if isinstance(value, Answers):
            value = value.next()
        if isinstance(value, Returns):
            return value.value
        if isinstance(value, BaseException):
            raise value
        if callable(value) and not isinstance(value, type):
            value = value(*args)
        return value

    def called(self, method: str) -> list[tuple]:
        return [c[1:] for c in self.calls if c[0] == method]


class FakeJobs(Port):
    surface = "jobs"

    def defaults(self) -> dict[str, Any]:
        return {"new_events": [], "checkpoints": []}

    def retrieve(self, oid: str) -> dict[str, Any]:
        return self.answer("retrieve", oid)

    def new_events(self, oid: str, last_id: str | None, last_at: datetime | None) -> list[dict[str, Any]]:
        return self.answer("new_events", oid, last_id, last_at)

    def checkpoints(self, oid: str) -> list[dict[str, Any]]:
        return self.answer("checkpoints", oid)

    def file_content(self, file_id: str) -> bytes:
        return self.answer("file_content", file_id)

    def find_lost(self, intent, recorded_elsewhere) -> dict | None:
        """The script answers the matching Azure jobs, closest first; like the adapter,
        the first one no other row records is returned."""
        candidates = self.answer("find_lost", intent) or []
        for job in candidates:
            if not recorded_elsewhere(job["id"]):
                return job
        return None

    def create(self, intent):
        return self.answer("create", intent)

    def cancel(self, oid: str):
        return self.answer("cancel", oid)


class FakeArm(Port):
    surface = "arm"

    def get(self, name: str) -> DeploymentInfo | None:
        return self.answer("get", name)

    def begin_create(self, name: str, model: str, sku: str, capacity: int, *, job_id: str | None = None,
                     snapshot: dict[str, Any] | None = None) -> tuple[str | None, str | None]:
        """Recorded as ``(name, model, sku, capacity, job_id, snapshot)``."""
        return self.answer("begin_create", name, model, sku, capacity, job_id, snapshot)

    def begin_delete(self, name: str) -> None:
        return self.answer("begin_delete", name)

    def operation_error(self, url: str | None) -> AzureError | None:
        return self.answer("operation_error", url)

    def list(self, use_sdk_models: bool = False) -> list[DeploymentInfo]:
        return self.answer("list")


class FakeInference(Port):
    surface = "inference"

    def ping(self, name: str, model: str | None) -> PingResult:
        return self.answer("ping", name, model)


class FakeFiles(Port):
    surface = "files"

    def status(self, file_id: str) -> FileStatus:
        return self.answer("status", file_id)

    def find(self, filename: str) -> str | None:
        return self.answer("find", filename)

    def upload(self, filename: str, reader) -> str:
        return self.answer("upload", filename, reader)

    def import_url(self, filename: str, url: str) -> str:
        return self.answer("import_url", filename, url)

    def delete(self, file_id: str) -> bool:
        return self.answer("delete", file_id)


class FakeMetrics(Port):
    surface = "metrics"

    def activity(self, now: datetime, days: float = 15.0, interval: str | None = None,
                 use_sdk_models: bool = False) -> Activity:
        return self.answer("activity", now)


class FakeBlobs(Port):
    surface = "blobs"

    def defaults(self) -> dict[str, Any]:
        return {"put": lambda container, name, data, content_type=None: f"{container}/{name}",
                "put_json": lambda container, name, value: f"{container}/{name}"}

    def put(self, container: str, name: str, data: bytes, content_type: str | None = None) -> str:
        return self.answer("put", container, name, data)

    def put_json(self, container: str, name: str, value: Any) -> str:
        return self.answer("put_json", container, name, value)

    def client(self, container: str, name: str):
        return self.answer("client", container, name)


class FakeAzure:
    """The ports handlers use (``env.azure``)."""

    def __init__(self) -> None:
        self.jobs = FakeJobs()
        self.arm = FakeArm()
        self.inference = FakeInference()
        self.files = FakeFiles()
        self.metrics = FakeMetrics()
        self.blobs = FakeBlobs()

    @property
    def calls(self) -> list[tuple]:
        out = []
        for port in (self.jobs, self.arm, self.inference, self.files, self.metrics, self.blobs):
            out.extend((f"{port.surface}.{c[0]}", *c[1:]) for c in port.calls)
        return out


# ----------------------------------------------------------------------------- ARM / data plane values
def owner_tags(job_id: str | None = "job-1") -> dict[str, str]:
    """The tags this service puts on the deployments it creates (for a job, or without one)."""
    return {OWNER_TAG: OWNER, **({JOB_TAG: job_id} if job_id else {})}


def info(name: str = "ft-demo", state: str | None = "Succeeded", *, model: str | None = MODEL,
         sku: str | None = "Standard", created_at: datetime | None = None, capacity: int | None = 1,
         job: str | None = "job-1", tags: dict[str, str] | None = None,
         properties: dict[str, Any] | None = None) -> DeploymentInfo:
    """A deployment as ARM shows it. By default this service's, made for ``job`` (``tags``
    overrides: ``{}`` is a deployment without tags, made by hand). With ``properties`` it
    carries ARM's whole answer (``raw``, hence a ``snapshot``) with those extra properties."""
    tags = owner_tags(job) if tags is None else dict(tags)
    raw = None
    if properties is not None:
        raw = {"name": name, "sku": {"name": sku, "capacity": capacity}, "tags": dict(tags),
               "properties": {"model": {"format": "OpenAI", "name": model, "version": "1"},
                              "provisioningState": state, **properties}}
    return DeploymentInfo(name=name, model=model, sku=sku, capacity=capacity, provisioning_state=state,
                          created_at=created_at, tags=tags, raw=raw)


def answered() -> PingResult:
    return PingResult(True)


def not_serving(message: str = "The deployment is not ready yet") -> PingResult:
    return PingResult(False, AzureError(ErrorKind.NOT_READY, "DeploymentNotReady", message, 404))


def ping_gone() -> PingResult:
    return PingResult(False, AzureError(ErrorKind.NOT_FOUND, "DeploymentNotFound", "no such deployment", 404))


def ping_failed(err: AzureError | None = None) -> PingResult:
    return PingResult(False, err or transient())


def activity(last: dict[str, datetime] | None = None, interval: timedelta = timedelta(hours=6)) -> Activity:
    return Activity(start=NOW - timedelta(days=15), end=NOW, interval=interval,
                    last_bucket={k.lower(): v for k, v in (last or {}).items()},
                    totals={k.lower(): 1.0 for k in (last or {})})


# ----------------------------------------------------------------------------- storage
class _Entity(dict):
    def __init__(self, data: dict, etag: str) -> None:
        super().__init__(data)
        self.metadata = {"etag": etag}


_CLAUSE = re.compile(r"^\s*(\w+)\s+eq\s+(@\w+|true|false|'[^']*')\s*$")


class FakeTableClient:
    """The part of ``azure.data.tables.TableClient`` that :class:`Table` uses, in memory."""

    _etags = itertools.count(1)

    def __init__(self, table_name: str) -> None:
        self.table_name = table_name
        self.entities: dict[tuple[str, str], tuple[dict, str]] = {}
        self.writes = 0

    def _etag(self) -> str:
        return f'W/"{next(self._etags)}"'

    def _read(self, key: tuple[str, str]) -> _Entity:
        data, etag = self.entities[key]
        return _Entity(copy.deepcopy(data), etag)

    def get_entity(self, partition_key: str, row_key: str) -> _Entity:
        key = (partition_key, row_key)
        if key not in self.entities:
            raise ResourceNotFoundError("The specified resource does not exist.")
        return self._read(key)

    def create_entity(self, entity: dict) -> dict:
        key = (entity["PartitionKey"], entity["RowKey"])
        if key in self.entities:
            raise ResourceExistsError("The specified entity already exists.")
        etag = self._etag()
        self.entities[key] = (copy.deepcopy(dict(entity)), etag)
        self.writes += 1
        return {"etag": etag}

    def update_entity(self, entity: dict, mode=None, etag: str | None = None, match_condition=None) -> dict:
        key = (entity["PartitionKey"], entity["RowKey"])
        if key not in self.entities:
            raise ResourceNotFoundError("The specified resource does not exist.")
        if etag is not None and self.entities[key][1] != etag:
            raise ResourceModifiedError("The update condition specified in the request was not satisfied.")
        new = self._etag()
        self.entities[key] = (copy.deepcopy(dict(entity)), new)
        self.writes += 1
        return {"etag": new}

    def upsert_entity(self, entity: dict, mode=None) -> dict:
        key = (entity["PartitionKey"], entity["RowKey"])
        etag = self._etag()
        self.entities[key] = (copy.deepcopy(dict(entity)), etag)
        self.writes += 1
        return {"etag": etag}

    def delete_entity(self, partition_key: str, row_key: str, etag: str | None = None, match_condition=None) -> None:
        key = (partition_key, row_key)
        if key not in self.entities:
            raise ResourceNotFoundError("The specified resource does not exist.")
        if etag is not None and self.entities[key][1] != etag:
            raise ResourceModifiedError("The delete condition specified in the request was not satisfied.")
        del self.entities[key]
        self.writes += 1

    def query_entities(self, filter: str, parameters: dict | None = None, select=None,
                       results_per_page=None) -> Iterable[_Entity]:
        """Conjunctions of ``field eq @param`` (or ``true``/``false``/``'text'``): the queries
        the repositories make."""
        clauses = []
        for part in re.split(r"\s+and\s+", filter):
            m = _CLAUSE.match(part)
            if not m:
                raise NotImplementedError(f"the fake table does not understand {filter!r}")
            name, raw = m.groups()
            if raw.startswith("@"):
                value = (parameters or {})[raw[1:]]
            elif raw in ("true", "false"):
                value = raw == "true"
            else:
                value = raw[1:-1]
            clauses.append((name, value))
        out = []
        for key in sorted(self.entities):
            data = self.entities[key][0]
            if all(name in data and data[name] == value for name, value in clauses):
                out.append(self._read(key))
        return out

    def list_entities(self, results_per_page=None) -> Iterable[_Entity]:
        return [self._read(k) for k in sorted(self.entities)]


class FakeStore:
    def __init__(self) -> None:
        self.tables: dict[str, Table] = {}

    def table(self, name: str) -> Table:
        if name not in self.tables:
            self.tables[name] = Table(FakeTableClient(name))
        return self.tables[name]


class FakeRepos(Repositories):
    """The real repositories over in-memory tables, with helpers to put rows in place."""

    def __init__(self, settings=None) -> None:
        super().__init__(FakeStore(), settings or make_settings())

    def put_job(self, job_id: str, **fields: Any):
        return self.jobs.insert({"PartitionKey": self.JOB_PARTITION, "RowKey": job_id, "id": job_id,
                                 **JobRecord.encode(fields)})

    def put_deployment(self, name: str, **fields: Any):
        pk, rk = self.deployment_keys(name)
        return self.deployments.insert({"PartitionKey": pk, "RowKey": rk, "name": name,
                                        **DeploymentRecord.encode(fields)})

    def put_upload(self, base_model: str, sha256: str, method: str, **fields: Any):
        pk, rk = self.upload_keys(base_model, sha256, method)
        return self.datasets.insert({"PartitionKey": pk, "RowKey": rk, "sha256": sha256, **fields})

    def events(self, name: str) -> list[dict]:
        return [r.data for r in self.deployment_events.partition(encode_key(name))]


# ----------------------------------------------------------------------------- settings and env
def make_settings(**overrides: Any) -> SimpleNamespace:
    values = dict(
        openai_account=ACCOUNT, default_deployment_sku="Standard", default_deployment_capacity=1,
        default_keep_alive="redeploy", keeper_margin_hours=48.0, keeper_recent_activity_minutes=60,
        hosting_cost_per_hour=1.70, file_processing_timeout=600, import_threshold_bytes=200 * 1024 * 1024,
        results_container="results", reports_container="reports", datasets_container="datasets",
        datasets_table="Datasets", jobs_table="Jobs", deployments_table="Deployments",
        deployment_events_table="DeploymentEvents", idempotency_table="IdempotencyKeys",
    )
    values.update(overrides)
    return SimpleNamespace(**values)


def make_env(*, now: datetime = NOW, azure: FakeAzure | None = None, repos: FakeRepos | None = None,
             settings: SimpleNamespace | None = None, context: dict[str, Any] | None = None) -> Env:
    """An Env whose clock always reads ``now``."""
    settings = settings or (repos.settings if repos is not None else make_settings())
    return Env(clock=Clock(lambda: now), settings=settings, repos=repos if repos is not None else FakeRepos(settings),
               azure=azure or FakeAzure(), context=dict(context or {}))


def keeper_env(arm: Iterable[DeploymentInfo] = (), *, activity: Activity | None = None,
               last_tick: datetime | None = None, **kw: Any) -> Env:
    """The Env a keeper tick hands the serving states: the account's ARM list, the
    request metrics, the previous tick's time and the tick's report."""
    context = {"arm": {i.name.lower(): i for i in arm}, "activity": activity, "last_tick": last_tick,
               "report": TickReport(worker="test")}
    context.update(kw.pop("context", {}))
    return make_env(context=context, **kw)


# ----------------------------------------------------------------------------- records
def job(status: str, key: str = "job-1", **fields: Any) -> JobRecord:
    return JobRecord.from_data({"PartitionKey": "job", "RowKey": key, "id": key, "status": status,
                                **JobRecord.encode(fields)})


def deployment(state: str, name: str = "ft-demo", **fields: Any) -> DeploymentRecord:
    data = {"model": MODEL, "job_id": "job-1", "sku": "Standard", "capacity": 1, "keep_alive": "redeploy"}
    data.update(fields)
    return DeploymentRecord.from_data({"PartitionKey": encode_key(ACCOUNT), "RowKey": encode_key(name), "name": name,
                                       "state": state, **DeploymentRecord.encode(data)})


def dataset(status: str, name: str = "chat.jsonl", **fields: Any) -> DatasetRecord:
    data = {"base_model": "gpt-4o-mini-2024-07-18", "method": "supervised", "sha256": "ab" * 32,
            "version": "abababababababab", "size": 1000, "blob_etag": '"0x1"'}
    data.update(fields)
    version = data["version"]
    return DatasetRecord.from_data({"PartitionKey": encode_key(data["base_model"]), "RowKey": f"{name}~{version}",
                                    "id": f"{name}@{version}", "name": name, "status": status,
                                    **DatasetRecord.encode(data)})


# ----------------------------------------------------------------------------- running handlers
def checked(machine: Machine, state, step: Step) -> Step:
    """A step as the engine would take it from ``state``: its fields are declared by the
    record (else the write would fail) and its move is declared in the table."""
    assert isinstance(step, Step), f"a handler returned {step!r}, not a Step"
    machine.record.encode(step.set)
    state = machine.states(state)
    if step.to is not None and step.to != state:
        assert step.to in machine.spec(state).to, f"{machine.name}: {state} -> {step.to} is not declared"
    for event in step.events:
        assert {"action", "reason", "outcome"} <= set(event), event
    return step


def decide(machine: Machine, rec: Record, env: Env) -> Step:
    """Runs the handler of the record's state once, as the engine would, and checks the step."""
    state = machine.state_of(rec)
    handler = machine.spec(state).handler
    assert handler is not None, f"{state} is final"
    return checked(machine, state, handler(rec, env))


def landed(machine: Machine, rec: Record, step: Step):
    """The state a row is in after ``step``."""
    return step.to if step.to is not None else machine.state_of(rec)


def after(machine: Machine, rec: Record, *steps: Step) -> Record:
    """The record as stored after ``steps`` (each one's move and writes, in order), as the
    engine would leave it; a value set to None is removed, as the table does."""
    data = dict(rec.row.data)
    for step in steps:
        state = landed(machine, machine.record.from_data(data), step)
        data.update(machine.record.encode(step.set))
        data[machine.state_field] = machine.states(state).value
    return machine.record.from_data({k: v for k, v in data.items() if v is not None})


def run_effect(machine: Machine, rec: Record, step: Step, env: Env) -> Step:
    """Runs the step's side effect (as the engine does after saving the intent) and
    answers its outcome as a step: the effect's own, or its on_error step (else the
    machine's error step) when Azure refuses."""
    assert step.effect is not None, "the step asks for no side effect"
    after = landed(machine, rec, step)
    try:
        result = step.effect.run(env)
        outcome = result if isinstance(result, Step) else Step(set=dict(result or {}))
    except AzureError as err:
        outcome = step.on_error(err) if step.on_error is not None else \
            machine.error_step(rec, err, err.during or step.effect.what, env.now)
        assert outcome.effect is None, "an error step may not ask for another side effect"
    return checked(machine, after, outcome)
