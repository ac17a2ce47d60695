import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marketplace.settings")

# gunicorn imports this package before this module could set DJANGO_SETTINGS_MODULE, so the
# package may not have loaded the Celery app (marketplace/__init__.py): load it here.
from marketplace.celery import app as celery_app

application = get_wsgi_application()

__all__ = ["application", "celery_app"]
