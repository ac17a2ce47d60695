from __future__ import annotations

import os
import subprocess
import sys
import time

import boto3
import pytest
import requests
from rest_framework.test import APIClient

from tests.factories import MembershipFactory, TeamFactory, UserFactory, make_key
from tests.live_platform import free_port

CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
BUCKET = "hosted-data"


@pytest.fixture(autouse=True)
def data_root(settings, tmp_path):
    """Every test keeps its files in its own directory, on the local backend."""
    root = tmp_path / "data-root"
    settings.DATA_STORAGE = "local"
    settings.DATA_LOCAL_ROOT = root
    return root


@pytest.fixture
def ada(db):
    return UserFactory(username="ada")


@pytest.fixture
def bob(db):
    return UserFactory(username="bob")


@pytest.fixture
def lab(ada):
    """A team ada is a member of."""
    team = TeamFactory(slug="acme-lab")
    MembershipFactory(team=team, user=ada)
    return team


def api_for(user, **key_options) -> APIClient:
    _key, secret = make_key(user, **key_options)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Simple {secret}")
    return client


@pytest.fixture
def ada_api(ada):
    return api_for(ada)


@pytest.fixture
def bob_api(bob):
    return api_for(bob)


def files_under(root) -> list:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


@pytest.fixture(scope="session")
def s3_endpoint():
    """moto's standalone S3-compatible server (a PyPI package) in a child process on a
    loopback port, reached by boto3 over HTTP as a real store would be."""
    port = free_port()
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, "moto's server exited"
            try:
                requests.get(f"{url}/moto-api/", timeout=1)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, "moto's server did not start"
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def bucket(s3_endpoint):
    """An empty bucket for each test."""
    s3 = boto3.resource("s3", endpoint_url=s3_endpoint, region_name="us-east-1", **CREDENTIALS)
    bucket = s3.Bucket(BUCKET)
    if bucket.creation_date is None:
        bucket.create()
    bucket.objects.all().delete()
    for upload in bucket.multipart_uploads.all():
        upload.abort()
    return bucket


@pytest.fixture
def s3_settings(settings, s3_endpoint, bucket):
    settings.DATA_STORAGE = "s3"
    settings.DATA_S3_BUCKET = BUCKET
    settings.DATA_S3_PREFIX = "data/"
    settings.DATA_S3_ENDPOINT_URL = s3_endpoint
    settings.DATA_S3_REGION = "us-east-1"
    settings.DATA_S3_ACCESS_KEY_ID = "testing"
    settings.DATA_S3_SECRET_ACCESS_KEY = "testing"
    settings.DATA_S3_ADDRESSING_STYLE = "path"
    return settings
