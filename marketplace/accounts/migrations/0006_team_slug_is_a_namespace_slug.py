"""Every namespace slug matches NAMESPACE_SLUG_PATTERN in the database too, so none holds
`_` and a namespace's Algorithmia client alias (`-` written `_`, accounts/namespaces.py)
names exactly one namespace. The forms and services always refused other slugs; a row
written around them (a shell, a raw insert) is named here, to be renamed, instead of the
constraint failing with PostgreSQL's bare message."""

from django.db import migrations, models

PATTERN = r"^[a-z][a-z0-9-]{1,38}$"


def refuse_nonconforming_slugs(apps, schema_editor):
    team = apps.get_model("accounts", "Team")
    bad = list(team.objects.exclude(slug__regex=PATTERN).values_list("slug", flat=True)[:20])
    if bad:
        raise RuntimeError(
            "these namespace slugs are not lowercase letters, digits and hyphens starting "
            f"with a letter; rename them (and their users) first: {', '.join(bad)}"
        )


class Migration(migrations.Migration):
    dependencies = [("accounts", "0005_change_feed")]

    operations = [
        migrations.RunPython(refuse_nonconforming_slugs, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="team",
            constraint=models.CheckConstraint(
                condition=models.Q(slug__regex=PATTERN), name="team_slug_is_a_namespace_slug"
            ),
        ),
    ]
