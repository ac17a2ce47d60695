"""The project. Every Django process (manage.py, gunicorn under run_platform or the image,
Celery, pytest: each has DJANGO_SETTINGS_MODULE set before it imports this package) loads
the Celery app here, so the tasks it sends go to the platform's broker. The command-line
client in this package (`marketplace publish`, `marketplace call`) has no settings and does
not pay for importing Celery, which was half of its start; the gateway refuses to start a
Django process that did not load the app (gateway/apps.py)."""

import os

if os.environ.get("DJANGO_SETTINGS_MODULE"):
    from .celery import app as celery_app

    __all__ = ["celery_app"]
