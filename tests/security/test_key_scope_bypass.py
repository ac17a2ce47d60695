"""A key scoped to one model, or to some of its versions, cannot reach anything else: not by
changing the case of the path, adding or doubling slashes, percent-encoding them (once or
twice), dot segments, other spellings of a version (1, 1.*, 1.0, latest, latestPrivate, a
build hash, 01.0.0), nor by using another endpoint than invoke. Each attempt is refused
(400, 403 or 404, and nothing runs or is metered) or resolves to exactly the allowed model
and version.

Most checks stop at the authorization answer (no model process is involved); one test makes
a few real calls through the runner to show that the allowed spellings run the allowed
version."""

from __future__ import annotations

import pytest

from billing.models import UsageRecord
from catalog.models import Version
from gateway.models import Invocation
from gateway.services import authorise_call
from marketplace.accounts.models import ApiKey
from marketplace.accounts.principals import Principal
from marketplace.accounts.scopes import normalise_scopes
from marketplace.core.errors import ApiError
from tests.catalog.factories import BuildFactory, ModelFactory, VersionFactory
from tests.conftest import assert_error_shape
from tests.factories import MembershipFactory, TeamFactory, UserFactory, make_key
from tests.gateway.conftest import TOOLBOX_MODEL, publish, runner, storage  # noqa: F401

from .leak_world import api

ONE_MINOR = "algo://demo/sentiment/1.*"


@pytest.fixture
def shelf(db):
    """demo/sentiment 1.0.0, 1.1.0, 2.0.0 (public), 3.0.0 (private) and a newer unpublished
    build; demo/sentiment-pro and demo/other (public). `kit` is a caller from elsewhere;
    `dora` is a member of demo."""
    demo = TeamFactory(slug="demo")
    dora = UserFactory(username="dora")
    MembershipFactory(team=demo, user=dora, role="owner")
    sentiment = ModelFactory(owner=demo, slug="sentiment", visibility="public")
    versions = {
        number: VersionFactory(model=sentiment, number=number, visibility=visibility)
        for number, visibility in (
            ("1.0.0", "public"),
            ("1.1.0", "public"),
            ("2.0.0", "public"),
            ("3.0.0", "private"),
        )
    }
    unpublished = BuildFactory(model=sentiment)
    for slug in ("sentiment-pro", "other"):
        VersionFactory(model=ModelFactory(owner=demo, slug=slug, visibility="public"))
    kit = UserFactory(username="kit")
    return {
        "demo": demo,
        "dora": dora,
        "kit": kit,
        "versions": versions,
        "unpublished": unpublished,
    }


def _nothing_ran(before: tuple[int, int]) -> None:
    assert (Invocation.objects.count(), UsageRecord.objects.count()) == before


def _counts() -> tuple[int, int]:
    return Invocation.objects.count(), UsageRecord.objects.count()


def _label(principal: Principal, path: str) -> str:
    """What a call to owner/name[/version] would run, as the gateway decides it."""
    owner, name, *version = path.split("/", 2)
    model, target, _ = authorise_call(principal, owner, name, version[0] if version else None)
    return f"{model.full_name}/{target.label}"


def _refused(principal: Principal, path: str) -> int:
    owner, name, *version = path.split("/", 2)
    with pytest.raises(ApiError) as refused:
        authorise_call(principal, owner, name, version[0] if version else None)
    return refused.value.status_code


def test_paths_that_are_not_the_allowed_model_are_refused(shelf):
    client = api(make_key(shelf["kit"], scopes=[ONE_MINOR])[1])
    before = _counts()
    refusals = {
        # case: names are lowercase slugs; another case is another (unknown) name
        "/v1/algo/DEMO/sentiment/1.0.0": 404,
        "/v1/algo/demo/Sentiment/1.0.0": 404,
        "/v1/algo/Demo/SENTIMENT": 404,
        # slashes: trailing, doubled, leading
        "/v1/algo/demo/sentiment/1.0.0/": 404,
        "/v1/algo/demo/sentiment/": 404,
        "/v1/algo/demo//sentiment/1.0.0": 404,
        "/v1/algo//demo/sentiment/1.0.0": 404,
        "/v1/algo/demo/sentiment//1.0.0": 404,
        # percent-encoded slashes arrive decoded: they name another model or version
        "/v1/algo/demo%2Fsentiment-pro": 403,
        "/v1/algo/demo/sentiment%2F2.0.0": 403,
        "/v1/algo/demo%2Fsentiment%2F2.0.0": 403,
        "/v1/algo/demo%2Fsentiment": 403,  # latest is 2.0.0
        # double-encoded: not a name at all
        "/v1/algo/demo/sentiment%252F1.0.0": 404,
        "/v1/algo/demo%252Fsentiment/1.0.0": 404,
        # dot segments are not resolved into another model or version
        "/v1/algo/demo/other/../sentiment/1.0.0": 404,
        "/v1/algo/demo/sentiment/./1.0.0": 404,
        "/v1/algo/demo/sentiment/1.0.0/../2.0.0": 404,
        "/v1/algo/demo/sentiment/1.0.0%2F..%2F2.0.0": 404,
        "/v1/algo/demo/sentiment/%2E%2E/other": 404,
        # other models of the same owner, and names that merely start the same
        "/v1/algo/demo/sentiment-pro/1.0.0": 403,
        "/v1/algo/demo/other": 403,
        "/v1/algo/demo/sentimen/1.0.0": 404,
    }
    for path, status in refusals.items():
        response = client.post(path, {"text": "x"}, format="json")
        assert response.status_code == status, (path, response.status_code, response.content)
        assert_error_shape(response, status)
    _nothing_ran(before)


def test_version_spellings_outside_the_scope_are_refused(shelf):
    kit = make_key(shelf["kit"], scopes=[ONE_MINOR])[1]
    exact = make_key(shelf["kit"], scopes=["algo://demo/sentiment/1.0.0"])[1]
    hash_of = {n: v.build.package_hash for n, v in shelf["versions"].items()}
    before = _counts()
    cases = [
        (kit, "", 403),  # no version: latest is 2.0.0
        (kit, "/latest", 403),
        (kit, "/2.0.0", 403),
        (kit, "/2", 403),
        (kit, "/2.*", 403),
        (kit, "/2.0", 403),
        (kit, "/02.0.0", 403),
        (kit, "/3.0.0", 404),  # private: not to a caller from elsewhere
        (kit, "/3", 404),
        (kit, "/latestPrivate", 404),
        (kit, f"/{hash_of['1.0.0']}", 404),  # build hashes are for the owners
        (kit, f"/{hash_of['1.0.0'][:12]}", 404),
        (kit, "/LATEST", 400),
        (kit, "/Latest", 400),
        (kit, "/latestprivate", 400),
        (kit, "/1.0.0.0", 400),
        (kit, "/1.0.0-rc1", 400),
        (kit, "/v1.0.0", 400),
        (kit, "/*", 400),
        (kit, "/1.*.*", 400),
        (kit, "/%2A", 400),
        (exact, "/1", 403),  # 1.1.0
        (exact, "/1.*", 403),
        (exact, "/1.1.0", 403),
        (exact, "", 403),
    ]
    for secret, version, status in cases:
        response = api(secret).post(
            f"/v1/algo/demo/sentiment{version}", {"text": "x"}, format="json"
        )
        assert response.status_code == status, (version, response.content)
        assert_error_shape(response, status)
    _nothing_ran(before)


def test_allowed_spellings_resolve_to_exactly_the_allowed_version(shelf):
    kit_minor = Principal(shelf["kit"], make_key(shelf["kit"], scopes=[ONE_MINOR])[0])
    for spelling, label in {
        "1": "1.1.0",
        "1.*": "1.1.0",
        "1.0": "1.0.0",
        "1.0.*": "1.0.0",
        "01.0.0": "1.0.0",
        "1.00.000": "1.0.0",
        " 1.0.0 ": "1.0.0",
        "1.1.0": "1.1.0",
    }.items():
        assert _label(kit_minor, f"demo/sentiment/{spelling}") == f"demo/sentiment/{label}"
    kit_exact = Principal(
        shelf["kit"], make_key(shelf["kit"], scopes=["algo://demo/sentiment/1.0.0"])[0]
    )
    assert _label(kit_exact, "demo/sentiment/1.0") == "demo/sentiment/1.0.0"
    assert _label(kit_exact, "demo/sentiment/01.00.00") == "demo/sentiment/1.0.0"
    assert _refused(kit_exact, "demo/sentiment/1") == 403
    # A scope's own spelling is canonical: its case cannot widen or dodge it.
    assert normalise_scopes(["ALGO://Demo/Sentiment/1.*"]) == [ONE_MINOR]
    shouty = Principal(
        shelf["kit"], make_key(shelf["kit"], scopes=["algo://DEMO/SENTIMENT/1.*"])[0]
    )
    assert _label(shouty, "demo/sentiment/1") == "demo/sentiment/1.1.0"
    assert _refused(shouty, "demo/sentiment/2") == 403
    assert _refused(shouty, "demo/sentiment-pro") == 403


def test_an_owners_narrow_key_cannot_reach_other_builds_of_its_model(shelf):
    """A member may call latestPrivate and build hashes; the scope still decides on what
    they resolve to."""
    dora = shelf["dora"]
    narrow = Principal(dora, make_key(dora, scopes=[ONE_MINOR])[0])
    versions, unpublished = shelf["versions"], shelf["unpublished"]
    assert _refused(narrow, "demo/sentiment/latestPrivate") == 403  # the unpublished build
    assert _refused(narrow, f"demo/sentiment/{unpublished.package_hash}") == 403
    assert _refused(narrow, f"demo/sentiment/{unpublished.package_hash[:12]}") == 403
    assert _refused(narrow, f"demo/sentiment/{versions['3.0.0'].build.package_hash}") == 403
    assert _refused(narrow, "demo/sentiment/3") == 403
    assert _refused(narrow, "demo/sentiment") == 403  # a member's latest is 3.0.0
    one = versions["1.0.0"].build.package_hash
    assert _label(narrow, f"demo/sentiment/{one[:12]}") == "demo/sentiment/1.0.0"
    assert Version.objects.filter(build__package_hash=one).count() == 1
    # A scope naming a build hash allows that build and nothing else.
    by_hash = Principal(
        dora, make_key(dora, scopes=[f"algo://demo/sentiment/{unpublished.short_hash}"])[0]
    )
    assert _label(by_hash, "demo/sentiment/latestPrivate").endswith(unpublished.short_hash)
    assert _refused(by_hash, "demo/sentiment/1.0.0") == 403


def test_a_narrow_key_cannot_use_other_endpoints(shelf):
    dora = shelf["dora"]
    narrow_key, narrow_secret = make_key(dora, scopes=[ONE_MINOR])
    other_key, _ = make_key(dora, name="another key")
    client = api(narrow_secret)
    base = "/v1/models/demo/sentiment"
    refused = [
        client.post("/v1/models/demo", {"http": {"url": "http://127.0.0.1:1/"}}, format="json"),
        client.post(f"{base}/versions", {"bump": "patch", "visibility": "public"}, format="json"),
        client.patch(base, {"warm_processes": 1}, format="json"),
        client.delete(base),
        client.get("/v1/teams/demo/usage"),
        client.get("/v1/teams/demo/usage?format=csv"),
        client.get("/v1/teams/demo/earnings"),
        client.get("/v1/teams/demo/budget"),
        client.get("/v1/teams/demo/budgets"),
        client.put("/v1/teams/demo/budget", {"monthly_amount": "1"}, format="json"),
        client.get("/v1/teams/demo/audit"),
        client.get("/v1/teams/demo/signing-secret"),
        client.post("/v1/teams/demo/webhooks", {"url": "http://127.0.0.1:1/", "events": ["x"]}),
        client.post("/v1/teams", {"slug": "escape", "name": "Escape"}, format="json"),
        client.patch("/v1/teams/demo", {"name": "Renamed"}, format="json"),
        client.post("/v1/teams/demo/members", {"username": "kit", "role": "owner"}),
        client.delete("/v1/teams/demo/members/dora"),
        client.post("/v1/keys", {"name": "wider", "scopes": ["algo://*"]}, format="json"),
        client.get("/v1/keys"),
        client.get(f"/v1/keys/{other_key.pk}"),
        client.delete(f"/v1/keys/{other_key.pk}"),
        client.delete(f"/v1/keys/{narrow_key.pk}"),
    ]
    for response in refused:
        assert response.status_code == 403, (response.request, response.content)
        assert_error_shape(response, 403)
    assert "secret" not in refused[11].json()
    other_key.refresh_from_db()
    assert other_key.revoked_at is None
    assert not ApiKey.objects.filter(name="wider").exists()
    shelf["demo"].refresh_from_db()
    assert shelf["demo"].name != "Renamed"
    # What a narrow key may still read: the public catalogue and the model it calls.
    assert client.get(base).status_code == 200
    assert client.get("/v1/me").status_code == 200


@pytest.mark.slow
def test_allowed_spellings_run_exactly_the_allowed_version(transactional_db, storage, runner):  # noqa: F811
    """Real calls: the spellings a scoped key may use run the version its scope allows."""
    ada = UserFactory(username="ada")
    publish(ada, TOOLBOX_MODEL)
    publish(ada, {**TOOLBOX_MODEL, "README.md": "two"}, bump="major")
    caller = api(make_key(UserFactory(), scopes=["algo://ada/toolbox/1.*"])[1])
    for path in (
        "/v1/algo/ada/toolbox/01.0.0",
        "/v1/algo/ada%2Ftoolbox%2F1",
        "/v1/algo/ada/toolbox/1.%2A",
    ):
        response = caller.post(path, {"text": "hi"}, format="json")
        assert response.status_code == 200, (path, response.content)
        assert response.json()["result"] == {"echo": {"text": "hi"}}
        call = Invocation.objects.get(pk=response.json()["request_id"])
        assert (call.model.full_name, call.version_label) == ("ada/toolbox", "1.0.0"), path
    for path in ("/v1/algo/ada/toolbox", "/v1/algo/ADA/toolbox/1.0.0", "/v1/algo/ada/toolbox/2"):
        response = caller.post(path, {"text": "hi"}, format="json")
        assert response.status_code in (403, 404), (path, response.content)
    assert Invocation.objects.count() == 3 and UsageRecord.objects.count() == 3
