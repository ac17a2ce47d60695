"""The hot path's caches (marketplace/core/change_feed.py): remembered while the feed is
fresh, forgotten when a change commits, whoever makes it, and never used when the feed is
not listening. These tests commit (transactional_db), as only a commit is announced; each
change is made from a second, plain psycopg connection, as another worker or an operator's
psql would make it, so nothing in this process hears of it but through PostgreSQL."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing import metering
from billing.budgets import selectors as budget_selectors
from billing.models import Budget, ComputePrice
from catalog import selectors as catalog_selectors
from catalog.versions import resolve_version
from marketplace.accounts import policies
from marketplace.accounts.services import api_key_authenticate
from marketplace.core import change_feed
from marketplace.core.errors import AuthenticationError, PaymentRequiredError
from tests.catalog.factories import ModelFactory, VersionFactory
from tests.factories import MembershipFactory, TeamFactory, UserFactory, make_key

pytestmark = pytest.mark.django_db(transaction=True)

PATIENCE = 30  # seconds: generous, for a busy machine; nothing here measures speed


@pytest.fixture
def feed(settings):
    settings.HOT_PATH_CACHE = True
    change_feed.stop()
    wait_until(change_feed.fresh, "the change feed never started listening")
    yield
    change_feed.stop()


def wait_until(condition, message: str):
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(message)


def elsewhere(sql: str, params=()) -> None:
    """Run `sql` on a connection of its own, committed, like another process would."""
    with connection.independent_connection() as other:
        other.execute(sql, params)


def queries_of(function) -> int:
    with CaptureQueriesContext(connection) as captured:
        function()
    return len(captured.captured_queries)


def remembered(function) -> None:
    """Wait until `function` reads nothing from the database (the announcements of the
    test's own setup may empty a cache once more first)."""
    wait_until(lambda: queries_of(function) == 0, "it was never remembered")


def test_a_key_is_remembered_and_a_revocation_elsewhere_is_heard(feed):
    key, raw = make_key(UserFactory())
    api_key_authenticate(raw)
    remembered(lambda: api_key_authenticate(raw))

    elsewhere("UPDATE accounts_apikey SET revoked_at = now() WHERE id = %s", [key.pk])

    def refused() -> bool:
        try:
            api_key_authenticate(raw)
        except AuthenticationError as error:
            assert "revoked" in str(error)
            return True
        return False

    wait_until(refused, "the revoked key was still accepted")


def test_a_disabled_account_is_heard_through_its_keys(feed):
    user = UserFactory()
    _key, raw = make_key(user)
    api_key_authenticate(raw)
    elsewhere("UPDATE accounts_user SET is_active = false WHERE id = %s", [user.pk])

    def refused() -> bool:
        try:
            api_key_authenticate(raw)
        except AuthenticationError:
            return True
        return False

    wait_until(refused, "the disabled account's key was still accepted")


def test_bookkeeping_updates_do_not_empty_the_caches(feed):
    keys = change_feed.TableCache("test: keys", {"accounts_apikey"})
    teams = change_feed.TableCache("test: teams", {"accounts_team"})
    key, _raw = make_key(UserFactory())

    def team_change_heard() -> None:
        teams.get("t", lambda: "remembered")
        elsewhere("UPDATE accounts_team SET name = name || '!' WHERE id = %s", [key.team_id])
        wait_until(lambda: len(teams) == 0, "the team change was not heard")

    # Notifications arrive in commit order: once a later change is heard, so is the key's
    # creation, which would otherwise empty `keys` after the next line.
    team_change_heard()
    keys.get("k", lambda: "remembered")
    elsewhere("UPDATE accounts_apikey SET last_used_at = now() WHERE id = %s", [key.pk])
    team_change_heard()
    assert len(keys) == 1, "an update of last_used_at alone emptied the keys' caches"
    # An update of a column a cache reads is heard.
    elsewhere("UPDATE accounts_apikey SET name = 'renamed' WHERE id = %s", [key.pk])
    wait_until(lambda: len(keys) == 0, "the key's rename was not heard")


def test_a_new_version_is_what_latest_resolves_to(feed):
    first = VersionFactory(model=ModelFactory(visibility="public"), number="1.0.0")
    model = catalog_selectors.model_get(None, first.model.owner.slug, first.model.slug)
    assert resolve_version(model, None, is_member=False).version.pk == first.pk
    remembered(lambda: resolve_version(model, None, is_member=False))

    second = VersionFactory(model=first.model, number="1.1.0")
    wait_until(
        lambda: resolve_version(model, None, is_member=False).version.pk == second.pk,
        "latest still resolved to the old version",
    )
    # Each call gets instances of its own, with the build the version points at.
    a, b = (resolve_version(model, "1.1.0", is_member=False) for _ in range(2))
    assert a.version is not b.version and a.version.build.pk == second.build_id


def test_a_model_made_private_elsewhere_disappears_for_strangers(feed):
    version = VersionFactory(model=ModelFactory(visibility="public"))
    owner, slug = version.model.owner.slug, version.model.slug
    catalog_selectors.model_get(None, owner, slug)
    elsewhere("UPDATE catalog_model SET visibility = 'private' WHERE id = %s", [version.model_id])

    def hidden() -> bool:
        try:
            catalog_selectors.model_get(None, owner, slug)
        except Exception:
            return True
        return False

    wait_until(hidden, "the private model was still found by a stranger")


def test_a_removed_membership_is_heard(feed):
    membership = MembershipFactory()
    user, team = membership.user, membership.team
    assert policies.is_member(UserFactory.build(pk=user.pk), team)
    elsewhere("DELETE FROM accounts_membership WHERE id = %s", [membership.pk])
    wait_until(
        lambda: not policies.is_member(UserFactory.build(pk=user.pk), team),
        "the removed member was still a member",
    )


def test_prices_and_budgets_changed_elsewhere_are_heard(feed):
    team = TeamFactory()
    now = timezone.now()
    assert metering.price_at("gpu-test", now) == 0
    budget_selectors.cap_check(team, "")  # remembered: no hard-capped budget
    elsewhere(
        "INSERT INTO billing_computeprice (hardware_class, price_per_second, effective_from, "
        "note, created_at) VALUES ('gpu-test', 0.5, now() - interval '1 day', '', now())"
    )
    elsewhere(
        "INSERT INTO billing_budget (team_id, project, monthly_amount, thresholds, hard_cap, "
        "webhook_url, created_at, updated_at) VALUES (%s, '', 1, '{}', true, '', now(), now())",
        [team.pk],
    )
    elsewhere(
        "INSERT INTO billing_monthlyspend (team_id, project, month, total, calls) "
        "VALUES (%s, '', date_trunc('month', now())::date, 5, 1)",
        [team.pk],
    )
    wait_until(lambda: metering.price_at("gpu-test", now) == Decimal("0.5"), "old price")

    def capped() -> bool:
        try:
            budget_selectors.cap_check(team, "")
        except PaymentRequiredError:
            return True
        return False

    wait_until(capped, "the new hard cap was not enforced")
    assert Budget.objects.filter(team=team).count() == 1
    assert ComputePrice.objects.filter(hardware_class="gpu-test").count() == 1


def test_a_price_scheduled_for_later_is_in_force_when_its_time_comes(feed):
    later = timezone.now() + timezone.timedelta(hours=1)
    ComputePrice.objects.create(
        hardware_class="cpu-later", price_per_second=Decimal("0.2"), effective_from=later
    )
    wait_until(lambda: metering.price_at("cpu-later", timezone.now()) == 0, "not in force yet")
    assert metering.price_at("cpu-later", later) == Decimal("0.2")


def test_nothing_is_remembered_while_the_feed_is_not_listening(feed):
    _key, raw = make_key(UserFactory())
    remembered(lambda: api_key_authenticate(raw))
    # The listener's connection is killed (PostgreSQL restarted, a network cut).
    elsewhere(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE application_name = %s AND datname = current_database()",
        [change_feed.APPLICATION_NAME],
    )
    wait_until(lambda: not change_feed.fresh(), "the feed did not notice its lost connection")
    # Meanwhile every read goes to the database, as if nothing were cached.
    assert all(len(cache) == 0 for cache in change_feed.caches())
    assert queries_of(lambda: api_key_authenticate(raw)) > 0
    # And it comes back by itself.
    wait_until(change_feed.fresh, "the feed did not reconnect")


def test_a_read_that_raced_a_change_is_not_remembered(feed):
    cache = change_feed.TableCache("test race", {"accounts_team"})

    def load_while_a_change_is_heard():
        cache.forget()  # the listener heard a change while this load was reading
        return "old"

    assert cache.get("k", load_while_a_change_is_heard) == "old"
    assert cache.get("k", lambda: "new") == "new"


def test_the_cache_is_off_when_the_setting_is(settings):
    settings.HOT_PATH_CACHE = False
    assert not change_feed.fresh()
    _key, raw = make_key(UserFactory())
    api_key_authenticate(raw)
    assert queries_of(lambda: api_key_authenticate(raw)) > 0


def test_thawed_instances_are_what_a_query_loads():
    from django.db.models.signals import post_init, pre_init

    from catalog.models import Build, Model, Version
    from marketplace.accounts.models import ApiKey, Team, User

    cached = (ApiKey, Team, User, Model, Build, Version)
    for signal in (pre_init, post_init):
        assert not [s for s in cached if signal.has_listeners(s)], "thawed() skips __init__"
    key, _raw = make_key(UserFactory())
    loaded = ApiKey.objects.select_related("team", "created_by").get(pk=key.pk)
    thawed = change_feed.thawed(change_feed.frozen(loaded, "team", "created_by"))
    for field in ApiKey._meta.concrete_fields:
        assert getattr(thawed, field.attname) == getattr(loaded, field.attname)
    assert not thawed._state.adding and thawed._state.db == "default"
    assert thawed.team.slug == loaded.team.slug and thawed.created_by == loaded.created_by
    thawed.name = "renamed"
    thawed.save(update_fields=["name"])  # a thawed instance is a real row
    assert ApiKey.objects.get(pk=key.pk).name == "renamed"
