from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from tests.factories import UserFactory, make_key

ECHO_MODEL = {
    "model.toml": """
name = "echo"
title = "Echo"
tagline = "Returns what it gets"
runtime = "python"
entrypoint = "predict.py:apply"
load = "predict.py:load"
license = "mit"
tags = ["demo", "utility"]
task = "utility"
framework = "none"
[io]
sample_input = {text = "I love it"}
[pricing]
royalty_per_call = "0.0010"
""",
    "predict.py": """
def load():
    return {"loaded": True}


def apply(data, state):
    print("handling", data)
    return {"echo": data, "state": state}
""",
    "README.md": "# Echo\n\nReturns its input.\n",
}


@pytest.fixture(autouse=True)
def isolated_storage(settings, tmp_path):
    """Packages, environments and staging of each test live in its own directory."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.VAR_DIR = tmp_path / "var"
    settings.VAR_DIR.mkdir()
    return tmp_path


def write_package(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.strip() + "\n")
    return root


def zip_bytes(files: dict[str, str | bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content.strip() + "\n" if isinstance(content, str) else content)
    return buffer.getvalue()


@pytest.fixture
def publisher(db):
    user = UserFactory(username="ada")
    _key, secret = make_key(user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Simple {secret}")
    client.user = user
    return client


def upload(client, owner: str, files: dict, **fields):
    content = zip_bytes(files)
    package = io.BytesIO(content)
    package.name = "model.zip"
    return client.post(f"/v1/models/{owner}", {"package": package, **fields}, format="multipart")
