"""One world for the leak, scope and isolation attacks (imported by the test modules of this
folder; the folder has no conftest of its own).

Team A, `quillon-labs`, owns a private model whose every field carries a word that exists
nowhere else (name, title, tagline, tags, task, framework, README, an error message, an
input), calls and usage of it, a public model, a budget, keys and an audit trail. Team B,
`vantor-works`, is the outsider: a user with a personal key and a team key, its own public
model, calls and usage. A test asks every path as the outsider (session, personal key, team
key) and anonymously, and as the owner, so that it can fail."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import pytest
from django.test import Client
from rest_framework.test import APIClient

from billing.budgets import services as billing_services
from catalog.models import Model
from marketplace.accounts.models import ApiKey, Role, Team, User
from tests.billing.factories import UsageRecordFactory
from tests.catalog.factories import BuildFactory, ModelFactory, VersionFactory
from tests.factories import MembershipFactory, TeamFactory, UserFactory, make_key
from tests.gateway.factories import InvocationFactory

OWNER_TEAM = "quillon-labs"
OUTSIDER_TEAM = "vantor-works"
PRIVATE_NAME = "zephyrine-oracle"
PRIVATE_PATH = f"{OWNER_TEAM}/{PRIVATE_NAME}"
ALIAS_PATH = f"{OWNER_TEAM.replace('-', '_')}/{PRIVATE_NAME}"  # as Algorithmia clients write it
PUBLIC_NAME = "lantern-basic"
OUTSIDER_MODEL = "vantor-echo"
SHARED_TAG = "shared-tag"
SHARED_TASK = "image-tagging"
PRIVATE_PROJECT = "auricproject"
PRIVATE_KEY_NAME = "quillon deploy key"

# Each of these appears only in the private model and what belongs to it.
WORDS = {
    "name": "zephyrine",
    "tagline": "quokkaflux",
    "tag": "xylocarpine",
    "task": "vellichor",
    "framework": "frobnitzml",
    "readme": "snorkelwhisk",
    "error": "brindlequartz",
    "input": "glimmerfenn",
}
# A figure only the private model has (its popularity), in both spellings pages use.
PRIVATE_COUNTS = ("987654", "987,654")
PRIVATE_TASK = f"{WORDS['task']}-detection"
# Words searched for, one per field of the model that search indexes.
SEARCHABLE = ("name", "tagline", "tag", "task", "framework", "readme")


@dataclass
class LeakWorld:
    team_a: Team
    team_b: Team
    owner: User
    member: User
    outsider: User
    private: Model
    private_versions: dict
    public: Model
    outsider_model: Model
    failed_call: object
    owner_call: object
    outsider_call: object
    owner_key: tuple[ApiKey, str]
    owner_team_key: tuple[ApiKey, str]
    outsider_key: tuple[ApiKey, str]
    outsider_team_key: tuple[ApiKey, str]

    @property
    def private_hash(self) -> str:
        return self.private_versions["1.0.0"].build.package_hash


def build_leak_world() -> LeakWorld:
    owner = UserFactory(username="orla")
    member = UserFactory(username="mira")
    outsider = UserFactory(username="bruno")
    team_a = TeamFactory(slug=OWNER_TEAM, name="Quillon Labs")
    team_b = TeamFactory(slug=OUTSIDER_TEAM, name="Vantor Works")
    MembershipFactory(team=team_a, user=owner, role=Role.OWNER)
    MembershipFactory(team=team_a, user=member, role=Role.MEMBER)
    MembershipFactory(team=team_b, user=outsider, role=Role.OWNER)

    private = ModelFactory(
        owner=team_a,
        slug=PRIVATE_NAME,
        title="Zephyrine Oracle",
        tagline="Quokkaflux transmutation of plumbago signals",
        tags=[WORDS["tag"], SHARED_TAG],
        task=PRIVATE_TASK,
        framework=WORDS["framework"],
        license="mit",
        runtime="python",
        readme="# Zephyrine\n\nBuilt on the snorkelwhisk ensemble.\n",
        visibility="private",
        calls_30d=int(PRIVATE_COUNTS[0]),
    )
    versions = {}
    for number in ("1.0.0", "1.1.0"):
        build = BuildFactory(
            model=private,
            sample_input={"text": WORDS["input"]},
            sample_output={"label": WORDS["name"]},
            manifest={
                "name": PRIVATE_NAME,
                "runtime": "python",
                "entrypoint": "predict.py:apply",
                "title": "Zephyrine Oracle",
            },
            log=f"building {WORDS['name']} with {WORDS['framework']}\n",
        )
        versions[number] = VersionFactory(
            model=private, build=build, number=number, visibility="private"
        )
    public = ModelFactory(
        owner=team_a,
        slug=PUBLIC_NAME,
        title="Lantern Basic",
        tagline="Counts lanterns in photos",
        tags=[SHARED_TAG],
        task=SHARED_TASK,
        framework="torch",
        license="mit",
        runtime="python",
        visibility="public",
    )
    public_version = VersionFactory(
        model=public, build=BuildFactory(model=public, sample_input={"text": "a lantern"})
    )
    outsider_model = ModelFactory(
        owner=team_b,
        slug=OUTSIDER_MODEL,
        title="Vantor Echo",
        tagline="Echoes",
        tags=[SHARED_TAG],
        task=SHARED_TASK,
        framework="torch",
        license="mit",
        runtime="python",
        visibility="public",
    )
    VersionFactory(model=outsider_model, build=BuildFactory(model=outsider_model))

    owner_key = make_key(owner, name="orla personal")
    owner_team_key = make_key(owner, team=team_a, name=PRIVATE_KEY_NAME, project=PRIVATE_PROJECT)
    outsider_key = make_key(outsider, name="bruno personal")
    outsider_team_key = make_key(outsider, team=team_b, name="vantor key")

    failed_call = InvocationFactory(
        version=versions["1.1.0"],
        caller_team=team_a,
        caller_user=owner,
        api_key=owner_team_key[0],
        project=PRIVATE_PROJECT,
        status="failed",
        input_preview=f'{{"text": "{WORDS["input"]}"}}',
        error={
            "message": f"{WORDS['error']} overflow",
            "error_type": "ValueError",
            "stacktrace": f"Traceback: {WORDS['error']}",
        },
    )
    owner_call = InvocationFactory(
        version=versions["1.0.0"],
        caller_team=team_a,
        caller_user=owner,
        status="running",
        finished_at=None,
        result={"label": WORDS["name"]},
    )
    outsider_call = InvocationFactory(
        version=public_version, caller_team=team_b, caller_user=outsider
    )
    for version, call in ((versions["1.1.0"], failed_call), (versions["1.0.0"], owner_call)):
        UsageRecordFactory(
            request_id=call.pk,
            team=team_a,
            user=owner,
            api_key=owner_team_key[0],
            project=PRIVATE_PROJECT,
            model=private,
            version=version,
        )
    UsageRecordFactory(team=team_a, user=member, model=public, version=public_version)
    UsageRecordFactory(
        request_id=outsider_call.pk,
        team=team_b,
        user=outsider,
        api_key=outsider_key[0],
        project="vantorproject",
        model=public,
        version=public_version,
    )
    for project in (PRIVATE_PROJECT, ""):
        billing_services.budget_set(
            actor=owner, team=team_a, project=project, monthly_amount=Decimal("4321.5")
        )
    return LeakWorld(
        team_a=team_a,
        team_b=team_b,
        owner=owner,
        member=member,
        outsider=outsider,
        private=private,
        private_versions=versions,
        public=public,
        outsider_model=outsider_model,
        failed_call=failed_call,
        owner_call=owner_call,
        outsider_call=outsider_call,
        owner_key=owner_key,
        owner_team_key=owner_team_key,
        outsider_key=outsider_key,
        outsider_team_key=outsider_team_key,
    )


@pytest.fixture
def world(db) -> LeakWorld:
    return build_leak_world()


def api(secret: str | None = None) -> APIClient:
    client = APIClient()
    if secret:
        client.credentials(HTTP_AUTHORIZATION=f"Simple {secret}")
    return client


def browser(user: User | None = None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def outsider_api_clients(world: LeakWorld) -> dict[str, APIClient]:
    """Everyone who must not see team A's private things, over the API."""
    session = APIClient()
    session.force_login(world.outsider)
    return {
        "anonymous": api(),
        "outsider personal key": api(world.outsider_key[1]),
        "outsider team key": api(world.outsider_team_key[1]),
        "outsider session": session,
    }


def outsider_browsers(world: LeakWorld) -> dict[str, Client]:
    return {"anonymous": browser(), "outsider": browser(world.outsider)}


def text_of(response) -> str:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content).decode()
    return response.content.decode()


def assert_no_private_words(response, *, allowed: tuple[str, ...] = (), who: str = "") -> None:
    """None of the private model's words (nor its path) is in the response."""
    body = text_of(response).lower()
    for field_name, word in WORDS.items():
        if field_name in allowed:
            continue
        assert word not in body, f"{who}: {field_name} word {word!r} leaked by {response}"
    for count in PRIVATE_COUNTS:
        assert count not in body, f"{who}: the private call count leaked by {response}"
    if "name" not in allowed:
        assert PRIVATE_PATH not in body, f"{who}: {PRIVATE_PATH} leaked by {response}"
