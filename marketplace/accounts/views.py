"""Account pages: sign up, log in/out, password change, teams and members, API keys."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from marketplace.core.errors import ApiError

from . import events, login_throttle, policies, provisioning, selectors, services, sso
from .forms import (
    KeyCreateForm,
    MemberAddForm,
    MemberRoleForm,
    SignUpForm,
    TeamCreateForm,
    TeamUpdateForm,
)
from .models import Role


def _report(request, form, error: ApiError) -> None:
    """Show a service's refusal next to the field it names, or as a message at the top of
    the page (a refusal such as 403 may concern a form the user cannot even see)."""
    fields = error.fields or {}
    field = next((name for name in fields if form is not None and name in form.fields), None)
    if field:
        message = error.message.split(": ", 1)[1] if ": " in error.message else error.message
        form.add_error(field, message)
    else:
        messages.error(request, error.message)


class ThrottledLoginView(LoginView):
    """Django's log-in, with failed attempts throttled per username and per address (see
    login_throttle): a locked-out attempt is answered 429 before the password is checked."""

    template_name = "accounts/login.html"
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs):
        return {
            **super().get_context_data(**kwargs),
            "sso_enabled": sso.enabled(),
            "sso_name": sso.provider_name(),
        }

    def form_valid(self, form):
        team = provisioning.password_sign_in_refusal(form.get_user())
        if team is None:
            return super().form_valid(form)
        events.announce(
            events.LOGIN_SSO_REQUIRED,
            actor=form.get_user(),
            request=self.request,
            target=form.get_user(),
            team=team,
            after={"team": team.slug},
        )
        form.add_error(
            None,
            f"Members of {team.slug} sign in with {sso.provider_name()}'s sign-on, not a password.",
        )
        return self.render_to_response(self.get_context_data(form=form), status=403)

    def post(self, request, *args, **kwargs):
        username = request.POST.get("username", "")
        lockout = login_throttle.login_lockout(request, username)
        if lockout is not None:
            login_throttle.login_throttled(request, username, lockout)
            response = render(
                request,
                "accounts/login_throttled.html",
                {"wait": login_throttle.human_wait(lockout.retry_after)},
                status=429,
            )
            response["Retry-After"] = str(lockout.retry_after)
            return response
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form):
        login_throttle.login_failed(self.request, form.data.get("username", ""))
        return super().form_invalid(form)


def _safe_next(request) -> str:
    """The `next` page of a sign-up, when it is a page of this site: never another host,
    scheme or a `//host` path (an open redirect)."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return ""


@require_http_methods(["GET", "POST"])
def sign_up(request):
    next_page = _safe_next(request)
    if request.user.is_authenticated:
        return redirect(next_page or "catalog:home")
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            user = services.user_sign_up(
                username=data["username"], email=data["email"], password=data["password1"]
            )
        except ApiError as error:
            if error.fields and "password" in error.fields:
                form.add_error("password1", " ".join(error.fields["password"]))
            else:
                _report(request, form, error)
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(request, f"Welcome, {user.username}! Your namespace is ready.")
            return redirect(next_page or "accounts:team_list")
    return render(request, "accounts/signup.html", {"form": form, "next": next_page})


def _sso_destination(request, candidate: str) -> str:
    """Where a company sign-on ends: `candidate` when it is a page of this site."""
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return reverse(settings.LOGIN_REDIRECT_URL)


_SSO_NEXT = "sso_next"


@require_GET
def sso_start(request):
    """Off to the company's identity provider; it sends the person back to sso_callback."""
    if not sso.enabled():
        raise Http404("Company sign-on is not configured")
    request.session[_SSO_NEXT] = _sso_destination(request, request.GET.get("next", ""))
    try:
        return sso.begin(request, request.build_absolute_uri(reverse("accounts:sso_callback")))
    except sso.SignOnError as error:
        return _sso_failed(request, error)


@require_GET
def sso_callback(request):
    if not sso.enabled():
        raise Http404("Company sign-on is not configured")
    try:
        user = provisioning.sign_on(sso.complete(request))
    except sso.SignOnError as error:
        return _sso_failed(request, error)
    destination = _sso_destination(request, request.session.pop(_SSO_NEXT, ""))
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    return redirect(destination)


def _sso_failed(request, error):
    provisioning.record_failure(error, request=request)
    return render(
        request,
        "accounts/sso_failed.html",
        {"message": error.message, "sso_name": sso.provider_name()},
        status=error.status,
    )


@login_required
@require_http_methods(["GET", "POST"])
def sign_on_mappings(request):
    """Platform staff map the provider's groups to teams and roles."""
    if not request.user.is_staff:
        raise Http404
    if request.method == "POST":
        try:
            if request.POST.get("action") == "delete":
                provisioning.mapping_delete(
                    actor=request.user,
                    mapping=selectors.group_mapping_get(request.POST.get("mapping", "")),
                )
                messages.success(
                    request,
                    "Mapping removed. It applies at each member's next sign-in or re-check.",
                )
            else:
                mapping = provisioning.mapping_create(
                    actor=request.user,
                    group=request.POST.get("group", ""),
                    team_slug=request.POST.get("team", ""),
                    role=request.POST.get("role", ""),
                )
                messages.success(
                    request, f"{mapping.group} now gives {mapping.role} in {mapping.team.slug}."
                )
            return redirect("accounts:sign_on_mappings")
        except ApiError as error:
            messages.error(request, error.message)
    return render(
        request,
        "accounts/sign_on_mappings.html",
        {
            "mappings": selectors.group_mappings(),
            "roles": Role.choices,
            "sso_enabled": sso.enabled(),
            "sso_name": sso.provider_name(),
            "refresh_minutes": max(1, settings.OIDC_REFRESH_SECONDS // 60),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def team_list(request):
    form = TeamCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            team = services.team_create(actor=request.user, **form.cleaned_data)
        except ApiError as error:
            _report(request, form, error)
        else:
            messages.success(request, f"Team {team.slug} created. You are its owner.")
            return redirect("accounts:team_detail", slug=team.slug)
    teams = selectors.teams_for_user(request.user)
    return render(request, "accounts/team_list.html", {"teams": teams, "form": form})


@login_required
@require_http_methods(["GET", "POST"])
def team_detail(request, slug):
    team = selectors.team_for_member(request.user, slug)
    can_administer = policies.can_administer(request.user, team)
    update_form = TeamUpdateForm(initial={"name": team.name, "description": team.description})
    add_form = MemberAddForm()
    if request.method == "POST":
        action = request.POST.get("action")
        form = None
        try:
            if action == "update":
                form = update_form = TeamUpdateForm(request.POST)
                if form.is_valid():
                    services.team_update(actor=request.user, team=team, **form.cleaned_data)
                    messages.success(request, "Team details saved.")
                    return redirect("accounts:team_detail", slug=team.slug)
            elif action == "add_member":
                form = add_form = MemberAddForm(request.POST)
                if form.is_valid():
                    membership = services.membership_add(
                        actor=request.user, team=team, **form.cleaned_data
                    )
                    messages.success(
                        request, f"{membership.user.username} added as {membership.role}."
                    )
                    return redirect("accounts:team_detail", slug=team.slug)
            elif action == "change_role":
                form = MemberRoleForm(request.POST)
                if form.is_valid():
                    membership = selectors.membership_get(team, request.POST.get("username", ""))
                    services.membership_change_role(
                        actor=request.user, membership=membership, role=form.cleaned_data["role"]
                    )
                    messages.success(
                        request, f"{membership.user.username} is now {membership.role}."
                    )
                    return redirect("accounts:team_detail", slug=team.slug)
                messages.error(request, "Choose a valid role.")
            elif action == "remove_member":
                membership = selectors.membership_get(team, request.POST.get("username", ""))
                services.membership_remove(actor=request.user, membership=membership)
                if membership.user_id == request.user.pk:
                    messages.success(request, f"You left {team.slug}.")
                    return redirect("accounts:team_list")
                messages.success(request, f"{membership.user.username} removed.")
                return redirect("accounts:team_detail", slug=team.slug)
            elif action == "deprovision":
                user = provisioning.deprovision_member(
                    actor=request.user, team=team, username=request.POST.get("username", "")
                )
                messages.success(
                    request,
                    f"{user.username} is locked out: sessions ended, API keys revoked.",
                )
                return redirect("accounts:team_detail", slug=team.slug)
            elif action == "require_sso":
                team = provisioning.team_require_sign_on(
                    actor=request.user, team=team, required=request.POST.get("required") == "1"
                )
                messages.success(
                    request,
                    "Members must now use company sign-on."
                    if team.require_sso
                    else "Members may sign in with a password again.",
                )
                return redirect("accounts:team_detail", slug=team.slug)
            elif action == "rotate_signing_secret":
                services.team_rotate_signing_secret(team=team, actor=request.user)
                messages.success(
                    request,
                    "New webhook signing secret made. Webhooks are signed with it from now "
                    "on: give it to their receivers.",
                )
                return redirect("accounts:team_detail", slug=team.slug)
            elif action == "delete":
                services.team_delete(actor=request.user, team=team)
                messages.success(request, f"Team {slug} deleted.")
                return redirect("accounts:team_list")
            else:
                messages.error(request, "Unknown action.")
        except ApiError as error:
            _report(request, form if form is not None and form.is_bound else None, error)
    context = {
        "team": team,
        "memberships": selectors.team_memberships(team),
        "can_administer": can_administer,
        "is_owner": policies.is_owner(request.user, team),
        "can_publish": policies.can_publish(request.user, team),
        "roles": Role.choices,
        "sso_enabled": sso.enabled(),
        "sso_name": sso.provider_name(),
        "signed_on": selectors.signed_on_user_ids(team),
        "update_form": update_form,
        "add_form": add_form,
    }
    return render(request, "accounts/team_detail.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def key_list(request):
    services.personal_namespace_ensure(user=request.user)
    teams = list(selectors.teams_user_administers(request.user))
    # Coming from a team's page (?team=slug), the new key is for that team.
    chosen = request.GET.get("team", "")
    initial = {"team": chosen if any(t.slug == chosen for t in teams) else request.user.username}
    form = KeyCreateForm(request.POST or None, teams=teams, initial=initial)
    created = None
    if request.method == "POST" and form.is_valid():
        team = next(t for t in teams if t.slug == form.cleaned_data["team"])
        try:
            key, secret = services.api_key_create(
                actor=request.user,
                team=team,
                name=form.cleaned_data["name"],
                scopes=form.scopes(),
                project=form.cleaned_data["project"],
                expires_at=form.expires_at(),
            )
        except ApiError as error:
            if error.fields and "scopes" in error.fields:
                form.add_error("model_patterns", error.fields["scopes"][0])
            else:
                _report(request, form, error)
        else:
            # The secret is rendered in this response only; it is never stored or redirected.
            created = {"key": key, "secret": secret}
            form = KeyCreateForm(teams=teams, initial=initial)
    keys = selectors.api_keys_visible_to(request.user)
    status = 201 if created else 200
    return render(
        request,
        "accounts/key_list.html",
        {"keys": keys, "form": form, "created": created},
        status=status,
    )


@login_required
@require_POST
def key_revoke(request, key_id):
    try:
        key = services.api_key_revoke(
            actor=request.user, key=selectors.api_key_get(request.user, key_id)
        )
    except ApiError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"Key {key.name} ({key.prefix}…) revoked.")
    return redirect("accounts:key_list")
