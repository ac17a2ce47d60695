from django.core.management.base import BaseCommand, CommandError

from catalog.demo.loader import load_demo_catalog
from marketplace.accounts.models import User


class Command(BaseCommand):
    help = (
        "Publish the demo catalogue (catalog/demo/) through the real build path. Idempotent: "
        "what is already published is skipped."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--admin", default="demo-admin", help="the user who owns the demo teams"
        )
        parser.add_argument("--only", nargs="*", help="load only these model slugs")

    def handle(self, *args, admin, only, **options):
        user = User.objects.filter(username=admin).first()
        if user is None:
            raise CommandError(f"no user named {admin!r}; run setup_demo first")
        self.stdout.write("[run] loading the demo catalogue (the first run builds every model)")
        report = load_demo_catalog(
            admin=user,
            say=lambda line: self.stdout.write(line),
            only=set(only or []) or None,
        )
        self.stdout.write(
            f"[run] demo catalogue: {report.published} published, {report.skipped} already "
            f"there, {report.failed} failed"
        )
