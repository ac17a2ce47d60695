from django.urls import path

from . import views

app_name = "data"

# Under teams/ (a reserved namespace slug) like the other per-namespace pages; `-` cannot
# start a collection name, so `data/-/connectors/` never shadows a collection.
urlpatterns = [
    path("data/", views.data_home, name="home"),
    path("teams/<slug:team>/data/", views.collection_list, name="collections"),
    path("teams/<slug:team>/data/-/connectors/", views.connector_list, name="connectors"),
    path(
        "teams/<slug:team>/data/-/connectors/<str:name>/",
        views.connector_edit,
        name="connector_edit",
    ),
    path("teams/<slug:team>/data/<str:collection>/", views.browse, name="browse"),
    path("teams/<slug:team>/data/<str:collection>/<path:path>", views.browse, name="browse_path"),
]
