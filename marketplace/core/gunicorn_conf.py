"""gunicorn settings of the web process: `gunicorn -c python:marketplace.core.gunicorn_conf`.

With PROMETHEUS_MULTIPROC_DIR set, every worker writes its metrics to files there (see
marketplace.core.metrics); when a worker exits (a crash, a timeout, a kill, a restart) its
live gauges must go, so `child_exit` marks it dead. What it counted stays in its files and
keeps being summed.

Each worker serves WEB_THREADS requests at once (gunicorn's gthread worker; 1 gives the
plain sync worker). A call spends most of its time waiting on PostgreSQL and on the model
runner, not on the CPU: a sync worker idles through those waits, while the threads of one
worker overlap them (bench/invoke_latency.py: 3.8x the requests per second at concurrency 8
on 2 cores, 3 workers). Everything a request touches is per thread (database connections,
the runner connection) or locked (the change feed's caches).

With LOG_FORMAT=json (the default in production) gunicorn's own lines (booting, worker
exits) are JSON too. The rule mirrors settings.py, which gunicorn's master does not import.
"""

from __future__ import annotations

import os

from prometheus_client import multiprocess

threads = max(1, int(os.environ.get("WEB_THREADS", "4")))

# A call may run for up to 3,000 s (gateway.calls.MAX_TIMEOUT_SECONDS), and a sync worker
# (WEB_THREADS=1) is silent while it serves one. The timeout also covers a worker's boot:
# gunicorn kills a worker that has not finished importing the app within it, so gunicorn's
# 30 s default restarted every worker, forever, on a machine busy enough to slow the import.
timeout = 3100
graceful_timeout = 15


def child_exit(server, worker):
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if path and os.path.isdir(path):
        multiprocess.mark_process_dead(worker.pid, path)


def _log_format() -> str:
    production = os.environ.get("MARKETPLACE_ENV", "").strip() == "production"
    return os.environ.get("LOG_FORMAT", "").strip() or ("json" if production else "plain")


if _log_format() == "json":
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "marketplace.core.logging.JsonFormatter"}},
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {
            "gunicorn.error": {"handlers": ["console"], "level": "INFO", "propagate": False},
            # marketplace.requests writes each request's line (with its request id).
            "gunicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
        },
    }
