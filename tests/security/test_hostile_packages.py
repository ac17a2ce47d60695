"""Hostile model packages through the real upload paths: POST /v1/models/{owner} (multipart,
.zip and .tar.gz) and the upload page /new/ (an archive, or a folder picked in the browser).

The unpacking rules themselves are unit-tested in tests/catalog/test_packages.py; here each
attack goes through HTTP, and after each the platform must have answered a clear 4xx (or
shown the error on the page), created no build, written nothing outside its storage folder
and left nothing behind in it."""

from __future__ import annotations

import io
import os
import stat
import tarfile
import warnings
import zipfile
from pathlib import Path

import pytest
from django.test import Client
from rest_framework.test import APIClient

from catalog.models import Build
from tests.conftest import assert_error_shape
from tests.factories import UserFactory, make_key

MANIFEST = """
name = "victim"
title = "Victim"
tagline = "A model whose package is hostile"
runtime = "python"
entrypoint = "predict.py:apply"
license = "mit"
"""
PREDICT = "def apply(data):\n    return data\n"
GOOD = {"model.toml": MANIFEST, "predict.py": PREDICT}
MiB = 1024 * 1024


# -- archives ------------------------------------------------------------------------------


def zip_bytes(members: list[tuple]) -> bytes:
    """members: (name, data) files, or (name, data, mode) with a full st_mode (symlinks,
    devices, FIFOs), written in order (duplicates included)."""
    buffer = io.BytesIO()
    with (
        warnings.catch_warnings(),  # "Duplicate name": that is the point of some tests
        zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive,
    ):
        warnings.simplefilter("ignore", UserWarning)
        for name, data, *mode in members:
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (mode[0] if mode else stat.S_IFREG | 0o644) << 16
            archive.writestr(info, data)
    return buffer.getvalue()


def good_zip_members(**replace) -> list[tuple]:
    files = {**GOOD, **replace}
    return [(name, text) for name, text in files.items() if text is not None]


def tar_bytes(members: list[tarfile.TarInfo | tuple], *, compression="gz") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(
        fileobj=buffer, mode=f"w:{compression}", format=tarfile.GNU_FORMAT, errors="surrogateescape"
    ) as archive:
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                archive.addfile(member)
            else:
                name, data = member
                data = data.encode() if isinstance(data, str) else data
                info = tarfile.TarInfo(name)
                info.size = len(data)
                info.mode = 0o644
                archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def tar_entry(name: str, kind: bytes, *, linkname: str = "", size: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    info.size = size
    info.mode = 0o644
    return info


def good_tar_members() -> list[tuple]:
    return list(GOOD.items())


def patch_zip_sizes(data: bytes, name: bytes, size: int) -> bytes:
    """Make the zip's headers lie: `name` declares `size` uncompressed bytes."""
    out = bytearray(data)
    for signature, offset, name_at in ((b"PK\x03\x04", 22, 30), (b"PK\x01\x02", 24, 46)):
        start = 0
        while (start := out.find(signature, start)) != -1:
            if out[start + name_at : start + name_at + len(name)] == name:
                out[start + offset : start + offset + 4] = size.to_bytes(4, "little")
            start += 4
    return bytes(out)


# -- the platform --------------------------------------------------------------------------


@pytest.fixture
def area(settings, tmp_path):
    """The platform's storage under tmp_path/platform; a fake settings file and the place
    traversals aim at beside it, under tmp_path/outside."""
    settings.MEDIA_ROOT = tmp_path / "platform" / "media"
    settings.VAR_DIR = tmp_path / "platform" / "var"
    settings.VAR_DIR.mkdir(parents=True)
    settings.PACKAGE_MAX_EXPANDED_BYTES = 1 * MiB
    settings.PACKAGE_MAX_FILES = 50
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "settings.py").write_text("SECRET_KEY = 'platform-secret'\n")
    return tmp_path


def tree(root: Path) -> dict[str, tuple]:
    found = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            st = path.lstat()
            kind = "link" if path.is_symlink() else "dir" if path.is_dir() else "file"
            meta = (kind,) if kind == "dir" else (kind, st.st_size, st.st_mtime_ns)
            found[str(path.relative_to(root))] = meta
    return found


class Watch:
    """What must not change: everything under tmp_path but the media folder, /tmp's top
    level, and the platform's own checkout."""

    def __init__(self, area: Path, settings):
        self.area = area
        self.media = Path(settings.MEDIA_ROOT)
        self.base = Path(settings.BASE_DIR)

    def snapshot(self):
        outside = {k: v for k, v in tree(self.area).items() if not k.startswith("platform/media")}
        return outside, sorted(os.listdir("/tmp")), sorted(os.listdir(self.base))

    def __enter__(self):
        self.before = self.snapshot()
        self.builds = Build.objects.count()
        return self

    def __exit__(self, *exc):
        if exc[0] is not None:
            return
        outside, tmp, base = self.snapshot()
        assert outside == self.before[0], "something was written outside the storage"
        assert not [n for n in set(tmp) - set(self.before[1]) if "pwned" in n or "evil" in n]
        assert set(base) == set(self.before[2])
        # Nothing left in the storage either: no package, no staging folder.
        leftovers = [
            k for k, (kind, *_) in tree(self.media).items() if kind != "dir" or k.count("/") > 1
        ]
        assert not leftovers, leftovers
        assert Build.objects.count() == self.builds


@pytest.fixture
def watch(area, settings):
    return Watch(area, settings)


@pytest.fixture
def publisher(db):
    user = UserFactory(username="mallory")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Simple {make_key(user)[1]}")
    client.user = user
    return client


def api_upload(client, data: bytes, filename: str):
    package = io.BytesIO(data)
    package.name = filename
    return client.post("/v1/models/mallory", {"package": package}, format="multipart")


def refused(response, *phrases: str) -> str:
    error = assert_error_shape(response, 400, "InputError")
    message = error["message"]
    for phrase in phrases:
        assert phrase in message, message
    return message


def escape_path(area: Path, levels: int = 4) -> str:
    """A relative member name that, from the staging folder, lands in tmp_path/outside."""
    return "../" * levels + "outside/pwned.txt"


# -- traversal, absolute and backslash names -----------------------------------------------


@pytest.mark.parametrize("fmt", ["zip", "tar.gz"])
@pytest.mark.parametrize(
    "name, phrase",
    [
        ("../../../../outside/pwned.txt", '".." component'),
        ("mymodel/../../../../../outside/pwned.txt", '".." component'),
        ("ABSOLUTE", "absolute path"),
        ("..\\..\\..\\..\\outside\\pwned.txt", "backslash"),
        ("C:/outside/pwned.txt", "drive letter"),
        ("evil\x00.py", "NUL"),
        ("evil\n.py", "control character"),
    ],
)
def test_member_names_leaving_the_package_are_refused(publisher, watch, area, fmt, name, phrase):
    if name == "ABSOLUTE":
        name = str(area / "outside" / "pwned.txt")
    if fmt == "zip":
        # zipfile cuts a name at a NUL when writing: put it in the bytes afterwards.
        data = zip_bytes([*good_zip_members(), (name.replace("\x00", "\x01"), "owned")])
        data = data.replace(b"evil\x01", b"evil\x00")
    else:
        if "\x00" in name:
            pytest.skip("tar names cannot hold a NUL")
        data = tar_bytes([*good_tar_members(), (name, "owned")])
    with watch:
        refused(api_upload(publisher, data, f"evil.{fmt}"), phrase)
    assert not (area / "outside" / "pwned.txt").exists()


# -- links ---------------------------------------------------------------------------------


def link_targets(area: Path, settings) -> list[str]:
    platform_settings = Path(settings.BASE_DIR) / "marketplace" / "settings.py"
    staging = Path(settings.MEDIA_ROOT) / "staging" / ("0" * 32)
    return [
        "/etc/passwd",
        str(platform_settings),
        os.path.relpath(platform_settings, staging),
        os.path.relpath(area / "outside" / "settings.py", staging),
        "../" * 12 + "etc/passwd",
    ]


@pytest.mark.parametrize("fmt", ["zip", "tar.gz"])
def test_symlinks_out_of_the_package_are_refused(publisher, watch, area, settings, fmt):
    for target in link_targets(area, settings):
        if fmt == "zip":
            data = zip_bytes([*good_zip_members(), ("README.md", target, stat.S_IFLNK | 0o777)])
        else:
            link = tar_entry("README.md", tarfile.SYMTYPE, linkname=target)
            data = tar_bytes([*good_tar_members(), link])
        with watch:
            message = refused(api_upload(publisher, data, f"links.{fmt}"), "symlink")
        assert "outside the package" in message or "absolute path" in message, message


def test_a_symlink_to_a_parent_then_a_file_written_through_it_is_refused(publisher, watch, area):
    data = zip_bytes(
        [
            *good_zip_members(),
            ("up", "../../../../outside", stat.S_IFLNK | 0o777),
            ("up/pwned.txt", "owned"),
        ]
    )
    with watch:
        refused(api_upload(publisher, data, "through.zip"))
    assert not (area / "outside" / "pwned.txt").exists()
    # The same trick in a tar, where the link points at a folder inside the package first.
    data = tar_bytes(
        [
            *good_tar_members(),
            tar_entry("lib", tarfile.SYMTYPE, linkname=str(area / "outside")),
            ("lib/pwned.txt", "owned"),
        ]
    )
    with watch:
        refused(api_upload(publisher, data, "through.tar.gz"))


def test_a_chain_of_links_that_climbs_out_is_refused(publisher, watch):
    data = zip_bytes(
        [
            *good_zip_members(),
            ("a/b", "..", stat.S_IFLNK | 0o777),
            ("c", "a/b/../../../etc/passwd", stat.S_IFLNK | 0o777),
        ]
    )
    with watch:
        refused(api_upload(publisher, data, "chain.zip"), "outside the package")


@pytest.mark.parametrize(
    "linkname", ["/etc/passwd", "../../../../outside/settings.py", "predict.py/../../x"]
)
def test_tar_hard_links_out_of_the_package_are_refused(publisher, watch, linkname):
    data = tar_bytes(
        [*good_tar_members(), tar_entry("stolen.txt", tarfile.LNKTYPE, linkname=linkname)]
    )
    with watch:
        refused(api_upload(publisher, data, "hard.tar.gz"), "hard link")


def test_a_hard_link_to_the_platform_settings_is_refused(publisher, watch, settings):
    target = str(Path(settings.BASE_DIR) / "marketplace" / "settings.py")
    data = tar_bytes(
        [*good_tar_members(), tar_entry("settings.py", tarfile.LNKTYPE, linkname=target)]
    )
    with watch:
        refused(api_upload(publisher, data, "hard.tar.gz"), "hard link", "outside the package")


# -- special files and duplicates ----------------------------------------------------------


@pytest.mark.parametrize(
    "kind, phrase",
    [
        (tarfile.CHRTYPE, "device file"),
        (tarfile.BLKTYPE, "device file"),
        (tarfile.FIFOTYPE, "FIFO"),
    ],
)
def test_devices_and_fifos_in_a_tar_are_refused(publisher, watch, kind, phrase):
    data = tar_bytes([*good_tar_members(), tar_entry("dev/sda", kind)])
    with watch:
        refused(api_upload(publisher, data, "special.tar.gz"), phrase)


def test_devices_and_fifos_in_a_zip_are_refused(publisher, watch):
    for mode, phrase in ((stat.S_IFCHR | 0o600, "device"), (stat.S_IFIFO | 0o600, "FIFO")):
        data = zip_bytes([*good_zip_members(), ("null", "", mode)])
        with watch:
            refused(api_upload(publisher, data, "special.zip"), phrase)


@pytest.mark.parametrize("fmt", ["zip", "tar.gz"])
def test_duplicate_names_are_refused(publisher, watch, fmt):
    members = [*good_zip_members(), ("predict.py", "import os; os.system('id')\n")]
    data = zip_bytes(members) if fmt == "zip" else tar_bytes(members)
    with watch:
        refused(api_upload(publisher, data, f"twice.{fmt}"), "appears more than once")


def test_a_file_and_a_folder_of_the_same_name_are_refused(publisher, watch):
    data = zip_bytes([*good_zip_members(), ("data", "a file"), ("data/inner.txt", "x")])
    with watch:
        refused(api_upload(publisher, data, "clash.zip"))


# -- bombs ---------------------------------------------------------------------------------


def test_a_zip_bomb_is_stopped_and_leaves_no_disk_behind(publisher, watch):
    data = zip_bytes([*good_zip_members(), ("weights.bin", b"\0" * (20 * MiB))])
    assert len(data) < 100_000  # a ratio of more than 200:1
    with watch:
        refused(api_upload(publisher, data, "bomb.zip"), "expands to more than 1 MiB")


def test_a_zip_bomb_whose_headers_lie_is_stopped_while_writing(publisher, watch):
    data = zip_bytes([*good_zip_members(), ("weights.bin", b"\0" * (8 * MiB))])
    data = patch_zip_sizes(data, b"weights.bin", 1000)
    with watch:
        response = api_upload(publisher, data, "liar.zip")
        message = refused(response)
    assert "expands to more than" in message or "corrupt" in message, message


def test_huge_declared_sizes_are_refused_before_writing(publisher, watch):
    data = zip_bytes([*good_zip_members(), ("weights.bin", b"tiny")])
    data = patch_zip_sizes(data, b"weights.bin", 2**32 - 1)
    with watch:
        refused(api_upload(publisher, data, "declared.zip"), "expands to more than")
    # A header that declares 50 GiB, followed by no data at all.
    huge = tar_entry("weights.bin", tarfile.REGTYPE, size=50 * 1024**3)
    for compression in ("", "gz"):
        data = tar_bytes([*good_tar_members(), huge], compression=compression)
        with watch:
            refused(api_upload(publisher, data, f"declared.tar.{compression}".rstrip(".")))


def test_a_zip_with_too_many_files_is_refused(publisher, watch):
    data = zip_bytes([*good_zip_members(), *((f"f/{n}.txt", "") for n in range(200))])
    with watch:
        refused(api_upload(publisher, data, "many.zip"), "more than 50 entries")


def test_a_tar_bomb_is_stopped(publisher, watch):
    data = tar_bytes([*good_tar_members(), ("weights.bin", b"\0" * (20 * MiB))])
    assert len(data) < 100_000
    with watch:
        refused(api_upload(publisher, data, "bomb.tar.gz"), "expands to more than 1 MiB")
    many = tar_bytes([*good_tar_members(), *((f"f/{n}", "") for n in range(200))])
    with watch:
        refused(api_upload(publisher, many, "many.tar.gz"), "more than 50 entries")


def test_nested_archives_are_stored_as_they_are_not_expanded(publisher, area, settings):
    inner = zip_bytes([("zeros.bin", b"\0" * (30 * MiB))])
    nested = zip_bytes([("layer2.zip", zip_bytes([("bomb.zip", inner)]))])
    data = zip_bytes([*good_zip_members(), ("weights.zip", nested)])
    response = api_upload(publisher, data, "nested.zip")
    assert response.status_code == 202, response.content
    stored = [path for path in Path(settings.MEDIA_ROOT, "packages").rglob("*") if path.is_file()]
    assert sum(path.stat().st_size for path in stored) < 1 * MiB
    weights = next(path for path in stored if path.name == "weights.zip")
    assert weights.read_bytes() == nested


def test_a_deeply_nested_path_is_refused(publisher, watch):
    deep = "/".join(["d"] * 40) + "/x.txt"
    with watch:
        refused(api_upload(publisher, zip_bytes([*good_zip_members(), (deep, "x")]), "deep.zip"))


def test_an_upload_over_the_size_limit_is_refused(publisher, watch, settings):
    settings.PACKAGE_MAX_UPLOAD_BYTES = 50_000
    data = zip_bytes([*good_zip_members(), ("noise.bin", os.urandom(60_000))])
    with watch:
        response = api_upload(publisher, data, "big.zip")
    assert response.status_code == 413, response.content


# -- the manifest --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "line, field",
    [
        ('entrypoint = "../../../../outside/settings.py:apply"', "entrypoint"),
        ('entrypoint = "/etc/passwd.py:apply"', "entrypoint"),
        ('requirements = "../../../../outside/settings.py"', "requirements"),
        ('requirements = "/etc/passwd"', "requirements"),
        ('load = "../x.py:load"', "load"),
        ('[io]\ninput_schema = "../../../../outside/settings.py"', "io.input_schema"),
        ('[io]\ninput_schema = "/etc/passwd"', "io.input_schema"),
    ],
)
def test_a_manifest_pointing_outside_the_package_is_refused(publisher, watch, line, field):
    manifest = MANIFEST
    if line.startswith("entrypoint"):
        manifest = manifest.replace('entrypoint = "predict.py:apply"', line)
    else:
        manifest = manifest + line + "\n"
    data = zip_bytes(good_zip_members(**{"model.toml": manifest}))
    with watch:
        response = api_upload(publisher, data, "manifest.zip")
        error = assert_error_shape(response, 400, "InputError")
    assert field in error["message"], error
    assert "fields" in error and field in error["fields"], error


def test_a_readme_that_is_a_link_out_of_the_package_is_refused(publisher, watch):
    data = zip_bytes([*good_zip_members(), ("README.md", "/etc/passwd", stat.S_IFLNK | 0o777)])
    with watch:
        refused(api_upload(publisher, data, "readme.zip"), "symlink")


def test_an_enormous_manifest_is_refused(publisher, watch, settings):
    settings.PACKAGE_MAX_EXPANDED_BYTES = 20 * MiB
    manifest = MANIFEST + 'tagline2 = "' + "x" * (3 * MiB) + '"\n'
    with watch:
        refused(
            api_upload(publisher, zip_bytes(good_zip_members(**{"model.toml": manifest})), "m.zip"),
            "larger than 1 MiB",
        )


@pytest.mark.parametrize(
    "manifest_extra",
    [
        "nested = " + "[" * 50_000 + "]" * 50_000 + "\n",
        "nested = " + "{a = " * 5_000 + "1" + "}" * 5_000 + "\n",
    ],
)
def test_a_manifest_nested_without_end_is_refused(publisher, watch, manifest_extra):
    manifest = MANIFEST + manifest_extra
    with watch:
        refused(
            api_upload(publisher, zip_bytes(good_zip_members(**{"model.toml": manifest})), "m.zip"),
            "model.toml",
        )


def test_an_input_schema_nested_without_end_is_refused(publisher, watch):
    manifest = MANIFEST + '[io]\ninput_schema = "schema.json"\n'
    for schema in ("[" * 100_000 + "]" * 100_000, '{"items": ' * 900 + "{}" + "}" * 900):
        data = zip_bytes(good_zip_members(**{"model.toml": manifest, "schema.json": schema}))
        with watch:
            refused(api_upload(publisher, data, "schema.zip"), "io.input_schema")


def test_an_input_schema_referring_to_itself_without_end_is_refused(publisher, watch):
    manifest = MANIFEST + '[io]\ninput_schema = "schema.json"\n'
    data = zip_bytes(good_zip_members(**{"model.toml": manifest, "schema.json": '{"$ref": "#"}'}))
    with watch:
        refused(api_upload(publisher, data, "loop.zip"), "io.input_schema", "without end")


def test_non_utf8_member_names_are_answered_not_crashed_on(publisher, area, settings):
    name = b"data/caf\xe9.bin".decode("utf-8", "surrogateescape")
    data = tar_bytes([*good_tar_members(), (name, "bytes")])
    response = api_upload(publisher, data, "latin1.tar.gz")
    assert response.status_code in (202, 400), response.content
    if response.status_code == 400:
        assert_error_shape(response, 400, "InputError")
    packages = Path(settings.MEDIA_ROOT, "packages")
    for path in packages.rglob("*") if packages.exists() else []:
        assert Path(settings.MEDIA_ROOT) in path.resolve().parents


def test_a_zip_whose_utf8_names_are_not_utf8_is_refused(publisher, watch):
    raw = zip_bytes([*good_zip_members(), ("caf\u00e9.bin", "bytes")])
    assert "caf\u00e9".encode() in raw
    raw = raw.replace("caf\u00e9".encode(), b"caf\xe9\xff")
    with watch:
        refused(api_upload(publisher, raw, "bad-utf8.zip"))


def test_a_model_toml_that_is_not_utf8_or_not_a_file_is_refused(publisher, watch):
    data = zip_bytes(good_zip_members(**{"model.toml": b'name = "\xff\xfe"\n'}))
    with watch:
        refused(api_upload(publisher, data, "enc.zip"), "not UTF-8")
    data = zip_bytes([("model.toml/", ""), ("predict.py", PREDICT)])
    with watch:
        refused(api_upload(publisher, data, "dir.zip"), "model.toml")


def test_a_corrupt_archive_with_an_archive_name_is_refused(publisher, watch):
    with watch:
        refused(api_upload(publisher, b"PK\x03\x04" + os.urandom(2000), "junk.zip"))
        refused(api_upload(publisher, b"\x1f\x8b\x08" + os.urandom(2000), "junk.tar.gz"))


# -- the upload page -----------------------------------------------------------------------


@pytest.fixture
def browser(publisher):
    client = Client()
    client.force_login(publisher.user)
    return client


def page_refused(response, *phrases: str) -> str:
    assert response.status_code in (200, 400), response.status_code
    page = response.content.decode()
    assert "alert" in page
    for phrase in phrases:
        assert phrase.replace('"', "&quot;") in page, page[:3000]
    return page


@pytest.mark.parametrize(
    "members, phrase",
    [
        ([("../../../../outside/pwned.txt", "x")], "..&quot; component"),
        ([("README.md", "/etc/passwd", stat.S_IFLNK | 0o777)], "symlink"),
        ([("weights.bin", b"\0" * (20 * MiB))], "expands to more than 1 MiB"),
        ([("null", "", stat.S_IFCHR | 0o600)], "device"),
    ],
)
def test_the_upload_page_refuses_hostile_archives(browser, watch, members, phrase):
    package = io.BytesIO(zip_bytes([*good_zip_members(), *members]))
    package.name = "evil.zip"
    with watch:
        response = browser.post("/new/", {"owner": "mallory", "package": package})
        page_refused(response, phrase.replace("&quot;", '"'))


def test_the_upload_page_refuses_a_tar_bomb_and_device_files(browser, watch):
    for members, phrase in (
        ([("weights.bin", b"\0" * (20 * MiB))], "expands to more than"),
        ([tar_entry("fifo", tarfile.FIFOTYPE)], "FIFO"),
    ):
        package = io.BytesIO(tar_bytes([*good_tar_members(), *members]))
        package.name = "evil.tar.gz"
        with watch:
            page_refused(browser.post("/new/", {"owner": "mallory", "package": package}), phrase)


def folder_upload(browser, files: list[tuple[str, bytes | str]]):
    uploads = []
    for n, (_path, content) in enumerate(files):
        upload = io.BytesIO(content.encode() if isinstance(content, str) else content)
        upload.name = f"file{n}"
        uploads.append(upload)
    return browser.post(
        "/new/",
        {"owner": "mallory", "files": uploads, "paths": [path for path, _ in files]},
    )


@pytest.mark.parametrize(
    "path",
    [
        "../../../../outside/pwned.txt",
        "victim/../../../../../outside/pwned.txt",
        "/tmp/pwned-by-folder-upload.txt",
        "..\\..\\..\\..\\outside\\pwned.txt",
        "",
        ".",
    ],
)
def test_the_folder_upload_refuses_paths_leaving_the_folder(browser, watch, area, path):
    with watch:
        response = folder_upload(browser, [*GOOD.items(), (path, "owned")])
        page_refused(response, "Refusing the file path")
    assert not (area / "outside" / "pwned.txt").exists()
    assert not Path("/tmp/pwned-by-folder-upload.txt").exists()


@pytest.mark.parametrize(
    "files",
    [
        [("data", "a file"), ("data/inner.txt", "x")],
        [("data/inner.txt", "x"), ("data", "a file")],
        [("evil\x00.py", "x")],
        [("x" * 300 + ".py", "x")],
    ],
)
def test_the_folder_upload_answers_clashing_or_impossible_paths(browser, watch, files):
    with watch:
        response = folder_upload(browser, [*GOOD.items(), *files])
        page_refused(response)


# -- requirements: installed on the host, outside the sandbox ------------------------------


@pytest.mark.parametrize(
    "line",
    [
        "-r SECRET",
        "--requirement=SECRET",
        "-c SECRET",
        "-e .",
        "--index-url http://evil.example/simple",
        "--extra-index-url=http://evil.example/simple",
        "-f /opt/wheels",
        "--trusted-host evil.example",
        "platform @ file:///work/main",
        "secret @ file://SECRET",
        "internal @ git+ssh://git@internal.example/repo.git",
        "file:///etc/passwd",
        "/work/main",
        "./vendored",
        "../../../../outside",
        "~/.ssh",
        "git+https://github.com/x/y.git",
    ],
)
def test_requirements_that_reach_the_host_are_refused(publisher, watch, area, line):
    secret = area / "outside" / "settings.py"
    requirements = f"numpy>=1.26\n{line.replace('SECRET', str(secret))}\n"
    data = zip_bytes(good_zip_members(**{"requirements.txt": requirements}))
    with watch:
        response = api_upload(publisher, data, "reqs.zip")
        error = assert_error_shape(response, 400, "InputError")
    assert error["message"].startswith("requirements: requirements.txt: "), error
    assert "platform-secret" not in error["message"]


def test_plain_requirements_are_accepted(publisher, area):
    requirements = (
        "numpy>=1.26  # arrays\nscikit-learn[alldeps]==1.5.0 ; python_version >= '3.9'\n"
        "wheel-from-url @ https://files.example/wheel_from_url-1.0-py3-none-any.whl\n"
    )
    data = zip_bytes(good_zip_members(**{"requirements.txt": requirements}))
    response = api_upload(publisher, data, "reqs.zip")
    assert response.status_code == 202, response.content


def test_the_installer_does_not_see_the_platforms_secrets(monkeypatch, settings):
    """Installing a source distribution runs its build code on the host: the installer (and
    so that code) gets the index, cache, certificate and proxy settings, not the secrets."""
    from execution import environments

    monkeypatch.setenv("SECRET_KEY", "platform-secret-key")
    monkeypatch.setenv("DATABASE_URL", "postgres://platform:secret@db/marketplace")
    monkeypatch.setenv("PIP_INDEX_URL", "https://mirror.example/simple")
    lines: list[str] = []
    environments._run(["/usr/bin/env"], lines.append)
    seen = "\n".join(lines)
    assert "PIP_INDEX_URL=https://mirror.example/simple" in seen
    assert "UV_NO_PROGRESS=1" in seen and "PATH=" in seen
    assert "platform-secret-key" not in seen and "DATABASE_URL" not in seen


@pytest.mark.parametrize("fmt", ["zip", "tar.gz"])
def test_a_member_with_an_empty_name_is_refused(publisher, watch, fmt):
    if fmt == "zip":
        data = zip_bytes([*good_zip_members(), ("", "nameless")])
    else:
        data = tar_bytes([*good_tar_members(), ("", "nameless")])
    with watch:
        refused(api_upload(publisher, data, f"nameless.{fmt}"), "empty name")
