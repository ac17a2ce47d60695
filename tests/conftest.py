from __future__ import annotations

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from rest_framework.test import APIClient

from tests.factories import UserFactory, make_key

# Property tests judge their inputs, never the machine's speed: a busy machine (CI, a user's
# laptop) must not fail them by a deadline or a "too slow" health check.
hypothesis_settings.register_profile(
    "busy-machine",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
hypothesis_settings.load_profile("busy-machine")


@pytest.fixture(autouse=True)
def _close_limiter_connections():
    """The limiter may open a second connection inside atomic blocks; close it so the test
    database can be dropped."""
    yield
    from marketplace.core import limits

    limits.close_own_connections()


@pytest.fixture(autouse=True)
def _credential_throttles_forgotten(request):
    """Failed log-ins and refused keys are counted per address (127.0.0.1 for every test) in
    rows committed outside the test's transaction; forget them so that one test's failures
    never throttle the next one's."""
    yield
    if not {"db", "transactional_db", "live_server"} & set(request.fixturenames):
        return
    from django.db import connection

    from marketplace.accounts import login_throttle

    with request.getfixturevalue("django_db_blocker").unblock(), connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM gateway_rate_limit WHERE split_part(subject, ':', 1) = ANY(%s)",
            [list(login_throttle.SUBJECT_NAMES)],
        )


@pytest.fixture(scope="session", autouse=True)
def _broker_released_before_the_test_database_goes(django_db_setup):
    """The embedded broker of a test run lives in its test database (see settings); its
    connections must be gone before pytest-django drops that database."""
    yield
    from kombu.transport.sqlalchemy import Channel

    from marketplace.celery import app

    app.close()
    for engine, _session in list(Channel._engines.values()):
        engine.dispose()


@pytest.fixture(autouse=True)
def _hot_path_cache_off_unless_asked(settings):
    """A change inside a test's transaction never commits, so it is never announced: tests
    read every row from the database, except those of the change feed itself
    (tests/core/test_change_feed.py and the gateway's), which commit and turn it on."""
    settings.HOT_PATH_CACHE = False


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _postgresql_search_unless_asked(settings):
    """ELASTICSEARCH_URL in the environment is for the search contract suite (its `engine`
    fixture sets it back per test); every other test searches with PostgreSQL, so it never
    depends on the state of an index it did not build."""
    settings.ELASTICSEARCH_URL = ""


@pytest.fixture
def server_tmp_path():
    """A temporary directory the embedded PostgreSQL's system user can reach. pytest keeps
    its own tmp_path tree private (it resets it to mode 0700 from other workers), which
    would lock that user out of a data directory under it."""
    import shutil
    import tempfile
    from pathlib import Path

    path = Path(tempfile.mkdtemp(prefix="marketplace-test-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def user_key(user):
    """A full-access personal key of `user`: (ApiKey, secret)."""
    return make_key(user)


@pytest.fixture
def key_client(user_key) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Simple {user_key[1]}")
    return client


def assert_error_shape(response, status: int, error_type: str | None = None) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) <= {"error", "request_id"} and "error" in body, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert isinstance(body["error"]["error_type"], str)
    if error_type:
        assert body["error"]["error_type"] == error_type, body
    return body["error"]
