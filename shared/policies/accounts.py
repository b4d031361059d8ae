"""The pool of Azure OpenAI accounts (resources) the service runs on.

The *default account* is the one of ``AZURE_OPENAI_ENDPOINT`` / ``AZURE_SUBSCRIPTION_ID`` /
``AZURE_RESOURCE_GROUP`` / ``AZURE_OPENAI_ACCOUNT``: with nothing else configured the pool
is that one account and the service behaves as it always has. ``AZURE_OPENAI_ACCOUNTS``
adds accounts (a JSON list), and may describe the default one too (an entry with its
name gives its region and training types):

    [{"name": "aoai-eus2", "endpoint": "https://aoai-eus2.openai.azure.com",
      "subscription": "<sub>", "resource_group": "<rg>", "region": "eastus2",
      "training_types": ["GlobalStandard"]}, ...]

``subscription`` and ``resource_group`` default to the default account's; ``region`` is
required for an added account; ``training_types`` (Standard, GlobalStandard,
DeveloperTier) default to all three. An account without a known region (the default one,
unless described) is taken to train and host whatever Azure accepts.

Rows written before the pool existed name no account: they are the default account's
(:func:`account_of`).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Iterable

__all__ = ["Account", "parse_accounts", "build_pool", "account_of", "ACCOUNT_TRAINING_TYPES"]

ACCOUNT_TRAINING_TYPES = ("Standard", "GlobalStandard", "DeveloperTier")
_TRAINING_TYPE_SPELLINGS = {t.lower(): t for t in ACCOUNT_TRAINING_TYPES} | {"developertier": "DeveloperTier",
                                                                             "developer": "DeveloperTier"}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,62}[A-Za-z0-9]|[A-Za-z0-9]")
_FIELDS = ("name", "endpoint", "subscription", "resource_group", "region", "training_types")


@dataclass(frozen=True)
class Account:
    """One Azure OpenAI resource of the pool."""

    name: str
    endpoint: str
    subscription: str
    resource_group: str
    region: str | None = None              # None: not known (Azure decides what it trains)
    training_types: tuple[str, ...] = ACCOUNT_TRAINING_TYPES
    default: bool = False

    @property
    def resource_id(self) -> str:
        return (f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}"
                f"/providers/Microsoft.CognitiveServices/accounts/{self.name}")

    @property
    def key(self) -> str:
        """Account names are global in Azure: the name, in lower case, identifies it."""
        return self.name.lower()

    def offers(self, training_type: str | None) -> bool:
        return normalise_training_type(training_type or "Standard") in self.training_types

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "endpoint": self.endpoint, "subscription": self.subscription,
                "resource_group": self.resource_group, "region": self.region,
                "training_types": list(self.training_types), "default": self.default}


def normalise_region(name: str) -> str:
    """``"Sweden Central"`` and ``"swedencentral"`` are one region."""
    return "".join(str(name).split()).lower()


def normalise_training_type(value: str) -> str:
    return _TRAINING_TYPE_SPELLINGS.get(str(value).strip().lower(), str(value).strip())


def _https(value: Any, where: str) -> str:
    if not isinstance(value, str) or not re.match(r"^https://[^\s/]+(:\d+)?(/.*)?$", value.strip()):
        raise ValueError(f"{where}: endpoint must be an https:// URL")
    return value.strip().rstrip("/")


def parse_accounts(raw: str) -> tuple[dict[str, Any], ...]:
    """``AZURE_OPENAI_ACCOUNTS``: its entries, checked one by one (ValueError naming the entry
    and field); the pool is completed by :func:`build_pool` with the default account."""
    text = raw.strip()
    if not text:
        return ()
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"not valid JSON ({exc})") from None
    if not isinstance(doc, list):
        raise ValueError('expected a JSON list of {"name", "endpoint", "region", ...} objects')
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i, item in enumerate(doc, 1):
        where = f"entry {i}"
        if not isinstance(item, dict):
            raise ValueError(f"{where}: expected an object with name, endpoint, region")
        unknown = sorted(set(item) - set(_FIELDS))
        if unknown:
            raise ValueError(f"{where}: unknown field(s) {unknown} (known: {', '.join(_FIELDS)})")
        name = item.get("name")
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ValueError(f"{where}: name must be an account name (1-64 letters, digits, '-'), got {name!r}")
        where = f"entry {i} ({name})"
        if name.lower() in seen:
            raise ValueError(f"{where}: the account is listed twice")
        seen.add(name.lower())
        entry: dict[str, Any] = {"name": name}
        if item.get("endpoint") is not None:
            entry["endpoint"] = _https(item["endpoint"], where)
        for key in ("subscription", "resource_group"):
            value = item.get(key)
            if value is not None:
                if not isinstance(value, str) or not value.strip() or "/" in value:
                    raise ValueError(f"{where}: {key} must be a non-empty string without '/'")
                entry[key] = value.strip()
        region = item.get("region")
        if region is not None:
            if not isinstance(region, str) or not region.strip():
                raise ValueError(f"{where}: region must be a region name such as 'swedencentral'")
            entry["region"] = normalise_region(region)
        types = item.get("training_types")
        if types is not None:
            if not isinstance(types, list) or not types or not all(isinstance(t, str) for t in types):
                raise ValueError(f"{where}: training_types must be a non-empty list of "
                                 f"{', '.join(ACCOUNT_TRAINING_TYPES)}")
            spelled = [normalise_training_type(t) for t in types]
            bad = [t for t in spelled if t not in ACCOUNT_TRAINING_TYPES]
            if bad:
                raise ValueError(f"{where}: unknown training type {bad[0]!r} (known: "
                                 f"{', '.join(ACCOUNT_TRAINING_TYPES)})")
            entry["training_types"] = tuple(dict.fromkeys(spelled))
        out.append(entry)
    return tuple(out)


def build_pool(entries: Iterable[dict[str, Any]], *, endpoint: str, subscription: str, resource_group: str,
               account: str) -> tuple[Account, ...]:
    """The pool: the default account first, then the added ones in their order. ValueError
    (naming the entry) for an added account without endpoint or region, or an entry for the
    default account that contradicts its settings."""
    default = Account(name=account, endpoint=endpoint.rstrip("/"), subscription=subscription,
                      resource_group=resource_group, default=True)
    added: list[Account] = []
    for i, entry in enumerate(entries, 1):
        where = f"entry {i} ({entry['name']})"
        if entry["name"].lower() == account.lower():
            for key, mine in (("endpoint", default.endpoint), ("subscription", subscription),
                              ("resource_group", resource_group)):
                if key in entry and str(entry[key]).lower() != str(mine).lower():
                    raise ValueError(f"{where}: this is the default account (AZURE_OPENAI_ACCOUNT), but its {key} "
                                     f"differs from the default account's settings")
            default = Account(name=default.name, endpoint=default.endpoint, subscription=subscription,
                              resource_group=resource_group, region=entry.get("region"),
                              training_types=entry.get("training_types", ACCOUNT_TRAINING_TYPES), default=True)
            continue
        for key in ("endpoint", "region"):
            if key not in entry:
                raise ValueError(f"{where}: {key} is required for an account other than the default one")
        added.append(Account(name=entry["name"], endpoint=entry["endpoint"],
                             subscription=entry.get("subscription", subscription),
                             resource_group=entry.get("resource_group", resource_group), region=entry["region"],
                             training_types=entry.get("training_types", ACCOUNT_TRAINING_TYPES)))
    endpoints = [a.endpoint.lower() for a in (default, *added)]
    for a in added:
        if endpoints.count(a.endpoint.lower()) > 1:
            raise ValueError(f"entry ({a.name}): its endpoint is another account's")
    return (default, *added)


def account_of(row: Any, pool: tuple[Account, ...]) -> Account:
    """The account a job or deployment row belongs to: its ``account`` field, else (a row written
    before the pool existed) the default account. An account no longer in the pool raises
    KeyError naming it: its work is not silently moved elsewhere."""
    name = (row.get("account") if hasattr(row, "get") else None) or None
    if not name:
        return pool[0]
    for account in pool:
        if account.key == str(name).lower():
            return account
    raise KeyError(f"the account {name!r} is not in the pool (AZURE_OPENAI_ACCOUNTS) any more")
