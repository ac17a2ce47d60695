from django.urls import path, re_path

from . import views

app_name = "catalog"

# Model pages live at /{owner}/{name}; namespace slugs that would shadow the site's own
# pages are reserved (marketplace.accounts.services.RESERVED_SLUGS).
urlpatterns = [
    path("", views.home, name="home"),
    path("explore/", views.explore, name="explore"),
    path("new/", views.upload, name="upload"),
    path("<slug:owner>", views.owner_page, name="owner"),
    path("<slug:owner>/<slug:name>", views.model_page, name="model"),
    re_path(
        r"^(?P<owner>[-a-zA-Z0-9_]+)/(?P<name>[-a-zA-Z0-9_]+)/(?P<number>[0-9]+\.[0-9]+\.[0-9]+)$",
        views.version_page,
        name="version",
    ),
    path("<slug:owner>/<slug:name>/builds/<uuid:build_id>", views.build_page, name="build"),
    path(
        "<slug:owner>/<slug:name>/settings/anonymous-tries",
        views.anonymous_tries,
        name="anonymous_tries",
    ),
    path("<slug:owner>/<slug:name>/builds/<uuid:build_id>/publish", views.publish, name="publish"),
]
