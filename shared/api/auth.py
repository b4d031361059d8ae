"""Who may do what: app roles on every route.

In Azure, App Service authentication (Easy Auth, ``infra/modules/auth.bicep``) signs
people in with Entra ID and passes the signed-in principal to the app as request
headers it sets itself (a client cannot: the platform drops them from incoming
requests): ``X-MS-CLIENT-PRINCIPAL`` (base64 JSON ``{"auth_typ", "claims": [{"typ",
"val"}], "name_typ", "role_typ"}``; app roles are claims of type ``roles``, or of the
``role_typ`` URI), ``X-MS-CLIENT-PRINCIPAL-NAME`` and ``-ID``. Easy Auth lets
unauthenticated requests through (``AllowAnonymous``): automation calls with the
function key alone, and the function host still checks that key on every route.

Two roles, the app registration's app roles (see README "Who may do what"):

* ``Reader``: the dashboard and every ``GET``;
* ``Operator``: everything a Reader may, and every other method (start, cancel,
  pause and resume jobs, change a deployment's keep-alive, roll back).

A request without a principal came in with the function key alone; its role is
``API_KEY_ROLE`` (``operator``, ``reader`` or ``none``). The principal headers are
believed only where the platform sets them: when App Service authentication is on
(``WEBSITE_AUTH_ENABLED``, injected by App Service; the local runner's
``LOCAL_PRINCIPAL`` stands in for it). Elsewhere they are ignored, since anyone
holding the key could write them.

A refused request gets ``403`` problem+json naming the role it needs and the one
the caller holds; no identity at all where keys are not allowed (or a principal
header that cannot be read) gets ``401``.
"""
from __future__ import annotations

import base64
import binascii
import json
import logging
import uuid
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from .http import ApiError, Request

log = logging.getLogger(__name__)

__all__ = ["Principal", "AccessPolicy", "authorize", "required_role", "parse_principal", "principal_headers",
           "parse_local_principal", "ROLES", "ROLE_NAMES", "KEY_ACTOR", "API_KEY_ROLES", "PRINCIPAL_HEADERS"]

READER, OPERATOR, NONE = "reader", "operator", "none"
ROLES = (READER, OPERATOR)                       # each includes the ones before it
ROLE_NAMES = {READER: "Reader", OPERATOR: "Operator", NONE: "none"}   # the app roles' values
API_KEY_ROLES = (OPERATOR, READER, NONE)
KEY_ACTOR = "function key"                       # who a change was made by, for a key-only request

PRINCIPAL = "x-ms-client-principal"
PRINCIPAL_NAME = "x-ms-client-principal-name"
PRINCIPAL_ID = "x-ms-client-principal-id"
PRINCIPAL_IDP = "x-ms-client-principal-idp"
PRINCIPAL_HEADERS = (PRINCIPAL, PRINCIPAL_NAME, PRINCIPAL_ID, PRINCIPAL_IDP)

ROLE_CLAIM = "roles"
ROLE_URI = "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"
NAME_URI = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name"
_NAME_CLAIMS = ("name", "preferred_username", NAME_URI, "upn",
                "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn",
                "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress")
_ID_CLAIMS = ("http://schemas.microsoft.com/identity/claims/objectidentifier", "oid")
MAX_PRINCIPAL_CHARS = 32 * 1024
_URLSAFE = str.maketrans("-_", "+/")
NAME_CHARS = 200


@dataclass(frozen=True)
class Principal:
    """Who is asking: a signed-in person or application (``via`` the identity provider, e.g.
    ``aad``) with its app roles, or the function key alone (``via`` ``key``)."""

    name: str
    roles: frozenset[str]          # app role values as the token carries them
    id: str | None = None
    via: str = "key"

    @property
    def role(self) -> str:
        """The highest of this service's roles held: ``operator``, ``reader`` or ``none``."""
        held = {r.strip().lower() for r in self.roles}
        for role in reversed(ROLES):
            if role in held:
                return role
        return NONE

    @property
    def actor(self) -> str:
        """Who a change is recorded as made by (rows' history, notifications)."""
        return self.name

    def holds(self, required: str) -> bool:
        return self.role != NONE and ROLES.index(self.role) >= ROLES.index(required)


@dataclass(frozen=True)
class AccessPolicy:
    """What the settings say: the function key's role, and whether the principal headers
    come from the platform (App Service authentication is on)."""

    api_key_role: str = OPERATOR
    trust_principal: bool = False

    @classmethod
    def from_settings(cls, settings: Any) -> "AccessPolicy":
        return cls(api_key_role=settings.api_key_role, trust_principal=bool(settings.platform_auth))


def required_role(method: str) -> str:
    """Reading (GET, HEAD) needs Reader; every other method changes something: Operator."""
    return READER if method.upper() in ("GET", "HEAD") else OPERATOR


# ----------------------------------------------------------------------------- the header
def _claims(doc: Mapping[str, Any]) -> list[tuple[str, str]]:
    raw = doc.get("claims", [])
    if not isinstance(raw, list):
        raise ValueError("\"claims\" is not a list")
    out = []
    for i, claim in enumerate(raw):
        if not isinstance(claim, dict) or not isinstance(claim.get("typ"), str):
            raise ValueError(f"claim {i} is not an object with a string \"typ\"")
        val = claim.get("val")
        if isinstance(val, (int, float, bool)):
            val = str(val)
        if not isinstance(val, str):
            raise ValueError(f"claim {i} ({claim['typ'][:60]!r}) has no string \"val\"")
        out.append((claim["typ"], val))
    return out


def parse_principal(header: str, name: str | None = None, principal_id: str | None = None,
                    idp: str | None = None) -> Principal:
    """The principal App Service authentication passes on; ValueError (saying what is wrong,
    never echoing the value) when the header is not base64 JSON of that shape."""
    text = header.strip()
    if len(text) > MAX_PRINCIPAL_CHARS:
        raise ValueError(f"longer than {MAX_PRINCIPAL_CHARS} characters")
    try:  # standard base64 (what App Service sends); the URL-safe alphabet is taken too
        bare = text.translate(_URLSAFE).rstrip("=")
        raw = base64.b64decode(bare + "=" * (-len(bare) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not base64") from None
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ValueError("not base64-encoded JSON") from None
    if not isinstance(doc, dict):
        raise ValueError("not a JSON object")
    claims = _claims(doc)
    role_types = {ROLE_CLAIM, ROLE_URI}
    if isinstance(doc.get("role_typ"), str) and doc["role_typ"]:
        role_types.add(doc["role_typ"])
    roles = frozenset(v for t, v in claims if t in role_types and v)
    name_types = ((doc["name_typ"],) if isinstance(doc.get("name_typ"), str) and doc["name_typ"] else ()) \
        + _NAME_CLAIMS
    by_type: dict[str, str] = {}
    for t, v in claims:
        if v:
            by_type.setdefault(t, v)
    ident = (principal_id or "").strip() or next((by_type[t] for t in _ID_CLAIMS if t in by_type), None)
    shown = (name or "").strip() or next((by_type[t] for t in name_types if t in by_type), None) or ident
    if not shown:
        raise ValueError("names nobody (no name claim and no X-MS-CLIENT-PRINCIPAL-NAME or -ID)")
    via = (idp or "").strip() or (doc.get("auth_typ") if isinstance(doc.get("auth_typ"), str) else "") or "aad"
    return Principal(name=_printable(shown), roles=roles, id=ident, via=via)


def _printable(text: str) -> str:
    return "".join(c if c.isprintable() else "?" for c in text)[:NAME_CHARS]


def principal_headers(name: str, roles: Iterable[str], *, idp: str = "aad",
                      principal_id: str | None = None) -> dict[str, str]:
    """The headers App Service authentication sets for a signed-in Entra ID principal with
    these app roles (what the local runner passes on from ``LOCAL_PRINCIPAL``)."""
    ident = principal_id or str(uuid.uuid5(uuid.NAMESPACE_URL, f"ft-autopilot-local:{name}"))
    claims = [{"typ": "http://schemas.microsoft.com/identity/claims/objectidentifier", "val": ident},
              {"typ": "name", "val": name}, {"typ": "preferred_username", "val": name}]
    claims += [{"typ": ROLE_CLAIM, "val": r} for r in roles]
    doc = {"auth_typ": idp, "claims": claims, "name_typ": NAME_URI, "role_typ": ROLE_URI}
    encoded = base64.b64encode(json.dumps(doc, separators=(",", ":")).encode()).decode()
    return {"X-MS-CLIENT-PRINCIPAL": encoded, "X-MS-CLIENT-PRINCIPAL-NAME": name,
            "X-MS-CLIENT-PRINCIPAL-ID": ident, "X-MS-CLIENT-PRINCIPAL-IDP": idp}


def parse_local_principal(text: str) -> tuple[str, tuple[str, ...]]:
    """``LOCAL_PRINCIPAL``: ``name:Role1,Role2`` (``alice@example.com:Operator``; no roles
    after the colon: signed in, no role) or JSON ``{"name": ..., "roles": [...]}``.
    ValueError says what is wrong."""
    value = text.strip()
    if not value:
        raise ValueError("empty: give name:Role1,Role2 or {\"name\": ..., \"roles\": [...]}")
    if value.startswith("{"):
        try:
            doc = json.loads(value)
        except ValueError as exc:
            raise ValueError(f"not valid JSON ({exc})") from None
        unknown = set(doc) - {"name", "roles"} if isinstance(doc, dict) else set()
        if not isinstance(doc, dict) or unknown:
            raise ValueError("expected a JSON object with \"name\" and \"roles\" only")
        name, roles = doc.get("name"), doc.get("roles", [])
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise ValueError("\"roles\" must be a list of strings")
    else:
        name, sep, rest = value.rpartition(":")
        if not sep:
            raise ValueError(f"expected name:Role1,Role2 (a colon before the roles), got {value[:80]!r}")
        roles = [r.strip() for r in rest.split(",") if r.strip()]
    if not isinstance(name, str) or not name.strip():
        raise ValueError("the name is empty")
    known = {ROLE_NAMES[r].lower() for r in ROLES}
    unknown_roles = [r for r in roles if r.lower() not in known]
    if unknown_roles:
        raise ValueError(f"unknown role(s) {unknown_roles} (the app roles are {', '.join(ROLE_NAMES[r] for r in ROLES)})")
    return name.strip(), tuple(roles)


# ----------------------------------------------------------------------------- the check
_warned_untrusted = False


def identify(request: Request, policy: AccessPolicy) -> Principal | None:
    """The caller: the signed-in principal (when the platform sets the headers), else the
    function key alone (None when ``API_KEY_ROLE`` is none). 401 for a header it cannot read."""
    global _warned_untrusted
    header = request.header(PRINCIPAL)
    if header is not None and policy.trust_principal:
        try:
            return parse_principal(header, request.header(PRINCIPAL_NAME), request.header(PRINCIPAL_ID),
                                   request.header(PRINCIPAL_IDP))
        except ValueError as exc:
            raise ApiError("unauthenticated", f"X-MS-CLIENT-PRINCIPAL: the signed-in principal cannot be read "
                                              f"({exc}); sign in again", headers={"WWW-Authenticate": "Bearer"}) from None
    if header is not None and not _warned_untrusted:
        _warned_untrusted = True
        log.warning("A request carries X-MS-CLIENT-PRINCIPAL but App Service authentication is not on "
                    "(WEBSITE_AUTH_ENABLED); the header is ignored and the request has the function key's role")
    if policy.api_key_role == NONE:
        return None
    return Principal(name=KEY_ACTOR, roles=frozenset({ROLE_NAMES[policy.api_key_role]}), via="key")


def authorize(request: Request, policy: AccessPolicy, required: str | None = None) -> Principal:
    """The caller, if it holds ``required`` (default: what the method needs); else ApiError
    401 (nobody) or 403 (a role too low), naming the role needed and the one held."""
    need = required or required_role(request.method)
    principal = identify(request, policy)
    what = f"{request.method} {request.path}"
    if principal is None:
        raise ApiError("unauthenticated",
                       f"{what}: no signed-in identity, and the function key alone is not allowed (API_KEY_ROLE is "
                       f"none); sign in with Entra ID (/.auth/login/aad) or send an Entra ID bearer token",
                       headers={"WWW-Authenticate": "Bearer"}, required_role=ROLE_NAMES[need], held_role="none")
    if not principal.holds(need):
        held = ROLE_NAMES[principal.role]
        who = ("the function key" + f" (API_KEY_ROLE is {policy.api_key_role})") if principal.via == "key" \
            else principal.name
        if principal.via != "key":
            hint = " (ask an owner of the app registration to assign you the role in Entra ID, Enterprise applications)"
        elif policy.trust_principal:
            hint = "; sign in with Entra ID (/.auth/login/aad) to act with your own role"
        else:
            hint = ""
        raise ApiError("forbidden", f"{what} needs the {ROLE_NAMES[need]} role; {who} holds "
                                    f"{'no role of this service' if principal.role == NONE else held}{hint}",
                       required_role=ROLE_NAMES[need], held_role=held, principal=principal.name)
    return principal
