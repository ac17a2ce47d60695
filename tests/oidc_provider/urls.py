from django.contrib.auth import views as auth_views
from django.urls import include, path

from . import control

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(template_name="login.html"), name="login"),
    path("control/users", control.user_put),
    path("control/clients", control.client_put),
    path("control/rotate-key", control.rotate_key),
    path("control/token-mode", control.token_mode),
    path("openid/token", control.token),
    path("openid/", include("oidc_provider.urls", namespace="oidc_provider")),
]
