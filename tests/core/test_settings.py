"""Settings come from the environment; production refuses unsafe defaults."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _import_settings(**env) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "SECRET_KEY"}}
    return subprocess.run(
        [sys.executable, "-c", "import marketplace.settings"],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("env", "complaint"),
    [
        ({"DEBUG": "true", "SECRET_KEY": "s3cret-for-real"}, "DEBUG must be off"),
        ({"DEBUG": "false"}, "SECRET_KEY must be set"),
        ({"DEBUG": "false", "SECRET_KEY": ""}, "SECRET_KEY must be set"),
        (
            {"SECRET_KEY": "development-only-secret-key-do-not-use-in-production"},
            "SECRET_KEY must be set",
        ),
        ({"SECRET_KEY": "s3cret-for-real", "DATABASE_URL": ""}, "DATABASE_URL must be set"),
    ],
)
def test_production_refuses_unsafe_settings(env, complaint):
    result = _import_settings(MARKETPLACE_ENV="production", **env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and complaint in result.stderr


def test_production_starts_with_real_settings():
    result = _import_settings(
        MARKETPLACE_ENV="production",
        SECRET_KEY="s3cret-for-real",
        DATABASE_URL="postgresql://postgres@127.0.0.1:5432/postgres",
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("env", "complaint"),
    [
        ({"DEBUG": "maybe"}, "DEBUG must be true or false"),
        ({"EXECUTION_BACKEND": "k8s"}, "EXECUTION_BACKEND must be"),
        ({"DATABASE_URL": "mysql://root@127.0.0.1/x"}, "must point at PostgreSQL"),
        ({"MARKETPLACE_ENV": "staging"}, "MARKETPLACE_ENV must be"),
    ],
)
def test_bad_values_are_refused_with_a_clear_message(env, complaint):
    result = _import_settings(**env)
    assert result.returncode != 0 and complaint in result.stderr
