"""Elasticsearch configured but not answering: the real client against a closed port (and a
port that accepts connections but never replies). Search, suggestions and corrections are
answered by PostgreSQL and the fall back is logged; indexing leaves models dirty instead of
failing; saves still succeed, even with the broker down too; the reindex command says why it
cannot run."""

from __future__ import annotations

import io
import logging
import socket
import time

import pytest
from django.core.management import CommandError, call_command

import catalog.search
from catalog.models import Model
from catalog.search import CatalogQuery
from catalog.search.tasks import dirty_documents_sync, index_dirty_models, index_model
from marketplace.accounts.principals import Principal
from tests.catalog.factories import ModelFactory

pytestmark = pytest.mark.django_db

CLOSED = "http://127.0.0.1:1"
ANONYMOUS = Principal(None)


@pytest.fixture
def sentiment(db):
    return ModelFactory(
        slug="sentiment",
        title="Sentiment analysis",
        tagline="Positive or negative",
        visibility="public",
    )


@pytest.fixture
def elasticsearch_down(settings):
    settings.ELASTICSEARCH_URL = CLOSED
    return settings


@pytest.fixture
def elasticsearch_silent(settings):
    """A port that accepts connections and never answers: only the timeout ends a request."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        settings.ELASTICSEARCH_URL = f"http://127.0.0.1:{listener.getsockname()[1]}"
        settings.ELASTICSEARCH_TIMEOUT = 0.5
        yield settings


@pytest.fixture
def broker_down():
    """The current Celery app is one whose broker is a closed port: queueing fails."""
    from celery import Celery, current_app

    previous = current_app._get_current_object()
    app = Celery("broker-down", broker="redis://127.0.0.1:1/0", set_as_current=True)
    app.conf.broker_connection_timeout = 1
    yield app
    previous.set_current()
    app.close()


def _fallbacks(caplog) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "catalog.search.engines" and r.levelno == logging.WARNING
    ]


def test_search_suggest_and_corrections_fall_back_to_postgresql(
    sentiment, elasticsearch_down, caplog
):
    found = catalog.search.search(ANONYMOUS, CatalogQuery(text="sentiment"))
    assert found.engine == "postgresql"
    assert [m.slug for m in found.models] == ["sentiment"] and found.count == 1
    assert [m.slug for m in catalog.search.suggest(ANONYMOUS, "senti")] == ["sentiment"]
    assert catalog.search.corrections(ANONYMOUS, "sentimnt") == ["sentiment"]
    warnings = _fallbacks(caplog)
    assert len(warnings) == 3
    assert all("elasticsearch unavailable" in w and "PostgreSQL" in w for w in warnings)
    assert "search served by PostgreSQL" in warnings[0]


def test_a_silent_cluster_is_given_up_on_after_the_timeout_then_not_asked_for_a_while(
    sentiment, elasticsearch_silent, caplog
):
    started = time.monotonic()
    found = catalog.search.search(ANONYMOUS, CatalogQuery(text="sentiment"))
    assert found.engine == "postgresql" and found.count == 1
    assert 0.5 <= time.monotonic() - started < 5
    started = time.monotonic()
    assert catalog.search.search(ANONYMOUS, CatalogQuery(text="sentiment")).count == 1
    assert time.monotonic() - started < 0.5  # no second wait for the timeout
    assert len(_fallbacks(caplog)) == 2 and "not asked again yet" in _fallbacks(caplog)[1]


def test_health_says_search_falls_back(elasticsearch_down):
    health = catalog.search.engine_health()
    assert health.status == "degraded" and health.engine == "postgresql"
    assert "falls back to PostgreSQL" in health.message and "127.0.0.1:1" in health.message


def test_indexing_a_model_on_a_down_cluster_leaves_it_dirty(sentiment, elasticsearch_down):
    Model.objects.filter(pk=sentiment.pk).update(search_dirty=False)
    assert index_model(str(sentiment.pk)) is False  # the task's body, run here
    sentiment.refresh_from_db()
    assert sentiment.search_dirty is True


def test_healing_on_a_down_cluster_keeps_every_flag(sentiment, elasticsearch_down):
    others = [ModelFactory() for _ in range(3)]
    assert index_dirty_models() == 0
    ids = [sentiment.pk, *(m.pk for m in others)]
    assert Model.objects.filter(pk__in=ids, search_dirty=True).count() == 4
    assert dirty_documents_sync(batch_size=2) == 0


def test_nothing_is_indexed_or_touched_without_elasticsearch(sentiment, settings):
    settings.ELASTICSEARCH_URL = ""
    assert index_model(str(sentiment.pk)) is False
    assert index_dirty_models() == 0


def test_saving_a_model_succeeds_with_elasticsearch_and_the_broker_down(
    sentiment,
    elasticsearch_down,
    broker_down,
    django_capture_on_commit_callbacks,
    caplog,
):
    Model.objects.filter(pk=sentiment.pk).update(search_dirty=False)
    sentiment.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        sentiment.title = "Sentiment analysis, improved"
        sentiment.save()
    assert len(callbacks) == 2  # the document's indexing and the embedding
    sentiment.refresh_from_db()
    assert sentiment.title == "Sentiment analysis, improved" and sentiment.search_dirty
    assert any("could not queue search indexing" in r.getMessage() for r in caplog.records)
    assert any("could not queue the embedding" in r.getMessage() for r in caplog.records)

    with django_capture_on_commit_callbacks(execute=True):
        sentiment.delete()
    assert not Model.objects.filter(pk=sentiment.pk).exists()


def test_a_partial_save_marks_the_model_dirty_only_when_the_document_changes(
    sentiment, elasticsearch_down, django_capture_on_commit_callbacks
):
    Model.objects.filter(pk=sentiment.pk).update(search_dirty=False)
    with django_capture_on_commit_callbacks() as callbacks:
        sentiment.warm_processes = 1
        sentiment.save(update_fields=["warm_processes"])
    assert not callbacks and not Model.objects.get(pk=sentiment.pk).search_dirty
    with django_capture_on_commit_callbacks() as callbacks:
        sentiment.tagline = "Now with neutral"
        sentiment.save(update_fields=["tagline"])
    # The document's indexing and the embedding.
    assert len(callbacks) == 2 and Model.objects.get(pk=sentiment.pk).search_dirty


def test_popularity_refresh_marks_changed_models_dirty(sentiment):
    from catalog.services import popularity_refresh

    Model.objects.filter(pk=sentiment.pk).update(search_dirty=False, calls_30d=7)
    popularity_refresh()
    sentiment.refresh_from_db()
    assert sentiment.calls_30d == 0 and sentiment.search_dirty


def test_the_reindex_command_says_why_it_cannot_run(settings):
    settings.ELASTICSEARCH_URL = ""
    with pytest.raises(CommandError, match="ELASTICSEARCH_URL is not set"):
        call_command("search_reindex", step=["elasticsearch"], stdout=io.StringIO())
    settings.ELASTICSEARCH_URL = "http://user:secret@127.0.0.1:1"
    with pytest.raises(CommandError, match="does not answer") as error:
        call_command("search_reindex", stdout=io.StringIO())
    assert "127.0.0.1:1" in str(error.value) and "secret" not in str(error.value)


def _search_counts() -> dict[tuple[str, str], float]:
    from marketplace.core.metrics import SEARCH_DURATION

    return {
        (sample.labels["engine"], sample.labels["kind"]): sample.value
        for metric in SEARCH_DURATION.collect()
        for sample in metric.samples
        if sample.name.endswith("_count")
    }


def test_a_fall_back_is_timed_under_the_engine_that_answered(elasticsearch_down, sentiment):
    before = _search_counts()
    catalog.search.search(ANONYMOUS, CatalogQuery(text="sentiment"))
    catalog.search.suggest(ANONYMOUS, "senti")
    after = _search_counts()

    def added(engine, kind):
        return after.get((engine, kind), 0) - before.get((engine, kind), 0)

    assert added("postgresql", "search") == 1 and added("postgresql", "suggest") == 1
    assert added("elasticsearch", "search") == 0 and added("elasticsearch", "suggest") == 0
