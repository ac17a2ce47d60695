"""A namespace's Algorithmia client alias (`-` written `_`) names that namespace and no
other: no slug can hold `_`, whichever path writes it (sign-up, team creation, or a row
written around them, which the database refuses)."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor
from hypothesis import given
from hypothesis import strategies as st

from marketplace.accounts import services
from marketplace.accounts.models import NAMESPACE_SLUG_PATTERN, Team
from marketplace.accounts.namespaces import client_alias, slug_from_client_name
from marketplace.core.errors import InputError
from tests.factories import UserFactory

SLUGS = st.from_regex(NAMESPACE_SLUG_PATTERN.replace("$", r"\Z"), fullmatch=True)


@given(SLUGS, SLUGS)
def test_aliases_are_one_to_one(first, second):
    assert slug_from_client_name(client_alias(first)) == first
    assert slug_from_client_name(first) == first  # a slug is its own name
    assert "-" not in client_alias(first)
    if first != second:
        assert client_alias(first) != client_alias(second)


@pytest.mark.django_db
def test_no_namespace_can_be_named_with_an_underscore():
    with pytest.raises(InputError, match="hyphens"):
        services.user_sign_up(username="acme_research", email="a@example.com", password="x" * 20)
    actor = UserFactory()
    with pytest.raises(InputError, match="hyphens"):
        services.team_create(actor=actor, slug="acme_research", name="Acme")
    for slug in ("acme_research", "Acme-Research", "acme research"):
        with pytest.raises(IntegrityError), transaction.atomic():
            Team.objects.create(slug=slug, name="written around the services")
    team = services.team_create(actor=actor, slug="acme-research", name="Acme")
    assert Team.objects.get(slug=slug_from_client_name("acme_research")) == team


@pytest.mark.django_db(transaction=True)
def test_the_migration_names_the_slugs_it_cannot_constrain():
    """A row written around the services before the constraint existed stops the migration
    with its slug named, to be renamed; once renamed, the constraint is added."""
    before = [("accounts", "0005_change_feed")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    old_team = executor.loader.project_state(before).apps.get_model("accounts", "Team")
    old_team.objects.create(slug="legacy_name", name="Legacy")
    try:
        executor = MigrationExecutor(connection)
        with pytest.raises(RuntimeError, match="legacy_name"):
            executor.migrate(executor.loader.graph.leaf_nodes())
        old_team.objects.filter(slug="legacy_name").update(slug="legacy-name")
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
    assert Team.objects.filter(slug="legacy-name").exists()
    with pytest.raises(IntegrityError), transaction.atomic():
        Team.objects.create(slug="legacy_name", name="again")
