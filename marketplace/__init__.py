"""The project. Every Django process loads the Celery app, so the tasks it sends go to the
platform's broker: here when DJANGO_SETTINGS_MODULE is set before this package is imported
(manage.py, Celery, pytest, the image), else in marketplace/wsgi.py (gunicorn). The
command-line client in this package (`marketplace publish`, `marketplace call`) has no
settings and does not pay for importing Celery, which was half of its start; the gateway
refuses to start a Django process that did not load the app (gateway/apps.py)."""

import os

if os.environ.get("DJANGO_SETTINGS_MODULE"):
    from .celery import app as celery_app

    __all__ = ["celery_app"]
