"""Invocations: one row per accepted call, whatever happens to it. The row is the call's
public resource (/v1/invocations/{request_id}) and what billing meters."""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone

from catalog.models import Build, Model, Version
from marketplace.accounts.models import ApiKey, Team, User


class InvocationStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    TIMEOUT = "timeout", "Timed out"
    CANCELED = "canceled", "Canceled"


FINAL_STATUSES = (
    InvocationStatus.SUCCEEDED,
    InvocationStatus.FAILED,
    InvocationStatus.TIMEOUT,
    InvocationStatus.CANCELED,
)


class Invocation(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    model = models.ForeignKey(Model, on_delete=models.PROTECT, related_name="invocations")
    version = models.ForeignKey(
        Version, null=True, blank=True, on_delete=models.PROTECT, related_name="invocations"
    )
    build = models.ForeignKey(Build, on_delete=models.PROTECT, related_name="invocations")
    version_label = models.CharField(max_length=64)
    caller_team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="invocations")
    caller_user = models.ForeignKey(
        User, null=True, on_delete=models.SET_NULL, related_name="invocations"
    )
    api_key = models.ForeignKey(
        ApiKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="invocations"
    )
    project = models.CharField(max_length=64, blank=True)
    status = models.CharField(
        max_length=16, choices=InvocationStatus.choices, default=InvocationStatus.QUEUED
    )
    is_async = models.BooleanField(default=False)
    backend = models.CharField(max_length=16)
    hardware_class = models.CharField(max_length=32, default="cpu")
    # The Celery worker (its node name, e.g. worker@gpu-3) that ran the call; blank when the
    # web process ran it on its own host (the local backend).
    worker = models.CharField(max_length=255, blank=True)
    timeout_seconds = models.FloatField()
    want_stdout = models.BooleanField(default=False)
    input_content_type = models.CharField(max_length=8)
    input_bytes = models.PositiveIntegerField(default=0)
    input_preview = models.CharField(max_length=128, blank=True)
    # Kept until the call has run (async and remote calls read it from here), then cleared.
    input_data = models.JSONField(null=True, blank=True)
    result = models.JSONField(null=True, blank=True)
    result_content_type = models.CharField(max_length=8, blank=True)
    output_bytes = models.PositiveIntegerField(default=0)
    error = models.JSONField(null=True, blank=True)
    stdout = models.TextField(blank=True)
    cold_start = models.BooleanField(default=False)
    model_duration = models.FloatField(null=True, blank=True)
    # A call a model made while it ran for its caller (gateway/call_credentials.py): the
    # call it was made from, and how deep in the chain it is (0: a call from outside).
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="nested_calls"
    )
    depth = models.PositiveSmallIntegerField(default=0)
    webhook_url = models.URLField(max_length=500, blank=True)
    webhook_delivered_at = models.DateTimeField(null=True, blank=True)
    # The caller asked to keep this call's input and output (a KeptCallBody holds them).
    keep_bodies = models.BooleanField(default=False, db_default=False)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["model", "-created_at"]),
            models.Index(fields=["caller_team", "-created_at"]),
            # A key's call history, newest first (monitoring's Calls page).
            models.Index(fields=["api_key", "-created_at"], name="invocation_key_created"),
            # A team's calls of one status other than the common "succeeded" (the Calls
            # page's filter): rare statuses are found without walking all its calls.
            models.Index(
                fields=["caller_team", "-created_at"],
                name="invocation_team_unsucceeded",
                condition=~models.Q(status="succeeded"),
            ),
            models.Index(fields=["status", "created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.pk} {self.model} {self.status}"

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def duration(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


class KeptCallBody(models.Model):
    """The input and output of a call whose caller asked to keep them (the key's
    `keep_call_bodies`, or the call's `keep_io` parameter), until the caller team's
    retention ends (`gateway.call_bodies.kept_call_bodies_purge`). Shown only to that team.
    Each body is its text (JSON serialised, text as is, binary as base64), cut at
    CALL_BODY_KEEP_MAX_BYTES; a binary body over it is not kept at all."""

    invocation = models.OneToOneField(
        Invocation, primary_key=True, on_delete=models.CASCADE, related_name="kept_body"
    )
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+")
    input_text = models.TextField(blank=True)
    input_kept = models.BooleanField(default=False)
    input_truncated = models.BooleanField(default=False)
    output_text = models.TextField(blank=True)
    output_content_type = models.CharField(max_length=8, blank=True)
    output_kept = models.BooleanField(default=False)
    output_truncated = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    def __str__(self) -> str:
        return f"kept bodies of {self.invocation_id}"


class RefusedCall(models.Model):
    """Calls the platform refused with a 4xx before running them, for an authenticated caller
    (wrong scope, budget, rate limit, invalid input, unknown model or version, body too
    large). One row per caller (key or user), reason and minute, counting the refusals: a
    flood of refused calls costs one row a minute per reason (`gateway.refusals`)."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+")
    api_key = models.ForeignKey(
        ApiKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    user = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # "key:<id>" or "user:<id>": who the row counts for (a key may be deleted later).
    subject = models.CharField(max_length=48)
    reason = models.CharField(max_length=32)  # the error_type of the refusal
    status_code = models.PositiveSmallIntegerField()
    message = models.CharField(max_length=500)
    # What the first refused call of the minute asked for, as it was asked ("owner/name").
    model_name = models.CharField(max_length=140, blank=True)
    version_label = models.CharField(max_length=64, blank=True)
    request_id = models.UUIDField()  # the first refused call's
    minute = models.DateTimeField()
    count = models.PositiveIntegerField(default=1)
    first_at = models.DateTimeField()
    last_at = models.DateTimeField()

    class Meta:
        ordering = ["-first_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["subject", "reason", "minute"], name="refused_call_per_minute"
            ),
        ]
        indexes = [
            models.Index(fields=["team", "-first_at"], name="refused_call_team_first"),
            models.Index(fields=["api_key", "-first_at"], name="refused_call_key_first"),
            models.Index(fields=["first_at"], name="refused_call_first"),
        ]

    def __str__(self) -> str:
        return f"{self.subject} {self.reason} x{self.count} at {self.minute}"
