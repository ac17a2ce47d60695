"""The request log: an invocation is found by its request id by its caller's namespace and
by the model's owners (who alone see the stack trace); to anyone else it does not exist."""

from __future__ import annotations

import random
import uuid

import pytest
from django.test import Client

from tests.factories import MembershipFactory, UserFactory

from .world import NOW, build_world, make_call

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(fixed_now):
    return build_world(calls=20)


@pytest.fixture
def failed_call(world):
    return make_call(
        random.Random(3),
        world.versions["1.1.0"],
        created_at=NOW,
        caller_team=world.caller_team,
        status="failed",
        input_preview='{"image": "<svg onload=alert(1)>"}',
        error={
            "message": "no face found",
            "error_type": "AlgorithmError",
            "stacktrace": "Traceback: secret internals",
        },
    )


def browser(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_caller_finds_its_call_without_the_stack_trace(world, failed_call):
    teammate = UserFactory(username="globex-teammate")
    MembershipFactory(team=world.caller_team, user=teammate)
    for user in (world.caller, teammate):
        response = browser(user).get("/requests/", {"id": str(failed_call.pk)})
        assert response.status_code == 200
        html = response.content.decode()
        assert f'data-request-id="{failed_call.pk}"' in html
        assert 'data-field="version">1.1.0<' in html
        assert 'data-field="caller">globex<' in html
        assert 'data-field="error-type">AlgorithmError<' in html
        assert "no face found" in html
        assert "secret internals" not in html
        assert "&lt;svg onload=alert(1)&gt;" in html and "<svg onload" not in html
        assert "/acme/vision/monitoring" not in html  # not an owner


def test_the_models_owners_find_it_with_the_stack_trace(world, failed_call):
    response = browser(world.owner).get("/requests/", {"id": f" {failed_call.pk} "})
    assert response.status_code == 200
    html = response.content.decode()
    assert "Traceback: secret internals" in html and "<details" in html
    assert "/acme/vision/monitoring" in html


def test_anyone_else_gets_404(world, failed_call):
    stranger = UserFactory(username="stranger")
    assert browser(stranger).get("/requests/", {"id": str(failed_call.pk)}).status_code == 404
    assert browser(world.outsider).get("/requests/", {"id": str(failed_call.pk)}).status_code == 404
    assert browser(world.caller).get("/requests/", {"id": str(uuid.uuid4())}).status_code == 404
    anonymous = Client().get("/requests/", {"id": str(failed_call.pk)})
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]


def test_the_form_and_a_malformed_id(world):
    empty = browser(world.caller).get("/requests/")
    assert empty.status_code == 200 and 'name="id"' in empty.content.decode()
    bad = browser(world.caller).get("/requests/", {"id": "<b>not-an-id</b>"})
    assert bad.status_code == 400
    html = bad.content.decode()
    assert "a request id looks like" in html and "<b>not-an-id</b>" not in html


def test_every_generated_call_is_found_by_its_caller_and_the_owners(world):
    for call in world.calls:
        for user in (world.owner, *call.caller_team.members.all()):
            response = browser(user).get("/requests/", {"id": str(call.pk)})
            assert response.status_code == 200, (user, call.caller_team)
