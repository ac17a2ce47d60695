"""Team.signing_secret, step 2 of 3: a random secret of its own for every existing team.

Until now a team's secret was HMAC(SECRET_KEY, team id); receivers of its webhooks must take
the new one from GET /v1/teams/{team}/signing-secret."""

import secrets

from django.db import migrations

BATCH = 500


def give_each_team_a_secret(apps, schema_editor):
    Team = apps.get_model("accounts", "Team")
    while True:
        ids = list(
            Team.objects.filter(signing_secret__isnull=True).values_list("pk", flat=True)[:BATCH]
        )
        if not ids:
            return
        for team_id in ids:
            Team.objects.filter(pk=team_id, signing_secret__isnull=True).update(
                signing_secret=secrets.token_hex(32)
            )


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_team_signing_secret"),
    ]

    operations = [
        migrations.RunPython(give_each_team_a_secret, migrations.RunPython.noop, elidable=True),
    ]
