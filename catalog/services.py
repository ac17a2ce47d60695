"""Writes and rules of the catalogue: upload a package as a build, run the build, publish a
version, register webhooks. The web page, the REST API and the command-line tool all come
through here."""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
import shutil
import uuid
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from celery import current_app
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F, ProtectedError, RestrictedError, Value
from django.db.models.functions import Concat
from django.utils import timezone

from execution.backends.http import PROTOCOLS
from marketplace.accounts import policies
from marketplace.accounts.models import Team, User
from marketplace.audit.models import Action
from marketplace.audit.services import audit_record
from marketplace.core import metrics
from marketplace.core.errors import AuthorizationError, ConflictError, InputError
from marketplace.core.outbound import require_public_url

from . import access
from .models import (
    Build,
    BuildStatus,
    Model,
    Version,
    Visibility,
    Webhook,
    WebhookEvent,
)
from .packages import (
    PackageError,
    PackageLimits,
    load_manifest,
    package_hash,
    unpack_package,
)
from .packages.manifest import OVERRIDABLE, SLUG_RE
from .versions import next_version
from .webhooks import build_payload, version_payload, webhook_emit

logger = logging.getLogger(__name__)

# Queued by name: catalog/tasks.py runs these services, so this module does not import it.
RUN_BUILD_TASK = "catalog.tasks.run_build"

MAX_BUILD_ATTEMPTS = 3
BUILD_HEARTBEAT_STALE = timedelta(seconds=90)


def package_limits() -> PackageLimits:
    return PackageLimits(
        max_upload_bytes=settings.PACKAGE_MAX_UPLOAD_BYTES,
        max_expanded_bytes=settings.PACKAGE_MAX_EXPANDED_BYTES,
        max_files=settings.PACKAGE_MAX_FILES,
    )


def packages_root() -> Path:
    root = Path(settings.MEDIA_ROOT) / "packages"
    root.mkdir(parents=True, exist_ok=True)
    return root


def package_dir(build: Build) -> Path:
    return packages_root() / build.package_hash


# -- builds -----------------------------------------------------------------------------------


def build_create(
    *,
    actor: User,
    owner: Team,
    source: Path,
    filename: str | None = None,
    overrides: dict | None = None,
    queue: bool = True,
) -> tuple[Build, bool]:
    """Check and store an uploaded package and queue its build (unless the caller runs it
    itself: queue=False). Returns the build and whether it is new: the same package uploaded
    again is the same build."""
    access.require_publish(actor, owner)
    overrides = {k: v for k, v in (overrides or {}).items() if k in OVERRIDABLE and v}
    staging = Path(settings.MEDIA_ROOT) / "staging" / uuid.uuid4().hex
    staging.mkdir(parents=True)
    try:
        try:
            unpack_package(source, staging, filename=filename, limits=package_limits())
            manifest = load_manifest(staging, overrides=overrides)
        except PackageError as error:
            field = error.field or "package"
            raise InputError(error.message, fields={field: [error.message]}) from None
        digest = package_hash(staging)
        final = packages_root() / digest
        if not final.exists():
            try:
                staging.rename(final)
            except OSError:  # another upload of the same content won the race
                if not final.exists():
                    raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)

    with transaction.atomic():
        model, _ = Model.objects.select_for_update().get_or_create(
            owner=owner,
            slug=manifest.name,
            defaults={
                "title": manifest.title,
                "tagline": manifest.tagline,
                "readme": manifest.readme,
                "tags": list(manifest.tags),
                "task": manifest.task,
                "framework": manifest.framework,
                "license": manifest.license,
                "runtime": manifest.runtime,
                "network": manifest.network,
                "created_by": actor,
            },
        )
        existing = Build.objects.filter(model=model, package_hash=digest).first()
        if existing is not None:
            if existing.status == BuildStatus.FAILED:
                # The package is the same, but what failed may not have been (an index that
                # was down, a limit since raised): building it again is what the user asks.
                _rebuild(existing, why=f"uploaded again by {actor.username}", queue=queue)
            return existing, False
        try:
            with transaction.atomic():
                build = Build.objects.create(
                    model=model,
                    package_hash=digest,
                    manifest=manifest.as_dict(),
                    runtime=manifest.runtime,
                    sample_input=manifest.sample_input,
                    created_by=actor,
                    log=f"Package {digest[:12]} received from {actor.username}.\n",
                )
        except IntegrityError:
            return Build.objects.get(model=model, package_hash=digest), False
        if queue:
            transaction.on_commit(lambda: _enqueue_build(build.pk))
    return build, True


def _rebuild(build: Build, *, why: str, queue: bool = True) -> None:
    """Build a failed build's package again (inside the caller's transaction)."""
    build.status = BuildStatus.QUEUED
    build.attempts = 0
    build.error = ""
    build.started_at = build.finished_at = build.heartbeat_at = None
    build.save()
    build_append_log(build.pk, f"\nRebuilding: {why}.\n")
    if queue:
        transaction.on_commit(lambda: _enqueue_build(build.pk))


@transaction.atomic
def build_compile(*, actor: User, model: Model) -> Build:
    """Algorithmia's "compile": build the model's newest package. Its newest build is what
    the newest upload made; a failed one is built again, a queued, running or successful
    one is already what compiling would give. A model with no upload has nothing to build."""
    access.require_publish(actor, model.owner)
    build = model.builds.select_for_update().order_by("-created_at").first()
    if build is None:
        raise ConflictError(
            f"{model.full_name} has no package to build: upload one first "
            f"(POST /v1/models/{model.owner.slug} with the package)"
        )
    if build.status == BuildStatus.FAILED:
        _rebuild(build, why=f"compile requested by {actor.username}")
    return build


def remote_build_create(*, actor: User, owner: Team, spec: dict) -> tuple[Build, bool]:
    """A model served by an existing inference server: the catalogue keeps its URL and
    protocol (the build's manifest) and the gateway forwards calls there."""

    access.require_publish(actor, owner)
    name = str(spec.get("name", "")).strip()
    if not re.match(SLUG_RE, name):
        raise InputError(
            "name: 2 to 64 lowercase letters, digits, - or _, starting with a letter",
            fields={"name": ["invalid"]},
        )
    http = spec.get("http")
    if not isinstance(http, dict):
        raise InputError(
            'http: give the inference server as {"url", "protocol"}', fields={"http": ["required"]}
        )
    url, protocol = str(http.get("url", "")), http.get("protocol", "json")
    if not url.startswith(("http://", "https://")):
        raise InputError("http.url: must be an http(s) URL", fields={"http.url": ["invalid"]})
    require_public_url(url, field="http.url")
    if protocol not in PROTOCOLS:
        raise InputError(
            f"http.protocol: one of {', '.join(PROTOCOLS)}", fields={"http.protocol": ["invalid"]}
        )
    if protocol == "oip-v2" and not http.get("model_name"):
        raise InputError(
            "http.model_name: the model's name on the inference server",
            fields={"http.model_name": ["required"]},
        )
    manifest = {
        "name": name,
        "title": str(spec.get("title") or name)[:100],
        "tagline": str(spec.get("tagline", ""))[:200],
        "readme": str(spec.get("readme", "")),
        "runtime": "http",
        "entrypoint": url,
        "license": str(spec.get("license", "unknown")),
        "tags": [str(t).lower() for t in spec.get("tags", [])][:20],
        "task": str(spec.get("task", "")),
        "framework": str(spec.get("framework", "")),
        "network": True,
        "royalty_per_call": str(spec.get("royalty_per_call", "0")),
        "sample_input": spec.get("sample_input"),
        "http": {
            "url": url,
            "protocol": protocol,
            "model_name": http.get("model_name", ""),
            "input_name": http.get("input_name", "input-0"),
        },
    }
    digest = hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()
    with transaction.atomic():
        model, _ = Model.objects.get_or_create(
            owner=owner,
            slug=name,
            defaults={
                "title": manifest["title"],
                "tagline": manifest["tagline"],
                "runtime": "http",
                "network": True,
                "created_by": actor,
            },
        )
        existing = Build.objects.filter(model=model, package_hash=digest).first()
        if existing is not None:
            return existing, False
        build = Build.objects.create(
            model=model,
            package_hash=digest,
            manifest=manifest,
            runtime="http",
            sample_input=manifest["sample_input"],
            created_by=actor,
            log=f"Inference server {url} ({protocol}) registered by {actor.username}.\n",
        )
        transaction.on_commit(lambda: _enqueue_build(build.pk))
    return build, True


def _enqueue_build(build_id) -> None:
    try:
        current_app.send_task(
            RUN_BUILD_TASK, args=(str(build_id),), queue=settings.CATALOG_BUILD_QUEUE
        )
    except Exception:  # the broker is down: the reaper re-queues it when it is back
        logger.exception("could not queue build %s; it will be retried", build_id)


def build_append_log(build_id, text: str) -> None:
    if text:
        Build.objects.filter(pk=build_id).update(log=Concat(F("log"), Value(text)))


def build_claim(build_id) -> Build | None:
    """Take a queued build (or one whose worker died) for running. None when it is finished,
    being run by a live worker, or has used up its attempts."""
    now = timezone.now()
    with transaction.atomic():
        build = (
            Build.objects.select_for_update()
            .select_related("model", "model__owner")
            .filter(pk=build_id)
            .first()
        )
        if build is None or build.is_finished:
            return None
        if (
            build.status == BuildStatus.BUILDING
            and build.heartbeat_at
            and (now - build.heartbeat_at < BUILD_HEARTBEAT_STALE)
        ):
            return None
        if build.attempts >= MAX_BUILD_ATTEMPTS:
            _finish(
                build,
                BuildStatus.FAILED,
                error=f"the build was interrupted {build.attempts} times; giving up",
            )
            return None
        build.status = BuildStatus.BUILDING
        build.attempts += 1
        build.started_at = build.started_at or now
        build.heartbeat_at = now
        build.save(update_fields=["status", "attempts", "started_at", "heartbeat_at"])
        if build.attempts > 1:
            build_append_log(
                build.pk,
                f"\nRetrying (attempt {build.attempts}) after the previous worker stopped.\n",
            )
    return build


def build_heartbeat(build_id) -> None:
    Build.objects.filter(pk=build_id, status=BuildStatus.BUILDING).update(
        heartbeat_at=timezone.now()
    )


def build_succeed(build: Build, *, environment_key: str, sample_output, content_type: str) -> None:
    build.environment_key = environment_key
    build.sample_output = sample_output
    build.sample_output_content_type = content_type
    _finish(build, BuildStatus.SUCCEEDED)


def build_fail(build: Build, *, error: str) -> None:
    _finish(build, BuildStatus.FAILED, error=error)


def _finish(build: Build, status: str, *, error: str = "") -> None:
    build.status = status
    build.error = error
    build.finished_at = timezone.now()
    build.save(
        update_fields=[
            "status",
            "error",
            "finished_at",
            "environment_key",
            "sample_output",
            "sample_output_content_type",
        ]
    )
    event = (
        WebhookEvent.BUILD_SUCCEEDED
        if status == BuildStatus.SUCCEEDED
        else (WebhookEvent.BUILD_FAILED)
    )

    transaction.on_commit(lambda: webhook_emit(build.model.owner, event, build_payload(build)))
    metrics.build_finished(build)


def builds_reap() -> int:
    """Re-queue builds whose worker died (stale heartbeat) or whose message was lost (queued
    for long). Run periodically by Celery beat. Returns how many were re-queued."""
    now = timezone.now()
    stale = Build.objects.filter(
        status=BuildStatus.BUILDING, heartbeat_at__lt=now - BUILD_HEARTBEAT_STALE
    )
    forgotten = Build.objects.filter(
        status=BuildStatus.QUEUED, created_at__lt=now - timedelta(minutes=5)
    )
    count = 0
    for build_id in list(stale.values_list("pk", flat=True)) + list(
        forgotten.values_list("pk", flat=True)
    ):
        _enqueue_build(build_id)
        count += 1
    return count


# -- versions -----------------------------------------------------------------------------------


@transaction.atomic
def version_publish(
    *,
    actor: User,
    model: Model,
    bump: str,
    visibility: str,
    release_notes: str = "",
    build: Build | None = None,
) -> Version:
    access.require_publish(actor, model.owner)
    model = Model.objects.select_for_update().get(pk=model.pk)
    if visibility not in Visibility.values:
        raise InputError(
            "visibility: must be public or private", fields={"visibility": ["invalid"]}
        )
    if build is None:
        build = model.builds.filter(status=BuildStatus.SUCCEEDED).order_by("-created_at").first()
        if build is None:
            raise ConflictError(f"{model.full_name} has no successful build to publish")
    elif build.model_id != model.pk:
        raise InputError("build: belongs to another model", fields={"build": ["invalid"]})
    if build.status != BuildStatus.SUCCEEDED:
        raise ConflictError(f"build {build.short_hash} has not succeeded (it is {build.status})")
    already = Version.objects.filter(build=build).first()
    if already is not None:
        raise ConflictError(f"build {build.short_hash} is already published as {already.number}")
    previous = model.versions.order_by("-major", "-minor", "-patch").first()
    number = next_version(previous.semver if previous else None, bump)
    if previous is not None and previous.visibility != visibility and bump != "major":
        raise InputError(
            f"visibility: changing from {previous.visibility} to {visibility} needs a major "
            "version (--bump major)",
            fields={"visibility": ["needs a major version"]},
        )
    royalty = Decimal(str(build.manifest.get("royalty_per_call", "0")))
    version = Version.objects.create(
        model=model,
        build=build,
        major=number[0],
        minor=number[1],
        patch=number[2],
        release_notes=release_notes,
        visibility=visibility,
        royalty_per_call=royalty,
        published_by=actor,
    )
    model_visibility = model.visibility
    _refresh_model_from(model, build)
    # Visibility changes only at a major version; such a publish is recorded as the change.
    changed = previous is not None and previous.visibility != visibility
    audit_record(
        action=Action.MODEL_VISIBILITY_CHANGED if changed else Action.MODEL_PUBLISHED,
        actor=actor,
        target=model,
        team=model.owner,
        before={
            "version": previous.number,
            "visibility": previous.visibility,
            "model_visibility": model_visibility,
        }
        if previous is not None
        else None,
        after={
            "version": version.number,
            "visibility": visibility,
            "model_visibility": model.visibility,
            "build": build.short_hash,
            "royalty_per_call": royalty,
        },
    )

    transaction.on_commit(
        lambda: webhook_emit(model.owner, WebhookEvent.VERSION_PUBLISHED, version_payload(version))
    )
    return version


@transaction.atomic
def version_publish_newest(
    *, actor: User, model: Model, bump: str, visibility: str | None, release_notes: str = ""
) -> Version:
    """Algorithmia's publish: "you may only publish the most recent compiled version". The
    model's newest build (its newest upload) must have succeeded and not be published yet;
    an older successful build is never published in its place. `visibility` None keeps the
    newest version's (private for a first version, as Algorithmia's callability starts)."""
    build = model.builds.order_by("-created_at").first()
    if build is None:
        raise ConflictError(f"{model.full_name} has no build to publish: upload a package")
    published = build.versions.first()
    if published is not None:
        raise ConflictError(
            f"the newest build of {model.full_name} ({build.short_hash}) is already published "
            f"as {published.number}: upload a new package and compile it first"
        )
    if build.status != BuildStatus.SUCCEEDED:
        raise ConflictError(
            f"the newest build of {model.full_name} ({build.short_hash}) is {build.status}: "
            "publish it once it has succeeded"
        )
    if visibility is None:
        previous = model.versions.order_by("-major", "-minor", "-patch").first()
        visibility = previous.visibility if previous is not None else Visibility.PRIVATE
    return version_publish(
        actor=actor,
        model=model,
        bump=bump,
        visibility=visibility,
        release_notes=release_notes,
        build=build,
    )


def model_create(
    *,
    actor: User,
    owner: Team,
    name: str,
    title: str = "",
    tagline: str = "",
    readme: str = "",
    license: str = "",
    network: bool = False,
) -> Model:
    """An empty model (Algorithmia's "create an algorithm"): private, with no build until a
    package is uploaded under its name."""
    access.require_publish(actor, owner)
    if not isinstance(name, str) or not re.match(SLUG_RE, name):
        raise InputError(
            "name: 2 to 64 lowercase letters, digits, - or _, starting with a letter",
            fields={"name": ["invalid"]},
        )
    try:
        with transaction.atomic():
            return Model.objects.create(
                owner=owner,
                slug=name,
                title=(title or name)[:100],
                tagline=tagline[:200],
                readme=readme,
                license=license[:64],
                network=network,
                created_by=actor,
            )
    except IntegrityError:
        raise ConflictError(f"{owner.slug}/{name} already exists") from None


def model_update_details(
    *,
    actor: User,
    model: Model,
    title: str | None = None,
    tagline: str | None = None,
    readme: str | None = None,
    license: str | None = None,
) -> Model:
    """Change what the model's page and search say about it (Algorithmia's "update an
    algorithm"). A publish takes them from the published package's manifest again, as
    every publish does (`_refresh_model_from`)."""
    access.require_publish(actor, model.owner)
    changes = {
        "title": None if title is None else (title.strip() or model.slug)[:100],
        "tagline": None if tagline is None else tagline[:200],
        "readme": readme,
        "license": None if license is None else license[:64],
    }
    changed = [field for field, value in changes.items() if value is not None]
    for field in changed:
        setattr(model, field, changes[field])
    if changed:
        model.updated_at = timezone.now()
        model.save(update_fields=[*changed, "updated_at"])
    return model


@transaction.atomic
def model_delete(*, actor: User, model: Model) -> None:
    """Delete a model with its versions and builds, for its owners and admins. A model that
    has been called cannot be deleted: its calls and their usage records are kept for the
    callers' and the owner's reports (the database protects them), so it is refused with a
    409 that says so. Package files stay in storage, where builds share them by hash."""

    if not policies.can_administer(actor, model.owner):
        raise AuthorizationError(f"Only owners and admins of {model.owner.slug} can delete models")
    model = Model.objects.select_for_update().get(pk=model.pk)
    calls = model.invocations.count()  # the gateway's calls, through their foreign key
    if calls:
        raise ConflictError(
            f"{model.full_name} has been called {calls:,} times; its calls and their usage "
            "are kept for billing, so it cannot be deleted"
        )
    versions = list(model.versions.order_by("-major", "-minor", "-patch"))
    audit_record(
        action=Action.MODEL_DELETED,
        actor=actor,
        target=model,
        team=model.owner,
        before={
            "name": model.full_name,
            "visibility": model.visibility,
            "versions": [v.number for v in versions],
        },
    )
    try:
        with transaction.atomic():
            model.versions.all().delete()  # first: each protects its build from the cascade
            model.delete()
    except (ProtectedError, RestrictedError):
        raise ConflictError(
            f"{model.full_name} is still referenced by usage records, so it cannot be deleted"
        ) from None


def _refresh_model_from(model: Model, build: Build) -> None:
    """The model's page shows what its newest published version says about itself; once the
    model is public, its newest public version: the page, search and the API show the model
    to everyone, so a private version's title, README or tags must not reach them."""
    newest_public = (
        model.versions.filter(visibility=Visibility.PUBLIC)
        .select_related("build")
        .order_by("-major", "-minor", "-patch")
        .first()
    )
    if newest_public is not None:
        build = newest_public.build
    manifest = build.manifest
    model.title = manifest.get("title") or model.slug
    model.tagline = manifest.get("tagline", "")
    model.readme = manifest.get("readme", "")
    model.tags = list(manifest.get("tags", []))
    model.task = manifest.get("task", "")
    model.framework = manifest.get("framework", "")
    model.license = manifest.get("license", "")
    model.runtime = build.runtime
    model.network = bool(manifest.get("network", False))
    model.visibility = Visibility.PUBLIC if newest_public is not None else Visibility.PRIVATE
    model.updated_at = timezone.now()
    model.save()


def model_set_warm_processes(*, actor: User, model: Model, count: int) -> Model:
    """Keep `count` processes of the model's newest version always warm on every runner."""
    if not policies.can_administer(actor, model.owner):
        raise AuthorizationError(f"Only owners and admins of {model.owner.slug} can do that")
    limit = settings.RUNNER_MAX_PER_VERSION
    if not 0 <= count <= limit:
        raise InputError(
            f"warm_processes: between 0 and {limit}", fields={"warm_processes": ["out of range"]}
        )
    model.warm_processes = count
    model.save(update_fields=["warm_processes"])
    return model


def model_set_anonymous_tries(*, actor: User, model: Model, allowed: bool) -> Model:
    """Let visitors without an account try the model (or stop them), for its owners and
    admins. It takes effect while the model is public; the gateway limits the tries per
    address and day (ANONYMOUS_TRIES_PER_DAY) and bills them to no one."""
    if not policies.can_administer(actor, model.owner):
        raise AuthorizationError(f"Only owners and admins of {model.owner.slug} can do that")
    model.anonymous_tries = bool(allowed)
    model.save(update_fields=["anonymous_tries"])
    return model


def reservations_wanted() -> dict[str, int]:
    """Build id -> processes to keep warm, for the runner service."""
    wanted = {}
    for model in Model.objects.filter(warm_processes__gt=0):
        version = model.versions.order_by("-major", "-minor", "-patch").first()
        if version is not None:
            wanted[str(version.build_id)] = model.warm_processes
    return wanted


# -- webhooks ---------------------------------------------------------------------------------


def webhook_create(*, actor: User, owner: Team, url: str, events: list[str]) -> Webhook:
    if not policies.can_administer(actor, owner):
        raise AuthorizationError(f"Only owners and admins of {owner.slug} can add webhooks")
    if not url.startswith(("http://", "https://")):
        raise InputError("url: must be an http(s) URL", fields={"url": ["invalid"]})
    require_public_url(url, field="url")
    unknown = set(events) - set(WebhookEvent.values)
    if not events or unknown:
        raise InputError(
            f"events: choose from {', '.join(WebhookEvent.values)}", fields={"events": ["invalid"]}
        )
    return Webhook.objects.create(
        owner=owner, url=url, events=sorted(set(events)), secret=secrets.token_hex(24)
    )


def webhook_delete(*, actor: User, webhook: Webhook) -> None:
    if not policies.can_administer(actor, webhook.owner):
        raise AuthorizationError(f"Only owners and admins of {webhook.owner.slug} can do that")
    webhook.delete()


def popularity_refresh() -> int:
    """Calls over the last 30 days per model, for the popular sort and the home page. Rows
    whose count changed are marked for the search index, which ranks by popularity too."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE catalog_model AS m
            SET calls_30d = coalesce(c.calls, 0), search_dirty = true
            FROM catalog_model AS all_models
            LEFT JOIN (
                SELECT model_id, count(*) AS calls FROM gateway_invocation
                WHERE created_at > now() - interval '30 days' GROUP BY model_id
            ) AS c ON c.model_id = all_models.id
            WHERE m.id = all_models.id AND m.calls_30d IS DISTINCT FROM coalesce(c.calls, 0)
            """
        )
        return cursor.rowcount
