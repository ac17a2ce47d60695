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


def _settings_value(name: str, **env) -> str:
    clean = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "SECRET_KEY"}}
    result = subprocess.run(
        [sys.executable, "-c", f"import marketplace.settings as s; print(s.{name})"],
        cwd=ROOT,
        env={**clean, "DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/unused", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout.strip()


def test_without_secret_key_development_generates_one_per_installation_and_keeps_it(tmp_path):
    first, second = tmp_path / "one", tmp_path / "two"
    key = _settings_value("SECRET_KEY", MARKETPLACE_VAR_DIR=str(first))
    assert len(key) >= 50
    assert key != "development-only-secret-key-do-not-use-in-production"
    assert (first / "secret_key").read_text().strip() == key
    assert (first / "secret_key").stat().st_mode & 0o777 == 0o600
    assert _settings_value("SECRET_KEY", MARKETPLACE_VAR_DIR=str(first)) == key
    assert _settings_value("SECRET_KEY", MARKETPLACE_VAR_DIR=str(second)) != key


def test_a_given_secret_key_is_used_and_nothing_is_generated(tmp_path):
    var = tmp_path / "var"
    assert _settings_value("SECRET_KEY", MARKETPLACE_VAR_DIR=str(var), SECRET_KEY="mine") == "mine"
    assert not (var / "secret_key").exists()
