"""Tables of the limiter's PostgreSQL backend (marketplace/core/limits.py; it lived in the
gateway then) (raw SQL, no Django models).

Both are UNLOGGED: limiter state is worth nothing after a crash (a crash empties them, which
only forgets who was near a limit) and skipping the WAL makes every call's write cheap. They
have no secondary index so that each update can be a HOT update in place, and a fillfactor
that leaves room on the page for it. Neither table is replicated to standbys.
"""

from django.db import migrations

CREATE = """
CREATE UNLOGGED TABLE gateway_rate_limit (
    subject text PRIMARY KEY,
    lim bigint NOT NULL,
    level bigint NOT NULL,
    updated_ms bigint NOT NULL,
    last_allowed boolean NOT NULL
) WITH (fillfactor = 70);
COMMENT ON TABLE gateway_rate_limit IS
    'GCRA state per rate-limited subject, see gateway/limits.py';

CREATE UNLOGGED TABLE gateway_concurrency_slot (
    subject text NOT NULL,
    slot integer NOT NULL,
    token uuid NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (subject, slot)
) WITH (fillfactor = 70);
COMMENT ON TABLE gateway_concurrency_slot IS
    'Calls in flight per subject, see gateway/limits.py';
"""

DROP = """
DROP TABLE IF EXISTS gateway_concurrency_slot;
DROP TABLE IF EXISTS gateway_rate_limit;
"""


class Migration(migrations.Migration):
    dependencies = []

    operations = [migrations.RunSQL(CREATE, DROP)]
