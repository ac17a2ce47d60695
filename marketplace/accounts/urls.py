from django.contrib.auth import views as auth_views
from django.urls import path, reverse_lazy

from . import views

app_name = "accounts"

urlpatterns = [
    path("accounts/signup/", views.sign_up, name="signup"),
    path("accounts/login/", views.ThrottledLoginView.as_view(), name="login"),
    path("accounts/sso/start/", views.sso_start, name="sso_start"),
    path("accounts/sso/callback/", views.sso_callback, name="sso_callback"),
    path("staff/sign-on/", views.sign_on_mappings, name="sign_on_mappings"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "accounts/password/",
        auth_views.PasswordChangeView.as_view(
            template_name="accounts/password_change.html",
            success_url=reverse_lazy("accounts:password_change_done"),
        ),
        name="password_change",
    ),
    path(
        "accounts/password/done/",
        auth_views.PasswordChangeDoneView.as_view(
            template_name="accounts/password_change_done.html"
        ),
        name="password_change_done",
    ),
    path("teams/", views.team_list, name="team_list"),
    path("teams/<slug:slug>/", views.team_detail, name="team_detail"),
    path("keys/", views.key_list, name="key_list"),
    path("keys/<uuid:key_id>/revoke/", views.key_revoke, name="key_revoke"),
]
