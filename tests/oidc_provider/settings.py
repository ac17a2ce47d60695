import os
from pathlib import Path

HERE = Path(__file__).resolve().parent
SECRET_KEY = os.environ.get("OIDC_TEST_SECRET_KEY", "test-provider-only")
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "tests.oidc_provider.urls"
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "oidc_provider",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [HERE / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    }
]
DATABASES = {
    "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.environ["OIDC_TEST_DATABASE"]}
}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
USE_TZ = True
LOGIN_URL = "/login/"
SITE_URL = os.environ["OIDC_TEST_SITE_URL"]
OIDC_EXTRA_SCOPE_CLAIMS = "tests.oidc_provider.claims.GroupClaims"
OIDC_IDTOKEN_INCLUDE_CLAIMS = True
OIDC_SKIP_CONSENT_ALWAYS = True
OIDC_IDTOKEN_EXPIRE = 600
OIDC_TOKEN_EXPIRE = 600
OIDC_USERINFO = "tests.oidc_provider.claims.userinfo"
CONTROL_TOKEN = os.environ["OIDC_TEST_CONTROL_TOKEN"]
