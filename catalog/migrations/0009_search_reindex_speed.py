"""A rebuild of the search vectors that takes minutes, not an hour, at 1,000,000 models
(issue 16, fast at scale):

- `catalog_search_split` finds the tokens that join words with one regular-expression pass
  over the text (`regexp_matches(..., 'g')`) instead of cutting the text into one row per
  token and testing each: the same output (checked on generated READMEs and the edge cases
  of tests/catalog/search), about three times faster on a README.
- The change feed's update trigger on catalog_model also ignores `search_vector`, derived
  from columns it already watches: before, every `search_reindex` batch turned each row and
  its whole vector into JSON twice just to find nothing a cache reads had changed.
"""

from django.db import migrations

from marketplace.core.change_feed import unwatch_table_sql, watch_table_sql

SPLIT = r"""
CREATE OR REPLACE FUNCTION catalog_search_split(body text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT body || coalesce(' ' || string_agg(catalog_search_parts(token[1]), ' '), '')
    FROM regexp_matches(body, '([^[:space:]]*(?:[[:alnum:]][^[:alnum:][:space:]]+[[:alnum:]]|[[:lower:]][[:upper:]]|[[:upper:]][[:upper:]][[:lower:]]|[[:alpha:]][[:digit:]]|[[:digit:]][[:alpha:]])[^[:space:]]*)', 'g') AS token
$$;
"""

PREVIOUS_SPLIT = r"""
CREATE OR REPLACE FUNCTION catalog_search_split(body text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT body || coalesce(' ' || string_agg(catalog_search_parts(token), ' '), '')
    FROM regexp_split_to_table(body, '[[:space:]]+') AS token
    WHERE token ~ '[[:alnum:]][^[:alnum:][:space:]]+[[:alnum:]]|[[:lower:]][[:upper:]]|[[:upper:]][[:upper:]][[:lower:]]|[[:alpha:]][[:digit:]]|[[:digit:]][[:alpha:]]'
$$;
"""

IGNORED_BEFORE = ["search_dirty", "search_text", "calls_30d", "stars"]
IGNORED = [*IGNORED_BEFORE, "search_vector"]


class Migration(migrations.Migration):
    dependencies = [("catalog", "0008_model_embedding")]

    operations = [
        migrations.RunSQL(SPLIT, PREVIOUS_SPLIT),
        migrations.RunSQL(
            unwatch_table_sql("catalog_model")
            + "\n"
            + watch_table_sql("catalog_model", ignore_columns=IGNORED),
            unwatch_table_sql("catalog_model")
            + "\n"
            + watch_table_sql("catalog_model", ignore_columns=IGNORED_BEFORE),
        ),
    ]
