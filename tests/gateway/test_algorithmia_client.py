"""The official Algorithmia Python client, unchanged, against a live server: JSON, text and
binary input, results and metadata, model errors as AlgorithmException, output=raw (a model
error raised) and output=void, stdout=true from a non-owner ignored, an owner with a
hyphen called by its client alias, and an unchanged ADK algorithm published and called."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import Algorithmia
import pytest
from Algorithmia.algorithm import OutputType
from Algorithmia.errors import AlgorithmException

from catalog import builder
from catalog import services as catalog_services
from catalog.demo.loader import MODELS_DIR
from gateway.models import Invocation
from marketplace.accounts import services as account_services
from tests.catalog.conftest import write_package
from tests.factories import UserFactory, make_key
from tests.gateway.conftest import TOOLBOX_MODEL, publish

pytestmark = pytest.mark.slow


@pytest.fixture
def client(live_server, toolbox, owner):
    _key, secret = make_key(owner)
    return Algorithmia.client(secret, live_server.url)


def test_json_text_and_binary(client):
    response = client.algo("ada/toolbox/1.0.0").pipe({"text": "hi"})
    assert response.result == {"echo": {"text": "hi"}}
    assert response.metadata.content_type == "json" and response.metadata.duration >= 0
    assert client.algo("ada/toolbox").pipe("quiet please").result == "QUIET PLEASE"
    binary = client.algo("ada/toolbox").pipe(bytearray(b"\x00\x01\x02"))
    assert binary.metadata.content_type == "binary" and binary.result == b"\x02\x01\x00"


def test_model_errors_raise_algorithm_exception(client):
    with pytest.raises(AlgorithmException) as raised:
        client.algo("ada/toolbox").pipe({"fail": "no good"})
    assert raised.value.message == "no good"
    assert raised.value.error_type == "AlgorithmError"
    assert "Traceback" in (raised.value.stack_trace or "")  # the caller owns the model


def test_raw_output(client):
    algo = client.algo("ada/toolbox").set_options(output=OutputType.raw)
    assert algo.pipe("abc") == "ABC"


def test_raw_output_of_a_model_error_raises(client):
    """output=raw answers a model error with 400 and the error body. The client raises for
    it (with a 200 it handed the error JSON back as the model's result); version 2.0.5
    raises from postJsonHelper, before its own `status_code == 400` branch (ApiError with
    the body) is reached, so the exception names the status only."""
    algo = client.algo("ada/toolbox").set_options(output=OutputType.raw)
    with pytest.raises(Exception, match="400") as raised:
        algo.pipe({"fail": "no good"})
    assert not isinstance(raised.value, AlgorithmException)


def test_stdout_from_a_caller_who_is_not_the_owner_is_ignored(live_server, toolbox):
    _key, secret = make_key(UserFactory())
    algo = Algorithmia.client(secret, live_server.url).algo("ada/toolbox")
    response = algo.set_options(stdout=True).pipe({"print": "the owner's eyes only"})
    assert response.result == {"echo": {"print": "the owner's eyes only"}}
    assert not getattr(response.metadata, "stdout", None)


def test_an_owner_with_a_hyphen_is_called_by_its_client_alias(live_server, owner, storage, runner):
    """The client refuses `acme-research/...` (its owner must be word characters) before
    sending anything; `acme_research/...` is the same namespace to the server: the call,
    its record, key scopes and the algorithms API all see acme-research."""
    team = account_services.team_create(actor=owner, slug="acme-research", name="Acme Research")
    source = write_package(Path(tempfile.mkdtemp()) / "toolbox", TOOLBOX_MODEL)
    build, _ = catalog_services.build_create(actor=owner, owner=team, source=source)
    builder.execute_build(build.pk)
    build.refresh_from_db()
    catalog_services.version_publish(
        actor=owner, model=build.model, build=build, bump="major", visibility="private"
    )
    _key, secret = make_key(owner, scopes=["algo://acme-research/*"])
    client = Algorithmia.client(secret, live_server.url)
    with pytest.raises(ValueError, match="Invalid algorithm URI"):
        client.algo("acme-research/toolbox")
    response = client.algo("acme_research/toolbox/1.0.0").pipe("abc")
    assert response.result == "ABC"
    invocation = Invocation.objects.select_related("model__owner").get()
    assert invocation.model.full_name == "acme-research/toolbox"
    assert invocation.caller_team.slug == "ada"
    algo = client.algo("acme_research/toolbox")
    assert algo.exists()
    assert algo.versions()["results"][0]["version_info"]["semantic_version"] == "1.0.0"
    # The scope names the canonical owner, so a key for another namespace is refused.
    _key, narrow = make_key(owner, scopes=["algo://ada/*"])
    with pytest.raises(Exception, match="403"):
        Algorithmia.client(narrow, live_server.url).algo("acme_research/toolbox").pipe("abc")
    # Private: a stranger's client finds nothing, by either name.
    _key, strangers = make_key(UserFactory())
    stranger = Algorithmia.client(strangers, live_server.url)
    assert not stranger.algo("acme_research/toolbox").exists()
    with pytest.raises(Exception, match="404"):
        stranger.algo("acme_research/toolbox").pipe("abc")


def test_void_output_runs_asynchronously(client, async_worker):
    algo = client.algo("ada/toolbox").set_options(output=OutputType.void)
    response = algo.pipe({"text": "later"})
    assert response.async_protocol == "void" and response.request_id
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        invocation = Invocation.objects.get(pk=response.request_id)
        if invocation.is_final:
            break
        time.sleep(0.2)
    assert invocation.status == "succeeded" and invocation.result == {"echo": {"text": "later"}}


def test_an_unchanged_adk_algorithm(client, owner):
    import shutil
    import tempfile
    from pathlib import Path

    folder = Path(tempfile.mkdtemp()) / "adk"
    shutil.copytree(MODELS_DIR / "roman-numerals", folder)
    version = publish(owner, {}, folder=folder)
    name = version.model.slug
    result = client.algo(f"ada/{name}").pipe(version.build.sample_input).result
    assert result == version.build.sample_output
