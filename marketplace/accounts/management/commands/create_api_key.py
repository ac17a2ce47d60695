from django.core.management.base import BaseCommand, CommandError

from marketplace.accounts import services
from marketplace.accounts.models import Team, User
from marketplace.accounts.scopes import FULL_ACCESS
from marketplace.core.errors import ApiError


class Command(BaseCommand):
    help = (
        "Create an API key and print only its secret (for automation). Without --scope the "
        "key has full access (algo://*, catalog:write, billing:read)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--user", required=True, help="the user who owns the key")
        parser.add_argument("--team", help="team slug to bill calls to (default: personal)")
        parser.add_argument(
            "--scope",
            action="append",
            dest="scopes",
            metavar="PATTERN",
            help="repeatable: algo:// pattern, catalog:write or billing:read",
        )
        parser.add_argument("--name", default="created from the command line")
        parser.add_argument("--project", default="")

    def handle(self, *args, user, team, scopes, name, project, **options):
        account = User.objects.filter(username=user).first()
        if account is None:
            raise CommandError(f"no user named {user!r}")
        services.personal_namespace_ensure(user=account)
        team_obj = None
        if team:
            team_obj = Team.objects.filter(slug=team).first()
            if team_obj is None:
                raise CommandError(f"no team named {team!r}")
        try:
            _key, secret = services.api_key_create(
                actor=account,
                team=team_obj,
                name=name,
                scopes=list(FULL_ACCESS) if scopes is None else scopes,
                project=project,
            )
        except ApiError as error:
            raise CommandError(error.message) from None
        self.stdout.write(secret)
