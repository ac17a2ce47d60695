"""Team.signing_secret, step 3 of 3: required, and generated for every new team."""

import importlib

from django.db import migrations, models

import marketplace.accounts.models

# Teams created by code still running without the field while 0003 ran have none yet: they
# get their own secret here too, before NOT NULL (whose one-off default would be shared).
backfill = importlib.import_module(
    "marketplace.accounts.migrations.0003_backfill_team_signing_secret"
).give_each_team_a_secret


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_backfill_team_signing_secret"),
    ]

    operations = [
        migrations.RunPython(backfill, migrations.RunPython.noop, elidable=True),
        migrations.AlterField(
            model_name="team",
            name="signing_secret",
            field=models.CharField(
                default=marketplace.accounts.models.new_signing_secret,
                editable=False,
                max_length=64,
            ),
        ),
    ]
