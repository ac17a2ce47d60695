"""Published versions and the builds behind them cannot change: the database refuses it,
whatever code path tries (the admin, a shell, a bug)."""

from django.db import migrations

SQL = """
CREATE OR REPLACE FUNCTION catalog_version_immutable() RETURNS trigger AS $$
BEGIN
    IF NEW.major <> OLD.major OR NEW.minor <> OLD.minor OR NEW.patch <> OLD.patch
       OR NEW.build_id <> OLD.build_id OR NEW.model_id <> OLD.model_id
       OR NEW.visibility <> OLD.visibility OR NEW.royalty_per_call <> OLD.royalty_per_call
       OR NEW.published_at <> OLD.published_at THEN
        RAISE EXCEPTION 'published version %.%.% is immutable', OLD.major, OLD.minor, OLD.patch
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql;

CREATE TRIGGER catalog_version_immutable BEFORE UPDATE ON catalog_version
    FOR EACH ROW EXECUTE FUNCTION catalog_version_immutable();

CREATE OR REPLACE FUNCTION catalog_build_immutable() RETURNS trigger AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM catalog_version WHERE build_id = OLD.id) AND (
       NEW.package_hash <> OLD.package_hash OR NEW.manifest <> OLD.manifest
       OR NEW.status <> OLD.status OR NEW.runtime <> OLD.runtime
       OR NEW.environment_key <> OLD.environment_key
       OR NEW.sample_output IS DISTINCT FROM OLD.sample_output) THEN
        RAISE EXCEPTION 'build % is published and immutable', OLD.id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql;

CREATE TRIGGER catalog_build_immutable BEFORE UPDATE ON catalog_build
    FOR EACH ROW EXECUTE FUNCTION catalog_build_immutable();
"""

REVERSE = """
DROP TRIGGER IF EXISTS catalog_version_immutable ON catalog_version;
DROP FUNCTION IF EXISTS catalog_version_immutable();
DROP TRIGGER IF EXISTS catalog_build_immutable ON catalog_build;
DROP FUNCTION IF EXISTS catalog_build_immutable();
"""


class Migration(migrations.Migration):
    dependencies = [("catalog", "0001_initial")]
    operations = [migrations.RunSQL(SQL, REVERSE)]
