"""Compute the sentence embedding of every model whose text changed or that has none, in
batches with a progress bar; then create the pgvector HNSW index where the server has the
extension. The embeddings step of a full rebuild: a catalogue imported in bulk
(`bulk_create`, `QuerySet.update`) sends no signal, so no task made its vectors."""

from __future__ import annotations

import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from catalog.search.embeddings import ensure_vector_index, rebuild_embeddings
from catalog.search.encoder import EncoderUnavailable


def progress_bar(write, *, redraw: bool, width: int = 40):
    """progress(done, total): on a terminal one line redrawn, a bar with counts and models
    per second; elsewhere (logs) one line per tenth of the way."""
    started = time.monotonic()
    shown = [-1]

    def progress(done: int, total: int) -> None:
        tenth = 10 * done // total if total else 10
        if not redraw and tenth == shown[0]:
            return
        shown[0] = tenth
        filled = width * done // total if total else width
        rate = done / max(time.monotonic() - started, 1e-9)
        line = f"[{'#' * filled}{'.' * (width - filled)}] {done:,}/{total:,} models ({rate:,.0f}/s)"
        if redraw:
            write("\r" + line + ("\n" if done >= total else ""))
        else:
            write(line + "\n")

    return progress


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
            progress = progress_bar(
                lambda text: self.stdout.write(text, ending=""), redraw=self.stdout.isatty()
            )
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
