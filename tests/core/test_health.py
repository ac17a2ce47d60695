import pytest

pytestmark = pytest.mark.django_db


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_readyz_names_each_component(client):
    response = client.get("/readyz")
    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] in ("ok", "degraded")
    assert set(body["components"]) >= {"database", "broker", "workers", "search", "sandbox"}
    for name, component in body["components"].items():
        assert component["status"] in ("ok", "degraded", "down"), name
        assert component["engine"] and component["message"], name
    assert body["components"]["database"]["status"] == "ok"
    assert "PostgreSQL" in body["components"]["database"]["message"]
    assert body["components"]["search"]["engine"] == "postgresql"


def test_readyz_lists_the_components_in_a_fixed_order(client):
    """Each app adds its own checks in its ready(); /readyz keeps one order all the same."""
    body = client.get("/readyz").json()
    assert list(body["components"]) == [
        "database",
        "broker",
        "workers",
        "search",
        "sandbox",
        "execution",
    ]


def test_readyz_is_503_when_a_required_component_is_down(client, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    settings.BROKER_ENGINE_NAME = "redis"
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "down"
    assert body["components"]["broker"]["status"] == "down"
    assert body["components"]["database"]["status"] == "ok"


def test_elasticsearch_down_falls_back_and_degrades(client, settings):
    settings.ELASTICSEARCH_URL = "http://127.0.0.1:1"
    body = client.get("/readyz").json()
    assert body["components"]["search"]["status"] == "degraded"
    assert body["components"]["search"]["engine"] == "postgresql"


def test_workers_are_degraded_until_a_live_worker_consumes_the_queue_of_async_calls(
    client, settings
):
    from django.utils import timezone

    from marketplace.core.models import WorkerHeartbeat

    settings.EXECUTION_BACKEND = "local"
    now = timezone.now()
    WorkerHeartbeat.objects.create(
        hostname="worker@h", queues=["celery", "builds"], started_at=now, last_seen=now
    )
    workers = client.get("/readyz").json()["components"]["workers"]
    assert workers["status"] == "degraded"
    assert settings.GATEWAY_ASYNC_QUEUE in workers["message"]

    WorkerHeartbeat.objects.create(
        hostname="calls@h", queues=[settings.GATEWAY_ASYNC_QUEUE], started_at=now, last_seen=now
    )
    workers = client.get("/readyz").json()["components"]["workers"]
    assert workers["status"] == "ok", workers
    assert "calls@h" in workers["message"] and "worker@h" in workers["message"]
