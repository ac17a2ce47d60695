from django.db import migrations

from marketplace.core.change_feed import DROP_NOTIFY_FUNCTION_SQL, NOTIFY_FUNCTION_SQL


class Migration(migrations.Migration):
    dependencies = [("core", "0001_initial")]

    operations = [migrations.RunSQL(NOTIFY_FUNCTION_SQL, DROP_NOTIFY_FUNCTION_SQL)]
