"""Blobs in an S3-compatible bucket (AWS, MinIO, Ceph, R2, ...) through boto3.

Uploads go through boto3's managed transfer, which reads the source a part at a time
(multipart above 8 MiB, two parts in flight at most) and aborts the multipart upload if the
source raises, so an upload over a limit leaves nothing behind. Reads are ranged GETs
streamed in chunks."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime
from typing import BinaryIO

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

from . import CHUNK_BYTES, BlobMissing

PART_BYTES = 8 * 1024 * 1024
_TRANSFER = TransferConfig(
    multipart_threshold=PART_BYTES,
    multipart_chunksize=PART_BYTES,
    max_concurrency=2,
    use_threads=True,
)


class S3Storage:
    name = "s3"

    def __init__(self, *, bucket: str, prefix: str = "", client=None):
        self.bucket = bucket
        self.prefix = prefix
        self.client = client

    @classmethod
    def from_settings(cls, settings) -> S3Storage:
        client = boto3.session.Session().client(
            "s3",
            endpoint_url=settings.DATA_S3_ENDPOINT_URL or None,
            region_name=settings.DATA_S3_REGION or None,
            aws_access_key_id=settings.DATA_S3_ACCESS_KEY_ID or None,
            aws_secret_access_key=settings.DATA_S3_SECRET_ACCESS_KEY or None,
            config=Config(
                s3={"addressing_style": settings.DATA_S3_ADDRESSING_STYLE},
                retries={"max_attempts": 3, "mode": "standard"},
                connect_timeout=5,
                read_timeout=60,
            ),
        )
        return cls(bucket=settings.DATA_S3_BUCKET, prefix=settings.DATA_S3_PREFIX, client=client)

    def _key(self, key: str) -> str:
        return f"{self.prefix}{key}"

    def save(self, key: str, source: BinaryIO) -> None:
        self.client.upload_fileobj(source, self.bucket, self._key(key), Config=_TRANSFER)

    def open(self, key: str, *, start: int = 0, length: int | None = None) -> Iterator[bytes]:
        arguments = {"Bucket": self.bucket, "Key": self._key(key)}
        if length == 0:
            return iter(())
        if start or length is not None:
            end = "" if length is None else str(start + length - 1)
            arguments["Range"] = f"bytes={start}-{end}"
        try:
            body = self.client.get_object(**arguments)["Body"]
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise BlobMissing(key) from None
            raise
        return _chunks(body)

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def keys_older_than(self, moment: datetime) -> Iterator[str]:
        uploads = self.client.get_paginator("list_multipart_uploads")
        for page in uploads.paginate(Bucket=self.bucket, Prefix=self.prefix):
            for upload in page.get("Uploads", []):
                if upload["Initiated"] < moment:
                    with contextlib.suppress(ClientError):
                        self.client.abort_multipart_upload(
                            Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                        )
        objects = self.client.get_paginator("list_objects_v2")
        for page in objects.paginate(Bucket=self.bucket, Prefix=self.prefix):
            for item in page.get("Contents", []):
                if item["LastModified"] < moment:
                    yield item["Key"][len(self.prefix) :]


def _chunks(body) -> Iterator[bytes]:
    try:
        yield from body.iter_chunks(CHUNK_BYTES)
    finally:
        with contextlib.suppress(Exception):
            body.close()
