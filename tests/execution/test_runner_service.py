"""The runner service looks a call's build up on one long-lived thread, on one database
connection that it keeps between lookups (a cold start does not open one), and replaces
when the database dropped it."""

from __future__ import annotations

import time

from django.db import connection

from execution.pool import WarmPool
from execution.runner_service import RunnerService


def test_lookups_share_one_connection_and_survive_the_database_dropping_it(transactional_db):
    backends = []

    def launch_spec_for_build(build_id):
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            backends.append(cursor.fetchone()[0])
        return f"spec of {build_id}"  # what the pool would start; no pool runs here

    pool = WarmPool()
    service = RunnerService(
        pool, launch_spec_for_build=launch_spec_for_build, reservations_wanted=dict
    )
    try:
        assert service._factory("a", on_lookup_thread=True)() == "spec of a"
        assert service._factory("b", on_lookup_thread=True)() == "spec of b"
        assert backends[0] == backends[1]
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            assert cursor.fetchone()[0] != backends[0]  # the lookup thread's own
            cursor.execute("SELECT pg_terminate_backend(%s)", [backends[0]])
            # Dropped, not being dropped: on a busy machine the session may still be ending
            # when the next lookup is sent, which is a failure during the query, not after.
            deadline = time.monotonic() + 30
            while True:
                cursor.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [backends[0]])
                if cursor.fetchone() is None:
                    break
                assert time.monotonic() < deadline, "the session did not end"
                time.sleep(0.01)
        assert service._factory("c", on_lookup_thread=True)() == "spec of c"
        assert backends[2] != backends[0]
        assert service._factory("c", on_lookup_thread=True)() == "spec of c"
        assert len(backends) == 3  # a build's spec is looked up once
    finally:
        service.close()
        pool.close()
