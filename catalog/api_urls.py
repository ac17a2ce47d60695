from django.urls import path

from . import api

urlpatterns = [
    path("models", api.ModelListApi.as_view(), name="api-models"),
    path("models/suggest", api.SuggestionApi.as_view(), name="api-model-suggestions"),
    path("models/<slug:owner>", api.ModelUploadApi.as_view(), name="api-model-upload"),
    path("models/<slug:owner>/<slug:name>", api.ModelDetailApi.as_view(), name="api-model"),
    path(
        "models/<slug:owner>/<slug:name>/snippets",
        api.SnippetListApi.as_view(),
        name="api-snippets",
    ),
    path(
        "models/<slug:owner>/<slug:name>/versions",
        api.VersionListApi.as_view(),
        name="api-versions",
    ),
    path(
        "models/<slug:owner>/<slug:name>/versions/<str:version>",
        api.VersionDetailApi.as_view(),
        name="api-version",
    ),
    path("models/<slug:owner>/<slug:name>/builds", api.BuildListApi.as_view(), name="api-builds"),
    path(
        "models/<slug:owner>/<slug:name>/builds/<uuid:build_id>",
        api.BuildDetailApi.as_view(),
        name="api-build",
    ),
    path(
        "models/<slug:owner>/<slug:name>/builds/<uuid:build_id>/logs",
        api.BuildLogApi.as_view(),
        name="api-build-logs",
    ),
    path("teams/<slug:team>/webhooks", api.WebhookListApi.as_view(), name="api-webhooks"),
    path(
        "teams/<slug:team>/webhooks/<uuid:webhook_id>",
        api.WebhookDetailApi.as_view(),
        name="api-webhook",
    ),
]
