# One image for every role of the platform: web (gunicorn), worker (Celery), beat, runner
# (the warm pool of sandboxed model processes) and migrate. deploy/docker-entrypoint.sh picks
# the role from the first argument:
#
#   docker build -t modelplace .
#   docker run --rm -e DATABASE_URL=... modelplace web
#
# See "Deploying" in README.md for the roles, the environment and the privileges the runner's
# sandbox needs.

ARG PYTHON_IMAGE=python:3.11-slim

# -- build: the project's wheel and its dependencies in a virtualenv --------------------------
FROM ${PYTHON_IMAGE} AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy

# uv lives in the virtualenv: the builder makes each model's environment with it at run time.
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install "uv>=0.5"

WORKDIR /src
COPY pyproject.toml README.md ./
COPY marketplace ./marketplace
COPY catalog ./catalog
COPY billing ./billing
COPY gateway ./gateway
COPY monitoring ./monitoring
COPY execution ./execution
COPY data ./data
RUN /opt/venv/bin/uv build --wheel --out-dir /wheels . \
    && /opt/venv/bin/uv pip install --python /opt/venv/bin/python /wheels/marketplace-*.whl

# -- runtime -------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

# bubblewrap: the model sandbox; nodejs: the `node` runtime; tini: PID 1 that forwards
# signals and reaps the model processes the runner leaves behind.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        bubblewrap nodejs tini \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 marketplace \
    && useradd --system --uid 10001 --gid marketplace --no-create-home \
        --home-dir /var/lib/marketplace --shell /usr/sbin/nologin marketplace

COPY --from=build /opt/venv /opt/venv

# The wheel holds the Python modules; settings.BASE_DIR also needs the templates, static files
# and package data (runtime shims, demo models) beside them, so the source tree is /app and
# comes first on the path.
WORKDIR /app
COPY manage.py pyproject.toml ./
COPY marketplace ./marketplace
COPY catalog ./catalog
COPY billing ./billing
COPY gateway ./gateway
COPY monitoring ./monitoring
COPY execution ./execution
COPY data ./data
COPY templates ./templates
COPY static ./static
COPY deploy/docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh

# UV_LINK_MODE: model environments live on a volume, uv's cache under HOME; copy rather than
# try hard links across file systems.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DJANGO_SETTINGS_MODULE=marketplace.settings \
    MARKETPLACE_ENV=production \
    MARKETPLACE_VAR_DIR=/var/lib/marketplace \
    MEDIA_ROOT=/var/lib/marketplace/media \
    HOME=/var/lib/marketplace \
    PORT=8000 \
    UV_LINK_MODE=copy

# Static files are collected into the image (STATIC_ROOT = $MARKETPLACE_VAR_DIR/staticfiles),
# with throwaway values for what production settings insist on: nothing connects at import.
# Volumes go on media/, data/, envs/ and run/ below it, never on the whole directory.
RUN python -m compileall -q /app \
    && DATABASE_URL=postgresql://collectstatic@localhost/unused \
       SECRET_KEY=collectstatic-only-not-a-secret \
       python manage.py collectstatic --noinput --verbosity 0 \
    && mkdir -p /var/lib/marketplace/media /var/lib/marketplace/data /var/lib/marketplace/envs /var/lib/marketplace/run \
    && chown -R marketplace:marketplace /var/lib/marketplace \
    && chmod 0700 /var/lib/marketplace /var/lib/marketplace/staticfiles /var/lib/marketplace/run \
    && chmod 0755 /usr/local/bin/docker-entrypoint.sh \
    && sh -n /usr/local/bin/docker-entrypoint.sh

USER 10001:10001
EXPOSE 8000

# Checks the role this container runs (web: GET /healthz; runner: its socket's /health;
# worker: a Celery ping), see deploy/docker-entrypoint.sh.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["docker-entrypoint.sh", "healthcheck"]

ENTRYPOINT ["tini", "--", "docker-entrypoint.sh"]
CMD ["web"]
