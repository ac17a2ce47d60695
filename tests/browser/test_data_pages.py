"""The data pages in Chromium: from the navigation to a new collection, an upload, the file
listed and downloadable, its permission changed; then the same pages at phone width."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from data.models import Collection, DataEntry, ReadAcl

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}


def test_create_a_collection_upload_and_download_a_file(
    open_page, member, sign_in, screenshot, settings, tmp_path
):
    settings.DATA_STORAGE = "local"
    settings.DATA_LOCAL_ROOT = tmp_path / "data-root"
    page = open_page()
    sign_in(page, member)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Data").click()
    expect(page.get_by_role("heading", name="Data", exact=True)).to_be_visible()
    page.get_by_role("link", name=member.username, exact=True).click()

    page.get_by_label("Name").fill("training-sets")
    page.get_by_label("Who may read it").select_option("private")
    page.get_by_role("button", name="Create collection").click()
    expect(page).to_have_url(re.compile(r"/data/training-sets/$"))
    expect(page.get_by_text("Created data://grace/training-sets.")).to_be_visible()

    local = tmp_path / "labels.csv"
    local.write_text("text,label\ngood,positive\n")
    page.get_by_label("File").set_input_files(str(local))
    page.get_by_role("button", name="Upload").click()
    expect(page.get_by_text("Uploaded labels.csv")).to_be_visible()
    expect(page.get_by_role("link", name="labels.csv")).to_be_visible()
    screenshot(page, "desktop collection with a file")

    with page.expect_download() as download:
        page.get_by_role("link", name="labels.csv").click()
    with open(download.value.path()) as downloaded:
        assert downloaded.read() == "text,label\ngood,positive\n"

    page.get_by_label("Who may read it").select_option("public")
    page.get_by_role("button", name="Save permission").click()
    expect(page.get_by_text("Read permission saved.")).to_be_visible()
    assert Collection.objects.get(name="training-sets").read_acl == ReadAcl.PUBLIC
    assert DataEntry.objects.get(name="labels.csv").size == 25

    phone = open_page(viewport=PHONE)
    sign_in(phone, member, next="/teams/grace/data/training-sets/")
    expect(phone.get_by_role("link", name="labels.csv")).to_be_visible()
    overflow = phone.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1, f"the page is {overflow}px wider than a phone"
    screenshot(phone, "phone collection with a file")
    phone.goto("/teams/grace/data/-/connectors/")
    expect(phone.get_by_role("heading", name="Connectors")).to_be_visible()
    screenshot(phone, "phone connectors")
