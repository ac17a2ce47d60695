"""The database backend's cheap health check (marketplace/core/postgresql/base.py): a quiet
connection is usable without a round trip; one whose server side went away is not, so
Django opens a new one instead of failing the request."""

from __future__ import annotations

import time

import pytest
from django.db import connection, connections

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_backend_is_ours():
    assert connection.vendor == "postgresql"
    assert type(connections["default"]).__module__ == "marketplace.core.postgresql.base"


def test_a_quiet_connection_is_usable():
    connection.ensure_connection()
    assert connection.is_usable()


def test_a_terminated_connection_is_not_usable_and_is_replaced():
    connection.ensure_connection()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    with connection.independent_connection() as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])
    deadline = time.monotonic() + 30
    while connection.is_usable() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not connection.is_usable()
    # What Django does at the start of a request with CONN_HEALTH_CHECKS: a new connection.
    connection.health_check_done = False
    connection.close_if_health_check_failed()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        assert cursor.fetchone()[0] != pid
