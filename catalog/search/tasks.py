"""Keeping the Elasticsearch index and the models' embeddings current. Each task takes ids
and is safe to run twice.

`Model.search_dirty` is the outbox: a save sets it (catalog.search.signals) and queues
`index_model` after commit; indexing clears it before reading the row and sets it again when
the write fails, so a change is never lost to a down cluster or broker: `index_dirty_models`
(every minute, CELERY_BEAT_SCHEDULE) picks up whatever is still dirty.

Clearing the flag before reading, not after writing, is what makes a save that lands while
a document is being written safe: that save sets the flag again, and its own task (or the
next healing run) writes the newer row."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from catalog.models import Model

from . import embeddings
from .encoder import EncoderUnavailable
from .engines import EngineUnavailable
from .engines import elasticsearch as engine

logger = logging.getLogger(__name__)

DIRTY_BATCH_SIZE = 500
DIRTY_MAX_PER_RUN = 5000


@shared_task(acks_late=True, ignore_result=True)
def index_model(model_id: str) -> bool:
    return model_document_sync(model_id)


@shared_task(ignore_result=True)
def index_dirty_models() -> int:
    return dirty_documents_sync()


def model_document_sync(model_id) -> bool:
    """Write the model's document, or remove it when the model is gone. True when the index
    now matches the row; False (the model left dirty) when Elasticsearch failed. Never
    raises for an Elasticsearch failure."""
    if not settings.ELASTICSEARCH_URL:
        return False

    Model.objects.filter(pk=model_id, search_dirty=True).update(search_dirty=False)
    model = Model.objects.select_related("owner", "embedding").filter(pk=model_id).first()
    try:
        if model is None:
            failed = engine.delete_documents([model_id])
        else:
            failed = engine.index_models([model])
    except EngineUnavailable as exc:
        logger.warning("search document of model %s not written, left dirty: %s", model_id, exc)
        failed = [str(model_id)]
    if failed and model is not None:
        Model.objects.filter(pk=model_id).update(search_dirty=True)
    return not failed


def dirty_documents_sync(
    batch_size: int = DIRTY_BATCH_SIZE, max_models: int = DIRTY_MAX_PER_RUN
) -> int:
    """Write the documents of dirty models in bulk; clear the flag of those written. Stops
    at the first batch Elasticsearch does not answer. Returns how many were written."""
    if not settings.ELASTICSEARCH_URL:
        return 0

    written = 0
    failed_before: set[str] = set()
    while written + len(failed_before) < max_models:
        ids = list(
            Model.objects.filter(search_dirty=True)
            .exclude(pk__in=failed_before)
            .values_list("pk", flat=True)[:batch_size]
        )
        if not ids:
            break
        Model.objects.filter(pk__in=ids).update(search_dirty=False)
        models = list(Model.objects.select_related("owner", "embedding").filter(pk__in=ids))
        try:
            failed = set(engine.index_models(models))
        except EngineUnavailable as exc:
            Model.objects.filter(pk__in=ids).update(search_dirty=True)
            logger.warning("%d dirty models not indexed, left dirty: %s", len(ids), exc)
            break
        if failed:
            Model.objects.filter(pk__in=failed).update(search_dirty=True)
            failed_before |= failed
        written += len(models) - len(failed)
    return written


# -- embeddings (semantic search) ---------------------------------------------------------------


@shared_task(acks_late=True, ignore_result=True)
def embed_model(model_id: str) -> int:
    """Encode one model's text, if it changed since its vector was made; with Elasticsearch,
    write the model's document again so its `embedding` follows."""
    written = model_embedding_sync([model_id])
    if written and settings.ELASTICSEARCH_URL:
        Model.objects.filter(pk=model_id).update(search_dirty=True)
        model_document_sync(model_id)
    return written


@shared_task(ignore_result=True)
def embed_stale_models() -> int:
    """The healing pass: models whose vector is stale or missing (their task was lost, the
    encoder failed, or they were created in bulk)."""
    if not settings.SEARCH_SEMANTIC:
        return 0
    started = timezone.now()
    try:
        written = embeddings.embed_stale()
    except EncoderUnavailable as exc:
        logger.warning("stale embeddings not made: %s", exc)
        return 0
    if written and settings.ELASTICSEARCH_URL:
        # Their documents get the new vectors from index_dirty_models.
        Model.objects.filter(embedding__updated_at__gte=started).update(search_dirty=True)
    return written


def model_embedding_sync(model_ids) -> int:
    """Vectors for these models; a model the encoder cannot handle now stays stale for
    `embed_stale_models`. Never raises for an encoder failure."""
    if not settings.SEARCH_SEMANTIC:
        return 0
    try:
        return embeddings.embed_models(model_ids)
    except EncoderUnavailable as exc:
        logger.warning("embeddings of %s not made, left stale: %s", model_ids, exc)
        return 0
