"""`limits.admit`: the rate check, the concurrency slot and the caller's own statement in one
round trip on PostgreSQL, with the same outcomes as the three done one after another; and a
slot released by a statement of the caller's (`Slot.release_statement`). On a real
PostgreSQL, committed (the limiter never writes inside the caller's transaction)."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection, connections, transaction

from marketplace.core import limits
from marketplace.core.limits import SlotRequest, admit

THEN = ("INSERT INTO test_admitted (token) SELECT %s FROM {gate} RETURNING token", None)


@pytest.fixture
def tag(settings, transactional_db):
    settings.RATE_LIMIT_BACKEND = "postgresql"
    settings.RATE_LIMIT_WINDOW_SECONDS = 60
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS test_admitted (token text)")
    value = uuid.uuid4().hex[:12]
    yield value
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM gateway_rate_limit WHERE subject LIKE %s", [f"%{value}"])
        cursor.execute("DELETE FROM gateway_concurrency_slot WHERE subject LIKE %s", [f"%{value}"])
        cursor.execute("DROP TABLE IF EXISTS test_admitted")
    limits.close_own_connections()


def _then(token: str) -> tuple[str, list]:
    return THEN[0], [token]


def _rows(token: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM test_admitted WHERE token = %s", [token])
        return cursor.fetchone()[0]


def _slots(tag: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM gateway_concurrency_slot WHERE subject LIKE %s "
            "AND expires_at > clock_timestamp()",
            [f"%{tag}"],
        )
        return cursor.fetchone()[0]


def _subjects(tag: str, key_limit: int = 10, team_limit: int = 10):
    return [("key", f"k-{tag}", key_limit), ("team", f"t-{tag}", team_limit)]


def test_an_admitted_call_runs_the_statement_takes_a_slot_and_is_charged(tag):
    admission = admit(_subjects(tag), SlotRequest("team", f"t-{tag}", 2, 30), then=_then("a"))
    assert admission.rates_allowed and admission.then_ran and not admission.slots_full
    assert [d.remaining for d in admission.decisions] == [9, 9]
    assert _rows("a") == 1 and _slots(tag) == 1
    admission.slot.release()
    assert _slots(tag) == 0


def test_a_refused_rate_runs_nothing_and_charges_no_other_subject(tag):
    assert admit(_subjects(tag, key_limit=1), SlotRequest("team", f"t-{tag}", 2, 30)).rates_allowed
    refused = admit(
        _subjects(tag, key_limit=1), SlotRequest("team", f"t-{tag}", 2, 30), then=_then("b")
    )
    assert not refused.rates_allowed and not refused.then_ran and refused.slot is None
    assert _rows("b") == 0
    # The team was charged for the first call only: the refusal gave its charge back.
    (team,) = limits.check_rates([("team", f"t-{tag}", 10)])
    assert team.remaining == 8


def test_when_every_slot_is_taken_nothing_runs(tag):
    held = admit(_subjects(tag), SlotRequest("team", f"t-{tag}", 1, 30), then=_then("c"))
    full = admit(_subjects(tag), SlotRequest("team", f"t-{tag}", 1, 30), then=_then("d"))
    assert full.rates_allowed and full.slots_full and not full.then_ran and full.slot is None
    assert _rows("c") == 1 and _rows("d") == 0
    held.slot.release()
    again = admit(_subjects(tag), SlotRequest("team", f"t-{tag}", 1, 30), then=_then("e"))
    assert again.then_ran and _rows("e") == 1
    again.slot.release()


def test_no_limits_at_all_still_runs_the_statement(tag):
    admission = admit([], SlotRequest("team", f"t-{tag}", 0, 30), then=_then("f"))
    assert admission.then_ran and admission.decisions == [] and admission.slot is None
    assert _rows("f") == 1


def test_inside_a_transaction_the_caller_runs_its_statement_itself(tag):
    with transaction.atomic():
        admission = admit(_subjects(tag), SlotRequest("team", f"t-{tag}", 1, 30), then=_then("g"))
        assert admission.rates_allowed and not admission.then_ran and admission.slot is not None
        assert admission.slot.release_statement() is None
    assert _rows("g") == 0
    assert _slots(tag) == 1  # committed on the limiter's own connection, not rolled back
    admission.slot.release()
    assert _slots(tag) == 0


def test_a_statement_of_the_callers_releases_the_slot(tag):
    admission = admit(_subjects(tag), SlotRequest("team", f"t-{tag}", 1, 30), then=_then("h"))
    sql, params = admission.slot.release_statement()
    with connection.cursor() as cursor:
        statement = f"WITH released AS ({sql}) SELECT (SELECT count(*) FROM released)"  # noqa: S608
        cursor.execute(statement, params)
        assert cursor.fetchone()[0] == 1
    admission.slot.released = True
    assert _slots(tag) == 0
    admission.slot.release()  # already released: nothing happens
    assert admission.slot.release_statement() is None


def test_the_concurrency_limit_holds_across_connections(tag):
    """Twelve callers on their own connections at once, three slots: exactly three run."""
    barrier = threading.Barrier(12)

    def call(i):
        try:
            barrier.wait(timeout=10)
            return admit(
                _subjects(tag, 100, 100),
                SlotRequest("team", f"t-{tag}", 3, 30),
                then=_then(f"many-{tag}"),
            )
        finally:
            connections.close_all()

    with ThreadPoolExecutor(12) as pool:
        admissions = list(pool.map(call, range(12)))
    assert sum(a.then_ran or a.slot is not None for a in admissions) == 3
    assert sum(a.slots_full for a in admissions) == 9
    # A slot won after a lost race leaves the caller's statement to the caller.
    assert _rows(f"many-{tag}") == sum(a.then_ran for a in admissions)
    assert _slots(tag) == 3
