from django.db import migrations, models


class Migration(migrations.Migration):
    """The outbox of the Elasticsearch index. Every existing row starts dirty, so the first
    `search_reindex` (or the periodic index_dirty_models) indexes it. On PostgreSQL 11 and
    later, adding a column with a constant default does not rewrite the table."""

    dependencies = [
        ("catalog", "0004_search"),
    ]

    operations = [
        migrations.AddField(
            model_name="model",
            name="search_dirty",
            field=models.BooleanField(db_index=True, default=True, editable=False),
        ),
    ]
