"""No orphan page, no broken link: the site is crawled from its home page, following every
internal link (<a href>), as a visitor, as a signed-in user who owns a team with a published
model, and as a staff user. Every internal link must answer (no 404, no 5xx), and every page
of the URL conf that a person can see must be reached by some link.

Pages a link need not reach are listed in NOT_LINKED, each with its reason."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from html.parser import HTMLParser
from urllib.parse import urldefrag, urlsplit

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.urls.exceptions import Resolver404

from billing.models import Budget
from data.models import Collection, Connector, DataEntry, EntryKind
from data.secrets import encrypt_secret
from tests.catalog.factories import BuildFactory, ModelFactory, VersionFactory
from tests.factories import MembershipFactory, TeamFactory, UserFactory, make_key
from tests.gateway.factories import InvocationFactory

pytestmark = pytest.mark.django_db

# Route names (namespace:name) no link has to reach, and why.
NOT_LINKED = {
    "core:healthz": "a probe for load balancers, not a page",
    "core:readyz": "a probe for load balancers, not a page",
    "core:metrics": "Prometheus' scrape endpoint, not a page",
    "sitemap": "for crawlers, announced in robots.txt",
    "robots": "for crawlers",
    "accounts:logout": "a POST form (the account menu's Log out button)",
    "accounts:key_revoke": "a POST form on the keys page",
    "catalog:publish": "a POST form on a build's page",
    "accounts:password_change_done": "where the password form redirects after a change",
    "accounts:sso_start": "linked from the log-in page when company sign-on is configured "
    "(tests/sso, tests/browser/test_sign_on_journey.py)",
    "accounts:sso_callback": "where the identity provider sends the browser back",
    "catalog:anonymous_tries": "a POST form in the model page's console",
}
# The Django admin (staff only, linked once from the account menu) is Django's own site.
NOT_CRAWLED_PREFIXES = ("/admin/", "/static/", "/media/")
# At most this many URLs per route are fetched (facets and pages repeat a route endlessly).
PER_ROUTE = 4


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            href = dict(attrs).get("href")
            if href:
                self.links.append(href)


def internal_links(html: str) -> list[str]:
    parser = _Links()
    parser.feed(html)
    found = []
    for href in parser.links:
        href = urldefrag(href)[0]
        parts = urlsplit(href)
        if parts.scheme or parts.netloc or not href.startswith("/"):
            continue  # another site, mailto:, or a relative ?query of the same page
        found.append(href)
    return found


def route_of(path: str) -> str | None:
    try:
        match = resolve(urlsplit(path).path)
    except Resolver404:
        return None
    return match.view_name


def site_routes() -> set[str]:
    """Every route of the URL conf but the API's and the admin's."""
    names = set()

    def walk(resolver, prefix, namespace):
        for pattern in resolver.url_patterns:
            if isinstance(pattern, URLResolver):
                inner = namespace
                if pattern.namespace:
                    inner = f"{namespace}:{pattern.namespace}" if namespace else pattern.namespace
                walk(pattern, prefix + str(pattern.pattern), inner)
            elif isinstance(pattern, URLPattern) and pattern.name:
                if prefix.startswith(("v1/", "admin/")):
                    continue
                names.add(f"{namespace}:{pattern.name}" if namespace else pattern.name)

    walk(get_resolver(), "", "")
    return names


def crawl(client: Client) -> tuple[set[str], list[str]]:
    """(routes reached, broken links as "page -> link: status")."""
    queue, seen, reached, broken = ["/"], {"/"}, set(), []
    per_route: dict[str, int] = defaultdict(int)
    referrer = {"/": "(start)"}
    while queue:
        url = queue.pop(0)
        response = client.get(url)
        if response.status_code == 404 or response.status_code >= 500:
            broken.append(f"{referrer[url]} -> {url}: {response.status_code}")
            continue
        route = route_of(url)
        if route and (response.status_code == 200 or 300 <= response.status_code < 400):
            reached.add(route)
        location = response.get("Location", "") if 300 <= response.status_code < 400 else ""
        if location.startswith("/") and location not in seen:
            seen.add(location)  # a link to a redirect (the navigation's Calls) reaches both
            referrer[location] = url
            queue.append(location)
        if response.status_code != 200 or "text/html" not in response.get("Content-Type", ""):
            continue
        for link in internal_links(response.content.decode()):
            if link in seen or link.startswith(NOT_CRAWLED_PREFIXES):
                continue
            link_route = route_of(link) or link
            if per_route[link_route] >= PER_ROUTE:
                continue
            per_route[link_route] += 1
            seen.add(link)
            referrer[link] = url
            queue.append(link)
    return reached, broken


@pytest.fixture
def world():
    """A team owned by ada with a public model in two versions, called, and a budget; a
    private model too; ada's key."""
    ada = UserFactory(username="ada")
    lab = TeamFactory(slug="lab")
    MembershipFactory(team=lab, user=ada, role="owner")
    model = ModelFactory(owner=lab, slug="sentiment", visibility="public", readme="# Hi")
    build = BuildFactory(model=model)
    old = VersionFactory(model=model, number="1.0.0", build=build)
    VersionFactory(model=model, number="1.1.0")
    InvocationFactory.create_batch(3, version=old, caller_team=lab)
    hidden = ModelFactory(owner=lab, slug="hidden", visibility="private")
    VersionFactory(model=hidden, number="1.0.0", visibility="private")
    Budget.objects.create(team=lab, monthly_amount=Decimal("100"), thresholds=[80])
    make_key(ada, team=lab)
    datasets = Collection.objects.create(team=lab, name="datasets")
    DataEntry.objects.create(collection=datasets, parent="", name="raw", kind=EntryKind.DIRECTORY)
    Connector.objects.create(
        team=lab,
        name="archive",
        bucket="lab-archive",
        access_key_id="AKIAEXAMPLE",
        secret_encrypted=encrypt_secret("an-example-secret-for-pages"),
        secret_hint="ages",
    )
    return ada


def _client(user=None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def test_every_page_is_reached_by_a_link_and_no_link_is_broken(world):
    staff = UserFactory(username="root", is_staff=True, is_superuser=True)
    reached, broken = set(), []
    for client in (_client(), _client(world), _client(staff)):
        routes, dead = crawl(client)
        reached |= routes
        broken += dead
    assert not broken, "broken internal links:\n" + "\n".join(broken)
    orphans = site_routes() - reached - set(NOT_LINKED)
    assert not orphans, f"pages no link reaches: {sorted(orphans)}"
    # Budgets in particular: from billing, the team page and the usage report.
    ada = _client(world)
    for page in ("/billing/", "/teams/lab/", "/teams/lab/usage/"):
        assert 'href="/teams/lab/budgets/"' in ada.get(page).content.decode(), page


def test_the_crawler_notices_an_orphan_and_a_broken_link(world):
    """The check can fail: a page nothing links to is reported, and so is a dead link."""
    reached, _broken = crawl(_client(world))
    assert "billing_budgets:team_budgets" in reached
    assert "accounts:password_change_done" not in reached
    assert internal_links('<a href="/nowhere">x</a><a href="https://x.org/">y</a>') == ["/nowhere"]
    assert _client(world).get("/nowhere/at/all/here").status_code == 404
