"""CSRF: every view that can be POSTed to, found by walking the URL resolver, and every
<form method="post"> the pages render, found by parsing them, is POSTed by a signed-in user
with Django's CSRF checks on and no token: the answer is 403 and the database is exactly
as it was. The /v1 API enforces CSRF for a session (DRF's SessionAuthentication) on every
unsafe method, and needs none with an API key. A view added with @csrf_exempt fails here."""

from __future__ import annotations

import re
import uuid
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.http import HttpResponse
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.urls import path as url_path
from django.views.decorators.csrf import csrf_exempt
from rest_framework.authentication import SessionAuthentication
from rest_framework.test import APIClient
from rest_framework.views import APIView

from marketplace import urls as root_urls
from marketplace.accounts.models import ApiKey, Role, Team
from tests.catalog.factories import BuildFactory, ModelFactory, VersionFactory
from tests.factories import MembershipFactory, TeamFactory, UserFactory, make_key
from tests.gateway.factories import InvocationFactory

pytestmark = pytest.mark.django_db

UNSAFE = ("post", "put", "patch", "delete")
TEMPLATES = Path(settings.BASE_DIR) / "templates"


# -- what the database holds ------------------------------------------------------------------


def fingerprint() -> dict[str, str]:
    """A digest of every row of each table: equal before and after means nothing changed."""
    tables = sorted(connection.introspection.table_names())
    digest = "coalesce(md5(string_agg(md5(r::text), ',' ORDER BY md5(r::text))), '')"
    parts = " UNION ALL ".join(
        f"SELECT '{t}' AS t, {digest} AS h FROM {connection.ops.quote_name(t)} r"  # noqa: S608
        for t in tables
    )
    with connection.cursor() as cursor:
        cursor.execute(parts)
        return dict(cursor.fetchall())


def changed_tables(before: dict, after: dict) -> list[str]:
    return sorted(t for t in after if before.get(t) != after[t])


# -- the world the forms act on -----------------------------------------------------------------


@pytest.fixture
def world(db):
    root = UserFactory(username="root", is_staff=True, is_superuser=True)
    bob = UserFactory(username="bob")
    team = TeamFactory(slug="acme", name="Acme")
    MembershipFactory(team=team, user=root, role=Role.OWNER)
    MembershipFactory(team=team, user=bob, role=Role.MEMBER)
    model = ModelFactory(owner=team, slug="vision", visibility="public")
    version = VersionFactory(model=model, number="1.0.0")
    unpublished = BuildFactory(model=model)
    key, _secret = make_key(root, team=team)
    invocation = InvocationFactory(version=version, caller_team=team, caller_user=root)
    return {
        "root": root,
        "team": team,
        "model": model,
        "build": unpublished,
        "key": key,
        "invocation": invocation,
    }


def _session_client(user, *, enforce=True) -> Client:
    client = Client(enforce_csrf_checks=enforce)
    client.force_login(user)
    return client


# -- every route of the resolver ------------------------------------------------------------


def _routes(resolver=None, prefix=""):
    """(route, callback) for every URL pattern, includes flattened."""
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            yield from _routes(entry, route)
        elif isinstance(entry, URLPattern):
            yield route, entry.callback


def _fill(route: str, world) -> str | None:
    """A concrete path for a route, with the world's objects in its parameters; None for a
    regular-expression route (the admin's catch-alls)."""
    values = {
        "owner": world["team"].slug,
        "team": world["team"].slug,
        "slug": world["team"].slug,
        "name": world["model"].slug,
        "build_id": str(world["build"].pk),
        "key_id": str(world["key"].pk),
        "request_id": str(world["invocation"].pk),
        "username": "bob",
        "version": "1.0.0",
        "project": "proj",
    }
    if route.startswith("^") or "(?P<" in route:
        return None

    def value(match):
        converter, name = match.group(1), match.group(2)
        if name in values:
            return values[name]
        return {"int": "1", "uuid": str(uuid.uuid4())}.get(converter, "x")

    return "/" + re.sub(r"<(?:(\w+):)?(\w+)>", value, route).lstrip("^").rstrip("$")


def _drf_view(callback):
    view_class = getattr(callback, "cls", None)
    if isinstance(view_class, type) and issubclass(view_class, APIView):
        return view_class
    return None


def _uses_session(view_class) -> bool:
    return any(issubclass(a, SessionAuthentication) for a in view_class.authentication_classes)


def csrf_exempt_offenders() -> list[str]:
    """Routes whose view Django's CSRF middleware skips without DRF checking it instead."""
    offenders = []
    for route, callback in _routes():
        if not getattr(callback, "csrf_exempt", False):
            continue
        view_class = _drf_view(callback)
        if view_class is None:
            offenders.append(f"{route}: @csrf_exempt on a plain Django view")
            continue
        for auth in view_class.authentication_classes:
            if (
                issubclass(auth, SessionAuthentication)
                and auth.enforce_csrf is not SessionAuthentication.enforce_csrf
            ):
                offenders.append(f"{route}: {auth.__name__} overrides enforce_csrf")
    return offenders


def test_no_view_is_csrf_exempt_except_api_views_that_check_it_themselves():
    """Django's CSRF middleware skips a @csrf_exempt view. Only DRF views may be exempt (DRF
    marks them so and checks CSRF itself in SessionAuthentication, whose check must be
    DRF's own, not overridden)."""
    assert len(list(_routes())) > 40
    offenders = csrf_exempt_offenders()
    assert not offenders, "\n".join(offenders)


# A urlconf with one more view, exempt: what the tests here must catch.
@csrf_exempt
def _forgeable(request):
    Team.objects.filter(slug="acme").update(name="Forged")
    return HttpResponse("done")


urlpatterns = [url_path("forgeable/", _forgeable), *root_urls.urlpatterns]


@pytest.mark.urls(__name__)
def test_a_new_exempt_view_is_caught(world):
    assert csrf_exempt_offenders() == ["forgeable/: @csrf_exempt on a plain Django view"]
    response = _session_client(world["root"]).post("/forgeable/", {})
    assert response.status_code == 200  # what the route walk below reports as a failure
    assert Team.objects.get(slug="acme").name == "Forged"


def test_every_route_refuses_a_post_without_a_token(world):
    """POST (and, under /v1/, PUT, PATCH and DELETE) to every route of the resolver, signed
    in, no token: 403 and nothing changed. An API view without session authentication
    must not act for the session at all."""
    client = _session_client(world["root"])
    before = fingerprint()
    problems, tried = [], 0
    for route, callback in _routes():
        path = _fill(route, world)
        if path is None or (route.startswith("admin/") and "<" in route):
            # The admin's per-object pages are Django's own views, like its list pages
            # tried here; the static test above covers their exemption.
            continue
        view_class = _drf_view(callback)
        methods = UNSAFE if path.startswith("/v1/") else ("post",)
        for method in methods:
            tried += 1
            response = getattr(client, method)(
                path, data='{"name": "csrf probe"}', content_type="application/json"
            )
            if view_class is not None and not _uses_session(view_class):
                ok = response.status_code in (401, 403, 404, 405)
            else:
                # The schema and its docs render YAML/HTML, so the error middleware gives
                # their 403 the generic message; every other refusal names CSRF.
                ok = response.status_code == 403 and (
                    b"CSRF" in response.content or path in ("/v1/schema", "/v1/docs")
                )
            if not ok:
                problems.append(f"{method.upper()} {path}: {response.status_code}")
    assert tried > 200
    changed = changed_tables(before, fingerprint())
    assert not changed, f"the forged requests changed {changed}"
    assert not problems, "\n".join(problems)


# -- every form the pages render ------------------------------------------------------------


class _Forms(HTMLParser):
    """The <form method="post">s of a page: action and fields with the values a user would
    send (hidden values as given, a first choice for selects and radios, plausible text)."""

    TEXT = {
        "name": "CSRF probe",
        "slug": "csrf-probe",
        "username": "bob",
        "email": "probe@example.com",
        "project": "proj",
        "monthly_amount": "12.50",
        "price_per_second": "0.5",
        "hardware_class": "cpu",
        "description": "made by a forged request",
        "release_notes": "forged",
        "role": "admin",
    }

    def __init__(self, page_url):
        super().__init__(convert_charrefs=True)
        self.page_url = page_url
        self.forms: list[dict] = []
        self._form = None
        self._select = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            if (a.get("method") or "get").lower() == "post":
                self._form = {"action": a.get("action") or self.page_url, "data": {}}
                self.forms.append(self._form)
            return
        if self._form is None:
            return
        name = a.get("name")
        data = self._form["data"]
        if tag == "input" and name:
            kind = (a.get("type") or "text").lower()
            if kind in ("radio", "checkbox"):
                data.setdefault(name, a.get("value", "on"))
            elif kind == "file":
                return
            elif kind == "hidden" or a.get("value"):
                data[name] = a.get("value", "")
            elif kind == "password":
                data[name] = "An0ther-secret-passphrase"
            elif kind in ("datetime-local", "date"):
                data[name] = "2030-01-01T00:00" if kind == "datetime-local" else "2030-01-01"
            else:
                data[name] = self.TEXT.get(name, "forged")
        elif tag == "textarea" and name:
            data[name] = self.TEXT.get(name, "forged")
        elif tag == "select" and name:
            self._select = name
        elif tag == "option" and self._select:
            data.setdefault(self._select, a.get("value", ""))

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None
        elif tag == "select":
            self._select = None


def _forms_on(client, url) -> list[dict]:
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    parser = _Forms(url)
    parser.feed(response.content.decode())
    return parser.forms


def _pages(world) -> list[str]:
    team, model, build = world["team"].slug, world["model"].slug, world["build"].pk
    return [
        "/",
        "/teams/",
        f"/teams/{team}/",
        "/keys/",
        "/new/",
        f"/{team}/{model}/builds/{build}",
        f"/teams/{team}/budgets/",
        "/pricing/",
        "/accounts/password/",
    ]


def test_every_rendered_post_form_refuses_a_forged_submission(world):
    reader = _session_client(world["root"], enforce=False)
    forms = []
    for page in _pages(world):
        forms += _forms_on(reader, page)
    anonymous_forms = _forms_on(Client(), "/accounts/login/") + _forms_on(
        Client(), "/accounts/signup/"
    )
    actions = {f["action"].split("?")[0] for f in forms + anonymous_forms}
    # Every kind of form the site has: logout, team create/update/members/delete, keys and
    # revoking them, upload, publish, budgets, prices, password, login, signup.
    for expected in ("/accounts/logout/", "/teams/", "/keys/", "/new/", "/pricing/"):
        assert expected in actions, (expected, actions)
    assert any(a.endswith("/revoke/") for a in actions)
    assert any(a.endswith("/publish") for a in actions)
    assert len(forms) >= 12

    attacker = _session_client(world["root"])
    problems = []
    before = fingerprint()
    for form, client in [(f, attacker) for f in forms] + [
        (f, Client(enforce_csrf_checks=True)) for f in anonymous_forms
    ]:
        data = {k: v for k, v in form["data"].items() if k != "csrfmiddlewaretoken"}
        response = client.post(form["action"], data)
        if response.status_code != 403:
            problems.append(f"POST {form['action']} {sorted(data)}: {response.status_code}")
        elif "CSRF check failed" not in response.content.decode():
            problems.append(f"POST {form['action']}: a 403 that is not the CSRF page")
        after = fingerprint()
        if after != before:
            changed = changed_tables(before, after)
            problems.append(f"POST {form['action']} {sorted(data)}: changed {changed}")
            before = after
    assert not problems, "\n".join(problems)


def test_the_same_form_with_its_token_does_change_things(world):
    """The control: the forms above are real forms, and with the token they act (so the
    'nothing changed' above is not vacuous)."""
    client = _session_client(world["root"])
    forms = _forms_on(client, "/teams/")
    create = next(f for f in forms if f["action"] == "/teams/")
    before = fingerprint()
    response = client.post("/teams/", create["data"])
    assert response.status_code in (200, 302), response.status_code
    assert fingerprint() != before
    assert Team.objects.filter(slug="csrf-probe").exists()


def test_every_post_form_in_the_templates_has_a_token():
    missing = []
    for template in sorted(TEMPLATES.rglob("*.html")):
        source = template.read_text()
        for match in re.finditer(r"<form\b[^>]*>(.*?)</form>", source, re.S | re.I):
            opening = match.group(0)[: match.group(0).index(">") + 1]
            if re.search(r'method\s*=\s*"?post', opening, re.I) and (
                "{% csrf_token %}" not in match.group(1)
            ):
                missing.append(f"{template.relative_to(TEMPLATES)}: {opening}")
    assert not missing, "\n".join(missing)


# -- the API: session needs the token, a key does not ---------------------------------------


def test_api_with_a_session_needs_the_token_for_every_unsafe_method(world):
    root = world["root"]
    key = world["key"]
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(root)
    before = fingerprint()
    for method, path, body in (
        ("post", "/v1/keys", {"name": "forged", "scopes": ["algo://*"]}),
        ("post", "/v1/teams", {"slug": "forged-team", "name": "Forged"}),
        ("patch", "/v1/teams/acme", {"name": "Forged"}),
        ("delete", f"/v1/keys/{key.pk}", None),
        ("delete", "/v1/teams/acme/members/bob", None),
        ("post", "/v1/algo/acme/vision", {"text": "hi"}),
        ("post", f"/v1/invocations/{world['invocation'].pk}/cancel", None),
    ):
        response = getattr(client, method)(path, body, format="json")
        assert response.status_code == 403, (method, path, response.status_code)
        error = response.json()["error"]
        assert "CSRF" in error["message"] and error["error_type"], error
    assert fingerprint() == before
    assert ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).exists()

    # With the token, the same session may act.
    client.get("/keys/")  # sets the CSRF cookie
    token = client.cookies[settings.CSRF_COOKIE_NAME].value
    response = client.post(
        "/v1/keys",
        {"name": "with token", "scopes": ["algo://*"]},
        format="json",
        HTTP_X_CSRFTOKEN=token,
    )
    assert response.status_code == 201, response.content
    assert ApiKey.objects.filter(name="with token").exists()


def test_api_with_a_key_needs_no_token(world):
    _key, secret = make_key(world["root"])
    client = APIClient(enforce_csrf_checks=True)
    client.credentials(HTTP_AUTHORIZATION=f"Simple {secret}")
    response = client.post("/v1/keys", {"name": "by key", "scopes": ["algo://*"]}, format="json")
    assert response.status_code == 201, response.content
    response = client.patch("/v1/teams/acme", {"name": "Renamed by key"}, format="json")
    assert response.status_code == 200, response.content
    assert Team.objects.get(slug="acme").name == "Renamed by key"
    created = ApiKey.objects.get(name="by key")
    assert client.delete(f"/v1/keys/{created.pk}").status_code in (200, 204)
