"""Hosted data's metadata: collections (each with its read permission), the index of what is
in them (files and directories, for listing, markers and sizes) and each namespace's usage
against its quota. File contents live in the storage backend (data/storage/), under keys
the platform generates (`DataEntry.storage_key`), never under a caller's names."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from marketplace.accounts.models import Team, User


class ReadAcl(models.TextChoices):
    """Who may read a collection besides its owner's members, as Algorithmia had it."""

    PRIVATE = "private", "The owner only"
    MY_ALGORITHMS = "my_algos", "The owner and the owner's models when they run"
    PUBLIC = "public", "Anyone with an API key"


# Algorithmia's wire form of each (Algorithmia/acl.py: AclType).
ACL_STRINGS = {
    ReadAcl.PRIVATE: [],
    ReadAcl.MY_ALGORITHMS: ["algo://.my/*"],
    ReadAcl.PUBLIC: ["user://*"],
}


class Collection(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="data_collections")
    name = models.CharField(max_length=100)
    read_acl = models.CharField(
        max_length=16, choices=ReadAcl.choices, default=ReadAcl.MY_ALGORITHMS
    )
    created_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["team__slug", "name"]
        constraints = [
            models.UniqueConstraint(fields=["team", "name"], name="data_collection_unique"),
        ]

    def __str__(self) -> str:
        return f"data://{self.team.slug}/{self.name}"


class EntryKind(models.TextChoices):
    FILE = "file", "File"
    DIRECTORY = "dir", "Directory"


class DataEntry(models.Model):
    """A file or a directory in a collection. `parent` is the path of its directory inside
    the collection ("" at the top), so a listing is one index range and a marker is the last
    name a page showed."""

    collection = models.ForeignKey(Collection, on_delete=models.CASCADE, related_name="entries")
    parent = models.TextField(blank=True)
    name = models.TextField()
    kind = models.CharField(max_length=8, choices=EntryKind.choices)
    size = models.BigIntegerField(default=0)
    storage_key = models.CharField(max_length=200, blank=True)
    modified_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["collection", "parent", "name"], name="data_entry_unique"
            ),
        ]

    def __str__(self) -> str:
        return self.path

    @property
    def path(self) -> str:
        return f"{self.parent}/{self.name}" if self.parent else self.name

    @property
    def is_file(self) -> bool:
        return self.kind == EntryKind.FILE


class TeamDataUsage(models.Model):
    """The bytes a namespace keeps in hosted data. Every write of a namespace's data locks
    this row (services._locked_usage), so concurrent uploads and overwrites are counted one
    after the other and the quota holds."""

    team = models.OneToOneField(
        Team, on_delete=models.CASCADE, primary_key=True, related_name="data_usage"
    )
    bytes_used = models.BigIntegerField(default=0)
    # None: settings.DATA_TEAM_QUOTA_BYTES.
    quota_bytes = models.BigIntegerField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.team}: {self.bytes_used} bytes"


class Connector(models.Model):
    """A team's own S3-compatible bucket, reached as `s3://NAME/path` by the team's keys and
    members (data/connectors.py). The secret access key is kept only encrypted
    (data/secrets.py) and never shown again; `secret_hint` is its last characters, so a
    person can tell two keys apart."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="data_connectors")
    name = models.CharField(max_length=63)
    endpoint_url = models.CharField(max_length=300, blank=True)
    region = models.CharField(max_length=32, default="us-east-1")
    bucket = models.CharField(max_length=63)
    prefix = models.CharField(max_length=300, blank=True)
    access_key_id = models.CharField(max_length=128)
    secret_encrypted = models.TextField()
    secret_hint = models.CharField(max_length=8)
    created_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["team__slug", "name"]
        constraints = [
            models.UniqueConstraint(fields=["team", "name"], name="data_connector_unique"),
        ]

    def __str__(self) -> str:
        return f"s3://{self.name} ({self.team.slug})"
