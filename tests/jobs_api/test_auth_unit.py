"""Who may do what, without storage: reading the principal App Service authentication
passes on (``X-MS-CLIENT-PRINCIPAL``), the role each route needs, the answers a refused
request gets, ``LOCAL_PRINCIPAL`` and ``API_KEY_ROLE``."""
from __future__ import annotations

import base64
import json
from types import SimpleNamespace

import pytest

from shared.api import Request, handle
from shared.api.auth import (ROLE_URI, AccessPolicy, parse_local_principal, parse_principal, principal_headers,
                             required_role)
from shared.api.openapi import openapi_document
from shared.api.routes import OPERATIONS

from .openapi_check import OpenApiChecker


def b64(doc) -> str:
    return base64.b64encode(json.dumps(doc).encode()).decode()


# What App Service sends for an Entra ID user (claims as its default mapping names them).
ENTRA = {
    "auth_typ": "aad",
    "claims": [
        {"typ": "aud", "val": "11111111-2222-3333-4444-555555555555"},
        {"typ": "http://schemas.microsoft.com/identity/claims/objectidentifier",
         "val": "0f0e0d0c-0b0a-0908-0706-050403020100"},
        {"typ": "name", "val": "Alice Example"},
        {"typ": "preferred_username", "val": "alice@contoso.com"},
        {"typ": "roles", "val": "Reader"},
        {"typ": "roles", "val": "Operator"},
        {"typ": "ver", "val": "2.0"},
    ],
    "name_typ": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name",
    "role_typ": ROLE_URI,
}


def ctx(api_key_role: str = "operator", platform_auth: bool = True):
    return SimpleNamespace(settings=SimpleNamespace(api_key_role=api_key_role, platform_auth=platform_auth))


def call(method: str, path: str, headers=None, c=None):
    r = handle(Request.build(method, path, headers=headers), ctx=c or ctx())
    OpenApiChecker(openapi_document()).check(method, path, r.status, {k.lower(): v for k, v in r.headers.items()},
                                             r.body)
    return r.status, r.json()


# ------------------------------------------------------------------------------ the header


def test_an_entra_principal_is_read_with_its_app_roles_and_name():
    p = parse_principal(b64(ENTRA), name="alice@contoso.com", principal_id="0f0e0d0c-0b0a-0908-0706-050403020100")
    assert (p.name, p.id, p.via) == ("alice@contoso.com", "0f0e0d0c-0b0a-0908-0706-050403020100", "aad")
    assert p.roles == {"Reader", "Operator"} and p.role == "operator"
    assert p.holds("reader") and p.holds("operator")


def test_without_the_name_header_the_name_claim_names_the_principal():
    p = parse_principal(b64(ENTRA))
    assert p.name == "Alice Example" and p.id == "0f0e0d0c-0b0a-0908-0706-050403020100"


def test_roles_under_the_role_typ_uri_count_and_case_does_not_matter():
    doc = {"auth_typ": "aad", "role_typ": ROLE_URI, "claims": [{"typ": ROLE_URI, "val": "reader"}]}
    p = parse_principal(b64(doc), name="svc")
    assert p.role == "reader" and not p.holds("operator")


def test_a_principal_with_no_role_of_this_service_holds_none():
    doc = {**ENTRA, "claims": [c for c in ENTRA["claims"] if c["typ"] != "roles"] + [{"typ": "roles", "val": "Admin"}]}
    p = parse_principal(b64(doc))
    assert p.role == "none" and not p.holds("reader")


def test_the_headers_the_runner_sets_read_back_as_given():
    headers = principal_headers("bob@example.com", ["Reader"])
    p = parse_principal(headers["X-MS-CLIENT-PRINCIPAL"], headers["X-MS-CLIENT-PRINCIPAL-NAME"],
                        headers["X-MS-CLIENT-PRINCIPAL-ID"])
    assert (p.name, p.role) == ("bob@example.com", "reader") and p.id == headers["X-MS-CLIENT-PRINCIPAL-ID"]


@pytest.mark.parametrize("header,says", [
    ("not base64 at all!", "not base64"),
    (base64.b64encode(b"\xff\xfe").decode(), "not base64-encoded JSON"),
    (base64.b64encode(b"{nope").decode(), "not base64-encoded JSON"),
    (b64([1, 2]), "not a JSON object"),
    (b64({"claims": "roles=Operator"}), "\"claims\" is not a list"),
    (b64({"claims": [{"val": "Operator"}]}), "claim 0 is not an object with a string \"typ\""),
    (b64({"claims": [{"typ": "roles"}]}), "claim 0 ('roles') has no string \"val\""),
    (b64({"claims": [{"typ": "roles", "val": "Operator"}]}), "names nobody"),
    ("A" * 40000, "longer than"),
])
def test_a_malformed_header_says_what_is_wrong(header, says):
    with pytest.raises(ValueError, match=None) as exc:
        parse_principal(header)
    assert says in str(exc.value)


@pytest.mark.parametrize("header", ["not base64 at all!", b64([1]), b64({"claims": 5})])
def test_a_malformed_header_is_answered_401_not_500(header):
    status, body = call("GET", "/api/jobs", {"X-MS-CLIENT-PRINCIPAL": header})
    assert status == 401 and body["type"].endswith(":unauthenticated")
    assert body["detail"].startswith("X-MS-CLIENT-PRINCIPAL: the signed-in principal cannot be read (")
    assert header not in body["detail"]


# ------------------------------------------------------------------------------ the check


def test_every_get_needs_reader_and_every_other_method_operator():
    assert {op.method: required_role(op.method) for op in OPERATIONS} == {
        "GET": "reader", "POST": "operator", "PATCH": "operator"}


def test_the_openapi_document_names_each_operations_role_and_its_401_and_403():
    doc = openapi_document()
    for path, item in doc["paths"].items():
        for method, op in item.items():
            assert op["x-required-role"] == ("Reader" if method == "get" else "Operator"), (path, method)
            assert {"401", "403"} <= set(op["responses"]), (path, method)
    assert "Who may do what" in doc["info"]["description"]


def test_a_reader_passes_a_get_and_is_refused_a_post():
    reader = principal_headers("bob@example.com", ["Reader"])
    status, body = call("GET", "/api/jobs?limit=0", reader)
    assert status == 400 and body["type"].endswith(":invalid-parameter")   # authorized; then validated
    status, body = call("POST", "/api/jobs", reader)
    assert status == 403 and body["required_role"] == "Operator" and body["held_role"] == "Reader"
    assert body["principal"] == "bob@example.com" and body["instance"] == "/api/jobs"


def test_an_operator_passes_a_post():
    status, body = call("POST", "/api/jobs", principal_headers("alice", ["Operator"]))
    assert status == 400 and body["type"].endswith(":invalid-json")   # authorized; the empty body is refused


@pytest.mark.parametrize("role,get,post", [("operator", 400, 400), ("reader", 400, 403), ("none", 401, 401)])
def test_a_request_without_a_principal_has_the_function_keys_role(role, get, post):
    c = ctx(api_key_role=role)
    assert call("GET", "/api/jobs?limit=0", c=c)[0] == get
    status, body = call("POST", "/api/jobs", c=c)
    assert status == post
    if post == 403:
        assert body["principal"] == "function key" and "API_KEY_ROLE is reader" in body["detail"]
    if post == 401:
        assert "API_KEY_ROLE is none" in body["detail"] and body["required_role"] == "Operator"


def test_principal_headers_are_ignored_unless_app_service_authentication_is_on():
    # Without Easy Auth anyone with the key could write them: the key's role stands.
    forged = principal_headers("mallory", ["Operator"])
    status, body = call("POST", "/api/jobs", forged, c=ctx(api_key_role="reader", platform_auth=False))
    assert status == 403 and body["principal"] == "function key"
    # Not even read: a malformed one is no 401 either.
    assert call("GET", "/api/jobs?limit=0", {"X-MS-CLIENT-PRINCIPAL": "%%%"}, c=ctx(platform_auth=False))[0] == 400


def test_the_policy_comes_from_the_settings(monkeypatch):
    from shared.settings import Settings, SettingsError
    from tests.foundation.test_settings import ROOT

    values = json.loads((ROOT / "local.settings.sample.json").read_text())["Values"]
    s = Settings.from_env({**values, "API_KEY_ROLE": "reader", "WEBSITE_AUTH_ENABLED": "True"})
    assert AccessPolicy.from_settings(s) == AccessPolicy(api_key_role="reader", trust_principal=True)
    s = Settings.from_env(values)
    assert AccessPolicy.from_settings(s) == AccessPolicy(api_key_role="operator", trust_principal=False)
    with pytest.raises(SettingsError, match="API_KEY_ROLE is malformed"):
        Settings.from_env({**values, "API_KEY_ROLE": "admin"})


# ------------------------------------------------------------------------------ LOCAL_PRINCIPAL


@pytest.mark.parametrize("value,expected", [
    ("alice@example.com:Operator", ("alice@example.com", ("Operator",))),
    ("bob:Reader, Operator", ("bob", ("Reader", "Operator"))),
    ("carol:", ("carol", ())),
    ('{"name": "dave", "roles": ["reader"]}', ("dave", ("reader",))),
])
def test_local_principal_forms(value, expected):
    assert parse_local_principal(value) == expected


@pytest.mark.parametrize("value,says", [
    ("alice", "a colon before the roles"),
    (":Operator", "the name is empty"),
    ("alice:Admin", "unknown role(s) ['Admin']"),
    ('{"name": "x", "roles": "Reader"}', "\"roles\" must be a list"),
    ('{"name": "x", "role": []}', "\"name\" and \"roles\" only"),
    ("{nope", "not valid JSON"),
])
def test_a_malformed_local_principal_says_what_is_wrong(value, says):
    with pytest.raises(ValueError) as exc:
        parse_local_principal(value)
    assert says in str(exc.value)


def test_the_runner_names_the_setting_when_local_principal_is_malformed():
    from devstack.runner.runner import easy_auth_headers

    with pytest.raises(ValueError, match="LOCAL_PRINCIPAL is malformed: unknown role"):
        easy_auth_headers("alice:Admin")
    assert easy_auth_headers("") is None and easy_auth_headers("anonymous") == {}
