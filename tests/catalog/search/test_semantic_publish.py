"""Publishing a version queues the model's embedding after commit, and a real Celery worker
(in a thread of this process, on the test database) makes it: the published model is then
found by a query in other words. The encoder never runs inside the publishing request."""

from __future__ import annotations

import time
import uuid

import pytest

import catalog.search
from catalog.models import ModelEmbedding, Visibility
from catalog.search import CatalogQuery, tasks
from catalog.services import version_publish
from marketplace.accounts.models import Team
from marketplace.accounts.principals import Principal
from marketplace.celery import app as celery_app
from tests.catalog.factories import BuildFactory, ModelFactory
from tests.factories import UserFactory

MANIFEST = {
    "name": "face-finder",
    "runtime": "python",
    "entrypoint": "predict.py:apply",
    "title": "Face finder",
    "tagline": "Locates human faces in images and returns their bounding boxes",
    "task": "object-detection",
    "tags": ["vision"],
}


def _unpublished_model():
    user = UserFactory()
    owner = Team.objects.get(personal_owner=user)
    model = ModelFactory(owner=owner, slug="face-finder", tagline="", visibility="private")
    build = BuildFactory(model=model, manifest=MANIFEST)
    return user, model, build


@pytest.mark.django_db
def test_publishing_queues_the_embedding_after_commit_only(
    django_capture_on_commit_callbacks, monkeypatch
):
    queued = []
    monkeypatch.setattr(
        tasks.embed_model, "apply_async", lambda args, **kwargs: queued.append(args)
    )
    user, model, build = _unpublished_model()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        version_publish(actor=user, model=model, bump="minor", visibility="public", build=build)
        assert not queued  # nothing is queued inside the transaction
        assert not ModelEmbedding.objects.filter(pk=model.pk).exists()  # nor encoded
    for callback in callbacks:
        callback()
    assert (str(model.pk),) in queued


@pytest.mark.django_db
def test_publishing_succeeds_with_the_broker_down(django_capture_on_commit_callbacks, caplog):
    from celery import Celery, current_app

    previous = current_app._get_current_object()
    app = Celery("broker-down", broker="redis://127.0.0.1:1/0", set_as_current=True)
    app.conf.broker_connection_timeout = 1
    try:
        user, model, build = _unpublished_model()
        with django_capture_on_commit_callbacks(execute=True):
            version = version_publish(
                actor=user, model=model, bump="minor", visibility="public", build=build
            )
    finally:
        previous.set_current()
        app.close()
    assert version.number == "0.1.0"
    assert "could not queue the embedding" in caplog.text


@pytest.fixture
def default_queue_worker(settings):
    from celery.contrib.testing.worker import start_worker

    settings.CELERY_TASK_DEFAULT_QUEUE = f"test-embed-{uuid.uuid4().hex[:8]}"
    with start_worker(
        celery_app,
        queues=[settings.CELERY_TASK_DEFAULT_QUEUE],
        perform_ping_check=False,
        pool="solo",
        shutdown_timeout=30,
        loglevel="WARNING",
    ):
        yield


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_worker_embeds_a_published_model_and_search_finds_it_by_meaning(
    default_queue_worker,
):
    user, model, build = _unpublished_model()
    query = CatalogQuery(text="find faces in photos")
    assert catalog.search.search(Principal(None), query).count == 0

    version_publish(actor=user, model=model, bump="minor", visibility="public", build=build)
    deadline = time.monotonic() + 120
    while not ModelEmbedding.objects.filter(pk=model.pk, stale=False).exists():
        assert time.monotonic() < deadline, "the worker did not embed the published model"
        time.sleep(0.2)

    model.refresh_from_db()
    assert model.visibility == Visibility.PUBLIC and model.tagline == MANIFEST["tagline"]
    found = catalog.search.search(Principal(None), query)
    assert [m.slug for m in found.models] == ["face-finder"]
