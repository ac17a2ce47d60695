"""Team.signing_secret, step 1 of 3: the column, nullable, so existing rows and code that
does not know it yet keep working while the backfill runs."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="team",
            name="signing_secret",
            # No default here: Django would compute a callable default once and give every
            # existing team the same secret. 0003 gives each its own.
            field=models.CharField(max_length=64, null=True, editable=False),
        ),
    ]
