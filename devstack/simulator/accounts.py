"""The Azure OpenAI accounts (resources) the simulator serves, and who may reach them.

*Default mode* (``accounts`` not configured): today's single resource. Every account name
in an ARM path exists (in ``location``), and every name shares the one data plane (files,
jobs, models), prefixed (``/accounts/<name>/openai/...``) or not (``/openai/...``).

*Configured mode* (``accounts``: a list of ``{name, subscription, resource_group, region}``):
only those resources exist, each in its region and with its own data plane at
``/accounts/<name>/openai/...`` (files, jobs, checkpoints, quotas, events, results, models,
deployments for inference); the unprefixed ``/openai/...`` is the first account's. ARM
answers ``ResourceNotFound`` (or ``SubscriptionNotFound`` / ``ResourceGroupNotFound``) for
anything else, and the region rules of ``catalog.py`` apply to each account's jobs and
fine-tuned deployments.

*Token reach* (``token_subscriptions``: ``{token: [subscription, ...] | "*"}``, key ``"*"``
for unlisted tokens; default: every token reaches every subscription): an ARM or Azure
Monitor call in a subscription the bearer token does not reach is ``403
AuthorizationFailed``; a deployment whose ``properties.model.source`` (or ``sourceAccount``)
is in a subscription neither the token nor an ``x-ms-authorization-auxiliary`` token reaches
is ``403 LinkedAuthorizationFailed``.
"""
from __future__ import annotations

import json
import re
import uuid
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Iterable, Optional

from .catalog import normalise_region
from .errors import SimError

if TYPE_CHECKING:
    from .config import SimConfig

__all__ = ["Account", "check_accounts", "check_token_subscriptions", "accounts_of", "configured",
           "default_account", "dataplane_account", "arm_account", "find_account", "parse_resource_id",
           "token_reaches", "client_id", "ACCOUNTS_HELP", "ACCOUNT_NAME_RE", "PREFIX_RE"]

ACCOUNT_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,62}[A-Za-z0-9]$|^[A-Za-z0-9]$")
# A data-plane request for one account: /accounts/<name>/openai/...
PREFIX_RE = re.compile(r"^/accounts/(?P<name>[^/]+)(?P<rest>/openai(?:/.*)?)$")
RESOURCE_ID_RE = re.compile(r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/"
                            r"Microsoft\.CognitiveServices/accounts/(?P<name>[^/]+)/?$", re.IGNORECASE)
ACCOUNTS_HELP = ('a JSON list [{"name": "aoai-a", "subscription": "<sub>", "resource_group": "<rg>", '
                 '"region": "swedencentral"}, ...], or NAME:SUBSCRIPTION:RESOURCE_GROUP:REGION[,...]')


@dataclass(frozen=True)
class Account:
    name: str
    subscription: str
    resource_group: str
    region: str

    @property
    def key(self) -> str:
        """The account's identity in the simulator's state (Azure account names are unique)."""
        return self.name.lower()

    @property
    def resource_id(self) -> str:
        return (f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}/providers/"
                f"Microsoft.CognitiveServices/accounts/{self.name}")

    def is_at(self, sub: str, rg: str, name: str) -> bool:
        return (self.subscription.lower(), self.resource_group.lower(), self.key) == \
            (sub.lower(), rg.lower(), name.lower())

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


# --------------------------------------------------------------------------- config values


def check_accounts(raw: Any, default_region: str = "swedencentral") -> list[dict]:
    """The ``accounts`` config value, normalised to a list of dicts; ValueError when malformed.
    Accepts a list, its JSON text, or ``NAME:SUBSCRIPTION:RESOURCE_GROUP[:REGION]`` entries
    separated by commas or spaces."""
    if isinstance(raw, str):
        text = raw.strip()
        if not text:
            return []
        if text[0] in "[{":
            try:
                raw = json.loads(text)
            except ValueError as exc:
                raise ValueError(f"not JSON: {exc}") from None
        else:
            raw = []
            for entry in re.split(r"[,\s]+", text):
                parts = entry.split(":")
                if len(parts) not in (3, 4):
                    raise ValueError(f"{entry!r}: expected NAME:SUBSCRIPTION:RESOURCE_GROUP[:REGION]")
                raw.append(dict(zip(("name", "subscription", "resource_group", "region"), parts)))
    if isinstance(raw, dict):
        raw = [raw]
    if not isinstance(raw, list):
        raise ValueError(f"expected {ACCOUNTS_HELP}")
    out: list[dict] = []
    seen: set[str] = set()
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise ValueError(f"accounts[{i}]: expected an object with name, subscription, resource_group, region")
        unknown = set(item) - {"name", "subscription", "resource_group", "region", "location"}
        if unknown:
            raise ValueError(f"accounts[{i}]: unknown field(s) {', '.join(sorted(unknown))}")
        name = item.get("name")
        if not isinstance(name, str) or not ACCOUNT_NAME_RE.match(name):
            raise ValueError(f"accounts[{i}]: name must be 1 to 64 letters, digits and '-', got {name!r}")
        if name.lower() in seen:
            raise ValueError(f"accounts[{i}]: the account name {name!r} is used twice (names are global in Azure)")
        seen.add(name.lower())
        values = {}
        for key in ("subscription", "resource_group"):
            value = item.get(key)
            if not isinstance(value, str) or not value.strip() or "/" in value:
                raise ValueError(f"accounts[{i}] ({name}): {key} is required (a non-empty string without '/')")
            values[key] = value.strip()
        region = item.get("region", item.get("location")) or default_region
        if not isinstance(region, str):
            raise ValueError(f"accounts[{i}] ({name}): region must be a string")
        out.append({"name": name, **values, "region": normalise_region(region)})
    return out


def check_token_subscriptions(raw: Any) -> dict[str, Any]:
    """The ``token_subscriptions`` config value: ``{token: [subscription, ...] | "*"}``."""
    if isinstance(raw, str):
        text = raw.strip()
        if not text:
            return {}
        try:
            raw = json.loads(text)
        except ValueError as exc:
            raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise ValueError('expected {"<token>": ["<subscription>", ...] | "*", "*": [...]}')
    out: dict[str, Any] = {}
    for token, subs in raw.items():
        if subs == "*":
            out[str(token)] = "*"
        elif isinstance(subs, list) and all(isinstance(s, str) for s in subs):
            out[str(token)] = sorted({s.lower() for s in subs})
        else:
            raise ValueError(f"token {'*' if token == '*' else '…'}: expected a list of subscription ids or \"*\"")
    return out


# --------------------------------------------------------------------------- lookups


def accounts_of(config: "SimConfig") -> list[Account]:
    return [Account(**a) for a in (config.accounts or [])]


def configured(config: "SimConfig") -> bool:
    return bool(config.accounts)


def default_account(config: "SimConfig") -> Optional[Account]:
    """The account of the unprefixed data plane (None in default mode)."""
    accounts = accounts_of(config)
    return accounts[0] if accounts else None


def find_account(config: "SimConfig", name: str) -> Optional[Account]:
    return next((a for a in accounts_of(config) if a.key == name.lower()), None)


def dataplane_account(config: "SimConfig", name: Optional[str]) -> Optional[Account]:
    """The account a data-plane request is for: None in default mode (one shared data plane),
    else the named account (``/accounts/<name>/...``) or the default one."""
    if not configured(config):
        return None
    if name is None:
        return default_account(config)
    account = find_account(config, name)
    if account is None:
        known = ", ".join(a.name for a in accounts_of(config))
        raise SimError(404, "", f"The Azure OpenAI resource '{name}' does not exist (this simulator serves: {known}).")
    return account


def arm_account(config: "SimConfig", sub: str, rg: str, name: str) -> Account:
    """The account at an ARM path, or the 404 ARM gives for a missing subscription, group or resource."""
    if not configured(config):
        return Account(name, sub, rg, normalise_region(config.location))
    accounts = accounts_of(config)
    for account in accounts:
        if account.is_at(sub, rg, name):
            return account
    if not any(a.subscription.lower() == sub.lower() for a in accounts):
        raise SimError(404, "SubscriptionNotFound", f"The subscription '{sub}' could not be found.")
    if not any(a.subscription.lower() == sub.lower() and a.resource_group.lower() == rg.lower() for a in accounts):
        raise SimError(404, "ResourceGroupNotFound", f"Resource group '{rg}' could not be found.")
    raise SimError(404, "ResourceNotFound",
                   f"The Resource 'Microsoft.CognitiveServices/accounts/{name}' under resource group '{rg}' was not "
                   "found. For more details please go to https://aka.ms/ARMResourceNotFoundFix")


def parse_resource_id(text: Any, where: str) -> tuple[str, str, str]:
    """(subscription, resource group, account name) of an account's resource id, or ARM's 400."""
    m = RESOURCE_ID_RE.match(text) if isinstance(text, str) else None
    if m is None:
        raise SimError(400, "LinkedInvalidPropertyId",
                       f"Property id '{text}' at path '{where}' is invalid. Expect fully qualified resource Id that "
                       "start with '/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/"
                       "Microsoft.CognitiveServices/accounts/{accountName}'.")
    return m.group("sub"), m.group("rg"), m.group("name")


# --------------------------------------------------------------------------- tokens


def token_reaches(config: "SimConfig", tokens: Iterable[Optional[str]], sub: str) -> bool:
    """Whether any of ``tokens`` may act in subscription ``sub``."""
    rules = config.token_subscriptions or {}
    if not rules:
        return True
    for token in tokens:
        if not token:
            continue
        allowed = rules.get(token, rules.get("*", "*"))
        if allowed == "*" or sub.lower() in allowed:
            return True
    return False


def client_id(token: Optional[str]) -> str:
    """A stable object id for a token, for error messages (the token itself is never echoed)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"simulator-token:{token or ''}"))
