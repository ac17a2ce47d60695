"""Compute the sentence embedding of every model whose text changed or that has none, in
batches with a progress bar; then create the pgvector HNSW index where the server has the
extension. The embeddings step of a full rebuild: a catalogue imported in bulk
(`bulk_create`, `QuerySet.update`) sends no signal, so no task made its vectors."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from catalog.models import Model
from catalog.search.embeddings import ensure_vector_index, rebuild_embeddings
from catalog.search.encoder import EncoderUnavailable

from .search_reindex import Progress


class Command(BaseCommand):
    help = "Embed every model whose text changed or that has no embedding (semantic search)."

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=64, help="models per batch (64)")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args, batch_size: int, no_progress: bool, **options):
        if not settings.SEARCH_SEMANTIC:
            raise CommandError("SEARCH_SEMANTIC is off: search does not use embeddings.")
        progress = None
        if not no_progress:
            # search_reindex's bar, whose `embeddings` step this command is on its own.
            bar = Progress(self.stdout, "embeddings", Model.objects.count())

            def progress(done: int, total: int) -> None:
                bar.advance(done - bar.done)

        try:
            written = rebuild_embeddings(batch_size=batch_size, progress=progress)
        except EncoderUnavailable as exc:
            raise CommandError(f"The sentence encoder cannot load: {exc}") from exc
        state = ensure_vector_index()
        self.stdout.write(
            f"Embedded {written} models. Nearest-neighbour search: "
            + {
                "hnsw": "pgvector, HNSW index.",
                "unavailable": "exact (this PostgreSQL has no pgvector extension).",
                "not permitted": "exact (pgvector is available but this role may not create it).",
            }[state]
        )
