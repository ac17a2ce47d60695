"""Every demo model, called as its page tells an Algorithmia user to: the demo catalogue is
published through the real path (catalog/demo/catalog.toml), and for each published
version the generated "Python (Algorithmia client)" snippet is run, unchanged, with the
unchanged `algorithmia` client, against a live server. Owners with `-` (acme-research) are
written by their client alias (acme_research), which the client accepts and the server
resolves; each call must print the version's own sample output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib

import pytest

from catalog.demo.loader import CATALOG_FILE, load_demo_catalog
from catalog.models import Version
from catalog.snippets import context_for_version, get_language
from gateway.models import Invocation
from tests.factories import UserFactory, make_key
from tests.gateway.conftest import runner, storage  # noqa: F401 (fixtures)

pytestmark = pytest.mark.slow


@pytest.fixture
def demo_catalogue(transactional_db, storage, runner):  # noqa: F811
    admin = UserFactory(username="demo-admin", is_staff=True)
    report = load_demo_catalog(admin=admin, say=lambda _line: None)
    assert report.failed == 0
    return admin


def test_every_demo_model_runs_from_its_algorithmia_snippet(demo_catalogue, live_server, tmp_path):
    secrets = {}

    def secret_for(owner):
        """A key of someone who may call the owner's models, private ones included: the
        admin, an owner of every demo team; or the user whose personal namespace it is."""
        if owner.pk not in secrets:
            caller = owner.personal_owner if owner.is_personal else demo_catalogue
            secrets[owner.pk] = make_key(caller)[1]
        return secrets[owner.pk]

    language = get_language("python-algorithmia")
    listed = {
        (entry["owner"], entry["slug"])
        for entry in tomllib.loads(CATALOG_FILE.read_text())["models"]
    }
    versions = list(Version.objects.select_related("model__owner", "build"))
    published = {(v.model.owner.slug, v.model.slug) for v in versions}
    # Models whose runtime's toolchain is missing here are skipped by the loader; every
    # other one is published, and the owner with a hyphen is among them.
    assert published <= listed and ("acme-research", "topic-classifier") in published
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("ALGORITHMIA_", "MARKETPLACE_"))
    }
    failures = []
    for version in versions:
        ctx = context_for_version(version, base_url=live_server.url)
        code = language.render(ctx)
        owner = version.model.owner.slug
        assert f'client.algo("{owner.replace("-", "_")}/{version.model.slug}/' in code
        path = tmp_path / f"{owner}-{version.model.slug}-{version.number}.py"
        path.write_text(code)
        env["MARKETPLACE_API_KEY"] = secret_for(version.model.owner)
        done = subprocess.run(
            [sys.executable, str(path)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        expected = version.build.sample_output
        printed = done.stdout
        try:
            got = printed.rstrip("\n") if isinstance(expected, str) else json.loads(printed)
        except ValueError:
            got = None
        if done.returncode != 0 or got != expected:
            failures.append(
                f"{version}: exit {done.returncode}\nstdout: {printed[-1500:]}\n"
                f"stderr: {done.stderr[-1500:]}\nexpected: {str(expected)[:500]}"
            )
    assert not failures, "\n\n".join(failures)
    called = {
        (i.model.owner.slug, i.model.slug, i.version_label)
        for i in Invocation.objects.select_related("model__owner")
    }
    assert called == {(v.model.owner.slug, v.model.slug, v.number) for v in versions}
