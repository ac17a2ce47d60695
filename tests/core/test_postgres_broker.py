"""The embedded broker's transport (marketplace.core.postgres_broker) on the test database:
a consumer waiting on LISTEN is woken by the put's notification, long before its fallback
poll; a message put without a notification is still found by the fallback poll; a consumer
whose LISTEN connection is killed listens again; an acknowledgement wakes a consumer held
back by its prefetch limit; a message whose consumer went away unacknowledged is delivered
to another one; a Celery worker whose pool process is killed mid-task runs the task again.

No assertion here is on a duration. Where a test shows that a notification, not the fallback
poll, delivered a message, the fallback poll is an hour and the test takes what was delivered
after DELIVERY_TIMEOUT at most."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from kombu import Connection, Exchange, Queue

from marketplace.core import postgres_broker

ROOT = Path(__file__).resolve().parents[2]
# No fallback poll fires within a test: a delivery can only come from a notification (or
# from the consumer's own look before it waits).
NEVER = 3600.0
DELIVERY_TIMEOUT = 30.0


@pytest.fixture
def broker_url(transactional_db):
    """The broker of this test run: the test database (see settings)."""
    url = settings.CELERY_BROKER_URL
    assert url.startswith(postgres_broker.EMBEDDED_BROKER_SCHEME + "+"), url
    return url


@pytest.fixture
def queue():
    name = f"test-broker-{uuid.uuid4().hex[:8]}"
    return Queue(name, Exchange(name), name)


@pytest.fixture
def waits(monkeypatch):
    """Records each consumer thread's waits on LISTEN, each as the process id of the database
    session it listens on. `waits.entered(consumer, n)` blocks until that consumer's n-th wait
    has begun, i.e. until it looked for the n-th time, found nothing it may take, and went to
    sleep; it returns the sessions of its waits so far."""
    original = postgres_broker.Listener.wait
    condition = threading.Condition()
    sessions: dict = {}

    def wait(self, timeout):
        with condition:
            session = self._connection.info.backend_pid if self._connection else None
            sessions.setdefault(threading.current_thread(), []).append(session)
            condition.notify_all()
        return original(self, timeout)

    def entered(consumer: threading.Thread, n: int) -> list:
        deadline = time.monotonic() + DELIVERY_TIMEOUT
        with condition:
            while len(sessions.get(consumer, [])) < n and consumer.is_alive():
                assert time.monotonic() < deadline, sessions
                condition.wait(0.1)
            seen = list(sessions.get(consumer, []))
        assert len(seen) >= n, f"{consumer} ended: {consumer.error!r}"
        return seen

    monkeypatch.setattr(postgres_broker.Listener, "wait", wait)
    wait.entered = entered
    return wait


class Consumer(threading.Thread):
    """A consumer of `queue` in a thread, taking messages until it has `expect` of them;
    acknowledges each unless `ack` is False. Its own waits end after twice DELIVERY_TIMEOUT,
    so that what `finish` sees at DELIVERY_TIMEOUT was delivered by a notification or the
    fallback poll, never by a last look at the end of a wait."""

    def __init__(self, url, queue, *, polling_interval, expect=1, ack=True, prefetch=None):
        super().__init__(daemon=True)
        self.connection = Connection(url, transport_options={"polling_interval": polling_interval})
        self.queue = queue
        self.expect = expect
        self.ack = ack
        self.prefetch = prefetch
        self.bodies: list = []
        self.messages: list = []
        self.error: BaseException | None = None
        self.stopped = False

    def on_message(self, body, message):
        self.bodies.append(body)
        self.messages.append(message)
        if self.ack:
            message.ack()

    def run(self):
        try:
            with self.connection.Consumer(
                self.queue, callbacks=[self.on_message], accept=["json"]
            ) as consumer:
                if self.prefetch:
                    consumer.qos(prefetch_count=self.prefetch)
                while len(self.bodies) < self.expect and not self.stopped:
                    with contextlib.suppress(TimeoutError):
                        self.connection.drain_events(timeout=2 * DELIVERY_TIMEOUT)
        except BaseException as exc:
            self.error = exc

    def finish(self) -> list:
        """What was delivered once `expect` messages came, or DELIVERY_TIMEOUT passed."""
        self.join(DELIVERY_TIMEOUT)
        bodies = list(self.bodies)
        self.stopped = True
        self.join(3 * DELIVERY_TIMEOUT)
        if self.error:
            raise self.error
        return bodies

    def close(self):
        self.connection.release()


def publish(url, queue, body):
    with Connection(url) as connection:
        connection.Producer().publish(
            body, exchange=queue.exchange, routing_key=queue.routing_key, declare=[queue]
        )


def test_a_put_wakes_a_waiting_consumer_long_before_its_fallback_poll(broker_url, queue, waits):
    consumer = Consumer(broker_url, queue, polling_interval=NEVER)
    consumer.start()
    try:
        waits.entered(consumer, 1)  # it looked, found the queue empty and waits
        publish(broker_url, queue, {"n": 1})
        assert consumer.finish() == [{"n": 1}]
    finally:
        consumer.close()


def test_a_message_without_a_notification_is_found_by_the_fallback_poll(broker_url, queue, waits):
    """kombu's own SQLAlchemy transport puts the row and notifies nobody: as if the
    notification were lost. The consumer finds it when its (short) fallback poll comes."""
    consumer = Consumer(broker_url, queue, polling_interval=0.2)
    consumer.start()
    try:
        waits.entered(consumer, 1)
        publish(broker_url.replace("pglisten+", "sqla+", 1), queue, {"n": "silent"})
        assert consumer.finish() == [{"n": "silent"}]
    finally:
        consumer.close()


def test_a_consumer_whose_listening_connection_died_listens_again(broker_url, queue, waits):
    consumer = Consumer(broker_url, queue, polling_interval=NEVER)
    consumer.start()
    try:
        (session,) = waits.entered(consumer, 1)
        with psycopg.connect(**_connect_kwargs(broker_url), autocommit=True) as admin:
            killed = admin.execute("SELECT pg_terminate_backend(%s)", [session]).fetchone()
        assert killed == (True,)
        # Woken by its broken connection, it connects again, listens, looks, and waits on
        # the new session.
        n = 2
        while waits.entered(consumer, n)[-1] == session:
            n += 1
        publish(broker_url, queue, {"n": "after"})
        assert consumer.finish() == [{"n": "after"}]
    finally:
        consumer.close()


def test_a_put_on_a_pooled_session_the_database_ended_opens_a_new_one(broker_url, queue):
    """Without pool_pre_ping's round trip (`_drop_if_closed` looks at the socket instead), a
    producer whose pooled session PostgreSQL terminated (a restart, an administrator) still
    puts its next message, on a new session, and nothing is lost."""
    with Connection(broker_url) as connection:
        producer = connection.Producer()
        producer.publish(
            {"n": 1}, exchange=queue.exchange, routing_key=queue.routing_key, declare=[queue]
        )
        engine, _session = connection.default_channel._open()
        with engine.connect() as pooled:
            session = pooled.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        with psycopg.connect(**_connect_kwargs(broker_url), autocommit=True) as admin:
            assert admin.execute("SELECT pg_terminate_backend(%s)", [session]).fetchone() == (True,)
            deadline = time.monotonic() + DELIVERY_TIMEOUT
            while admin.execute(
                "SELECT 1 FROM pg_stat_activity WHERE pid = %s", [session]
            ).fetchone():
                assert time.monotonic() < deadline
                time.sleep(0.01)
        producer.publish({"n": 2}, exchange=queue.exchange, routing_key=queue.routing_key)
        with engine.connect() as pooled:
            assert pooled.exec_driver_sql("SELECT pg_backend_pid()").scalar() != session
    consumer = Consumer(broker_url, queue, polling_interval=NEVER, expect=2)
    consumer.start()
    try:
        assert consumer.finish() == [{"n": 1}, {"n": 2}]
    finally:
        consumer.close()


def test_an_acknowledgement_wakes_a_consumer_held_back_by_its_prefetch(broker_url, queue, waits):
    publish(broker_url, queue, {"n": 1})
    publish(broker_url, queue, {"n": 2})
    consumer = Consumer(broker_url, queue, polling_interval=NEVER, expect=2, ack=False, prefetch=1)
    consumer.start()
    try:
        # It takes the first message and, its prefetch of one used up, waits: the second is
        # there, but it may not take it before the first is acknowledged.
        waits.entered(consumer, 1)
        assert consumer.bodies == [{"n": 1}]
        consumer.messages[0].ack()
        assert consumer.finish() == [{"n": 1}, {"n": 2}]
    finally:
        consumer.close()


def test_one_look_takes_as_many_messages_as_the_prefetch_allows_oldest_first(
    broker_url, queue, monkeypatch
):
    for n in range(4):
        publish(broker_url, queue, {"n": n})
    looks = []
    take = postgres_broker.Listener.take

    def counted(self, query, params):
        rows = take(self, query, params)
        looks.append(len(rows or ()))
        return rows

    monkeypatch.setattr(postgres_broker.Listener, "take", counted)
    consumer = Consumer(broker_url, queue, polling_interval=NEVER, expect=3, ack=False, prefetch=3)
    consumer.start()
    try:
        assert consumer.finish() == [{"n": 0}, {"n": 1}, {"n": 2}]
        # One look took the three it may hold; the fourth stays for another consumer.
        assert looks == [3]
        other = Consumer(broker_url, queue, polling_interval=NEVER)
        other.start()
        try:
            assert other.finish() == [{"n": 3}]
        finally:
            other.close()
    finally:
        consumer.close()


def test_a_delivered_message_leaves_no_row_behind(broker_url, queue):
    """kombu's transport marked a taken row invisible and kept it for ever; this one deletes
    it as it takes it: what was delivered is no longer in the table, what waits still is."""
    for n in range(3):
        publish(broker_url, queue, {"n": n})
    consumer = Consumer(broker_url, queue, polling_interval=NEVER, expect=2, prefetch=2)
    consumer.start()
    try:
        assert consumer.finish() == [{"n": 0}, {"n": 1}]
    finally:
        consumer.close()
    assert _rows(broker_url, queue.name) == {"visible": 1, "invisible": 0}


def test_an_unacknowledged_message_of_a_consumer_that_went_away_is_delivered_again(
    broker_url, queue, waits
):
    first = Consumer(broker_url, queue, polling_interval=NEVER, ack=False)
    second = Consumer(broker_url, queue, polling_interval=NEVER)
    first.start()
    try:
        waits.entered(first, 1)
        publish(broker_url, queue, {"n": "once"})
        assert first.finish() == [{"n": "once"}]
        second.start()
        waits.entered(second, 1)  # the message is taken: nothing for the second consumer
        # The first consumer goes away without acknowledging: its channel puts the message
        # back, and the notification wakes the second.
        first.close()
        assert second.finish() == [{"n": "once"}]
        # Taken twice, put back once: no row is left of it.
        assert _rows(broker_url, queue.name) == {"visible": 0, "invisible": 0}
    finally:
        first.close()
        second.close()


DIE_ONCE = "tests.core.broker_tasks.die_once"


@pytest.mark.slow
def test_a_task_whose_worker_process_is_killed_runs_again_once(broker_url, server_tmp_path):
    """A real Celery worker (prefork, acks_late, reject_on_worker_lost as settings have it)
    on this broker: the pool process running the task is killed; the message goes back to
    the queue and the task runs once more, to its end; then nothing is left to deliver."""
    from django.db import connection

    from marketplace.celery import app
    from tests.core.test_metrics import database_url

    queue = f"test-broker-{uuid.uuid4().hex[:8]}"
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DJANGO_SETTINGS_MODULE", "TEST_DATABASE_NAME", "PROMETHEUS_MULTIPROC_DIR"}
    }
    env.update(
        {
            "DATABASE_URL": database_url(connection.settings_dict),
            "CELERY_BROKER_URL": broker_url,
            "MARKETPLACE_VAR_DIR": str(server_tmp_path / "var"),
            "PYTHONUNBUFFERED": "1",
        }
    )
    log = server_tmp_path / "worker.log"
    worker = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "celery"),
            "-A",
            "marketplace",
            "worker",
            "--pool",
            "prefork",
            "--concurrency",
            "1",
            "--include",
            "tests.core.broker_tasks",
            "--queues",
            queue,
            "--hostname",
            f"{queue}@%h",
            "--without-mingle",
            "--without-gossip",
            "--loglevel",
            "INFO",
        ],
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    runs = server_tmp_path / "runs"
    try:
        app.send_task(DIE_ONCE, args=[str(runs)], queue=queue)
        deadline = time.monotonic() + 120
        while "finished" not in _read(runs):
            assert worker.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
    finally:
        # A warm shutdown: a message still unacknowledged would go back to the queue.
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
    assert _read(runs).split() == ["started", "started", "finished"], log.read_text()
    assert "WorkerLostError" in log.read_text()
    assert _rows(broker_url, queue) == {"visible": 0, "invisible": 0}


def _rows(url: str, queue: str) -> dict:
    """The queue's rows in kombu_message, waiting (visible) or not."""
    with psycopg.connect(**_connect_kwargs(url)) as database:
        visible, invisible = database.execute(
            "SELECT count(*) FILTER (WHERE m.visible), count(*) FILTER (WHERE NOT m.visible) "
            "FROM kombu_message m JOIN kombu_queue q ON q.id = m.queue_id WHERE q.name = %s",
            [queue],
        ).fetchone()
    return {"visible": visible, "invisible": invisible}


def _read(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def _connect_kwargs(url: str) -> dict:
    from sqlalchemy import create_engine

    engine = create_engine(postgres_broker.broker_database_url(url))
    try:
        _args, kwargs = engine.dialect.create_connect_args(engine.url)
    finally:
        engine.dispose()
    kwargs.pop("context", None)
    return kwargs
