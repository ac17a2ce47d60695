"""Prometheus metrics: what is counted where, and the exposition that /metrics serves.

Counters and histograms are written where things happen: HTTP requests in
`metrics_middleware`, calls in `gateway.services.finish` (`invocation_finished`), builds in
`catalog.services._finish` (`build_finished`), searches in `catalog.search.engines`
(`search_answered`).
The state of other components (the runner's warm pool, the broker's queues) is read when
/metrics is scraped, by the collectors of the `collectors` registry, which the apps fill in
their `AppConfig.ready()` (core: the broker's queues; execution: the runner's pool); a
component that does not answer only reports itself down.

Several processes write metrics (gunicorn's web workers, Celery's pool, the supervisor), so
with PROMETHEUS_MULTIPROC_DIR set (`run_platform` sets it to var/prometheus and empties it at
start) each process writes its values to memory-mapped files there and a scrape, answered by
any one web worker, sums the files of all of them (prometheus_client's multiprocess mode).
gunicorn's `child_exit` hook (`gunicorn_conf`) marks a dead worker so its live gauges go, while
what it counted stays. Without the variable (tests, one process) values live in this
process's registry.

Labels stay bounded: routes are URL pattern names, never paths; no request, user or key ids;
a process labels at most MAX_MODEL_LABELS distinct models and counts the rest as "other".
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading

from django.conf import settings
from kombu import Connection
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import choose_encoder
from sqlalchemy import and_, column, create_engine, func, inspect, select, table
from sqlalchemy.exc import ProgrammingError

from .logging import log_build, log_invocation
from .postgres_broker import broker_database_url
from .registry import Registry

logger = logging.getLogger(__name__)

MAX_MODEL_LABELS = 1000
OTHER_MODELS = "other"
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

# This process's metrics. In multiprocess mode their values go to files and this registry
# is never read; a scrape reads the files instead.
REGISTRY = CollectorRegistry(auto_describe=True)

HTTP_REQUESTS = Counter(
    "marketplace_http_requests_total",
    "HTTP requests answered, by method, URL pattern name and status code.",
    ["method", "route", "status"],
    registry=REGISTRY,
)
HTTP_REQUEST_DURATION = Histogram(
    "marketplace_http_request_duration_seconds",
    "Time to answer an HTTP request, by URL pattern name.",
    ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
    registry=REGISTRY,
)
HTTP_REQUESTS_IN_PROGRESS = Gauge(
    "marketplace_http_requests_in_progress",
    "HTTP requests being answered now, over the live web workers.",
    registry=REGISTRY,
    multiprocess_mode="livesum",
)
INVOCATIONS = Counter(
    "marketplace_invocations_total",
    "Model calls finished, by model (owner/name) and final status.",
    ["model", "status"],
    registry=REGISTRY,
)
INVOCATION_DURATION = Histogram(
    "marketplace_invocation_duration_seconds",
    "Wall time of a model call from its start to its final status, by model.",
    ["model"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800),
    registry=REGISTRY,
)
COLD_STARTS = Counter(
    "marketplace_cold_starts_total",
    "Model calls that had to start a model process first, by model.",
    ["model"],
    registry=REGISTRY,
)
BUILD_DURATION = Histogram(
    "marketplace_build_duration_seconds",
    "Time from a build's start to its end, by runtime and final status.",
    ["runtime", "status"],
    buckets=(1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600),
    registry=REGISTRY,
)
SEARCH_DURATION = Histogram(
    "marketplace_search_duration_seconds",
    "Time to answer a catalogue search or suggestion, by engine and kind.",
    ["engine", "kind"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
    registry=REGISTRY,
)

_model_labels: set[str] = set()
_model_labels_lock = threading.Lock()


def model_label(full_name: str) -> str:
    """The model's own label while this process has labelled fewer than MAX_MODEL_LABELS
    models, "other" beyond: a huge catalogue cannot blow up the number of series."""
    if full_name in _model_labels:
        return full_name
    with _model_labels_lock:
        if len(_model_labels) < MAX_MODEL_LABELS:
            _model_labels.add(full_name)
            return full_name
    return OTHER_MODELS


# -- recording ---------------------------------------------------------------------------------


def http_request_finished(*, method: str, route: str, status: int, seconds: float) -> None:
    method = method if method in HTTP_METHODS else "other"
    HTTP_REQUESTS.labels(method=method, route=route, status=str(status)).inc()
    HTTP_REQUEST_DURATION.labels(route=route).observe(seconds)


def invocation_finished(invocation, *, recorded: bool) -> None:
    """Count a finished call and log it (on the line of the web request that ran it, or on a
    line of its own in a worker or the reaper). Only the finish that recorded the final
    status does, so a call is counted once. Never fails the call."""
    if not recorded:
        return
    try:
        model = model_label(invocation.model.full_name)
        INVOCATIONS.labels(model=model, status=str(invocation.status)).inc()
        if invocation.duration is not None:
            INVOCATION_DURATION.labels(model=model).observe(invocation.duration)
        if invocation.cold_start:
            COLD_STARTS.labels(model=model).inc()
        log_invocation(invocation)
    except Exception:
        logger.exception("could not record the metrics of invocation %s", invocation.pk)


def build_finished(build) -> None:
    """Time a build that ended (succeeded or failed) and log its line. Never fails it."""
    try:
        if build.duration is not None:
            BUILD_DURATION.labels(runtime=build.runtime or "unknown", status=build.status).observe(
                build.duration
            )
        log_build(build)
    except Exception:
        logger.exception("could not record the metrics of build %s", build.pk)


def search_answered(engine: str, kind: str, seconds: float) -> None:
    """A search or suggestion was answered by `engine` (the one that did answer, after a
    fall back too) in `seconds`, the failed attempt included."""
    SEARCH_DURATION.labels(engine=engine, kind=kind).observe(seconds)


# -- read at scrape time ---------------------------------------------------------------------

# What a scrape reads now, besides what was counted: objects with a `collect()` method that
# yields metric families, as prometheus_client's collectors do.
collectors: Registry = Registry("metric collector")


class QueueDepthCollector:
    """Messages waiting in each queue this platform's workers consume, asked of the broker
    (kombu's SQLAlchemy transport and the embedded broker built on it: visible rows of
    kombu_message; Redis: the length of the queue's lists; AMQP: a passive declare)."""

    def collect(self):
        up = GaugeMetricFamily("marketplace_broker_up", "Whether the broker answered the scrape.")
        depth = GaugeMetricFamily(
            "marketplace_queue_depth", "Messages waiting in a task queue.", labels=["queue"]
        )
        try:
            for queue, count in queue_depths(platform_queues()).items():
                depth.add_metric([queue], count)
        except Exception as exc:
            logger.warning("queue depths unavailable: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield depth


def platform_queues() -> list[str]:
    return sorted(
        {
            settings.CELERY_TASK_DEFAULT_QUEUE,
            settings.CATALOG_BUILD_QUEUE,
            settings.GATEWAY_ASYNC_QUEUE,
            f"hw-{settings.HARDWARE_CLASS}",
        }
    )


def queue_depths(queues: list[str]) -> dict[str, int]:
    url = settings.CELERY_BROKER_URL
    database_url = broker_database_url(url)
    if database_url:
        return _sqlalchemy_queue_depths(database_url, queues)
    return _kombu_queue_depths(url, queues)


_sqlalchemy_engines: dict = {}


def _sqlalchemy_queue_depths(url: str, queues: list[str]) -> dict[str, int]:
    """Visible rows of kombu_message per queue of kombu_queue (kombu's SQLAlchemy transport;
    delivered messages stay as invisible rows until acknowledged). No tables yet: no worker
    or sender ever connected, so nothing waits."""
    engine = _sqlalchemy_engines.get(url)
    if engine is None:
        engine = _sqlalchemy_engines.setdefault(
            url,
            create_engine(
                url,
                pool_size=1,
                max_overflow=1,
                pool_pre_ping=True,
                connect_args={"connect_timeout": 2},
            ),
        )
    options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", None) or {}
    queue_table = table(options.get("queue_tablename", "kombu_queue"), column("id"), column("name"))
    message_table = table(
        options.get("message_tablename", "kombu_message"),
        column("id"),
        column("queue_id"),
        column("visible"),
    )
    query = (
        select(queue_table.c.name, func.count(message_table.c.id))
        .select_from(
            queue_table.outerjoin(
                message_table,
                and_(
                    message_table.c.queue_id == queue_table.c.id,
                    message_table.c.visible.is_(True),
                ),
            )
        )
        .where(queue_table.c.name.in_(queues))
        .group_by(queue_table.c.name)
    )
    depths = dict.fromkeys(queues, 0)
    with engine.connect() as connection:
        try:
            depths.update({name: count for name, count in connection.execute(query)})
        except ProgrammingError:
            connection.rollback()
            if not _kombu_tables_missing(connection, queue_table.name):
                raise
    return depths


def _kombu_tables_missing(connection, queue_table: str) -> bool:
    return not inspect(connection).has_table(queue_table)


def _kombu_queue_depths(url: str, queues: list[str]) -> dict[str, int]:
    """Redis: the length of the queue's lists; AMQP: a passive declare's message count."""
    depths = {}
    options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", None) or {}
    with Connection(url, connect_timeout=2, transport_options=options) as connection:
        connection.ensure_connection(max_retries=1, timeout=2)
        for queue in queues:
            channel = connection.channel()
            try:
                depths[queue] = channel.queue_declare(queue=queue, passive=True).message_count
            except connection.channel_errors:
                depths[queue] = 0  # never declared (or emptied away, in Redis): nothing waits
            finally:
                # A channel the broker refused may not close cleanly.
                with contextlib.suppress(Exception):
                    channel.close()
    return depths


# -- exposition --------------------------------------------------------------------------------


def multiprocess_dir() -> str | None:
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    return path if path and os.path.isdir(path) else None


class _Scrape:
    """What one scrape reports: the counted metrics (of every process, in multiprocess mode)
    and the gauges read now."""

    def __init__(self):
        path = multiprocess_dir()
        if path:
            self.counted = CollectorRegistry()
            multiprocess.MultiProcessCollector(self.counted, path=path)
        else:
            self.counted = REGISTRY
        self.read_now = list(collectors)

    def collect(self):
        yield from self.counted.collect()
        for collector in self.read_now:
            yield from collector.collect()


def exposition(accept: str = "") -> tuple[bytes, str]:
    """The body of a scrape in the format the scraper asked for, and its content type."""
    encoder, content_type = choose_encoder(accept)
    return encoder(_Scrape()), content_type
