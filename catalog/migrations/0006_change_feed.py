from django.db import migrations

from marketplace.core.change_feed import unwatch_table_sql, watch_table_sql

# The tables the hot path caches read (marketplace/core/change_feed.py), announced on change.
WATCHED = [
    ("catalog_model", ["search_dirty", "search_text", "calls_30d", "stars"]),
    ("catalog_build", ["log"]),
    ("catalog_version", []),
]


class Migration(migrations.Migration):
    dependencies = [("catalog", "0005_search_dirty"), ("core", "0002_change_feed")]

    operations = [
        migrations.RunSQL(watch_table_sql(table, ignore_columns=ignored), unwatch_table_sql(table))
        for table, ignored in WATCHED
    ]
