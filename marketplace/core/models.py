from django.db import models


class WorkerHeartbeat(models.Model):
    """Each running Celery worker refreshes its row every few seconds, so /readyz can tell
    whether anything is consuming the queues (the embedded broker has no remote control)."""

    hostname = models.CharField(max_length=255, unique=True)
    queues = models.JSONField(default=list)
    started_at = models.DateTimeField()
    last_seen = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return self.hostname
