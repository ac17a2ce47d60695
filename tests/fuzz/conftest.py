"""A small real world for fuzzing the /v1 API: two teams, a public and a private model with
published versions, real calls (so usage, invocations and errors exist), a budget, a webhook,
a price, and keys of several scopes.

Everything is committed (transactional_db): the runner service looks builds up from threads
of its own. Each fuzzed request then runs inside a savepoint that is rolled back, so a
DELETE or a revoked key never changes the world the next example sees."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from decimal import Decimal

import pytest
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections
from rest_framework.test import APIClient

from billing.budgets import services as billing_services
from catalog import services as catalog_services
from marketplace.accounts.models import Role
from marketplace.accounts.scopes import BILLING_READ
from tests.factories import MembershipFactory, TeamFactory, UserFactory, make_key
from tests.gateway.conftest import publish, runner, storage  # noqa: F401 - fixtures used below

ECHO = {
    "model.toml": """
name = "echo"
title = "Echo"
tagline = "Returns what it gets; raises on {fail: ...}"
runtime = "python"
entrypoint = "predict.py:apply"
license = "mit"
tags = ["demo", "utility"]
task = "utility"
framework = "none"
[io]
sample_input = {text = "hello"}
[pricing]
royalty_per_call = "0.0010"
""",
    "predict.py": """
def apply(data):
    if isinstance(data, dict) and "fail" in data:
        raise ValueError(str(data["fail"]))
    if isinstance(data, bytes):
        return data[::-1]
    return {"echo": data}
""",
    "README.md": "# Echo\n\nReturns its input.\n",
}

VAULT = {
    "model.toml": ECHO["model.toml"]
    .replace('name = "echo"', 'name = "vault"')
    .replace('title = "Echo"', 'title = "Vault"'),
    "predict.py": ECHO["predict.py"],
}


@dataclass
class Caller:
    name: str
    secret: str | None

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Simple {self.secret}"} if self.secret else {}


@dataclass
class World:
    callers: list[Caller]
    # Real values for every path parameter of the API, by parameter name; `models` keeps
    # owner, name, versions and builds of one model together.
    models: list[dict] = field(default_factory=list)
    values: dict[str, list] = field(default_factory=dict)

    def path_parameter_sets(self, names: frozenset[str]) -> list[dict]:
        """Every combination of real values for an operation's path parameters."""
        if {"owner", "name"} <= names:
            bases = [
                {"owner": m["owner"], "name": m["name"]}
                | {
                    "version": m["versions"],
                    "build_id": m["builds"],
                }
                for m in self.models
            ]
        else:
            bases = [{}]
        combos = []
        for base in bases:
            axes = {}
            for name in sorted(names):
                if name in base and not isinstance(base[name], list):
                    axes[name] = [base[name]]
                elif name in base:
                    axes[name] = base[name]
                else:
                    axes[name] = self.values.get(name, [])
            keys = list(axes)
            for values in itertools.product(*(axes[k] for k in keys)):
                combos.append(dict(zip(keys, values, strict=True)))
        return combos


@pytest.fixture
def fuzz_world(transactional_db, request) -> World:
    # This host's runner service and package storage, as the gateway tests have them.
    request.getfixturevalue("storage")
    request.getfixturevalue("runner")
    ada = UserFactory(username="ada", is_staff=True)
    bob = UserFactory(username="bob")
    acme = TeamFactory(slug="acme")
    globex = TeamFactory(slug="globex")
    MembershipFactory(team=acme, user=ada, role=Role.OWNER)
    MembershipFactory(team=acme, user=bob, role=Role.BILLING)
    MembershipFactory(team=globex, user=bob, role=Role.OWNER)

    echo_v1 = publish(ada, ECHO)
    echo_v2 = publish(ada, ECHO | {"README.md": "# Echo\n\nVersion two.\n"}, bump="minor")
    vault_v1 = publish(ada, VAULT, visibility="private")

    full_key, full_secret = make_key(ada)
    _, narrow_secret = make_key(ada, team=acme, scopes=[BILLING_READ], project="mobile")
    _, model_secret = make_key(bob, scopes=["algo://ada/echo/*"])

    # Real usage: successful calls, a model error, from two teams.
    request_ids = []
    for secret, body in (
        (full_secret, {"text": "hi"}),
        (full_secret, {"fail": "boom"}),
        (model_secret, {"text": "from bob"}),
    ):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Simple {secret}")
        response = client.post("/v1/algo/ada/echo", body, format="json")
        assert response.status_code == 200, response.content
        request_ids.append(response.json()["request_id"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Simple {full_secret}")
    response = client.post("/v1/algo/ada/vault/1.0.0", "text", content_type="text/plain")
    assert response.status_code == 200, response.content

    billing_services.budget_set(actor=ada, team=acme, monthly_amount=Decimal("50"))
    billing_services.budget_set(
        actor=ada, team=acme, project="mobile", monthly_amount=Decimal("5"), hard_cap=True
    )
    billing_services.price_set(actor=ada, hardware_class="cpu", price_per_second="0.0001")
    # The webhook's discard port is reachable as an operator's allow-list would make it.
    request.getfixturevalue("settings").OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.1:9"]
    hook = catalog_services.webhook_create(
        actor=ada, owner=ada.personal_team, url="http://127.0.0.1:9/hook", events=["build.failed"]
    )

    world = World(
        callers=[
            Caller("full-access personal key of ada (staff, owner)", full_secret),
            Caller("acme team key of ada with billing:read only", narrow_secret),
            Caller("bob's key scoped to algo://ada/echo/*", model_secret),
            Caller("no key", None),
        ]
    )
    world.models = [
        {
            "owner": "ada",
            "name": "echo",
            "versions": ["1.0.0", "1.1.0", "1", "1.*", "latest", echo_v1.build.package_hash],
            "builds": [str(echo_v1.build_id), str(echo_v2.build_id)],
        },
        {
            "owner": "ada",
            "name": "vault",
            "versions": ["1.0.0", "latestPrivate"],
            "builds": [str(vault_v1.build_id)],
        },
    ]
    world.values = {
        "owner": ["ada", "acme"],
        "team": ["ada", "acme", "globex"],
        "username": ["ada", "bob"],
        "key_id": [str(full_key.pk)],
        "request_id": request_ids,
        "webhook_id": [str(hook.pk)],
        "project": ["mobile"],
    }
    return world


@pytest.fixture
def wsgi_app():
    """The project's WSGI handler, called in-process. Like Django's test client, it does not
    close the database connection at the end of each request, so a request can run inside
    the savepoint of its test."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield WSGIHandler()
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture(autouse=True)
def _schemathesis_node_id(request):
    """schemathesis' lazy schemas (4.32) rename the running item through `_nodeid`, which
    pytest 9 no longer keeps as an attribute; give them one to read."""
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid
