"""The operations a connector does on a team's own S3-compatible bucket, through boto3.

A `ConnectorBucket` is built for one request from the connector's settings and its
decrypted secret (data/connector_selectors.py: `open_bucket`), after the endpoint passed the
platform's outbound policy (marketplace/core/outbound.py). Object keys are the connector's
prefix followed by names data/paths.py checked, so a caller's path never climbs out of the
prefix. Contents stream both ways (data/storage/s3.py); "directories" are key prefixes, and
creating one puts an empty `name/` object, as S3 consoles do."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import BinaryIO

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from marketplace.core.errors import ApiError, InputError, NotFoundError

from .storage import BlobMissing
from .storage.s3 import S3Storage

_session_lock = threading.Lock()
_session = None
DELETE_BATCH = 1000


class ConnectorUpstreamError(ApiError):
    """The bucket did not do what was asked; the message says why, never with a secret."""

    status_code = 502
    error_type = "ConnectorError"
    default_message = "The connected bucket did not answer"


def s3_client(*, endpoint_url: str | None, region: str, access_key_id: str, secret: str):
    global _session
    with _session_lock:
        # One session: its loaded service models are shared by the clients it makes.
        _session = _session or boto3.session.Session()
        return _session.client(
            "s3",
            endpoint_url=endpoint_url or None,
            region_name=region,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret,
            config=Config(
                s3={"addressing_style": "path" if endpoint_url else "auto"},
                retries={"max_attempts": 2, "mode": "standard"},
                connect_timeout=5,
                read_timeout=60,
            ),
        )


@contextlib.contextmanager
def bucket_errors(uri: str):
    """The bucket's refusals as clear messages (its error code, never its whole answer)."""
    try:
        yield
    except BlobMissing:
        raise NotFoundError(f"no such file {uri}") from None
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", "unknown"))[:60]
        if code == "NoSuchBucket":
            raise ConnectorUpstreamError(
                f"the connector's bucket does not exist at its endpoint ({code})"
            ) from None
        if code in ("InvalidArgument", "InvalidToken"):
            raise InputError("marker: not a marker this API gave") from None
        raise ConnectorUpstreamError(f"the connected bucket refused the request ({code})") from None
    except BotoCoreError as error:
        raise ConnectorUpstreamError(
            f"could not reach the connector's endpoint ({type(error).__name__})"
        ) from None


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


@dataclass(frozen=True)
class ObjectInfo:
    name: str
    size: int
    last_modified: datetime


@dataclass(frozen=True)
class Listing:
    folders: list[str]
    files: list[ObjectInfo]
    token: str | None


class ConnectorBucket:
    def __init__(self, client, bucket: str, prefix: str):
        self.client = client
        self.bucket = bucket
        self.prefix = prefix
        self.objects = S3Storage(bucket=bucket, prefix=prefix, client=client)

    def key(self, relative: str) -> str:
        return f"{self.prefix}{relative}"

    def head(self, relative: str) -> ObjectInfo | None:
        """The file at `relative`, or None (a directory marker `name/` is not a file)."""
        if not relative:
            return None
        try:
            found = self.client.head_object(Bucket=self.bucket, Key=self.key(relative))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return ObjectInfo(
            relative.rsplit("/", 1)[-1], found["ContentLength"], _utc(found["LastModified"])
        )

    def is_directory(self, relative: str) -> bool:
        if not relative:
            return True
        answer = self.client.list_objects_v2(
            Bucket=self.bucket, Prefix=self.key(relative) + "/", MaxKeys=1
        )
        return answer.get("KeyCount", 0) > 0

    def listing(self, relative: str, *, token: str | None, page_size: int) -> Listing:
        base = self.key(relative + "/" if relative else "")
        arguments = {
            "Bucket": self.bucket,
            "Prefix": base,
            "Delimiter": "/",
            "MaxKeys": page_size,
        }
        if token:
            arguments["ContinuationToken"] = token
        answer = self.client.list_objects_v2(**arguments)
        folders = [
            item["Prefix"][len(base) :].rstrip("/") for item in answer.get("CommonPrefixes", [])
        ]
        files = [
            ObjectInfo(item["Key"][len(base) :], item["Size"], _utc(item["LastModified"]))
            for item in answer.get("Contents", [])
            if item["Key"] != base and "/" not in item["Key"][len(base) :]
        ]
        return Listing(folders, files, answer.get("NextContinuationToken"))

    def open(self, relative: str, *, start: int, length: int | None) -> Iterator[bytes]:
        return self.objects.open(relative, start=start, length=length)

    def save(self, relative: str, source: BinaryIO) -> None:
        self.objects.save(relative, source)

    def make_directory(self, relative: str) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self.key(relative) + "/", Body=b"")

    def delete_file(self, relative: str) -> None:
        self.objects.delete(relative)

    def keys_below(self, relative: str) -> Iterator[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.key(relative) + "/"):
            for item in page.get("Contents", []):
                yield item["Key"]

    def delete_tree(self, relative: str) -> int:
        """Delete every object below `relative/`; returns how many files went (directory
        markers not counted)."""
        deleted = 0
        batch: list[str] = []
        for key in self.keys_below(relative):
            batch.append(key)
            deleted += not key.endswith("/")
            if len(batch) == DELETE_BATCH:
                self._delete_batch(batch)
                batch = []
        if batch:
            self._delete_batch(batch)
        return deleted

    def _delete_batch(self, keys: list[str]) -> None:
        self.client.delete_objects(
            Bucket=self.bucket, Delete={"Objects": [{"Key": key} for key in keys], "Quiet": True}
        )
