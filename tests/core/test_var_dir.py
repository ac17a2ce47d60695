"""var/ is closed to other users, and the secrets generated into it are made once."""

from __future__ import annotations

import io
import multiprocessing
import os

import pytest

from marketplace.var_dir import ensure_var_dir, read_or_create_secret


def _mode(path) -> int:
    return path.stat().st_mode & 0o777


def test_var_dir_is_created_closed_and_its_children_closed_again(tmp_path):
    var = tmp_path / "var"
    ensure_var_dir(var)
    expected = 0o711 if os.geteuid() == 0 else 0o700
    assert _mode(var) == expected
    (var / "run").mkdir(mode=0o755)
    (var / "postgres").mkdir(mode=0o755)
    (var / "demo-credentials.txt").write_text("password")
    (var / "demo-credentials.txt").chmod(0o644)
    var.chmod(0o755)
    ensure_var_dir(var)
    ensure_var_dir(var)  # idempotent
    assert _mode(var) == expected
    assert _mode(var / "run") == 0o700
    assert _mode(var / "postgres") == expected
    assert _mode(var / "demo-credentials.txt") == 0o600


def test_environments_and_packages_are_closed_too(tmp_path):
    """Models reach their own environment and package through the sandbox's binds; no other
    user lists or reads another team's package through var/."""
    var = ensure_var_dir(tmp_path / "var")
    for name in ("envs", "media"):
        (var / name).mkdir()
        (var / name).chmod(0o755)
    ensure_var_dir(var)
    assert _mode(var / "envs") == _mode(var / "media") == 0o700


def test_a_symbolic_link_in_var_is_not_followed(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir(mode=0o755)
    outside.chmod(0o755)
    var = ensure_var_dir(tmp_path / "var")
    (var / "elsewhere").symlink_to(outside)
    ensure_var_dir(var)
    assert _mode(outside) == 0o755


def test_a_secret_is_generated_once_private_and_then_read(tmp_path):
    path = tmp_path / "var" / "secret"
    secret = read_or_create_secret(path)
    assert len(secret) >= 40
    assert _mode(path) == 0o600
    assert read_or_create_secret(path) == secret
    assert read_or_create_secret(tmp_path / "other") != secret
    assert [p.name for p in path.parent.iterdir()] == ["secret"]  # no temporary file left


def _race(path, start, answers):
    start.wait()
    answers.put(read_or_create_secret(path))


def test_processes_starting_at_once_agree_on_one_secret(tmp_path):
    context = multiprocessing.get_context("fork")
    start, answers = context.Event(), context.Queue()
    path = tmp_path / "secret"
    racers = [context.Process(target=_race, args=(path, start, answers)) for _ in range(8)]
    for racer in racers:
        racer.start()
    start.set()
    seen = {answers.get(timeout=30) for _ in racers}
    for racer in racers:
        racer.join(timeout=30)
    assert seen == {path.read_text().strip()}


def test_an_empty_secret_file_is_refused_rather_than_used(tmp_path):
    path = tmp_path / "secret"
    path.write_text("")
    with pytest.raises(RuntimeError, match="is empty"):
        read_or_create_secret(path)


@pytest.mark.django_db
def test_demo_credentials_are_readable_by_their_owner_only(settings, tmp_path):
    from django.core.management import call_command

    settings.VAR_DIR = ensure_var_dir(tmp_path / "var")
    (settings.VAR_DIR / "demo-credentials.txt").write_text("old")
    (settings.VAR_DIR / "demo-credentials.txt").chmod(0o644)
    call_command("setup_demo", stdout=io.StringIO())
    credentials = settings.VAR_DIR / "demo-credentials.txt"
    assert "API key:" in credentials.read_text()
    assert _mode(credentials) == 0o600
