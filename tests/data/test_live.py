"""Hosted data against a live server with real concurrent requests: the quota under racing
uploads and overwrites, uploads and downloads that stream, and the size limit seen by the
unchanged client."""

from __future__ import annotations

import threading
import tracemalloc

import Algorithmia
import pytest
import requests

from data import selectors
from data.models import TeamDataUsage
from tests.factories import make_key


@pytest.fixture
def secret(ada):
    return make_key(ada)[1]


@pytest.fixture
def ada_client(secret, live_server):
    client = Algorithmia.client(secret, live_server.url)
    client.dir("data://.my/c").create()
    return client


def _put_all(url: str, secret: str, bodies: list[tuple[str, bytes]]) -> list[int]:
    """PUT every (path, body) at once, each from its own thread."""
    statuses: list[int] = []
    barrier = threading.Barrier(len(bodies))

    def upload(path: str, body: bytes):
        barrier.wait()
        response = requests.put(
            f"{url}/v1/data/.my/c/{path}", data=body, headers={"Authorization": secret}, timeout=60
        )
        statuses.append(response.status_code)

    threads = [threading.Thread(target=upload, args=item) for item in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


def test_racing_uploads_never_pass_the_quota(ada_client, ada, secret, live_server, settings):
    settings.DATA_TEAM_QUOTA_BYTES = 100
    statuses = _put_all(live_server.url, secret, [(f"f{i}", b"x" * 30) for i in range(8)])
    assert sorted(statuses) == [200] * 3 + [413] * 5
    team = ada.personal_team
    assert TeamDataUsage.objects.get(team=team).bytes_used == 90 == selectors.bytes_indexed(team)


def test_racing_overwrites_of_one_file_count_it_once(
    ada_client, ada, secret, live_server, settings, data_root
):
    settings.DATA_TEAM_QUOTA_BYTES = 100
    statuses = []
    for _round in range(3):
        statuses += _put_all(
            live_server.url, secret, [("same", bytes([65 + i]) * 60) for i in range(6)]
        )
    assert statuses == [200] * len(statuses)
    team = ada.personal_team
    assert TeamDataUsage.objects.get(team=team).bytes_used == 60 == selectors.bytes_indexed(team)
    content = ada_client.file("data://.my/c/same").getBytes()
    assert len(content) == 60 and len(set(content)) == 1
    # Each replaced blob was removed after its commit: one file on disk.
    assert len([p for p in data_root.rglob("*") if p.is_file()]) == 1


def test_uploads_and_downloads_stream(ada_client, secret, live_server, tmp_path):
    size = 48 * 1024 * 1024
    source = tmp_path / "big.bin"
    with source.open("wb") as handle:
        for i in range(size // (1024 * 1024)):
            handle.write(bytes([i % 251]) * (1024 * 1024))
    # Client and server share this process, so the peak counts both: neither may hold the
    # file (48 MiB). The client's putFile sends from the open file; its downloads read the
    # whole answer (requests without stream=True), so the download is read here in chunks.
    tracemalloc.start()
    try:
        ada_client.file("data://.my/c/big.bin").putFile(str(source))
        _current, upload_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        target = tmp_path / "downloaded.bin"
        with (
            requests.get(
                f"{live_server.url}/v1/data/.my/c/big.bin",
                headers={"Authorization": secret},
                stream=True,
                timeout=60,
            ) as response,
            target.open("wb") as handle,
        ):
            assert response.headers["Content-Length"] == str(size)
            for chunk in response.iter_content(256 * 1024):
                handle.write(chunk)
        _current, download_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert upload_peak < 12 * 1024 * 1024, upload_peak
    assert download_peak < 12 * 1024 * 1024, download_peak
    with target.open("rb") as got, source.open("rb") as want:
        while chunk := want.read(1024 * 1024):
            assert got.read(1024 * 1024) == chunk


def test_the_size_limit_through_the_client(ada_client, secret, live_server, settings):
    settings.DATA_MAX_FILE_BYTES = 1000
    with pytest.raises(Exception, match="413"):
        ada_client.file("data://.my/c/big").put(b"x" * 1001)
    assert not ada_client.file("data://.my/c/big").exists()
    response = requests.put(
        f"{live_server.url}/v1/data/.my/c/big",
        data=b"x" * 5000,
        headers={"Authorization": secret},
        timeout=30,
    )
    assert response.status_code == 413
    assert response.json()["error"]["message"] == "a hosted file is at most 1,000 bytes"
