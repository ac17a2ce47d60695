import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marketplace.settings")

# gunicorn imports this package before this module could set DJANGO_SETTINGS_MODULE, so the
# package may not have loaded the Celery app (marketplace/__init__.py): load it here.
from marketplace.celery import app as celery_app

django_application = get_wsgi_application()

# Imported once Django is set up (it imports models). Synchronous calls skip Django's
# middleware and DRF (gateway/hot_path.py); every other request, and any call the hot path
# does not take, is Django's.
from gateway.hot_path import HotPath  # noqa: E402

application = HotPath(django_application)

__all__ = ["application", "celery_app"]
