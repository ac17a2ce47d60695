from django.db import migrations, models
import django.db.models.deletion


class Migration(migrations.Migration):
    dependencies = [
        ("gateway", "0003_invocation_worker"),
    ]

    operations = [
        migrations.AddField(
            model_name="invocation",
            name="parent",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="nested_calls",
                to="gateway.invocation",
            ),
        ),
        migrations.AddField(
            model_name="invocation",
            name="depth",
            field=models.PositiveSmallIntegerField(default=0),
        ),
    ]
