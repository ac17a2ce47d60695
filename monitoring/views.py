"""Monitoring pages: a model's figures and errors for its owners, the owners' dashboard, the
request log, and the platform report for staff. Figures come from monitoring.selectors."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from billing import selectors as billing_selectors
from gateway import call_bodies
from marketplace.accounts.principals import Principal
from marketplace.core.errors import InputError

from . import exports, selectors
from .charts import metrics_charts, platform_charts

GROUP_LABELS = {"team": "Team", "model": "Model", "day": "Day"}


def _window(request, default: str):
    """The window the page asks for; on a bad one, the default and the reason."""
    try:
        return selectors.window(request.GET.get("window"), default=default), None
    except InputError as error:
        return selectors.window(default), error.message


@login_required
@require_GET
def model_monitoring(request, owner, name):
    model = selectors.monitored_model_get(Principal.from_request(request), owner, name)
    current, error = _window(request, "24h")
    version = (request.GET.get("version") or "").strip() or None
    metrics = selectors.model_metrics(
        model, start=current.start, end=current.end, bucket=current.bucket, version=version
    )
    context = {
        "model": model,
        "tab": "overview",
        "window": current,
        "windows": selectors.WINDOWS,
        "version": version,
        "versions": selectors.version_choices(model, metrics),
        "metrics": metrics,
        "charts": metrics_charts(metrics),
        "error": error,
    }
    return render(request, "monitoring/model.html", context)


@login_required
@require_GET
def model_errors(request, owner, name):
    model = selectors.monitored_model_get(Principal.from_request(request), owner, name)
    version = (request.GET.get("version") or "").strip() or None
    error_type = (request.GET.get("error_type") or "").strip() or None
    page = selectors.model_errors(
        model, version=version, error_type=error_type, before=request.GET.get("before") or None
    )
    filters = {"version": version or "", "error_type": error_type or ""}
    error_types = selectors.model_error_types(model)
    if error_type and error_type not in error_types:
        error_types.append(error_type)
    context = {
        "model": model,
        "tab": "errors",
        "page": page,
        "version": version,
        "versions": selectors.version_choices(model),
        "error_type": error_type,
        "error_types": error_types,
        "is_first_page": not request.GET.get("before"),
        "first_page_url": _with(request.path, filters),
        "next_url": _with(request.path, filters | {"before": page.next_cursor or ""}),
    }
    return render(request, "monitoring/errors.html", context)


@login_required
@require_GET
def dashboard(request):
    current, error = _window(request, "7d")
    dashboards = selectors.user_dashboards(request.user, start=current.start, end=current.end)
    context = {
        "window": current,
        "windows": selectors.WINDOWS,
        "dashboards": dashboards,
        "error": error,
    }
    return render(request, "monitoring/dashboard.html", context)


@login_required
@require_GET
def request_log(request):
    request_id = (request.GET.get("id") or "").strip()
    context = {"request_id": request_id, "logged": None, "error": None, "kept": None}
    status = 200
    if request_id:
        principal = Principal.from_request(request)
        try:
            context["logged"] = logged = selectors.invocation_lookup(principal, request_id)
            context["kept"] = call_bodies.kept_body_for(principal, logged.invocation)
            context["is_caller"] = principal.is_member(logged.invocation.caller_team)
        except InputError as error:
            context["error"], status = error.message, 400
    return render(request, "monitoring/request.html", context, status=status)


@login_required
@require_GET
def platform_report(request):
    selectors.require_platform_admin(Principal.from_request(request))
    wants_csv = request.GET.get("format") == "csv"
    try:
        query = billing_selectors.report_query_from_params(
            request.GET,
            groups=selectors.PLATFORM_GROUPS,
            default_group_by="team",
            by_project=False,
        )
        error = None
    except InputError as exc:
        if wants_csv:
            raise
        query = billing_selectors.default_query(group_by="team")
        error = exc.message
    report = selectors.platform_usage(query.start, query.end, group_by=query.group_by)
    if wants_csv:
        response = HttpResponse(exports.platform_csv(report), content_type="text/csv")
        response["Content-Disposition"] = f'attachment; filename="{exports.csv_name(report)}"'
        return response
    per_day = (
        report
        if query.group_by == "day"
        else selectors.platform_usage(query.start, query.end, group_by="day")
    )
    page = reverse("monitoring:platform_report")
    exact = {"start": query.start.isoformat(), "end": query.end.isoformat()}
    # A tab keeps the period as chosen: "this month" stays this month tomorrow.
    period = exact if query.preset == billing_selectors.CUSTOM else {"range": query.preset}
    context = {
        "query": query,
        "report": report,
        "error": error,
        "group_label": GROUP_LABELS[query.group_by],
        "presets": [
            (preset, label, preset == query.preset)
            for preset, label in billing_selectors.PRESETS.items()
        ],
        "tabs": [
            (label, _with(page, period | {"group_by": group}), group == query.group_by)
            for group, label in GROUP_LABELS.items()
        ],
        "csv_url": _with(page, exact | {"group_by": query.group_by, "format": "csv"}),
        "charts": platform_charts(report, per_day),
    }
    return render(request, "monitoring/platform_report.html", context)


def _with(path: str, params: dict) -> str:
    params = {name: value for name, value in params.items() if value}
    return f"{path}?{urlencode(params)}" if params else path
