from django.db import migrations

from marketplace.core.change_feed import unwatch_table_sql, watch_table_sql

# The tables the hot path caches read (marketplace/core/change_feed.py), announced on change.
WATCHED = [
    ("billing_computeprice", []),
    ("billing_budget", []),
]


class Migration(migrations.Migration):
    dependencies = [("billing", "0002_usage_index_with_created_at"), ("core", "0002_change_feed")]

    operations = [
        migrations.RunSQL(watch_table_sql(table, ignore_columns=ignored), unwatch_table_sql(table))
        for table, ignored in WATCHED
    ]
