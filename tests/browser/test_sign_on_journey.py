"""Company sign-on in Chromium, against the real OpenID Connect provider on loopback
(tests/oidc_provider): the whole code flow from the log-in page's button through the
provider's own log-in form and back; a group change taking effect at the next sign-in; and a
leaver losing their session and their API key at the periodic re-check. At desktop and phone
width, with a screenshot at every step."""

from __future__ import annotations

import re

import pytest
import requests

from marketplace.accounts.models import GroupMapping, User
from marketplace.accounts.tasks import recheck_signed_on_users
from tests.factories import TeamFactory, make_key
from tests.sso.conftest import PASSWORD, oidc_server, provider  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db(transaction=True)

PHONE = {"width": 390, "height": 844}


def _sign_in_with_acme(page, username: str, next: str):
    from playwright.sync_api import expect

    page.goto(f"/accounts/login/?next={next}")
    page.get_by_role("link", name="Sign in with Acme").click()
    expect(page).to_have_title(re.compile("Acme identity"))
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in to Acme").click()
    expect(page).to_have_url(re.compile(re.escape(next) + "$"))


@pytest.mark.parametrize("viewport", [None, PHONE], ids=["desktop", "phone"])
def test_sign_on_groups_and_a_leaver(provider, site, open_page, screenshot, viewport):  # noqa: F811
    from playwright.sync_api import expect

    provider.register(f"{site.url}/accounts/sso/callback/")
    research = TeamFactory(slug="acme-research", name="Acme Research")
    GroupMapping.objects.create(group="research", team=research, role="member")
    GroupMapping.objects.create(group="research-leads", team=research, role="admin")
    provider.person("nora", groups=["research"])

    page = open_page(**({"viewport": viewport} if viewport else {}))
    page.goto("/accounts/login/")
    screenshot(page, "01-log-in-page-offers-company-sign-on")
    _sign_in_with_acme(page, "nora", "/teams/acme-research/")
    expect(page.locator("body")).to_contain_text("nora")
    expect(page.locator("body")).to_contain_text("company sign-on")
    screenshot(page, "02-signed-on-member-of-the-mapped-team")

    # Made an admin at the provider: it shows at her next sign-in.
    provider.person("nora", groups=["research-leads"])
    page.context.clear_cookies()
    _sign_in_with_acme(page, "nora", "/teams/acme-research/")
    expect(page.get_by_role("heading", name="Add a member")).to_be_visible()
    screenshot(page, "03-admin-after-the-group-change")

    # She leaves the company: the re-check ends her session and her key.
    nora = User.objects.get(username="nora")
    _key, secret = make_key(nora)
    me = f"{site.url}/v1/me"
    assert requests.get(me, headers={"Authorization": f"Simple {secret}"}, timeout=60).ok
    provider.person("nora", groups=[], active=False)
    assert recheck_signed_on_users() == {"locked": 1}
    refused = requests.get(me, headers={"Authorization": f"Simple {secret}"}, timeout=60)
    assert refused.status_code == 401, refused.text
    page.goto("/teams/acme-research/")
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    screenshot(page, "04-leaver-signed-out")
