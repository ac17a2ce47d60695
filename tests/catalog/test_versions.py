"""The version resolver, exhaustively: every form of docs/api.md against a model with public,
private and unpublished builds, for members and for everyone else."""

from __future__ import annotations

import itertools

import pytest

from catalog.models import Build, BuildStatus, Version
from catalog.versions import VersionSpec, next_version, parse_version_spec, resolve_version
from marketplace.core.errors import InputError, NotFoundError
from tests.catalog.factories import BuildFactory, ModelFactory, VersionFactory

pytestmark = pytest.mark.django_db

PUBLIC = ["0.1.0", "0.2.0", "0.2.1", "1.0.0", "1.1.0", "1.1.2", "1.10.0"]
PRIVATE = ["2.0.0", "2.1.0"]


@pytest.fixture
def model():
    model = ModelFactory(visibility="public")
    for number in PUBLIC:
        VersionFactory(model=model, number=number, visibility="public")
    for number in PRIVATE:
        VersionFactory(model=model, number=number, visibility="private")
    model.unpublished = BuildFactory(model=model, status=BuildStatus.SUCCEEDED)
    BuildFactory(model=model, status=BuildStatus.FAILED)
    return model


def _number(target) -> str:
    return target.version.number if target.version else target.build.package_hash


EXPECTED = {
    # spec: (for everyone, for members)
    None: ("1.10.0", "2.1.0"),
    "": ("1.10.0", "2.1.0"),
    "latest": ("1.10.0", "2.1.0"),
    "1.1.2": ("1.1.2", "1.1.2"),
    "1.1": ("1.1.2", "1.1.2"),
    "1.1.*": ("1.1.2", "1.1.2"),
    "1": ("1.10.0", "1.10.0"),
    "1.*": ("1.10.0", "1.10.0"),
    "0": ("0.2.1", "0.2.1"),
    "0.2": ("0.2.1", "0.2.1"),
    "0.1.0": ("0.1.0", "0.1.0"),
    "2": (None, "2.1.0"),
    "2.0.0": (None, "2.0.0"),
    "2.*": (None, "2.1.0"),
    "1.2": (None, None),
    "3": (None, None),
    "1.1.1": (None, None),
}


@pytest.mark.parametrize(("spec", "expected"), EXPECTED.items(), ids=str)
def test_semantic_forms(model, spec, expected):
    for is_member, want in zip((False, True), expected, strict=True):
        if want is None:
            with pytest.raises(NotFoundError):
                resolve_version(model, spec, is_member=is_member)
        else:
            assert _number(resolve_version(model, spec, is_member=is_member)) == want


def test_latest_private_is_the_newest_build_and_owners_only(model):
    target = resolve_version(model, "latestPrivate", is_member=True)
    assert target.build == model.unpublished and target.version is None
    with pytest.raises(NotFoundError, match="only available to the model's owners"):
        resolve_version(model, "latestPrivate", is_member=False)


def test_build_hash_is_owners_only_and_prefixes_work(model):
    build = Version.objects.get(model=model, major=1, minor=1, patch=0).build
    for length in (12, 20, 64):
        target = resolve_version(model, build.package_hash[:length], is_member=True)
        assert target.build == build and target.version.number == "1.1.0"
    with pytest.raises(NotFoundError):
        resolve_version(model, build.package_hash, is_member=False)
    with pytest.raises(NotFoundError):
        resolve_version(model, "f" * 40, is_member=True)


def test_failed_builds_are_never_targets(model):
    failed = Build.objects.get(model=model, status=BuildStatus.FAILED)
    with pytest.raises(NotFoundError):
        resolve_version(model, failed.package_hash, is_member=True)


def test_a_model_with_nothing_published(db):
    model = ModelFactory()
    with pytest.raises(NotFoundError, match="no published version"):
        resolve_version(model, None, is_member=True)


@pytest.mark.parametrize(
    "bad",
    [
        "v1",
        "1.2.3.4",
        "1.x",
        "latest-private",
        "../1",
        "1..2",
        "-1",
        "1.2.3-beta",
        "LATEST",
        "1.*.*",
        "*",
    ],
)
def test_malformed_versions_are_input_errors(bad):
    with pytest.raises(InputError):
        parse_version_spec(bad)


def test_a_build_hash_prefix_of_digits_only_is_a_hash_not_a_major_version():
    """A random package hash starts with 12 decimal digits about once in 300 builds: it must
    still name that build (a flaky security test showed it parsed as major 461690075039)."""
    assert parse_version_spec("461690075039") == VersionSpec("hash", build_hash="461690075039")
    assert parse_version_spec("20261207").kind == "partial"  # a long but real major


def test_next_version():
    assert next_version(None, "major") == (1, 0, 0)
    assert next_version(None, "minor") == (0, 1, 0)
    assert next_version(None, "patch") == (0, 0, 1)
    assert next_version((1, 2, 3), "patch") == (1, 2, 4)
    assert next_version((1, 2, 3), "minor") == (1, 3, 0)
    assert next_version((1, 2, 3), "major") == (2, 0, 0)
    with pytest.raises(InputError):
        next_version((1, 2, 3), "huge")


def test_every_partial_spec_agrees_with_a_brute_force_search(model):
    numbers = [tuple(map(int, n.split("."))) for n in PUBLIC + PRIVATE]
    for major, minor in itertools.product(range(4), [None, 0, 1, 2, 10]):
        spec = f"{major}.*" if minor is None else f"{major}.{minor}"
        for is_member in (False, True):
            allowed = PUBLIC + (PRIVATE if is_member else [])
            pool = [
                n
                for n in numbers
                if ".".join(map(str, n)) in allowed
                and n[0] == major
                and (minor is None or n[1] == minor)
            ]
            if not pool:
                with pytest.raises(NotFoundError):
                    resolve_version(model, spec, is_member=is_member)
            else:
                want = ".".join(map(str, max(pool)))
                assert _number(resolve_version(model, spec, is_member=is_member)) == want
