"""A private model must not leak through any path: search (API, page, live fragment, facets,
filters), suggestions, corrections, the owner's profile, the home page, the model's page and
API, versions (every version form), builds and logs, snippets, metrics, errors, the
algorithms API (and every path by the owner's client alias), the
invocation resource (read and cancel), the request log, dashboards, usage reports and the
sitemap. The outsider (session, personal key, team key) and anonymous visitors see neither
the model nor any of its words or figures, and get 404 where its existence is private; its
owners see each of them, so every check can fail."""

from __future__ import annotations

import pytest

from billing.models import UsageRecord
from catalog.search import corrections
from catalog.services import version_publish
from gateway.models import Invocation
from marketplace.accounts.principals import Principal
from tests.catalog.factories import BuildFactory
from tests.conftest import assert_error_shape

from .leak_world import (
    ALIAS_PATH,
    OUTSIDER_TEAM,
    OWNER_TEAM,
    PRIVATE_NAME,
    PRIVATE_PATH,
    PRIVATE_TASK,
    PUBLIC_NAME,
    SEARCHABLE,
    SHARED_TAG,
    SHARED_TASK,
    WORDS,
    api,
    assert_no_private_words,
    browser,
    build_leak_world,
    outsider_api_clients,
    outsider_browsers,
    text_of,
)

LIVE = {"HTTP_X_LIVE_SEARCH": "1"}


@pytest.fixture
def world(db):
    return build_leak_world()


def _names(body: dict) -> set[str]:
    return {f"{m['owner']}/{m['name']}" for m in body["results"]}


def _facet(body: dict, name: str) -> dict[str, int]:
    return {f["value"]: f["count"] for f in body["facets"][name]}


# -- search ------------------------------------------------------------------------------------


def test_search_api_never_finds_the_private_model_by_any_of_its_words(world):
    owner = api(world.owner_key[1])
    for field_name in SEARCHABLE:
        word = WORDS[field_name]
        mine = owner.get("/v1/models", {"search": word})
        assert PRIVATE_PATH in _names(mine.json()), (field_name, mine.json())
        for who, client in outsider_api_clients(world).items():
            response = client.get("/v1/models", {"search": word})
            assert response.status_code == 200, (who, response.content)
            assert response.json()["count"] == 0, (who, field_name, response.json())
            assert_no_private_words(response, who=f"{who} searching {word}")


def test_filters_on_private_values_find_nothing_and_facets_do_not_count_it(world):
    owner = api(world.owner_key[1])
    private_filters = [
        {"task": PRIVATE_TASK},
        {"tags": WORDS["tag"]},
        {"framework": WORDS["framework"]},
    ]
    for params in private_filters:
        assert owner.get("/v1/models", params).json()["count"] == 1, params
    mine = owner.get("/v1/models", {"owner": OWNER_TEAM}).json()
    assert mine["count"] == 2 and _facet(mine, "tags")[SHARED_TAG] == 2
    everything = owner.get("/v1/models").json()
    assert _facet(everything, "tags")[SHARED_TAG] == 3
    assert _facet(everything, "owner")[OWNER_TEAM] == 2
    assert _facet(everything, "task")[PRIVATE_TASK] == 1

    for who, client in outsider_api_clients(world).items():
        for params in private_filters:
            response = client.get("/v1/models", params)
            assert response.json()["count"] == 0, (who, params)
            assert_no_private_words(response, allowed=("task", "tag", "framework"), who=who)
        body = client.get("/v1/models", {"owner": OWNER_TEAM}).json()
        assert _names(body) == {f"{OWNER_TEAM}/{PUBLIC_NAME}"}, who
        assert _facet(body, "tags") == {SHARED_TAG: 1}, who
        response = client.get("/v1/models", {"page_size": 100})
        body = response.json()
        assert PRIVATE_PATH not in _names(body) and body["count"] == 2, who
        assert _facet(body, "tags") == {SHARED_TAG: 2}, who
        assert _facet(body, "task") == {SHARED_TASK: 2}, who
        assert _facet(body, "owner") == {OWNER_TEAM: 1, OUTSIDER_TEAM: 1}, who
        assert "torch" in _facet(body, "framework") and "mit" in _facet(body, "license")
        assert_no_private_words(response, who=who)
        for sort in ("popular", "recent", "relevance"):
            response = client.get("/v1/models", {"sort": sort, "search": "zephyrine oracle"})
            assert response.json()["count"] == 0, (who, sort)


def test_suggestions_never_complete_to_the_private_model(world):
    prefixes = ["zep", "zephyr", "zephyrine", "zephyrine-ora", "zephyrime", "oracle"]
    owner = api(world.owner_key[1])
    for text in prefixes:
        names = {
            s["name"] for s in owner.get("/v1/models/suggest", {"q": text}).json()["suggestions"]
        }
        assert PRIVATE_NAME in names, text
    for who, client in outsider_api_clients(world).items():
        for text in prefixes:
            response = client.get("/v1/models/suggest", {"q": text})
            assert response.status_code == 200
            assert response.json()["suggestions"] == [], (who, text, response.json())


def test_did_you_mean_never_suggests_a_private_word(world):
    owner = Principal(world.owner)
    # A candidate model is found by its name; its tagline and tags then correct other words.
    typos = {"zephyrime": "zephyrine", "zephyrime quokkaflix": "quokkaflux"}
    for typo, word in typos.items():
        assert any(word in c for c in corrections(owner, typo)), typo
    for who, client in outsider_browsers(world).items():
        for typo, word in typos.items():
            for extra in ({}, LIVE):
                page = client.get("/explore/", {"q": typo}, **extra)
                assert page.status_code == 200
                assert word not in text_of(page).lower(), (who, typo)
                assert_no_private_words(page, who=f"{who} typing {typo}")


def test_explore_page_and_live_fragment_never_show_the_private_model(world):
    owner = browser(world.owner)
    for number, field_name in enumerate(SEARCHABLE):
        word = WORDS[field_name]
        extra = LIVE if number % 2 else {}  # the full page and the live fragment, in turn
        page = owner.get("/explore/", {"q": word}, **extra)
        assert f"/{PRIVATE_PATH}" in text_of(page), (field_name, extra)
        for who, client in outsider_browsers(world).items():
            page = client.get("/explore/", {"q": word}, **extra)
            assert page.status_code == 200
            # The page repeats what was typed; nothing else of the model may show.
            assert_no_private_words(page, allowed=(field_name,), who=f"{who}: {word}")
    assert f"/{PRIVATE_PATH}" in text_of(owner.get("/explore/"))
    assert WORDS["task"] in text_of(owner.get("/explore/"))  # its facet link
    for who, client in outsider_browsers(world).items():
        for params, extra in (
            ({}, {}),
            ({}, LIVE),
            ({"sort": "recent"}, {}),
            ({"tags": SHARED_TAG}, LIVE),
            ({"owner": OWNER_TEAM}, {}),
        ):
            page = client.get("/explore/", params, **extra)
            assert PUBLIC_NAME in text_of(page), (who, params)
            assert_no_private_words(page, who=f"{who}: {params}")
        page = client.get("/explore/", {"task": PRIVATE_TASK})
        assert_no_private_words(page, allowed=("task",), who=who)
        assert f"/{PRIVATE_PATH}" not in text_of(page)


def test_home_and_owner_profile_show_only_public_models_to_others(world):
    owner = browser(world.owner)
    profile = owner.get(f"/{OWNER_TEAM}")
    assert f"/{PRIVATE_PATH}" in text_of(profile) and WORDS["task"] in text_of(profile)
    for who, client in outsider_browsers(world).items():
        home = client.get("/")
        assert home.status_code == 200 and PUBLIC_NAME in text_of(home)
        assert_no_private_words(home, who=who)
        profile = client.get(f"/{OWNER_TEAM}")
        assert profile.status_code == 200 and PUBLIC_NAME in text_of(profile), who
        assert_no_private_words(profile, who=who)
        page = client.get(f"/{OWNER_TEAM}/{PUBLIC_NAME}")
        assert page.status_code == 200
        assert_no_private_words(page, who=who)


# -- the model itself --------------------------------------------------------------------------


def _model_api_paths(world) -> list[str]:
    base = f"/v1/models/{PRIVATE_PATH}"
    build = world.private_versions["1.0.0"].build_id
    versions = ["1.0.0", "1.1.0", "1", "1.*", "1.0", "latest", "latestPrivate"]
    versions.append(world.private_hash[:12])
    return [
        base,
        f"{base}/versions",
        *(f"{base}/versions/{v}" for v in versions),
        f"{base}/snippets",
        *(f"{base}/snippets?version={v}" for v in ("1.1.0", "latestPrivate", versions[-1])),
        f"{base}/builds",
        f"{base}/builds/{build}",
        f"{base}/builds/{build}/logs",
        f"{base}/metrics?bucket=day",
        f"{base}/errors",
        *_algorithms_api_paths(world, PRIVATE_PATH),
        # The owner by its Algorithmia client alias (quillon_labs) is the same namespace.
        f"/v1/models/{ALIAS_PATH}",
        f"/v1/models/{ALIAS_PATH}/versions/latestPrivate",
        *_algorithms_api_paths(world, ALIAS_PATH),
    ]


def _algorithms_api_paths(world, path: str) -> list[str]:
    base = f"/v1/algorithms/{path}"
    build = world.private_versions["1.0.0"].build_id
    return [
        base,
        f"{base}/versions",
        f"{base}/versions?published=true&callable=false",
        f"{base}/versions/{world.private_hash}",
        f"{base}/versions/{world.private_hash[:12]}",
        f"{base}/builds",
        f"{base}/builds/{build}",
        f"{base}/builds/{build}/logs",
    ]


def test_every_api_path_of_the_private_model_is_a_404_to_others(world):
    owner = api(world.owner_key[1])
    paths = _model_api_paths(world)
    for path in paths:
        response = owner.get(path)
        assert response.status_code == 200, (path, response.content)
    assert WORDS["error"] in text_of(owner.get(f"/v1/models/{PRIVATE_PATH}/errors"))
    assert WORDS["readme"] in text_of(owner.get(f"/v1/models/{PRIVATE_PATH}"))
    for who, client in outsider_api_clients(world).items():
        for path in paths:
            response = client.get(path)
            # Anonymous callers of the owners-only endpoints are asked to authenticate first.
            expected = (401, 404) if who == "anonymous" else (404,)
            assert response.status_code in expected, (who, path, response.status_code)
            assert_error_shape(response, response.status_code)
            assert_no_private_words(response, allowed=("name",), who=f"{who} {path}")


def test_the_private_model_cannot_be_changed_or_called_by_others(world):
    base = f"/v1/models/{PRIVATE_PATH}"
    calls, records = Invocation.objects.count(), UsageRecord.objects.count()
    for who, client in outsider_api_clients(world).items():
        attempts = [
            client.patch(base, {"warm_processes": 1}, format="json"),
            client.delete(base),
            client.post(f"{base}/versions", {"bump": "patch", "visibility": "public"}),
            client.post(f"/v1/algo/{PRIVATE_PATH}", {"text": "hi"}, format="json"),
            client.post(f"/v1/algo/{PRIVATE_PATH}/1.0.0", {"text": "hi"}, format="json"),
            client.post(f"/v1/algo/{PRIVATE_PATH}/latestPrivate", "hi", content_type="text/plain"),
            client.post(f"/v1/algo/{PRIVATE_PATH}/{world.private_hash}", {}, format="json"),
            client.post(f"/v1/algo/{ALIAS_PATH}", {"text": "hi"}, format="json"),
            client.put(f"/v1/algorithms/{PRIVATE_PATH}", {"details": {}}, format="json"),
            client.delete(f"/v1/algorithms/{ALIAS_PATH}"),
            client.post(f"/v1/algorithms/{PRIVATE_PATH}/compile"),
            client.post(
                f"/v1/algorithms/{ALIAS_PATH}/versions",
                {"version_info": {"version_type": "minor"}},
                format="json",
            ),
        ]
        for response in attempts:
            assert response.status_code in (401, 404), (who, response.request, response.content)
            assert_no_private_words(response, allowed=("name",), who=who)
    world.private.refresh_from_db()
    assert world.private.warm_processes == 0 and world.private.versions.count() == 2
    assert (Invocation.objects.count(), UsageRecord.objects.count()) == (calls, records)


def _model_pages(world) -> list[str]:
    build = world.private_versions["1.0.0"].build_id
    return [
        f"/{PRIVATE_PATH}",
        f"/{PRIVATE_PATH}/builds/{build}",
        f"/{PRIVATE_PATH}/monitoring",
        f"/{PRIVATE_PATH}/monitoring?window=30d",
        f"/{PRIVATE_PATH}/monitoring/errors",
    ]


def test_every_page_of_the_private_model_is_a_404_to_others(world):
    owner = browser(world.owner)
    for path in _model_pages(world):
        page = owner.get(path)
        assert page.status_code == 200, path
    model_page = text_of(owner.get(f"/{PRIVATE_PATH}"))
    assert WORDS["readme"] in model_page and WORDS["input"] in model_page  # README, snippets
    assert WORDS["error"] in text_of(owner.get(f"/{PRIVATE_PATH}/monitoring/errors"))
    for who, client in outsider_browsers(world).items():
        for path in _model_pages(world):
            page = client.get(path)
            if who == "anonymous" and path != f"/{PRIVATE_PATH}":
                assert page.status_code == 302 and "/accounts/login/" in page["Location"]
            else:
                assert page.status_code == 404, (who, path, page.status_code)
            assert_no_private_words(page, allowed=("name",), who=f"{who} {path}")
    build = world.private_versions["1.0.0"].build_id
    publish = browser(world.outsider).post(
        f"/{PRIVATE_PATH}/builds/{build}/publish", {"bump": "patch", "visibility": "public"}
    )
    assert publish.status_code == 404
    assert world.private.versions.count() == 2


def test_a_private_major_version_of_a_public_model_stays_private(world):
    """Team A publishes 2.0.0 of its public model as private: what that version says about
    itself (title, tagline, README, tags, sample) must not reach anyone outside the team."""
    secret = "marrowquill"
    build = BuildFactory(
        model=world.public,
        sample_input={"text": secret},
        manifest={
            "name": PUBLIC_NAME,
            "runtime": "python",
            "entrypoint": "predict.py:apply",
            "title": "Lantern Marrowquill",
            "tagline": f"The {secret} edition",
            "readme": f"# {secret}\n",
            "tags": [f"{secret}-tag"],
            "task": SHARED_TASK,
        },
    )
    version_publish(
        actor=world.owner, model=world.public, build=build, bump="major", visibility="private"
    )
    base = f"/v1/models/{OWNER_TEAM}/{PUBLIC_NAME}"
    owner = api(world.owner_key[1])
    assert [v["version"] for v in owner.get(f"{base}/versions").json()["results"]] == [
        "2.0.0",
        "1.0.0",
    ]
    assert secret in text_of(owner.get(f"{base}/snippets", {"version": "2"}))
    for who, client in outsider_api_clients(world).items():
        detail = client.get(base)
        assert detail.status_code == 200 and detail.json()["latest_version"] == "1.0.0", who
        listed = client.get(f"{base}/versions").json()["results"]
        assert [v["version"] for v in listed] == ["1.0.0"], who
        for path in (
            base,
            f"{base}/versions",
            f"{base}/snippets",
            "/v1/models?search=lantern",
            "/v1/models/suggest?q=lantern",
            f"/v1/models?tags={SHARED_TAG}",
        ):
            response = client.get(path)
            assert response.status_code == 200, (who, path)
            assert secret not in text_of(response), (who, path)
        for version in ("2.0.0", "2", "2.*", "latestPrivate", build.package_hash[:12]):
            for path in (f"{base}/versions/{version}", f"{base}/snippets?version={version}"):
                response = client.get(path)
                assert response.status_code == 404, (who, path)
                assert secret not in text_of(response), (who, path)
        response = client.get("/v1/models", {"search": secret})
        assert response.json()["count"] == 0, who
    for who, client in outsider_browsers(world).items():
        page = client.get(f"/{OWNER_TEAM}/{PUBLIC_NAME}")
        assert page.status_code == 200 and secret not in text_of(page), who
        assert "2.0.0" not in text_of(page), who
        for path in ("/explore/?q=lantern", f"/{OWNER_TEAM}", "/", "/sitemap.xml"):
            assert secret not in text_of(client.get(path)), (who, path)


# -- calls, usage and monitoring ---------------------------------------------------------------


def test_the_invocation_resource_is_a_404_to_others_and_cannot_be_canceled(world):
    owner = api(world.owner_key[1])
    mine = owner.get(f"/v1/invocations/{world.failed_call.pk}").json()
    assert mine["model"] == PRIVATE_PATH and WORDS["error"] in mine["error"]["message"]
    assert WORDS["error"] in mine["error"]["stacktrace"]
    for who, client in outsider_api_clients(world).items():
        for call in (world.failed_call, world.owner_call):
            response = client.get(f"/v1/invocations/{call.pk}")
            assert response.status_code in (401, 404), (who, response.content)
            assert_no_private_words(response, who=who)
            response = client.post(f"/v1/invocations/{call.pk}/cancel")
            assert response.status_code in (401, 404), (who, response.content)
            assert_no_private_words(response, who=who)
    world.owner_call.refresh_from_db()
    assert world.owner_call.status == "running"
    # The outsider's own call of team A's public model is theirs to read.
    theirs = api(world.outsider_key[1]).get(f"/v1/invocations/{world.outsider_call.pk}")
    assert theirs.status_code == 200 and theirs.json()["caller"] == OUTSIDER_TEAM


def test_the_request_log_shows_a_private_call_only_to_its_team(world):
    path = f"/requests/?id={world.failed_call.pk}"
    assert WORDS["error"] in text_of(browser(world.owner).get(path))
    page = browser(world.outsider).get(path)
    assert page.status_code == 404
    assert_no_private_words(page, who="outsider")
    assert browser().get(path).status_code == 302


def test_dashboards_and_usage_never_mention_the_private_model_to_others(world):
    owner = browser(world.owner)
    assert f"/{PRIVATE_PATH}" in text_of(owner.get("/dashboard/"))
    usage = api(world.owner_key[1]).get(f"/v1/teams/{OWNER_TEAM}/usage", {"group_by": "model"})
    assert PRIVATE_PATH in text_of(usage)
    outsider_pages = [
        "/dashboard/",
        "/new/",
        "/billing/",
        f"/teams/{OUTSIDER_TEAM}/usage/",
        f"/teams/{OUTSIDER_TEAM}/usage/?group_by=version",
        f"/teams/{OUTSIDER_TEAM}/earnings/",
        f"/teams/{OUTSIDER_TEAM}/budgets/",
        f"/teams/{OUTSIDER_TEAM}/",
        f"/teams/{OUTSIDER_TEAM}/audit/",
        "/keys/",
        "/teams/",
    ]
    client = browser(world.outsider)
    for path in outsider_pages:
        page = client.get(path)
        assert page.status_code == 200, path
        assert_no_private_words(page, who=path)
    outsider = api(world.outsider_key[1])
    for group_by in ("model", "version", "key", "user", "project", "day", "status"):
        for fmt in ("json", "csv"):
            response = outsider.get(
                f"/v1/teams/{OUTSIDER_TEAM}/usage", {"group_by": group_by, "format": fmt}
            )
            assert response.status_code == 200
            assert_no_private_words(response, who=f"usage by {group_by} {fmt}")
    for path in ("/v1/platform/usage", "/v1/platform/usage?group_by=model"):
        response = outsider.get(path)
        assert_error_shape(response, 404)
    assert client.get("/admin-report/?group_by=model").status_code == 404
    audit = client.get("/audit/?target=zephyrine")
    assert audit.status_code in (403, 404)
    assert_no_private_words(audit, allowed=("name",), who="platform audit")


# -- the sitemap --------------------------------------------------------------------------------


def test_the_sitemap_lists_public_models_and_never_private_ones(world):
    sitemap = browser(world.owner).get("/sitemap.xml")
    assert sitemap.status_code == 200 and sitemap["Content-Type"].startswith("application/xml")
    text = text_of(sitemap)
    assert f"http://testserver/{OWNER_TEAM}/{PUBLIC_NAME}</loc>" in text
    assert f"http://testserver/{OUTSIDER_TEAM}/vantor-echo</loc>" in text
    assert f"http://testserver/{OWNER_TEAM}</loc>" in text  # the profile of an owner
    assert "http://testserver/explore/</loc>" in text and "http://testserver/</loc>" in text
    # Never a private model, nor a page only owners reach, even when the owner asks.
    assert_no_private_words(sitemap, who="sitemap")
    for private_part in ("/monitoring", "/builds/", "/teams/", "/billing/", "/keys/", "/v1/"):
        assert private_part not in text, private_part
    assert text_of(browser().get("/sitemap.xml")) == text


def test_the_sitemap_skips_owners_with_only_private_models(world):
    world.public.visibility = "private"
    world.public.save()
    text = text_of(browser().get("/sitemap.xml"))
    assert f"/{OWNER_TEAM}</loc>" not in text and f"/{OWNER_TEAM}/" not in text
    assert f"/{OUTSIDER_TEAM}/vantor-echo</loc>" in text


def test_robots_txt_points_at_the_sitemap_and_keeps_crawlers_out_of_private_areas(world):
    response = browser().get("/robots.txt")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    lines = text_of(response).splitlines()
    assert "User-agent: *" in lines
    assert "Sitemap: http://testserver/sitemap.xml" in lines
    for area in ("/accounts/", "/teams/", "/keys/", "/billing/", "/dashboard/", "/requests/"):
        assert f"Disallow: {area}" in lines, area
    assert "Disallow: /v1/" in lines and "Disallow: /*/monitoring" in lines
    assert "Disallow: /explore/" not in lines and "Disallow: /" not in lines
    head = text_of(browser().get("/"))
    assert '<link rel="sitemap" type="application/xml" title="Sitemap" href="/sitemap.xml">' in head
