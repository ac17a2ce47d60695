from django.core.management.base import BaseCommand

from data.sweep import orphans_sweep


class Command(BaseCommand):
    help = (
        "Delete stored hosted-data blobs that no index entry names and that are older than "
        "DATA_ORPHAN_GRACE_SECONDS (what a crash mid-upload leaves)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--grace-seconds", type=int, default=None)
        parser.add_argument("--dry-run", action="store_true", help="List, delete nothing")

    def handle(self, *args, grace_seconds, dry_run, **options):
        removed = orphans_sweep(grace_seconds=grace_seconds, dry_run=dry_run)
        for key in removed:
            self.stdout.write(key)
        verb = "would remove" if dry_run else "removed"
        self.stdout.write(f"{verb} {len(removed)} orphaned blob(s)")
