"""Create the demo admin, the demo team and its API key once; print them once, and keep
them in var/demo-credentials.txt (readable by the machine's owner only)."""

from __future__ import annotations

import os
import secrets

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction

from marketplace.accounts import services
from marketplace.accounts.models import Team, User
from marketplace.accounts.scopes import FULL_ACCESS

DEMO_ADMIN = "demo-admin"
DEMO_TEAM = "demo"


class Command(BaseCommand):
    help = "Create the demo admin, team and API key if they do not exist yet."

    def add_arguments(self, parser):
        parser.add_argument("--public-url", default=settings.PUBLIC_URL)

    def handle(self, *args, public_url, **options):
        credentials = settings.VAR_DIR / "demo-credentials.txt"
        if User.objects.filter(username=DEMO_ADMIN).exists():
            where = credentials if credentials.exists() else "printed on the first run"
            self.stdout.write(f"[run] demo admin and key exist (credentials: {where})")
            return
        password = secrets.token_urlsafe(12)
        with transaction.atomic():
            admin = services.user_sign_up(
                username=DEMO_ADMIN,
                email="admin@example.com",
                password=password,
                is_staff=True,
                is_superuser=True,
            )
            team = Team.objects.filter(slug=DEMO_TEAM).first() or services.team_create(
                actor=admin,
                slug=DEMO_TEAM,
                name="Demo team",
                description="The team that owns the demo catalogue.",
            )
            _key, secret = services.api_key_create(
                actor=admin, team=team, name="demo key", scopes=list(FULL_ACCESS)
            )
        text = (
            f"Site:      {public_url}/\n"
            f"Admin:     {public_url}/admin/  user {DEMO_ADMIN}  password {password}\n"
            f"API key:   {secret}   (team {team.slug}, full access)\n"
            f"Try it:    curl -H 'Authorization: Simple {secret}' {public_url}/v1/me\n"
        )
        credentials.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(credentials, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)  # also when an older file was readable by others
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        self.stdout.write(
            "[run] created the demo admin, team and API key (shown this once; "
            f"also saved in {credentials}):"
        )
        self.stdout.write(text)
