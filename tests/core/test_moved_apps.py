"""`gateway`, `monitoring` and `execution` moved out of `marketplace/` to the top level. A
database made before the move must be used in place: the apps keep their labels, so their
tables, migration history and content types keep their names, and a task queued before the move
still finds its function. What the database of that main held is written down here."""

import pytest
from django.apps import apps
from django.core.management import call_command
from django.db import connection
from django.db.migrations.loader import MigrationLoader

from marketplace.celery import app as celery_app

# Read off a database migrated by main at 7620a64, before the move.
TABLES_BEFORE_THE_MOVE = {"gateway_invocation", "gateway_rate_limit", "gateway_concurrency_slot"}
# Tables of gateway models added since (call history); no other table is made.
TABLES_ADDED_AFTER_THE_MOVE = {"gateway_keptcallbody", "gateway_refusedcall"}
MIGRATIONS_BEFORE_THE_MOVE = {
    ("gateway", "0001_rate_limits"),
    ("gateway", "0002_initial"),
    ("gateway", "0003_invocation_worker"),
}
TASKS_BEFORE_THE_MOVE = {
    "marketplace.gateway.tasks.execute_invocation",
    "marketplace.gateway.tasks.deliver_invocation_webhook",
    "marketplace.gateway.tasks.purge_rate_limits",
    "marketplace.gateway.tasks.reap_invocations",
}


@pytest.mark.parametrize(
    ("module", "label"),
    [("gateway", "gateway"), ("monitoring", "monitoring"), ("execution", "execution")],
)
def test_the_moved_apps_keep_their_labels(module, label):
    assert apps.get_app_config(label).name == module


@pytest.mark.django_db
def test_the_tables_made_before_the_move_are_the_ones_used():
    with connection.cursor() as cursor:
        cursor.execute("SELECT tablename FROM pg_tables WHERE tablename LIKE 'gateway%%'")
        tables = {row[0] for row in cursor.fetchall()}
    assert tables == TABLES_BEFORE_THE_MOVE | TABLES_ADDED_AFTER_THE_MOVE
    assert apps.get_model("gateway", "Invocation")._meta.db_table == "gateway_invocation"


@pytest.mark.django_db
def test_the_migration_history_made_before_the_move_is_complete_and_nothing_is_pending():
    loader = MigrationLoader(connection)
    assert set(loader.applied_migrations) >= MIGRATIONS_BEFORE_THE_MOVE
    assert set(loader.disk_migrations) >= MIGRATIONS_BEFORE_THE_MOVE
    # The models as they are now need no migration the database lacks.
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


def test_tasks_queued_before_the_move_still_find_their_function():
    celery_app.loader.import_default_modules()
    assert set(celery_app.tasks) >= TASKS_BEFORE_THE_MOVE
