from django.urls import path

from . import views, views_metrics

app_name = "core"

urlpatterns = [
    path("docs/", views.docs, name="docs"),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("metrics", views_metrics.metrics_view, name="metrics"),
]
