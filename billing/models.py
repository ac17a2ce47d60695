"""Usage records, prices, rollups and budgets (docs/billing.md).

Money is Decimal credits with six places everywhere it is stored; reports sum records (or
rollups that provably equal them) and round only for display."""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils import timezone

MONEY = {"max_digits": 20, "decimal_places": 6}
SECONDS = {"max_digits": 16, "decimal_places": 3}


class UsageStatus(models.TextChoices):
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Model error"
    TIMEOUT = "timeout", "Timed out"
    CANCELED = "canceled", "Canceled"
    REJECTED = "rejected", "Rejected by a limit"


ERROR_STATUSES = (UsageStatus.FAILED, UsageStatus.TIMEOUT)


class ComputePrice(models.Model):
    """The per-second price of a hardware class from `effective_from` until the next price
    of the same class. Rows are never changed: a new price is a new row dated now or later."""

    hardware_class = models.CharField(max_length=32)
    price_per_second = models.DecimalField(max_digits=20, decimal_places=9)
    effective_from = models.DateTimeField()
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    note = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["hardware_class", "-effective_from"]
        constraints = [
            models.UniqueConstraint(
                fields=["hardware_class", "effective_from"], name="price_unique_start"
            ),
            models.CheckConstraint(
                condition=models.Q(price_per_second__gte=0), name="price_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.hardware_class}: {self.price_per_second}/s from {self.effective_from}"


class UsageRecord(models.Model):
    """Exactly one per call, keyed by its request id, whatever its outcome."""

    request_id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    team = models.ForeignKey(
        "accounts.Team", on_delete=models.PROTECT, related_name="usage_records"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="usage_records",
    )
    api_key = models.ForeignKey(
        "accounts.ApiKey",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="usage_records",
    )
    key_prefix = models.CharField(max_length=16, blank=True)
    project = models.CharField(max_length=64, blank=True)
    model = models.ForeignKey("catalog.Model", on_delete=models.PROTECT, related_name="+")
    model_owner = models.ForeignKey("accounts.Team", on_delete=models.PROTECT, related_name="+")
    model_name = models.CharField(max_length=140)
    version = models.ForeignKey(
        "catalog.Version", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    version_label = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=UsageStatus.choices)
    error_type = models.CharField(max_length=64, blank=True)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField()
    duration_seconds = models.DecimalField(**SECONDS)
    billed_seconds = models.DecimalField(**SECONDS)
    bytes_in = models.BigIntegerField(default=0)
    bytes_out = models.BigIntegerField(default=0)
    hardware_class = models.CharField(max_length=32)
    price_per_second = models.DecimalField(max_digits=20, decimal_places=9)
    billed = models.BooleanField()
    compute_cost = models.DecimalField(**MONEY)
    royalty = models.DecimalField(**MONEY)
    total = models.DecimalField(**MONEY)
    day = models.DateField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-started_at"]
        indexes = [
            # With created_at: reports find a rolled-up day's late records in the index.
            models.Index(fields=["team", "day", "created_at"], name="usage_team_day_created"),
            models.Index(fields=["model_owner", "day"]),
            models.Index(fields=["model", "day"]),
            models.Index(fields=["day"]),
        ]

    def __str__(self) -> str:
        return f"{self.request_id} {self.model_name} {self.status} {self.total}"


class UsageRollup(models.Model):
    """The sums of one day's records of a team, per model version, key, user, project and
    status. Written by a periodic task for closed days, replaced whole per (team, day)."""

    team = models.ForeignKey("accounts.Team", on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    model = models.ForeignKey("catalog.Model", on_delete=models.CASCADE, related_name="+")
    model_owner = models.ForeignKey("accounts.Team", on_delete=models.CASCADE, related_name="+")
    model_name = models.CharField(max_length=140)
    version_label = models.CharField(max_length=64)
    api_key = models.ForeignKey(
        "accounts.ApiKey", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    key_prefix = models.CharField(max_length=16, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    project = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=16, choices=UsageStatus.choices)
    calls = models.BigIntegerField()
    billed_calls = models.BigIntegerField()
    duration_seconds = models.DecimalField(max_digits=20, decimal_places=3)
    billed_seconds = models.DecimalField(max_digits=20, decimal_places=3)
    compute_cost = models.DecimalField(**MONEY)
    royalty = models.DecimalField(**MONEY)
    total = models.DecimalField(**MONEY)

    class Meta:
        indexes = [
            models.Index(fields=["team", "day"]),
            models.Index(fields=["model_owner", "day"]),
        ]

    def __str__(self) -> str:
        return f"{self.team_id} {self.day} {self.model_name} {self.status}: {self.calls} calls"


class RolledUpDay(models.Model):
    """A (team, day) whose rollup rows are complete. Reports read rollups only for such
    days, records for the rest."""

    team = models.ForeignKey("accounts.Team", on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    records = models.BigIntegerField()
    rolled_up_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["team", "day"], name="rolled_up_once")]

    def __str__(self) -> str:
        return f"{self.team_id} {self.day} rolled up at {self.rolled_up_at}"


class Budget(models.Model):
    """A team's monthly budget, or a project's when `project` is set."""

    team = models.ForeignKey("accounts.Team", on_delete=models.CASCADE, related_name="budgets")
    project = models.CharField(max_length=64, blank=True)
    monthly_amount = models.DecimalField(**MONEY)
    thresholds = ArrayField(models.PositiveSmallIntegerField(), default=list)
    hard_cap = models.BooleanField(default=False)
    webhook_url = models.URLField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["team", "project"], name="one_budget_per_project"),
            models.CheckConstraint(
                condition=models.Q(monthly_amount__gt=0), name="budget_positive"
            ),
        ]

    def __str__(self) -> str:
        scope = f" project {self.project}" if self.project else ""
        return f"{self.team}{scope}: {self.monthly_amount}/month"

    @property
    def scope(self) -> str:
        return f"project {self.project}" if self.project else "the whole team"


class BudgetAlert(models.Model):
    """A threshold reached in a month: the unique constraint makes each notify once."""

    budget = models.ForeignKey(Budget, on_delete=models.CASCADE, related_name="alerts")
    month = models.DateField()
    threshold = models.PositiveSmallIntegerField()
    spent = models.DecimalField(**MONEY)
    created_at = models.DateTimeField(default=timezone.now)
    notified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["budget", "month", "threshold"], name="alert_once_per_month"
            )
        ]

    def __str__(self) -> str:
        return f"budget {self.budget_id} {self.month:%Y-%m} {self.threshold}%"


class MonthlySpend(models.Model):
    """Month-to-date totals of a team (project "") and of each of its projects, added to in
    the transaction that writes each usage record, so budgets are checked with one lookup."""

    team = models.ForeignKey("accounts.Team", on_delete=models.CASCADE, related_name="+")
    project = models.CharField(max_length=64, blank=True)
    month = models.DateField()
    total = models.DecimalField(**MONEY, default=Decimal(0))
    calls = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["team", "project", "month"], name="spend_per_month")
        ]

    def __str__(self) -> str:
        return f"{self.team_id} {self.project or '(team)'} {self.month:%Y-%m}: {self.total}"


ZERO = Decimal("0")
