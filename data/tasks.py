from celery import shared_task

from .services import models_temp_files_purge
from .sweep import orphans_sweep


@shared_task(acks_late=True, time_limit=3600, soft_time_limit=3500)
def sweep_data_orphans() -> int:
    """Periodic (CELERY_BEAT_SCHEDULE): delete stored blobs no index entry names."""
    return len(orphans_sweep())


@shared_task(acks_late=True, time_limit=3600, soft_time_limit=3500)
def purge_models_temp_files() -> int:
    """Periodic (CELERY_BEAT_SCHEDULE): running models' temporary files (`data://.algo/temp/`)
    older than MODELS_TEMP_FILES_SECONDS."""
    return models_temp_files_purge()
