from django.urls import path, re_path

from . import api

# The path is everything after /v1/data/ (slashes included, one trailing slash allowed);
# data/paths.py checks every part of it.
urlpatterns = [
    re_path(r"^data/(?P<path>.*)$", api.DataApi.as_view(), name="api-data"),
    path(
        "connector/<slug:connector>/<path:path>", api.ConnectorApi.as_view(), name="api-connector"
    ),
]
