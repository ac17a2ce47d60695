"""Data URIs as callers write them (data/paths.py), checked before anything is looked up."""

from __future__ import annotations

import pytest

from data.paths import DataPath, parse_data_path
from marketplace.core.errors import InputError, NotFoundError


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("data://.my/c/a/b.txt", DataPath(".my", "c", ("a", "b.txt"))),
        (".my/c/", DataPath(".my", "c")),
        ("ACME-Lab/c", DataPath("acme-lab", "c")),
        ("ada", DataPath("ada")),
        ("ada/c/cafe\u0301", DataPath("ada", "c", ("caf\u00e9",))),
        ("ada/c/with space/ünïcödé 文字", DataPath("ada", "c", ("with space", "ünïcödé 文字"))),
    ],
)
def test_valid_paths(raw, expected):
    assert parse_data_path(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "ada/c/../x",
        "ada/c/./x",
        "ada/c//x",
        "ada/c/a\x00b",
        "ada/c/a\\b",
        "ada/c/a\nb",
        "ada/c/\u202etxt",
        "ada/c/\u200b",
        "ada/c/" + "a" * 256,
        "ada/.c",
        "ada/-c",
        "ada/" + "c" * 101,
        "/ada/c",
        "ada/c/" + "/".join(["d"] * 33),
    ],
)
def test_invalid_paths(raw):
    with pytest.raises(InputError):
        parse_data_path(raw)


@pytest.mark.parametrize("raw", ["", "/", ".session/x", "no_such_owner!/c", "a/c"])
def test_unknown_owners(raw):
    with pytest.raises(NotFoundError):
        parse_data_path(raw)


def test_a_running_models_own_collection_parses():
    # What it names is decided with the running model (data/selectors.py: models_own_path).
    assert parse_data_path(".algo/temp/a.txt") == DataPath(".algo", "temp", ("a.txt",))


def test_messages_never_carry_control_characters():
    with pytest.raises(InputError) as raised:
        parse_data_path("ada/c/evil\r\nSet-Cookie: x")
    assert "\n" not in raised.value.message and "\r" not in raised.value.message
