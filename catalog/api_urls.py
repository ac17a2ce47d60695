from django.urls import path

from . import algorithms_api, api

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
    # Algorithmia's algorithms API over the same models (algorithms_api.py).
    path(
        "algorithms/<slug:owner>",
        algorithms_api.AlgorithmCreateApi.as_view(),
        name="api-algorithm-create",
    ),
    path(
        "algorithms/<slug:owner>/<slug:name>",
        algorithms_api.AlgorithmApi.as_view(),
        name="api-algorithm",
    ),
    path(
        "algorithms/<slug:owner>/<slug:name>/versions",
        algorithms_api.AlgorithmVersionListApi.as_view(),
        name="api-algorithm-versions",
    ),
    path(
        "algorithms/<slug:owner>/<slug:name>/versions/<str:git_hash>",
        algorithms_api.AlgorithmVersionApi.as_view(),
        name="api-algorithm-version",
    ),
    path(
        "algorithms/<slug:owner>/<slug:name>/builds",
        algorithms_api.AlgorithmBuildListApi.as_view(),
        name="api-algorithm-builds",
    ),
    path(
        "algorithms/<slug:owner>/<slug:name>/builds/<str:build_id>",
        algorithms_api.AlgorithmBuildApi.as_view(),
        name="api-algorithm-build",
    ),
    path(
        "algorithms/<slug:owner>/<slug:name>/builds/<str:build_id>/logs",
        algorithms_api.AlgorithmBuildLogApi.as_view(),
        name="api-algorithm-build-logs",
    ),
    path(
        "algorithms/<slug:owner>/<slug:name>/compile",
        algorithms_api.AlgorithmCompileApi.as_view(),
        name="api-algorithm-compile",
    ),
    path("teams/<slug:team>/webhooks", api.WebhookListApi.as_view(), name="api-webhooks"),
    path(
        "teams/<slug:team>/webhooks/<uuid:webhook_id>",
        api.WebhookDetailApi.as_view(),
        name="api-webhook",
    ),
]
