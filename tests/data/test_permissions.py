"""Who may read a collection (data/permissions.py), including the hook for a model running
for a caller: the owner's models read `my_algos` collections, never private ones."""

from __future__ import annotations

import pytest

from data.models import Collection, ReadAcl
from data.permissions import DataActor, can_read, can_write
from marketplace.accounts.models import Role
from marketplace.accounts.principals import Principal
from tests.factories import MembershipFactory, TeamFactory, UserFactory


@pytest.fixture
def owner_team(db):
    return TeamFactory(slug="acme")


@pytest.mark.parametrize(
    ("acl", "member", "stranger", "owners_model", "others_model"),
    [
        (ReadAcl.PRIVATE, True, False, False, False),
        (ReadAcl.MY_ALGORITHMS, True, False, True, False),
        (ReadAcl.PUBLIC, True, True, True, True),
    ],
)
def test_read(owner_team, acl, member, stranger, owners_model, others_model):
    collection = Collection.objects.create(team=owner_team, name="c", read_acl=acl)
    ada, bob = UserFactory(), UserFactory()
    MembershipFactory(team=owner_team, user=ada, role=Role.MEMBER)
    other_team = TeamFactory()
    assert can_read(DataActor(Principal(ada)), collection) is member
    assert can_read(DataActor(Principal(bob)), collection) is stranger
    # bob's call of a model that acme owns, and of a model some other team owns.
    assert can_read(DataActor(Principal(bob), owner_team.pk), collection) is owners_model
    assert can_read(DataActor(Principal(bob), other_team.pk), collection) is others_model


def test_write_needs_a_publishing_role(owner_team):
    users = {role: UserFactory() for role in Role}
    for role, user in users.items():
        MembershipFactory(team=owner_team, user=user, role=role)
    allowed = {
        role for role, user in users.items() if can_write(DataActor(Principal(user)), owner_team)
    }
    assert allowed == {Role.OWNER, Role.ADMIN, Role.MEMBER}
    assert not can_write(DataActor(Principal(UserFactory()), owner_team.pk), owner_team)
