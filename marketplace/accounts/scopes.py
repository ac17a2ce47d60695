"""API key scopes.

A scope is a string:
- `algo://OWNER/NAME/VERSION` patterns say which models a key may call. A segment may be
  `*`; a trailing `*` segment matches anything below it (`algo://*`, `algo://acme/*`,
  `algo://acme/sentiment/*`); a version segment may end in `.*` (`algo://acme/sentiment/1.*`).
  `algo://acme/sentiment` means every version of that model.
- `catalog:write` allows publishing and managing models.
- `billing:read` allows reading usage reports.
- `data:read` allows reading hosted data and connected buckets (`data://`, `s3://`) as the
  key's owner may; `data:write` allows writing and deleting there too (and reading: a key
  that may write a file may read it back).

Matching is done on the canonical (lowercase, resolved) owner, name and version the gateway
found, never on the raw request path, so case, encoding and version aliases cannot bypass it.
"""

from __future__ import annotations

import re
from fnmatch import fnmatchcase

CATALOG_WRITE = "catalog:write"
BILLING_READ = "billing:read"
DATA_READ = "data:read"
DATA_WRITE = "data:write"
ALL_MODELS = "algo://*"
FULL_ACCESS = (ALL_MODELS, CATALOG_WRITE, BILLING_READ, DATA_READ, DATA_WRITE)
PERMISSION_SCOPES = (CATALOG_WRITE, BILLING_READ, DATA_READ, DATA_WRITE)

_SEGMENT = r"(\*|[a-z0-9][a-z0-9_-]{0,63})"
_VERSION_SEGMENT = r"(\*|\d+(\.\d+){0,2}(\.\*)?|\d+(\.\d+){0,2}|[0-9a-f]{12,64})"
_ALGO_PATTERN = re.compile(
    rf"^algo://(\*|{_SEGMENT}/\*|{_SEGMENT}/{_SEGMENT}(/{_VERSION_SEGMENT})?)$"
)


class InvalidScope(ValueError):
    pass


def normalise_scopes(scopes) -> list[str]:
    """Validate a list of scope strings, returning it de-duplicated in a stable order."""
    if not isinstance(scopes, list | tuple):
        raise InvalidScope("scopes must be a list of strings")
    result: list[str] = []
    for scope in scopes:
        if not isinstance(scope, str):
            raise InvalidScope("scopes must be a list of strings")
        scope = scope.strip()
        if scope.lower().startswith("algo://"):
            scope = scope.lower()
        if scope not in PERMISSION_SCOPES and not _ALGO_PATTERN.match(scope):
            raise InvalidScope(
                f"{scope!r} is not a scope: use algo://OWNER/NAME/VERSION patterns "
                f"(e.g. algo://*, algo://acme/*, algo://acme/sentiment/*), "
                f"{CATALOG_WRITE}, {BILLING_READ}, {DATA_READ} or {DATA_WRITE}"
            )
        if scope not in result:
            result.append(scope)
    return result


def _pattern_matches(pattern: str, owner: str, name: str, version: str) -> bool:
    parts = pattern.removeprefix("algo://").split("/")
    target = [owner, name, version]
    if parts[-1] == "*" and len(parts) < 3:
        # A trailing wildcard covers everything below its level.
        return all(fnmatchcase(t, p) for t, p in zip(target, parts[:-1], strict=False))
    if len(parts) == 2:
        parts.append("*")
    return all(fnmatchcase(value, part) for value, part in zip(target, parts, strict=True))


def allows_model(scopes: list[str], *, owner: str, name: str, version: str) -> bool:
    return any(
        scope.startswith("algo://") and _pattern_matches(scope, owner, name, version)
        for scope in scopes
    )


def allows(scopes: list[str], permission: str) -> bool:
    return permission in scopes


def allows_data(scopes: list[str], *, write: bool) -> bool:
    """Whether the scopes allow reading (or, with `write`, changing) data."""
    return DATA_WRITE in scopes or (not write and DATA_READ in scopes)


def is_full_access(scopes: list[str]) -> bool:
    return all(scope in scopes for scope in FULL_ACCESS)
