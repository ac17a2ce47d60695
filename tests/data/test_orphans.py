"""The orphan sweep, on the local disk and on an S3-compatible store (moto's standalone
server on loopback): blobs no index entry names, older than the grace period, go; indexed
blobs and young orphans (an upload in flight) stay."""

from __future__ import annotations

import io
import os
import time

from django.core.management import call_command

from data.models import DataEntry
from data.storage import configured_storage
from data.tasks import sweep_data_orphans
from tests.data.test_api import make_collection, put, read

DAY = 24 * 3600


def age(path, seconds):
    past = time.time() - seconds
    os.utime(path, (past, past))


def test_local_sweep(ada_api, data_root, settings, capsys):
    settings.DATA_ORPHAN_GRACE_SECONDS = DAY
    make_collection(ada_api, "c")
    assert put(ada_api, ".my/c/kept.txt", b"kept").status_code == 200
    kept_key = DataEntry.objects.get(name="kept.txt").storage_key
    storage = configured_storage()
    storage.save("9/9/old-orphan", io.BytesIO(b"crashed mid-upload"))
    storage.save("9/9/young-orphan", io.BytesIO(b"an upload in flight"))
    stale_part = data_root / "9" / "9" / ".old-orphan.abcd.part"
    stale_part.write_bytes(b"half")
    for path in (data_root / kept_key, data_root / "9/9/old-orphan", stale_part):
        age(path, 2 * DAY)

    call_command("sweep_data_orphans", "--dry-run")
    assert "would remove 1 orphaned blob(s)" in capsys.readouterr().out
    assert (data_root / "9/9/old-orphan").exists()

    assert sweep_data_orphans() == 1
    assert not (data_root / "9/9/old-orphan").exists()
    assert not stale_part.exists()
    assert (data_root / "9/9/young-orphan").exists()
    assert (data_root / kept_key).exists()
    assert read(ada_api.get("/v1/data/.my/c/kept.txt")) == b"kept"


def test_s3_sweep(s3_settings, bucket, ada_api):
    make_collection(ada_api, "c")
    assert put(ada_api, ".my/c/kept.txt", b"kept").status_code == 200
    kept_key = DataEntry.objects.get(name="kept.txt").storage_key
    storage = configured_storage()
    storage.save("9/9/orphan", io.BytesIO(b"crashed mid-upload"))
    bucket.Object("data/9/9/unfinished").initiate_multipart_upload()
    outside = bucket.put_object(Key="not-ours/file", Body=b"outside the prefix")

    # A young orphan stays under the default grace period...
    call_command("sweep_data_orphans")
    assert bucket.Object("data/9/9/orphan").content_length
    # ...and goes once it is older than the grace period (here: a cutoff in the future).
    call_command("sweep_data_orphans", "--grace-seconds", "-60")
    keys = sorted(item.key for item in bucket.objects.all())
    assert keys == sorted([f"data/{kept_key}", outside.key])
    assert list(bucket.multipart_uploads.all()) == []
    assert read(ada_api.get("/v1/data/.my/c/kept.txt")) == b"kept"
