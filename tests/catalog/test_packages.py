"""Unpacking model packages: hostile archives are refused without writing anything outside the
destination (which is left empty), and good ones unpack to the same tree whatever the format.

Hostile archives are built here byte by byte with zipfile/tarfile, as an attacker would."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import re
import socket
import stat
import struct
import tarfile
import tempfile
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catalog.packages import PackageError, PackageLimits, package_hash, unpack_package
from catalog.packages.archive import reading as archive_module
from catalog.packages.archive.reading import _zip_entry_count

MODEL_TOML = b'name = "demo"\nruntime = "python"\nentrypoint = "predict.py:apply"\n'
PREDICT_PY = b"def apply(data):\n    return data\n"


# --- helpers ------------------------------------------------------------------------------------


def snapshot(root: Path) -> dict[str, tuple[int, int, str]]:
    """Everything under `root` (symlinks not followed): kind, size, link target."""
    found = {}
    for folder, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(folder, name)
            info = os.lstat(path)
            target = os.readlink(path) if stat.S_ISLNK(info.st_mode) else ""
            size = info.st_size if stat.S_ISREG(info.st_mode) else 0
            found[os.path.relpath(path, root)] = (stat.S_IFMT(info.st_mode), size, target)
    return found


def files_in(root: Path) -> dict[str, bytes | str]:
    """The unpacked tree: relative path -> content (files) or "-> target" (symlinks)."""
    tree: dict[str, bytes | str] = {}
    for folder, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(folder, name)
            relative = path.relative_to(root).as_posix()
            if path.is_symlink():
                tree[relative] = f"-> {os.readlink(path)}"
            elif path.is_file():
                tree[relative] = path.read_bytes()
    return tree


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


@pytest.fixture
def area(tmp_path: Path) -> Path:
    (tmp_path / "uploads").mkdir()
    (tmp_path / "out" / "dest").mkdir(parents=True)
    return tmp_path


@pytest.fixture
def dest(area: Path) -> Path:
    return area / "out" / "dest"


def refused(
    source: Path,
    dest: Path,
    match: str,
    *,
    limits: PackageLimits | None = None,
    filename: str | None = None,
) -> PackageError:
    """Unpacking must fail with a PackageError whose message matches, leaving `dest` empty and
    everything around it (the whole test area) exactly as it was."""
    area = dest.parent.parent
    before = snapshot(area)
    with pytest.raises(PackageError) as caught:
        unpack_package(source, dest, filename=filename, limits=limits or PackageLimits())
    error = caught.value
    assert error.field == "package"
    assert re.search(match, error.message), error.message
    assert str(error) == error.message
    assert list(dest.iterdir()) == []
    assert snapshot(area) == before
    return error


def zip_info(name: str, mode: int = stat.S_IFREG | 0o644) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
    info.create_system = 3  # Unix: the high 16 bits of external_attr are st_mode
    info.external_attr = mode << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


def write_zip(path: Path, members: list[tuple]) -> Path:
    """members: (name, data) or (name, data, st_mode); a name ending in "/" is a folder."""
    with zipfile.ZipFile(path, "w") as archive:
        for name, data, *rest in members:
            default = stat.S_IFDIR | 0o755 if name.endswith("/") else stat.S_IFREG | 0o644
            archive.writestr(zip_info(name, rest[0] if rest else default), data)
    return path


def zip_symlink(name: str, target: str) -> tuple:
    return (name, target.encode(), stat.S_IFLNK | 0o777)


def patch_zip_member(data: bytes, name: bytes, *, flag_bits=None, file_size=None) -> bytes:
    """Rewrite header fields of member `name`, in its central directory entry and local header,
    as a hostile tool would."""
    out = bytearray(data)
    position = out.find(b"PK\x01\x02")
    while position >= 0:
        name_length = struct.unpack_from("<H", out, position + 28)[0]
        if bytes(out[position + 46 : position + 46 + name_length]) == name:
            local = struct.unpack_from("<L", out, position + 42)[0]
            if flag_bits is not None:
                struct.pack_into("<H", out, position + 8, flag_bits)
                struct.pack_into("<H", out, local + 6, flag_bits)
            if file_size is not None:
                struct.pack_into("<L", out, position + 24, file_size)
                struct.pack_into("<L", out, local + 22, file_size)
        position = out.find(b"PK\x01\x02", position + 4)
    return bytes(out)


def tar_info(name: str, data: bytes = b"", *, kind=tarfile.REGTYPE, mode=0o644, linkname=""):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.mtime = 1_600_000_000
    info.linkname = linkname
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    return info, io.BytesIO(data) if kind == tarfile.REGTYPE else None


def write_tar(path: Path, members: list[tuple], compression: str = "gz") -> Path:
    """members: (name, data) or (name, data, {tar_info keyword arguments})."""
    mode = f"w:{compression}" if compression else "w"
    with tarfile.open(path, mode, format=tarfile.PAX_FORMAT) as archive:
        for name, data, *rest in members:
            options = rest[0] if rest else {}
            if name.endswith("/"):
                options = {"kind": tarfile.DIRTYPE, "mode": 0o755, **options}
            info, content = tar_info(name.rstrip("/") or name, data, **options)
            archive.addfile(info, content)
    return path


def good_package(folder: Path) -> Path:
    """A small package on disk with an executable, a subfolder, a binary file and a link."""
    (folder / "assets").mkdir(parents=True)
    (folder / "model.toml").write_bytes(MODEL_TOML)
    (folder / "predict.py").write_bytes(PREDICT_PY)
    (folder / "run.sh").write_bytes(b"#!/bin/sh\necho hi\n")
    (folder / "run.sh").chmod(0o755)
    (folder / "assets" / "weights.bin").write_bytes(bytes(range(256)) * 64)
    (folder / "assets" / "current").symlink_to("weights.bin")
    return folder


GOOD_MEMBERS = [
    ("model.toml", MODEL_TOML),
    ("predict.py", PREDICT_PY),
    ("run.sh", b"#!/bin/sh\necho hi\n", stat.S_IFREG | 0o755),
    ("assets/weights.bin", bytes(range(256)) * 64),
]


def good_zip(path: Path, wrapper: str = "mymodel/") -> Path:
    members = [(wrapper + name, data, *rest) for name, data, *rest in GOOD_MEMBERS]
    members.append(zip_symlink(wrapper + "assets/current", "weights.bin"))
    return write_zip(path, members)


def good_tar(path: Path, compression: str = "gz", wrapper: str = "mymodel/") -> Path:
    members = [(wrapper, b"")] if wrapper else []
    for name, data, *rest in GOOD_MEMBERS:
        members.append((wrapper + name, data, {"mode": rest[0] & 0o7777} if rest else {}))
    members.append(
        (wrapper + "assets/current", b"", {"kind": tarfile.SYMTYPE, "linkname": "weights.bin"})
    )
    return write_tar(path, members, compression)


EXPECTED_TREE = {
    "model.toml": MODEL_TOML,
    "predict.py": PREDICT_PY,
    "run.sh": b"#!/bin/sh\necho hi\n",
    "assets/weights.bin": bytes(range(256)) * 64,
    "assets/current": "-> weights.bin",
}


# --- good packages ------------------------------------------------------------------------------


def test_zip_with_a_wrapping_folder_is_unpacked_to_the_package_root(area, dest):
    unpack_package(good_zip(area / "uploads" / "model.zip"), dest)
    assert files_in(dest) == EXPECTED_TREE
    assert (dest / "assets" / "current").read_bytes() == EXPECTED_TREE["assets/weights.bin"]


def test_zip_without_a_wrapping_folder_is_unpacked_as_it_is(area, dest):
    unpack_package(good_zip(area / "uploads" / "model.zip", wrapper=""), dest)
    assert files_in(dest) == EXPECTED_TREE


def test_single_top_level_folder_is_kept_when_a_file_sits_next_to_it(area, dest):
    archive = write_zip(area / "uploads" / "m.zip", [("src/a.py", b"a"), ("README.md", b"r")])
    unpack_package(archive, dest)
    assert files_in(dest) == {"src/a.py": b"a", "README.md": b"r"}


def test_single_file_archive_is_not_stripped(area, dest):
    unpack_package(write_zip(area / "uploads" / "m.zip", [("model.onnx", b"onnx")]), dest)
    assert files_in(dest) == {"model.onnx": b"onnx"}


@pytest.mark.parametrize("compression", ["gz", "bz2", "xz", ""])
def test_tar_archives_unpack_to_the_same_tree(area, dest, compression):
    archive = good_tar(area / "uploads" / "model.tar", compression)
    unpack_package(archive, dest)
    assert files_in(dest) == EXPECTED_TREE


def test_folder_is_copied(area, dest):
    source = good_package(area / "uploads" / "mymodel")
    unpack_package(source, dest)
    assert files_in(dest) == EXPECTED_TREE
    assert snapshot(source) == snapshot(dest)


def test_folder_copy_skips_git_and_pycache_only(area, dest):
    source = good_package(area / "uploads" / "mymodel")
    for junk in (".git/objects/ab", "__pycache__", "assets/__pycache__"):
        (source / junk).mkdir(parents=True)
    (source / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (source / "__pycache__" / "predict.cpython-311.pyc").write_bytes(b"\0")
    (source / "assets" / "__pycache__" / "x.pyc").write_bytes(b"\0")
    (source / ".venv").mkdir()
    (source / ".venv" / "pyvenv.cfg").write_text("home = /usr\n")
    (source / "node_modules").mkdir()
    (source / "node_modules" / "x.js").write_text("1")
    unpack_package(source, dest)
    assert files_in(dest) == {
        **EXPECTED_TREE,
        ".venv/pyvenv.cfg": b"home = /usr\n",
        "node_modules/x.js": b"1",
    }


def test_archives_skip_git_pycache_and_macos_metadata(area, dest):
    archive = write_zip(
        area / "uploads" / "m.zip",
        [
            ("mymodel/model.toml", MODEL_TOML),
            ("mymodel/.git/HEAD", b"ref"),
            ("mymodel/pkg/__pycache__/x.pyc", b"\0"),
            ("__MACOSX/mymodel/._model.toml", b"\0\5\26\7"),
        ],
    )
    unpack_package(archive, dest)
    assert files_in(dest) == {"model.toml": MODEL_TOML}


def test_archive_format_is_detected_by_content_not_by_name(area, dest):
    """Uploads land in temporary files without an extension, and names can be wrong."""
    tarball = good_tar(area / "uploads" / "upload-tmp1")
    unpack_package(tarball, dest, filename="model.zip")
    assert files_in(dest) == EXPECTED_TREE
    (dest2 := area / "out" / "dest2").mkdir()
    unpack_package(good_zip(area / "uploads" / "upload-tmp2"), dest2)
    assert files_in(dest2) == EXPECTED_TREE


def test_tar_of_a_folder_made_with_dot_paths(area, dest):
    """`tar -C mymodel -czf model.tgz .` stores "./" and "./model.toml"."""
    archive = write_tar(
        area / "uploads" / "m.tgz",
        [("./", b""), ("./model.toml", MODEL_TOML), ("./src/", b""), ("./src/a.py", b"a")],
    )
    unpack_package(archive, dest)
    assert files_in(dest) == {"model.toml": MODEL_TOML, "src/a.py": b"a"}


def test_executable_bit_is_kept_and_setuid_setgid_sticky_are_dropped(area, dest):
    archive = write_tar(
        area / "uploads" / "m.tar.gz",
        [
            ("run.sh", b"#!/bin/sh\n", {"mode": 0o755}),
            ("suid", b"x", {"mode": 0o4755}),
            ("sgid", b"x", {"mode": 0o2711}),
            ("private.txt", b"x", {"mode": 0o600}),
            ("world.txt", b"x", {"mode": 0o1777}),
            ("locked/", b"", {"mode": 0o700}),
            ("locked/data.txt", b"x", {"mode": 0o000}),
        ],
    )
    unpack_package(archive, dest)
    assert mode_of(dest / "run.sh") == 0o755
    assert mode_of(dest / "suid") == 0o755
    assert mode_of(dest / "sgid") == 0o755
    assert mode_of(dest / "private.txt") == 0o644
    assert mode_of(dest / "world.txt") == 0o755
    assert mode_of(dest / "locked") == 0o755
    assert mode_of(dest / "locked" / "data.txt") == 0o644


def test_zip_modes_are_normalised_the_same_way(area, dest):
    archive = write_zip(
        area / "uploads" / "m.zip",
        [
            ("run.sh", b"#!/bin/sh\n", stat.S_IFREG | 0o755),
            ("suid", b"x", stat.S_IFREG | 0o4755),
            ("plain.txt", b"x", stat.S_IFREG | 0o600),
            ("windows.txt", b"x", 0),  # made on Windows: no Unix mode at all
            ("dir/", b"", stat.S_IFDIR | 0o700),
        ],
    )
    unpack_package(archive, dest)
    assert mode_of(dest / "run.sh") == 0o755
    assert mode_of(dest / "suid") == 0o755
    assert mode_of(dest / "plain.txt") == 0o644
    assert mode_of(dest / "windows.txt") == 0o644
    assert mode_of(dest / "dir") == 0o755


def test_symlinks_staying_inside_are_kept(area, dest):
    archive = write_zip(
        area / "uploads" / "m.zip",
        [
            ("model.toml", MODEL_TOML),
            ("data/v2/weights.bin", b"w"),
            zip_symlink("data/latest", "v2"),
            zip_symlink("weights.bin", "data/latest/weights.bin"),
            zip_symlink("data/v2/root", "../.."),  # the package root itself
            zip_symlink("dangling", "data/missing.txt"),
        ],
    )
    unpack_package(archive, dest)
    assert (dest / "weights.bin").read_bytes() == b"w"
    assert os.readlink(dest / "data" / "latest") == "v2"
    assert (dest / "data" / "v2" / "root").resolve() == dest.resolve()


def test_tar_hard_link_inside_becomes_a_copy(area, dest):
    archive = write_tar(
        area / "uploads" / "m.tar.gz",
        [
            ("pkg/run.sh", b"#!/bin/sh\n", {"mode": 0o755}),
            ("pkg/bin/run", b"", {"kind": tarfile.LNKTYPE, "linkname": "pkg/run.sh"}),
        ],
    )
    unpack_package(archive, dest)
    assert files_in(dest) == {"run.sh": b"#!/bin/sh\n", "bin/run": b"#!/bin/sh\n"}
    assert mode_of(dest / "bin" / "run") == 0o755
    assert (dest / "bin" / "run").stat().st_ino != (dest / "run.sh").stat().st_ino


def test_bare_onnx_file_is_copied_under_a_safe_name(area, dest):
    model = area / "uploads" / "tmpupload"
    model.write_bytes(b"\x08\x07onnx-protobuf")
    unpack_package(model, dest, filename="../../My Model (final)!.ONNX")
    assert files_in(dest) == {"My_Model_final.onnx": b"\x08\x07onnx-protobuf"}
    assert mode_of(dest / "My_Model_final.onnx") == 0o644


def test_skops_file_is_copied_not_unpacked_although_it_is_a_zip(area, dest):
    model = write_zip(area / "uploads" / "classifier.skops", [("schema.json", b"{}")])
    unpack_package(model, dest)
    assert files_in(dest) == {"classifier.skops": model.read_bytes()}


def test_destination_must_be_an_empty_folder(area, dest):
    archive = good_zip(area / "uploads" / "m.zip")
    (dest / "leftover").write_text("x")
    with pytest.raises(ValueError, match="not empty"):
        unpack_package(archive, dest)
    with pytest.raises(ValueError, match="not an existing folder"):
        unpack_package(archive, area / "missing")


# --- hostile zip archives -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("../evil.txt", r'"\.\./evil\.txt" has a "\.\." component'),
        ("a/../../evil.txt", r'"a/\.\./\.\./evil\.txt" has a "\.\." component'),
        ("ok/../x.txt", r'has a "\.\." component'),
        ("/etc/marketplace-evil", r'"/etc/marketplace-evil" is an absolute path'),
        ("C:/Windows/evil.txt", r'"C:/Windows/evil\.txt" starts with a Windows drive letter'),
        ("C:evil.txt", r"Windows drive letter"),
        ("..\\evil.txt", r"has a backslash"),
        ("sub\\..\\..\\evil.txt", r"has a backslash"),
        ("new\nline.txt", r'"new\\nline\.txt" has a control character'),
    ],
)
def test_zip_member_names_leaving_the_package_are_refused(area, dest, name, match):
    archive = write_zip(area / "uploads" / "m.zip", [("model.toml", MODEL_TOML), (name, b"owned")])
    refused(archive, dest, match)
    assert not Path("/etc/marketplace-evil").exists()


def test_zip_absolute_member_pointing_into_the_test_area_is_refused(area, dest):
    target = area / "abs-evil.txt"
    archive = write_zip(
        area / "uploads" / "m.zip", [("model.toml", MODEL_TOML), (str(target), b"x")]
    )
    refused(archive, dest, r"is an absolute path")
    assert not target.exists()


def test_zip_member_name_with_nul_is_refused(area, dest):
    """zipfile silently cuts names at NUL; the raw name must still be refused."""
    archive = write_zip(
        area / "uploads" / "m.zip", [("model.toml", MODEL_TOML), ("evilX.txt", b"x")]
    )
    archive.write_bytes(archive.read_bytes().replace(b"evilX.txt", b"evil\0.txt"))
    refused(archive, dest, r'"evil\\u0000\.txt" has a NUL character')


@pytest.mark.parametrize(
    ("links", "match"),
    [
        ([("passwd", "/etc/passwd")], r'"passwd" is a symlink to "/etc/passwd", an absolute path'),
        (
            [("up", "../../outside")],
            r'"up" is a symlink to "\.\./\.\./outside", which points outside',
        ),
        ([("sub/up", "../..")], r"points outside the package"),
        # each link alone stays inside; followed like the kernel does, the second escapes
        ([("sub/up", ".."), ("sub/escape", "up/../outside")], r'"sub/escape" .* points outside'),
        ([("a", "b"), ("b", "a")], r"too many levels of symbolic links"),
        ([("win", "C:/Windows")], r"an absolute path"),
        ([("empty", "")], r"empty target"),
    ],
)
def test_zip_symlinks_leaving_the_package_are_refused(area, dest, links, match):
    members = [("model.toml", MODEL_TOML), ("sub/file.txt", b"x")]
    members += [zip_symlink(name, target) for name, target in links]
    refused(write_zip(area / "uploads" / "m.zip", members), dest, match)


def test_zip_file_placed_through_a_symlink_is_refused(area, dest):
    """Even a link that stays inside: the file would be written through it."""
    archive = write_zip(
        area / "uploads" / "m.zip",
        [
            ("model.toml", MODEL_TOML),
            ("real/x", b"x"),
            zip_symlink("alias", "real"),
            ("alias/y", b"y"),
        ],
    )
    refused(archive, dest, r'"alias/y" is inside "alias", which is a symlink')


@pytest.mark.parametrize(
    ("mode", "match"),
    [
        (stat.S_IFCHR | 0o666, r'"null" is a device file'),
        (stat.S_IFBLK | 0o660, r'"null" is a device file'),
        (stat.S_IFIFO | 0o644, r'"null" is a FIFO'),
        (stat.S_IFSOCK | 0o755, r'"null" is a socket'),
    ],
)
def test_zip_special_files_are_refused(area, dest, mode, match):
    archive = write_zip(
        area / "uploads" / "m.zip", [("model.toml", MODEL_TOML), ("null", b"", mode)]
    )
    refused(archive, dest, match)


def test_zip_encrypted_member_is_refused(area, dest):
    archive = write_zip(
        area / "uploads" / "m.zip", [("model.toml", MODEL_TOML), ("secret.bin", b"s")]
    )
    archive.write_bytes(patch_zip_member(archive.read_bytes(), b"secret.bin", flag_bits=0x1))
    refused(archive, dest, r'"secret\.bin" is encrypted')


def test_zip_bomb_is_stopped_at_the_expanded_size_limit(area, dest):
    archive = write_zip(
        area / "uploads" / "bomb.zip",
        [("model.toml", MODEL_TOML), ("zeros.bin", bytes(20 * 10**6))],
    )
    assert archive.stat().st_size < 100_000
    limits = PackageLimits(max_expanded_bytes=1_000_000)
    refused(archive, dest, r"expands to more than 1,000,000 bytes, the limit", limits=limits)


def test_zip_bomb_whose_header_lies_about_its_size_is_refused(area, dest):
    """The header claims 1,000 bytes; the data inflates to 20 MB. Nothing beyond the claimed
    size is ever produced, and the mismatch is reported."""
    archive = write_zip(
        area / "uploads" / "bomb.zip",
        [("model.toml", MODEL_TOML), ("zeros.bin", bytes(20 * 10**6))],
    )
    archive.write_bytes(patch_zip_member(archive.read_bytes(), b"zeros.bin", file_size=1000))
    with zipfile.ZipFile(archive) as check:
        assert check.getinfo("zeros.bin").file_size == 1000
    limits = PackageLimits(max_expanded_bytes=1_000_000)
    refused(archive, dest, r'member "zeros\.bin" is corrupt \(Bad CRC-32', limits=limits)


def test_zip_with_too_many_entries_is_refused(area, dest):
    archive = write_zip(area / "uploads" / "m.zip", [(f"f{i}.txt", b"x") for i in range(11)])
    refused(archive, dest, r"more than 10 entries", limits=PackageLimits(max_files=10))


def test_zip_with_exactly_the_maximum_entries_is_accepted(area, dest):
    archive = write_zip(area / "uploads" / "m.zip", [(f"f{i}.txt", b"x") for i in range(10)])
    unpack_package(archive, dest, limits=PackageLimits(max_files=10))
    assert len(list(dest.iterdir())) == 10


@pytest.mark.parametrize(
    ("comment", "prefix"),
    [(b"", b""), (b"a comment", b""), (b"", b"#!/bin/sh\nexec unzip\n" * 50), (b"c", b"x" * 999)],
    ids=["plain", "comment", "self-extracting", "both"],
)
def test_zip_directory_is_counted_before_zipfile_reads_it(comment, prefix):
    """zipfile builds an object per central directory entry up front; the count that guards
    against a directory of millions of entries must agree with what zipfile reads."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for i in range(7):
            archive.writestr(f"f{i}", b"x")
        archive.comment = comment
    data = prefix + buffer.getvalue()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert len(archive.infolist()) == 7
    assert _zip_entry_count(io.BytesIO(data), limit=100) == 7
    assert _zip_entry_count(io.BytesIO(data), limit=3) == 4  # stops counting past the limit
    assert _zip_entry_count(io.BytesIO(b"no end record here" * 10), limit=3) is None


def test_zip64_with_too_many_entries_is_refused(area, dest):
    archive = area / "uploads" / "many.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:
        for i in range(65_600):  # past 65,535: the zip64 end record is used
            zf.writestr(f"f{i}", b"")
    assert b"PK\x06\x06" in archive.read_bytes()
    assert _zip_entry_count(archive.open("rb"), limit=10**6) == 65_600
    refused(archive, dest, r"more than 65,536 entries", limits=PackageLimits(max_files=65_536))


def test_zip_nested_too_deep_is_refused(area, dest):
    deep = "/".join(f"d{i}" for i in range(6)) + "/deep.txt"
    archive = write_zip(area / "uploads" / "m.zip", [("model.toml", MODEL_TOML), (deep, b"x")])
    refused(
        archive,
        dest,
        r'"d0/d1/.*deep\.txt" is nested 7 levels deep; the limit is 5',
        limits=PackageLimits(max_depth=5),
    )


def test_zip_duplicate_member_is_refused(area, dest):
    archive = write_zip(
        area / "uploads" / "m.zip",
        [("model.toml", MODEL_TOML), ("a.txt", b"1"), ("./a.txt", b"2")],
    )
    refused(archive, dest, r'"\./a\.txt" appears more than once')


def test_upload_over_the_size_limit_is_refused(area, dest):
    archive = good_zip(area / "uploads" / "m.zip")
    refused(
        archive,
        dest,
        r'"m\.zip" is [\d,]+ bytes; the largest package accepted is 1,000 bytes',
        limits=PackageLimits(max_upload_bytes=1000),
    )


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda p: p.write_bytes(b"PK\x03\x04" + os.urandom(200)), r'"m\.zip" is not a valid zip'),
        (lambda p: p.write_bytes(b"this is not an archive"), r'"m\.zip" is not a valid zip'),
        (lambda p: p.write_bytes(good_zip(p).read_bytes()[:-40]), r'"m\.zip" is not a valid zip'),
        (lambda p: p.write_bytes(b""), r'"m\.zip" is empty'),
    ],
)
def test_corrupt_zip_is_refused(area, dest, build, match):
    archive = area / "uploads" / "m.zip"
    build(archive)
    refused(archive, dest, match)


def test_zip_with_damaged_member_data_is_refused(area, dest):
    archive = write_zip(
        area / "uploads" / "m.zip", [("model.toml", MODEL_TOML), ("w.bin", os.urandom(5000))]
    )
    data = bytearray(archive.read_bytes())
    start = data.find(b"w.bin") + len(b"w.bin") + 100  # inside the compressed data
    data[start : start + 50] = bytes(50)
    archive.write_bytes(bytes(data))
    refused(archive, dest, r'member "w\.bin" is corrupt')


@pytest.mark.parametrize(
    "members", [[], [("empty/", b""), ("empty/more/", b"")], [zip_symlink("l", "x")]]
)
def test_zip_without_files_is_refused_as_empty(area, dest, members):
    refused(write_zip(area / "uploads" / "m.zip", members), dest, r"the package is empty")


def test_unknown_file_type_is_refused(area, dest):
    upload = area / "uploads" / "weights.pkl"
    upload.write_bytes(b"\x80\x04\x95pickle")
    refused(upload, dest, r'"weights\.pkl" is not a package: upload a folder as \.zip')


# --- hostile tar archives -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("member", "match"),
    [
        (("../evil.txt", b"x"), r'"\.\./evil\.txt" has a "\.\." component'),
        (("a/../../evil.txt", b"x"), r'has a "\.\." component'),
        (("/etc/marketplace-evil", b"x"), r"is an absolute path"),
        (
            ("passwd", b"", {"kind": tarfile.SYMTYPE, "linkname": "/etc/passwd"}),
            r'"passwd" is a symlink to "/etc/passwd", an absolute path',
        ),
        (
            ("up", b"", {"kind": tarfile.SYMTYPE, "linkname": "../../outside"}),
            r"points outside the package",
        ),
        (
            ("hard", b"", {"kind": tarfile.LNKTYPE, "linkname": "../outside"}),
            r'"hard" is a hard link to "\.\./outside", which is outside the package',
        ),
        (
            ("hard", b"", {"kind": tarfile.LNKTYPE, "linkname": "/etc/passwd"}),
            r'"hard" is a hard link to "/etc/passwd", which is outside the package',
        ),
        (
            ("hard", b"", {"kind": tarfile.LNKTYPE, "linkname": "missing.txt"}),
            r"which is not a file in the package",
        ),
        (("fifo", b"", {"kind": tarfile.FIFOTYPE}), r'"fifo" is a FIFO'),
        (("tty", b"", {"kind": tarfile.CHRTYPE}), r'"tty" is a device file'),
        (("disk", b"", {"kind": tarfile.BLKTYPE}), r'"disk" is a device file'),
        (
            ("volume", b"", {"kind": b"V"}),
            r"\"volume\" has an unsupported type",
        ),
    ],
)
def test_hostile_tar_members_are_refused(area, dest, member, match):
    archive = write_tar(area / "uploads" / "m.tar.gz", [("model.toml", MODEL_TOML), member])
    refused(archive, dest, match)
    assert not Path("/etc/marketplace-evil").exists()


def test_tar_hard_link_to_the_wrapper_folder_outside_is_refused(area, dest):
    """Hard link names are archive paths: after the wrapper is stripped they must still point
    at a member of the package."""
    archive = write_tar(
        area / "uploads" / "m.tar.gz",
        [
            ("pkg/model.toml", MODEL_TOML),
            ("pkg/h", b"", {"kind": tarfile.LNKTYPE, "linkname": "other/model.toml"}),
        ],
    )
    refused(archive, dest, r"which is outside the package")


def test_tar_bomb_is_stopped_at_the_expanded_size_limit(area, dest):
    archive = write_tar(
        area / "uploads" / "bomb.tar.gz", [("model.toml", MODEL_TOML), ("z.bin", bytes(20 * 10**6))]
    )
    assert archive.stat().st_size < 100_000
    refused(
        archive,
        dest,
        r"expands to more than 1,000,000 bytes",
        limits=PackageLimits(max_expanded_bytes=1_000_000),
    )


def test_tar_hard_links_count_towards_the_expanded_size(area, dest):
    members = [("model.toml", MODEL_TOML), ("w.bin", bytes(400_000))]
    members += [(f"copy{i}", b"", {"kind": tarfile.LNKTYPE, "linkname": "w.bin"}) for i in range(3)]
    archive = write_tar(area / "uploads" / "m.tar.gz", members)
    refused(
        archive,
        dest,
        r"expands to more than 1,000,000 bytes",
        limits=PackageLimits(max_expanded_bytes=1_000_000),
    )


def test_compressed_tar_is_read_forwards_only(area, dest, monkeypatch):
    """A gzip stream can only be read forwards: every step back decompresses it again from the
    start. Files at alternating depths must still be extracted in one pass after the listing."""
    members = [("model.toml", MODEL_TOML)]
    members += [(("a/b/c/" if i % 2 else "") + f"f{i}", os.urandom(1000)) for i in range(200)]
    archive = write_tar(area / "uploads" / "m.tar.gz", members)
    rewinds = []
    original_seek = archive_module._BoundedStream.seek

    def counting_seek(self, offset, whence=os.SEEK_SET):
        if whence == os.SEEK_SET and offset < self.tell():
            rewinds.append(offset)
        return original_seek(self, offset, whence)

    monkeypatch.setattr(archive_module._BoundedStream, "seek", counting_seek)
    unpack_package(archive, dest)
    assert len(files_in(dest)) == 201
    # once after sniffing the first block, once after listing the members: two passes in all
    assert len(rewinds) == 2, rewinds


def test_tar_with_too_many_entries_is_refused(area, dest):
    archive = write_tar(area / "uploads" / "m.tar.gz", [(f"f{i}", b"x") for i in range(11)])
    refused(archive, dest, r"more than 10 entries", limits=PackageLimits(max_files=10))


def test_tar_nested_too_deep_is_refused(area, dest):
    deep = "/".join(["d"] * 40) + "/x.txt"
    archive = write_tar(area / "uploads" / "m.tar", [("model.toml", MODEL_TOML), (deep, b"x")], "")
    refused(archive, dest, r"is nested 41 levels deep; the limit is 32")


def test_tar_with_a_huge_pax_header_is_refused(area, dest):
    archive = area / "uploads" / "m.tar"
    with tarfile.open(archive, "w", format=tarfile.PAX_FORMAT) as tar:
        info, content = tar_info("model.toml", MODEL_TOML)
        info.pax_headers = {"comment": "x" * (2 * 1024 * 1024)}
        tar.addfile(info, content)
    refused(archive, dest, r"header larger than 1 MiB")


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (
            lambda p: p.write_bytes(good_tar(p).read_bytes()[:300]),
            r'"m\.tar\.gz" is (not a valid|corrupt)',
        ),
        (lambda p: p.write_bytes(gzip.compress(b"not a tar at all" * 64)), r"not a valid tar\.gz"),
        (lambda p: p.write_bytes(b"\x1f\x8b" + os.urandom(300)), r"not a valid tar\.gz"),
        (lambda p: p.write_bytes(bz2.compress(os.urandom(600))), r"not a valid tar\.bz2"),
        (lambda p: p.write_bytes(lzma.compress(b"x" * 600)), r"not a valid tar\.xz"),
    ],
)
def test_corrupt_tar_is_refused(area, dest, build, match):
    archive = area / "uploads" / "m.tar.gz"
    build(archive)
    refused(archive, dest, match)


def test_tar_with_damaged_member_data_is_refused(area, dest):
    """A truncated stream in the middle of a member."""
    archive = write_tar(
        area / "uploads" / "m.tar.gz", [("model.toml", MODEL_TOML), ("w.bin", os.urandom(200_000))]
    )
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    refused(archive, dest, r"corrupt|not a valid")


@pytest.mark.parametrize("compression", ["gz", ""])
def test_empty_tar_is_refused(area, dest, compression):
    refused(write_tar(area / "uploads" / "m.tar", [], compression), dest, r"the package is empty")


def test_tar_with_only_folders_is_refused(area, dest):
    archive = write_tar(area / "uploads" / "m.tgz", [("a/", b""), ("a/b/", b"")])
    refused(archive, dest, r"the package is empty: it contains no files")


def test_failure_half_way_removes_what_was_already_written(area, dest):
    """A folder declares no sizes: the copy is counted, the limit is crossed on the second file
    and the first, already written, is removed again."""
    source = area / "uploads" / "folder"
    (source / "sub").mkdir(parents=True)
    (source / "a.bin").write_bytes(bytes(600_000))
    (source / "sub" / "b.bin").write_bytes(bytes(600_000))
    refused(
        source,
        dest,
        r'expands to more than 1,000,000 bytes, the limit \(stopped at "sub/b\.bin"\)',
        limits=PackageLimits(max_expanded_bytes=1_000_000),
    )


# --- hostile folders ----------------------------------------------------------------------------


def test_folder_symlink_leaving_the_folder_is_refused(area, dest):
    source = good_package(area / "uploads" / "mymodel")
    (source / "secrets").symlink_to("/etc/passwd")
    refused(source, dest, r'file "secrets" is a symlink to "/etc/passwd", an absolute path')
    (source / "secrets").unlink()
    (source / "assets" / "up").symlink_to("../../outside")
    refused(source, dest, r'"assets/up" is a symlink to "\.\./\.\./outside", which points outside')


def test_folder_fifo_and_socket_are_refused(area, dest):
    source = good_package(area / "uploads" / "mymodel")
    os.mkfifo(source / "pipe")
    refused(source, dest, r'file "pipe" is a FIFO')
    (source / "pipe").unlink()
    listener = socket.socket(socket.AF_UNIX)
    try:
        listener.bind(str(source / "sock"))
        refused(source, dest, r'file "sock" is a socket')
    finally:
        listener.close()


def test_folder_limits_apply(area, dest):
    source = good_package(area / "uploads" / "mymodel")
    refused(source, dest, r"more than 3 entries", limits=PackageLimits(max_files=3))
    refused(
        source,
        dest,
        r'"assets/current" is nested 2 levels deep; the limit is 1',
        limits=PackageLimits(max_depth=1),
    )


def test_empty_folder_is_refused(area, dest):
    source = area / "uploads" / "empty"
    (source / "sub").mkdir(parents=True)
    refused(source, dest, r"the package is empty")


def test_folder_is_counted_while_copying(area, dest):
    """A folder declares no sizes: the copy itself stops at the limit."""
    source = area / "uploads" / "mymodel"
    source.mkdir()
    (source / "big.bin").write_bytes(bytes(2_000_000))
    refused(
        source,
        dest,
        r'expands to more than 1,000,000 bytes, the limit \(stopped at "big\.bin"\)',
        limits=PackageLimits(max_expanded_bytes=1_000_000),
    )


# --- package_hash -------------------------------------------------------------------------------


def test_package_hash_is_the_same_for_the_same_content_in_every_format(area):
    sources = {
        "folder": good_package(area / "uploads" / "mymodel"),
        "zip": good_zip(area / "uploads" / "m.zip"),
        "zip-flat": good_zip(area / "uploads" / "flat.zip", wrapper=""),
        "tar.gz": good_tar(area / "uploads" / "m.tar.gz"),
        "tar.xz": good_tar(area / "uploads" / "m.tar.xz", "xz", wrapper=""),
    }
    hashes = {}
    for label, source in sources.items():
        target = area / "out" / label
        target.mkdir()
        unpack_package(source, target)
        hashes[label] = package_hash(target)
    assert len(set(hashes.values())) == 1, hashes
    assert re.fullmatch(r"[0-9a-f]{64}", hashes["zip"])


def test_package_hash_ignores_timestamps_and_folders_but_not_content_mode_or_names(area):
    root = good_package(area / "uploads" / "mymodel")
    original = package_hash(root)
    os.utime(root / "predict.py", (0, 0))
    (root / "empty-folder").mkdir()
    assert package_hash(root) == original

    weights = root / "assets" / "weights.bin"
    data = bytearray(weights.read_bytes())
    data[1000] ^= 1
    weights.write_bytes(bytes(data))
    changed_byte = package_hash(root)
    assert changed_byte != original
    data[1000] ^= 1
    weights.write_bytes(bytes(data))
    assert package_hash(root) == original

    (root / "predict.py").chmod(0o755)
    assert package_hash(root) != original
    (root / "predict.py").chmod(0o644)
    (root / "predict.py").rename(root / "predict2.py")
    assert package_hash(root) != original
    (root / "predict2.py").rename(root / "predict.py")
    (root / "assets" / "current").unlink()
    (root / "assets" / "current").symlink_to("other.bin")
    assert package_hash(root) != original


# --- properties ---------------------------------------------------------------------------------

SEGMENT = st.text(
    alphabet=st.characters(
        whitelist_categories=("Lu", "Ll", "Nd"), whitelist_characters="._- ~+@", max_codepoint=0x2FF
    ),
    min_size=1,
    max_size=12,
).filter(lambda s: s not in {".", "..", ".git", "__pycache__", "__MACOSX"})

PROPERTY_SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@PROPERTY_SETTINGS
@given(segments=st.lists(SEGMENT, min_size=1, max_size=8), use_tar=st.booleans())
def test_property_safe_member_names_land_inside_dest(segments, use_tar):
    name = "/".join(segments)
    with tempfile.TemporaryDirectory() as scratch:
        area = Path(scratch)
        dest = area / "out" / "dest"
        dest.mkdir(parents=True)
        members = [("MARKER!", b"m"), (name, b"payload")]  # "!" is never in a segment
        if use_tar:
            archive = write_tar(area / "m.tar", members, "")
        else:
            archive = write_zip(area / "m.zip", members)
        unpack_package(archive, dest)
        landed = dest.joinpath(*segments)
        assert landed.read_bytes() == b"payload"
        assert landed.resolve().is_relative_to(dest.resolve())
        outside = {p for p in snapshot(area) if not p.startswith(("out/dest", "m."))}
        assert outside == {"out"}


@PROPERTY_SETTINGS
@given(
    before=st.lists(SEGMENT, max_size=4),
    after=st.lists(SEGMENT, min_size=1, max_size=4),
    ups=st.integers(min_value=1, max_value=4),
    use_tar=st.booleans(),
)
def test_property_names_with_dot_dot_segments_are_always_refused(before, after, ups, use_tar):
    name = "/".join([*before, *([".."] * ups), *after])
    with tempfile.TemporaryDirectory() as scratch:
        area = Path(scratch)
        dest = area / "out" / "dest"
        dest.mkdir(parents=True)
        members = [("model.toml", MODEL_TOML), (name, b"owned")]
        archive = (
            write_tar(area / "m.tar", members, "")
            if use_tar
            else write_zip(area / "m.zip", members)
        )
        expected = snapshot(area)
        with pytest.raises(PackageError, match=r'has a "\.\." component'):
            unpack_package(archive, dest)
        assert snapshot(area) == expected
        assert list(dest.iterdir()) == []


@PROPERTY_SETTINGS
@given(data=st.data(), use_tar=st.booleans())
def test_property_damaged_archives_raise_package_error_or_unpack_inside(data, use_tar):
    """Flip random bytes in a good archive: unpacking either works, inside dest, or raises a
    PackageError leaving dest empty; never another exception."""
    with tempfile.TemporaryDirectory() as scratch:
        area = Path(scratch)
        dest = area / "out" / "dest"
        dest.mkdir(parents=True)
        archive = good_tar(area / "m.tar.gz") if use_tar else good_zip(area / "m.zip")
        raw = bytearray(archive.read_bytes())
        for position in data.draw(st.lists(st.integers(0, len(raw) - 1), min_size=1, max_size=6)):
            raw[position] = data.draw(st.integers(0, 255))
        archive.write_bytes(bytes(raw))
        try:
            unpack_package(archive, dest)
        except PackageError:
            assert list(dest.iterdir()) == []
        outside = {p for p in snapshot(area) if not p.startswith(("out/dest", "m."))}
        assert outside == {"out"}
