"""The Jobs API fuzzed from its own OpenAPI document (schemathesis, a bounded number of
examples per operation, a fixed seed, loopback only): no answer is a 5xx, and every
4xx is application/problem+json."""
from __future__ import annotations

import hypothesis
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck

from .conftest import MODEL, chat_jsonl, drop

MAX_EXAMPLES = 25


@pytest.fixture
def fuzz_schema(runner, app_env):
    from shared.api.openapi import openapi_document
    from shared.context import get_context
    from shared.intake import Intake

    # Something to find: a ready dataset, a rejected one, and a job on the ready one.
    from azure.storage.blob import BlobClient

    conn, container = app_env["AzureWebJobsStorage"], app_env["DATASETS_CONTAINER"]
    for name, data in ((f"{MODEL}/fuzz.jsonl", chat_jsonl(12, "fuzz")), (f"{MODEL}/bad.jsonl", b"{not json\n")):
        drop(app_env, name, data)
        Intake(get_context(), poll_interval=0.1).process(BlobClient.from_connection_string(conn, container, name))
    assert runner.base_url.startswith("http://127.0.0.1:")  # loopback only
    schema = schemathesis.openapi.from_dict(openapi_document())
    schema.config.update(base_url=runner.base_url, request_timeout=30)
    return schema


@pytest.fixture(scope="module")
def session():
    s = requests.Session()
    s.trust_env = False  # never through a proxy: the runner is on loopback
    yield s
    s.close()


def _header(response, name: str) -> str:
    value = {k.lower(): v for k, v in response.headers.items()}.get(name, "")
    return value[0] if isinstance(value, list) else value


def test_no_server_errors_and_every_client_error_is_a_problem(fuzz_schema, session):
    """Every operation of the document, MAX_EXAMPLES generated requests each (fixed seed)."""
    problems: list = []
    statuses: list[int] = []
    operations = [result.ok() for result in fuzz_schema.get_all_operations()]
    assert len(operations) >= 10

    for operation in operations:
        @hypothesis.given(case=operation.as_strategy())
        @hypothesis.settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
                             suppress_health_check=list(HealthCheck),
                             phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate])
        def check(case):
            response = case.call(session=session)
            statuses.append(response.status_code)
            where = (case.method, case.formatted_path, str(case.body)[:200])
            if response.status_code >= 500:
                problems.append((*where, response.status_code, response.text[:300]))
            elif response.status_code >= 400:
                media = _header(response, "content-type")
                if not media.startswith("application/problem+json"):
                    problems.append((*where, response.status_code, media))
                else:
                    body = response.json()
                    if body.get("status") != response.status_code or \
                            not str(body.get("type", "")).startswith("urn:ft-autopilot:problem:"):
                        problems.append((*where, "problem body", body))

        check()
    assert problems == []
    # The generated requests reached the handlers (not only the router's 404/405).
    assert len(statuses) >= len(operations) * 5 and {200, 400} <= set(statuses), sorted(set(statuses))
