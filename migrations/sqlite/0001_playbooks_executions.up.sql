-- Playbooks and their executions: the SQLite twin of
-- migrations/postgres/0001, same tables, columns and named constraints.
--
-- Where SQLite differs, and why:
-- - Tables are STRICT, so a value of the wrong type is refused as Postgres
--   would refuse it instead of being stored as whatever it happens to be.
-- - Ids are INTEGER PRIMARY KEY AUTOINCREMENT: like bigserial, an id is
--   never handed out twice, even after the newest row is deleted.
-- - Timestamps are INTEGER milliseconds since the Unix epoch (UTC); the
--   store binds its own clock, the defaults only cover hand-written rows.
-- - JSON is TEXT checked with json_valid, as jsonb would refuse bad text.
-- - `steps` (text[] in Postgres) is a JSON array of step names.

CREATE TABLE playbooks (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    path       TEXT    NOT NULL,
    version    INTEGER NOT NULL,
    name       TEXT    NOT NULL,
    yaml       TEXT    NOT NULL,
    steps      TEXT    NOT NULL,
    created_at INTEGER NOT NULL
        DEFAULT (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)),
    CONSTRAINT playbooks_path_version_key UNIQUE (path, version),
    CONSTRAINT playbooks_version_positive CHECK (version >= 1),
    CONSTRAINT playbooks_steps_json CHECK (json_valid(steps) AND json_type(steps) = 'array')
) STRICT;

CREATE TABLE executions (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    playbook_id      INTEGER NOT NULL REFERENCES playbooks (id),
    playbook_path    TEXT    NOT NULL,
    playbook_version INTEGER NOT NULL,
    state            TEXT    NOT NULL DEFAULT 'running',
    workload         TEXT    NOT NULL,
    context          TEXT    NOT NULL,
    error            TEXT,
    traceparent      TEXT    NOT NULL DEFAULT '',
    created_at       INTEGER NOT NULL
        DEFAULT (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)),
    finished_at      INTEGER,
    CONSTRAINT executions_state_valid
        CHECK (state IN ('running', 'completed', 'failed', 'cancelled')),
    -- A finished execution says when it finished; a running one has not.
    CONSTRAINT executions_final_has_finished_at
        CHECK ((state = 'running') = (finished_at IS NULL)),
    CONSTRAINT executions_json_valid CHECK (json_valid(workload) AND json_valid(context))
) STRICT;

-- Executions.List filters by path and pages newest first.
CREATE INDEX executions_playbook_path_idx ON executions (playbook_path, id);
