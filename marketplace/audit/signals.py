"""What the trail records from signals: what accounts announce (marketplace/accounts/events.py:
teams, memberships, keys, refused log-ins), and log-ins and failed log-ins from Django's
authentication signals. The user name that was
tried is recorded; the password never is (Django hands receivers the credentials with the
password already masked, and we do not store them anyway)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.dispatch import receiver

from marketplace.accounts.events import account_changed
from marketplace.accounts.models import Team

from .models import Action, Via
from .services import audit_record

USERNAME_LENGTH = 150


@receiver(account_changed, dispatch_uid="marketplace.audit.account_changed")
def record_account_change(sender, action, signal=None, **details):
    return audit_record(action=action, **details)


@receiver(user_login_failed, dispatch_uid="marketplace.audit.login_failed")
def record_login_failed(sender, credentials, request=None, **kwargs):
    username_field = get_user_model().USERNAME_FIELD
    tried = str(credentials.get(username_field) or credentials.get("username") or "")
    tried = tried[:USERNAME_LENGTH]
    user = get_user_model().objects.filter(**{username_field: tried}).first() if tried else None
    audit_record(
        action=Action.LOGIN_FAILED,
        request=request,
        # The account's owner sees attempts on it in their personal namespace's trail.
        team=_personal_team(user),
        target_type="user",
        target_id=str(user.pk) if user is not None else "",
        target_repr=tried,
        after={"username": tried, "known_user": user is not None},
    )


@receiver(user_logged_in, dispatch_uid="marketplace.audit.logged_in")
def record_logged_in(sender, request, user, **kwargs):
    audit_record(
        action=Action.LOGIN_SUCCEEDED,
        actor=user,
        request=request,
        target=user,
        team=_personal_team(user),
        via=Via.SESSION,
    )


def _personal_team(user) -> Team | None:
    if user is None:
        return None
    return Team.objects.filter(personal_owner=user).first()
