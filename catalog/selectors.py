"""Reads of the catalogue."""

from __future__ import annotations

import re
import time

from django.db import connection
from django.db.models import Count, Max, Q, QuerySet
from django.db.models.functions import Coalesce

from marketplace.accounts.models import Membership, Team
from marketplace.accounts.namespaces import slug_from_client_name
from marketplace.core.change_feed import TableCache, frozen, thawed
from marketplace.core.errors import NotFoundError

from .models import Build, BuildStatus, Model, Version, Visibility


def models_visible_to(principal) -> QuerySet[Model]:
    """Public models, and the private ones of namespaces the principal belongs to."""
    models = Model.objects.select_related("owner")
    if principal is None or principal.user is None:
        return models.filter(visibility=Visibility.PUBLIC)
    if principal.team_key:
        return models.filter(Q(visibility=Visibility.PUBLIC) | Q(owner=principal.key.team))
    # A subquery, not a join: a join on memberships would repeat each public model once
    # per member of its owner.
    mine = Membership.objects.filter(user=principal.user).values("team_id")
    return models.filter(Q(visibility=Visibility.PUBLIC) | Q(owner_id__in=mine))


def private_owner_ids(principal) -> list[int]:
    """The owners whose private models the principal may see: the private half of
    `models_visible_to`, as ids."""
    if principal is None or principal.user is None:
        return []
    if principal.team_key:
        return [principal.key.team_id]
    return sorted(Membership.objects.filter(user=principal.user).values_list("team_id", flat=True))


_models_by_name = TableCache("models", {"catalog_model", "accounts_team"})


def _model_named(owner_slug: str, name: str) -> Model | None:
    """The model owner_slug/name with its owner, whoever may see it; each call gets its own
    instances (the row may be remembered, see core/change_feed.py)."""

    def load():
        model = (
            Model.objects.select_related("owner").filter(owner__slug=owner_slug, slug=name).first()
        )
        return frozen(model, "owner") if model is not None else None

    snapshot = _models_by_name.get((owner_slug, name), load)
    return thawed(snapshot) if snapshot is not None else None


def model_get(principal, owner_slug: str, name: str) -> Model:
    """The model owner/name if the principal may see it, else 404 (a private model is 404 to
    others, never 403). The owner may be written as its Algorithmia client alias
    (`acme_research` for `acme-research`: marketplace/accounts/namespaces.py)."""
    model = _model_named(slug_from_client_name(owner_slug), name)
    if model is None or not (
        model.visibility == Visibility.PUBLIC or (principal and principal.is_member(model.owner))
    ):
        raise NotFoundError(f"No model named {owner_slug}/{name}")
    return model


def owner_get(slug: str) -> Team:
    """A namespace by its slug or its Algorithmia client alias."""
    team = Team.objects.filter(slug=slug_from_client_name(slug)).first()
    if team is None:
        raise NotFoundError(f"No user or team named {slug!r}")
    return team


def builds_of(model: Model) -> QuerySet[Build]:
    return model.builds.order_by("-created_at")


def build_get(principal, model: Model, build_id) -> Build:
    if not (principal and principal.is_member(model.owner)):
        raise NotFoundError(f"No model named {model.full_name}")
    try:
        build = model.builds.filter(pk=build_id).first()
    except (ValueError, TypeError):
        build = None
    if build is None:
        raise NotFoundError(f"No build {build_id} of {model.full_name}")
    return build


def compiled_builds(
    principal, model: Model, *, published: bool | None = None, public: bool | None = None
) -> QuerySet[Build]:
    """The model's versions as Algorithmia counted them: every successful build (a
    "compiled version"), published or not, newest first (when it was published, else
    built), each with its version if it has one. Unpublished builds and private versions
    only to members of the owner; `published` and `public` narrow the list (Algorithmia's
    `published` and `callable` filters)."""
    builds = model.builds.filter(status=BuildStatus.SUCCEEDED)
    if not (principal and principal.is_member(model.owner)):
        builds = builds.filter(versions__visibility=Visibility.PUBLIC)
    if published is not None:
        builds = builds.filter(versions__isnull=not published)
    if public is True:
        builds = builds.filter(versions__visibility=Visibility.PUBLIC)
    elif public is False:
        builds = builds.exclude(versions__visibility=Visibility.PUBLIC)
    # A build has at most one version (catalog.services.version_publish), so grouping by
    # build repeats none.
    return (
        builds.select_related("model", "model__owner")
        .prefetch_related("versions")
        .annotate(listed_at=Coalesce(Max("versions__published_at"), "finished_at", "created_at"))
        .order_by("-listed_at", "-created_at", "-pk")
    )


def compiled_build_by_hash(principal, model: Model, git_hash: str) -> Build:
    """One of `compiled_builds` by its package hash or a prefix of it (12 to 64 hex
    characters, as a version's build hash is written)."""
    text = (git_hash or "").lower()
    if not re.fullmatch(r"[0-9a-f]{12,64}", text):
        raise NotFoundError(f"No version {git_hash} of {model.full_name}")
    found = list(compiled_builds(principal, model).filter(package_hash__startswith=text)[:2])
    if len(found) != 1:
        raise NotFoundError(f"No version {git_hash} of {model.full_name}")
    return found[0]


def build_when_finished(build_id, *, within: float, every: float = 0.5) -> Build:
    """The build once it has finished, or as it is after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        build = Build.objects.select_related("model", "model__owner").get(pk=build_id)
        if build.is_finished or time.monotonic() >= deadline:
            return build
        time.sleep(every)


def versions_visible(principal, model: Model) -> QuerySet[Version]:
    return visible_versions(model, is_member=bool(principal and principal.is_member(model.owner)))


def version_get(principal, model: Model, number: str) -> Version:
    """The version `number` (exactly MAJOR.MINOR.PATCH) of the model, if the principal may
    see it: a private version is 404 to anyone but the owner's members, as a private model
    is."""
    parts = number.split(".")
    if len(parts) != 3 or not all(part.isdigit() and len(part) <= 9 for part in parts):
        raise NotFoundError(f"No version {number} of {model.full_name}")
    major, minor, patch = (int(part) for part in parts)
    version = (
        versions_visible(principal, model).filter(major=major, minor=minor, patch=patch).first()
    )
    if version is None:
        raise NotFoundError(f"No version {number} of {model.full_name}")
    return version


def visible_versions(model: Model, *, is_member: bool) -> QuerySet[Version]:
    """A model's versions, newest first: every one to a member of its owner, the public ones
    to anyone else."""
    versions = model.versions.select_related("build").order_by("-major", "-minor", "-patch")
    if not is_member:
        versions = versions.filter(visibility=Visibility.PUBLIC)
    return versions


def _newest_visible_versions(principal, models) -> QuerySet[Version]:
    """For a page of models, the newest version of each that the principal may see, in one
    query (DISTINCT ON) instead of one per model."""
    versions = Version.objects.filter(model_id__in=[m.pk for m in models])
    if principal is None or principal.user is None:
        versions = versions.filter(visibility=Visibility.PUBLIC)
    elif principal.team_key:
        versions = versions.filter(
            Q(visibility=Visibility.PUBLIC) | Q(model__owner=principal.key.team)
        )
    else:
        mine = Membership.objects.filter(user=principal.user).values("team_id")
        versions = versions.filter(Q(visibility=Visibility.PUBLIC) | Q(model__owner_id__in=mine))
    return versions.order_by("model_id", "-major", "-minor", "-patch").distinct("model_id")


def latest_version_numbers(principal, models) -> dict:
    """Model id -> the newest version number the principal may see, for a page of models."""
    rows = _newest_visible_versions(principal, models).values_list(
        "model_id", "major", "minor", "patch"
    )
    return {model_id: f"{major}.{minor}.{patch}" for model_id, major, minor, patch in rows}


# Trending: the public models called most over the last TRENDING_DAYS days, each with at
# least TRENDING_FLOOR calls there: a model nobody calls is not trending, so with no calls
# the section is empty rather than a copy of "Newest".
TRENDING_DAYS = 7
TRENDING_FLOOR = 3
HOME_CARDS = 6


def recent_call_counts(model_ids, *, days: int) -> dict:
    """Model id -> calls accepted for it over the last `days` days. The gateway's table is
    read in SQL, as `services.popularity_refresh` does: the catalogue sits below the gateway
    and does not import it."""
    ids = [str(model_id) for model_id in model_ids]
    if not ids:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT model_id, count(*) FROM gateway_invocation "
            "WHERE model_id = ANY(%s::uuid[]) AND created_at > now() - make_interval(days => %s) "
            "GROUP BY model_id",
            [ids, days],
        )
        return dict(cursor.fetchall())


def trending_models(*, days: int = TRENDING_DAYS, floor: int = TRENDING_FLOOR, limit: int = 6):
    """Public models by their calls over the last `days` days, those with fewer than `floor`
    left out; ties go to the most called over 30 days, then the most recently updated."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT i.model_id, count(*) AS calls FROM gateway_invocation AS i "
            "JOIN catalog_model AS m ON m.id = i.model_id AND m.visibility = 'public' "
            "WHERE i.created_at > now() - make_interval(days => %s) "
            "GROUP BY i.model_id, m.calls_30d, m.updated_at HAVING count(*) >= %s "
            "ORDER BY calls DESC, m.calls_30d DESC, m.updated_at DESC LIMIT %s",
            [days, floor, limit],
        )
        ranked = cursor.fetchall()
    models = Model.objects.select_related("owner").in_bulk([model_id for model_id, _ in ranked])
    found = []
    for model_id, calls in ranked:
        model = models[model_id]
        model.calls_recent = calls
        found.append(model)
    return found


def with_card_facts(principal, models: list) -> list:
    """The models, each given what its card shows beyond its own row: `card_version` (the
    newest version the principal may see, None for none) and `card_royalty` (that version's
    royalty per call), read for the whole list in one query."""
    newest = {v.model_id: v for v in _newest_visible_versions(principal, models)}
    for model in models:
        version = newest.get(model.pk)
        model.card_version = version.number if version else None
        model.card_royalty = version.royalty_per_call if version else None
    return models


def home_sections(*, user) -> dict:
    """What the home page shows: tasks with counts, trending and newest public models."""
    public = Model.objects.filter(visibility=Visibility.PUBLIC).select_related("owner")
    tasks = (
        public.exclude(task="").values("task").annotate(count=Count("id")).order_by("-count")[:8]
    )
    trending = trending_models(limit=HOME_CARDS)
    newest = list(public.order_by("-created_at")[:HOME_CARDS])
    with_card_facts(None, trending + newest)
    return {
        "tasks": [
            {
                "slug": t["task"],
                "label": t["task"].replace("-", " ").capitalize(),
                "count": t["count"],
            }
            for t in tasks
        ],
        "trending_models": trending,
        "trending_days": TRENDING_DAYS,
        "trending_floor": TRENDING_FLOOR,
        "newest_models": newest,
    }


def public_models() -> QuerySet[Model]:
    """Every public model, for crawlers (the sitemap): never a private one, whoever asks."""
    return (
        Model.objects.filter(visibility=Visibility.PUBLIC)
        .select_related("owner")
        .order_by("owner__slug", "slug")
    )


def public_owners() -> QuerySet[Team]:
    """Namespaces with at least one public model, whose profile pages crawlers may list."""
    owners = Model.objects.filter(visibility=Visibility.PUBLIC).values("owner_id")
    return Team.objects.filter(pk__in=owners).order_by("slug")
