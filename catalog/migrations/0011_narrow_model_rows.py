"""Narrow catalog_model rows (issue 16, fast at scale): a search counts, facets and pools
up to a thousand matching rows, reading one heap tuple each, and with the README (and the
search vector) stored in the tuple a row filled most of an 8 kB page, so the table outgrew
shared_buffers and every counted row was a page read. With a small `toast_tuple_target`
the toaster moves the wide values out of any row it handles (one longer than ~2 kB, or
holding an out-of-line value already), leaving the columns a search reads (the filters,
facets, name, popularity, and the name and title suggestions match) inline: those are
STORAGE MAIN, compressed in place if need be but moved out only when a row would not fit a
page. Only `readme` and `search_vector` go out of line: the ranking reads the vector once per scored candidate
(tens of rows), never per counted match.

Existing rows are narrowed when next written: `manage.py search_reindex --step vectors`
rewrites them all in batches (docs/operating.md)."""

from django.db import migrations

INLINE_COLUMNS = ("slug", "title", "tagline", "tags", "task", "framework", "license", "search_text")

NARROW = "ALTER TABLE catalog_model SET (toast_tuple_target = 128), " + ", ".join(
    f"ALTER COLUMN {column} SET STORAGE MAIN" for column in INLINE_COLUMNS
)
WIDE = "ALTER TABLE catalog_model RESET (toast_tuple_target), " + ", ".join(
    f"ALTER COLUMN {column} SET STORAGE EXTENDED" for column in INLINE_COLUMNS
)


class Migration(migrations.Migration):
    dependencies = [("catalog", "0010_model_anonymous_tries")]

    operations = [migrations.RunSQL(NARROW, WIDE)]
