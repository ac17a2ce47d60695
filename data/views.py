"""Pages of hosted data: a namespace's collections, a collection's folders and files
(upload, download, new folders, deletes, read permission) and the namespace's connectors.
Each page goes through the same selectors and services as the data API, as the signed-in
user (data/permissions.py), so what a page shows and allows is what the API would."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_http_methods

from marketplace.accounts import policies
from marketplace.accounts.principals import Principal
from marketplace.accounts.selectors import teams_for_user
from marketplace.core.errors import ApiError, NotFoundError

from . import connector_services, selectors, services
from .connector_selectors import team_connectors
from .connector_services import ConnectorInput
from .forms import CollectionAclForm, CollectionCreateForm, ConnectorForm, DirectoryCreateForm
from .models import ACL_STRINGS, Collection, Connector
from .paths import DataPath, entry_name, parse_data_path
from .permissions import DataActor, can_write
from .storage import configured_storage


def _actor(request) -> DataActor:
    return DataActor(Principal(request.user))


def _team(request, slug: str):
    try:
        return selectors.owner_team(_actor(request), DataPath(slug.lower()))
    except NotFoundError:
        raise Http404(f"no such namespace {slug}") from None


def _failed(request, template: str, context: dict, error: ApiError):
    messages.error(request, error.message)
    return render(request, template, context, status=error.status_code)


def _usage(team) -> dict:
    usage = selectors.usage_of(team)
    used = usage.bytes_used if usage is not None else 0
    quota = selectors.quota_of(usage)
    return {"used": used, "quota": quota, "percent": min(100, used * 100 // quota) if quota else 0}


@login_required
def data_home(request):
    teams = list(teams_for_user(request.user))
    counts = {
        row["team"]: row["n"]
        for row in Collection.objects.filter(team__in=teams).values("team").annotate(n=Count("pk"))
    }
    rows = [{"team": team, "collections": counts.get(team.pk, 0)} for team in teams]
    return render(request, "data/home.html", {"rows": rows})


@login_required
@require_http_methods(["GET", "POST"])
def collection_list(request, team: str):
    owner = _team(request, team)
    actor = _actor(request)
    form = CollectionCreateForm()
    context = {
        "owner": owner,
        "form": form,
        "can_write": can_write(actor, owner),
        "is_member": actor.principal.is_member(owner),
        "usage": _usage(owner),
        "max_file_bytes": settings.DATA_MAX_FILE_BYTES,
    }
    marker = request.GET.get("marker")
    try:
        page = selectors.collections_page(actor, owner, marker=marker)
    except ApiError as error:
        raise Http404(error.message) from None
    context["page"] = page
    if request.method == "POST":
        form = context["form"] = CollectionCreateForm(request.POST)
        if form.is_valid():
            try:
                collection = services.collection_create(
                    actor=actor,
                    path=DataPath(owner.slug),
                    name=form.cleaned_data["name"],
                    acl={"read": ACL_STRINGS[form.cleaned_data["read_acl"]]},
                )
            except ApiError as error:
                return _failed(request, "data/collections.html", context, error)
            messages.success(request, f"Created data://{owner.slug}/{collection.name}.")
            return redirect("data:browse", team=owner.slug, collection=collection.name)
        return render(request, "data/collections.html", context, status=400)
    return render(request, "data/collections.html", context)


def _crumbs(owner, collection: str, parts: tuple[str, ...]) -> list[dict]:
    crumbs = [{"name": collection, "url": reverse("data:browse", args=[owner.slug, collection])}]
    for depth in range(len(parts)):
        crumbs.append(
            {
                "name": parts[depth],
                "url": reverse(
                    "data:browse_path",
                    args=[owner.slug, collection, "/".join(parts[: depth + 1])],
                ),
            }
        )
    return crumbs


def _download(entry):
    chunks = configured_storage().open(entry.storage_key)
    response = StreamingHttpResponse(chunks, content_type="application/octet-stream")
    response["Content-Length"] = str(entry.size)
    response["Content-Disposition"] = content_disposition_header(True, entry.name)
    response["X-Content-Type-Options"] = "nosniff"
    return response


@login_required
@require_http_methods(["GET", "POST"])
def browse(request, team: str, collection: str, path: str = ""):
    owner = _team(request, team)
    actor = _actor(request)
    try:
        target = parse_data_path(f"{owner.slug}/{collection}" + (f"/{path}" if path else ""))
        found = selectors.object_get(actor, target)
    except ApiError as error:
        raise Http404(error.message) from None
    if found.is_file:
        return _download(found.entry)
    if request.method == "POST":
        # Django's upload handlers keep an uploaded file in memory only up to
        # FILE_UPLOAD_MAX_MEMORY_SIZE (2.5 MB), and write a bigger one to a temporary file
        # as it arrives; the size limit and quota are then checked by file_write.
        return _browse_post(request, owner, found.collection, target)
    return _browse_page(request, owner, found.collection, target)


def _browse_context(request, owner, collection: Collection, target: DataPath) -> dict:
    actor = _actor(request)
    page = selectors.directory_page(collection, target.relative, marker=request.GET.get("marker"))
    return {
        "owner": owner,
        "collection": collection,
        "target": target,
        "page": page,
        "crumbs": _crumbs(owner, collection.name, target.parts),
        "can_write": can_write(actor, owner),
        "acl_form": CollectionAclForm(initial={"read_acl": collection.read_acl}),
        "directory_form": DirectoryCreateForm(),
        "usage": _usage(owner),
        "max_file_bytes": settings.DATA_MAX_FILE_BYTES,
        "here": request.path,
    }


def _browse_page(request, owner, collection, target, status=200):
    context = _browse_context(request, owner, collection, target)
    return render(request, "data/browse.html", context, status=status)


def _browse_post(request, owner, collection, target: DataPath):
    actor = _actor(request)
    try:
        action = request.POST.get("action", "")
        if action == "upload":
            uploaded = request.FILES.get("file")
            if uploaded is None:
                raise services.InputError("choose a file to upload")
            name = entry_name(uploaded.name or "")
            path = DataPath(target.owner, target.collection, (*target.parts, name))
            with uploaded:
                services.file_write(
                    actor=actor, path=path, source=uploaded, declared_size=uploaded.size
                )
            messages.success(request, f"Uploaded {name} ({uploaded.size:,} bytes).")
        elif action == "mkdir":
            form = DirectoryCreateForm(request.POST)
            if not form.is_valid():
                raise services.InputError("give the new folder a name")
            services.directory_create(actor=actor, path=target, name=form.cleaned_data["name"])
            messages.success(request, f"Created the folder {form.cleaned_data['name']}.")
        elif action == "delete":
            name = entry_name(request.POST.get("name", ""))
            path = DataPath(target.owner, target.collection, (*target.parts, name))
            deleted = services.object_delete(actor=actor, path=path, force=True)
            messages.success(request, f"Deleted {name} ({deleted} file(s)).")
        elif action == "acl" and not target.parts:
            form = CollectionAclForm(request.POST)
            if not form.is_valid():
                raise services.InputError("choose who may read the collection")
            acl = {"read": ACL_STRINGS[form.cleaned_data["read_acl"]]}
            services.collection_set_acl(actor=actor, path=target, acl=acl)
            messages.success(request, "Read permission saved.")
        elif action == "delete_collection" and not target.parts:
            deleted = services.object_delete(actor=actor, path=target, force=True)
            messages.success(request, f"Deleted {target.uri()} ({deleted} file(s)).")
            return redirect("data:collections", team=owner.slug)
        else:
            raise services.InputError("unknown action")
    except ApiError as error:
        messages.error(request, error.message)
        collection.refresh_from_db()
        return _browse_page(request, owner, collection, target, status=error.status_code)
    return redirect(request.path)


# -- connectors -------------------------------------------------------------------------------


def _connector_input(data: dict) -> ConnectorInput:
    return ConnectorInput(
        name=data["name"],
        bucket=data["bucket"],
        endpoint_url=data.get("endpoint_url") or "",
        region=data.get("region") or "us-east-1",
        prefix=data.get("prefix") or "",
        access_key_id=data["access_key_id"],
    )


def _form_failed(form, error: ApiError) -> None:
    fields = getattr(error, "fields", None) or {}
    placed = False
    for field in fields:
        if field in form.fields:
            form.add_error(field, error.message)
            placed = True
    if not placed:
        form.add_error(None, error.message)


@login_required
@require_http_methods(["GET", "POST"])
def connector_list(request, team: str):
    owner = _team(request, team)
    principal = Principal(request.user)
    if not principal.is_member(owner):
        raise Http404("no such namespace")
    can_manage = policies.can_administer(request.user, owner)
    form = ConnectorForm()
    status = 200
    if request.method == "POST":
        form = ConnectorForm(request.POST)
        if form.is_valid():
            try:
                connector = connector_services.connector_create(
                    principal=principal,
                    team=owner,
                    given=_connector_input(form.cleaned_data),
                    secret=form.cleaned_data["secret"],
                )
            except ApiError as error:
                _form_failed(form, error)
                status = error.status_code
            else:
                messages.success(request, f"Connected s3://{connector.name}.")
                return redirect("data:connectors", team=owner.slug)
        else:
            status = 400
    context = {
        "owner": owner,
        "connectors": team_connectors(owner),
        "form": form,
        "can_manage": can_manage,
    }
    return render(request, "data/connectors.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def connector_edit(request, team: str, name: str):
    owner = _team(request, team)
    principal = Principal(request.user)
    connector = Connector.objects.filter(team=owner, name=name).select_related("team").first()
    if connector is None or not policies.can_administer(request.user, owner):
        raise Http404("no such connector")
    initial = {
        field: getattr(connector, field)
        for field in ("name", "bucket", "endpoint_url", "region", "prefix", "access_key_id")
    }
    form = ConnectorForm(initial=initial, editing=True, hint=connector.secret_hint)
    status = 200
    if request.method == "POST":
        try:
            if request.POST.get("action") == "delete":
                connector_services.connector_delete(principal=principal, connector=connector)
                messages.success(request, f"Removed the connector s3://{connector.name}.")
                return redirect("data:connectors", team=owner.slug)
            form = ConnectorForm(request.POST, editing=True, hint=connector.secret_hint)
            if form.is_valid():
                connector = connector_services.connector_update(
                    principal=principal,
                    connector=connector,
                    given=_connector_input(form.cleaned_data),
                    secret=form.cleaned_data.get("secret") or "",
                )
                messages.success(request, f"Saved s3://{connector.name}.")
                return redirect("data:connectors", team=owner.slug)
            status = 400
        except ApiError as error:
            _form_failed(form, error)
            status = error.status_code
    context = {"owner": owner, "connector": connector, "form": form}
    return render(request, "data/connector_edit.html", context, status=status)
