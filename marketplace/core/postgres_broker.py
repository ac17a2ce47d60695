"""The embedded broker's kombu transport: kombu's SQLAlchemy transport on PostgreSQL, woken by
LISTEN/NOTIFY instead of sleeping between polls.

kombu's SQLAlchemy transport keeps messages as rows of `kombu_message`: a put inserts one, a
get marks the oldest visible row of the queue invisible (`visible = false`) in one
transaction, and a consumer that finds every queue empty sleeps `polling_interval` (1 s)
before it looks again; so does one whose prefetch is used up. The invisible row is never
read again (an unacknowledged message goes back as a new row), and never deleted: the table
grows by a row a message for ever. This transport keeps the tables and their visible rows,
and changes the taking, the waiting and the round trips:

- A put is one statement that inserts the row and sends `pg_notify` on the queue's channel,
  so the notification is delivered when, and only if, the message is committed.
- A look is one prepared statement, on the consumer's listening connection, that takes the
  oldest visible messages of every queue consumed, as many as the prefetch limit allows
  (kombu's made a transaction of five to seven round trips per queue and message), and
  deletes the rows it takes: a delivered message lives on only in its consumer until it is
  acknowledged (as kombu's invisible row did, unread), so the table holds only what waits.
- A consumer LISTENs on the channels of the queues it consumes, on a connection of its own,
  before it polls; when the poll finds nothing it waits on that connection until a
  notification comes, an acknowledgement or rejection frees a prefetch slot (a local pipe),
  or `polling_interval` passes. That last one is the fallback poll: a notification that is
  lost (the listening connection broke, the database restarted) delays a message by at most
  `polling_interval`, it never loses one, since the message itself is the row.

`polling_interval` can be set in the broker's transport options (kombu's own transport hands
every option to SQLAlchemy's `create_engine`, where it does not belong). Only PostgreSQL with
psycopg 3 (`postgresql+psycopg://`) has LISTEN; the URL scheme is `EMBEDDED_BROKER_SCHEME`,
registered with kombu by `marketplace.celery`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import select
import threading
import time
from json import dumps, loads
from queue import Empty

import psycopg
from kombu.transport import sqlalchemy as kombu_sqlalchemy
from kombu.utils.encoding import bytes_to_str
from psycopg import sql
from sqlalchemy import SmallInteger, Text, create_engine, delete, event, func, insert, literal
from sqlalchemy import select as sql_select
from sqlalchemy.exc import DisconnectionError

# The scheme of the broker URL: `pglisten+postgresql+psycopg://user@host:port/database`.
EMBEDDED_BROKER_SCHEME = "pglisten"
# The schemes of brokers that keep their messages in a database through SQLAlchemy: kombu's
# own transport and this one.
SQLALCHEMY_SCHEMES = frozenset({"sqla", "sqlalchemy", EMBEDDED_BROKER_SCHEME})
# PostgreSQL's identifiers, and so LISTEN's channel names, are at most 63 bytes.
MAX_CHANNEL_BYTES = 63
# Options of the transport, not of SQLAlchemy's engine: kombu's own transport takes out all
# but polling_interval before it calls create_engine.
NOT_ENGINE_OPTIONS = frozenset(
    {
        "queue_tablename",
        "message_tablename",
        "callback",
        "errback",
        "max_retries",
        "interval_start",
        "interval_step",
        "interval_max",
        "retry_errors",
        "polling_interval",
    }
)
LISTENER_CONNECT_TIMEOUT = 5


def broker_database_url(broker_url: str) -> str | None:
    """The SQLAlchemy URL of the database a broker URL keeps its messages in (what follows
    `sqla+` or `pglisten+`), or None for a broker that is not a database."""
    scheme, plus, rest = broker_url.partition("+")
    if plus and "://" not in scheme and scheme in SQLALCHEMY_SCHEMES:
        return rest
    return None


def notification_channel(message_table: str, queue: str) -> str:
    """The LISTEN channel of a queue: the message table and the queue's name, or, when that
    is longer than PostgreSQL allows, a digest of it (pg_notify refuses a longer name)."""
    name = f"{message_table}:{queue}"
    if len(name.encode()) <= MAX_CHANNEL_BYTES:
        return name
    return f"{message_table[:20]}:{hashlib.sha256(name.encode()).hexdigest()[:40]}"


def _drop_if_closed(dbapi_connection, _record, _proxy) -> None:
    """A pooled connection is idle between statements, so PostgreSQL has nothing to say on it:
    a readable socket means it closed the session (a restart, a terminated backend) or sent
    something unasked. Either way the pool is told to open a new one (SQLAlchemy retries the
    checkout on DisconnectionError), as a failed pre-ping would."""
    if dbapi_connection.closed:
        raise DisconnectionError()
    readable, _, _ = select.select([dbapi_connection.fileno()], [], [], 0)
    if readable:
        raise DisconnectionError()


class Channel(kombu_sqlalchemy.Channel):
    """kombu's channel on kombu's tables, with a put and a get of one statement each, in
    autocommit. kombu's take a transaction of five to seven round trips (a pool checkout with
    its ping, the queue's row, the message, the commit) per queue looked at; a consumer of
    four empty queues made twenty of them for every look. The rows are kombu's: a put
    inserts a visible row, a get deletes the oldest visible row of the queue (kombu's marked
    it invisible and left it there for ever) and delivers it; an unacknowledged message goes
    back as a new row (kombu's restore), and kombu's own transport can share the tables."""

    def _engine_from_config(self):
        client = self.connection.client
        options = {k: v for k, v in client.transport_options.items() if k not in NOT_ENGINE_OPTIONS}
        # pool_pre_ping's SELECT 1 on every checkout was a sixth of an asynchronous call's
        # accept; `_drop_if_closed` finds a dropped connection without a round trip.
        options.pop("pool_pre_ping", None)
        engine = create_engine(client.hostname, **options)
        event.listen(engine, "checkout", _drop_if_closed)
        return engine

    def _notification_channel(self, queue: str) -> str:
        return notification_channel(self.message_tablename, queue)

    def _execute(self, statement) -> list:
        """Run one statement in autocommit: a put and a get are each a transaction of one
        statement. On a connection from kombu's engine, checked at checkout (`_drop_if_closed`),
        so a database that restarted costs no error."""
        engine, _session = self._open()
        with engine.connect() as connection:
            connection.execution_options(isolation_level="AUTOCOMMIT")
            return connection.execute(statement).all()

    def _new_queue(self, queue, **kwargs):
        # kombu's leaves its session's transaction open when the queue exists.
        super()._new_queue(queue, **kwargs)
        self.session.commit()

    def _size(self, queue):
        messages = self.message_cls.__table__
        queues = self.queue_cls.__table__
        counted = (
            sql_select(func.count())
            .select_from(messages.join(queues, queues.c.id == messages.c.queue_id))
            .where(queues.c.name == queue, messages.c.visible.is_(True))
        )
        return self._execute(counted)[0][0]

    def _put(self, queue, payload, **kwargs):
        """Insert the message and notify the queue's listeners in one statement, so the
        notification goes out when, and only if, the row is committed."""
        messages = self.message_cls.__table__
        queues = self.queue_cls.__table__
        inserted = (
            insert(messages)
            .from_select(
                ["queue_id", "visible", "payload", "version"],
                sql_select(
                    queues.c.id,
                    literal(True),
                    literal(dumps(payload), Text),
                    literal(1, SmallInteger),
                ).where(queues.c.name == queue),
            )
            .returning(messages.c.id)
            .cte("inserted")
        )
        notify = sql_select(func.pg_notify(self._notification_channel(queue), "")).select_from(
            inserted
        )
        if self._execute(notify):
            return
        # No such queue yet: kombu creates it (in a transaction of its own), then the put.
        self._new_queue(queue)
        if not self._execute(notify):
            raise RuntimeError(f"the queue {queue!r} went away while a message was put")

    def _take_oldest(self, queue_names):
        """Delete the oldest visible message of these queues and return (queue, payload), or
        None. Rows another consumer is taking right now are skipped, not waited for."""
        messages = self.message_cls.__table__
        queues = self.queue_cls.__table__
        oldest = (
            sql_select(messages.c.id)
            .join(queues, queues.c.id == messages.c.queue_id)
            .where(queues.c.name.in_(list(queue_names)), messages.c.visible.is_(True))
            .order_by(messages.c.timestamp, messages.c.id)
            .limit(1)
            .with_for_update(of=messages, skip_locked=True)
            .correlate(None)
            .scalar_subquery()
        )
        taken = (
            delete(messages)
            .where(messages.c.id == oldest, queues.c.id == messages.c.queue_id)
            .returning(queues.c.name, messages.c.payload)
        )
        rows = self._execute(taken)
        if not rows:
            return None
        queue, payload = rows[0]
        return queue, loads(bytes_to_str(payload))

    def _get(self, queue):
        taken = self._take_oldest([queue])
        if taken is None:
            raise Empty()
        return taken[1]

    def _get_many(self, queues, timeout=None):
        """One look at every queue consumed (kombu's virtual channel calls this instead of
        `_get` per queue when it exists): the oldest visible messages of them all, as many as
        the prefetch limit lets this consumer take (up to MAX_TAKE), are delivered in the
        order they came, so queues are served in that order. Taken on the consumer's
        listening connection (`Listener.take`), or through kombu's engine when it has none."""
        if not queues:
            raise Empty()
        limit = min(self.qos.can_consume_max_estimate() or 1, MAX_TAKE)
        rows = self.connection.take(self._take_many_sql(), [list(queues), limit])
        if rows is None:
            taken = self._take_oldest(queues)
            rows = [] if taken is None else [taken]
        else:
            rows = [(queue, loads(bytes_to_str(payload))) for queue, payload in rows]
        if not rows:
            raise Empty()
        for queue, payload in rows:
            self.connection._deliver(payload, queue)

    def _take_many_sql(self) -> sql.Composed:
        """`_take_oldest` for up to a number of messages, as text for psycopg: the same rows,
        deleted the same way, oldest first (params: the queues' names, how many)."""
        cached = getattr(self, "_take_many_cache", None)
        if cached is None:
            messages = sql.Identifier(self.message_tablename)
            queues = sql.Identifier(self.queue_tablename)
            cached = self._take_many_cache = sql.SQL(_TAKE_MANY).format(
                messages=messages, queues=queues
            )
        return cached

    def basic_ack(self, delivery_tag, multiple=False):
        super().basic_ack(delivery_tag, multiple=multiple)
        self.connection.prefetch_slot_freed()

    def basic_reject(self, delivery_tag, requeue=False):
        super().basic_reject(delivery_tag, requeue=requeue)
        self.connection.prefetch_slot_freed()


# The most messages one look takes (never more than the consumer's prefetch limit lets it).
MAX_TAKE = 16
_TAKE_MANY = """
WITH taken AS (
    DELETE FROM {messages} AS m
    USING {queues} AS q
    WHERE q.id = m.queue_id AND m.id IN (
        SELECT o.id FROM {messages} AS o JOIN {queues} AS oq ON oq.id = o.queue_id
        WHERE oq.name = ANY(%s) AND o.visible
        ORDER BY o.timestamp, o.id
        LIMIT %s
        FOR UPDATE OF o SKIP LOCKED
    )
    RETURNING m.id, q.name, m.payload
)
SELECT name, payload FROM taken ORDER BY id
"""


class Listener:
    """One PostgreSQL connection LISTENing on the channels of the queues a transport consumes,
    and a pipe that an acknowledgement (on whichever thread) writes to. `wait` returns on
    either, or after its timeout."""

    def __init__(self, connect_kwargs: dict):
        self._connect_kwargs = connect_kwargs
        self._connection: psycopg.Connection | None = None
        self._channels: set[str] = set()
        self._wake_reader, self._wake_writer = os.pipe()
        os.set_blocking(self._wake_reader, False)
        os.set_blocking(self._wake_writer, False)
        # An acknowledgement may come on another thread while the transport closes: it must
        # not write to a descriptor number that was closed and then given to another file.
        self._pipe_lock = threading.Lock()
        self._pipe_open = True

    def listen(self, channels: set[str]) -> bool:
        """LISTEN on every channel given (connecting first if need be). False when the
        database cannot be reached: the caller polls as kombu does until it can."""
        try:
            if self._connection is None or self._connection.closed:
                self._channels = set()
                self._connection = psycopg.connect(
                    autocommit=True,
                    connect_timeout=LISTENER_CONNECT_TIMEOUT,
                    **self._connect_kwargs,
                )
            for channel in sorted(channels - self._channels):
                self._connection.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                self._channels.add(channel)
        except psycopg.Error:
            self._drop_connection()
            return False
        return True

    def take(self, query, params) -> list | None:
        """Run a take (`Channel._get_many`) on the listening connection, prepared, in
        autocommit; None when there is no such connection (or it just broke): the caller
        takes through kombu's engine instead."""
        connection = self._connection
        if connection is None or connection.closed:
            return None
        try:
            return connection.execute(query, params, prepare=True).fetchall()
        except psycopg.Error:
            if connection.closed or connection.broken:
                self._drop_connection()
            return None

    @property
    def connected(self) -> bool:
        return self._connection is not None and not self._connection.closed

    def wait(self, timeout: float) -> None:
        """Until a notification or a wake-up arrives, or `timeout` seconds pass. A
        notification that came while a take ran on this connection was read with its answer
        (psycopg keeps it): then the caller looks again at once."""
        connection = self._connection
        if connection is not None:
            try:
                if list(connection.notifies(timeout=0)):
                    return
            except psycopg.Error:
                self._drop_connection()
                connection = None
        watched = [self._wake_reader]
        if connection is not None:
            watched.append(connection.fileno())
        ready, _, _ = select.select(watched, [], [], max(timeout, 0))
        if self._wake_reader in ready:
            self._drain_wake_ups()
        if connection is not None and connection.fileno() in ready:
            try:
                # Read what arrived (the notifications themselves do not matter: the caller
                # polls every queue it consumes).
                for _notification in connection.notifies(timeout=0):
                    pass
            except psycopg.Error:
                self._drop_connection()

    def wake(self) -> None:
        with self._pipe_lock:
            if self._pipe_open:
                # A full pipe has wake-ups enough already.
                with contextlib.suppress(BlockingIOError):
                    os.write(self._wake_writer, b"\0")

    def close(self) -> None:
        self._drop_connection()
        with self._pipe_lock:
            if self._pipe_open:
                self._pipe_open = False
                os.close(self._wake_reader)
                os.close(self._wake_writer)

    def _drain_wake_ups(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while os.read(self._wake_reader, 4096):
                pass

    def _drop_connection(self) -> None:
        connection, self._connection = self._connection, None
        self._channels = set()
        if connection is not None:
            with contextlib.suppress(Exception):
                connection.close()


class Transport(kombu_sqlalchemy.Transport):
    """kombu's SQLAlchemy transport whose consumers wait on LISTEN instead of sleeping."""

    Channel = Channel
    # The fallback poll: how long a consumer waits when no notification comes.
    polling_interval = 1.0

    def __init__(self, client, **kwargs):
        super().__init__(client, **kwargs)
        self._listener: Listener | None = None

    def drain_events(self, connection, timeout=None):
        started = time.monotonic()
        while True:
            # LISTEN before looking: a message committed after the look is then notified.
            listening = self._listen()
            try:
                self.cycle.get(self._deliver, timeout=timeout)
                return
            except Empty:
                pass
            wait = self.polling_interval
            if timeout is not None:
                remaining = timeout - (time.monotonic() - started)
                if remaining <= 0:
                    raise TimeoutError()  # socket.timeout, as kombu's transports raise
                wait = min(wait, remaining)
            if listening and not self._listener.connected:
                continue  # the connection broke during the look: listen again first
            if listening:
                self._listener.wait(wait)
            else:
                time.sleep(wait)

    def take(self, query, params) -> list | None:
        """Run a take on the consumer's listening connection (`Listener.take`)."""
        listener = self._listener
        return None if listener is None else listener.take(query, params)

    def prefetch_slot_freed(self) -> None:
        """A message was acknowledged or rejected: a consumer held back by its prefetch limit
        may take the next one now."""
        listener = self._listener
        if listener is not None:
            listener.wake()

    def close_connection(self, connection):
        try:
            super().close_connection(connection)
        finally:
            listener, self._listener = self._listener, None
            if listener is not None:
                listener.close()

    def _listen(self) -> bool:
        channels = {
            channel._notification_channel(queue)
            for channel in self.channels
            for queue in channel._active_queues
        }
        if not channels:
            return False
        if self._listener is None:
            self._listener = Listener(self._connect_kwargs())
        return self._listener.listen(channels)

    def _connect_kwargs(self) -> dict:
        """What psycopg.connect needs to reach the broker's database: what SQLAlchemy's
        dialect would pass it for the same URL."""
        engine, _session = self.channels[0]._open()
        if engine.dialect.driver != "psycopg":
            raise ValueError(
                f"the {EMBEDDED_BROKER_SCHEME} broker needs postgresql+psycopg://, "
                f"not {engine.url.drivername}"
            )
        _args, kwargs = engine.dialect.create_connect_args(engine.url)
        kwargs.pop("context", None)
        return kwargs
