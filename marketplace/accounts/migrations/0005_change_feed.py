from django.db import migrations

from marketplace.core.change_feed import unwatch_table_sql, watch_table_sql

# The tables the hot path caches read (marketplace/core/change_feed.py), announced on change.
WATCHED = [
    ("accounts_apikey", ["last_used_at"]),
    ("accounts_user", ["last_login"]),
    ("accounts_team", []),
    ("accounts_membership", []),
]


class Migration(migrations.Migration):
    dependencies = [("accounts", "0004_team_signing_secret_not_null"), ("core", "0002_change_feed")]

    operations = [
        migrations.RunSQL(watch_table_sql(table, ignore_columns=ignored), unwatch_table_sql(table))
        for table, ignored in WATCHED
    ]
