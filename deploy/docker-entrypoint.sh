#!/bin/sh
# The image's entrypoint: the first argument is the role this container plays.
#
#   web       gunicorn serving the pages and the API on $PORT
#   worker    a Celery worker (queues: $WORKER_QUEUES, by default every queue this host serves)
#   beat      the Celery beat scheduler (run exactly one)
#   runner    this host's model runner (warm sandboxed model processes, on a Unix socket)
#   migrate   apply migrations; then the demo admin/team/key when SETUP_DEMO=true, and an
#             Elasticsearch reindex when ELASTICSEARCH_URL is set
#   healthcheck   checks the role this container started with (Docker HEALTHCHECK, probes)
#   anything else is executed as given (e.g. `python manage.py createsuperuser`).
#
# Extra arguments after a role are passed to the program it starts.
set -eu

ROLE_FILE="${TMPDIR:-/tmp}/marketplace-role"
APP_DIR="${APP_DIR:-/app}"

remember_role() {
    printf '%s\n' "$1" >"$ROLE_FILE" 2>/dev/null || true
}

default_worker_queues() {
    # The queues `manage.py run_platform` gives its two workers (settings.py has the defaults):
    # one role serves them all unless WORKER_QUEUES splits them.
    printf '%s,%s,%s,hw-%s' \
        "${CELERY_DEFAULT_QUEUE:-celery}" \
        "${CATALOG_BUILD_QUEUE:-builds}" \
        "${GATEWAY_ASYNC_QUEUE:-invocations}" \
        "${HARDWARE_CLASS:-cpu}"
}

healthcheck() {
    role="$(cat "$ROLE_FILE" 2>/dev/null || echo unknown)"
    case "$role" in
        web)
            # Host: localhost, which ALLOWED_HOSTS must keep (the Kubernetes probes send it too).
            exec python - "${PORT:-8000}" <<'PY'
import http.client
import sys

connection = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=5)
connection.request("GET", "/healthz", headers={"Host": "localhost"})
status = connection.getresponse().status
sys.exit(0 if status == 200 else f"/healthz answered {status}")
PY
            ;;
        runner)
            exec python manage.py shell --no-imports --command "
import sys
from execution.runner_service import RunnerClient, RunnerUnavailable
try:
    RunnerClient().health()
except RunnerUnavailable as exc:
    sys.exit(f'runner: {exc}')
"
            ;;
        worker)
            exec celery -A marketplace inspect ping --timeout 5 \
                --destination "worker@$(hostname)" >/dev/null
            ;;
        *)
            # beat, migrate and one-off commands: the process being alive is the check.
            exit 0
            ;;
    esac
}

cd "$APP_DIR"
role="${1:-web}"
if [ "$#" -gt 0 ]; then
    shift
fi

case "$role" in
    web)
        remember_role web
        # Every gunicorn worker writes its metrics here and /metrics sums them; the files of
        # an earlier start would be counted again, so the directory starts empty.
        export PROMETHEUS_MULTIPROC_DIR="${PROMETHEUS_MULTIPROC_DIR:-${TMPDIR:-/tmp}/prometheus}"
        mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
        rm -f "$PROMETHEUS_MULTIPROC_DIR"/*.db
        # gunicorn reads WEB_CONCURRENCY and FORWARDED_ALLOW_IPS from the environment itself.
        exec gunicorn marketplace.wsgi:application \
            --config python:marketplace.core.gunicorn_conf \
            --bind "0.0.0.0:${PORT:-8000}" \
            "$@"
        ;;
    worker)
        remember_role worker
        exec celery -A marketplace worker \
            --loglevel "${LOG_LEVEL:-INFO}" \
            --concurrency "${WORKER_CONCURRENCY:-2}" \
            --hostname "worker@%h" \
            --queues "${WORKER_QUEUES:-$(default_worker_queues)}" \
            "$@"
        ;;
    beat)
        remember_role beat
        exec celery -A marketplace beat \
            --loglevel "${LOG_LEVEL:-INFO}" \
            --schedule "${TMPDIR:-/tmp}/celerybeat-schedule" \
            "$@"
        ;;
    runner)
        remember_role runner
        exec python manage.py run_runner "$@"
        ;;
    migrate)
        remember_role migrate
        python manage.py migrate --noinput "$@"
        if [ "${SETUP_DEMO:-false}" = "true" ]; then
            python manage.py setup_demo
        fi
        if [ -n "${ELASTICSEARCH_URL:-}" ]; then
            # Search falls back to PostgreSQL without the index, so a cluster that is down
            # must not fail the deployment; the periodic indexer heals what this misses.
            python manage.py search_reindex ||
                echo "migrate: search_reindex failed; run it again once Elasticsearch answers" >&2
        fi
        ;;
    healthcheck)
        healthcheck
        ;;
    *)
        exec "$role" "$@"
        ;;
esac
