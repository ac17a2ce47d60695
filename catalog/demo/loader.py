"""Loads the demo catalogue (catalog/demo/catalog.toml) through the real publishing path:
each version folder is uploaded as a package, built (environment, sandboxed start, sample
input) and published. Idempotent: versions already published are skipped, so a second run
does nothing."""

from __future__ import annotations

import secrets
import shutil
import subprocess
import tempfile
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from execution.environments import ensure_python_environment
from execution.runtimes import get_runtime
from marketplace.accounts import services as account_services
from marketplace.accounts.models import Membership, Role, Team, User

from .. import builder, services
from ..models import Build, BuildStatus, Version

DEMO_DIR = Path(__file__).resolve().parent
MODELS_DIR = DEMO_DIR / "models"
CATALOG_FILE = DEMO_DIR / "catalog.toml"

Say = Callable[[str], None]


@dataclass
class LoadReport:
    published: int = 0
    skipped: int = 0
    failed: int = 0


def load_demo_catalog(*, admin: User, say: Say, only: set[str] | None = None) -> LoadReport:
    catalog = tomllib.loads(CATALOG_FILE.read_text())
    owners = {owner["slug"]: _ensure_owner(owner, admin) for owner in catalog.get("owners", [])}
    report = LoadReport()
    for entry in catalog["models"]:
        if only and entry["slug"] not in only:
            continue
        owner = owners.get(entry["owner"]) or Team.objects.get(slug=entry["owner"])
        actor = _actor_for(owner, admin)
        versions = entry["versions"]
        notes = entry.get("release_notes", [])
        existing = Version.objects.filter(model__owner=owner, model__slug=entry["slug"]).count()
        for index, folder in enumerate(versions):
            if index < existing:
                report.skipped += 1
                continue
            label = f"{owner.slug}/{entry['slug']} ({folder})"
            missing = _missing_runtime(folder)
            if missing:
                say(f"  - {label}: skipped: {missing}")
                report.skipped += 1
                break
            try:
                build = _build(entry, folder, owner, actor, say)
            except Exception as exc:  # one broken demo must not stop the others
                say(f"  ✗ {label}: {exc}")
                report.failed += 1
                break
            if build.status != BuildStatus.SUCCEEDED:
                say(f"  ✗ {label}: build failed: {build.error}")
                report.failed += 1
                break
            version = services.version_publish(
                actor=actor,
                model=build.model,
                build=build,
                bump="major" if index == 0 else entry.get("bump", "minor"),
                visibility=entry.get("visibility", "public"),
                release_notes=notes[index] if index < len(notes) else "",
            )
            report.published += 1
            say(f"  ✓ {label} → {version.number} ({version.visibility})")
    return report


def _ensure_owner(spec: dict, admin: User) -> Team:
    slug = spec["slug"]
    if spec.get("kind", "team") == "user":
        user = User.objects.filter(username=slug).first()
        if user is None:
            user = User.objects.create_user(
                username=slug,
                email=f"{slug}@example.com",
                password=secrets.token_urlsafe(16),
                first_name=spec.get("name", ""),
            )
        return account_services.personal_namespace_ensure(user=user)
    team = Team.objects.filter(slug=slug).first()
    if team is None:
        team = account_services.team_create(
            actor=admin,
            slug=slug,
            name=spec.get("name", slug),
            description=spec.get("description", ""),
        )
    Membership.objects.get_or_create(team=team, user=admin, defaults={"role": Role.OWNER})
    return team


def _actor_for(owner: Team, admin: User) -> User:
    if owner.is_personal:
        return owner.personal_owner
    return admin


def _missing_runtime(folder: str) -> str | None:
    """Why this host cannot run the demo (a runtime's toolchain is not installed), if so."""
    manifest = MODELS_DIR / folder / "model.toml"
    if not manifest.exists():
        return None
    runtime = tomllib.loads(manifest.read_text()).get("runtime")
    return get_runtime(runtime).missing() if runtime else None


def _build(entry: dict, folder: str, owner: Team, actor: User, say: Say) -> Build:
    source = MODELS_DIR / folder
    with tempfile.TemporaryDirectory(prefix="demo-") as tmp:
        if entry.get("generator"):
            staged = Path(tmp) / "package"
            shutil.copytree(source, staged)
            _run_generator(entry, staged, say)
            source = staged
        overrides = {"name": entry["slug"]}
        build, _created = services.build_create(
            actor=actor, owner=owner, source=source, overrides=overrides, queue=False
        )
    if build.status in (BuildStatus.QUEUED, BuildStatus.BUILDING):
        say(f"  building {owner.slug}/{entry['slug']} from {folder}…")
        builder.execute_build(build.pk)
        build.refresh_from_db()
    return build


def _run_generator(entry: dict, out_dir: Path, say: Say) -> None:
    """Standard-format demos (ONNX, MLflow, skops) are artefacts made from code: the
    generator trains the model in its own environment and writes it into the package."""
    script = DEMO_DIR / entry["generator"]
    requirements = (DEMO_DIR / entry["generator_requirements"]).read_text()
    env = ensure_python_environment(requirements, owner="platform", log=lambda line: None)
    say(f"  generating {entry['slug']} with {script.name}")
    result = subprocess.run(
        [str(env.python), str(script), str(out_dir)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{script.name} failed: {result.stderr[-2000:]}")
