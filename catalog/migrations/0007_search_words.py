"""Every word indexed, and the dictionary typos are corrected against (issue 16).

- `catalog_search_split(text)`: the text, followed by the parts of each token that joins
  words (`ARIMA/GARCH`, `fmpcloud.io`, `a-b`, `a_b`, `CamelCase`, `gpt2`, `v2.1`), so both
  the token as written and every word inside it are indexed. `catalog/search/analysis.py`
  cuts a query the same way; the Elasticsearch mapping's `word_delimiter_graph` with
  `preserve_original` does the same.
- The search vector now weighs A the name, B the title, C the tagline, D tags, task,
  framework, owner and README (name > title > tagline > tags > README; tags are told apart
  from the README at ranking time by the tags column itself).
- `catalog_search_word`: the catalogue's own words (lower-cased, 3 to 40 characters), with
  how many models hold each, per scope: 0 for public models, else the owner's id for its
  private models, so a correction is only ever drawn from words of models the visitor may
  see. An AFTER trigger keeps it current on every insert, update and delete, whatever code
  path writes; `manage.py search_reindex` rebuilds it (and the vectors) for bulk loads.
"""

from django.db import migrations, models

SPLIT = r"""
CREATE EXTENSION IF NOT EXISTS fuzzystrmatch;

CREATE OR REPLACE FUNCTION catalog_search_parts(token text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    -- The words between separators (LaTeX/MathML: LaTeX MathML), then the words inside
    -- those (La Te X Math ML).
    SELECT btrim(regexp_replace(token, '[^[:alnum:]]+', ' ', 'g')) || ' ' || btrim(regexp_replace(
        regexp_replace(regexp_replace(regexp_replace(regexp_replace(token,
            '([[:lower:]])(?=[[:upper:]])', '\1 ', 'g'),
            '([[:upper:]])(?=[[:upper:]][[:lower:]])', '\1 ', 'g'),
            '([[:alpha:]])(?=[[:digit:]])', '\1 ', 'g'),
            '([[:digit:]])(?=[[:alpha:]])', '\1 ', 'g'),
        '[^[:alnum:]]+', ' ', 'g'))
$$;

CREATE OR REPLACE FUNCTION catalog_search_split(body text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT body || coalesce(' ' || string_agg(catalog_search_parts(token), ' '), '')
    FROM regexp_split_to_table(body, '[[:space:]]+') AS token
    WHERE token ~ '[[:alnum:]][^[:alnum:][:space:]]+[[:alnum:]]|[[:lower:]][[:upper:]]|[[:upper:]][[:upper:]][[:lower:]]|[[:alpha:]][[:digit:]]|[[:digit:]][[:alpha:]]'
$$;

CREATE OR REPLACE FUNCTION catalog_search_words(body text) RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT coalesce(array_agg(DISTINCT word ORDER BY word), '{}')
    FROM regexp_split_to_table(lower(catalog_search_split(body)), '[^[:alnum:]]+') AS word
    WHERE length(word) BETWEEN 3 AND 40 AND word !~ '^[[:digit:]]+$'
$$;

CREATE OR REPLACE FUNCTION catalog_model_search_body(
    slug text, title text, tagline text, tags text[], task text, framework text, readme text
) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT concat_ws(' ', slug, title, tagline, array_to_string(tags, ' '), task, framework,
                     left(readme, 200000))
$$;

CREATE OR REPLACE FUNCTION catalog_model_search_fields() RETURNS trigger AS $$
DECLARE
    owner_slug text;
BEGIN
    SELECT slug INTO owner_slug FROM accounts_team WHERE id = NEW.owner_id;
    NEW.search_text := lower(NEW.slug || ' ' || replace(NEW.slug, '-', ' ') || ' '
                             || coalesce(NEW.title, ''));
    NEW.search_vector :=
        setweight(to_tsvector('english', catalog_search_split(NEW.slug)), 'A')
        || setweight(to_tsvector('english', catalog_search_split(coalesce(NEW.title, ''))), 'B')
        || setweight(to_tsvector('english', catalog_search_split(coalesce(NEW.tagline, ''))), 'C')
        || setweight(to_tsvector('english', catalog_search_split(
               array_to_string(NEW.tags, ' ') || ' ' || NEW.task || ' ' || NEW.framework || ' '
               || coalesce(owner_slug, '') || ' ' || left(coalesce(NEW.readme, ''), 200000))), 'D');
    RETURN NEW;
END $$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION catalog_model_search_dictionary() RETURNS trigger AS $$
DECLARE
    old_scope integer;
    new_scope integer;
    old_words text[] := '{}';
    new_words text[] := '{}';
BEGIN
    IF TG_OP <> 'INSERT' THEN
        old_scope := CASE WHEN OLD.visibility = 'public' THEN 0 ELSE OLD.owner_id END;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        new_scope := CASE WHEN NEW.visibility = 'public' THEN 0 ELSE NEW.owner_id END;
    END IF;
    IF TG_OP = 'UPDATE' AND old_scope = new_scope
        AND OLD.slug = NEW.slug AND OLD.title = NEW.title AND OLD.tagline = NEW.tagline
        AND OLD.tags = NEW.tags AND OLD.task = NEW.task AND OLD.framework = NEW.framework
        AND OLD.readme = NEW.readme THEN
        RETURN NULL;  -- calls_30d, stars, dirty flags...: no word changed
    END IF;
    IF TG_OP <> 'INSERT' THEN
        old_words := catalog_search_words(catalog_model_search_body(
            OLD.slug, OLD.title, OLD.tagline, OLD.tags, OLD.task, OLD.framework, OLD.readme));
    END IF;
    IF TG_OP <> 'DELETE' THEN
        new_words := catalog_search_words(catalog_model_search_body(
            NEW.slug, NEW.title, NEW.tagline, NEW.tags, NEW.task, NEW.framework, NEW.readme));
    END IF;
    IF old_scope = new_scope THEN
        -- Only the difference: an edit of one word touches one or two rows.
        SELECT ARRAY(SELECT unnest(old_words) EXCEPT SELECT unnest(new_words)),
               ARRAY(SELECT unnest(new_words) EXCEPT SELECT unnest(old_words))
        INTO old_words, new_words;
    END IF;
    -- Rows in word order, so two writers never wait on each other in opposite orders.
    UPDATE catalog_search_word AS d SET model_count = d.model_count - 1
    FROM (SELECT word FROM unnest(old_words) AS word ORDER BY word) AS gone
    WHERE d.scope = old_scope AND d.word = gone.word;
    INSERT INTO catalog_search_word (word, scope, model_count)
    SELECT word, new_scope, 1 FROM unnest(new_words) AS word ORDER BY word
    ON CONFLICT (word, scope) DO UPDATE SET model_count = catalog_search_word.model_count + 1;
    RETURN NULL;
END $$ LANGUAGE plpgsql;

CREATE TRIGGER catalog_model_search_dictionary
    AFTER INSERT OR UPDATE OR DELETE ON catalog_model
    FOR EACH ROW EXECUTE FUNCTION catalog_model_search_dictionary();
"""

SPLIT_REVERSE = """
DROP TRIGGER IF EXISTS catalog_model_search_dictionary ON catalog_model;
DROP FUNCTION IF EXISTS catalog_model_search_dictionary();
DROP FUNCTION IF EXISTS catalog_model_search_body(text, text, text, text[], text, text, text);
DROP FUNCTION IF EXISTS catalog_search_words(text);
DROP FUNCTION IF EXISTS catalog_search_split(text);
DROP FUNCTION IF EXISTS catalog_search_parts(text);
"""

# The vectors of existing rows in the new shape, and their words in the dictionary. (A large
# catalogue can instead be migrated with the backfill skipped and `search_reindex` run
# afterwards in batches; this one statement is what a fresh or small database needs.)
BACKFILL = """
UPDATE catalog_model SET slug = slug;
INSERT INTO catalog_search_word (word, scope, model_count)
SELECT word, CASE WHEN visibility = 'public' THEN 0 ELSE owner_id END, count(*)
FROM catalog_model,
     unnest(catalog_search_words(catalog_model_search_body(
         slug, title, tagline, tags, task, framework, readme))) AS word
GROUP BY 1, 2
ON CONFLICT (word, scope) DO UPDATE SET model_count = EXCLUDED.model_count;
"""

# The 0004 trigger function, for going back.
PREVIOUS_FIELDS = """
CREATE OR REPLACE FUNCTION catalog_model_search_fields() RETURNS trigger AS $$
DECLARE
    owner_slug text;
BEGIN
    SELECT slug INTO owner_slug FROM accounts_team WHERE id = NEW.owner_id;
    NEW.search_text := lower(NEW.slug || ' ' || replace(NEW.slug, '-', ' ') || ' '
                             || coalesce(NEW.title, ''));
    NEW.search_vector :=
        setweight(to_tsvector('simple', replace(replace(NEW.slug, '-', ' '), '_', ' ')), 'A')
        || setweight(to_tsvector('english', coalesce(NEW.title, '')), 'A')
        || setweight(to_tsvector('english', coalesce(NEW.tagline, '')), 'B')
        || setweight(to_tsvector('english', array_to_string(NEW.tags, ' ') || ' '
                     || replace(NEW.task, '-', ' ') || ' ' || NEW.framework), 'B')
        || setweight(to_tsvector('simple', coalesce(owner_slug, '')), 'C')
        || setweight(to_tsvector('english', left(coalesce(NEW.readme, ''), 200000)), 'D');
    RETURN NEW;
END $$ LANGUAGE plpgsql;
UPDATE catalog_model SET slug = slug;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0006_change_feed"),
    ]

    operations = [
        migrations.CreateModel(
            name="SearchWord",
            fields=[
                ("pk", models.CompositePrimaryKey("word", "scope", blank=True, serialize=False)),
                ("word", models.TextField()),
                ("scope", models.IntegerField()),
                ("model_count", models.IntegerField(default=0)),
            ],
            options={"db_table": "catalog_search_word"},
        ),
        migrations.RunSQL(
            "CREATE INDEX catalog_search_word_trgm ON catalog_search_word "
            "USING gin (word gin_trgm_ops)",
            "DROP INDEX IF EXISTS catalog_search_word_trgm",
        ),
        migrations.RunSQL(SPLIT, SPLIT_REVERSE),
        migrations.RunSQL(BACKFILL, PREVIOUS_FIELDS),
    ]
