"""Catalogue pages: explore, a model's page, publishing (upload, live build, publish)."""

from __future__ import annotations

import tempfile
from pathlib import Path, PurePosixPath

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from marketplace.accounts import policies
from marketplace.accounts import selectors as account_selectors
from marketplace.accounts.principals import Principal
from marketplace.core.errors import ApiError, InputError

from . import selectors, services
from .api import newest_key_prefix
from .console import console_context
from .models import BuildStatus
from .pages import model_card_facts, model_page_context
from .search import CatalogQuery, corrections, navigation, search
from .search.queries import MAX_PAGE
from .snippets import context_for_version, highlight_css, render_all


@require_GET
def home(request):
    return render(request, "core/home.html", selectors.home_sections(user=request.user))


@require_GET
def explore(request):
    """Search results. With `X-Live-Search: 1` (the page's own script, while typing) only the
    results fragment is rendered, so the page updates in place."""
    principal = Principal.from_request(request)
    live = request.headers.get("X-Live-Search") == "1"
    try:
        query = CatalogQuery.from_params(request.GET)
    except ApiError as error:
        if live:
            return render(
                request, "catalog/_search_error.html", {"error": error.message}, status=400
            )
        messages.error(request, error.message)
        query = CatalogQuery()
    found = search(principal, query)
    selectors.with_card_facts(principal, found.models)
    pages = max(1, -(-found.count // query.page_size))
    filters = navigation.active_filters(query)
    context = {
        "query": query.text,
        "search": query,
        "models": found.models,
        "count": found.count,
        # More match than were counted: "10,000+ models", facets from a sample.
        "count_is_lower_bound": found.count_is_lower_bound,
        "facets": navigation.facet_links(query, found.facets),
        "active_filters": filters,
        "clear_filters_url": navigation.query_string(
            CatalogQuery(text=query.text, sort=query.sort)
        ),
        # The words as typed found nothing (or far less): these are the corrected words'
        # results; the visitor may insist on the words as typed (verbatim).
        "corrected_query": found.corrected_query,
        "corrected_url": navigation.query_string(query, text=found.corrected_query, page=1),
        "verbatim_url": navigation.query_string(query, verbatim=True, page=1),
        "corrections": [
            (text, navigation.query_string(query, text=text, page=1))
            for text in (
                corrections(principal, query.text) if query.text and not found.count else []
            )
        ],
        "page": query.page,
        "pages": pages,
        "previous_url": navigation.query_string(query, page=query.page - 1),
        "next_url": navigation.query_string(query, page=query.page + 1),
        "sorts": [("relevance", "Best match"), ("popular", "Most used"), ("recent", "Newest")],
        # Only a sort the visitor chose is kept when the words change: "best match" with no
        # words lists the most used first, and a new search is ranked by relevance.
        "chosen_sort": request.GET.get("sort") or "relevance",
    }
    template = "catalog/_search_results.html" if live else "catalog/explore.html"
    response = render(request, template, context)
    patch_vary_headers(response, ["X-Live-Search"])
    return response


@require_GET
def owner_page(request, owner):
    """A user's or team's public profile: who they are and the models the viewer may see."""
    team = selectors.owner_get(owner)
    principal = Principal.from_request(request)
    try:
        page = min(max(1, int(request.GET.get("page") or 1)), MAX_PAGE)
    except ValueError:
        page = 1
    found = search(
        principal,
        CatalogQuery(owner=team.slug, sort="popular", page=page, page_size=24, facets=("task",)),
    )
    selectors.with_card_facts(principal, found.models)
    context = {
        "team": team,
        "models": found.models,
        "count": found.count,
        "page": page,
        "pages": max(1, -(-found.count // 24)),
        "previous_url": f"?page={page - 1}",
        "next_url": f"?page={page + 1}",
        "tasks": found.facets.get("task", []),
        "is_member": principal.is_member(team),
    }
    return render(request, "catalog/owner.html", context)


@require_GET
def model_page(request, owner, name):
    return _model_page(request, owner, name, number=None)


@require_GET
def version_page(request, owner, name, number):
    """One version's own page: its README, release notes, schema, and snippets and a console
    that call exactly that version."""
    return _model_page(request, owner, name, number=number)


def _model_page(request, owner, name, *, number):
    principal = Principal.from_request(request)
    model = selectors.model_get(principal, owner, name)
    is_member = principal.is_member(model.owner)
    versions = list(selectors.versions_visible(principal, model)[:50])
    latest = versions[0] if versions else None
    shown = selectors.version_get(principal, model, number) if number else latest
    snippets, snippet_css, key_prefix = [], "", None
    if shown is not None:
        key_prefix = newest_key_prefix(request.user)
        snippets = render_all(context_for_version(shown, key_prefix=key_prefix))
        snippet_css = highlight_css()
    context = {
        "model": model,
        "versions": versions,
        "snippets": snippets,
        "snippet_css": snippet_css,
        "key_prefix": key_prefix,
        "latest": latest,
        # The version the page is about: the one asked for, else the newest.
        "shown": shown,
        "pinned": number is not None,
        "card": model_card_facts(model, shown),
        "is_member": is_member,
        "builds": list(selectors.builds_of(model)[:20]) if is_member and not number else [],
        **model_page_context(model, is_member=is_member),
        # A version's page calls that version; the model page lets the reader pick.
        **console_context(
            request=request, model=model, versions=versions, version=shown if number else None
        ),
    }
    return render(request, "catalog/model.html", context)


def _publishable_namespaces(user):
    return [t for t in account_selectors.teams_for_user(user) if policies.can_publish(user, t)]


@login_required
@require_http_methods(["GET", "POST"])
def upload(request):
    namespaces = _publishable_namespaces(request.user)
    if request.method == "POST":
        owner_slug = request.POST.get("owner", "")
        team = next((t for t in namespaces if t.slug == owner_slug), None)
        try:
            if team is None:
                raise InputError("Choose a namespace you can publish to.")
            build = _build_from_upload(request, team)
        except ApiError as error:
            messages.error(request, error.message)
        else:
            return redirect(
                "catalog:build", owner=team.slug, name=build.model.slug, build_id=build.pk
            )
    # A team's page links here with ?owner=slug; otherwise the personal namespace.
    chosen = request.POST.get("owner") or request.GET.get("owner") or request.user.username
    return render(
        request, "catalog/upload.html", {"namespaces": namespaces, "chosen_owner": chosen}
    )


def _build_from_upload(request, team):
    overrides = {"name": request.POST.get("name", "").strip()}
    archive = request.FILES.get("package")
    folder_files = request.FILES.getlist("files")
    with tempfile.TemporaryDirectory(prefix="upload-") as tmp:
        if archive is not None:
            source = Path(tmp) / "package"
            with source.open("wb") as handle:
                for chunk in archive.chunks():
                    handle.write(chunk)
            filename = archive.name
        elif folder_files:
            # A folder picked in the browser arrives as files plus their relative paths.
            paths = request.POST.getlist("paths")
            if len(paths) != len(folder_files):
                raise InputError("The folder upload is incomplete; pick the folder again.")
            source = Path(tmp) / "folder"
            source.mkdir()
            for upload_file, relative in zip(folder_files, paths, strict=True):
                target = _safe_join(source, relative)
                try:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with target.open("xb") as handle:
                        for chunk in upload_file.chunks():
                            handle.write(chunk)
                except (FileExistsError, NotADirectoryError, IsADirectoryError):
                    raise InputError(
                        f"The folder upload has the path {relative!r} twice, or both as a file "
                        "and as a folder"
                    ) from None
            filename = None
        else:
            raise InputError(
                "Choose a .zip or .tar.gz of your model, an .onnx or .skops file, or a folder."
            )
        build, _created = services.build_create(
            actor=request.user,
            owner=team,
            source=source,
            filename=filename,
            overrides=overrides,
        )
    return build


def _safe_join(root: Path, relative: str) -> Path:
    parts = PurePosixPath(relative.replace("\\", "/")).parts
    if (
        not parts
        or any(p in ("..", "") or len(p.encode("utf-8", "surrogatepass")) > 255 for p in parts)
        or relative.startswith("/")
        or any(ord(char) < 32 for char in relative)
    ):
        raise InputError(f"Refusing the file path {relative!r} in the folder upload")
    return root.joinpath(*parts)


@login_required
@require_GET
def build_page(request, owner, name, build_id):
    principal = Principal.from_request(request)
    model = selectors.model_get(principal, owner, name)
    build = selectors.build_get(principal, model, build_id)
    latest = selectors.versions_visible(principal, model).first()
    context = {
        "model": model,
        "build": build,
        "published_as": build.versions.first(),
        "latest": latest,
        "can_publish": policies.can_publish(request.user, model.owner),
        "running": build.status in (BuildStatus.QUEUED, BuildStatus.BUILDING),
    }
    return render(request, "catalog/build.html", context)


@login_required
@require_POST
def anonymous_tries(request, owner, name):
    """The model's setting that lets visitors try it without an account (owners, admins)."""
    principal = Principal.from_request(request)
    model = selectors.model_get(principal, owner, name)
    allowed = request.POST.get("allowed") == "on"
    try:
        services.model_set_anonymous_tries(actor=request.user, model=model, allowed=allowed)
    except ApiError as error:
        messages.error(request, error.message)
    else:
        messages.success(
            request,
            "Visitors without an account may now try this model (a few calls a day each)."
            if allowed
            else "Only signed-in users may try this model now.",
        )
    return redirect(reverse("catalog:model", args=[owner, name]) + "#try-it")


@login_required
@require_POST
def publish(request, owner, name, build_id):
    principal = Principal.from_request(request)
    model = selectors.model_get(principal, owner, name)
    build = selectors.build_get(principal, model, build_id)
    try:
        version = services.version_publish(
            actor=request.user,
            model=model,
            build=build,
            bump=request.POST.get("bump", ""),
            visibility=request.POST.get("visibility", ""),
            release_notes=request.POST.get("release_notes", ""),
        )
    except ApiError as error:
        messages.error(request, error.message)
        return redirect("catalog:build", owner=owner, name=name, build_id=build.pk)
    messages.success(
        request, f"Published {model.full_name} {version.number} ({version.visibility})."
    )
    return redirect("catalog:model", owner=owner, name=name)
