from django.urls import path

from . import api

urlpatterns = [
    path("algo/<slug:owner>/<slug:name>", api.InvokeApi.as_view(), name="api-invoke"),
    path(
        "algo/<slug:owner>/<slug:name>/<str:version>",
        api.InvokeApi.as_view(),
        name="api-invoke-version",
    ),
    path(
        "teams/<slug:team>/signing-secret",
        api.SigningSecretApi.as_view(),
        name="api-signing-secret",
    ),
    path(
        "teams/<slug:team>/signing-secret/rotate",
        api.SigningSecretRotateApi.as_view(),
        name="api-signing-secret-rotate",
    ),
    path("invocations/<uuid:request_id>", api.InvocationApi.as_view(), name="api-invocation"),
    path(
        "invocations/<uuid:request_id>/cancel",
        api.InvocationCancelApi.as_view(),
        name="api-invocation-cancel",
    ),
]
