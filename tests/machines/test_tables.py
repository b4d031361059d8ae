"""The three state tables as data: complete, connected, and the only place state values
are spelt; and the engine refusing what the tables do not declare."""
from __future__ import annotations

import ast
import dataclasses
import re
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from shared.core.errors import ErrorKind
from shared.machines.dataset import DATASET, DatasetState
from shared.machines.deployment import (DEPLOYMENT, HOSTED_STATES, IN_FLIGHT, KEEPER_STATES, MONITOR_STATES, SERVING,
                                        DeploymentState)
from shared.machines.engine import Engine, IllegalMove, Machine, Pass, Step, UnknownState
from shared.machines.job import CANCELLABLE, JOB, TRAINING, JobState
from shared.state.records import DatasetRecord, DeploymentRecord, JobRecord

from .fakes import FakeRepos, NOW, ago, azure_error, job, make_env

ROOT = Path(__file__).resolve().parents[2]

MACHINES = {
    "job": (JOB, {JobState.SUBMITTED}),
    "deployment": (DEPLOYMENT, {DeploymentState.CREATING}),
    "dataset": (DATASET, {DatasetState.VALIDATING}),
}
FINAL = {
    "job": {"failed", "cancelled", "gate_failed", "deployed", "deploy_failed"},
    "deployment": {"failed"},
    "dataset": {"rejected", "upload_failed"},   # ready too, but for a file uploaded again on demand
}


@pytest.fixture(params=sorted(MACHINES))
def machine(request) -> tuple[str, Machine, set]:
    name = request.param
    return (name, *MACHINES[name])


# ============================================================================ the tables
def test_every_state_has_a_row_in_the_table(machine):
    _, m, _ = machine
    assert set(m.table) == set(m.states)
    assert len(m.specs) == len(set(s.state for s in m.specs)), "a state has two rows"


def test_the_final_states_are_the_ones_documented(machine):
    name, m, _ = machine
    assert {str(s) for s in m.final_states} == FINAL[name]


def test_every_state_that_is_not_final_has_a_handler(machine):
    _, m, _ = machine
    for spec in m.specs:
        if not spec.final:
            assert callable(spec.handler), f"{m.name}: {spec.state} has no handler"
        assert spec.meaning, f"{m.name}: {spec.state} says nothing about what it means"


def test_every_state_is_reachable_from_the_initial_state(machine):
    _, m, initial = machine
    assert m.reachable(initial) == set(m.states)


def test_every_move_goes_to_a_state_of_the_same_machine(machine):
    _, m, _ = machine
    for spec in m.specs:
        for target in spec.to:
            assert isinstance(target, m.states) and target in m.table


def test_a_final_state_is_left_for_good(machine):
    _, m, _ = machine
    for state in m.final_states:
        assert not m.spec(state).to and not m.spec(state).open


def test_open_states_are_the_ones_ticks_follow():
    assert set(JOB.open_states) == set(JobState) - {JobState(s) for s in FINAL["job"]}
    assert set(DEPLOYMENT.open_states) == set(MONITOR_STATES)
    assert set(DATASET.open_states) == {DatasetState.UPLOADING, DatasetState.WAITING, DatasetState.PROCESSING}


def test_the_named_groups_of_states_agree_with_the_tables():
    assert all(DEPLOYMENT.spec(s).handler is not None for s in KEEPER_STATES)
    assert set(SERVING) | set(IN_FLIGHT) <= set(KEEPER_STATES)
    assert not set(HOSTED_STATES) & set(DEPLOYMENT.final_states)
    assert set(CANCELLABLE) == set(TRAINING) and all(JOB.spec(s).open for s in TRAINING)


@pytest.mark.parametrize("m,rec", [
    (JOB, JobRecord.from_data({"PartitionKey": "job", "RowKey": "job-42", "status": "nonsense"})),
    (DEPLOYMENT, DeploymentRecord.from_data({"PartitionKey": "aoai", "RowKey": "ft-42", "state": "nonsense"})),
    (DATASET, DatasetRecord.from_data({"PartitionKey": "gpt", "RowKey": "chat.jsonl~42", "status": "nonsense"})),
])
def test_a_stored_value_that_is_not_a_state_is_an_error_naming_the_row(m, rec):
    with pytest.raises(UnknownState) as caught:
        m.state_of(rec)
    assert rec.key in str(caught.value) and "'nonsense'" in str(caught.value) and m.name in str(caught.value)


def test_an_undeclared_move_is_an_error_naming_the_row():
    engine = Engine(JOB, FakeRepos().jobs, None, make_env(), worker="test")
    rec = job("submitted", key="job-42")
    with pytest.raises(IllegalMove) as caught:
        engine._target(rec, JobState.SUBMITTED, Step(to=JobState.DEPLOYED))
    assert "job-42" in str(caught.value) and "submitted -> deployed" in str(caught.value)
    # Staying, or a declared move, is fine.
    assert engine._target(rec, JobState.SUBMITTED, Step(to=JobState.SUBMITTED)) == JobState.SUBMITTED
    assert engine._target(rec, JobState.SUBMITTED, Step(to=JobState.RUNNING)) == JobState.RUNNING


# ============================================================================ the engine keeps to them
def with_handler(m: Machine, state, handler) -> Machine:
    """The same machine with one state's handler replaced."""
    specs = tuple(dataclasses.replace(s, handler=handler) if s.state == state else s for s in m.specs)
    return dataclasses.replace(m, specs=specs)


def test_a_visit_that_makes_an_undeclared_move_writes_nothing():
    repos = FakeRepos()
    row = repos.put_job("job-42", status="submitted", created_at=ago(minutes=1))
    m = with_handler(JOB, JobState.SUBMITTED, lambda rec, env: Step(to=JobState.DEPLOYED, set={"error": "x"}))
    engine = Engine(m, repos.jobs, repos.job_index, make_env(repos=repos), worker="test")
    writes = repos.jobs.client.writes
    with pytest.raises(IllegalMove):
        engine.visit(repos.jobs.get("job", "job-42"))
    assert repos.jobs.client.writes == writes
    assert repos.get_job("job-42").data == row.data
    # A tick's pass reports it as an error and goes on with the next row.
    results = Pass(engine, engine.env.clock, budget=10).run([("job-42", lambda: repos.jobs.get("job", "job-42"))])
    assert results == [] and engine.report.errors == 1


def test_a_visit_to_a_row_with_an_unknown_state_is_reported_not_raised():
    repos = FakeRepos()
    repos.put_job("job-42", status="nonsense")
    engine = Engine(JOB, repos.jobs, repos.job_index, make_env(repos=repos), worker="test")
    Pass(engine, engine.env.clock, budget=10).run([("job-42", lambda: repos.jobs.get("job", "job-42"))])
    assert engine.report.errors == 1


def test_an_azure_error_in_a_handler_is_written_as_the_error_step():
    repos = FakeRepos()
    repos.put_job("job-42", status="running", openai_job_id="ftjob-1", attempts=1)
    env = make_env(repos=repos)
    env.azure.jobs.script["retrieve"] = azure_error("auth", "PermissionDenied", "no role", 403).doing(
        "retrieving job ftjob-1")
    visit = Engine(JOB, repos.jobs, repos.job_index, env, worker="test").visit(repos.jobs.get("job", "job-42"))
    assert visit.outcome == "written" and visit.state == JobState.RUNNING
    stored = JobRecord.from_row(repos.get_job("job-42"))
    assert stored.status == "running"
    assert stored.last_error["kind"] == str(ErrorKind.AUTH)
    assert stored.last_error["during"] == "retrieving job ftjob-1"
    assert stored.attempts == 2
    assert stored.next_attempt_at == NOW + timedelta(seconds=JOB.policy.backoff(2))


# ============================================================================ state values live in the tables
STATE_VALUES = {v for m, _ in MACHINES.values() for v in m.values()}
STATE_WORD = re.compile(r"(^|_)(status|state)$")
# Azure's words are normalised before they are compared (``.lower()``); the service's own
# states are stored exactly and never are. A comparison with normalised text is Azure's.
NORMALISING = {"lower", "upper", "casefold"}
SCANNED = ROOT / "shared"
NOT_SCANNED = ("shared/machines/", "shared/validation/")


def _names_a_state(node: ast.AST) -> bool:
    for n in ast.walk(node):
        if isinstance(n, ast.Name) and STATE_WORD.search(n.id):
            return True
        if isinstance(n, ast.Attribute) and STATE_WORD.search(n.attr):
            return True
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and STATE_WORD.search(n.value):
            return True
    return False


def _normalised(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in NORMALISING
               for n in ast.walk(node))


def _state_literals(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Constant):
        items = [node]
    elif isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        items = node.elts
    else:
        return []
    return [n.value for n in items if isinstance(n, ast.Constant) and isinstance(n.value, str)
            and n.value in STATE_VALUES]


def state_literals(source: str) -> list[tuple[int, str]]:
    """(line, code) of each state value written as a string where a status or state is
    compared, set in a dict, passed as a keyword, assigned or matched."""
    tree = ast.parse(source)
    found: list[tuple[int, ast.AST]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            for a, b in zip(sides, sides[1:]):
                if any(_state_literals(lit) and _names_a_state(other) and not _normalised(other)
                       for lit, other in ((a, b), (b, a))):
                    found.append((node.lineno, node))
        elif isinstance(node, ast.Dict):
            for k, v in zip(node.keys, node.values):
                if isinstance(k, ast.Constant) and isinstance(k.value, str) and STATE_WORD.search(k.value) \
                        and _state_literals(v):
                    found.append((k.lineno, v))
        elif isinstance(node, ast.keyword):
            if node.arg and STATE_WORD.search(node.arg) and _state_literals(node.value):
                found.append((node.value.lineno, node))
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if node.value is not None and _state_literals(node.value) and any(
                    isinstance(t, (ast.Attribute, ast.Subscript)) and _names_a_state(t) for t in targets):
                found.append((node.lineno, node))
        elif isinstance(node, ast.Match) and _names_a_state(node.subject):
            for case in node.cases:
                if isinstance(case.pattern, ast.MatchValue) and _state_literals(case.pattern.value):
                    found.append((case.pattern.lineno, case.pattern))
    return sorted({(line, ast.get_source_segment(source, n) or "") for line, n in found})


def test_the_scan_finds_state_literals_in_the_forms_it_looks_for():
    source = textwrap.dedent('''
        if row["status"] == "ready": pass
        if dep.state in ("active", "restored"): pass
        if "deploying" != job.status: pass
        data = {"status": "uploading", "kind": "failed"}
        update(deployment_state="creating", mode="ready")
        job.status = "failed"
        match dep.state:
            case "missing": pass
        # not ours: Azure's words normalised, other fields, other words
        if str(body.get("status", "")).lower() != "failed": pass
        if outcome == "failed" or mode == "ready" or status == "processed": pass
        update(outcome="failed")
    ''')
    assert [code for _, code in state_literals(source)] == [
        'row["status"] == "ready"', 'dep.state in ("active", "restored")', '"deploying" != job.status',
        '"uploading"', 'deployment_state="creating"', 'job.status = "failed"', '"missing"']


def test_state_values_are_spelt_only_in_the_state_tables():
    found = []
    for path in sorted(SCANNED.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if not rel.startswith(NOT_SCANNED):
            found += [f"{rel}:{line}: {code}" for line, code in state_literals(path.read_text())]
    assert not found, "state values written as strings outside shared/machines/ (use the machine's enum, e.g. " \
                      "DatasetState.READY):\n" + "\n".join(found)
