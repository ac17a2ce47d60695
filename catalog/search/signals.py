"""Every write of a Model reaches the Elasticsearch index and the model's embedding,
whichever code path made it.

Only when ELASTICSEARCH_URL is set: the row is marked dirty in the same transaction as the
write (the outbox), and `index_model` is queued after commit. A broker that does not answer
only leaves the row dirty for the periodic `index_dirty_models`; the write itself never
fails because of search. Bulk writes (`QuerySet.update`, `bulk_create`) send no signals:
they set `search_dirty` themselves (new rows are dirty by default)."""

from __future__ import annotations

import logging
from functools import partial

from django.conf import settings
from django.db import transaction
from django.db.models.signals import post_delete, post_save, pre_save
from django.dispatch import receiver

from catalog.models import Model

from .documents import INDEXED_FIELDS
from .embeddings import EMBEDDED_FIELDS, mark_stale

# Imported here so that the worker, which loads the apps (and so this module), registers
# the tasks: Celery's autodiscovery only looks at catalog/tasks.py.
from .tasks import embed_model, index_model

logger = logging.getLogger(__name__)


def _changes_the_document(update_fields) -> bool:
    return update_fields is None or bool(INDEXED_FIELDS & set(update_fields))


def _queue_index(model_id: str) -> None:
    try:
        index_model.apply_async((model_id,), queue=settings.CELERY_TASK_DEFAULT_QUEUE, retry=False)
    except Exception:
        logger.warning(
            "could not queue search indexing of model %s; index_dirty_models will do it",
            model_id,
            exc_info=True,
        )


@receiver(pre_save, sender=Model, dispatch_uid="catalog.search.mark_dirty")
def mark_dirty(sender, instance, raw=False, update_fields=None, **kwargs):
    if settings.ELASTICSEARCH_URL and not raw and _changes_the_document(update_fields):
        instance.search_dirty = True


@receiver(post_save, sender=Model, dispatch_uid="catalog.search.index_after_save")
def index_after_save(sender, instance, raw=False, update_fields=None, **kwargs):
    if not settings.ELASTICSEARCH_URL or raw or not _changes_the_document(update_fields):
        return
    if update_fields is not None and "search_dirty" not in update_fields:
        # A partial save did not write the flag set in pre_save.
        Model.objects.filter(pk=instance.pk, search_dirty=False).update(search_dirty=True)
    transaction.on_commit(partial(_queue_index, str(instance.pk)))


@receiver(post_delete, sender=Model, dispatch_uid="catalog.search.unindex_after_delete")
def unindex_after_delete(sender, instance, **kwargs):
    if settings.ELASTICSEARCH_URL:
        transaction.on_commit(partial(_queue_index, str(instance.pk)))


# -- embeddings: whichever engine answers, semantic search reads them from PostgreSQL ----------


def _queue_embedding(model_id: str) -> None:
    try:
        embed_model.apply_async((model_id,), queue=settings.CELERY_TASK_DEFAULT_QUEUE, retry=False)
    except Exception:
        logger.warning(
            "could not queue the embedding of model %s; embed_stale_models will do it",
            model_id,
            exc_info=True,
        )


@receiver(post_save, sender=Model, dispatch_uid="catalog.search.embed_after_save")
def embed_after_save(sender, instance, created=False, raw=False, update_fields=None, **kwargs):
    """A save that may have changed the embedded text (publishing a version copies the
    version's text onto the row and saves it) marks the vector stale in its transaction and
    queues `embed_model` after commit; the task skips a text that did not change."""
    if not settings.SEARCH_SEMANTIC or raw:
        return
    if update_fields is not None and not EMBEDDED_FIELDS & set(update_fields):
        return
    if not created:
        mark_stale(instance.pk)
    transaction.on_commit(partial(_queue_embedding, str(instance.pk)))
