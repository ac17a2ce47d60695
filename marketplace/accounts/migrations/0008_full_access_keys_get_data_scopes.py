"""Keys made before the data scopes existed could use hosted data with any scopes. A key that
had full access keeps it (it gains data:read and data:write); a restricted key gets no data
access, as a restriction should."""

from django.db import migrations

OLD_FULL_ACCESS = {"algo://*", "catalog:write", "billing:read"}
DATA_SCOPES = ["data:read", "data:write"]


def add_data_scopes(apps, schema_editor):
    ApiKey = apps.get_model("accounts", "ApiKey")
    for key in ApiKey.objects.all().only("pk", "scopes").iterator():
        scopes = list(key.scopes or [])
        if set(scopes) >= OLD_FULL_ACCESS and not set(scopes) >= set(DATA_SCOPES):
            key.scopes = scopes + [s for s in DATA_SCOPES if s not in scopes]
            key.save(update_fields=["scopes"])


class Migration(migrations.Migration):
    dependencies = [("accounts", "0007_company_sign_on")]

    operations = [migrations.RunPython(add_data_scopes, migrations.RunPython.noop)]
