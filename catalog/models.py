"""The catalogue: models, their builds and their published versions.

A Build is one package (identified by the hash of its unpacked content) turned into a
runnable environment; the same package uploaded twice is the same build. A Version is a
published build with a semantic version number; versions and the builds behind them are
immutable once published (enforced by the database, see migration 0002).
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVectorField
from django.core.validators import RegexValidator
from django.db import models
from django.urls import reverse
from django.utils import timezone

from catalog.packages.manifest import SLUG_RE as MODEL_SLUG_PATTERN
from marketplace.accounts.models import Team, User


class Visibility(models.TextChoices):
    PUBLIC = "public", "Public"
    PRIVATE = "private", "Private"


class Model(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="models")
    slug = models.CharField(max_length=64, validators=[RegexValidator(MODEL_SLUG_PATTERN)])
    title = models.CharField(max_length=100)
    tagline = models.CharField(max_length=200, blank=True)
    readme = models.TextField(blank=True)
    tags = ArrayField(models.CharField(max_length=40), default=list, blank=True)
    task = models.CharField(max_length=64, blank=True)
    framework = models.CharField(max_length=64, blank=True)
    license = models.CharField(max_length=64, blank=True)
    runtime = models.CharField(max_length=16, blank=True)
    # A model is public once a public version exists; until then only its owners see it.
    visibility = models.CharField(
        max_length=8, choices=Visibility.choices, default=Visibility.PRIVATE
    )
    network = models.BooleanField(default=False)
    hardware_class = models.CharField(max_length=32, default="cpu")
    stars = models.PositiveIntegerField(default=0)
    # Processes of the newest published version the runner keeps warm at all times, so
    # callers never meet a cold start (Algorithmia's reservations).
    warm_processes = models.PositiveSmallIntegerField(default=0)
    # Visitors without an account may try the model from its page (and the API), a few
    # calls a day per address, billed to no one; only while the model is public.
    anonymous_tries = models.BooleanField(default=False)
    # Maintained by a database trigger (migration 0004) from the fields above, so every
    # write path keeps search current: weighted full text, and the name and title for
    # typo-tolerant trigram matching.
    search_vector = SearchVectorField(null=True, editable=False)
    search_text = models.TextField(blank=True, editable=False)
    # Calls over the last 30 days, refreshed by a periodic task (popularity sort).
    calls_30d = models.PositiveIntegerField(default=0, editable=False)
    # The Elasticsearch document may be behind the row: set on every write, cleared when the
    # document is written (catalog/search/tasks.py), healed by a periodic task.
    search_dirty = models.BooleanField(default=True, db_index=True, editable=False)
    created_by = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["owner__slug", "slug"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "slug"], name="model_unique_per_owner"),
        ]
        indexes = [
            GinIndex(fields=["search_vector"], name="model_search_vector"),
            GinIndex(fields=["search_text"], name="model_search_trgm", opclasses=["gin_trgm_ops"]),
            GinIndex(fields=["tags"], name="model_tags"),
            models.Index(fields=["visibility", "task"], name="model_visibility_task"),
            models.Index(fields=["-calls_30d"], name="model_popularity"),
            models.Index(fields=["-created_at"], name="model_newest"),
        ]

    def __str__(self) -> str:
        return self.full_name

    @property
    def full_name(self) -> str:
        return f"{self.owner.slug}/{self.slug}"

    @property
    def owner_slug(self) -> str:
        return self.owner.slug

    @property
    def url(self) -> str:
        return reverse("catalog:model", kwargs={"owner": self.owner.slug, "name": self.slug})


class SearchWord(models.Model):
    """A word of the catalogue (lower-cased, from any searchable field of a model) and how
    many models hold it, per scope: 0 for public models, else the owning team's id for its
    private ones. Typos are corrected against these words, and only those of scopes the
    visitor may see. Kept by a trigger (migration 0007), rebuilt by `search_reindex`."""

    PUBLIC = 0

    pk = models.CompositePrimaryKey("word", "scope")
    word = models.TextField()
    scope = models.IntegerField()
    model_count = models.IntegerField(default=0)

    class Meta:
        db_table = "catalog_search_word"

    def __str__(self) -> str:
        return f"{self.word} ({self.model_count} in scope {self.scope})"


class BuildStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    BUILDING = "building", "Building"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class Build(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    model = models.ForeignKey(Model, on_delete=models.CASCADE, related_name="builds")
    package_hash = models.CharField(max_length=64)
    status = models.CharField(
        max_length=16, choices=BuildStatus.choices, default=BuildStatus.QUEUED, db_index=True
    )
    manifest = models.JSONField(default=dict)
    runtime = models.CharField(max_length=16)
    environment_key = models.CharField(max_length=64, blank=True)
    log = models.TextField(blank=True)
    error = models.TextField(blank=True)
    sample_input = models.JSONField(null=True, blank=True)
    sample_output = models.JSONField(null=True, blank=True)
    sample_output_content_type = models.CharField(max_length=8, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_by = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["model", "package_hash"], name="build_unique_package"),
        ]

    def __str__(self) -> str:
        return f"{self.model} build {self.short_hash}"

    @property
    def short_hash(self) -> str:
        return self.package_hash[:12]

    @property
    def duration(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None

    @property
    def is_finished(self) -> bool:
        return self.status in (BuildStatus.SUCCEEDED, BuildStatus.FAILED)


class Version(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    model = models.ForeignKey(Model, on_delete=models.CASCADE, related_name="versions")
    build = models.ForeignKey(Build, on_delete=models.PROTECT, related_name="versions")
    major = models.PositiveIntegerField()
    minor = models.PositiveIntegerField()
    patch = models.PositiveIntegerField()
    release_notes = models.TextField(blank=True)
    visibility = models.CharField(max_length=8, choices=Visibility.choices)
    royalty_per_call = models.DecimalField(max_digits=14, decimal_places=6, default=Decimal(0))
    published_by = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+")
    published_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-major", "-minor", "-patch"]
        constraints = [
            models.UniqueConstraint(
                fields=["model", "major", "minor", "patch"], name="version_unique_number"
            ),
        ]
        indexes = [models.Index(fields=["model", "visibility", "-major", "-minor", "-patch"])]

    def __str__(self) -> str:
        return f"{self.model} {self.number}"

    @property
    def number(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"

    @property
    def semver(self) -> tuple[int, int, int]:
        return (self.major, self.minor, self.patch)


class WebhookEvent(models.TextChoices):
    BUILD_SUCCEEDED = "build.succeeded", "build.succeeded"
    BUILD_FAILED = "build.failed", "build.failed"
    VERSION_PUBLISHED = "version.published", "version.published"


class Webhook(models.Model):
    """A namespace's subscription to catalogue events, for CI/CD pipelines."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="webhooks")
    url = models.URLField(max_length=500)
    events = ArrayField(models.CharField(max_length=32, choices=WebhookEvent.choices))
    secret = models.CharField(max_length=64)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.owner} → {self.url}"


class WebhookDelivery(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=32)
    payload = models.JSONField()
    attempts = models.PositiveSmallIntegerField(default=0)
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_status = models.IntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.event} → {self.webhook.url}"


class RealField(models.FloatField):
    """A single-precision float: half the room of `double precision` for embeddings, whose
    own precision is no better."""

    def db_type(self, connection) -> str:
        return "real"


class ModelEmbedding(models.Model):
    """One sentence embedding of a model's text (name, title, tagline, tags, task, README:
    the latest published version's, as copied onto the Model row), for semantic search.

    A `real[]` column on every database; where the pgvector extension is installed, an HNSW
    index on its cast to `vector` answers nearest-neighbour queries (migration 0008 and
    catalog/search/embeddings.py). Kept in its own table so the text-search scans of
    catalog_model do not read 1.5 kB of vector per row."""

    model = models.OneToOneField(
        Model, primary_key=True, on_delete=models.CASCADE, related_name="embedding"
    )
    # Which sentence-embedding model made the vector; a new one means re-embedding.
    encoder = models.CharField(max_length=64)
    vector = ArrayField(RealField())
    # blake2b of encoder and text: an unchanged text is not encoded again.
    text_hash = models.CharField(max_length=32)
    # Set in the same transaction as a write that changed the text (the outbox); cleared by
    # the task that encodes it again. A stale vector is still searched until then.
    stale = models.BooleanField(default=False)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["model"], condition=models.Q(stale=True), name="embedding_stale")
        ]

    def __str__(self) -> str:
        return f"{self.encoder} embedding of {self.model_id}"
