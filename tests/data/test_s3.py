"""The S3 storage for real: moto's standalone S3-compatible server (a PyPI package) in a
child process on a loopback port, reached by boto3 over HTTP exactly as a production store
would be. No client is mocked."""

from __future__ import annotations

import io

import Algorithmia
import pytest
import requests

from data.storage import BlobMissing
from data.storage.s3 import PART_BYTES, S3Storage
from marketplace.core.errors import RequestTooLargeError
from tests.factories import make_key

BUCKET = "hosted-data"


@pytest.fixture
def storage(s3_settings):
    from data.storage import configured_storage

    storage = configured_storage()
    assert isinstance(storage, S3Storage)
    return storage


def keys_in(bucket) -> list[str]:
    return sorted(item.key for item in bucket.objects.all())


class Exploding(io.RawIOBase):
    """A source that gives `size` bytes, then fails as an upload over its limit does."""

    def __init__(self, size: int):
        self.left = size

    def readable(self):
        return True

    def read(self, size=-1):
        if self.left <= 0:
            raise RequestTooLargeError("over the limit")
        size = self.left if size is None or size < 0 else min(size, self.left)
        self.left -= size
        return b"z" * size


def test_save_open_ranges_and_delete(storage, bucket):
    storage.save("1/2/abc", io.BytesIO(b"0123456789"))
    assert keys_in(bucket) == ["data/1/2/abc"]
    assert b"".join(storage.open("1/2/abc")) == b"0123456789"
    assert b"".join(storage.open("1/2/abc", start=3, length=4)) == b"3456"
    assert b"".join(storage.open("1/2/abc", start=7)) == b"789"
    assert b"".join(storage.open("1/2/abc", start=0, length=0)) == b""
    storage.delete("1/2/abc")
    storage.delete("1/2/abc")  # already gone: fine
    with pytest.raises(BlobMissing):
        storage.open("1/2/abc")


@pytest.mark.parametrize("size", [1000, PART_BYTES * 2 + 5])
def test_a_failed_upload_leaves_nothing(storage, bucket, size):
    """Small (one PUT) and multipart: the source's error comes through and no object, nor
    any unfinished multipart upload, is left in the bucket."""
    with pytest.raises(RequestTooLargeError):
        storage.save("1/2/partial", Exploding(size))
    assert keys_in(bucket) == []
    assert list(bucket.multipart_uploads.all()) == []


def test_a_multipart_upload_round_trip(storage, bucket):
    size = PART_BYTES * 2 + 12345
    storage.save("1/2/big", io.BytesIO(bytes(range(256)) * (size // 256) + b"!" * (size % 256)))
    assert bucket.Object("data/1/2/big").content_length == size
    chunks = list(storage.open("1/2/big"))
    assert sum(map(len, chunks)) == size and max(map(len, chunks)) <= 1024 * 1024
    assert b"".join(storage.open("1/2/big", start=size - 3)) == b"!!!"


def test_the_client_on_s3(s3_settings, bucket, ada, live_server, tmp_path):
    _key, secret = make_key(ada)
    client = Algorithmia.client(secret, live_server.url)
    client.dir("data://.my/on-s3").create()
    client.file("data://.my/on-s3/dir/hello.txt").put("hello from S3")
    client.file("data://.my/on-s3/n.json").putJson([1, 2])
    assert client.file("data://.my/on-s3/dir/hello.txt").getString() == "hello from S3"
    assert client.file("data://.my/on-s3/n.json").getJson() == [1, 2]
    assert [d.getName() for d in client.dir("data://.my/on-s3").dirs()] == ["dir"]
    assert len(keys_in(bucket)) == 2 and all(k.startswith("data/") for k in keys_in(bucket))
    ranged = requests.get(
        f"{live_server.url}/v1/data/.my/on-s3/dir/hello.txt",
        headers={"Authorization": secret, "Range": "bytes=6-9"},
        timeout=30,
    )
    assert ranged.status_code == 206 and ranged.content == b"from"

    s3_settings.DATA_MAX_FILE_BYTES = 100
    with pytest.raises(Exception, match="413"):
        client.file("data://.my/on-s3/big").put(b"x" * 101)
    assert len(keys_in(bucket)) == 2

    client.file("data://.my/on-s3/dir/hello.txt").put("replaced")
    assert client.file("data://.my/on-s3/dir/hello.txt").getString() == "replaced"
    assert len(keys_in(bucket)) == 2  # the replaced object was deleted after the commit
    assert client.dir("data://.my/on-s3").delete(force=True)
    assert keys_in(bucket) == []
