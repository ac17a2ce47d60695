"""Model packages: safe unpacking (`archive`), the `model.toml` manifest (`manifest`) and the
standard model formats published without code (`formats`)."""

from catalog.packages.archive import (
    DEFAULT_LIMITS,
    PackageError,
    PackageLimits,
    package_hash,
    unpack_package,
)
from catalog.packages.formats import detect_format
from catalog.packages.manifest import (
    FORMATS,
    RUNTIMES,
    SLUG_RE,
    Manifest,
    ManifestError,
    input_validator,
    load_manifest,
)

__all__ = [
    "DEFAULT_LIMITS",
    "FORMATS",
    "RUNTIMES",
    "SLUG_RE",
    "Manifest",
    "ManifestError",
    "PackageError",
    "PackageLimits",
    "detect_format",
    "input_validator",
    "load_manifest",
    "package_hash",
    "unpack_package",
]
