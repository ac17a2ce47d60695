"""factory-boy factories for the whole suite. Services are used where they hold the rules
(a user always gets a personal namespace, a key's secret exists only at creation)."""

from __future__ import annotations

import factory

from marketplace.accounts import services
from marketplace.accounts.models import Membership, Role, Team, User
from marketplace.accounts.scopes import FULL_ACCESS

DEFAULT_PASSWORD = "correct-horse-battery-staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user-{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.PostGenerationMethodCall("set_password", DEFAULT_PASSWORD)

    @factory.post_generation
    def personal_namespace(user, create, extracted, **kwargs):
        if create:
            user.save()
            services.personal_namespace_ensure(user=user)


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team

    slug = factory.Sequence(lambda n: f"team-{n}")
    name = factory.LazyAttribute(lambda t: t.slug.replace("-", " ").title())


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    team = factory.SubFactory(TeamFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.MEMBER


def make_key(user: User, *, team: Team | None = None, scopes=FULL_ACCESS, **kwargs):
    """An API key and its secret, made through the service as a user would."""
    return services.api_key_create(
        actor=user,
        team=team,
        name=kwargs.pop("name", "test key"),
        scopes=list(scopes),
        **kwargs,
    )
