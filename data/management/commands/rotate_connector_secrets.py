"""Re-encrypt every connector's secret under the first key of DATA_CONNECTOR_SECRET_KEYS
(data/secrets.py), so the keys after it can then be dropped."""

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from data.models import Connector
from data.secrets import SecretUnreadable, reencrypt_secret


class Command(BaseCommand):
    help = "Re-encrypt connectors' secrets with the first DATA_CONNECTOR_SECRET_KEYS key."

    def handle(self, *args, **options):
        done, unreadable = 0, []
        with transaction.atomic():
            for connector in Connector.objects.select_for_update().select_related("team"):
                try:
                    connector.secret_encrypted = reencrypt_secret(connector.secret_encrypted)
                except SecretUnreadable:
                    unreadable.append(f"{connector.team.slug}: s3://{connector.name}")
                    continue
                connector.save(update_fields=["secret_encrypted"])
                done += 1
        self.stdout.write(f"re-encrypted {done} connector secret(s)")
        if unreadable:
            raise CommandError(
                "these secrets decrypt with none of the keys (enter them again): "
                + ", ".join(unreadable)
            )
