from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tests.factories import MembershipFactory, TeamFactory, UserFactory, make_key


@pytest.fixture(autouse=True)
def data_root(settings, tmp_path):
    """Every test keeps its files in its own directory, on the local backend."""
    root = tmp_path / "data-root"
    settings.DATA_STORAGE = "local"
    settings.DATA_LOCAL_ROOT = root
    return root


@pytest.fixture
def ada(db):
    return UserFactory(username="ada")


@pytest.fixture
def bob(db):
    return UserFactory(username="bob")


@pytest.fixture
def lab(ada):
    """A team ada is a member of."""
    team = TeamFactory(slug="acme-lab")
    MembershipFactory(team=team, user=ada)
    return team


def api_for(user, **key_options) -> APIClient:
    _key, secret = make_key(user, **key_options)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Simple {secret}")
    return client


@pytest.fixture
def ada_api(ada):
    return api_for(ada)


@pytest.fixture
def bob_api(bob):
    return api_for(bob)


def files_under(root) -> list:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []
